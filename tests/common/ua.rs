//! A minimal SIP user agent with RTP for end-to-end tests: it dials a room
//! over UDP with an SDP offer, sends a tone every 20 ms, records what it
//! receives, and can hold, send DTMF and hang up.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_server::codec::{CodecKind, Decoder, Encoder, OpusConfig};

use super::{free_port, header, sip_text, status};

pub struct Ua {
    pub sip: UdpSocket,
    pub server: SocketAddr,
    pub rtp: Arc<UdpSocket>,
    pub kind: CodecKind,
    pub pt: u8,
    pub call_id: String,
    pub from_tag: String,
    pub to: Option<String>,
    pub cseq: u32,
    pub remote_rtp: Option<SocketAddr>,
    /// RTP received, with its source.
    pub received: Arc<Mutex<Vec<Received>>>,
    pub sending: Arc<AtomicBool>,
    freq: Arc<Mutex<f64>>,
    dtmf: Arc<Mutex<Option<char>>>,
    seq: Arc<AtomicU32>,
    pub last_response: String,
    /// Requests from the server received while waiting for a response (answered 200).
    pub inbox: std::collections::VecDeque<String>,
    /// Unique user part, so each UA is its own AOR.
    pub user: String,
}

/// An RTP datagram and where it came from.
pub type Received = (SocketAddr, Vec<u8>);

static NEXT: AtomicU32 = AtomicU32::new(1);

fn codec_line(kind: CodecKind) -> (u8, String) {
    match kind {
        CodecKind::Pcmu => (0, "a=rtpmap:0 PCMU/8000".into()),
        CodecKind::Pcma => (8, "a=rtpmap:8 PCMA/8000".into()),
        CodecKind::G722 => (9, "a=rtpmap:9 G722/8000".into()),
        CodecKind::Opus => (111, "a=rtpmap:111 opus/48000/2".into()),
    }
}

