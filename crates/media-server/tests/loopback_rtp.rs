//! The media server over real loopback sockets: RTP test peers send tones
//! in real time, the mixer thread mixes, and each peer's received audio is
//! decoded and its spectrum checked.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media_server::codec::{CodecKind, Decoder, Encoder, OpusConfig};
use media_server::mixer::{ParticipantSettings, RoomSettings};
use media_server::tone::goertzel;
use media_server::{MediaConfig, MediaServer};
use tokio::net::UdpSocket;
use webrtc_util::Unmarshal;

/// Network impairments applied by a peer to what it sends (seeded).
#[derive(Clone, Copy, Default)]
struct Netem {
    loss_pct: u32,
    dup_pct: u32,
    reorder_pct: u32,
    jitter_ms: u64,
    seed: u64,
}

struct Peer {
    kind: CodecKind,
    freq: f64,
    sock: Arc<UdpSocket>,
    server: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    id: media_server::mixer::ParticipantId,
}

impl Peer {
    async fn join(
        ms: &MediaServer,
        room: media_server::mixer::RoomId,
        kind: CodecKind,
        freq: f64,
    ) -> Self {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let mut s = ParticipantSettings::new(kind);
        s.remote = Some(sock.local_addr().unwrap());
        let ep = ms.add_participant(room, s, true).unwrap();
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let (rs, rr) = (sock.clone(), received.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, _)) = rs.recv_from(&mut buf).await {
                rr.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        Self {
            kind,
            freq,
            sock,
            server: ep.rtp,
            received,
            id: ep.id,
        }
    }

    /// Sends `frames` of its tone every 20 ms, impaired by `netem`.
    fn talk(&self, frames: usize, netem: Netem) -> tokio::task::JoinHandle<()> {
        let (sock, server, kind, freq) = (self.sock.clone(), self.server, self.kind, self.freq);
        tokio::spawn(async move {
            let mut enc = Encoder::new(kind, &OpusConfig::default()).unwrap();
            let rate = kind.pcm_rate();
            let len = (rate / 50) as usize;
            let mut x = netem.seed | 1;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 100) as u32
            };
            let mut held: Option<Vec<u8>> = None;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for f in 0..frames {
                tick.tick().await;
                let pcm: Vec<i16> = (0..len)
                    .map(|i| {
                        (6000.0
                            * (2.0 * std::f64::consts::PI * freq * (f * len + i) as f64
                                / rate as f64)
                                .sin()) as i16
                    })
                    .collect();
                let mut payload = [0u8; 1500];
                let n = enc.encode(&pcm, &mut payload).unwrap();
                let mut pkt = vec![0x80, kind.static_payload_type().unwrap_or(111)];
                pkt.extend_from_slice(&(f as u16).to_be_bytes());
                pkt.extend_from_slice(&((f as u32) * (kind.rtp_clock() / 50)).to_be_bytes());
                pkt.extend_from_slice(&0x5EED_0000u32.wrapping_add(freq as u32).to_be_bytes());
                pkt.extend_from_slice(&payload[..n]);
                if rnd() < netem.loss_pct {
                    continue;
                }
                if netem.jitter_ms > 0 {
                    let delay = Duration::from_millis(rnd() as u64 * netem.jitter_ms / 100);
                    let (s, p) = (sock.clone(), pkt.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = s.send_to(&p, server).await;
                    });
                    continue;
                }
                if rnd() < netem.reorder_pct && held.is_none() {
                    held = Some(pkt);
                    continue;
                }
                let _ = sock.send_to(&pkt, server).await;
                if let Some(h) = held.take() {
                    let _ = sock.send_to(&h, server).await;
                }
                if rnd() < netem.dup_pct {
                    let _ = sock.send_to(&pkt, server).await;
                }
            }
        })
    }

    /// Decodes everything received so far (and forgets it).
    fn heard(&self) -> Vec<i16> {
        let packets = std::mem::take(&mut *self.received.lock().unwrap());
        let mut dec = Decoder::new(self.kind).unwrap();
        let mut out = Vec::new();
        let mut buf = [0i16; 2880];
        let frame = (self.kind.pcm_rate() / 50) as usize;
        for raw in packets {
            let Ok(p) = rtp::packet::Packet::unmarshal(&mut &raw[..]) else {
                continue;
            };
            if let Ok(n) = dec.decode(&p.payload, &mut buf[..frame]) {
                out.extend_from_slice(&buf[..n]);
            }
        }
        out
    }
}

