//! Protect and unprotect of one 20 ms packet (PCMU: 160 bytes; Opus at
//! 32 kbit/s: 80 bytes), per suite. Run: `cargo bench -p srtp`.

use criterion::{criterion_group, criterion_main, Criterion};
use srtp::{Session, Suite};

fn packet(payload: usize, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 42]);
    p.resize(12 + payload + 32, 0xAB);
    p
}

fn bench(c: &mut Criterion) {
    let key = [7u8; 16];
    let salt = [3u8; 14];
    for suite in Suite::ALL {
        for (codec, payload) in [("pcmu", 160usize), ("opus", 80)] {
            let mut tx = Session::new(suite, &key, &salt[..suite.salt_len()]).unwrap();
            let mut buf = packet(payload, 0);
            let len = 12 + payload;
            let mut seq = 0u16;
            c.bench_function(&format!("protect/{}/{codec}", suite.name()), |b| {
                b.iter(|| {
                    seq = seq.wrapping_add(1);
                    buf[2..4].copy_from_slice(&seq.to_be_bytes());
                    tx.protect_rtp(&mut buf, len).unwrap()
                })
            });
            // Unprotect a stream of packets made ahead, in order.
            let mut sender = Session::new(suite, &key, &salt[..suite.salt_len()]).unwrap();
            let wires: Vec<Vec<u8>> = (0..4096u16)
                .map(|s| {
                    let mut p = packet(payload, s);
                    let n = sender.protect_rtp(&mut p, len).unwrap();
                    p.truncate(n);
                    p
                })
                .collect();
            let mut i = 0usize;
            let mut rx = Session::new(suite, &key, &salt[..suite.salt_len()]).unwrap();
            let mut scratch = vec![0u8; 12 + payload + 32];
            c.bench_function(&format!("unprotect/{}/{codec}", suite.name()), |b| {
                b.iter(|| {
                    if i == wires.len() {
                        // Start a fresh receiver so that nothing counts as a replay.
                        rx = Session::new(suite, &key, &salt[..suite.salt_len()]).unwrap();
                        i = 0;
                    }
                    let w = &wires[i];
                    i += 1;
                    scratch[..w.len()].copy_from_slice(w);
                    rx.unprotect_rtp(&mut scratch[..w.len()]).unwrap()
                })
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
