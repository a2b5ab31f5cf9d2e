//! ITU-T V.29: 9600 bit/s (16-point) and 7200 bit/s (8-point) QAM at 2400 baud on a 1700 Hz
//! carrier, differential phase coding, scrambler `1 + x^-18 + x^-23`.
//!
//! Signal points (V.29 Table 2): at absolute phases 0°, 90°, 180°, 270° relative amplitude 3
//! (first bit Q1 = 0) or 5 (Q1 = 1); at 45°, 135°, 225°, 315° amplitude √2 or 3√2. Q2Q3Q4
//! choose the phase change as in V.27ter. At 7200 bit/s Q1 is always 0 and three bits are
//! sent per symbol.
//!
//! Transmitted burst:
//! 1. optional echo-protection tone (unmodulated carrier 200 ms) then 20 ms silence,
//! 2. segment 1: 48 symbols with no energy,
//! 3. segment 2: 128 symbols alternating A, B (A = −3+j0; B = 3−j3 at 9600, 1−j1 at 7200),
//! 4. segment 3: 384 symbols of C or D (C = 3+j0; D = −3+j3 at 9600, −1+j1 at 7200) chosen
//!    by the sequence `1 + x^-6 + x^-7` started at 0101010 (0 → C, 1 → D),
//! 5. segment 4: 48 symbols of scrambled ones, then data, then 32 symbols of scrambled ones
//!    and the pulse tail.
//!
//! The receiver acquires timing and gain on the A/B alternation, tells A from B by amplitude,
//! which fixes the absolute carrier phase and frequency, trains the equaliser on the known
//! A/B and C/D symbols (data-aided, so there is no phase ambiguity), then decides data
//! decision-directed.

use super::common::{BitQueue, Complex, FrontConfig, FrontOut, Modulator, RxFront, Scrambler};
use super::{ImageRate, ModemRx, RxConfig, TxConfig, STEP_TO_TRIBIT, TRIBIT_TO_STEP};

const CARRIER_HZ: f32 = 1700.0;
const BAUD: u32 = 2400;
/// Pulse-shaping roll-off (V.29 leaves it open; 500 Hz and 2900 Hz are the −3 dB points).
const BETA: f32 = 0.25;
const TX_SPAN: usize = 12;
const SEG1: u32 = 48;
const SEG2: u32 = 128;
const SEG3: u32 = 384;
const SEG4: u32 = 48;
const TAIL_ONES: u32 = 32;
const TRAIN_SEED: u8 = 0b010_1010;

/// The 7-bit training sequence generator `1 + x^-6 + x^-7`.
#[derive(Debug, Clone, Copy)]
struct TrainingSeq(u8);

impl TrainingSeq {
    fn next(&mut self) -> u8 {
        let out = self.0 & 1;
        let fb = (self.0 ^ (self.0 >> 1)) & 1;
        self.0 = (self.0 >> 1) | (fb << 6);
        out
    }
}

/// Signal point for absolute phase `k`·45° and amplitude bit Q1.
fn point(k: u8, high: bool) -> Complex {
    let r = match (k & 1 == 0, high) {
        (true, false) => 3.0,
        (true, true) => 5.0,
        (false, false) => std::f32::consts::SQRT_2,
        (false, true) => 3.0 * std::f32::consts::SQRT_2,
    };
    Complex::from_angle(f32::from(k & 7) * std::f32::consts::FRAC_PI_4).scale(r)
}

fn abab(rate: ImageRate) -> [Complex; 2] {
    let b =
        if rate == ImageRate::V29_9600 { Complex::new(3.0, -3.0) } else { Complex::new(1.0, -1.0) };
    [Complex::new(-3.0, 0.0), b]
}

fn cdcd(rate: ImageRate) -> [Complex; 2] {
    let d =
        if rate == ImageRate::V29_9600 { Complex::new(-3.0, 3.0) } else { Complex::new(-1.0, 1.0) };
    [Complex::new(3.0, 0.0), d]
}

/// Mean power of the data constellation (and of the A/B alternation).
fn symbol_power(rate: ImageRate) -> f32 {
    if rate == ImageRate::V29_9600 {
        13.5
    } else {
        5.5
    }
}

