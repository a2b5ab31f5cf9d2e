//! One media-engine tick for 100, 1000 and 4000 channels: every channel switched to another,
//! a tone on every tenth channel, DTMF detection on all, on a card whose exchange does nothing
//! (virtual clock), so the figures are the engine's own work.

use cardpbx::bench::build_workload;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

fn tick(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_tick");
    for n in [100usize, 1000, 4000] {
        let (mut engine, mut handle) = build_workload(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                engine.tick().expect("fake card never fails");
                while let Some(ev) = handle.poll_event() {
                    black_box(ev);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);
