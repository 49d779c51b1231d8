//! Moderation in the sans-IO focus, in memory on a fake clock: PIN entry
//! by DTMF (the PIN, the moderator PIN, the time limit), floor control
//! first-come with `*5`, and what the mixer is told for each call (muted,
//! deaf, prompt tones), plus the room events watchers get.

mod common;

use std::time::{Duration, Instant};

use common::{message, request, sdp, Edge, Leg};
use focus::{
    FloorAction, FloorPolicy, Focus, FocusCommand, FocusConfig, Input, LegId, MediaInput,
    ParticipantUpdate, Role, RoomEventKind, RoomPolicy,
};
use media_server::mixer::TonePattern;
use sip::{parse_message, Message, ParseLimits};

struct World {
    focus: Focus,
    now: Instant,
    edge: Edge,
    /// Requests the focus sent (BYEs), as text.
    sent: Vec<String>,
}

impl World {
    fn new(policy: RoomPolicy) -> Self {
        let config = FocusConfig {
            entry_exit_tones: false,
            auto_create: false,
            // Room for the 1,000-call test; every call here comes from 127.0.0.1.
            max_room_size: 1000,
            max_calls_per_source: 1000,
            ..FocusConfig::default()
        };
        let (focus, edge) = common::start(config, 3);
        let mut w = Self {
            focus,
            now: Instant::now(),
            edge,
            sent: Vec::new(),
        };
        w.command(FocusCommand::UpsertRoom(policy));
        w
    }

    fn command(&mut self, c: FocusCommand) {
        self.focus.handle_input(self.now, Input::Command(c));
        self.pump();
    }

    fn timeout(&mut self) {
        self.focus.handle_input(self.now, Input::Timeout);
        self.pump();
    }

    fn pump(&mut self) {
        for t in self.edge.drain(&mut self.focus, self.now) {
            if let Ok(Message::Request(_)) = parse_message(&t.data, &ParseLimits::default()) {
                self.sent
                    .push(String::from_utf8_lossy(&t.data).into_owned());
            }
        }
    }

    /// Calls in; returns the new leg.
    fn call(&mut self, n: u16) -> LegId {
        let port = 40000 + n;
        let m = request(
            "INVITE",
            &format!("user{n}"),
            port,
            &format!("c{n}"),
            None,
            1,
            "",
            &sdp(port, "sendrecv"),
        );
        self.focus.handle_input(self.now, message(port, m));
        self.pump();
        *self.edge.media.joined.last().unwrap()
    }

    fn keys(&mut self, leg: LegId, digits: &str) {
        for digit in digits.chars() {
            let input = Input::Media(MediaInput::Dtmf { leg, digit });
            self.focus.handle_input(self.now, input);
        }
        self.pump();
    }

    /// What the mixer has been told for a leg, once the focus's pending
    /// commands reached it.
    fn leg(&mut self, leg: LegId) -> Leg {
        self.pump();
        self.edge.media.legs[&leg].clone()
    }

    fn id_of(&self, user: &str) -> String {
        self.focus
            .participants("big")
            .unwrap()
            .into_iter()
            .find(|p| p.uri.contains(user))
            .unwrap()
            .id
    }

    fn events(&mut self) -> Vec<RoomEventKind> {
        self.pump();
        self.edge.events.drain(..).map(|e| e.kind).collect()
    }
}

/// user1's conference subscription and the document it has built.
struct Watcher(Option<conference_info::ConferenceInfo>);

impl Watcher {
    fn subscribe(w: &mut World) -> Self {
        let sub = request(
            "SUBSCRIBE",
            "user1",
            40001,
            "s1",
            None,
            1,
            "Event: conference\r\nExpires: 3600\r\n",
            "",
        );
        w.focus.handle_input(w.now, message(40001, sub));
        Self(None)
    }

    /// Lets the fan-out and the NOTIFY interval pass, answering each NOTIFY
    /// as it comes (so that none is sent again) and applying its document.
    fn follow(&mut self, w: &mut World) -> &conference_info::ConferenceInfo {
        for turn in 0..2 {
            if turn == 1 {
                w.now += Duration::from_secs(2);
                w.focus.handle_input(w.now, Input::Timeout);
            }
            w.pump();
            let notifies: Vec<String> = w
                .sent
                .drain(..)
                .filter(|m| m.starts_with("NOTIFY "))
                .collect();
            for n in notifies {
                if let Message::Request(req) = common::parse(&n) {
                    let ok = sip::Response::to_request(&req, 200, "OK", None);
                    let reply = message(40001, Message::Response(ok));
                    w.focus.handle_input(w.now, reply);
                }
                let body = &n[n.find("\r\n\r\n").unwrap() + 4..];
                let update = conference_info::ConferenceInfo::parse(body).unwrap();
                match self.0.as_mut() {
                    Some(d) => d.apply(&update).unwrap(),
                    None => self.0 = Some(update),
                }
            }
        }
        self.0.as_ref().expect("a document")
    }
}

