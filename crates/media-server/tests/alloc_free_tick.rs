//! No heap allocation inside a mixer tick in steady state: a counting
//! global allocator counts allocations made by the ticking thread while it
//! is inside `Mixer::tick`, over 10,000 ticks with 100 participants
//! (3 talkers, codecs mixed), after a warm-up. It sits under
//! `opus_codec::ScratchAlloc`, as the binary's allocator does, so it counts
//! what reaches the heap.

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_server::codec::{CodecKind, Encoder, OpusConfig};
use media_server::jitter::MAX_PAYLOAD;
use media_server::mixer::{
    Command, InPacket, Mixer, PacketOut, Participant, ParticipantId, ParticipantSettings, Room,
    RoomId, RoomSettings,
};

#[global_allocator]
static GLOBAL: opus_codec::ScratchAlloc<opus_codec::CountingAlloc<System>> =
    opus_codec::ScratchAlloc::new(opus_codec::CountingAlloc::new(System));

struct CountOut(u64);
impl PacketOut for CountOut {
    fn send(&mut self, _to: SocketAddr, packet: &[u8]) -> bool {
        self.0 += packet.len() as u64;
        true
    }
}

/// Pre-encoded packets for one talker, replayed in a loop.
fn talker_packets(kind: CodecKind, freq: f64, frames: usize) -> Vec<(usize, [u8; MAX_PAYLOAD])> {
    let mut enc = Encoder::new(kind, &OpusConfig::default()).unwrap();
    let rate = kind.pcm_rate();
    let len = (rate / 50) as usize;
    (0..frames)
        .map(|f| {
            let pcm: Vec<i16> = (0..len)
                .map(|i| {
                    (6000.0
                        * (2.0 * std::f64::consts::PI * freq * (f * len + i) as f64 / rate as f64)
                            .sin()) as i16
                })
                .collect();
            let mut buf = [0u8; MAX_PAYLOAD];
            let n = enc.encode(&pcm, &mut buf).unwrap();
            (n, buf)
        })
        .collect()
}

/// Runs `total` ticks (the first 1,000 unmeasured) of a room of 100 with
/// these codecs round-robin; returns (allocations, measured ticks). With
/// `srtp`, every participant's packets go out through the server's
/// SrtpOut (protected in place, sent on a real socket).
fn run(kinds: &[CodecKind], total: u64, srtp: bool) -> (u64, u64) {
    run_recorded(kinds, total, srtp, None)
}