/// V.29 transmitter.
#[derive(Debug, Clone)]
pub struct V29Tx {
    modulator: Modulator,
    src: Source,
}

#[derive(Debug, Clone)]
struct Source {
    rate: ImageRate,
    scrambler: Scrambler,
    training: TrainingSeq,
    queue: BitQueue,
    step: u32,
    seg_silence: u32,
    seg_abab: u32,
    seg_cdcd: u32,
    seg_ones: u32,
    tail_at: Option<u32>,
    state: u8,
    finished: bool,
    done: bool,
    underruns: u32,
}

impl V29Tx {
    /// A transmitter at `rate` (`V29_7200` or `V29_9600`; anything else is treated as 9600).
    pub fn new(rate: ImageRate, cfg: TxConfig) -> Self {
        let rate = if rate == ImageRate::V29_7200 { rate } else { ImageRate::V29_9600 };
        let mut modulator = Modulator::new(BAUD, CARRIER_HZ, BETA, TX_SPAN);
        modulator.set_level(cfg.level_dbm0, symbol_power(rate));
        let tep = if cfg.echo_protection { BAUD / 5 + BAUD / 50 } else { 0 };
        let seg_silence = if cfg.echo_protection { BAUD / 5 } else { 0 };
        let seg_abab = tep + SEG1;
        let seg_cdcd = seg_abab + SEG2;
        let seg_ones = seg_cdcd + SEG3;
        let src = Source {
            rate,
            scrambler: Scrambler::v29(),
            training: TrainingSeq(TRAIN_SEED),
            queue: BitQueue::new(cfg.queue_bits),
            step: 0,
            seg_silence,
            seg_abab,
            seg_cdcd,
            seg_ones,
            tail_at: None,
            state: 0,
            finished: false,
            done: false,
            underruns: 0,
        };
        V29Tx { modulator, src }
    }
}

impl Source {
    fn bit(&mut self, ones: bool) -> u8 {
        let b = if ones {
            1
        } else {
            match self.queue.pop() {
                Some(b) => b,
                None => {
                    if !self.finished {
                        self.underruns += 1;
                    }
                    1
                }
            }
        };
        self.scrambler.scramble(b)
    }

    fn data_symbol(&mut self, ones: bool) -> Complex {
        let high = self.rate == ImageRate::V29_9600 && self.bit(ones) == 1;
        let mut v = 0usize;
        for _ in 0..3 {
            v = (v << 1) | usize::from(self.bit(ones));
        }
        self.state = (self.state + TRIBIT_TO_STEP[v]) & 7;
        point(self.state, high)
    }

    fn next_symbol(&mut self) -> Complex {
        let n = self.step;
        self.step += 1;
        if n < self.seg_silence {
            return point(0, false);
        }
        if n < self.seg_abab {
            return Complex::ZERO;
        }
        if n < self.seg_cdcd {
            return abab(self.rate)[((n - self.seg_abab) & 1) as usize];
        }
        if n < self.seg_ones {
            return cdcd(self.rate)[usize::from(self.training.next())];
        }
        if n < self.seg_ones + SEG4 {
            return self.data_symbol(true);
        }
        if self.tail_at.is_none() && self.finished && self.queue.is_empty() {
            self.tail_at = Some(n);
        }
        match self.tail_at {
            None => self.data_symbol(false),
            Some(t) if n < t + TAIL_ONES => self.data_symbol(true),
            Some(t) => {
                if n >= t + TAIL_ONES + TX_SPAN as u32 {
                    self.done = true;
                }
                Complex::ZERO
            }
        }
    }
}

impl_symbol_tx!(V29Tx);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RxPhase {
    Idle,
    Acquire,
    Alternation,
    Conditioning,
    Data,
}

/// Symbols of the alternation spent acquiring timing and gain.
const ACQUIRE: u32 = 32;
/// C/D symbols that must match in a row to accept the segment 2→3 boundary.
const CONFIRM: u32 = 3;
/// Give up (and re-acquire) if segment 3 has not started after this many alternation symbols.
const ALT_TIMEOUT: u32 = 200;
/// Data symbols (segment 4) let through the descrambler before bits are delivered.
const SYNC_SYMBOLS: u32 = 8;

