//! DTMF detector and generator cost per sample, fed in 8-sample ticks as the media engine does.
//!
//! `kernel_scalar_baseline` is the per-sample work of a classic float detector (eight separate
//! Goertzel states updated one after another, plus the energy sum; no decision logic), for
//! comparison with the detector's vectorised two-samples-per-step bank.

use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfGenConfig, DtmfGenerator};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const SECONDS: usize = 2;

/// Harmonic-rich voiced sound with a pitch glide (speech-like load).
fn speech_like() -> Vec<i16> {
    let n = SECONDS * 8000;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let f0 = 120.0 + 80.0 * ((i as f64) / 4000.0).sin().abs();
            phase += std::f64::consts::TAU * f0 / 8000.0;
            let s: f64 = (1..20).map(|h| (phase * h as f64).sin() / h as f64).sum();
            (s * 3000.0) as i16
        })
        .collect()
}

fn digits() -> Vec<i16> {
    let mut g = DtmfGenerator::new(DtmfGenConfig::default());
    g.queue("0123456789*#ABCD").unwrap();
    let mut x = vec![0i16; SECONDS * 8000];
    g.fill(&mut x);
    x
}

#[derive(Clone, Copy)]
struct ScalarGoertzel {
    c: f32,
    v2: f32,
    v3: f32,
}

fn scalar_baseline(
    state: &mut [ScalarGoertzel; 8],
    energy: &mut f32,
    count: &mut usize,
    x: &[i16],
) {
    for &s in x {
        let f = f32::from(s);
        *energy += f * f;
        for g in state.iter_mut() {
            let v1 = g.v2;
            g.v2 = g.v3;
            g.v3 = g.c * g.v2 - v1 + f;
        }
        *count += 1;
        if *count == 102 {
            let mut p = 0.0;
            for g in state.iter_mut() {
                p += g.v3 * g.v3 + g.v2 * g.v2 - g.c * g.v2 * g.v3;
                g.v2 = 0.0;
                g.v3 = 0.0;
            }
            black_box(p + *energy);
            *energy = 0.0;
            *count = 0;
        }
    }
}

fn dtmf(c: &mut Criterion) {
    let mut g = c.benchmark_group("dtmf");
    g.throughput(Throughput::Elements((SECONDS * 8000) as u64));
    for (name, x) in [("speech", speech_like()), ("digits", digits())] {
        g.bench_function(format!("detect_{name}_8_per_tick"), |b| {
            let mut d = DtmfDetector::new(DtmfConfig::default());
            b.iter(|| {
                let mut n = 0;
                for tick in x.chunks(8) {
                    d.process(black_box(tick), |_| n += 1);
                }
                n
            })
        });
    }
    let x = speech_like();
    g.bench_function("kernel_scalar_baseline_8_per_tick", |b| {
        let freqs = [697.0f32, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];
        let mut st = freqs.map(|f| ScalarGoertzel {
            c: 2.0 * (std::f32::consts::TAU * f / 8000.0).cos(),
            v2: 0.0,
            v3: 0.0,
        });
        let (mut e, mut n) = (0.0, 0);
        b.iter(|| {
            for tick in x.chunks(8) {
                scalar_baseline(&mut st, &mut e, &mut n, black_box(tick));
            }
        })
    });
    g.bench_function("generate_8_per_tick", |b| {
        let mut gen = DtmfGenerator::new(DtmfGenConfig::default());
        let mut tick = [0i16; 8];
        b.iter(|| {
            for _ in 0..SECONDS * 1000 {
                if !gen.fill(&mut tick) {
                    gen.queue("0123456789").unwrap();
                }
                black_box(&tick);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, dtmf);
criterion_main!(benches);