fn policy() -> RoomPolicy {
    RoomPolicy {
        name: "big".into(),
        pin: Some("1234".into()),
        moderator_pin: Some("9999".into()),
        floor: FloorPolicy::FirstCome,
        talkers_mixed: Some(2),
        ..RoomPolicy::default()
    }
}

#[test]
fn pin_entry_roles_and_first_come_floor() {
    let mut w = World::new(policy());
    let a = w.call(1);
    assert_eq!(
        w.edge.media.talkers,
        vec![Some(2)],
        "the room mixes the policy's talkers"
    );
    // At the prompt: out of the mix, hearing only the prompt.
    let leg = w.leg(a);
    assert!(leg.muted && leg.deaf, "{leg:?}");
    assert_eq!(leg.tones, vec![TonePattern::pin_prompt()]);
    assert_eq!(w.focus.participants("big").unwrap()[0].status, "pending");
    match w.events().as_slice() {
        [RoomEventKind::Policy(_), RoomEventKind::Joined(p)] => assert_eq!(p.status, "pending"),
        other => panic!("{other:?}"),
    }

    // A wrong PIN buzzes and asks again; `*` starts over; then the right one.
    w.keys(a, "1111#");
    assert_eq!(w.leg(a).tones.last(), Some(&TonePattern::wrong_pin()));
    w.keys(a, "12*1234#");
    let p = &w.focus.participants("big").unwrap()[0];
    assert_eq!(
        (p.role, p.status.as_str()),
        (Role::Participant, "muted-via-focus")
    );
    let leg = w.leg(a);
    assert!(
        !leg.deaf && leg.muted,
        "in, hears the room, not heard without the floor: {leg:?}"
    );

    // The moderator PIN: heard without the floor.
    let b = w.call(2);
    w.keys(b, "9999#");
    let leg = w.leg(b);
    assert!(!leg.muted && !leg.deaf, "{leg:?}");
    assert_eq!(
        w.focus
            .participants("big")
            .unwrap()
            .iter()
            .find(|p| p.uri.contains("user2"))
            .unwrap()
            .role,
        Role::Moderator
    );

    // *5: A asks for a free floor and gets it (first-come); C queues.
    w.keys(a, "*5");
    assert!(!w.leg(a).muted);
    let c = w.call(3);
    w.keys(c, "1234#*5");
    let floor = w.focus.floor_info("big");
    assert_eq!(floor.holder, Some(w.id_of("user1")));
    assert_eq!(floor.queue, vec![w.id_of("user3")]);
    assert!(w.leg(c).muted);
    // A gives it back with *5: C, first in line, gets it.
    w.events();
    w.keys(a, "*5");
    assert!(w.leg(a).muted && !w.leg(c).muted);
    let evs = w.events();
    assert!(
        evs.iter()
            .any(|e| matches!(e, RoomEventKind::Floor(f) if f.holder == Some(w.id_of("user3")))),
        "{evs:?}"
    );
    // C leaves: the floor is free again.
    let c_id = w.id_of("user3");
    w.focus.remove(w.now, "big", &c_id);
    w.pump();
    assert_eq!(w.focus.floor_info("big").holder, None);
    assert!(w
        .sent
        .iter()
        .any(|m| m.starts_with("BYE ") && m.contains("removed by a moderator")));

    // A moderator's grant and deny over the API.
    let a_id = w.id_of("user1");
    w.focus
        .floor_action(w.now, "big", &a_id, FloorAction::Grant)
        .unwrap();
    assert!(!w.leg(a).muted);
    w.focus
        .floor_action(w.now, "big", &a_id, FloorAction::Deny)
        .unwrap();
    assert!(w.leg(a).muted);
    assert!(w
        .focus
        .floor_action(w.now, "big", "nobody", FloorAction::Request)
        .is_err());
    // A new talkers_mixed reaches the open room.
    let mut changed = policy();
    changed.talkers_mixed = Some(4);
    w.command(FocusCommand::UpsertRoom(changed));
    assert_eq!(w.edge.media.talkers.last(), Some(&Some(4)));
}