impl Ua {
    pub fn new(server: SocketAddr, kind: CodecKind, freq: f64) -> Self {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        rtp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (pt, _) = codec_line(kind);
        let ua = Self {
            sip,
            server,
            rtp,
            kind,
            pt,
            call_id: format!("ua{n}-{}@test", std::process::id()),
            from_tag: format!("ft{n}"),
            to: None,
            cseq: 1,
            remote_rtp: None,
            received: Arc::default(),
            sending: Arc::new(AtomicBool::new(true)),
            freq: Arc::new(Mutex::new(freq)),
            dtmf: Arc::default(),
            seq: Arc::default(),
            last_response: String::new(),
            inbox: Default::default(),
            user: format!("ua{n}"),
        };
        let (sock, rec) = (ua.rtp.clone(), ua.received.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => rec.lock().unwrap().push((from, buf[..n].to_vec())),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        if Arc::strong_count(&rec) == 1 {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        ua
    }

    pub fn local(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    pub fn sdp(&self, direction: &str) -> String {
        let (pt, line) = codec_line(self.kind);
        let port = self.rtp.local_addr().unwrap().port();
        format!(
            "v=0\r\no=ua 1 {} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\n{line}\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n",
            self.cseq
        )
    }

    pub fn request(&mut self, method: &str, room: &str, extra: &str, body: Option<&str>) -> String {
        let branch = format!(
            "z9hG4bK{}{}",
            self.call_id.len(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let to = self
            .to
            .clone()
            .unwrap_or_else(|| format!("<sip:{room}@{}>", self.server));
        let cseq_method = format!("{} {method}", self.cseq);
        let (ctype, body) = match body {
            Some(b) => ("Content-Type: application/sdp\r\n", b),
            None => ("", ""),
        };
        let msg = format!(
            "{method} sip:{room}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{}@{}>;tag={}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq_method}\r\nContact: <sip:{}@{}>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.server,
            self.local(),
            self.user,
            self.local(),
            self.from_tag,
            self.call_id,
            self.user,
            self.local(),
            body.len()
        );
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
        msg
    }

    /// Waits for a final response (answering nothing); returns its status.
    pub fn final_response(&mut self, wait: Duration) -> u16 {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            if let Ok((n, from)) = self.sip.recv_from(&mut buf) {
                let Some(m) = sip_text(&buf[..n]) else {
                    continue;
                };
                if !m.starts_with("SIP/2.0") {
                    self.answer(&m, from, 200);
                    self.inbox.push_back(m);
                    continue;
                }
                let st = status(&m);
                if st >= 200 {
                    self.last_response = m;
                    return st;
                }
            }
        }
        0
    }

    /// The next SIP message on the SIP socket within `wait`, with its
    /// source; datagrams that are not SIP are skipped.
    pub fn recv_sip(&self, wait: Duration) -> Option<(String, SocketAddr)> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            if let Ok((n, from)) = self.sip.recv_from(&mut buf) {
                if let Some(m) = sip_text(&buf[..n]) {
                    return Some((m, from));
                }
            }
        }
        None
    }

    /// Answers a request from the server with `status`.
    pub fn answer(&self, m: &str, to: SocketAddr, status: u16) {
        let resp = format!(
            "SIP/2.0 {status} Whatever\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            header(m, "Via").unwrap_or(""),
            header(m, "From").unwrap_or(""),
            header(m, "To").unwrap_or(""),
            header(m, "Call-ID").unwrap_or(""),
            header(m, "CSeq").unwrap_or("")
        );
        self.sip.send_to(resp.as_bytes(), to).unwrap();
    }

    /// Receives the next request from the server (BYE, UPDATE, NOTIFY…) and answers 200.
    pub fn next_request(&mut self, wait: Duration) -> Option<String> {
        if let Some(m) = self.inbox.pop_front() {
            return Some(m);
        }
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            if let Ok((n, from)) = self.sip.recv_from(&mut buf) {
                let Some(m) = sip_text(&buf[..n]) else {
                    continue;
                };
                if m.starts_with("SIP/2.0") {
                    continue;
                }
                let resp = format!(
                    "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                    header(&m, "Via").unwrap_or(""),
                    header(&m, "From").unwrap_or(""),
                    header(&m, "To").unwrap_or(""),
                    header(&m, "Call-ID").unwrap_or(""),
                    header(&m, "CSeq").unwrap_or("")
                );
                self.sip.send_to(resp.as_bytes(), from).unwrap();
                return Some(m);
            }
        }
        None
    }

    /// INVITE with an offer, wait for 200, ACK, start media. Returns the final status.
    pub fn call(&mut self, room: &str, extra: &str) -> u16 {
        let sdp = self.sdp("sendrecv");
        self.request("INVITE", room, extra, Some(&sdp));
        let st = self.final_response(Duration::from_secs(5));
        if st == 200 {
            self.take_answer();
        }
        self.ack(room);
        if st == 200 {
            self.start_media();
        }
        st
    }

    pub fn take_answer(&mut self) {
        let r = self.last_response.clone();
        self.to = header(&r, "To").map(str::to_owned);
        let body = r.split("\r\n\r\n").nth(1).unwrap_or("");
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let ip = body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .unwrap_or("127.0.0.1")
            .trim()
            .to_owned();
        self.remote_rtp = Some(format!("{ip}:{port}").parse().unwrap());
    }

    pub fn ack(&mut self, room: &str) {
        let cseq = self.cseq;
        let branch = format!("z9hG4bKack{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let to = self
            .to
            .clone()
            .unwrap_or_else(|| format!("<sip:{room}@{}>", self.server));
        let msg = format!(
            "ACK sip:{room}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{}>;tag={}\r\n\
             To: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            self.server,
            self.local(),
            self.user,
            self.local(),
            self.from_tag,
            self.call_id
        );
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
    }

    /// Acts as the called party: waits for an INVITE, answers 180 then 200
    /// with an SDP answer, waits for the ACK and starts media. Returns the INVITE.
    pub fn accept_call(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            let Ok((n, from)) = self.sip.recv_from(&mut buf) else {
                continue;
            };
            let Some(m) = sip_text(&buf[..n]) else {
                continue;
            };
            if !m.starts_with("INVITE ") {
                continue;
            }
            let offer = m.split("\r\n\r\n").nth(1).unwrap_or("");
            let port: u16 = offer
                .lines()
                .find_map(|l| l.strip_prefix("m=audio "))
                .and_then(|l| l.split(' ').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let ip = offer
                .lines()
                .find_map(|l| l.strip_prefix("c=IN IP4 "))
                .unwrap_or("127.0.0.1")
                .trim()
                .to_owned();
            self.remote_rtp = Some(format!("{ip}:{port}").parse().unwrap());
            let answer = self.sdp("sendrecv");
            let to = format!("{};tag={}", header(&m, "To").unwrap_or(""), self.from_tag);
            for (status, reason, body) in [(180, "Ringing", ""), (200, "OK", answer.as_str())] {
                let ctype = if body.is_empty() {
                    ""
                } else {
                    "Content-Type: application/sdp\r\n"
                };
                let resp = format!(
                    "SIP/2.0 {status} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:{}@{}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
                    header(&m, "Via").unwrap_or(""),
                    header(&m, "From").unwrap_or(""),
                    header(&m, "Call-ID").unwrap_or(""),
                    header(&m, "CSeq").unwrap_or(""),
                    self.user,
                    self.local(),
                    body.len()
                );
                self.sip.send_to(resp.as_bytes(), from).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            let ack_deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < ack_deadline {
                if let Ok((n, _)) = self.sip.recv_from(&mut buf) {
                    if buf[..n].starts_with(b"ACK ") {
                        self.start_media();
                        return Some(m);
                    }
                }
            }
            return None;
        }
        None
    }

    /// Sends the tone (or DTMF when queued) every 20 ms while `sending`.
    pub fn start_media(&self) {
        let (sock, to, kind, pt) = (
            self.rtp.clone(),
            self.remote_rtp.unwrap(),
            self.kind,
            self.pt,
        );
        let (sending, freq, dtmf, seq) = (
            self.sending.clone(),
            self.freq.clone(),
            self.dtmf.clone(),
            self.seq.clone(),
        );
        let rec = Arc::downgrade(&self.received);
        // A distinct SSRC per phone, as real phones pick at random: a stray
        // stream from another test's phone must not pass for this one.
        let ssrc = std::process::id().wrapping_mul(0x9E37_79B9).wrapping_add(
            NEXT.fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x85EB_CA6B),
        );
        std::thread::spawn(move || {
            let mut enc = Encoder::new(kind, &OpusConfig::default()).unwrap();
            let rate = kind.pcm_rate();
            let len = (rate / 50) as usize;
            let mut n = 0usize;
            let start = Instant::now();
            let mut frame = 0u32;
            while rec.upgrade().is_some() {
                frame += 1;
                let target = start + Duration::from_millis(20 * frame as u64);
                if let Some(d) = target.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
                if !sending.load(Ordering::Relaxed) {
                    continue;
                }
                let s = seq.fetch_add(1, Ordering::Relaxed);
                let ts = s.wrapping_mul(kind.rtp_clock() / 50);
                let digit = dtmf.lock().unwrap().take();
                if let Some(d) = digit {
                    // RFC 4733: three packets, the last with E; same timestamp.
                    let ev = "0123456789*#".find(d).unwrap() as u8;
                    for (i, end) in [false, false, true, true, true].iter().enumerate() {
                        let dur = (160 * (i as u16 + 1)).to_be_bytes();
                        let mut p = rtp_header(101, s as u16, ts, ssrc);
                        p.extend_from_slice(&[ev, if *end { 0x8A } else { 0x0A }, dur[0], dur[1]]);
                        let _ = sock.send_to(&p, to);
                        seq.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let f = *freq.lock().unwrap();
                let pcm: Vec<i16> = (0..len)
                    .map(|i| {
                        (6000.0
                            * (2.0 * std::f64::consts::PI * f * (n + i) as f64 / rate as f64).sin())
                            as i16
                    })
                    .collect();
                n += len;
                let mut payload = [0u8; 1500];
                let plen = enc.encode(&pcm, &mut payload).unwrap();
                let mut p = rtp_header(pt, s as u16, ts, ssrc);
                p.extend_from_slice(&payload[..plen]);
                let _ = sock.send_to(&p, to);
            }
        });
    }

    pub fn send_dtmf(&self, d: char) {
        *self.dtmf.lock().unwrap() = Some(d);
        std::thread::sleep(Duration::from_millis(60));
    }

    /// Decodes what was received since the last call.
    pub fn heard(&self) -> Vec<i16> {
        self.heard_frames().concat()
    }

    /// Decodes what was received since the last call, one frame per packet
    /// (one per mixer tick), in arrival order.
    pub fn heard_frames(&self) -> Vec<Vec<i16>> {
        let packets = std::mem::take(&mut *self.received.lock().unwrap());
        let mut dec = Decoder::new(self.kind).unwrap();
        let mut out = Vec::new();
        let mut buf = [0i16; 2880];
        let frame = (self.kind.pcm_rate() / 50) as usize;
        // Only the room's stream: a port handed out again may still get
        // another test's RTP.
        for (from, p) in packets {
            if Some(from) != self.remote_rtp || p.len() < 12 || p[1] & 0x7F != self.pt {
                continue;
            }
            let cc = (p[0] & 0x0F) as usize;
            let mut off = 12 + 4 * cc;
            if p[0] & 0x10 != 0 && p.len() >= off + 4 {
                off += 4 + 4 * u16::from_be_bytes([p[off + 2], p[off + 3]]) as usize;
            }
            if let Some(payload) = p.get(off..) {
                if let Ok(n) = dec.decode(payload, &mut buf[..frame]) {
                    out.push(buf[..n].to_vec());
                }
            }
        }
        out
    }

    pub fn bye(&mut self, room: &str) -> u16 {
        self.cseq += 1;
        self.request("BYE", room, "", None);
        self.final_response(Duration::from_secs(3))
    }

    /// re-INVITE with a new direction; returns the status (ACKed).
    pub fn reinvite(&mut self, room: &str, direction: &str) -> u16 {
        self.cseq += 1;
        let sdp = self.sdp(direction);
        self.request("INVITE", room, "", Some(&sdp));
        let st = self.final_response(Duration::from_secs(3));
        self.ack(room);
        st
    }
}

fn rtp_header(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

/// Sends a SUBSCRIBE on the UA's socket with its own Call-ID; returns the status.
pub fn subscribe(
    ua: &mut Ua,
    room: &str,
    call_id: &str,
    expires: u32,
    to_tag: Option<&str>,
    cseq: u32,
) -> u16 {
    let to = match to_tag {
        Some(t) => format!("<sip:{room}@{}>;tag={t}", ua.server),
        None => format!("<sip:{room}@{}>", ua.server),
    };
    let msg = format!(
        "SUBSCRIBE sip:{room}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKsub{cseq}{};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{}>;tag=subtag\r\n\
         To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:{}@{}>\r\nEvent: conference\r\n\
         Accept: application/conference-info+xml\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n",
        ua.server,
        ua.local(),
        free_port(),
        ua.user,
        ua.local(),
        ua.user,
        ua.local()
    );
    ua.sip.send_to(msg.as_bytes(), ua.server).unwrap();
    ua.final_response(Duration::from_secs(3))
}

/// The next NOTIFY for the subscription `call_id` (others are answered and skipped).
pub fn next_notify(ua: &mut Ua, call_id: &str) -> String {
    loop {
        let m = ua.next_request(Duration::from_secs(5)).expect("a NOTIFY");
        if m.starts_with("NOTIFY ") && header(&m, "Call-ID") == Some(call_id) {
            return m;
        }
    }
}

pub fn body(m: &str) -> &str {
    m.split("\r\n\r\n").nth(1).unwrap_or("")
}