fn power(samples: &[i16], rate: u32, f: f64) -> f64 {
    goertzel(&samples[samples.len() / 3..], rate, f)
}

fn check(peer: &Peer, heard: &[i16], present: &[f64], absent: &[f64]) {
    assert!(
        heard.len() > 1000,
        "peer {} heard {} samples",
        peer.freq,
        heard.len()
    );
    let rate = peer.kind.pcm_rate();
    let weakest = present
        .iter()
        .map(|&f| power(heard, rate, f))
        .fold(f64::MAX, f64::min);
    assert!(
        weakest > 1000.0,
        "peer {}: present tones too weak ({weakest})",
        peer.freq
    );
    for &f in absent {
        let p = power(heard, rate, f);
        assert!(
            p * 100.0 < weakest,
            "peer {} hears {f} Hz: {p} vs {weakest}",
            peer.freq
        );
    }
}

/// Picks a port range no other test process uses at the same moment.
fn ranged_server(base: u16) -> MediaServer {
    MediaServer::start(MediaConfig {
        bind_ip: [127, 0, 0, 1].into(),
        port_min: base,
        port_max: base + 400,
        ..MediaConfig::default()
    })
    .unwrap()
}

/// As [`ranged_server`], with the mixer's sends always left to the
/// receive thread (as from a thousand participants).
fn offloading_server(base: u16) -> MediaServer {
    MediaServer::start(MediaConfig {
        bind_ip: [127, 0, 0, 1].into(),
        port_min: base,
        port_max: base + 400,
        offload_sends_from: 0,
        ..MediaConfig::default()
    })
    .unwrap()
}

/// Then again with the receive threads sending: one after the other, not
/// as a test of its own, so that no more tests share the 2 cores at once
/// (the stranger test's audio is timed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_hear_the_others_and_mute_removes_one() {
    three_peers(ranged_server(31000), false).await;
    three_peers(offloading_server(37000), true).await;
}

async fn three_peers(ms: MediaServer, offloaded: bool) {
    let room = ms.create_room(RoomSettings::default()).unwrap();
    let a = Peer::join(&ms, room, CodecKind::Pcmu, 440.0).await;
    let b = Peer::join(&ms, room, CodecKind::Pcmu, 1000.0).await;
    let c = Peer::join(&ms, room, CodecKind::Pcmu, 2200.0).await;
    let mut events = ms.subscribe();
    let talks = [
        a.talk(150, Netem::default()),
        b.talk(150, Netem::default()),
        c.talk(150, Netem::default()),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    check(&a, &a.heard(), &[1000.0, 2200.0], &[440.0]);
    check(&b, &b.heard(), &[440.0, 2200.0], &[1000.0]);
    check(&c, &c.heard(), &[440.0, 1000.0], &[2200.0]);
    ms.set_mute(a.id, true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.heard();
    c.heard();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    check(&b, &b.heard(), &[2200.0], &[440.0, 1000.0]);
    check(&c, &c.heard(), &[1000.0], &[440.0, 2200.0]);
    for t in talks {
        t.await.unwrap();
    }
    let mut started = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, media_server::mixer::MixerEvent::TalkingStarted(..)) {
            started += 1;
        }
    }
    assert!(started >= 3, "talking events: {started}");
    check_who_sent(&ms, &[&a, &b, &c], offloaded);
    for p in [&a, &b, &c] {
        ms.remove_participant(p.id).unwrap();
    }
    assert_eq!(ms.participant_count(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ms.mixed_participants(), 0);
}

/// Then again with the receive threads sending, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_g722_and_pcmu_peers_mix() {
    three_codecs(ranged_server(32000), false).await;
    three_codecs(offloading_server(37500), true).await;
}

