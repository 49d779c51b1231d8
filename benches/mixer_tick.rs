//! One mixer tick of one room: 3 talkers and N listeners, N = 10, 100,
//! 1,000 and 10,000, all on G.711 or all on Opus. Listeners share one
//! encoding per codec, so the cost should grow with N only by a header
//! write and a send each. Also prints the memory held per participant.

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use media_server::codec::{CodecKind, Encoder, OpusConfig};
use media_server::jitter::MAX_PAYLOAD;
use media_server::mixer::{
    Command, InPacket, Mixer, PacketOut, Participant, ParticipantId, ParticipantSettings, Room,
    RoomId, RoomSettings,
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

/// Pre-encoded frames: (length, payload).
type Frames = Vec<(usize, [u8; MAX_PAYLOAD])>;

struct Setup {
    mixer: Mixer,
    talkers: Vec<(rtrb::Producer<InPacket>, Frames)>,
    kind: CodecKind,
    _keep: (
        rtrb::Producer<Command>,
        rtrb::Consumer<media_server::mixer::MixerEvent>,
        rtrb::Consumer<media_server::mixer::Garbage>,
    ),
    listener_inputs: Vec<rtrb::Producer<InPacket>>,
}

fn participant(id: u32, kind: CodecKind) -> (Participant, rtrb::Producer<InPacket>) {
    let (tx, rx) = rtrb::RingBuffer::new(32);
    let mut s = ParticipantSettings::new(kind);
    s.remote = Some(SocketAddr::from((
        [127, 0, 0, 1],
        10_000 + (id % 50_000) as u16,
    )));
    let p = Participant::new(
        ParticipantId(id),
        s,
        rx,
        Box::new(Sink(0)),
        id,
        0,
        Arc::default(),
    )
    .expect("participant");
    (p, tx)
}

fn setup(kind: CodecKind, listeners: usize) -> Setup {
    let (mut commands, cmd_rx) = rtrb::RingBuffer::new(listeners + 16);
    let (ev_tx, events) = rtrb::RingBuffer::new(1024);
    let (g_tx, garbage) = rtrb::RingBuffer::new(16);
    let mixer = Mixer::new(1, cmd_rx, ev_tx, g_tx);
    let room = Room::new(
        RoomId(1),
        RoomSettings {
            capacity: listeners + 3,
            ..RoomSettings::default()
        },
    )
    .expect("room");
    let _ = commands.push(Command::AddRoom(Box::new(room)));
    let mut talkers = Vec::new();
    for (i, freq) in [440.0, 1000.0, 2200.0].into_iter().enumerate() {
        let (p, tx) = participant(i as u32 + 1, kind);
        let _ = commands.push(Command::AddParticipant(RoomId(1), Box::new(p)));
        let mut enc = Encoder::new(kind, &OpusConfig::default()).expect("encoder");
        let rate = kind.pcm_rate();
        let len = (rate / 50) as usize;
        let frames = (0..50)
            .map(|f| {
                let pcm: Vec<i16> = (0..len)
                    .map(|n| {
                        (6000.0
                            * (2.0 * std::f64::consts::PI * freq * (f * len + n) as f64
                                / rate as f64)
                                .sin()) as i16
                    })
                    .collect();
                let mut buf = [0u8; MAX_PAYLOAD];
                let n = enc.encode(&pcm, &mut buf).expect("encode");
                (n, buf)
            })
            .collect();
        talkers.push((tx, frames));
    }
    let mut listener_inputs = Vec::new();
    for i in 0..listeners {
        let (p, tx) = participant(100 + i as u32, kind);
        let added = commands
            .push(Command::AddParticipant(RoomId(1), Box::new(p)))
            .is_ok();
        assert!(added, "command ring sized for every participant");
        listener_inputs.push(tx);
    }
    Setup {
        mixer,
        talkers,
        kind,
        _keep: (commands, events, garbage),
        listener_inputs,
    }
}

fn feed(s: &mut Setup, tick: u64, now: Instant) {
    let kind = s.kind;
    for (t, (tx, frames)) in s.talkers.iter_mut().enumerate() {
        let (len, payload) = frames[tick as usize % frames.len()];
        let _ = tx.push(InPacket {
            seq: tick as u16,
            timestamp: (tick as u32).wrapping_mul(kind.rtp_clock() / 50),
            payload_type: kind.static_payload_type().unwrap_or(111),
            ssrc: 100 + t as u32,
            audio_level: None,
            source: SocketAddr::from(([127, 0, 0, 1], 10_001 + t as u16)),
            arrival: now,
            len: len as u16,
            payload,
        });
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixer tick, 3 talkers + N listeners");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for kind in [CodecKind::Pcmu, CodecKind::Opus] {
        for n in [10usize, 100, 1_000, 10_000] {
            let mut s = setup(kind, n);
            let mut tick = 0u64;
            let mut now = Instant::now();
            // Warm up: rooms open, jitter buffers fill, talkers are selected.
            for _ in 0..100 {
                feed(&mut s, tick, now);
                s.mixer.tick(now);
                tick += 1;
                now += Duration::from_millis(20);
            }
            assert_eq!(s.mixer.participant_count(), n + 3);
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
            assert!(stats.group_encodes > 0 && stats.own_encodes > 0);
            drop(s.listener_inputs.drain(..));
        }
    }
    g.finish();
    for kind in [CodecKind::Pcmu, CodecKind::G722, CodecKind::Opus] {
        let before = opus_codec::live_heap_bytes();
        let made: Vec<_> = (0..200).map(|i| participant(i, kind)).collect();
        let after = opus_codec::live_heap_bytes();
        println!(
            "memory per participant, {}: {} KiB",
            kind.name(),
            (after - before) / 200 / 1024
        );
        drop(made);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
