//! Echo canceller cost per sample at 64 and 128 ms tails, fed in 8-sample ticks as the media
//! engine does, on a converging speech-like echo (adaptation active on most samples).

use cardpbx_dsp::echo::{EchoCanceller, EchoConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const SECONDS: usize = 1;

/// Harmonic-rich voiced sound with a pitch glide, and its echo (20 ms delay, 8 dB loss).
fn signals() -> (Vec<i16>, Vec<i16>) {
    let n = SECONDS * 8000;
    let mut phase = 0.0f64;
    let far: Vec<i16> = (0..n)
        .map(|i| {
            let f0 = 120.0 + 80.0 * ((i as f64) / 4000.0).sin().abs();
            phase += std::f64::consts::TAU * f0 / 8000.0;
            let s: f64 = (1..20).map(|h| (phase * h as f64).sin() / h as f64).sum();
            (s * 3000.0) as i16
        })
        .collect();
    let near = (0..n)
        .map(|i| i.checked_sub(160).map_or(0, |j| (f64::from(far[j]) * 0.4) as i16))
        .collect();
    (far, near)
}

fn bench(c: &mut Criterion) {
    let (far, near) = signals();
    let mut g = c.benchmark_group("echo");
    g.throughput(Throughput::Elements(far.len() as u64));
    for tail_ms in [64, 128] {
        let mut ec = EchoCanceller::new(EchoConfig { tail_ms, ..Default::default() }).unwrap();
        let mut out = vec![0i16; far.len()];
        g.bench_function(format!("process_tail_{tail_ms}ms"), |b| {
            b.iter(|| {
                for ((f, n), o) in far.chunks(8).zip(near.chunks(8)).zip(out.chunks_mut(8)) {
                    ec.process_block(black_box(f), black_box(n), o);
                }
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
