//! Mixer tests in memory: tone sources feed the input rings, ticks are
//! stepped by hand, and every output stream is decoded and its spectrum
//! checked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webrtc_util::Unmarshal;

use super::*;
use crate::codec::{CodecKind, Decoder, Encoder, OpusConfig};
use crate::jitter::MAX_PAYLOAD;
use crate::tone::goertzel;

type Sent = Arc<Mutex<Vec<Vec<u8>>>>;

struct MemOut(Sent);
impl PacketOut for MemOut {
    fn send(&mut self, _to: SocketAddr, packet: &[u8]) -> bool {
        self.0.lock().unwrap().push(packet.to_vec());
        true
    }
}

/// A phone: encodes a tone and pushes packets into its participant's ring.
struct Phone {
    id: ParticipantId,
    kind: CodecKind,
    pt: u8,
    freq: f64,
    encoder: Encoder,
    input: rtrb::Producer<InPacket>,
    sent: Sent,
    seq: u16,
    n: usize,
    ssrc: u32,
    source: SocketAddr,
    stats: Arc<ParticipantStats>,
}

impl Phone {
    fn send_frame(&mut self, at: Instant) {
        let rate = self.kind.pcm_rate();
        let len = (rate / 50) as usize;
        let pcm: Vec<i16> = (0..len)
            .map(|i| {
                (6000.0
                    * (2.0 * std::f64::consts::PI * self.freq * (self.n + i) as f64 / rate as f64)
                        .sin()) as i16
            })
            .collect();
        self.n += len;
        let mut payload = [0u8; MAX_PAYLOAD];
        let plen = self.encoder.encode(&pcm, &mut payload).unwrap();
        let ts = (self.seq as u32) * (self.kind.rtp_clock() / 50);
        self.push_raw(self.seq, ts, self.pt, &payload[..plen], at, None);
        self.seq = self.seq.wrapping_add(1);
    }

    fn push_raw(
        &mut self,
        seq: u16,
        ts: u32,
        pt: u8,
        payload: &[u8],
        at: Instant,
        level: Option<u8>,
    ) {
        let mut p = InPacket {
            seq,
            timestamp: ts,
            payload_type: pt,
            ssrc: self.ssrc,
            audio_level: level,
            source: self.source,
            arrival: at,
            len: payload.len() as u16,
            payload: [0; MAX_PAYLOAD],
        };
        p.payload[..payload.len()].copy_from_slice(payload);
        let _ = self.input.push(p);
    }

