//! One mixer tick with every participant sending, as in a real room: the
//! talkers send tones, everyone else low-level noise (G.711: ±24 linear;
//! Opus: white noise at -54 dBFS through the reference encoder, as
//! `../shared/bench` sends). Two layouts: one room of N with 3 talkers, and
//! rooms of 5 with one talker each. Reported per tick; divide by N for the
//! cost per participant. Also prints the memory held per participant.

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use media_server::codec::{CodecKind, Encoder, OpusConfig};
use media_server::jitter::MAX_PAYLOAD;
use media_server::mixer::{
    Command, InPacket, Mixer, PacketOut, Participant, ParticipantId, ParticipantSettings, Room,
    RoomId, RoomSettings, TalkerKit, KITS_PER_CODEC,
};

// Under the scratch stack for the Opus codec's temporaries, as in the
// binary, around a counter of live bytes (memory per participant).
#[global_allocator]
static GLOBAL: opus_codec::ScratchAlloc<opus_codec::CountingAlloc<System>> =
    opus_codec::ScratchAlloc::new(opus_codec::CountingAlloc::new(System));

/// Counts bytes the way a non-blocking UDP send would hand them off.
struct Sink(u64);
impl PacketOut for Sink {
    fn send(&mut self, _to: SocketAddr, packet: &[u8]) -> bool {
        self.0 += packet.len() as u64;
        true
    }
}

/// As the server's SRTP participant does: copy into a buffer made once,
/// protect in place (AES_CM_128_HMAC_SHA1_80), hand off.
struct SrtpSink {
    session: srtp::Session,
    buf: Box<[u8; 1500]>,
    bytes: u64,
}
impl PacketOut for SrtpSink {
    fn send(&mut self, _to: SocketAddr, packet: &[u8]) -> bool {
        let n = packet.len();
        self.buf[..n].copy_from_slice(packet);
        match self.session.protect_rtp(&mut self.buf[..], n) {
            Ok(len) => {
                self.bytes += len as u64;
                true
            }
            Err(_) => false,
        }
    }
}

/// Pre-encoded frames, replayed in a loop: (length, payload).
type Frames = Arc<Vec<(usize, [u8; MAX_PAYLOAD])>>;

/// Frames in each pre-encoded loop (one second).
const LOOP: usize = 50;
/// Distinct noise streams; participants share them round-robin.
const NOISE_STREAMS: usize = 8;

/// How the participants are laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// One room of N, 3 talkers.
    OneRoom,
    /// Rooms of 5, one talker each.
    RoomsOf5,
}

struct Sender {
    input: rtrb::Producer<InPacket>,
    frames: Frames,
    ssrc: u32,
}

struct Setup {
    mixer: Mixer,
    senders: Vec<Sender>,
    kind: CodecKind,
    _keep: (
        rtrb::Producer<Command>,
        rtrb::Consumer<media_server::mixer::MixerEvent>,
        rtrb::Consumer<media_server::mixer::Garbage>,
    ),
}

/// A participant; `kit`: it brings a talker kit, as the first
/// `KITS_PER_CODEC` of each codec in a room do in the server.
fn participant(
    id: u32,
    kind: CodecKind,
    kit: bool,
    srtp: bool,
) -> (Participant, rtrb::Producer<InPacket>) {
    // As the server sizes it (MediaConfig::input_ring).
    let (tx, rx) = rtrb::RingBuffer::new(16);
    let mut s = ParticipantSettings::new(kind);
    s.remote = Some(SocketAddr::from((
        [127, 0, 0, 1],
        10_000 + (id % 50_000) as u16,
    )));
    let out: Box<dyn PacketOut> = if srtp {
        let suite = srtp::Suite::AesCm128HmacSha1_80;
        Box::new(SrtpSink {
            session: srtp::Session::new(suite, &[id as u8; 16], &[7; 14]).expect("srtp"),
            buf: Box::new([0; 1500]),
            bytes: 0,
        })
    } else {
        Box::new(Sink(0))
    };
    let p = Participant::new(ParticipantId(id), s, rx, out, id, 0, Arc::default())
        .and_then(|p| {
            if kit {
                p.with_kit(&OpusConfig::default())
            } else {
                Ok(p)
            }
        })
        // The room's settings: the kits' encoders serve it, as in the server.
        .map(Participant::sharing_kit_encoder)
        .expect("participant");
    (p, tx)
}

