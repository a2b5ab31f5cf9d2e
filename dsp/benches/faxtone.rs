//! Fax/modem tone detector (CNG 1100 Hz, CED/ANS 2100 Hz with phase-reversal check) cost per
//! sample, fed in 8-sample ticks as the media engine does: on ANS with phase reversals and on
//! a speech-like signal.

use cardpbx_dsp::faxtone::FaxToneDetector;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const SECONDS: usize = 2;

/// 2100 Hz with a phase reversal every 450 ms (V.25 ANS/PR).
fn ans_pr() -> Vec<i16> {
    (0..SECONDS * 8000)
        .map(|i| {
            let flip = if (i / 3600) % 2 == 1 { std::f64::consts::PI } else { 0.0 };
            let ph = std::f64::consts::TAU * 2100.0 * i as f64 / 8000.0 + flip;
            (ph.sin() * 7000.0) as i16
        })
        .collect()
}

/// Harmonic-rich voiced sound with a pitch glide (speech-like load).
fn speech_like() -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..SECONDS * 8000)
        .map(|i| {
            let f0 = 120.0 + 80.0 * ((i as f64) / 4000.0).sin().abs();
            phase += std::f64::consts::TAU * f0 / 8000.0;
            let s: f64 = (1..20).map(|h| (phase * h as f64).sin() / h as f64).sum();
            (s * 3000.0) as i16
        })
        .collect()
}

fn faxtone(c: &mut Criterion) {
    let mut g = c.benchmark_group("faxtone");
    g.throughput(Throughput::Elements((SECONDS * 8000) as u64));
    for (name, x) in [("ans_pr", ans_pr()), ("speech", speech_like())] {
        g.bench_function(format!("detect_{name}_8_per_tick"), |b| {
            let mut d = FaxToneDetector::new();
            b.iter(|| {
                let mut n = 0;
                for tick in x.chunks(8) {
                    d.process(black_box(tick), |_| n += 1);
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = faxtone
}
criterion_main!(benches);