    /// Decodes everything this phone received since the last call.
    fn heard(&mut self) -> Vec<i16> {
        let packets: Vec<Vec<u8>> = std::mem::take(&mut *self.sent.lock().unwrap());
        let mut dec = Decoder::new(self.kind).unwrap();
        let mut out = Vec::new();
        let mut buf = [0i16; 2880];
        for raw in packets {
            let pkt = rtp::packet::Packet::unmarshal(&mut &raw[..]).unwrap();
            assert_eq!(pkt.header.payload_type, self.pt);
            let n = dec
                .decode(
                    &pkt.payload,
                    &mut buf[..(self.kind.pcm_rate() / 50) as usize],
                )
                .unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn last_csrcs(&self) -> Vec<u32> {
        let sent = self.sent.lock().unwrap();
        let raw = sent.last().expect("a packet");
        rtp::packet::Packet::unmarshal(&mut &raw[..])
            .unwrap()
            .header
            .csrc
    }
}

struct Bench {
    mixer: Mixer,
    commands: rtrb::Producer<Command>,
    events: rtrb::Consumer<MixerEvent>,
    _garbage: rtrb::Consumer<Garbage>,
    now: Instant,
    room: RoomId,
    next_id: u32,
    /// Phones bring a talker kit for the room's pool.
    kits: bool,
}

impl Bench {
    fn new(settings: RoomSettings) -> Self {
        let (commands, cmd_rx) = rtrb::RingBuffer::new(256);
        let (ev_tx, events) = rtrb::RingBuffer::new(4096);
        let (g_tx, garbage) = rtrb::RingBuffer::new(256);
        let mut b = Self {
            mixer: Mixer::new(8, cmd_rx, ev_tx, g_tx),
            commands,
            events,
            _garbage: garbage,
            now: Instant::now(),
            room: RoomId(1),
            next_id: 1,
            kits: true,
        };
        let room = Room::new(RoomId(1), settings).unwrap();
        b.cmd(Command::AddRoom(Box::new(room)));
        b
    }

    fn cmd(&mut self, c: Command) {
        assert!(self.commands.push(c).is_ok());
    }

    fn phone(&mut self, kind: CodecKind, freq: f64) -> Phone {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let (tx, rx) = rtrb::RingBuffer::new(64);
        let sent: Sent = Arc::default();
        let mut s = ParticipantSettings::new(kind);
        let source: SocketAddr = format!("127.0.0.1:{}", 40000 + id.0 * 2).parse().unwrap();
        s.remote = Some(source);
        let pt = s.payload_type;
        let stats: Arc<ParticipantStats> = Arc::default();
        let p = Participant::new(
            id,
            s,
            rx,
            Box::new(MemOut(sent.clone())),
            1000 + id.0,
            0,
            stats.clone(),
        )
        .and_then(|p| {
            if self.kits {
                p.with_kit(&OpusConfig::default())
            } else {
                Ok(p)
            }
        })
        // The room's settings: the kits' encoders serve it.
        .map(Participant::sharing_kit_encoder)
        .unwrap();
        self.cmd(Command::AddParticipant(self.room, Box::new(p)));
        Phone {
            id,
            kind,
            pt,
            freq,
            encoder: Encoder::new(kind, &OpusConfig::default()).unwrap(),
            input: tx,
            sent,
            seq: 0,
            n: 0,
            ssrc: 0xA000 + id.0,
            source,
            stats,
        }
    }

    /// Every phone sends one frame, then the mixer ticks.
    fn run(&mut self, phones: &mut [&mut Phone], ticks: usize) {
        for _ in 0..ticks {
            for p in phones.iter_mut() {
                p.send_frame(self.now);
            }
            self.mixer.tick(self.now);
            self.now += Duration::from_millis(20);
        }
    }

    fn events(&mut self) -> Vec<MixerEvent> {
        let mut v = Vec::new();
        while let Ok(e) = self.events.pop() {
            v.push(e);
        }
        v
    }
}

/// Power of each frequency in what a phone heard, relative to the strongest.
fn hears(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let tail = &samples[samples.len() / 2..];
    goertzel(tail, rate, freq)
}

fn assert_hears(phone: &mut Phone, present: &[f64], absent: &[f64]) {
    let heard = phone.heard();
    assert!(!heard.is_empty(), "{:?} heard nothing", phone.id);
    let rate = phone.kind.pcm_rate();
    let min_present = present
        .iter()
        .map(|&f| hears(&heard, rate, f))
        .fold(f64::MAX, f64::min);
    for &f in absent {
        let p = hears(&heard, rate, f);
        assert!(
            p * 100.0 < min_present,
            "{:?} ({}) hears {f} Hz: {p} vs present {min_present}",
            phone.id,
            phone.freq
        );
    }
    assert!(
        min_present > 1000.0,
        "{:?}: present tones too weak: {min_present}",
        phone.id
    );
}

#[test]
fn three_talkers_each_hear_the_other_two_not_themselves() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcmu, 1000.0);
    let mut d = b.phone(CodecKind::Pcmu, 2200.0);
    b.run(&mut [&mut a, &mut c, &mut d], 100);
    // Each talker's packets name the other two talkers as CSRCs.
    let mut csrcs = a.last_csrcs();
    csrcs.sort();
    assert_eq!(csrcs, vec![c.ssrc, d.ssrc]);
    assert_hears(&mut a, &[1000.0, 2200.0], &[440.0]);
    assert_hears(&mut c, &[440.0, 2200.0], &[1000.0]);
    assert_hears(&mut d, &[440.0, 1000.0], &[2200.0]);
    let ev = b.events();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, MixerEvent::TalkingStarted(..)))
            .count(),
        3
    );
}

