//! Encode and decode time per 20 ms mono frame at complexity 0, 5 and 10,
//! 16 and 48 kHz, on a voice-like signal (a 140 Hz buzz with three
//! formant-like partials and a slow syllable envelope), with the binary's
//! allocator arrangement (the scratch stack around the system allocator).

use std::alloc::System;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use opus_codec::{
    Application, Bandwidth, Channels, Decoder, Encoder, EncoderSettings, SampleRate, ScratchAlloc,
};

#[global_allocator]
static GLOBAL: ScratchAlloc<System> = ScratchAlloc::new(System);

fn voice(rate: u32, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let s: f64 = [(140.0, 1.0), (700.0, 0.5), (1220.0, 0.35), (2600.0, 0.2)]
                .iter()
                .map(|&(f, a)| a * (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            (6000.0 * envelope * s) as i16
        })
        .collect()
}

fn settings(complexity: i32) -> EncoderSettings {
    EncoderSettings {
        bitrate: 32_000,
        complexity,
        dtx: false,
        fec: true,
        packet_loss_percent: 5,
        max_bandwidth: Bandwidth::Full,
        cbr: false,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("opus 20 ms mono, {}", opus_codec::IMPLEMENTATION));
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for rate in [SampleRate::Hz16000, SampleRate::Hz48000] {
        let frame = rate.hz() as usize / 50;
        let pcm = voice(rate.hz(), frame * 50);
        for complexity in [0, 5, 10] {
            let id = format!("{} kHz c{complexity}", rate.hz() / 1000);
            let mut enc = Encoder::new(
                rate,
                Channels::Mono,
                Application::Voip,
                &settings(complexity),
            )
            .expect("encoder");
            let mut out = [0u8; 1500];
            let mut k = 0;
            g.bench_function(BenchmarkId::new("encode", &id), |b| {
                b.iter(|| {
                    k = (k + 1) % 50;
                    enc.encode(&pcm[k * frame..(k + 1) * frame], &mut out)
                        .expect("encode")
                })
            });
            // A second of this signal encoded at this complexity, decoded in turn.
            let packets: Vec<Vec<u8>> = pcm
                .chunks(frame)
                .map(|f| {
                    let n = enc.encode(f, &mut out).expect("encode");
                    out[..n].to_vec()
                })
                .collect();
            let mut dec = Decoder::new(rate, Channels::Mono).expect("decoder");
            let mut pcm_out = vec![0i16; frame];
            let mut k = 0;
            g.bench_function(BenchmarkId::new("decode", &id), |b| {
                b.iter(|| {
                    k = (k + 1) % packets.len();
                    dec.decode(&packets[k], &mut pcm_out).expect("decode")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
