//! Echo canceller against a simulated hybrid: flat delay plus a short decaying, band-limited
//! impulse response with 6–12 dB loss and −63 dBm0 noise, driven by seeded speech-like signals.

use cardpbx_dsp::echo::{EchoCanceller, EchoConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counting allocator (per thread) so the no-allocation test sees only its own thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, which
// upholds the GlobalAlloc contract; the counter is a const-initialised thread-local Cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        bump();
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RATE: usize = 8000;
/// rms of a 0 dBm0 sine in 16-bit linear.
const DBM0_RMS: f64 = 16_141.0;

/// SplitMix64: small seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Approximately Gaussian, unit variance (sum of 12 uniforms).
    fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

fn rms_for(dbm0: f64) -> f64 {
    DBM0_RMS * 10f64.powf(dbm0 / 20.0)
}

/// Speech-like signal: voiced "syllables" of 80–300 ms with gliding pitch (90–260 Hz),
/// harmonics shaped by two formant peaks, attack/decay envelopes and short pauses. Scaled so
/// that the active parts average `dbm0`.
fn speech(seed: u64, seconds: f64, dbm0: f64) -> Vec<f64> {
    let n = (seconds * RATE as f64) as usize;
    let mut rng = Rng(seed);
    let mut x = vec![0.0; n];
    let mut i = 0;
    let mut phase = 0.0f64;
    while i < n {
        let len = (rng.range(0.08, 0.30) * RATE as f64) as usize;
        let f_start = rng.range(90.0, 260.0);
        let f_end = f_start * rng.range(0.7, 1.4);
        let f1 = rng.range(300.0, 900.0);
        let f2 = rng.range(900.0, 2600.0);
        let amp = rng.range(0.3, 1.0);
        for k in 0..len.min(n - i) {
            let t = k as f64 / len as f64;
            let f0 = f_start + (f_end - f_start) * t;
            phase += std::f64::consts::TAU * f0 / RATE as f64;
            let env = (t * 10.0).min(1.0) * ((1.0 - t) * 5.0).min(1.0) * amp;
            let mut s = 0.0;
            let mut h = 1;
            while f0 * h as f64 <= 3600.0 {
                let f = f0 * h as f64;
                let w = 1.0 / (1.0 + ((f - f1) / 150.0).powi(2))
                    + 0.5 / (1.0 + ((f - f2) / 250.0).powi(2))
                    + 0.02;
                s += w * (phase * h as f64).sin();
                h += 1;
            }
            x[i + k] = env * s;
        }
        i += len;
        // Pause between syllables, sometimes a longer one.
        let max_pause = if rng.unit() < 0.2 { 0.25 } else { 0.04 };
        i += (rng.range(0.0, max_pause) * RATE as f64) as usize;
    }
    let active: Vec<f64> = x.iter().copied().filter(|v| v.abs() > 1e-9).collect();
    let p = active.iter().map(|v| v * v).sum::<f64>() / active.len().max(1) as f64;
    let g = rms_for(dbm0) / p.sqrt();
    x.iter_mut().for_each(|v| *v *= g);
    x
}

fn white(seed: u64, seconds: f64, dbm0: f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let r = rms_for(dbm0);
    (0..(seconds * RATE as f64) as usize).map(|_| rng.gauss() * r).collect()
}

fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter().map(|v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// A hybrid: `delay_ms` of flat delay, then a decaying band-limited impulse response
/// `path_ms` long scaled to `loss_db` of loss at its loudest frequency, plus −63 dBm0 noise.
struct Hybrid {
    delay: usize,
    noise_rms: f64,
    ir: Vec<f64>,
    noise: Rng,
}

impl Hybrid {
    fn new(delay_ms: usize, path_ms: usize, loss_db: f64, seed: u64) -> Self {
        let len = path_ms * 8;
        let mut rng = Rng(seed);
        let fc = rng.range(600.0, 1500.0);
        let tau = len as f64 / 4.0;
        let mut ir: Vec<f64> = (0..len)
            .map(|k| {
                let k = k as f64;
                (-k / tau).exp()
                    * ((std::f64::consts::TAU * fc * k / RATE as f64).cos() + 0.3 * rng.gauss())
            })
            .collect();
        // Smooth (band-limit) with a short moving average, then set the loss.
        let raw = ir.clone();
        for (k, v) in ir.iter_mut().enumerate() {
            *v = (0..3).filter_map(|j| k.checked_sub(j).map(|i| raw[i])).sum::<f64>() / 3.0;
        }
        // Loss is the hybrid's worst case (least loss) over 200–3600 Hz.
        let peak = (4..=72)
            .map(|i| {
                let w = std::f64::consts::TAU * (i * 50) as f64 / RATE as f64;
                let (re, im) = ir.iter().enumerate().fold((0.0, 0.0), |(re, im), (k, h)| {
                    (re + h * (w * k as f64).cos(), im - h * (w * k as f64).sin())
                });
                (re * re + im * im).sqrt()
            })
            .fold(0.0, f64::max);
        let g = 10f64.powf(-loss_db / 20.0) / peak;
        ir.iter_mut().for_each(|v| *v *= g);
        Hybrid { delay: delay_ms * 8, noise_rms: rms_for(-63.0), ir, noise: Rng(seed ^ 0x5555) }
    }

    /// Echo of `far` (no noise), same length.
    fn echo(&self, far: &[i16]) -> Vec<f64> {
        (0..far.len())
            .map(|n| {
                self.ir
                    .iter()
                    .enumerate()
                    .filter_map(|(k, h)| {
                        n.checked_sub(self.delay + k).map(|i| h * f64::from(far[i]))
                    })
                    .sum()
            })
            .collect()
    }

    /// What comes back: echo + `near_speech` + noise, quantised.
    fn near(&mut self, far: &[i16], near_speech: &[f64]) -> (Vec<i16>, Vec<f64>) {
        let echo = self.echo(far);
        let r = self.noise_rms;
        let near: Vec<f64> = echo
            .iter()
            .enumerate()
            .map(|(i, e)| e + near_speech.get(i).copied().unwrap_or(0.0) + self.noise.gauss() * r)
            .collect();
        (to_i16(&near), echo)
    }
}

fn power(x: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = x.fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
    s / n.max(1) as f64
}

fn db(num: f64, den: f64) -> f64 {
    10.0 * (num / den.max(1e-12)).log10()
}

/// ERLE in dB over `range`: near-input power against output power.
fn erle(near: &[i16], out: &[i16], range: std::ops::Range<usize>) -> f64 {
    db(
        power(near[range.clone()].iter().map(|&v| f64::from(v))),
        power(out[range].iter().map(|&v| f64::from(v))),
    )
}

fn run(cfg: EchoConfig, far: &[i16], near: &[i16]) -> (EchoCanceller, Vec<i16>) {
    let mut ec = EchoCanceller::new(cfg).unwrap();
    let mut out = vec![0i16; far.len()];
    for ((f, n), o) in far.chunks(8).zip(near.chunks(8)).zip(out.chunks_mut(8)) {
        ec.process_block(f, n, o);
    }
    (ec, out)
}

fn linear(tail_ms: u32) -> EchoConfig {
    EchoConfig { tail_ms, nlp: false, ..Default::default() }
}

/// Converge on `seconds` of speech and return the linear ERLE over the last 2 s.
fn speech_erle(tail_ms: u32, delay_ms: usize, path_ms: usize, loss_db: f64, seed: u64) -> f64 {
    let seconds = 12.0;
    let far = to_i16(&speech(seed, seconds, -10.0));
    let mut hyb = Hybrid::new(delay_ms, path_ms, loss_db, seed + 1);
    let (near, echo) = hyb.near(&far, &[]);
    let (ec, out) = run(linear(tail_ms), &far, &near);
    let n = far.len();
    let e = erle(&near, &out, n - 2 * RATE..n);
    // Best measurable: near against the noise alone.
    let noise = (n - 2 * RATE..n).map(|i| f64::from(near[i]) - echo[i]);
    let ceiling = db(power(near[n - 2 * RATE..].iter().map(|&v| f64::from(v))), power(noise));
    println!(
        "tail {tail_ms} ms, delay {delay_ms} ms, path {path_ms} ms, loss {loss_db} dB: \
         ERLE {e:.1} dB (estimate {:.1} dB, noise ceiling {ceiling:.1} dB)",
        ec.erle_db()
    );
    // The running estimate agrees with the measurement, and equals the linear one with NLP off.
    assert!((f64::from(ec.erle_db()) - e).abs() < 6.0, "estimate {} vs {e}", ec.erle_db());
    assert_eq!(ec.erle_db(), ec.linear_erle_db());
    e
}

#[test]
fn converges_on_speech_tail_64() {
    for (delay, path, loss, seed) in [(5, 4, 6.0, 10), (20, 6, 9.0, 20), (40, 8, 10.0, 30)] {
        let e = speech_erle(64, delay, path, loss, seed);
        assert!(e >= 30.0, "delay {delay} ms: ERLE {e:.1} dB");
    }
}

#[test]
fn converges_on_speech_tail_128() {
    for (delay, path, loss, seed) in [(20, 4, 8.0, 40), (100, 8, 10.0, 50)] {
        let e = speech_erle(128, delay, path, loss, seed);
        assert!(e >= 30.0, "delay {delay} ms: ERLE {e:.1} dB");
    }
}

#[test]
fn converges_on_white_noise() {
    let far = to_i16(&white(7, 4.0, -10.0));
    let mut hyb = Hybrid::new(20, 6, 6.0, 8);
    let (near, _) = hyb.near(&far, &[]);
    let (_, out) = run(linear(64), &far, &near);
    // White noise converges fast: measure from 2 s on.
    let e = erle(&near, &out, 2 * RATE..far.len());
    println!("white noise, tail 64: ERLE {e:.1} dB");
    assert!(e >= 30.0, "ERLE {e:.1} dB");
}

#[test]
fn echo_beyond_tail_does_not_blow_up() {
    // 60 ms of flat delay against a 32 ms tail: nothing to cancel, nothing to add.
    let far = to_i16(&speech(60, 10.0, -10.0));
    let mut hyb = Hybrid::new(60, 4, 6.0, 61);
    let (near, _) = hyb.near(&far, &[]);
    for nlp in [false, true] {
        let cfg = EchoConfig { tail_ms: 32, nlp, ..Default::default() };
        let (ec, out) = run(cfg, &far, &near);
        let mut worst = f64::INFINITY;
        for s in 0..10 {
            let e = erle(&near, &out, s * RATE..(s + 1) * RATE);
            worst = worst.min(e);
        }
        println!("delay beyond tail (nlp {nlp}): worst 1 s ERLE {worst:.2} dB");
        assert!(worst >= 0.0, "output louder than input: {worst:.2} dB");
        assert!(ec.coefficients().iter().all(|h| h.is_finite() && h.abs() < 1.0));
    }
}

#[test]
fn double_talk_does_not_diverge() {
    // 8 s far only, then 3 s with near-end speech overlapping, then 3 s far only.
    let far = to_i16(&speech(70, 14.0, -10.0));
    let mut talker = speech(71, 3.0, -15.0);
    let dt_start = 8 * RATE;
    let dt_end = 11 * RATE;
    let mut near_speech = vec![0.0; dt_start];
    near_speech.append(&mut talker);
    let mut hyb = Hybrid::new(20, 6, 8.0, 72);
    let (near, echo) = hyb.near(&far, &near_speech);
    let (ec, out) = run(linear(64), &far, &near);

    let before = erle(&near, &out, dt_start - 2 * RATE..dt_start);
    // During double talk, the echo left in the output: out − near speech − noise ≈ residual.
    let mut worst_dt = f64::INFINITY;
    for w in (dt_start..dt_end).step_by(RATE / 4) {
        let pe = power(echo[w..w + RATE / 4].iter().copied());
        let pr = power((w..w + RATE / 4).map(|i| {
            f64::from(out[i]) - near_speech[i] - (f64::from(near[i]) - near_speech[i] - echo[i])
        }));
        worst_dt = worst_dt.min(db(pe, pr));
    }
    let after = erle(&near, &out, dt_end + RATE..dt_end + 2 * RATE);
    let last = erle(&near, &out, far.len() - RATE..far.len());
    println!(
        "double talk: before {before:.1} dB, worst 250 ms during {worst_dt:.1} dB, \
         1-2 s after {after:.1} dB, last s {last:.1} dB, estimate {:.1} dB",
        ec.erle_db()
    );
    assert!(before >= 30.0, "before {before:.1}");
    assert!(worst_dt >= 20.0, "during double talk {worst_dt:.1}");
    assert!(after >= 28.0, "after {after:.1}");
}

#[test]
fn nlp_suppresses_residual() {
    let far = to_i16(&speech(80, 10.0, -10.0));
    let mut hyb = Hybrid::new(20, 6, 8.0, 81);
    // A quiet line, so the measurement is not capped by the background noise.
    hyb.noise_rms = 0.0;
    let (near, _) = hyb.near(&far, &[]);
    let (lin_ec, lin_out) = run(linear(64), &far, &near);
    let (nlp_ec, nlp_out) = run(EchoConfig::default(), &far, &near);
    let n = far.len();
    let lin = erle(&near, &lin_out, n - 2 * RATE..n);
    let with = erle(&near, &nlp_out, n - 2 * RATE..n);
    println!(
        "NLP: linear {lin:.1} dB, with NLP {with:.1} dB (estimates {:.1} / {:.1} dB)",
        lin_ec.erle_db(),
        nlp_ec.erle_db()
    );
    assert!(with >= lin + 6.0, "NLP adds too little: {with:.1} vs {lin:.1}");
    assert!(nlp_ec.erle_db() > nlp_ec.linear_erle_db() + 6.0);
    assert_eq!(lin_ec.erle_db(), lin_ec.linear_erle_db());
}

#[test]
fn nlp_comfort_noise_matches_background() {
    // On a noisy line the NLP output sits at the background level: no holes, no pumping.
    let far = to_i16(&speech(85, 10.0, -10.0));
    let mut hyb = Hybrid::new(20, 6, 8.0, 86);
    hyb.noise_rms = rms_for(-58.0);
    let (near, echo) = hyb.near(&far, &[]);
    let (_, out) = run(EchoConfig::default(), &far, &near);
    let n = far.len();
    let pn = power((n - 2 * RATE..n).map(|i| f64::from(near[i]) - echo[i]));
    let po = power(out[n - 2 * RATE..].iter().map(|&v| f64::from(v)));
    println!("comfort noise: output {:.1} dB against background", db(po, pn));
    assert!(db(po, pn).abs() < 3.0, "output {:.1} dB against background", db(po, pn));
}

#[test]
fn near_speech_passes_through_during_double_talk_with_nlp() {
    // Converged canceller with NLP on must not suppress the near-end talker.
    let far = to_i16(&speech(90, 10.0, -10.0));
    let mut talker = speech(91, 2.0, -12.0);
    let start = 8 * RATE;
    let mut near_speech = vec![0.0; start];
    near_speech.append(&mut talker);
    let mut hyb = Hybrid::new(20, 4, 8.0, 92);
    let (near, _) = hyb.near(&far, &near_speech);
    let (_, out) = run(EchoConfig::default(), &far, &near);
    let ps = power(near_speech[start..].iter().copied());
    let po = power(out[start..].iter().map(|&v| f64::from(v)));
    let loss = db(ps, po);
    println!("near speech loss through canceller with NLP: {loss:.2} dB");
    assert!(loss.abs() < 3.0, "near speech attenuated by {loss:.1} dB");
}

#[test]
fn block_equals_per_sample_and_reset_forgets() {
    let far = to_i16(&white(100, 0.5, -15.0));
    let mut hyb = Hybrid::new(5, 2, 6.0, 101);
    let (near, _) = hyb.near(&far, &[]);
    let (_, block) = run(linear(16), &far, &near);
    let mut ec = EchoCanceller::new(linear(16)).unwrap();
    let single: Vec<i16> = far.iter().zip(&near).map(|(&f, &n)| ec.process(f, n)).collect();
    assert_eq!(block, single);
    ec.reset();
    assert!(ec.coefficients().iter().all(|&h| h == 0.0));
    assert_eq!(ec.erle_db(), 0.0);
    let again: Vec<i16> = far.iter().zip(&near).map(|(&f, &n)| ec.process(f, n)).collect();
    assert_eq!(again, single);
}

#[test]
fn processing_does_not_allocate() {
    let far = to_i16(&speech(110, 3.0, -10.0));
    let mut talker = speech(111, 1.0, -12.0);
    let mut near_speech = vec![0.0; 2 * RATE];
    near_speech.append(&mut talker);
    let mut hyb = Hybrid::new(20, 6, 8.0, 112);
    let (near, _) = hyb.near(&far, &near_speech);
    let mut out = vec![0i16; far.len()];
    let mut ec = EchoCanceller::new(EchoConfig { tail_ms: 128, ..Default::default() }).unwrap();
    let before = ALLOCS.with(Cell::get);
    for ((f, n), o) in far.chunks(8).zip(near.chunks(8)).zip(out.chunks_mut(8)) {
        ec.process_block(f, n, o);
    }
    let _ = ec.erle_db();
    ec.reset();
    ec.process(far[0], near[0]);
    assert_eq!(ALLOCS.with(Cell::get) - before, 0);
}

#[test]
fn recovers_from_echo_path_change() {
    // The line is re-routed mid-call: the energy detector first holds adaptation (it looks like
    // double talk), then lets go after about 2 s, and the filter learns the new path.
    let far = to_i16(&speech(120, 16.0, -10.0));
    let (near_a, _) = Hybrid::new(10, 4, 8.0, 121).near(&far, &[]);
    let (near_b, _) = Hybrid::new(30, 6, 8.0, 122).near(&far, &[]);
    let switch = 6 * RATE;
    let near: Vec<i16> = near_a[..switch].iter().chain(&near_b[switch..]).copied().collect();
    let (_, out) = run(linear(64), &far, &near);
    let before = erle(&near, &out, switch - 2 * RATE..switch);
    let n = far.len();
    let after = erle(&near, &out, n - 2 * RATE..n);
    let at_4_to_6 = erle(&near, &out, switch + 4 * RATE..switch + 6 * RATE);
    println!(
        "echo path change: before {before:.1} dB, 4-6 s after {at_4_to_6:.1} dB, \
         8-10 s after {after:.1} dB"
    );
    assert!(before >= 30.0, "before {before:.1}");
    assert!(at_4_to_6 >= 25.0, "4-6 s after {at_4_to_6:.1}");
    assert!(after >= 32.0, "after {after:.1}");
}

#[test]
fn near_talker_after_a_loud_far_burst_is_not_learnt() {
    // No echo at all. The far end sends a loud DTMF-like burst and falls silent, then talks
    // quietly; the near end starts talking steadily at -15 dBm0 20 ms after the burst. A Geigel
    // detector alone still sees the burst's peak in the tail and lets NLMS learn the near
    // talker; the canceller must pass the near end through untouched.
    let n = 4 * RATE;
    let tone = |f: f64, dbm0: f64, i: usize| {
        22_827.0 * 10f64.powf(dbm0 / 20.0) * (std::f64::consts::TAU * f * i as f64 / 8000.0).sin()
    };
    let far: Vec<i16> = (0..n)
        .map(|i| match i {
            0..=479 => (tone(941.0, -10.0, i) + tone(1336.0, -10.0, i)) as i16,
            480..=1599 => 0,
            _ => tone(500.0, -15.0, i) as i16,
        })
        .collect();
    let near: Vec<i16> =
        (0..n).map(|i| if i < 640 { 0 } else { tone(1000.0, -15.0, i) as i16 }).collect();
    for nlp in [false, true] {
        let (_, out) = run(EchoConfig { nlp, ..Default::default() }, &far, &near);
        let err: f64 =
            near.iter().zip(&out).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
        let pow: f64 = near.iter().map(|a| f64::from(*a).powi(2)).sum();
        let db = 10.0 * (err / pow).log10();
        println!("near talker after far burst (nlp {nlp}): distortion {db:.1} dB");
        assert!(db < -40.0, "near end changed by the canceller: {db:.1} dB");
    }
}