#[test]
fn muting_removes_a_tone_from_everyone() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcma, 1000.0);
    let mut d = b.phone(CodecKind::Pcmu, 2200.0);
    b.run(&mut [&mut a, &mut c, &mut d], 50);
    b.cmd(Command::Mute(a.id, true));
    a.heard();
    c.heard();
    d.heard();
    b.run(&mut [&mut a, &mut c, &mut d], 100);
    assert_hears(&mut c, &[2200.0], &[440.0, 1000.0]);
    assert_hears(&mut d, &[1000.0], &[440.0, 2200.0]);
    // The muted one still hears the others.
    assert_hears(&mut a, &[1000.0, 2200.0], &[440.0]);
    b.cmd(Command::Mute(a.id, false));
    b.run(&mut [&mut a, &mut c, &mut d], 100);
    assert_hears(&mut c, &[440.0, 2200.0], &[1000.0]);
}

#[test]
fn opus_and_g722_and_pcmu_mix_through_resampling() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Opus, 440.0);
    let mut c = b.phone(CodecKind::G722, 1000.0);
    let mut d = b.phone(CodecKind::Pcmu, 2200.0);
    b.run(&mut [&mut a, &mut c, &mut d], 150);
    assert_hears(&mut a, &[1000.0, 2200.0], &[440.0]);
    assert_hears(&mut c, &[440.0, 2200.0], &[1000.0]);
    assert_hears(&mut d, &[440.0, 1000.0], &[2200.0]);
}

#[test]
fn listeners_share_one_encoding_per_codec() {
    let mut b = Bench::new(RoomSettings::default());
    let mut talkers: Vec<Phone> = [440.0, 1000.0, 2200.0]
        .iter()
        .map(|&f| b.phone(CodecKind::Pcmu, f))
        .collect();
    let mut listeners: Vec<Phone> = (0..10)
        .map(|i| {
            b.phone(
                if i % 2 == 0 {
                    CodecKind::Pcmu
                } else {
                    CodecKind::Opus
                },
                0.0,
            )
        })
        .collect();
    // Listeners send nothing; talkers talk.
    let mut refs: Vec<&mut Phone> = talkers.iter_mut().collect();
    b.run(&mut refs, 20);
    let before = b.mixer.room_stats(b.room).unwrap();
    b.run(&mut refs, 50);
    let after = b.mixer.room_stats(b.room).unwrap();
    assert_eq!(
        after.own_encodes - before.own_encodes,
        3 * 50,
        "one mix-minus per talker per tick"
    );
    assert_eq!(
        after.group_encodes - before.group_encodes,
        2 * 50,
        "one PCMU and one Opus encode per tick"
    );
    assert_eq!(after.packets_sent - before.packets_sent, 13 * 50);
    assert_hears(&mut listeners[0], &[440.0, 1000.0, 2200.0], &[]);
    assert_hears(&mut listeners[1], &[440.0, 1000.0, 2200.0], &[]);
}

#[test]
fn only_the_loudest_n_are_mixed_and_the_choice_holds() {
    let settings = RoomSettings {
        max_talkers: 2,
        ..RoomSettings::default()
    };
    let mut b = Bench::new(settings);
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcmu, 1000.0);
    let mut d = b.phone(CodecKind::Pcmu, 2200.0);
    let mut l = b.phone(CodecKind::Pcmu, 0.0);
    b.run(&mut [&mut a, &mut c, &mut d], 100);
    let heard = l.heard();
    let present = [440.0, 1000.0, 2200.0]
        .iter()
        .filter(|&&f| hears(&heard, 8000, f) > 1000.0)
        .count();
    assert_eq!(present, 2, "exactly two of three equal talkers are mixed");
    // Equal levels: the hysteresis keeps the same two; no flapping events.
    let starts = b
        .events()
        .iter()
        .filter(|e| matches!(e, MixerEvent::TalkingStarted(..)))
        .count();
    assert_eq!(starts, 3);
    // Raised to three while the room runs: all three are heard.
    b.cmd(Command::MaxTalkers(b.room, 3));
    b.run(&mut [&mut a, &mut c, &mut d], 50);
    l.heard();
    b.run(&mut [&mut a, &mut c, &mut d], 50);
    let heard = l.heard();
    for f in [440.0, 1000.0, 2200.0] {
        assert!(
            hears(&heard, 8000, f) > 1000.0,
            "{f} Hz mixed after the change"
        );
    }
}