/// With `record`, the room's mix is recorded to that file from the start.
fn run_recorded(
    kinds: &[CodecKind],
    total: u64,
    srtp: bool,
    record: Option<&std::path::Path>,
) -> (u64, u64) {
    let mut allocs = 0;
    let (mut commands, cmd_rx) = rtrb::RingBuffer::new(512);
    let (ev_tx, mut events) = rtrb::RingBuffer::new(65536);
    let (g_tx, _garbage) = rtrb::RingBuffer::new(512);
    let mut mixer = Mixer::new(4, cmd_rx, ev_tx, g_tx);
    let room = Room::new(
        RoomId(1),
        RoomSettings {
            capacity: 128,
            ..RoomSettings::default()
        },
    )
    .unwrap();
    assert!(commands.push(Command::AddRoom(Box::new(room))).is_ok());
    let recording = record.map(|path| {
        let (tap, recording) = media_server::recording::start(path, &[]).unwrap();
        assert!(commands
            .push(Command::Record(RoomId(1), Box::new(tap)))
            .is_ok());
        recording
    });

    let mut inputs = Vec::new();
    for i in 0..100u32 {
        let kind = kinds[i as usize % kinds.len()];
        let (tx, rx) = rtrb::RingBuffer::new(32);
        let mut s = ParticipantSettings::new(kind);
        let addr: SocketAddr = format!("127.0.0.1:{}", 30000 + i).parse().unwrap();
        s.remote = Some(addr);
        let out: Box<dyn PacketOut> = if srtp {
            let keys = media_server::io::SrtpKeys::new(
                srtp::Suite::AesCm128HmacSha1_80,
                &[i as u8; 30],
                &[7; 30],
            )
            .unwrap();
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_nonblocking(true).unwrap();
            Box::new(media_server::io::SrtpOut::new(
                sock,
                keys.outbound().unwrap(),
                Arc::default(),
            ))
        } else {
            Box::new(CountOut(0))
        };
        let p = Participant::new(ParticipantId(i + 1), s, rx, out, i, 0, Arc::default())
            .and_then(|p| p.with_kit(&OpusConfig::default()))
            .unwrap();
        assert!(commands
            .push(Command::AddParticipant(RoomId(1), Box::new(p)))
            .is_ok());
        inputs.push((tx, kind, addr));
    }
    let talkers: Vec<Vec<(usize, [u8; MAX_PAYLOAD])>> = [(0usize, 440.0), (1, 1000.0), (2, 2200.0)]
        .iter()
        .map(|&(i, f)| talker_packets(kinds[i % kinds.len()], f, 50))
        .collect();

    let mut now = Instant::now();
    let mut measured = 0u64;
    for tick in 0..total {
        for (t, packets) in talkers.iter().enumerate() {
            let (tx, kind, addr) = &mut inputs[t];
            let (len, payload) = packets[tick as usize % packets.len()];
            let pkt = InPacket {
                seq: tick as u16,
                timestamp: (tick as u32).wrapping_mul(kind.rtp_clock() / 50),
                payload_type: kind.static_payload_type().unwrap_or(111),
                ssrc: 7 + t as u32,
                audio_level: None,
                source: *addr,
                arrival: now,
                len: len as u16,
                payload,
            };
            let _ = tx.push(pkt);
        }
        // The first 1,000 ticks warm up (rooms, participants, codec start-up).
        let ((), calls) = opus_codec::count_heap_calls(|| mixer.tick(now));
        if tick >= 1000 {
            allocs += calls;
            measured += 1;
        }
        while events.pop().is_ok() {}
        now += Duration::from_millis(20);
    }
    assert_eq!(mixer.participant_count(), 100);
    let stats = mixer.room_stats(RoomId(1)).unwrap();
    assert!(
        stats.own_encodes >= 3 * measured,
        "three talkers were mixed: {stats:?}"
    );
    assert!(stats.packets_sent >= 100 * measured);
    if let Some(r) = recording {
        let frames = r.counts.frames.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(frames, total, "a frame a tick went to the recording");
    }
    (allocs, measured)
}

#[test]
fn ten_thousand_ticks_with_100_participants_allocate_nothing() {
    let kinds = [CodecKind::Pcmu, CodecKind::G722, CodecKind::Pcma];
    let (allocs, measured) = run(&kinds, 11_000, false);
    assert_eq!(measured, 10_000);
    assert_eq!(allocs, 0, "{allocs} allocations in {measured} ticks");
}

/// An Opus room: the codec's temporary arrays live in its scratch slot
/// (the pure-Rust libopus made them heap vectors; the system libopus keeps
/// them on the C stack), so an Opus tick allocates nothing either.
#[test]
fn ten_thousand_ticks_of_an_opus_room_allocate_nothing() {
    let kinds = [CodecKind::Pcmu, CodecKind::Opus];
    let (allocs, measured) = run(&kinds, 11_000, false);
    assert_eq!(measured, 10_000);
    assert_eq!(allocs, 0, "{allocs} allocations in {measured} ticks");
}

/// With SRTP every listener's packet is protected in the tick: in place,
/// in a buffer made when the participant was, so still nothing allocated.
#[test]
fn ten_thousand_ticks_with_srtp_allocate_nothing() {
    let kinds = [CodecKind::Pcmu, CodecKind::Opus];
    let (allocs, measured) = run(&kinds, 11_000, true);
    assert_eq!(measured, 10_000);
    assert_eq!(allocs, 0, "{allocs} allocations in {measured} ticks");
}

/// A recorded G.711 room: the tick encodes the mix in Opus for the
/// recording and copies it into the writer's ring, allocating nothing.
#[test]
fn ten_thousand_ticks_of_a_recorded_room_allocate_nothing() {
    let path = std::env::temp_dir().join(format!("confab-alloc-rec-{}.opus", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let kinds = [CodecKind::Pcmu, CodecKind::G722];
    let (allocs, measured) = run_recorded(&kinds, 11_000, false, Some(&path));
    assert_eq!(measured, 10_000);
    assert_eq!(allocs, 0, "{allocs} allocations in {measured} ticks");
    let _ = std::fs::remove_file(&path);
}
