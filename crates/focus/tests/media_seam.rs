//! The focus's media seam, sans-IO: media control leaves the core as
//! commands and what the media server reports comes back as inputs. A leg
//! that cannot open ends its call with a BYE and a Reason; with no port
//! free a caller gets 503 with Retry-After, and the pool fills again once
//! ports free up; RTP counters keep a call alive, their silence ends it;
//! an offerless INVITE's port waits for the ACK's answer, and a bad answer
//! gives the port back.

mod common;

use std::time::{Duration, Instant};

use common::{header, message, request, sdp, sent, Edge};
use focus::{Focus, FocusConfig, Input, MediaInput};
use sip::{Message, Response};

struct Phone {
    focus: Focus,
    edge: Edge,
    now: Instant,
}

impl Phone {
    fn new() -> Self {
        let (focus, edge) = common::start(
            FocusConfig {
                entry_exit_tones: false,
                rtp_timeout: Duration::from_secs(10),
                ..FocusConfig::default()
            },
            5,
        );
        Self {
            focus,
            edge,
            now: Instant::now(),
        }
    }

    fn input(&mut self, input: Input) -> Vec<(u16, Message)> {
        self.focus.handle_input(self.now, input);
        sent(&mut self.focus, &mut self.edge, self.now)
    }

    fn wait(&mut self, d: Duration) -> Vec<(u16, Message)> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.focus.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            out.extend(self.input(Input::Timeout));
        }
        self.now = end;
        out
    }

    fn invite(&mut self, port: u16, call_id: &str, body: &str) -> Response {
        let m = request("INVITE", "alice", port, call_id, None, 1, "", body);
        let out = self.input(message(port, m));
        out.into_iter()
            .rev()
            .find_map(|(_, m)| match m {
                Message::Response(r) if r.status >= 200 => Some(r),
                _ => None,
            })
            .expect("a final response")
    }

    fn ack(&mut self, port: u16, call_id: &str, ok: &Response, body: &str) -> Vec<(u16, Message)> {
        let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
        let m = request("ACK", "alice", port, call_id, Some(&tag), 1, "", body);
        self.input(message(port, m))
    }
}

fn byes(out: &[(u16, Message)]) -> Vec<&sip::Request> {
    out.iter()
        .filter_map(|(_, m)| match m {
            Message::Request(r) if r.method == sip::Method::Bye => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn a_leg_the_media_server_cannot_open_ends_its_call() {
    let mut p = Phone::new();
    p.edge.media.joins_fail = true;
    let m = request(
        "INVITE",
        "alice",
        5080,
        "c1",
        None,
        1,
        "",
        &sdp(5081, "sendrecv"),
    );
    let out = p.input(message(5080, m));
    // Answered in the core's turn; the driver's join fails after it, the
    // failure comes back as an input and the call ends with a Reason.
    let statuses: Vec<u16> = out
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) => Some(r.status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.last(), Some(&200), "{out:#?}");
    let bye = byes(&out);
    assert_eq!(bye.len(), 1, "{out:#?}");
    let reason = bye[0].headers.get(&sip::HeaderName::REASON).unwrap();
    assert!(reason.contains("media unavailable"), "{reason}");
    assert_eq!(p.focus.call_count(), 0);
    assert_eq!(p.focus.room_size("big"), 0);
}

#[test]
fn no_free_port_is_a_503_with_retry_after_until_ports_free_up() {
    let mut p = Phone::new();
    // The pool is full at start: use it up while the media server has no
    // more ports to give.
    p.edge.media.no_ports = true;
    let mut statuses = Vec::new();
    for n in 0..12u16 {
        let port = 6000 + 2 * n;
        let r = p.invite(port, &format!("c{n}"), &sdp(port + 1, "sendrecv"));
        statuses.push(r.status);
        if r.status == 503 {
            let m = Message::Response(r);
            assert_eq!(header(&m, "Retry-After"), vec!["5"]);
            assert!(
                matches!(&m, Message::Response(r) if r.reason.contains("media port")),
                "{m:?}"
            );
        }
    }
    let answered = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(answered, 8, "the pool's ports were used: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 4);
    // Ports free up; after the back-off the next caller gets one.
    p.edge.media.no_ports = false;
    p.now += Duration::from_secs(2);
    let r = p.invite(7000, "late1", &sdp(7001, "sendrecv"));
    assert_eq!(
        r.status, 503,
        "this caller's attempt asks the driver for more"
    );
    let r = p.invite(7002, "late2", &sdp(7003, "sendrecv"));
    assert_eq!(r.status, 200);
}

#[test]
fn rtp_counters_keep_a_call_alive_and_their_silence_ends_it() {
    let mut p = Phone::new();
    let ok = p.invite(5080, "c1", &sdp(5081, "sendrecv"));
    assert_eq!(ok.status, 200);
    p.ack(5080, "c1", &ok, "");
    let leg = *p.edge.media.joined.last().unwrap();
    // Packets keep coming for 30 s: the call stays.
    for second in 1..=30u64 {
        let _ = p.wait(Duration::from_secs(1));
        let counts = vec![(leg, second * 50)];
        let out = p.input(Input::Media(MediaInput::RtpActivity(counts)));
        assert!(byes(&out).is_empty(), "at {second} s");
    }
    assert_eq!(p.focus.call_count(), 1);
    // Then they stop: the RTP timeout (10 s) ends it with a Reason.
    let out = p.wait(Duration::from_secs(12));
    let bye = byes(&out);
    // One BYE (sent again over UDP while unanswered).
    assert!(!bye.is_empty(), "{out:#?}");
    assert!(bye
        .iter()
        .all(|b| b.headers.cseq() == bye[0].headers.cseq()));
    let reason = bye[0].headers.get(&sip::HeaderName::REASON).unwrap();
    assert!(reason.contains("RTP timeout"), "{reason}");
    assert_eq!(p.focus.call_count(), 0);
    assert!(!p.edge.media.legs[&leg].open, "its leg is closed");
}

#[test]
fn an_offerless_invite_keeps_its_port_for_the_ack_and_a_bad_answer_gives_it_back() {
    let mut p = Phone::new();
    let ok = p.invite(5080, "c1", "");
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 20"));
    assert!(p.edge.media.joined.is_empty(), "no leg before the answer");
    p.ack(5080, "c1", &ok, &sdp(5081, "sendrecv"));
    assert_eq!(
        p.edge.media.joined.len(),
        1,
        "the ACK's answer opens the leg"
    );

    let ok = p.invite(5090, "c2", "");
    let out = p.ack(5090, "c2", &ok, "v=0\r\nnot sdp");
    assert_eq!(byes(&out).len(), 1, "{out:#?}");
    assert_eq!(p.edge.media.released, 1, "its port went back");
    assert_eq!(p.edge.media.joined.len(), 1);
}
