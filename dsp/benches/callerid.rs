//! Caller ID FSK cost per sample, fed in 8-sample ticks as the media engine does: the
//! demodulator and message receiver on a Bell 202 MDMF burst (seizure, mark, message), and the
//! modulator.

use cardpbx_dsp::callerid::{
    encode_mdmf, CallerIdMessage, CallerIdReceiver, FskStandard, FskTx, MARK_BITS, SEIZURE_BITS,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn message() -> Vec<u8> {
    encode_mdmf(&CallerIdMessage {
        date_time: Some("03150930".into()),
        number: Some("01012345678".into()),
        name: Some("CARDPBX BENCH".into()),
        ..Default::default()
    })
    .unwrap()
}

/// One complete on-hook caller ID burst, then 100 ms of silence.
fn burst(standard: FskStandard) -> Vec<i16> {
    let mut tx = FskTx::new(standard, -13.0, SEIZURE_BITS, MARK_BITS);
    tx.send(&message()).unwrap();
    let mut x = Vec::new();
    let mut buf = [0i16; 160];
    while tx.fill(&mut buf) {
        x.extend_from_slice(&buf);
    }
    x.extend_from_slice(&buf);
    x.extend(std::iter::repeat_n(0, 800));
    x
}

fn callerid(c: &mut Criterion) {
    let mut g = c.benchmark_group("callerid");
    for standard in [FskStandard::Bell202, FskStandard::V23] {
        let x = burst(standard);
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(format!("fsk_receive_{standard:?}_8_per_tick"), |b| {
            let mut rx = CallerIdReceiver::new(standard);
            b.iter(|| {
                let mut got = 0;
                for tick in x.chunks(8) {
                    if let Some(Ok(_)) = rx.process(black_box(tick)) {
                        got += 1;
                    }
                }
                got
            })
        });
    }
    let x = burst(FskStandard::Bell202);
    g.throughput(Throughput::Elements(x.len() as u64));
    g.bench_function("fsk_transmit_8_per_tick", |b| {
        let msg = message();
        let mut tx = FskTx::new(FskStandard::Bell202, -13.0, SEIZURE_BITS, MARK_BITS);
        let mut tick = [0i16; 8];
        b.iter(|| {
            tx.send(&msg).unwrap();
            for _ in 0..x.len() / 8 {
                tx.fill(&mut tick);
                black_box(&tick);
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = callerid
}
criterion_main!(benches);
