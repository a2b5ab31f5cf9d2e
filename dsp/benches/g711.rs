//! G.711 encode and decode of one second (8000 samples), both laws.

use cardpbx_dsp::g711::Law;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

fn signal() -> Vec<i16> {
    (0..8000)
        .map(|n| ((n as f32 * 0.37).sin() * 12_000.0 + (n as f32 * 1.3).sin() * 3_000.0) as i16)
        .collect()
}

fn g711(c: &mut Criterion) {
    let x = signal();
    let mut codes = vec![0u8; x.len()];
    let mut back = vec![0i16; x.len()];
    let mut g = c.benchmark_group("g711");
    g.throughput(Throughput::Elements(x.len() as u64));
    for (name, law) in [("alaw", Law::Alaw), ("ulaw", Law::Ulaw)] {
        g.bench_function(format!("{name}_encode_8000"), |b| {
            b.iter(|| law.encode_block(black_box(&x), &mut codes))
        });
        law.encode_block(&x, &mut codes);
        g.bench_function(format!("{name}_decode_8000"), |b| {
            b.iter(|| law.decode_block(black_box(&codes), &mut back))
        });
    }
    g.finish();
}

criterion_group!(benches, g711);
criterion_main!(benches);