#[test]
fn no_pin_in_time_or_three_wrong_pins_end_the_call_with_a_reason() {
    let mut w = World::new(policy());
    let a = w.call(1);
    let b = w.call(2);
    w.keys(b, "0000#1111#");
    assert!(
        w.sent.iter().all(|m| !m.starts_with("BYE ")),
        "two wrong are not yet three"
    );
    w.keys(b, "2222#");
    let bye = w
        .sent
        .iter()
        .find(|m| m.starts_with("BYE "))
        .expect("BYE after three wrong PINs");
    assert!(
        bye.contains("Reason: SIP;cause=403;text=\"wrong PIN\""),
        "{bye}"
    );
    assert!(!w.leg(b).open);
    w.sent.clear();
    w.now += Duration::from_secs(29);
    w.timeout();
    let bye_to_a = |m: &String| m.starts_with("BYE ") && m.contains("Call-ID: c1\r\n");
    assert!(!w.sent.iter().any(bye_to_a), "29 s is still in time");
    w.now += Duration::from_secs(2);
    w.timeout();
    let bye = w
        .sent
        .iter()
        .find(|m| bye_to_a(m))
        .expect("BYE when no PIN came");
    assert!(bye.contains("no PIN entered"), "{bye}");
    assert!(!w.leg(a).open);
}

#[test]
fn moderator_updates_and_mute_all_spare_moderators() {
    let mut w = World::new(RoomPolicy {
        name: "big".into(),
        ..RoomPolicy::default()
    });
    let a = w.call(1);
    let b = w.call(2);
    let (a_id, b_id) = (w.id_of("user1"), w.id_of("user2"));
    let upd = |role, deaf, gain| ParticipantUpdate {
        role,
        deaf,
        output_gain_db: gain,
        ..ParticipantUpdate::default()
    };
    let p = w
        .focus
        .update_participant(
            w.now,
            "big",
            &a_id,
            upd(Some(Role::Moderator), None, Some(-6.0)),
        )
        .unwrap();
    assert_eq!((p.role, p.output_gain_db), (Role::Moderator, -6.0));
    assert_eq!(w.leg(a).gain, (0.0, -6.0));
    w.focus
        .update_participant(w.now, "big", &b_id, upd(None, Some(true), Some(99.0)))
        .unwrap();
    let leg = w.leg(b);
    assert!(leg.deaf && leg.gain.1 == 24.0, "gain is clamped: {leg:?}");
    assert_eq!(w.focus.mute_all(w.now, "big", true), Some(1));
    assert!(!w.leg(a).muted && w.leg(b).muted);
    w.focus
        .update_participant(w.now, "big", &b_id, upd(Some(Role::Listener), None, None))
        .unwrap();
    assert_eq!(w.focus.mute_all(w.now, "big", false), Some(1));
    assert!(w.leg(b).muted, "a listener stays out of the mix");
    assert_eq!(w.focus.mute_all(w.now, "nosuch", true), None);
    assert!(w
        .focus
        .update_participant(w.now, "big", "nobody", upd(None, None, None))
        .is_none());
}

#[test]
fn a_room_that_starts_with_its_moderator_holds_callers_until_one_is_in() {
    let mut w = World::new(RoomPolicy {
        name: "big".into(),
        wait_for_moderator: true,
        ..RoomPolicy::default()
    });
    let a = w.call(1);
    let b = w.call(2);
    for leg in [a, b] {
        let l = w.leg(leg);
        assert!(
            l.muted && l.deaf && l.tones == vec![TonePattern::waiting()],
            "{l:?}"
        );
    }
    assert!(w
        .focus
        .participants("big")
        .unwrap()
        .iter()
        .all(|p| p.status == "pending"));
    // B is made a moderator: the room starts for everyone.
    let b_id = w.id_of("user2");
    let moderator = ParticipantUpdate {
        role: Some(Role::Moderator),
        ..ParticipantUpdate::default()
    };
    w.focus.update_participant(w.now, "big", &b_id, moderator);
    for leg in [a, b] {
        let l = w.leg(leg);
        assert!(!l.muted && !l.deaf, "{l:?}");
    }
    assert!(w
        .focus
        .participants("big")
        .unwrap()
        .iter()
        .all(|p| p.status == "connected"));
    // Later callers come straight in.
    let c = w.call(3);
    assert!(!w.leg(c).muted && w.leg(c).tones.is_empty());
    // A room whose policy stops waiting lets its waiting callers in.
    let mut w = World::new(RoomPolicy {
        name: "big".into(),
        wait_for_moderator: true,
        ..RoomPolicy::default()
    });
    let a = w.call(1);
    assert!(w.leg(a).muted);
    w.command(FocusCommand::UpsertRoom(RoomPolicy {
        name: "big".into(),
        ..RoomPolicy::default()
    }));
    assert!(!w.leg(a).muted && !w.leg(a).deaf);
}