/// One second of a signal through a fresh encoder.
fn encode(kind: CodecKind, mut sample: impl FnMut(usize) -> f64) -> Frames {
    let mut enc = Encoder::new(kind, &OpusConfig::default()).expect("encoder");
    let len = (kind.pcm_rate() / 50) as usize;
    let frames = (0..LOOP)
        .map(|f| {
            let pcm: Vec<i16> = (0..len).map(|n| sample(f * len + n) as i16).collect();
            let mut buf = [0u8; MAX_PAYLOAD];
            let n = enc.encode(&pcm, &mut buf).expect("encode");
            (n, buf)
        })
        .collect();
    Arc::new(frames)
}

fn tone(kind: CodecKind, freq: f64) -> Frames {
    let rate = kind.pcm_rate() as f64;
    encode(kind, |n| {
        6000.0 * (2.0 * std::f64::consts::PI * freq * n as f64 / rate).sin()
    })
}

fn noise(kind: CodecKind, seed: u32) -> Frames {
    // G.711 as rtpload sends it (±24 linear); Opus at -54 dBFS RMS.
    let amp = match kind {
        CodecKind::Opus => 32768.0 * 10f64.powf(-54.0 / 20.0) * 3f64.sqrt(),
        _ => 24.0,
    };
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    encode(kind, move |_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x as f64 / u32::MAX as f64 * 2.0 - 1.0) * amp
    })
}

/// What a case adds to the plain room.
#[derive(Clone, Copy, PartialEq)]
enum Extra {
    None,
    /// Every listener's packet protected with SRTP (AES_CM_128_HMAC_SHA1_80)
    /// in the tick, as for SDES calls.
    Srtp,
    /// The room's mix recorded: the shared Opus encoding (made for the
    /// recording when no listener is on Opus) copied into the writer's ring.
    Recorded,
}

fn setup(kind: CodecKind, layout: Layout, n: usize, extra: Extra) -> Setup {
    let srtp = extra == Extra::Srtp;
    let room_size = match layout {
        Layout::OneRoom => n,
        Layout::RoomsOf5 => 5,
    };
    let talkers_per_room = match layout {
        Layout::OneRoom => 3,
        Layout::RoomsOf5 => 1,
    };
    let rooms = n.div_ceil(room_size);
    let (mut commands, cmd_rx) = rtrb::RingBuffer::new(n + 2 * rooms + 16);
    let (ev_tx, events) = rtrb::RingBuffer::new(4 * n + 1024);
    let (g_tx, garbage) = rtrb::RingBuffer::new(16);
    let mixer = Mixer::new(rooms, cmd_rx, ev_tx, g_tx);
    let tones: Vec<Frames> = [450.0, 650.0, 850.0]
        .into_iter()
        .map(|f| tone(kind, f))
        .collect();
    let noises: Vec<Frames> = (0..NOISE_STREAMS as u32)
        .map(|s| noise(kind, s + 1))
        .collect();
    let mut senders = Vec::new();
    for r in 0..rooms {
        let room = Room::new(
            RoomId(r as u32 + 1),
            RoomSettings {
                capacity: room_size,
                ..RoomSettings::default()
            },
        )
        .expect("room");
        assert!(commands.push(Command::AddRoom(Box::new(room))).is_ok());
        if extra == Extra::Recorded {
            let file = std::env::temp_dir().join(format!(
                "confab-bench-rec-{}-{}-{n}-{r}.opus",
                std::process::id(),
                kind.name()
            ));
            let _ = std::fs::remove_file(&file);
            // The file goes at once; the writer keeps its open handle.
            let (tap, _recording) = media_server::recording::start(&file, &[]).expect("recording");
            let _ = std::fs::remove_file(&file);
            assert!(commands
                .push(Command::Record(RoomId(r as u32 + 1), Box::new(tap)))
                .is_ok());
        }
        for k in 0..room_size.min(n - r * room_size) {
            let id = (r * room_size + k) as u32 + 1;
            let (p, input) = participant(id, kind, k < KITS_PER_CODEC, srtp);
            assert!(
                commands
                    .push(Command::AddParticipant(RoomId(r as u32 + 1), Box::new(p)))
                    .is_ok(),
                "command ring sized for every participant"
            );
            let frames = match tones.get(k).filter(|_| k < talkers_per_room) {
                Some(t) => t.clone(),
                None => noises[id as usize % NOISE_STREAMS].clone(),
            };
            senders.push(Sender {
                input,
                frames,
                ssrc: 0x1000 + id,
            });
        }
    }
    Setup {
        mixer,
        senders,
        kind,
        _keep: (commands, events, garbage),
    }
}

