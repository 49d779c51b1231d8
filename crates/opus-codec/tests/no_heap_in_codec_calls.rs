//! With [`ScratchAlloc`] as the global allocator, an encode or a decode
//! takes nothing from the heap: every temporary array of the codec fits in
//! its scratch slot. Counted by a wrapped allocator that sees only what the
//! slots did not serve, on this thread, inside the calls.

use std::alloc::System;

use opus_codec::{
    count_heap_calls, scratch_stats, Application, Bandwidth, Channels, CountingAlloc, Decoder,
    Encoder, EncoderSettings, SampleRate, ScratchAlloc,
};

#[global_allocator]
static GLOBAL: ScratchAlloc<CountingAlloc<System>> = ScratchAlloc::new(CountingAlloc::new(System));

/// Heap calls `f` makes on this thread.
fn heap_calls(f: impl FnOnce()) -> u64 {
    count_heap_calls(f).1
}

fn tones(rate: u32, channels: usize, samples: usize, start: usize) -> Vec<i16> {
    (0..samples * channels)
        .map(|k| {
            let (i, c) = (start + k / channels, k % channels);
            let f = if c == 0 { 440.0 } else { 1250.0 };
            let t = i as f64 / rate as f64;
            (8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()
                + 2000.0 * (2.0 * std::f64::consts::PI * 3100.0 * t).sin()) as i16
        })
        .collect()
}

#[test]
fn encodes_and_decodes_of_every_shape_take_nothing_from_the_heap() {
    let shapes = [
        (
            SampleRate::Hz48000,
            Channels::Stereo,
            60,
            10,
            Application::Audio,
        ),
        (
            SampleRate::Hz48000,
            Channels::Mono,
            20,
            10,
            Application::Voip,
        ),
        (
            SampleRate::Hz48000,
            Channels::Mono,
            20,
            0,
            Application::Voip,
        ),
        (
            SampleRate::Hz16000,
            Channels::Mono,
            40,
            5,
            Application::Voip,
        ),
        (
            SampleRate::Hz16000,
            Channels::Stereo,
            20,
            10,
            Application::Voip,
        ),
        (
            SampleRate::Hz48000,
            Channels::Mono,
            10,
            5,
            Application::LowDelay,
        ),
    ];
    for (rate, channels, ms, complexity, application) in shapes {
        let settings = EncoderSettings {
            bitrate: 64_000,
            complexity,
            dtx: true,
            fec: true,
            packet_loss_percent: 10,
            max_bandwidth: Bandwidth::Full,
            cbr: false,
        };
        let mut enc = Encoder::new(rate, channels, application, &settings).unwrap();
        let mut dec = Decoder::new(rate, channels).unwrap();
        let per_channel = rate.hz() as usize * ms / 1000;
        let n = channels.count();
        let pcm: Vec<Vec<i16>> = (0..20)
            .map(|f| tones(rate.hz(), n, per_channel, f * per_channel))
            .collect();
        let mut packet = [0u8; 1500];
        let mut out = vec![0i16; per_channel * n];
        let mut spare = vec![0i16; per_channel * n];
        let mut heard = 0.0f64;
        for frame in &pcm {
            let mut len = 0;
            let heap = heap_calls(|| {
                len = enc.encode(frame, &mut packet).unwrap();
                dec.decode(&packet[..len], &mut out).unwrap();
                // A loss recovered from this packet's FEC, and one concealed
                // (declined for SILK in the pure-Rust build, which is fine).
                let _ = dec.decode_fec(&packet[..len], &mut spare);
                let _ = dec.conceal(&mut spare);
            });
            assert_eq!(
                heap, 0,
                "{rate:?} {channels:?} {ms} ms c{complexity}: {heap} heap calls"
            );
            heard = heard.max(out.iter().map(|&s| (s as f64).abs()).fold(0.0, f64::max));
        }
        assert!(
            heard > 4000.0,
            "{rate:?} {channels:?}: the codec really ran ({heard})"
        );
    }
    let stats = scratch_stats();
    eprintln!("scratch: {stats:?}");
    assert!(stats.high_water > 0, "the slots served the codec");
    assert_eq!(stats.spills, 0);
}