/// Issue 11, defect 2: "mute all" in a room of 1,000 through a mixer
/// command ring of 1,024 slots that other rooms already half fill. Before,
/// each call's change was three commands, errors were dropped, and the
/// calls past the ring's room stayed audible while NOTIFYs and the API
/// said muted. Now only what changed is sent (one command per call), and
/// what the ring refuses is retried about a tick later until it is taken.
#[test]
fn mute_all_in_a_room_of_1000_reaches_every_leg_through_a_bounded_ring() {
    let mut w = World::new(RoomPolicy {
        name: "big".into(),
        max_participants: Some(1000),
        ..RoomPolicy::default()
    });
    let legs: Vec<LegId> = (0..1000).map(|n| w.call(n)).collect();
    let ring = &mut w.edge.media.ring;
    ring.capacity = Some(1024);
    ring.queued = 600;
    let taken = ring.taken;
    assert_eq!(w.focus.mute_all(w.now, "big", true), Some(1000));
    w.pump();
    let refused = w.edge.media.ring.refused;
    assert!(refused > 0, "the ring was full for some");
    let mut ticks = 0;
    while let Some(at) = w.focus.poll_timeout() {
        if at > w.now + Duration::from_millis(20) || ticks == 10 {
            break;
        }
        w.edge.media.ring.tick();
        w.now = at.max(w.now);
        w.timeout();
        ticks += 1;
    }
    let unmuted = legs.iter().filter(|&&l| !w.leg(l).muted).count();
    assert_eq!(
        unmuted, 0,
        "every leg is muted in the mixer ({ticks} ticks)"
    );
    let r = &w.edge.media.ring;
    assert_eq!(
        r.taken - taken,
        1000,
        "one command per call: only the mute changed"
    );
    eprintln!(
        "mute-all of 1,000: {refused} refused at first, all taken after {ticks} retry tick(s)"
    );
}