/// V.29 receiver.
#[derive(Debug, Clone)]
pub struct V29Rx {
    rate: ImageRate,
    front: RxFront,
    phase: RxPhase,
    count: u32,
    recent: [Complex; 8],
    power_even: f32,
    power_odd: f32,
    next_is_b: bool,
    candidate: u32,
    shadow: TrainingSeq,
    training: TrainingSeq,
    prev_state: u8,
    descrambler: Scrambler,
    mse: f32,
    trained: bool,
}

impl V29Rx {
    /// A receiver at `rate` (`V29_7200` or `V29_9600`; anything else is treated as 9600).
    pub fn new(rate: ImageRate, cfg: RxConfig) -> Self {
        let rate = if rate == ImageRate::V29_7200 { rate } else { ImageRate::V29_9600 };
        let front = RxFront::new(FrontConfig {
            carrier_hz: CARRIER_HZ,
            baud: BAUD as f32,
            beta: BETA,
            span: 10,
            eq_half_span: 8,
            on_dbm0: cfg.carrier_on_dbm0,
            off_dbm0: cfg.carrier_off_dbm0,
        });
        let mut r = V29Rx {
            rate,
            front,
            phase: RxPhase::Idle,
            count: 0,
            recent: [Complex::ZERO; 8],
            power_even: 0.0,
            power_odd: 0.0,
            next_is_b: false,
            candidate: 0,
            shadow: TrainingSeq(TRAIN_SEED),
            training: TrainingSeq(TRAIN_SEED),
            prev_state: 0,
            descrambler: Scrambler::v29(),
            mse: 1.0,
            trained: false,
        };
        r.reset();
        r
    }

    fn restart(&mut self) {
        let p = symbol_power(self.rate);
        self.front.restart(p);
        self.front.sync.set_gains(0.2, 0.002);
        self.front.pll.set_gains(0.2, 0.01);
        self.phase = RxPhase::Acquire;
        self.count = 0;
        self.recent = [Complex::ZERO; 8];
        self.power_even = 0.0;
        self.power_odd = 0.0;
        self.candidate = 0;
        self.shadow = TrainingSeq(TRAIN_SEED);
        self.training = TrainingSeq(TRAIN_SEED);
        self.trained = false;
        self.mse = 1.0;
    }

    /// End of acquisition: decide which parity carries B, set the carrier loop from the last
    /// eight alternation symbols. False if this does not look like an A/B alternation.
    fn lock_alternation(&mut self) -> bool {
        let [a, b] = abab(self.rate);
        let b_louder = b.norm_sqr() > a.norm_sqr();
        let (hi, lo) = if self.power_even > self.power_odd {
            (self.power_even, self.power_odd)
        } else {
            (self.power_odd, self.power_even)
        };
        let expect = (b.norm_sqr() / a.norm_sqr()).max(a.norm_sqr() / b.norm_sqr());
        if hi < lo * expect.sqrt() {
            return false;
        }
        // `recent[i]` holds the symbol with count ≡ i (mod 8); count ACQUIRE was the last.
        let even_is_b = (self.power_even > self.power_odd) == b_louder;
        let mut s = Complex::ZERO;
        let mut f = Complex::ZERO;
        let mut prev = Complex::ZERO;
        for c in ACQUIRE - 7..=ACQUIRE {
            let y = self.recent[(c % 8) as usize];
            let r = if c.is_multiple_of(2) == even_is_b { b } else { a };
            let u = y * r.conj();
            s += u;
            if c > ACQUIRE - 7 {
                f += u * prev.conj();
            }
            prev = u;
        }
        let freq = f.arg();
        self.front.pll.set(s.arg() + 4.5 * freq, freq);
        self.next_is_b = (ACQUIRE + 1).is_multiple_of(2) == even_is_b;
        true
    }