async fn three_codecs(ms: MediaServer, offloaded: bool) {
    let room = ms.create_room(RoomSettings::default()).unwrap();
    let a = Peer::join(&ms, room, CodecKind::Opus, 440.0).await;
    let b = Peer::join(&ms, room, CodecKind::G722, 1000.0).await;
    let c = Peer::join(&ms, room, CodecKind::Pcmu, 2200.0).await;
    let talks = [
        a.talk(120, Netem::default()),
        b.talk(120, Netem::default()),
        c.talk(120, Netem::default()),
    ];
    for t in talks {
        t.await.unwrap();
    }
    check(&a, &a.heard(), &[1000.0, 2200.0], &[440.0]);
    check(&b, &b.heard(), &[440.0, 2200.0], &[1000.0]);
    check(&c, &c.heard(), &[440.0, 1000.0], &[2200.0]);
    check_who_sent(&ms, &[&a, &b, &c], offloaded);
}

/// Who sent the peers' RTP: with offloading on (from 0 participants),
/// the receive threads sent all of it (packets sent while a queue was
/// full would go from the mixer); otherwise the mixer sent all of it.
fn check_who_sent(ms: &MediaServer, peers: &[&Peer], offloaded: bool) {
    for p in peers {
        let (mixer, endpoint) = ms.stats(p.id).expect("stats");
        let sent = mixer.packets_out.load(Ordering::Relaxed);
        let by_rx = endpoint.rtp_sent_for_mixer.load(Ordering::Relaxed);
        assert!(sent > 50, "{sent} packets sent");
        if offloaded {
            // A packet or two may wait in the queue at this moment.
            assert!(
                by_rx + 2 >= sent,
                "{by_rx} of {sent} sent by the receive threads"
            );
        } else {
            assert_eq!(by_rx, 0, "the mixer sends itself below the threshold");
        }
    }
}

/// Loss, duplication, reordering and jitter on one talker: the listener's
/// 1 kHz energy stays continuous, and the jitter buffer stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impaired_network_keeps_speech_continuous_and_delay_bounded() {
    let ms = ranged_server(33000);
    let room = ms.create_room(RoomSettings::default()).unwrap();
    for (kind, netem) in [
        (
            CodecKind::Pcmu,
            Netem {
                loss_pct: 5,
                dup_pct: 5,
                reorder_pct: 10,
                jitter_ms: 0,
                seed: 7,
            },
        ),
        (
            CodecKind::Opus,
            Netem {
                loss_pct: 5,
                dup_pct: 0,
                reorder_pct: 0,
                jitter_ms: 40,
                seed: 11,
            },
        ),
    ] {
        let talker = Peer::join(&ms, room, kind, 1000.0).await;
        let listener = Peer::join(&ms, room, CodecKind::Pcmu, 0.0).await;
        talker.talk(200, netem).await.unwrap();
        let heard = listener.heard();
        let frames: Vec<&[i16]> = heard.chunks(160).collect();
        let steady = &frames[frames.len() / 4..frames.len() * 9 / 10];
        let voiced = steady
            .iter()
            .filter(|f| goertzel(f, 8000, 1000.0) > 1e4)
            .count();
        assert!(
            voiced * 100 >= steady.len() * 90,
            "{kind:?}: {voiced} of {} frames carry the tone",
            steady.len()
        );
        let (stats, _) = ms.stats(talker.id).unwrap();
        let delay = stats
            .jitter_delay_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(delay <= 220, "{kind:?}: jitter delay {delay} ms");
        ms.remove_participant(talker.id).unwrap();
        ms.remove_participant(listener.id).unwrap();
    }
}