#[test]
fn deaf_hears_silence_and_hold_leaves_the_mix() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcmu, 1000.0);
    let mut d = b.phone(CodecKind::Pcmu, 2200.0);
    b.cmd(Command::Deaf(a.id, true));
    b.cmd(Command::Direction(c.id, Direction::Inactive));
    b.run(&mut [&mut a, &mut c, &mut d], 100);
    let heard = a.heard();
    let energy: f64 = heard.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / heard.len() as f64;
    assert!(
        energy < 100.0,
        "deaf participant hears silence, energy {energy}"
    );
    assert!(
        c.heard().is_empty(),
        "an inactive participant is sent nothing"
    );
    assert_hears(&mut d, &[440.0], &[1000.0, 2200.0]);
}

#[test]
fn dtmf_and_foreign_payloads() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    b.run(&mut [&mut a], 5);
    let t = b.now;
    for (i, end) in [false, false, true, true, true].iter().enumerate() {
        let d = (160 * (i as u16 + 1)).to_be_bytes();
        a.push_raw(
            500 + i as u16,
            99_000,
            101,
            &[10, if *end { 0x8A } else { 0x0A }, d[0], d[1]],
            t,
            None,
        );
    }
    a.push_raw(600, 0, 96, &[1, 2, 3], t, None);
    b.run(&mut [&mut a], 2);
    let ev = b.events();
    assert!(
        ev.contains(&MixerEvent::Dtmf(RoomId(1), a.id, '*', 60)),
        "{ev:?}"
    );
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, MixerEvent::Dtmf(..)))
            .count(),
        1
    );
}

#[test]
fn remove_and_end_room_hand_memory_back() {
    let mut b = Bench::new(RoomSettings {
        capacity: 2,
        ..RoomSettings::default()
    });
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let _c = b.phone(CodecKind::Pcmu, 1000.0);
    let extra = b.phone(CodecKind::Pcmu, 2200.0);
    b.run(&mut [&mut a], 30);
    assert_eq!(
        b.mixer.participant_count(),
        2,
        "capacity 2: the third is refused"
    );
    assert!(b
        .events()
        .contains(&MixerEvent::Rejected(RoomId(1), extra.id)));
    b.cmd(Command::Remove(a.id));
    b.run(&mut [], 1);
    assert_eq!(b.mixer.participant_count(), 1);
    assert!(b
        .events()
        .contains(&MixerEvent::TalkingStopped(RoomId(1), a.id)));
    b.cmd(Command::EndRoom(RoomId(1)));
    b.run(&mut [], 1);
    assert_eq!(b.mixer.room_count(), 0);
    let mut returned = 0;
    while b._garbage.pop().is_ok() {
        returned += 1;
    }
    assert_eq!(
        returned, 3,
        "rejected participant, removed participant, ended room"
    );
}

#[test]
fn rfc6464_silence_skips_decoding_for_g711() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut quiet = b.phone(CodecKind::Pcmu, 1000.0);
    b.run(&mut [&mut a], 5);
    for i in 0..50u16 {
        let at = b.now;
        quiet.push_raw(i, i as u32 * 160, 0, &[0xFF; 160], at, Some(127));
        a.send_frame(at);
        b.mixer.tick(at);
        b.now += Duration::from_millis(20);
    }
    assert_hears(&mut quiet, &[440.0], &[1000.0]);
    let skipped = quiet
        .stats
        .decode_skipped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        skipped >= 45,
        "decoding skipped for silent frames: {skipped}"
    );
    assert!(b
        .events()
        .iter()
        .all(|e| !matches!(e, MixerEvent::TalkingStarted(_, p) if *p == quiet.id)));
}

#[test]
fn sum_is_limited_not_wrapped() {
    let mut b = Bench::new(RoomSettings {
        max_talkers: 8,
        ..RoomSettings::default()
    });
    let mut phones: Vec<Phone> = (0..8).map(|_| b.phone(CodecKind::Opus, 440.0)).collect();
    let mut l = b.phone(CodecKind::Opus, 0.0);
    for p in phones.iter_mut() {
        p.encoder = Encoder::new(
            CodecKind::Opus,
            &OpusConfig {
                bitrate: 64000,
                ..OpusConfig::default()
            },
        )
        .unwrap();
    }
    let mut refs: Vec<&mut Phone> = phones.iter_mut().collect();
    b.run(&mut refs, 50);
    let heard = l.heard();
    let tail = &heard[heard.len() / 2..];
    // Eight in-phase 6000-amplitude tones would wrap an i16; limited, the
    // tone stays dominant and the signal pins at full scale without sign flips.
    let peak = tail.iter().map(|&s| (s as i32).abs()).max().unwrap();
    assert!(peak > 20000, "peak {peak}");
    assert!(goertzel(tail, 48000, 440.0) > 10.0 * goertzel(tail, 48000, 3000.0));
}