    fn symbol(&mut self, y: Complex, on_bit: &mut dyn FnMut(u8)) {
        self.count += 1;
        let power = symbol_power(self.rate);
        match self.phase {
            RxPhase::Idle => {}
            RxPhase::Acquire => {
                if self.count == 6 || self.count == 10 {
                    self.front.sync.fix_parity();
                }
                self.recent[(self.count % 8) as usize] = y;
                if self.count > ACQUIRE - 8 {
                    let p = if self.count.is_multiple_of(2) {
                        &mut self.power_even
                    } else {
                        &mut self.power_odd
                    };
                    *p += y.norm_sqr();
                }
                if self.count == ACQUIRE {
                    if self.lock_alternation() {
                        self.front.agc.lock();
                        self.front.sync.set_gains(0.05, 0.0005);
                        self.phase = RxPhase::Alternation;
                        self.count = 0;
                    } else {
                        self.restart();
                    }
                }
            }
            RxPhase::Alternation => {
                let z = self.front.derotate(y);
                let [a, b] = abab(self.rate);
                let want = if self.next_is_b { b } else { a };
                self.next_is_b = !self.next_is_b;
                let mut look = self.shadow;
                let cd = cdcd(self.rate)[usize::from(look.next())];
                if (z - cd).norm_sqr() < (z - want).norm_sqr() {
                    // Looks like segment 3 (C/D) has begun: confirm over a few symbols.
                    self.shadow = look;
                    self.candidate += 1;
                    self.front.train(z, cd, 0.0);
                    if self.candidate == CONFIRM {
                        self.training = self.shadow;
                        self.phase = RxPhase::Conditioning;
                        self.count = CONFIRM;
                        self.front.pll.set_gains(0.1, 0.004);
                    }
                } else {
                    self.candidate = 0;
                    self.shadow = TrainingSeq(TRAIN_SEED);
                    let e = self.front.train(z, want, 0.2);
                    self.mse += (e / power - self.mse) * 0.05;
                    if self.count > ALT_TIMEOUT {
                        self.restart();
                    }
                }
            }
            RxPhase::Conditioning => {
                let z = self.front.derotate(y);
                let want = cdcd(self.rate)[usize::from(self.training.next())];
                let e = self.front.train(z, want, 0.15);
                self.mse += (e / power - self.mse) * 0.05;
                if self.count == SEG3 {
                    self.phase = RxPhase::Data;
                    self.count = 0;
                    self.prev_state = 0;
                    self.trained = true;
                    self.front.detect.hold_reference();
                    self.front.pll.set_gains(0.05, 0.001);
                    self.front.sync.set_gains(0.02, 0.0002);
                }
            }
            RxPhase::Data => {
                let z = self.front.derotate(y);
                let nine = self.rate == ImageRate::V29_9600;
                let mut best = (f32::MAX, 0u8, false);
                for k in 0..8u8 {
                    for high in [false, true] {
                        if high && !nine {
                            continue;
                        }
                        let d = (z - point(k, high)).norm_sqr();
                        if d < best.0 {
                            best = (d, k, high);
                        }
                    }
                }
                let (_, state, high) = best;
                let e = self.front.train(z, point(state, high), 0.03);
                self.mse += (e / power - self.mse) * 0.01;
                let step = state.wrapping_sub(self.prev_state) & 7;
                self.prev_state = state;
                let emit = self.count > SYNC_SYMBOLS;
                if nine {
                    let b = self.descrambler.descramble(u8::from(high));
                    if emit {
                        on_bit(b);
                    }
                }
                let v = STEP_TO_TRIBIT[step as usize];
                for i in (0..3).rev() {
                    let b = self.descrambler.descramble((v >> i) & 1);
                    if emit {
                        on_bit(b);
                    }
                }
            }
        }
    }
}

impl ModemRx for V29Rx {
    fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8)) {
        for &x in samples {
            match self.front.sample(x) {
                FrontOut::Nothing => {}
                FrontOut::CarrierOn => self.restart(),
                FrontOut::CarrierOff => {
                    self.phase = RxPhase::Idle;
                    self.trained = false;
                }
                FrontOut::Symbol(y) => {
                    if !self.trained && self.front.level_jumped() {
                        self.restart();
                    } else {
                        self.symbol(y, on_bit);
                    }
                }
            }
        }
    }
    fn carrier(&self) -> bool {
        self.front.detect.present()
    }
    fn trained(&self) -> bool {
        self.trained
    }
    fn reset(&mut self) {
        self.front.detect.reset();
        self.phase = RxPhase::Idle;
        self.trained = false;
    }
    fn quality(&self) -> f32 {
        self.mse
    }
    fn rate(&self) -> ImageRate {
        self.rate
    }
}
