//! The event package at scale, in memory on a fake clock: 1,000 subscribers
//! on one room while 100 participants join, some hold, and all leave. Every
//! subscriber applies each NOTIFY it gets (versions must follow with no
//! gap) and ends with the same users as a fresh full fetch. Also prints the
//! time the core takes to produce one change's NOTIFYs for 10, 100 and
//! 1,000 subscribers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conference_info::ConferenceInfo;
use focus::{Focus, FocusConfig, Input};
use sip::{parse_message, Message, ParseLimits, Response};

mod common;

use common::{message, request, sdp, Edge};

struct World {
    focus: Focus,
    edge: Edge,
    now: Instant,
    /// Subscriber state by subscription Call-ID.
    states: HashMap<String, Option<ConferenceInfo>>,
    /// Our To tag per call (from the 200).
    call_tags: HashMap<String, String>,
    notifies: u64,
}

impl World {
    /// Delivers everything the focus sends: answers NOTIFYs with 200 and applies their bodies.
    fn pump(&mut self) {
        let mut replies = Vec::new();
        for t in self.edge.drain(&mut self.focus, self.now) {
            match parse_message(&t.data, &ParseLimits::default()).unwrap() {
                Message::Request(r) if r.method == sip::Method::Notify => {
                    self.notifies += 1;
                    let call_id = r.headers.call_id().unwrap().to_owned();
                    if !r.body.is_empty() {
                        let doc =
                            ConferenceInfo::parse(std::str::from_utf8(&r.body).unwrap()).unwrap();
                        let st = self.states.entry(call_id.clone()).or_insert(None);
                        match st {
                            None => *st = Some(doc),
                            Some(s) => s.apply(&doc).unwrap_or_else(|e| panic!("{call_id}: {e}")),
                        }
                    }
                    replies.push((t.peer, Response::to_request(&r, 200, "OK", None)));
                }
                Message::Response(resp)
                    if resp.status == 200
                        && resp
                            .headers
                            .cseq()
                            .is_some_and(|c| c.method == sip::Method::Invite) =>
                {
                    let tag = resp.headers.to().unwrap().tag().unwrap().to_owned();
                    self.call_tags
                        .insert(resp.headers.call_id().unwrap().to_owned(), tag);
                }
                _ => {}
            }
        }
        for (p, r) in replies {
            let message = Ok(Message::Response(r));
            self.focus
                .handle_input(self.now, Input::Message { peer: p, message });
        }
    }

    fn step(&mut self, d: Duration) {
        self.now += d;
        self.focus.handle_input(self.now, Input::Timeout);
        self.pump();
    }

    fn send(&mut self, port: u16, m: Message) {
        self.focus.handle_input(self.now, message(port, m));
        self.pump();
    }
}

fn world(min_interval: Duration) -> World {
    let config = FocusConfig {
        rooms: vec!["big".into()],
        watchers: vec!["*".into()],
        max_room_size: 1000,
        max_calls_per_source: 100_000,
        notify_min_interval: min_interval,
        entry_exit_tones: false,
        ..FocusConfig::default()
    };
    let (focus, edge) = common::start(config, 7);
    World {
        focus,
        edge,
        now: Instant::now(),
        states: HashMap::new(),
        call_tags: HashMap::new(),
        notifies: 0,
    }
}

fn subscribe(w: &mut World, i: u32) {
    let m = request(
        "SUBSCRIBE",
        &format!("watcher{i}"),
        30000 + i as u16,
        &format!("sub{i}"),
        None,
        1,
        "Event: conference\r\nExpires: 3600\r\n",
        "",
    );
    w.send(30000 + i as u16, m);
}

