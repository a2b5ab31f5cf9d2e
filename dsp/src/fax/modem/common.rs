//! Building blocks shared by the fax image modems (V.27ter, V.29 and V.17).
//!
//! One implementation of each: complex baseband arithmetic, the self-synchronising scrambler,
//! raised-cosine pulse design, the transmit pulse shaper/modulator, and the receive chain
//! (carrier detect, down-mixer, matched filter, Gardner symbol-timing recovery with cubic
//! interpolation, symbol-level AGC, T/2 fractionally spaced LMS equaliser, decision-directed
//! carrier PLL). Everything allocates in `new` only; the per-sample methods never allocate.

use crate::tone::DBM0_PEAK;
use std::f32::consts::PI;
use std::ops::{Add, AddAssign, Mul, Neg, Sub};

/// Samples per second on the line.
pub const SAMPLE_RATE: f32 = 8000.0;

/// Mean-square linear value (16-bit scale) of a signal at `dbm0`.
pub fn dbm0_to_power(dbm0: f32) -> f32 {
    DBM0_PEAK * DBM0_PEAK * 0.5 * 10f32.powf(dbm0 / 10.0)
}

/// A complex baseband sample (f32 parts).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Complex {
    /// In-phase part.
    pub re: f32,
    /// Quadrature part.
    pub im: f32,
}

impl Complex {
    /// 0 + 0j.
    pub const ZERO: Complex = Complex { re: 0.0, im: 0.0 };

    /// `re + j·im`.
    pub const fn new(re: f32, im: f32) -> Self {
        Complex { re, im }
    }

    /// `e^(j·angle)`.
    pub fn from_angle(angle: f32) -> Self {
        let (s, c) = angle.sin_cos();
        Complex { re: c, im: s }
    }

    /// Complex conjugate.
    pub fn conj(self) -> Self {
        Complex { re: self.re, im: -self.im }
    }

    /// `|z|²`.
    pub fn norm_sqr(self) -> f32 {
        self.re * self.re + self.im * self.im
    }

    /// Argument in radians, `-π..=π`.
    pub fn arg(self) -> f32 {
        self.im.atan2(self.re)
    }

    /// Multiply by a real scalar.
    pub fn scale(self, k: f32) -> Self {
        Complex { re: self.re * k, im: self.im * k }
    }
}

impl Add for Complex {
    type Output = Complex;
    fn add(self, o: Complex) -> Complex {
        Complex { re: self.re + o.re, im: self.im + o.im }
    }
}

impl AddAssign for Complex {
    fn add_assign(&mut self, o: Complex) {
        self.re += o.re;
        self.im += o.im;
    }
}

impl Sub for Complex {
    type Output = Complex;
    fn sub(self, o: Complex) -> Complex {
        Complex { re: self.re - o.re, im: self.im - o.im }
    }
}

impl Neg for Complex {
    type Output = Complex;
    fn neg(self) -> Complex {
        Complex { re: -self.re, im: -self.im }
    }
}

impl Mul for Complex {
    type Output = Complex;
    fn mul(self, o: Complex) -> Complex {
        Complex { re: self.re * o.re - self.im * o.im, im: self.re * o.im + self.im * o.re }
    }
}

/// Self-synchronising scrambler/descrambler with generating polynomial `1 + x^-a + x^-b`.
///
/// V.29 and V.17 use `1 + x^-18 + x^-23`; V.27ter uses `1 + x^-6 + x^-7` plus a guard that
/// inverts one output bit whenever the line sequence has repeated with a period of 1, 2, 3, 4,
/// 6, 8, 9 or 12 bits for 33 bits (counter compared against the bits 8, 9 and 12 back).
/// The descrambler mirrors the same guard, so the pair is transparent.
#[derive(Debug, Clone)]
pub struct Scrambler {
    reg: u32,
    tap_a: u32,
    tap_b: u32,
    guard: bool,
    count: u32,
}

impl Scrambler {
    /// A scrambler `1 + x^-tap_a + x^-tap_b` (both taps 1..=31), no repetition guard.
    pub fn new(tap_a: u32, tap_b: u32) -> Self {
        assert!((1..=31).contains(&tap_a) && (1..=31).contains(&tap_b));
        Scrambler { reg: 0, tap_a, tap_b, guard: false, count: 0 }
    }

