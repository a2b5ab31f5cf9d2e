//! ITU-T V.27ter: 4800 bit/s (8-phase DPSK, 1600 baud) and 2400 bit/s (4-phase DPSK,
//! 1200 baud) on an 1800 Hz carrier, scrambler `1 + x^-6 + x^-7` with its repetition guard.
//!
//! Transmitted burst (the long training, as T.30 uses):
//! 1. optional echo-protection tone: unmodulated carrier 200 ms, then
//! 2. 20 ms with no energy,
//! 3. 50 symbols of continuous 180° phase reversals,
//! 4. 1074 symbols of equaliser conditioning: 0° or 180° changes chosen by every third bit of
//!    the scrambler fed with ones,
//! 5. 8 symbols of scrambled ones, then data, then 32 symbols of scrambled ones and the pulse
//!    tail.
//!
//! The receiver acquires timing and AGC on the reversals, sets the carrier phase and frequency
//! from them, trains the equaliser decision-directed on the two-phase segments, locates the
//! reversal→conditioning boundary to know when data starts, and then decodes differentially.

use super::common::{BitQueue, Complex, FrontConfig, FrontOut, Modulator, RxFront, Scrambler};
use super::{
    ImageRate, ModemRx, RxConfig, TxConfig, DIBIT_TO_STEP, STEP_TO_TRIBIT, TRIBIT_TO_STEP,
};

const CARRIER_HZ: f32 = 1800.0;
/// Pulse-shaping roll-off (V.27ter: 50 % raised cosine split between both ends).
const BETA: f32 = 0.5;
const TX_SPAN: usize = 8;
const REVERSALS: u32 = 50;
const CONDITIONING: u32 = 1074;
const ONES: u32 = 8;
const TAIL_ONES: u32 = 32;
/// Scrambler register at the start of the equaliser conditioning (bit 0 = last line bit).
pub const CONDITIONING_SEED: u32 = 0x3C;
/// Symbol amplitude (every point has |s|² = 2).
const R: f32 = std::f32::consts::SQRT_2;

fn baud(rate: ImageRate) -> u32 {
    if rate == ImageRate::V27_4800 {
        1600
    } else {
        1200
    }
}

fn point(state: u8) -> Complex {
    Complex::from_angle(f32::from(state & 7) * std::f32::consts::FRAC_PI_4).scale(R)
}

/// V.27ter transmitter.
#[derive(Debug, Clone)]
pub struct V27terTx {
    modulator: Modulator,
    src: Source,
}

/// Everything but the modulator: produces the symbol sequence.
#[derive(Debug, Clone)]
struct Source {
    rate: ImageRate,
    scrambler: Scrambler,
    queue: BitQueue,
    /// Symbols since the start; segment boundaries below.
    step: u32,
    seg_silence: u32,
    seg_reversals: u32,
    seg_cond: u32,
    seg_ones: u32,
    /// Symbol index where the tail started (after `finish` and an empty queue).
    tail_at: Option<u32>,
    state: u8,
    finished: bool,
    done: bool,
    underruns: u32,
}

impl V27terTx {
    /// A transmitter at `rate` (`V27_2400` or `V27_4800`; anything else is treated as 2400).
    pub fn new(rate: ImageRate, cfg: TxConfig) -> Self {
        let rate = if rate == ImageRate::V27_4800 { rate } else { ImageRate::V27_2400 };
        let b = baud(rate);
        let mut modulator = Modulator::new(b, CARRIER_HZ, BETA, TX_SPAN);
        modulator.set_level(cfg.level_dbm0, R * R);
        let tep = if cfg.echo_protection { b / 5 } else { 0 };
        let seg_silence = tep;
        let seg_reversals = seg_silence + b / 50;
        let seg_cond = seg_reversals + REVERSALS;
        let seg_ones = seg_cond + CONDITIONING;
        let src = Source {
            rate,
            // The conditioning pattern depends on the starting state; receivers that train on
            // the known pattern (SpanDSP's, for one) start from 0x3C, so we do too.
            scrambler: Scrambler::v27ter().with_state(CONDITIONING_SEED),
            queue: BitQueue::new(cfg.queue_bits),
            step: 0,
            seg_silence,
            seg_reversals,
            seg_cond,
            seg_ones,
            tail_at: None,
            state: 0,
            finished: false,
            done: false,
            underruns: 0,
        };
        V27terTx { modulator, src }
    }
}