#[test]
fn thousand_subscribers_end_with_the_true_state() {
    let mut w = world(Duration::from_millis(200));
    for i in 0..1000 {
        subscribe(&mut w, i);
    }
    assert_eq!(w.focus.event_stats().subscriptions, 1000);
    // 100 participants join, every third holds, then all leave; 10 ms apart.
    for p in 0..100u32 {
        let port = 40000 + p as u16;
        w.send(
            port,
            request(
                "INVITE",
                &format!("p{p}"),
                port,
                &format!("call{p}"),
                None,
                1,
                "",
                &sdp(port, "sendrecv"),
            ),
        );
        w.step(Duration::from_millis(10));
    }
    for p in (0..100u32).step_by(3) {
        let port = 40000 + p as u16;
        let tag = w.call_tags[&format!("call{p}")].clone();
        w.send(
            port,
            request(
                "INVITE",
                &format!("p{p}"),
                port,
                &format!("call{p}"),
                Some(&tag),
                2,
                "",
                &sdp(port, "sendonly"),
            ),
        );
        w.step(Duration::from_millis(10));
    }
    for p in (0..100u32).filter(|p| p % 2 == 0) {
        let port = 40000 + p as u16;
        let tag = w.call_tags[&format!("call{p}")].clone();
        w.send(
            port,
            request(
                "BYE",
                &format!("p{p}"),
                port,
                &format!("call{p}"),
                Some(&tag),
                3,
                "",
                "",
            ),
        );
        w.step(Duration::from_millis(10));
    }
    // Let coalesced NOTIFYs go out.
    for _ in 0..10 {
        w.step(Duration::from_millis(100));
    }
    assert_eq!(w.focus.call_count(), 50);
    // A fresh fetch is the truth.
    w.send(
        39999,
        request(
            "SUBSCRIBE",
            "checker",
            39999,
            "fresh",
            None,
            1,
            "Event: conference\r\nExpires: 0\r\n",
            "",
        ),
    );
    let truth = w.states.remove("fresh").flatten().expect("fetched state");
    // User order carries no meaning (RFC 4575 keys users by entity).
    let sorted = |mut u: Vec<conference_info::User>| {
        u.sort_by(|a, b| a.entity.cmp(&b.entity));
        u
    };
    let truth_users = sorted(truth.users.clone().unwrap().users);
    assert_eq!(truth_users.len(), 50);
    let diverged = (0..1000)
        .filter(|i| {
            let st = w.states[&format!("sub{i}")].as_ref().expect("a state");
            sorted(st.users.clone().unwrap().users) != truth_users
        })
        .count();
    assert_eq!(
        diverged, 0,
        "subscribers whose state differs from a fresh fetch"
    );
    eprintln!(
        "NOTIFYs sent for 1,000 subscribers and 100 joins, 34 holds, 50 leaves: {}",
        w.notifies
    );
}

/// Answer first, then fan out (issue 11, defect 3): the INVITE's 200 leaves
/// the core before any NOTIFY about the join is built; the driver sends it,
/// then runs the fan-out (also due at once as a timeout, for drivers that
/// only know timeouts). Prints both times.
#[test]
fn the_200_leaves_before_the_notifies_for_10_100_1000_subscribers() {
    for n in [10u32, 100, 1000] {
        let mut w = world(Duration::ZERO);
        for i in 0..n {
            subscribe(&mut w, i);
        }
        let before = w.notifies;
        let port = 45000;
        let invite = request(
            "INVITE",
            "joiner",
            port,
            "join",
            None,
            1,
            "",
            &sdp(port, "sendrecv"),
        );
        let start = Instant::now();
        w.focus.handle_input(w.now, message(port, invite));
        let out: Vec<Message> = w
            .edge
            .drain(&mut w.focus, w.now)
            .iter()
            .map(|t| parse_message(&t.data, &ParseLimits::default()).unwrap())
            .collect();
        let answered = start.elapsed();
        assert!(
            out.iter()
                .any(|m| matches!(m, Message::Response(r) if r.status == 200)),
            "the INVITE is answered"
        );
        assert!(
            !out.iter()
                .any(|m| matches!(m, Message::Request(r) if r.method == sip::Method::Notify)),
            "no NOTIFY in the same turn as the 200"
        );
        let due = w.focus.poll_timeout().expect("the fan-out is due");
        assert!(due <= w.now, "due at once");
        w.focus.handle_input(w.now, Input::Timeout);
        w.pump();
        let fanned = start.elapsed();
        assert_eq!(w.notifies - before, n as u64, "one NOTIFY per subscriber");
        eprintln!(
            "{n} subscribers: INVITE -> 200 out of the core in {:.2} ms; join -> last NOTIFY in {:.2} ms ({:.0} NOTIFYs/s)",
            answered.as_secs_f64() * 1000.0,
            fanned.as_secs_f64() * 1000.0,
            n as f64 / (fanned - answered).as_secs_f64()
        );
    }
}