#[test]
fn raised_hands_in_order_by_key_and_api_in_events_and_documents() {
    let mut w = World::new(RoomPolicy {
        name: "big".into(),
        ..Default::default()
    });
    let a = w.call(1);
    let b = w.call(2);
    let _c = w.call(3);
    // user1 watches the room; its document is kept up to date from the
    // full first NOTIFY and the partial ones after it.
    let mut doc = Watcher::subscribe(&mut w);
    let mut step =
        |w: &mut World| focus::raised_hands_in(doc.follow(w)).expect("in every document");
    assert_eq!(step(&mut w), [], "no hand is up at first");
    w.events();

    // B raises first with *9, then C over the API, then A; B again keeps its place.
    let (a_id, b_id, c_id) = (w.id_of("user1"), w.id_of("user2"), w.id_of("user3"));
    w.keys(b, "*9");
    w.focus
        .hand_action(
            w.now,
            "big",
            focus::HandAction::Raise {
                participant: c_id.clone(),
            },
        )
        .unwrap();
    w.keys(a, "*9");
    let raised = w
        .focus
        .hand_action(
            w.now,
            "big",
            focus::HandAction::Raise {
                participant: b_id.clone(),
            },
        )
        .unwrap();
    assert_eq!(raised, [b_id.clone(), c_id.clone(), a_id.clone()]);
    let lines: Vec<Vec<String>> = w
        .events()
        .into_iter()
        .filter_map(|e| match e {
            RoomEventKind::Hands(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines,
        [
            vec![b_id.clone()],
            vec![b_id.clone(), c_id.clone()],
            vec![b_id.clone(), c_id.clone(), a_id.clone()],
        ],
        "each change once, as the whole line; raising twice is no change"
    );
    let user = |n: u32| format!("sip:user{n}@example.com");
    assert_eq!(
        step(&mut w),
        [
            (user(2), b_id.clone()),
            (user(3), c_id.clone()),
            (user(1), a_id.clone())
        ]
    );

    // B lowers its own with *9 again; a moderator lowers A's.
    w.keys(b, "*9");
    w.focus
        .hand_action(
            w.now,
            "big",
            focus::HandAction::Lower {
                participant: a_id.clone(),
            },
        )
        .unwrap();
    assert_eq!(step(&mut w), [(user(3), c_id.clone())]);
    assert_eq!(w.focus.raised_hands("big"), Some(vec![c_id.clone()]));

    // C leaves with its hand up: it goes down with it.
    w.keys(a, "*9");
    w.focus.remove(w.now, "big", &c_id);
    w.pump();
    assert_eq!(step(&mut w), [(user(1), a_id.clone())]);
    // All hands down, and unknown rooms and participants are errors.
    assert_eq!(
        w.focus
            .hand_action(w.now, "big", focus::HandAction::LowerAll)
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(step(&mut w), []);
    assert_eq!(
        w.focus
            .hand_action(w.now, "nope", focus::HandAction::LowerAll),
        Err(focus::ControlError::NoRoom)
    );
    assert_eq!(
        w.focus.hand_action(
            w.now,
            "big",
            focus::HandAction::Raise {
                participant: "nobody".into()
            }
        ),
        Err(focus::ControlError::NoParticipant)
    );
}

/// Recording: only a live room, once at a time; everyone hears the start
/// and stop tones (even with chimes off); the mixer gets the tap and the
/// stop; watchers and subscribers see it; a room whose policy records from
/// the start asks for it when it opens, and its last call ending ends it.
#[test]
fn recording_starts_and_stops_with_tones_events_and_documents() {
    let mut w = World::new(RoomPolicy {
        name: "big".into(),
        ..Default::default()
    });
    let dir = std::env::temp_dir().join(format!("confab-focus-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tap = |n: u32| {
        let (tap, rec) =
            media_server::recording::start(&dir.join(format!("{n}.opus")), &[]).unwrap();
        (Box::new(tap), rec)
    };
    let refused = |r: Result<(), focus::ControlError>| match r {
        Err(focus::ControlError::Refused(why)) => why,
        other => panic!("{other:?}"),
    };
    // A stored room without calls has nothing to record; an unknown room is not there.
    assert!(refused(w.focus.start_recording(w.now, "big", tap(1).0)).contains("no calls"));
    assert_eq!(
        w.focus.start_recording(w.now, "nope", tap(2).0),
        Err(focus::ControlError::NoRoom)
    );
    w.call(1);
    let mut doc = Watcher::subscribe(&mut w);
    assert_eq!(focus::recording_in(doc.follow(&mut w)), Some(false));
    w.events();
    w.edge.media.room_tones.clear();

    w.focus.start_recording(w.now, "big", tap(3).0).unwrap();
    assert!(refused(w.focus.start_recording(w.now, "big", tap(4).0)).contains("already"));
    assert_eq!(focus::recording_in(doc.follow(&mut w)), Some(true));
    assert_eq!(w.edge.media.recorded, 1, "the mixer got one tap");
    assert_eq!(w.edge.media.room_tones, [TonePattern::recording_started()]);
    assert!(w.events().contains(&RoomEventKind::Recording(true)));

    w.focus.stop_recording(w.now, "big").unwrap();
    assert!(refused(w.focus.stop_recording(w.now, "big")).contains("not being recorded"));
    assert_eq!(focus::recording_in(doc.follow(&mut w)), Some(false));
    assert_eq!(w.edge.media.recording_stopped, 1);
    assert_eq!(
        w.edge.media.room_tones,
        [
            TonePattern::recording_started(),
            TonePattern::recording_stopped()
        ]
    );
    assert!(w.events().contains(&RoomEventKind::Recording(false)));

    // Recorded again, then the last call leaves: the recording ends with the room.
    w.focus.start_recording(w.now, "big", tap(5).0).unwrap();
    let id = w.id_of("user1");
    w.focus.remove(w.now, "big", &id);
    let events = w.events();
    assert!(
        events.contains(&RoomEventKind::Recording(false)),
        "{events:?}"
    );

    // A room whose policy records from the start asks for it as it opens.
    w.command(FocusCommand::UpsertRoom(RoomPolicy {
        name: "big".into(),
        record: true,
        ..Default::default()
    }));
    w.events();
    w.call(2);
    assert!(w.events().contains(&RoomEventKind::RecordingWanted));
    let _ = std::fs::remove_dir_all(&dir);
}
