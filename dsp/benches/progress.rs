//! Call-progress detector cost per sample, fed in 8-sample ticks as the media engine does:
//! on China busy tone (tone blocks, cadence matching) and on a speech-like signal (voice path).

use cardpbx_dsp::progress::ProgressDetector;
use cardpbx_dsp::tone::ToneGen;
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const SECONDS: usize = 2;

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

fn busy(plan: &TonePlan) -> Vec<i16> {
    let mut g = ToneGen::new(plan.tone(ProgressTone::Busy));
    let mut x = vec![0i16; SECONDS * 8000];
    g.fill(&mut x);
    x
}

fn progress(c: &mut Criterion) {
    let plan = TonePlan::china();
    let mut g = c.benchmark_group("progress");
    g.throughput(Throughput::Elements((SECONDS * 8000) as u64));
    for (name, x) in [("busy", busy(&plan)), ("speech", speech_like())] {
        g.bench_function(format!("detect_{name}_8_per_tick"), |b| {
            let mut d = ProgressDetector::new(&plan);
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
    targets = progress
}
criterion_main!(benches);