/// Garbage on the RTP port is counted and dropped; the room keeps mixing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_rtp_port_is_counted_and_dropped() {
    let ms = ranged_server(34000);
    let room = ms.create_room(RoomSettings::default()).unwrap();
    let a = Peer::join(&ms, room, CodecKind::Pcmu, 440.0).await;
    let b = Peer::join(&ms, room, CodecKind::Pcmu, 1000.0).await;
    let talks = [a.talk(100, Netem::default()), b.talk(100, Netem::default())];
    let junk_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut x: u32 = 99;
    for i in 0..300u32 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let pkt: Vec<u8> = match i % 5 {
            0 => (0..(x % 300) as usize)
                .map(|j| (x >> (j % 24)) as u8)
                .collect(),
            1 => vec![0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9], // version 1
            2 => vec![0x80, 0, 0],                                  // truncated
            3 => {
                let mut p = vec![0x8F, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
                p.extend([0u8; 8]);
                p
            } // 15 CSRCs, too short
            _ => {
                let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
                p.extend(vec![0u8; 1200]);
                p
            } // oversized
        };
        let _ = junk_sock.send_to(&pkt, a.server).await;
        // Paced, so the kernel's socket buffer does not drop the burst.
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for t in talks {
        t.await.unwrap();
    }
    let (_, ep) = ms.stats(a.id).unwrap();
    let malformed = ep.malformed.load(std::sync::atomic::Ordering::Relaxed);
    let oversized = ep.oversized.load(std::sync::atomic::Ordering::Relaxed);
    assert!(malformed >= 150, "malformed counted: {malformed}");
    assert!(oversized >= 50, "oversized counted: {oversized}");
    check(&b, &b.heard(), &[440.0], &[1000.0]);
}

/// RMS of what is left after the best-fitting `f` sinusoid is taken out,
/// in dB of full scale: the noise a listener hears beside the tone.
fn residual_dbfs(samples: &[i16], rate: u32, f: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / rate as f64;
    let (mut ss, mut cc, mut sc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &x) in samples.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let x = x as f64;
        (ss, cc, sc, xs, xc) = (ss + s * s, cc + c * c, sc + s * c, xs + x * s, xc + x * c);
    }
    let det = ss * cc - sc * sc;
    let a = (xs * cc - xc * sc) / det;
    let b = (xc * ss - xs * sc) / det;
    let err: f64 = samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let (s, c) = (w * i as f64).sin_cos();
            (x as f64 - a * s - b * c).powi(2)
        })
        .sum();
    20.0 * ((err / samples.len() as f64).sqrt() / 32768.0)
        .max(1e-9)
        .log10()
}