impl Source {
    fn data_symbol(&mut self, ones: bool) -> Complex {
        let nbits = if self.rate == ImageRate::V27_4800 { 3 } else { 2 };
        let mut v = 0usize;
        for _ in 0..nbits {
            let bit = if ones {
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
            v = (v << 1) | usize::from(self.scrambler.scramble(bit));
        }
        let step = if nbits == 3 { TRIBIT_TO_STEP[v] } else { DIBIT_TO_STEP[v] };
        self.state = (self.state + step) & 7;
        point(self.state)
    }

    fn next_symbol(&mut self) -> Complex {
        let n = self.step;
        self.step += 1;
        if n < self.seg_silence {
            return point(0);
        }
        if n < self.seg_reversals {
            return Complex::ZERO;
        }
        if n < self.seg_cond {
            self.state = (self.state + 4) & 7;
            return point(self.state);
        }
        if n < self.seg_ones {
            let b = self.scrambler.scramble(1);
            self.scrambler.scramble(1);
            self.scrambler.scramble(1);
            self.state = (self.state + 4 * b) & 7;
            return point(self.state);
        }
        if n < self.seg_ones + ONES {
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

impl_symbol_tx!(V27terTx);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RxPhase {
    Idle,
    Acquire,
    Train,
    Data,
}

/// Symbols spent on timing/AGC acquisition at the start of the reversals.
const ACQUIRE: u32 = 18;
/// Reversals needed before a non-reversal counts as the start of segment 4.
const MIN_REVERSALS: u32 = 10;
/// Give up (and re-acquire) if segment 4 has not started after this many training symbols.
const TRAIN_TIMEOUT: u32 = 60;

/// V.27ter receiver.
#[derive(Debug, Clone)]
pub struct V27terRx {
    rate: ImageRate,
    front: RxFront,
    phase: RxPhase,
    count: u32,
    sum2: Complex,
    sumf: Complex,
    prev_y: Complex,
    reversals: u32,
    seg4_at: Option<u32>,
    prev_state: u8,
    descrambler: Scrambler,
    mse: f32,
    trained: bool,
}

impl V27terRx {
    /// A receiver at `rate` (`V27_2400` or `V27_4800`; anything else is treated as 2400).
    pub fn new(rate: ImageRate, cfg: RxConfig) -> Self {
        let rate = if rate == ImageRate::V27_4800 { rate } else { ImageRate::V27_2400 };
        let front = RxFront::new(FrontConfig {
            carrier_hz: CARRIER_HZ,
            baud: baud(rate) as f32,
            beta: BETA,
            span: 8,
            eq_half_span: 5,
            on_dbm0: cfg.carrier_on_dbm0,
            off_dbm0: cfg.carrier_off_dbm0,
        });
        let mut r = V27terRx {
            rate,
            front,
            phase: RxPhase::Idle,
            count: 0,
            sum2: Complex::ZERO,
            sumf: Complex::ZERO,
            prev_y: Complex::ZERO,
            reversals: 0,
            seg4_at: None,
            prev_state: 0,
            descrambler: Scrambler::v27ter(),
            mse: 1.0,
            trained: false,
        };
        r.reset();
        r
    }

    fn restart(&mut self) {
        self.front.restart(R * R);
        self.front.sync.set_gains(0.25, 0.002);
        self.front.pll.set_gains(0.15, 0.008);
        self.phase = RxPhase::Acquire;
        self.count = 0;
        self.sum2 = Complex::ZERO;
        self.sumf = Complex::ZERO;
        self.prev_y = Complex::ZERO;
        self.reversals = 0;
        self.seg4_at = None;
        self.trained = false;
        self.mse = 1.0;
    }

    fn symbol(&mut self, y: Complex, on_bit: &mut dyn FnMut(u8)) {
        self.count += 1;
        match self.phase {
            RxPhase::Idle => {}
            RxPhase::Acquire => {
                if self.count == 6 || self.count == 10 {
                    self.front.sync.fix_parity();
                }
                if self.count > ACQUIRE - 6 {
                    self.sum2 += y * y;
                    let d = y * self.prev_y.conj();
                    self.sumf += d * d;
                }
                self.prev_y = y;
                if self.count == ACQUIRE {
                    // Phase (mod 180°) from the squared reversals, rotation per symbol from
                    // the squared symbol-to-symbol products; aim at the next symbol.
                    let freq = self.sumf.arg() / 2.0;
                    let phase = self.sum2.arg() / 2.0 + 3.5 * freq;
                    self.front.pll.set(phase, freq);
                    self.front.agc.lock();
                    self.front.sync.set_gains(0.05, 0.0005);
                    self.phase = RxPhase::Train;
                    self.count = 0;
                    self.prev_state = 0;
                }
            }
            RxPhase::Train => {
                let z = self.front.derotate(y);
                let state = if z.re >= 0.0 { 0 } else { 4 };
                let e =
                    self.front.train(z, Complex::new(if state == 0 { R } else { -R }, 0.0), 0.15);
                self.mse += (e / (R * R) - self.mse) * 0.05;
                match self.seg4_at {
                    None => {
                        if state != self.prev_state {
                            self.reversals += 1;
                        } else if self.reversals >= MIN_REVERSALS {
                            self.seg4_at = Some(self.count);
                            self.front.pll.set_gains(0.08, 0.002);
                        } else {
                            self.reversals = 0;
                        }
                        if self.seg4_at.is_none() && self.count > TRAIN_TIMEOUT {
                            self.restart();
                            return;
                        }
                    }
                    Some(s4) => {
                        if self.count + 1 >= s4 + CONDITIONING {
                            // Segment 5 (scrambled ones) begins: switch to data decisions.
                            self.phase = RxPhase::Data;
                            self.count = 0;
                            self.trained = true;
                            self.front.detect.hold_reference();
                            self.front.pll.set_gains(0.05, 0.001);
                            self.front.sync.set_gains(0.02, 0.0002);
                        }
                    }
                }
                self.prev_state = state;
            }
            RxPhase::Data => {
                let z = self.front.derotate(y);
                let four = self.rate == ImageRate::V27_4800;
                let quantum =
                    if four { std::f32::consts::FRAC_PI_4 } else { std::f32::consts::FRAC_PI_2 };
                let k = (z.arg() / quantum).round() as i32;
                let state = if four { (k & 7) as u8 } else { ((k & 3) * 2) as u8 };
                let e = self.front.train(z, point(state), 0.03);
                self.mse += (e / (R * R) - self.mse) * 0.01;
                let step = state.wrapping_sub(self.prev_state) & 7;
                self.prev_state = state;
                let emit = self.count > if four { 3 } else { 4 };
                if four {
                    let v = STEP_TO_TRIBIT[step as usize];
                    for i in (0..3).rev() {
                        let b = self.descrambler.descramble((v >> i) & 1);
                        if emit {
                            on_bit(b);
                        }
                    }
                } else {
                    let v = match step {
                        0 => 0,
                        2 => 1,
                        4 => 3,
                        _ => 2,
                    };
                    for i in (0..2).rev() {
                        let b = self.descrambler.descramble((v >> i) & 1);
                        if emit {
                            on_bit(b);
                        }
                    }
                }
            }
        }
    }
}

impl ModemRx for V27terRx {
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