fn feed(s: &mut Setup, tick: u64, now: Instant) {
    let kind = s.kind;
    for (i, sender) in s.senders.iter_mut().enumerate() {
        // Streams start at different points of their loop.
        let (len, payload) = sender.frames[(tick as usize + i) % LOOP];
        let _ = sender.input.push(InPacket {
            seq: tick as u16,
            timestamp: (tick as u32).wrapping_mul(kind.rtp_clock() / 50),
            payload_type: kind.static_payload_type().unwrap_or(111),
            ssrc: sender.ssrc,
            audio_level: None,
            source: SocketAddr::from(([127, 0, 0, 1], 20_000 + (i % 40_000) as u16)),
            arrival: now,
            len: len as u16,
            payload,
        });
    }
}

fn bench(c: &mut Criterion) {
    let cases: [(Layout, &str, CodecKind, &[usize], Extra); 9] = [
        (
            Layout::OneRoom,
            "one room",
            CodecKind::Pcmu,
            &[100, 1_000, 5_000],
            Extra::None,
        ),
        (
            Layout::OneRoom,
            "one room",
            CodecKind::Opus,
            &[100, 1_000],
            Extra::None,
        ),
        (
            Layout::RoomsOf5,
            "rooms of 5",
            CodecKind::Pcmu,
            &[100, 1_000],
            Extra::None,
        ),
        (
            Layout::RoomsOf5,
            "rooms of 5",
            CodecKind::Opus,
            &[100, 500],
            Extra::None,
        ),
        (
            Layout::OneRoom,
            "one room, SRTP",
            CodecKind::Pcmu,
            &[100, 1_000],
            Extra::Srtp,
        ),
        (
            Layout::OneRoom,
            "one room, SRTP",
            CodecKind::Opus,
            &[100, 1_000],
            Extra::Srtp,
        ),
        (
            Layout::OneRoom,
            "one room, recorded",
            CodecKind::Pcmu,
            &[100, 1_000],
            Extra::Recorded,
        ),
        (
            Layout::OneRoom,
            "one room, recorded",
            CodecKind::Opus,
            &[100, 1_000],
            Extra::Recorded,
        ),
        (
            Layout::RoomsOf5,
            "rooms of 5, recorded",
            CodecKind::Pcmu,
            &[100],
            Extra::Recorded,
        ),
    ];
    for (layout, name, kind, sizes, extra) in cases {
        let mut g = c.benchmark_group(format!("mixer tick, {name}, everyone sending"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for &n in sizes {
            let mut s = setup(kind, layout, n, extra);
            let mut tick = 0u64;
            let mut now = Instant::now();
            // Warm up: rooms open, jitter buffers fill, talkers are selected.
            for _ in 0..100 {
                feed(&mut s, tick, now);
                s.mixer.tick(now);
                tick += 1;
                now += Duration::from_millis(20);
            }
            assert_eq!(s.mixer.participant_count(), n);
            g.bench_with_input(BenchmarkId::new(kind.name(), n), &n, |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        feed(&mut s, tick, now);
                        let start = Instant::now();
                        s.mixer.tick(now);
                        total += start.elapsed();
                        tick += 1;
                        now += Duration::from_millis(20);
                    }
                    total
                })
            });
            let stats = s.mixer.room_stats(RoomId(1)).expect("room");
            assert!(stats.group_encodes > 0, "nothing was encoded");
        }
        g.finish();
    }
    for kind in [CodecKind::Pcmu, CodecKind::G722, CodecKind::Opus] {
        let before = opus_codec::live_heap_bytes();
        // A big room's participant brings no kit; the room's kits are a
        // fixed cost.
        let made: Vec<_> = (0..200)
            .map(|i| participant(i, kind, false, false))
            .collect();
        let after = opus_codec::live_heap_bytes();
        let kit = TalkerKit::new(kind, &OpusConfig::default()).expect("kit");
        let with_kit = opus_codec::live_heap_bytes();
        println!(
            "memory per participant, {}: {} KiB; a room's talker kit {} KiB (up to {} per codec)",
            kind.name(),
            (after - before) / 200 / 1024,
            (with_kit - after) / 1024,
            KITS_PER_CODEC,
        );
        drop(kit);
        drop(made);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