/// 100 well-formed RTP packets back to back every 100 ms from a stranger to
/// one participant's port: they are dropped before they take a slot in the
/// mixer's ring, so the participant's own stream is heard as clean as
/// without them and its tone does not leak back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_a_stranger_does_not_touch_the_stream() {
    let ms = ranged_server(35000);
    let room = ms.create_room(RoomSettings::default()).unwrap();
    let a = Peer::join(&ms, room, CodecKind::Pcmu, 440.0).await;
    let b = Peer::join(&ms, room, CodecKind::Pcmu, 1000.0).await;
    let talks = [a.talk(250, Netem::default()), b.talk(250, Netem::default())];
    // Settle, then measure without the stranger.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = (a.heard(), b.heard());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (quiet_b, quiet_a) = (b.heard(), a.heard());
    // The stranger: 2200 Hz tone packets with their own SSRC and sequence.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut enc = Encoder::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap();
    let tone: Vec<i16> = (0..160)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 2200.0 * i as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut payload = [0u8; 160];
    enc.encode(&tone, &mut payload).unwrap();
    let mut seq = 0u16;
    for _ in 0..15 {
        for _ in 0..100 {
            seq = seq.wrapping_add(1);
            let mut pkt = vec![0x80, 0];
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
            pkt.extend_from_slice(&0xBAD0_0001u32.to_be_bytes());
            pkt.extend_from_slice(&payload);
            let _ = stranger.send_to(&pkt, a.server).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (loud_b, loud_a) = (b.heard(), a.heard());
    for t in talks {
        t.await.unwrap();
    }
    let (mixer, ep) = ms.stats(a.id).unwrap();
    let stray = mixer
        .stray_packets
        .load(std::sync::atomic::Ordering::Relaxed);
    let ring_full = ep.ring_full.load(std::sync::atomic::Ordering::Relaxed);
    let (before, during) = (
        residual_dbfs(&quiet_b, 8000, 440.0),
        residual_dbfs(&loud_b, 8000, 440.0),
    );
    eprintln!(
        "listener's residual noise: {before:.1} dBFS without the stranger, {during:.1} dBFS with it; \
         {stray} stray packets dropped, ring full {ring_full}"
    );
    assert!(stray >= 1000, "the burst is counted: {stray}");
    assert_eq!(ring_full, 0, "no genuine packet was pushed out");
    assert!(during < before + 3.0, "{before:.1} → {during:.1} dBFS");
    check(&b, &loud_b, &[440.0], &[1000.0, 2200.0]);
    check(&a, &loud_a, &[1000.0], &[440.0, 2200.0]);
    check(&a, &quiet_a, &[1000.0], &[440.0]);
}

/// RTCP on its own port: the phone's receiver report is read (its block
/// about our stream is kept), our reports go back to where RTCP came from,
/// and leaving sends a BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_on_its_own_port_goes_both_ways_and_ends_with_a_bye() {
    use media_server::rtcp::{self, ReportBlock};
    use std::sync::atomic::Ordering;
    let ms = MediaServer::start(MediaConfig {
        bind_ip: [127, 0, 0, 1].into(),
        port_min: 36000,
        port_max: 36400,
        rtcp_interval: Duration::from_millis(300),
        ..MediaConfig::default()
    })
    .unwrap();
    let room = ms.create_room(RoomSettings::default()).unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtcp_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut s = ParticipantSettings::new(CodecKind::Pcmu);
    s.remote = Some(rtp.local_addr().unwrap());
    let ep = ms.add_participant(room, s, false).unwrap();
    let server_rtcp = ep.rtcp.expect("a separate RTCP port");
    // A second of silence from the phone; the first packet back names our SSRC.
    let mut ours = None;
    let mut buf = [0u8; 2048];
    for seq in 0..50u16 {
        let mut pkt = vec![0x80, 0];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
        pkt.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        pkt.extend_from_slice(&[0xFF; 160]);
        rtp.send_to(&pkt, ep.rtp).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(20), rtp.recv_from(&mut buf)).await
        {
            if n >= 12 && ours.is_none() {
                ours = Some(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
            }
        }
    }
    let ours = ours.expect("the mixer sent RTP");
    let block = ReportBlock {
        ssrc: ours,
        fraction_lost: 64,
        ..ReportBlock::default()
    };
    let rr = rtcp::receiver_report(0x1234_5678, Some(&block));
    rtcp_sock.send_to(&rr, server_rtcp).await.unwrap();
    // Our reports come to the port the phone's RTCP came from.
    let mut report = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while report.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), rtcp_sock.recv_from(&mut buf)).await
        {
            report = rtcp::parse(&buf[..n]);
        }
    }
    let report = report.expect("a report from the server");
    assert_eq!(report.sender_reports, 1, "we send, so a sender report");
    let seen = report.blocks.iter().find(|b| b.ssrc == 0x1234_5678);
    assert!(seen.is_some_and(|b| b.highest_seq >= 40), "{report:?}");
    let (_, stats) = ms.stats(ep.id).unwrap();
    assert!(stats.rtcp_in.load(Ordering::Relaxed) >= 1);
    assert_eq!(stats.peer_fraction_lost.load(Ordering::Relaxed), 64);
    ms.remove_participant(ep.id).unwrap();
    let mut bye = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !bye && tokio::time::Instant::now() < deadline {
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), rtcp_sock.recv_from(&mut buf)).await
        {
            bye = rtcp::parse(&buf[..n]).is_some_and(|i| i.bye);
        }
    }
    assert!(bye, "leaving sends a BYE");
}