    /// The V.29/V.17 scrambler `1 + x^-18 + x^-23`.
    pub fn v29() -> Self {
        Scrambler::new(18, 23)
    }

    /// The V.27ter scrambler `1 + x^-6 + x^-7` with its repeated-pattern guard.
    pub fn v27ter() -> Self {
        Scrambler { guard: true, ..Scrambler::new(6, 7) }
    }

    /// Set the shift register (bit 0 = the most recent line bit).
    pub fn with_state(mut self, reg: u32) -> Self {
        self.reg = reg;
        self
    }

    fn feedback(&self) -> u8 {
        (((self.reg >> (self.tap_a - 1)) ^ (self.reg >> (self.tap_b - 1))) & 1) as u8
    }

    /// The guard: returns true when this bit must be inverted; updates the counter with `line`.
    fn guard_step(&mut self, line: u8) -> bool {
        if !self.guard {
            return false;
        }
        if self.count >= 33 {
            self.count = 0;
            return true;
        }
        let l = u32::from(line);
        let differs = ((self.reg >> 7) ^ l) & ((self.reg >> 8) ^ l) & ((self.reg >> 11) ^ l) & 1;
        if differs == 1 {
            self.count = 0;
        } else {
            self.count += 1;
        }
        false
    }

    /// Scramble one data bit (0/1); returns the line bit.
    pub fn scramble(&mut self, bit: u8) -> u8 {
        let mut out = (bit & 1) ^ self.feedback();
        if self.guard && self.count >= 33 {
            out ^= 1;
            self.count = 0;
        } else {
            self.guard_step(out);
        }
        self.reg = (self.reg << 1) | u32::from(out);
        out
    }

    /// Descramble one line bit (0/1); returns the data bit.
    pub fn descramble(&mut self, line: u8) -> u8 {
        let line = line & 1;
        let mut out = line ^ self.feedback();
        if self.guard_step(line) {
            out ^= 1;
        }
        self.reg = (self.reg << 1) | u32::from(line);
        out
    }
}

/// Raised-cosine pulse at `t` symbol periods (value 1 at `t = 0`, zero at other integers).
pub fn raised_cosine(t: f32, beta: f32) -> f32 {
    let sinc = if t.abs() < 1e-6 { 1.0 } else { (PI * t).sin() / (PI * t) };
    let d = 1.0 - (2.0 * beta * t) * (2.0 * beta * t);
    if d.abs() < 1e-5 {
        sinc * PI / 4.0
    } else {
        sinc * (PI * beta * t).cos() / d
    }
}

/// Root-raised-cosine pulse at `t` symbol periods (two in cascade make [`raised_cosine`]).
pub fn root_raised_cosine(t: f32, beta: f32) -> f32 {
    if t.abs() < 1e-6 {
        return 1.0 - beta + 4.0 * beta / PI;
    }
    let x = 4.0 * beta * t;
    if (1.0 - x * x).abs() < 1e-4 {
        let a = PI / (4.0 * beta);
        return beta / 2f32.sqrt() * ((1.0 + 2.0 / PI) * a.sin() + (1.0 - 2.0 / PI) * a.cos());
    }
    ((PI * t * (1.0 - beta)).sin() + x * (PI * t * (1.0 + beta)).cos()) / (PI * t * (1.0 - x * x))
}