#[test]
fn room_tone_reaches_listeners_and_participant_tone_only_its_target() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 0.0);
    let mut c = b.phone(CodecKind::Pcmu, 0.0);
    b.run(&mut [], 5);
    a.heard();
    c.heard();
    b.cmd(Command::RoomTone(b.room, TonePattern::entry()));
    b.run(&mut [], 20);
    let ha = a.heard();
    assert!(
        goertzel(&ha, 8000, 523.0) > 1000.0,
        "room tone heard: {}",
        goertzel(&ha, 8000, 523.0)
    );
    assert!(goertzel(&c.heard(), 8000, 784.0) > 1000.0, "by everyone");
    b.cmd(Command::Tone(a.id, TonePattern::count(2)));
    b.run(&mut [], 40);
    assert!(goertzel(&a.heard(), 8000, 880.0) > 1000.0);
    let hc = goertzel(&c.heard(), 8000, 880.0);
    assert!(hc < 10.0, "C hears the beeps meant for A: {hc}");
}

#[test]
fn a_lone_talker_gets_the_shared_silence_then_its_own_mix_again() {
    for kind in [CodecKind::Opus, CodecKind::Pcmu] {
        let mut b = Bench::new(RoomSettings::default());
        let mut a = b.phone(kind, 440.0);
        let mut c = b.phone(kind, 1000.0);
        let mut listener = b.phone(kind, 0.0);
        b.run(&mut [&mut a], 20);
        let before = b.mixer.room_stats(b.room).unwrap();
        b.run(&mut [&mut a], 50);
        let alone = b.mixer.room_stats(b.room).unwrap();
        assert_eq!(
            alone.own_encodes, before.own_encodes,
            "{kind:?}: a lone talker's silence was encoded for it alone"
        );
        // One mix per tick; silence only until its packet settles.
        let group = alone.group_encodes - before.group_encodes;
        assert!(
            (50..=60).contains(&group),
            "{kind:?}: {group} group encodes in 50 ticks"
        );
        let heard = a.heard();
        assert!(
            heard.iter().skip(heard.len() / 2).all(|&s| s.abs() < 64),
            "{kind:?}: the lone talker hears more than silence"
        );
        // A second talker: each hears the other through its own encoder,
        // started afresh.
        b.run(&mut [&mut a, &mut c], 100);
        let both = b.mixer.room_stats(b.room).unwrap();
        assert!(both.own_encodes - alone.own_encodes >= 2 * 90);
        assert_hears(&mut a, &[1000.0], &[440.0]);
        assert_hears(&mut c, &[440.0], &[1000.0]);
        assert_hears(&mut listener, &[440.0, 1000.0], &[]);
    }
}

#[test]
fn a_room_holds_shared_encoders_only_for_codecs_added() {
    let mut b = Bench::new(RoomSettings::default());
    // A second room, made without codecs, as the media server makes them.
    let room = RoomId(2);
    b.cmd(Command::AddRoom(Box::new(Room::without_codecs(
        room,
        RoomSettings::default(),
    ))));
    b.room = room;
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcmu, 1000.0);
    let mut listener = b.phone(CodecKind::Pcmu, 0.0);
    b.run(&mut [&mut a, &mut c], 20);
    // No shared PCMU encoder yet: the talkers' own mixes go out, the
    // listener's shared one cannot, and that is counted.
    assert!(listener.heard().is_empty());
    let errors = &listener.stats.send_errors;
    assert!(errors.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let group = CodecGroup::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap();
    b.cmd(Command::AddCodec(room, Box::new(group)));
    // A second one for the same codec is handed back.
    let again = CodecGroup::new(CodecKind::Pcmu, &OpusConfig::default()).unwrap();
    b.cmd(Command::AddCodec(room, Box::new(again)));
    b.run(&mut [&mut a, &mut c], 100);
    assert!(matches!(b._garbage.pop(), Ok(Garbage::Codec(_))));
    assert_hears(&mut a, &[1000.0], &[440.0]);
    assert_hears(&mut listener, &[440.0, 1000.0], &[]);
}

