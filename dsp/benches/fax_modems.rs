//! Fax modem receivers (V.27ter 2400/4800, V.29 7200/9600, V.17 7200–14400, and the V.21
//! channel 2 control modem): cost per line sample, fed in 8-sample ticks as the media engine
//! does, over a whole burst (training and data; V.17 with its long training; V.21 with its
//! flag preamble).

use cardpbx_dsp::fax::modem::{ImageRate, ImageRx, ImageTx, ModemRx, ModemTx, RxConfig, TxConfig};
use cardpbx_dsp::fax::v21::{V21Rx, V21Tx};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// One burst carrying 2 s worth of pseudo-random data at `rate`.
fn burst(rate: ImageRate) -> Vec<i16> {
    let mut tx = ImageTx::new(rate, TxConfig::default());
    let mut x = 0x1234_5678u32;
    let bits: Vec<u8> = (0..rate.bits_per_second() as usize * 2)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 1) as u8
        })
        .collect();
    let mut sent = 0;
    let mut out = Vec::new();
    let mut buf = [0i16; 160];
    loop {
        sent += tx.push_bits(&bits[sent..]);
        if sent == bits.len() {
            tx.finish();
        }
        let n = tx.fill(&mut buf);
        out.extend_from_slice(&buf[..n]);
        if n < buf.len() {
            return out;
        }
    }
}

/// The rate in bench names: bit/s, with a `v17_` prefix for V.17 (V.29 and V.17 share 7200
/// and 9600).
fn name(rate: ImageRate) -> String {
    let v17 = if rate.is_v17() { "v17_" } else { "" };
    format!("{v17}{}", rate.bits_per_second())
}

fn receivers(c: &mut Criterion) {
    let mut g = c.benchmark_group("fax_modem_rx");
    for rate in ImageRate::ALL {
        let x = burst(rate);
        g.throughput(Throughput::Elements(x.len() as u64));
        g.bench_function(format!("rx_{}_8_per_tick", name(rate)), |b| {
            let mut rx = ImageRx::new(rate, RxConfig::default());
            b.iter(|| {
                rx.reset();
                let mut n = 0u32;
                for tick in x.chunks(8) {
                    rx.process(black_box(tick), &mut |bit| n += u32::from(bit));
                }
                n
            })
        });
    }
    // V.21 channel 2: one second of HDLC flags and pseudo-random bits (300 bit/s).
    let v21 = {
        let mut tx = V21Tx::new(-13.0);
        let mut x = 0x9E37_79B9u32;
        let mut left = 300u32;
        let mut src = || {
            left = left.checked_sub(1)?;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            Some((x & 1) as u8)
        };
        let mut out = vec![0i16; 8000];
        let n = tx.fill(&mut out, &mut src);
        out.truncate(n);
        out
    };
    g.throughput(Throughput::Elements(v21.len() as u64));
    g.bench_function("rx_v21_300_8_per_tick", |b| {
        b.iter(|| {
            let mut rx = V21Rx::new();
            let mut n = 0u32;
            for tick in v21.chunks(8) {
                rx.process(black_box(tick), &mut |bit| n += u32::from(bit));
            }
            n
        })
    });
    g.finish();
    let mut g = c.benchmark_group("fax_modem_tx");
    for rate in ImageRate::ALL {
        g.throughput(Throughput::Elements(8000));
        g.bench_function(format!("tx_{}_1s", name(rate)), |b| {
            let mut tx = ImageTx::new(rate, TxConfig::default());
            let mut buf = [0i16; 8];
            b.iter(|| {
                for _ in 0..1000 {
                    tx.fill(&mut buf);
                }
                black_box(buf[0])
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
    targets = receivers
}
criterion_main!(benches);