/// Root-raised-cosine FIR taps at `samples_per_symbol`, spanning `span_symbols` symbols,
/// scaled to unit DC gain.
pub fn rrc_fir(beta: f32, samples_per_symbol: f32, span_symbols: usize) -> Vec<f32> {
    let n = (span_symbols as f32 * samples_per_symbol).round() as usize | 1;
    let mid = (n / 2) as f32;
    let mut taps: Vec<f32> =
        (0..n).map(|i| root_raised_cosine((i as f32 - mid) / samples_per_symbol, beta)).collect();
    let sum: f32 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

/// A complex oscillator `e^(j·2π·f·n/8000)`, kept on the unit circle by renormalisation.
#[derive(Debug, Clone)]
pub struct Oscillator {
    z: Complex,
    w: Complex,
}

impl Oscillator {
    /// An oscillator at `freq_hz` (negative for a clockwise one).
    pub fn new(freq_hz: f32) -> Self {
        let w = (2.0 * std::f64::consts::PI * f64::from(freq_hz) / 8000.0) as f32;
        Oscillator { z: Complex::new(1.0, 0.0), w: Complex::from_angle(w) }
    }

    /// Restart at phase 0.
    pub fn reset(&mut self) {
        self.z = Complex::new(1.0, 0.0);
    }

    /// The current phasor; advances one sample.
    #[inline]
    pub fn step(&mut self) -> Complex {
        let r = self.z;
        let z = self.z * self.w;
        self.z = z.scale(1.5 - 0.5 * z.norm_sqr());
        r
    }
}

/// Transmit pulse shaper and modulator: symbols in at `baud`, real samples out at 8 kHz.
///
/// Root-raised-cosine shaping by a polyphase table (the 8000/baud ratio is rational: 10/3,
/// 5 or 20/3), then `Re{x·e^(jωn)}` at the carrier.
#[derive(Debug, Clone)]
pub struct Modulator {
    table: Vec<f32>,
    len: usize,
    p: u32,
    q: u32,
    acc: u32,
    hist: Vec<Complex>,
    pos: usize,
    osc: Oscillator,
    gain: f32,
    unit_power: f32,
}

impl Modulator {
    /// A modulator for `baud` (1200, 1600 or 2400) at `carrier_hz`, RRC roll-off `beta`,
    /// pulse span `span` symbols. Output level is set by [`Modulator::set_level`].
    pub fn new(baud: u32, carrier_hz: f32, beta: f32, span: usize) -> Self {
        let g = gcd(8000, baud);
        let (p, q) = (8000 / g, baud / g);
        let mut table = vec![0f32; p as usize * span];
        for acc in 0..p as usize {
            for i in 0..span {
                let t = acc as f32 / p as f32 + i as f32 - span as f32 / 2.0;
                table[acc * span + i] = root_raised_cosine(t, beta);
            }
        }
        // Mean output power for unit-power random symbols, before the gain.
        let sum: f32 = table.iter().map(|h| h * h).sum();
        let unit_power = sum / p as f32 * 0.5;
        let mut m = Modulator {
            table,
            len: span,
            p,
            q,
            acc: 0,
            hist: vec![Complex::ZERO; 2 * span],
            pos: 0,
            osc: Oscillator::new(carrier_hz),
            gain: 1.0,
            unit_power,
        };
        m.set_level(-12.0, 1.0);
        m
    }

    /// Set the gain so that symbols of mean power `symbol_power` come out at `dbm0`.
    pub fn set_level(&mut self, dbm0: f32, symbol_power: f32) {
        self.gain = (dbm0_to_power(dbm0) / (self.unit_power * symbol_power)).sqrt();
    }

    /// Clear the filter history and restart the carrier and symbol clock.
    pub fn reset(&mut self) {
        self.hist.iter_mut().for_each(|h| *h = Complex::ZERO);
        self.acc = 0;
        self.pos = 0;
        self.osc.reset();
    }

    /// Produce one output sample; calls `next_symbol` when a new symbol is due.
    #[inline]
    pub fn sample(&mut self, mut next_symbol: impl FnMut() -> Complex) -> f32 {
        self.acc += self.q;
        if self.acc >= self.p {
            self.acc -= self.p;
            let s = next_symbol();
            self.pos = if self.pos == 0 { self.len - 1 } else { self.pos - 1 };
            self.hist[self.pos] = s;
            self.hist[self.pos + self.len] = s;
        }
        let taps = &self.table[self.acc as usize * self.len..(self.acc as usize + 1) * self.len];
        let h = &self.hist[self.pos..self.pos + self.len];
        let mut x = Complex::ZERO;
        for (s, &c) in h.iter().zip(taps) {
            x.re += s.re * c;
            x.im += s.im * c;
        }
        let z = self.osc.step();
        (x.re * z.re - x.im * z.im) * self.gain
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Energy detector with hysteresis: a one-pole mean-square meter (about 8 ms).
///
/// Carrier is on above `on` and off below `off`, and also off when the level falls 5 dB below
/// the reference level [`CarrierDetect::hold_reference`] recorded (so a carrier ending into line
/// noise louder than `off` is still seen to end); after such an end, a new carrier must also
/// rise 6 dB above the noise floor that follows.
#[derive(Debug, Clone)]
pub struct CarrierDetect {
    power: f32,
    on: f32,
    off: f32,
    reference: f32,
    floor: f32,
    present: bool,
}

impl CarrierDetect {
    /// Thresholds in dBm0.
    pub fn new(on_dbm0: f32, off_dbm0: f32) -> Self {
        CarrierDetect {
            power: 0.0,
            on: dbm0_to_power(on_dbm0),
            off: dbm0_to_power(off_dbm0),
            reference: 0.0,
            floor: 0.0,
            present: false,
        }
    }

    /// Feed one sample; returns `Some(new_state)` on a change.
    #[inline]
    pub fn update(&mut self, x: f32) -> Option<bool> {
        self.power += (x * x - self.power) * (1.0 / 64.0);
        // After a carrier ends, the floor follows the line noise down (and creeps up about
        // 4 dB/s), so noise louder than `on` does not count as a new carrier.
        self.floor = (self.floor * 1.0001).min(self.power);
        if self.present {
            if self.power < self.off || self.power < self.reference {
                self.present = false;
                self.reference = 0.0;
                self.floor = self.power;
                return Some(false);
            }
        } else if self.power > self.on && self.power > 4.0 * self.floor {
            self.present = true;
            return Some(true);
        }
        None
    }

    /// Remember the present level as the carrier's level (off again 5 dB below it).
    pub fn hold_reference(&mut self) {
        self.reference = self.power * 0.316;
    }

    /// Mean-square level (16-bit scale).
    pub fn power(&self) -> f32 {
        self.power
    }

    /// Whether energy is above threshold.
    pub fn present(&self) -> bool {
        self.present
    }

    /// Forget everything.
    pub fn reset(&mut self) {
        self.power = 0.0;
        self.reference = 0.0;
        self.floor = 0.0;
        self.present = false;
    }
}

/// Symbol-level automatic gain control: scales symbols so that their mean power equals a
/// target; adapts while unlocked, then holds (the equaliser tracks slow changes after that).
#[derive(Debug, Clone)]
pub struct Agc {
    gain: f32,
    mean: f32,
    target: f32,
    locked: bool,
}

impl Agc {
    /// An AGC aiming at mean symbol power `target`.
    pub fn new(target: f32) -> Self {
        Agc { gain: 1.0, mean: 0.0, target, locked: false }
    }

    /// Restart unlocked, measuring from scratch.
    pub fn reset(&mut self, target: f32) {
        *self = Agc::new(target);
    }

    /// Measure one raw (un-scaled) symbol sample and, if unlocked, update the gain.
    pub fn measure(&mut self, raw: Complex) {
        if self.locked {
            return;
        }
        let p = raw.norm_sqr();
        self.mean = if self.mean == 0.0 { p } else { self.mean + (p - self.mean) * 0.15 };
        if self.mean > 1e-12 {
            self.gain = (self.target / self.mean).sqrt();
        }
    }

    /// Stop adapting.
    pub fn lock(&mut self) {
        self.locked = true;
    }

    /// Present gain.
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Mean power of the raw (un-scaled) symbols as measured so far.
    pub fn raw_mean(&self) -> f32 {
        if self.mean > 0.0 {
            self.mean
        } else {
            self.target
        }
    }
}

/// Gardner symbol-timing recovery with a cubic (Lagrange) interpolator.
///
/// Fed with matched-filter output at 8 kHz, it emits samples at T/2 spacing, alternately a
/// symbol-centre and a mid-symbol sample. The Gardner detector
/// `Re{conj(mid)·(prev − cur)}` steers the interpolation instant with a PI loop.
#[derive(Debug, Clone)]
pub struct SymbolSync {
    hist: [Complex; 4],
    next: f32,
    step_nom: f32,
    rate: f32,
    centre: bool,
    prev: Complex,
    mid: Complex,
    kp: f32,
    ki: f32,
    power_centre: f32,
    power_mid: f32,
}

/// One T/2 sample from [`SymbolSync`].
#[derive(Debug, Clone, Copy)]
pub struct HalfSample {
    /// The interpolated baseband value.
    pub value: Complex,
    /// True on symbol-centre samples, false on mid-symbol ones.
    pub centre: bool,
}

impl SymbolSync {
    /// Timing recovery for `baud` symbols per second.
    pub fn new(baud: f32) -> Self {
        SymbolSync {
            hist: [Complex::ZERO; 4],
            next: 0.0,
            step_nom: SAMPLE_RATE / baud / 2.0,
            rate: 0.0,
            centre: true,
            prev: Complex::ZERO,
            mid: Complex::ZERO,
            kp: 0.0,
            ki: 0.0,
            power_centre: 0.0,
            power_mid: 0.0,
        }
    }

    /// Restart timing.
    pub fn reset(&mut self) {
        self.hist = [Complex::ZERO; 4];
        self.next = 0.0;
        self.rate = 0.0;
        self.centre = true;
        self.prev = Complex::ZERO;
        self.mid = Complex::ZERO;
        self.power_centre = 0.0;
        self.power_mid = 0.0;
    }

    /// If the mid-symbol samples carry clearly more energy than the "centre" ones (timing
    /// started half a symbol out, near the Gardner detector's unstable point), swap the roles.
    /// Meant for training patterns with a transition every symbol. Returns true if it swapped.
    pub fn fix_parity(&mut self) -> bool {
        if self.power_mid > 1.5 * self.power_centre {
            self.centre = !self.centre;
            std::mem::swap(&mut self.power_centre, &mut self.power_mid);
            self.prev = self.mid;
            return true;
        }
        false
    }

    /// Loop gains: proportional (samples per unit error) and integral.
    pub fn set_gains(&mut self, kp: f32, ki: f32) {
        self.kp = kp;
        self.ki = ki;
    }

    /// Clock-rate correction now in use (samples per T/2 step).
    pub fn rate_offset(&self) -> f32 {
        self.rate
    }

    /// Push one filtered sample; returns the T/2 sample falling in this sample period, if any
    /// (`norm` scales the timing error: the expected symbol power at the raw scale).
    #[inline]
    pub fn push(&mut self, x: Complex, norm: f32) -> Option<HalfSample> {
        self.hist = [self.hist[1], self.hist[2], self.hist[3], x];
        self.next -= 1.0;
        if self.next >= 1.0 {
            return None;
        }
        let mu = self.next.clamp(0.0, 1.0);
        let v = cubic(&self.hist, mu);
        let centre = self.centre;
        self.centre = !centre;
        let mut step = self.step_nom + self.rate;
        if centre {
            let e = (self.mid.conj() * (self.prev - v)).re / norm.max(1e-20);
            let e = e.clamp(-1.0, 1.0);
            self.rate =
                (self.rate + self.ki * e).clamp(-0.01 * self.step_nom, 0.01 * self.step_nom);
            step += self.kp * e;
            self.prev = v;
            self.power_centre += (v.norm_sqr() - self.power_centre) * 0.2;
        } else {
            self.mid = v;
            self.power_mid += (v.norm_sqr() - self.power_mid) * 0.2;
        }
        // At least one input sample per output, so one push never yields two.
        self.next += step.max(1.0);
        Some(HalfSample { value: v, centre })
    }
}

/// 4-point Lagrange interpolation between `h[1]` (mu = 0) and `h[2]` (mu = 1).
#[inline]
fn cubic(h: &[Complex; 4], mu: f32) -> Complex {
    let c0 = -mu * (mu - 1.0) * (mu - 2.0) / 6.0;
    let c1 = (mu + 1.0) * (mu - 1.0) * (mu - 2.0) / 2.0;
    let c2 = -(mu + 1.0) * mu * (mu - 2.0) / 2.0;
    let c3 = (mu + 1.0) * mu * (mu - 1.0) / 6.0;
    h[0].scale(c0) + h[1].scale(c1) + h[2].scale(c2) + h[3].scale(c3)
}

/// A complex FIR with real taps over a doubled ring (no wrap in the dot product).
#[derive(Debug, Clone)]
pub struct ComplexFir {
    taps: Vec<f32>,
    buf: Vec<Complex>,
    pos: usize,
}

impl ComplexFir {
    /// A filter with `taps` (time order: `taps[0]` applies to the newest sample).
    pub fn new(taps: Vec<f32>) -> Self {
        let n = taps.len();
        ComplexFir { taps, buf: vec![Complex::ZERO; 2 * n], pos: 0 }
    }

    /// Clear the history.
    pub fn reset(&mut self) {
        self.buf.iter_mut().for_each(|b| *b = Complex::ZERO);
        self.pos = 0;
    }

    /// Push `x`, return the filter output.
    #[inline]
    pub fn push(&mut self, x: Complex) -> Complex {
        let n = self.taps.len();
        self.pos = if self.pos == 0 { n - 1 } else { self.pos - 1 };
        self.buf[self.pos] = x;
        self.buf[self.pos + n] = x;
        let mut acc = Complex::ZERO;
        for (b, &t) in self.buf[self.pos..self.pos + n].iter().zip(&self.taps) {
            acc.re += b.re * t;
            acc.im += b.im * t;
        }
        acc
    }
}

/// Adaptive T/2 fractionally spaced complex LMS equaliser.
///
/// `4·m + 1` taps (m symbols each side of the centre tap); the output is computed at symbol
/// centres; decision delay m symbols.
#[derive(Debug, Clone)]
pub struct Equalizer {
    taps: Vec<Complex>,
    buf: Vec<Complex>,
    pos: usize,
    power: f32,
}

impl Equalizer {
    /// An equaliser spanning `m` symbols each side.
    pub fn new(m: usize) -> Self {
        let n = 4 * m + 1;
        let mut e = Equalizer {
            taps: vec![Complex::ZERO; n],
            buf: vec![Complex::ZERO; 2 * n],
            pos: 0,
            power: 1.0,
        };
        e.reset(1.0);
        e
    }

    /// Centre tap 1, others 0, history cleared; `power` is the expected input power (for the
    /// normalised step size).
    pub fn reset(&mut self, power: f32) {
        self.taps.iter_mut().for_each(|t| *t = Complex::ZERO);
        let n = self.taps.len();
        self.taps[n / 2] = Complex::new(1.0, 0.0);
        self.buf.iter_mut().for_each(|b| *b = Complex::ZERO);
        self.pos = 0;
        self.power = power.max(1e-9);
    }

    /// Push one T/2 sample.
    #[inline]
    pub fn push(&mut self, x: Complex) {
        let n = self.taps.len();
        self.pos = if self.pos == 0 { n - 1 } else { self.pos - 1 };
        self.buf[self.pos] = x;
        self.buf[self.pos + n] = x;
    }

    /// Equaliser output for the present history.
    #[inline]
    pub fn output(&self) -> Complex {
        let n = self.taps.len();
        let mut acc = Complex::ZERO;
        for (b, t) in self.buf[self.pos..self.pos + n].iter().zip(&self.taps) {
            acc.re += b.re * t.re - b.im * t.im;
            acc.im += b.re * t.im + b.im * t.re;
        }
        acc
    }

    /// LMS update with error `err` (= wanted − output, in the equaliser's frame), normalised
    /// step `mu` (0 < mu < 1).
    #[inline]
    pub fn adapt(&mut self, err: Complex, mu: f32) {
        let n = self.taps.len();
        let k = mu / (n as f32 * self.power);
        let e = err.scale(k);
        for (t, b) in self.taps.iter_mut().zip(&self.buf[self.pos..self.pos + n]) {
            // w += mu·e·conj(x)
            t.re += e.re * b.re + e.im * b.im;
            t.im += e.im * b.re - e.re * b.im;
        }
    }
}

/// Second-order carrier phase-locked loop at the symbol rate (phase and frequency state),
/// driven by decision-directed (or, in training, data-aided) phase errors.
#[derive(Debug, Clone, Default)]
pub struct CarrierPll {
    phase: f32,
    freq: f32,
    alpha: f32,
    beta: f32,
}

impl CarrierPll {
    /// A loop with proportional gain `alpha` and integral gain `beta`.
    pub fn new(alpha: f32, beta: f32) -> Self {
        CarrierPll { phase: 0.0, freq: 0.0, alpha, beta }
    }

    /// Set the phase (radians) and frequency (radians per symbol).
    pub fn set(&mut self, phase: f32, freq: f32) {
        self.phase = phase;
        self.freq = freq;
    }

    /// Change the loop gains.
    pub fn set_gains(&mut self, alpha: f32, beta: f32) {
        self.alpha = alpha;
        self.beta = beta;
    }

    /// `e^(j·phase)`.
    pub fn phasor(&self) -> Complex {
        Complex::from_angle(self.phase)
    }

    /// Frequency estimate (radians per symbol).
    pub fn freq(&self) -> f32 {
        self.freq
    }

    /// Update with the error between the de-rotated sample `z` and the wanted point `d`,
    /// then advance one symbol.
    pub fn update(&mut self, z: Complex, d: Complex) {
        let dn = d.norm_sqr();
        let pe = if dn > 0.0 { ((z * d.conj()).im / dn).clamp(-0.5, 0.5) } else { 0.0 };
        self.freq += self.beta * pe;
        self.phase += self.freq + self.alpha * pe;
        if self.phase > PI {
            self.phase -= 2.0 * PI;
        } else if self.phase < -PI {
            self.phase += 2.0 * PI;
        }
    }
}

/// What [`RxFront::sample`] produced for one input sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrontOut {
    /// Nothing of interest.
    Nothing,
    /// Energy appeared: the chain has been reset for a new training.
    CarrierOn,
    /// Energy went away.
    CarrierOff,
    /// A symbol: the equaliser output, not yet de-rotated by the carrier loop.
    Symbol(Complex),
}

/// Settings of the shared receive chain.
#[derive(Debug, Clone, Copy)]
pub struct FrontConfig {
    /// Carrier frequency (Hz).
    pub carrier_hz: f32,
    /// Symbol rate (baud).
    pub baud: f32,
    /// Matched-filter RRC roll-off.
    pub beta: f32,
    /// Matched-filter span in symbols.
    pub span: usize,
    /// Equaliser half-span in symbols.
    pub eq_half_span: usize,
    /// Carrier-on threshold (dBm0).
    pub on_dbm0: f32,
    /// Carrier-off threshold (dBm0).
    pub off_dbm0: f32,
}

/// The receive chain shared by the image modems: carrier detect, mixer to baseband, matched
/// filter, Gardner timing with interpolation, symbol AGC, T/2 equaliser and carrier PLL.
/// Modem-specific code decides what each symbol should have been and calls
/// [`RxFront::train`].
#[derive(Debug, Clone)]
pub struct RxFront {
    /// Energy detector.
    pub detect: CarrierDetect,
    osc: Oscillator,
    fir: ComplexFir,
    /// Symbol timing recovery.
    pub sync: SymbolSync,
    /// Symbol AGC.
    pub agc: Agc,
    /// Adaptive equaliser.
    pub eq: Equalizer,
    /// Carrier loop.
    pub pll: CarrierPll,
    target: f32,
    since_start: u32,
    start_power: f32,
}

impl RxFront {
    /// Build the chain (allocates).
    pub fn new(cfg: FrontConfig) -> Self {
        let sps = SAMPLE_RATE / cfg.baud;
        RxFront {
            detect: CarrierDetect::new(cfg.on_dbm0, cfg.off_dbm0),
            osc: Oscillator::new(-cfg.carrier_hz),
            fir: ComplexFir::new(rrc_fir(cfg.beta, sps, cfg.span)),
            sync: SymbolSync::new(cfg.baud),
            agc: Agc::new(1.0),
            eq: Equalizer::new(cfg.eq_half_span),
            pll: CarrierPll::new(0.0, 0.0),
            target: 1.0,
            since_start: 0,
            start_power: 0.0,
        }
    }

    /// Restart timing, AGC, equaliser and carrier loop for a new training whose symbols have
    /// mean power `target`.
    pub fn restart(&mut self, target: f32) {
        self.target = target;
        self.fir.reset();
        self.sync.reset();
        self.agc.reset(target);
        self.eq.reset(target);
        self.pll.set(0.0, 0.0);
        self.since_start = 0;
        self.start_power = 0.0;
    }

    /// Whether the line level has risen 6 dB since the acquisition started (a new signal
    /// arrived on top of what was being acquired: restart).
    pub fn level_jumped(&self) -> bool {
        self.since_start > 80 && self.detect.power() > 4.0 * self.start_power
    }

    /// Process one line sample.
    #[inline]
    pub fn sample(&mut self, x: i16) -> FrontOut {
        let xf = f32::from(x);
        match self.detect.update(xf) {
            Some(true) => return FrontOut::CarrierOn,
            Some(false) => return FrontOut::CarrierOff,
            None => {}
        }
        if !self.detect.present() {
            return FrontOut::Nothing;
        }
        if self.since_start <= 80 {
            self.since_start += 1;
            self.start_power = self.detect.power();
        }
        let b = self.fir.push(self.osc.step().scale(xf));
        let norm = self.agc.raw_mean();
        match self.sync.push(b, norm) {
            Some(h) => {
                self.eq.push(h.value.scale(self.agc.gain()));
                if h.centre {
                    self.agc.measure(h.value);
                    FrontOut::Symbol(self.eq.output())
                } else {
                    FrontOut::Nothing
                }
            }
            None => FrontOut::Nothing,
        }
    }

    /// De-rotate an equaliser output by the carrier loop's phase.
    #[inline]
    pub fn derotate(&self, y: Complex) -> Complex {
        y * self.pll.phasor().conj()
    }

    /// Adapt towards the wanted point `d` for the de-rotated sample `z`: equaliser LMS with
    /// step `mu` (0 = frozen) and the carrier loop. Returns the squared error.
    #[inline]
    pub fn train(&mut self, z: Complex, d: Complex, mu: f32) -> f32 {
        let err = d - z;
        if mu > 0.0 {
            self.eq.adapt(err * self.pll.phasor(), mu);
        }
        self.pll.update(z, d);
        err.norm_sqr()
    }
}

/// Fixed-capacity FIFO of bits for the transmitters (allocated once).
#[derive(Debug, Clone)]
pub struct BitQueue {
    bits: Vec<u8>,
    head: usize,
    len: usize,
}

impl BitQueue {
    /// A queue holding up to `capacity` bits.
    pub fn new(capacity: usize) -> Self {
        BitQueue { bits: vec![0; capacity.max(1)], head: 0, len: 0 }
    }

    /// Bits queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no bits are queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free room, in bits.
    pub fn space(&self) -> usize {
        self.bits.len() - self.len
    }

    /// Append one bit; false if full.
    pub fn push(&mut self, bit: u8) -> bool {
        if self.len == self.bits.len() {
            return false;
        }
        let i = (self.head + self.len) % self.bits.len();
        self.bits[i] = bit & 1;
        self.len += 1;
        true
    }

    /// Take the oldest bit.
    pub fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let b = self.bits[self.head];
        self.head = (self.head + 1) % self.bits.len();
        self.len -= 1;
        Some(b)
    }

    /// Drop everything.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scramblers_are_transparent() {
        for mut s in [Scrambler::v29(), Scrambler::v27ter(), Scrambler::new(6, 7)] {
            let mut d = s.clone().with_state(0x5a5a5);
            let mut x = 12345u32;
            let mut errors = 0;
            for i in 0..5000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let b = if i % 700 < 300 { 1 } else { (x & 1) as u8 };
                let r = d.descramble(s.scramble(b));
                if i > 40 && r != b {
                    errors += 1;
                }
            }
            assert_eq!(errors, 0);
        }
    }

    #[test]
    fn v27ter_guard_breaks_repetitions() {
        // All ones through 1+x^-6+x^-7 from a zero state stays at zero without the guard.
        let mut plain = Scrambler::new(6, 7);
        let mut guarded = Scrambler::v27ter();
        let mut ones_plain = 0;
        let mut ones_guarded = 0;
        for _ in 0..200 {
            ones_plain += plain.scramble(0);
            ones_guarded += guarded.scramble(0);
        }
        assert_eq!(ones_plain, 0);
        assert!(ones_guarded > 20, "{ones_guarded}");
    }

    #[test]
    fn rrc_squared_is_nyquist() {
        // RRC convolved with itself has zero crossings at the symbol instants.
        let sps = 10.0;
        let h = rrc_fir(0.5, sps, 12);
        let full: Vec<f32> = (0..2 * h.len() - 1)
            .map(|n| {
                (0..h.len()).filter(|&k| n >= k && n - k < h.len()).map(|k| h[k] * h[n - k]).sum()
            })
            .collect();
        let c = h.len() - 1;
        for k in 1..4 {
            assert!((full[c + k * 10] / full[c]).abs() < 0.01);
        }
        assert!(
            (raised_cosine(0.0, 0.3) - 1.0).abs() < 1e-6 && raised_cosine(2.0, 0.3).abs() < 1e-6
        );
    }
}