#[test]
fn a_room_lends_its_few_kits_to_whoever_talks() {
    let mut b = Bench::new(RoomSettings::default());
    // Two kits in the room, brought by the first two; the rest come without.
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcmu, 1000.0);
    b.kits = false;
    let mut d = b.phone(CodecKind::G722, 700.0);
    let mut e = b.phone(CodecKind::Pcmu, 1300.0);
    let mut listener = b.phone(CodecKind::Pcmu, 0.0);
    b.run(&mut [&mut a, &mut e], 100);
    // Both kits are lent: to a and to e, which brought none.
    assert_hears(&mut listener, &[440.0, 1300.0], &[]);
    assert_hears(&mut a, &[1300.0], &[440.0]);
    assert_hears(&mut e, &[440.0], &[1300.0]);
    // a and e fall silent and give their kits back; c takes one. d's codec
    // has no kits in this room (nobody brought one), so it is not mixed.
    b.run(&mut [&mut c, &mut d], 100);
    let _ = listener.heard();
    b.run(&mut [&mut c, &mut d], 50);
    assert_hears(&mut listener, &[1000.0], &[440.0, 1300.0, 700.0]);
    assert_hears(&mut d, &[1000.0], &[700.0]);
}

/// RMS level of the second half of what a phone heard, in dB full scale.
fn level_dbfs(samples: &[i16]) -> f64 {
    let tail = &samples[samples.len() / 2..];
    let sum: f64 = tail.iter().map(|&v| (v as f64) * (v as f64)).sum();
    10.0 * (sum / tail.len().max(1) as f64 / (32768.0 * 32768.0)).log10()
}

/// A room of G.711 phones mixes at 8 kHz, without resampling; an Opus
/// caller makes it mix at 48 kHz and its leaving brings 8 kHz back. A
/// listener and a talker hear the same levels in all three phases (the
/// paths differ only by the resampling filters), and the Opus caller hears
/// the talkers while it is there.
#[test]
fn a_narrowband_room_widens_for_an_opus_caller_and_narrows_again() {
    let mut b = Bench::new(RoomSettings::default());
    let mut a = b.phone(CodecKind::Pcmu, 440.0);
    let mut c = b.phone(CodecKind::Pcma, 1000.0);
    let mut l = b.phone(CodecKind::Pcmu, 0.0);
    let mut levels = Vec::new();
    let phase = |b: &mut Bench, a: &mut Phone, c: &mut Phone, l: &mut Phone| {
        b.run(&mut [&mut *a, &mut *c], 100);
        assert_hears(l, &[440.0, 1000.0], &[]);
        assert_hears(a, &[1000.0], &[440.0]);
        assert_hears(c, &[440.0], &[1000.0]);
        l.heard();
        a.heard();
        c.heard();
        b.run(&mut [&mut *a, &mut *c], 50);
        (
            level_dbfs(&l.heard()),
            level_dbfs(&a.heard()),
            level_dbfs(&c.heard()),
        )
    };
    levels.push(phase(&mut b, &mut a, &mut c, &mut l));
    let mut o = b.phone(CodecKind::Opus, 0.0);
    levels.push(phase(&mut b, &mut a, &mut c, &mut l));
    assert_hears(&mut o, &[440.0, 1000.0], &[]);
    b.cmd(Command::Remove(o.id));
    levels.push(phase(&mut b, &mut a, &mut c, &mut l));
    // A recording widens it too.
    let path = std::env::temp_dir().join(format!("confab-narrow-{}.opus", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (tap, _recording) = crate::recording::start(&path, &[]).unwrap();
    b.cmd(Command::Record(b.room, Box::new(tap)));
    levels.push(phase(&mut b, &mut a, &mut c, &mut l));
    b.cmd(Command::StopRecording(b.room));
    levels.push(phase(&mut b, &mut a, &mut c, &mut l));
    let _ = std::fs::remove_file(&path);
    eprintln!("levels (listener, talkers) by phase, narrow/wide/narrow: {levels:?}");
    for (listener, a_hears, c_hears) in &levels[1..] {
        assert!(
            (listener - levels[0].0).abs() < 0.5
                && (a_hears - levels[0].1).abs() < 0.5
                && (c_hears - levels[0].2).abs() < 0.5,
            "levels (listener, talkers) by phase, narrow/wide/narrow: {levels:?}"
        );
    }
}
