//! ITU-T V.17: trellis-coded QAM at 2400 baud on an 1800 Hz carrier, 14400 bit/s
//! (128 points), 12000 (64), 9600 (32) and 7200 bit/s (16), scrambler `1 + x^-18 + x^-23`.
//!
//! Each symbol carries `n` data bits Q1..Qn (Q1 first in time). Q1Q2 are differentially
//! encoded into Y1Y2 (Y2Y1 = Q2Q1 + previous Y2Y1, mod 4), an 8-state systematic
//! convolutional encoder adds the redundant bit Y0 from Y1Y2, and Y0Y1Y2 with Q3..Qn pick
//! the signal point. The receiver decodes with a Viterbi decoder over the 8 subsets (the
//! points sharing Y0Y1Y2).
//!
//! Transmitted burst:
//! 1. optional echo-protection tone (unmodulated carrier 200 ms) then 20 ms silence,
//! 2. segment 1: 256 symbols alternating A, B (A = −6−2j, B = 2−6j),
//! 3. segment 2: scrambled ones, two bits per symbol mapped to C, D, B, A, from the scrambler
//!    state 0x2ECDD5: 2976 symbols (long training) or 38 (short training),
//! 4. segment 3 (long training only): the 64-symbol bridge, the word 0x8880 scrambled two
//!    bits per symbol as phase steps between the A..D points,
//! 5. segment 4: 48 trellis-coded symbols of scrambled ones, then data, then 32 symbols of
//!    scrambled ones and the pulse tail.
//!
//! T.30 uses the long training for TCF and the short training (the receiver keeps its
//! settings) for the image data that follows CFR. This receiver recognises either: it trains
//! from scratch on both, using segment 1 for timing, gain and carrier, and segment 2 for
//! the equaliser; 38 symbols into segment 2 it checks whether the known sequence goes on
//! (long training) or data has begun (short training).

use super::common::{BitQueue, Complex, FrontConfig, FrontOut, Modulator, RxFront, Scrambler};
use super::{ImageRate, ModemRx, RxConfig, TxConfig};

const CARRIER_HZ: f32 = 1800.0;
const BAUD: u32 = 2400;
/// Pulse-shaping roll-off (V.17 leaves the shaping to the implementer).
const BETA: f32 = 0.25;
const TX_SPAN: usize = 12;
const SEG1: u32 = 256;
const SEG2_LONG: u32 = 2976;
const SEG2_SHORT: u32 = 38;
const SEG3: u32 = 64;
const SEG4: u32 = 48;
const TAIL_ONES: u32 = 32;
/// Scrambler state at the start of segment 2.
const TRAIN_SCRAMBLER: u32 = 0x2E_CDD5;
/// The bridge word of segment 3, sent two bits per symbol from the least significant end.
const BRIDGE_WORD: u32 = 0x8880;
/// Mean power of the training points (and, within a few percent, of every constellation).
const TRAIN_POWER: f32 = 40.0;

/// The training points A, B, C, D.
const ABCD: [Complex; 4] = [
    Complex::new(-6.0, -2.0),
    Complex::new(2.0, -6.0),
    Complex::new(6.0, 2.0),
    Complex::new(-2.0, 6.0),
];
/// Segment 2: the two scrambled bits (first in time as the high bit) to a training point.
const SEG2_POINT: [u8; 4] = [2, 3, 1, 0];
/// Segment 3: the two scrambled bits to a phase step (in 90° units).
const BRIDGE_STEP: [u8; 4] = [1, 0, 2, 3];

// Signal points (x, y pairs) by index `Q..Q3 Y2 Y1 Y0` (Y0 the least significant bit):
// V.17 Figures 2 to 5 (14400, 12000, 9600, 7200 bit/s).
const P14400: [i8; 256] = [
    -8, -3, 9, 2, 2, -9, -3, 8, 8, 3, -9, -2, -2, 9, 3, -8, //
    -8, 1, 9, -2, -2, -9, 1, 8, 8, -1, -9, 2, 2, 9, -1, -8, //
    -4, -3, 5, 2, 2, -5, -3, 4, 4, 3, -5, -2, -2, 5, 3, -4, //
    -4, 1, 5, -2, -2, -5, 1, 4, 4, -1, -5, 2, 2, 5, -1, -4, //
    4, -3, -3, 2, 2, 3, -3, -4, -4, 3, 3, -2, -2, -3, 3, 4, //
    4, 1, -3, -2, -2, 3, 1, -4, -4, -1, 3, 2, 2, -3, -1, 4, //
    0, -3, 1, 2, 2, -1, -3, 0, 0, 3, -1, -2, -2, 1, 3, 0, //
    0, 1, 1, -2, -2, -1, 1, 0, 0, -1, -1, 2, 2, 1, -1, 0, //
    8, -3, -7, 2, 2, 7, -3, -8, -8, 3, 7, -2, -2, -7, 3, 8, //
    8, 1, -7, -2, -2, 7, 1, -8, -8, -1, 7, 2, 2, -7, -1, 8, //
    -4, -7, 5, 6, 6, -5, -7, 4, 4, 7, -5, -6, -6, 5, 7, -4, //
    -4, 5, 5, -6, -6, -5, 5, 4, 4, -5, -5, 6, 6, 5, -5, -4, //
    4, -7, -3, 6, 6, 3, -7, -4, -4, 7, 3, -6, -6, -3, 7, 4, //
    4, 5, -3, -6, -6, 3, 5, -4, -4, -5, 3, 6, 6, -3, -5, 4, //
    0, -7, 1, 6, 6, -1, -7, 0, 0, 7, -1, -6, -6, 1, 7, 0, //
    0, 5, 1, -6, -6, -1, 5, 0, 0, -5, -1, 6, 6, 1, -5, 0, //
];
const P12000: [i8; 128] = [
    7, 1, -5, -1, -1, 5, 1, -7, -7, -1, 5, 1, 1, -5, -1, 7, //
    3, -3, -1, 3, 3, 1, -3, -3, -3, 3, 1, -3, -3, -1, 3, 3, //
    7, -7, -5, 7, 7, 5, -7, -7, -7, 7, 5, -7, -7, -5, 7, 7, //
    -1, -7, 3, 7, 7, -3, -7, 1, 1, 7, -3, -7, -7, 3, 7, -1, //
    3, 5, -1, -5, -5, 1, 5, -3, -3, -5, 1, 5, 5, -1, -5, 3, //
    -1, 1, 3, -1, -1, -3, 1, 1, 1, -1, -3, 1, 1, 3, -1, -1, //
    -5, 5, 7, -5, -5, -7, 5, 5, 5, -5, -7, 5, 5, 7, -5, -5, //
    -5, -3, 7, 3, 3, -7, -3, 5, 5, 3, -7, -3, -3, 7, 3, -5, //
];
const P9600: [i8; 64] = [
    -8, 2, -6, -4, -4, 6, 2, 8, 8, -2, 6, 4, 4, -6, -2, -8, //
    0, 2, -6, 4, 4, 6, 2, 0, 0, -2, 6, -4, -4, -6, -2, 0, //
    0, -6, 2, -4, -4, -2, -6, 0, 0, 6, -2, 4, 4, 2, 6, 0, //
    8, 2, 2, 4, 4, -2, 2, -8, -8, -2, -2, -4, -4, 2, -2, 8, //
];
const P7200: [i8; 32] = [
    6, -6, -2, 6, 6, 2, -6, -6, -6, 6, 2, -6, -6, -2, 6, 6, //
    -2, 2, 6, -2, -2, -6, 2, 2, 2, -2, -6, 2, 2, 6, -2, -2, //
];

/// A V.17 rate as (rate, data bits per symbol, point table); anything that is not a V.17
/// rate is taken as 14400.
fn params(rate: ImageRate) -> (ImageRate, u32, &'static [i8]) {
    match rate {
        ImageRate::V17_7200 => (rate, 3, &P7200),
        ImageRate::V17_9600 => (rate, 4, &P9600),
        ImageRate::V17_12000 => (rate, 5, &P12000),
        _ => (ImageRate::V17_14400, 6, &P14400),
    }
}

/// The signal points of a table, as complex numbers (allocates).
fn points(table: &[i8]) -> Vec<Complex> {
    table.chunks_exact(2).map(|xy| Complex::new(f32::from(xy[0]), f32::from(xy[1]))).collect()
}

/// The convolutional encoder: next state from state `s` (bits S2 S1 S0, S0 the least
/// significant) and the differentially coded bits `y` (Y2 Y1). The redundant bit Y0 sent
/// with `y` is the present S0.
const fn conv_next(s: u8, y: u8) -> u8 {
    let (s0, s1, s2) = (s & 1, (s >> 1) & 1, (s >> 2) & 1);
    let (y1, y2) = (y & 1, (y >> 1) & 1);
    let n2 = y2 ^ y1 ^ s2 ^ ((y2 ^ s1) & s0);
    let n1 = y2 ^ s1 ^ (y1 & s0);
    (s0 << 2) | (n2 << 1) | n1
}

/// The training sequence generator: segments 2 and 3 (and the data scrambler after them).
#[derive(Debug, Clone)]
struct Training {
    scrambler: Scrambler,
    point: u8,
    bridge: u32,
}

impl Training {
    fn new() -> Self {
        Training { scrambler: Scrambler::v29().with_state(TRAIN_SCRAMBLER), point: 0, bridge: 0 }
    }

    fn dibit(&mut self, first: u32, second: u32) -> usize {
        let a = self.scrambler.scramble((first & 1) as u8);
        let b = self.scrambler.scramble((second & 1) as u8);
        usize::from((a << 1) | b)
    }

    /// Next segment-2 point (index into [`ABCD`]).
    fn seg2(&mut self) -> u8 {
        self.point = SEG2_POINT[self.dibit(1, 1)];
        self.point
    }

    /// Next segment-3 (bridge) point.
    fn bridge(&mut self) -> u8 {
        let shift = (self.bridge & 7) * 2;
        self.bridge += 1;
        let d = self.dibit(BRIDGE_WORD >> shift, BRIDGE_WORD >> (shift + 1));
        self.point = (self.point + BRIDGE_STEP[d]) & 3;
        self.point
    }
}

/// V.17 transmitter.
#[derive(Debug, Clone)]
pub struct V17Tx {
    modulator: Modulator,
    src: Source,
}

#[derive(Debug, Clone)]
struct Source {
    rate: ImageRate,
    bits: u32,
    table: &'static [i8],
    training: Training,
    queue: BitQueue,
    step: u32,
    tep_carrier: u32,
    tep_end: u32,
    short: bool,
    tail_at: Option<u32>,
    diff: u8,
    conv: u8,
    finished: bool,
    done: bool,
    underruns: u32,
}

impl V17Tx {
    /// A transmitter at `rate` (`V17_7200` to `V17_14400`; anything else is treated as
    /// 14400) sending the long training.
    pub fn new(rate: ImageRate, cfg: TxConfig) -> Self {
        let (rate, bits, table) = params(rate);
        let mut modulator = Modulator::new(BAUD, CARRIER_HZ, BETA, TX_SPAN);
        let pts = points(table);
        let power = pts.iter().map(|p| p.norm_sqr()).sum::<f32>() / pts.len() as f32;
        modulator.set_level(cfg.level_dbm0, power);
        let (tep_carrier, tep_end) =
            if cfg.echo_protection { (BAUD / 5, BAUD / 5 + BAUD / 50) } else { (0, 0) };
        let src = Source {
            rate,
            bits,
            table,
            training: Training::new(),
            queue: BitQueue::new(cfg.queue_bits),
            step: 0,
            tep_carrier,
            tep_end,
            short: false,
            tail_at: None,
            diff: 1,
            conv: 0,
            finished: false,
            done: false,
            underruns: 0,
        };
        V17Tx { modulator, src }
    }

    /// Send the short training (segment 2 cut to 38 symbols, no bridge) instead of the long
    /// one, as T.30 does for image data after CFR. Only before the first sample.
    pub fn set_short_train(&mut self, short: bool) {
        if self.src.step == 0 {
            self.src.short = short;
            self.src.diff = if short { 0 } else { 1 };
        }
    }

    /// Whether the short training is (to be) sent.
    pub fn short_train(&self) -> bool {
        self.src.short
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
        self.training.scrambler.scramble(b)
    }

    fn data_symbol(&mut self, ones: bool) -> Complex {
        let mut q = 0u8;
        for i in 0..self.bits {
            q |= self.bit(ones) << i;
        }
        self.diff = (self.diff + (q & 3)) & 3;
        let y0 = self.conv & 1;
        self.conv = conv_next(self.conv, self.diff);
        let idx = usize::from(((q >> 2) << 3) | (self.diff << 1) | y0);
        Complex::new(f32::from(self.table[2 * idx]), f32::from(self.table[2 * idx + 1]))
    }

    fn next_symbol(&mut self) -> Complex {
        let n = self.step;
        self.step += 1;
        if n < self.tep_carrier {
            return ABCD[0];
        }
        if n < self.tep_end {
            return Complex::ZERO;
        }
        let k = n - self.tep_end;
        if k < SEG1 {
            return ABCD[(k & 1) as usize];
        }
        let seg2 = if self.short { SEG2_SHORT } else { SEG2_LONG };
        if k < SEG1 + seg2 {
            return ABCD[usize::from(self.training.seg2())];
        }
        let seg3 = if self.short { 0 } else { SEG3 };
        if k < SEG1 + seg2 + seg3 {
            return ABCD[usize::from(self.training.bridge())];
        }
        if k < SEG1 + seg2 + seg3 + SEG4 {
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

impl_symbol_tx!(V17Tx);

/// Survivor memory (symbols) of the Viterbi decoder.
const DEPTH: usize = 32;
/// Decision delay (symbols) of the Viterbi decoder.
const LOOKBACK: usize = 20;

/// For each state, its four predecessors as (previous state, Y2Y1).
const PREDECESSORS: [[(u8, u8); 4]; 8] = {
    let mut p = [[(0u8, 0u8); 4]; 8];
    let mut n = [0usize; 8];
    let mut s = 0u8;
    while s < 8 {
        let mut y = 0u8;
        while y < 4 {
            let t = conv_next(s, y) as usize;
            p[t][n[t]] = (s, y);
            n[t] += 1;
            y += 1;
        }
        s += 1;
    }
    p
};

/// Viterbi decoder over the 8-state trellis; branch metrics are the squared distances to
/// the nearest point of each subset.
#[derive(Debug, Clone)]
struct Viterbi {
    metric: [f32; 8],
    /// Per symbol and state: the previous state and the point index of the surviving branch.
    paths: Vec<[(u8, u8); 8]>,
    pos: usize,
    filled: usize,
}

impl Viterbi {
    fn new() -> Self {
        Viterbi { metric: [0.0; 8], paths: vec![[(0, 0); 8]; DEPTH], pos: 0, filled: 0 }
    }

    fn reset(&mut self) {
        self.metric = [0.0; 8];
        self.pos = 0;
        self.filled = 0;
    }

    /// One symbol: `dist[s]`/`near[s]` are the distance to and index of the nearest point of
    /// subset `s` (Y2Y1Y0). Returns the decided point index `LOOKBACK − 1` symbols back.
    fn step(&mut self, dist: &[f32; 8], near: &[u8; 8]) -> Option<u8> {
        self.pos = (self.pos + 1) % DEPTH;
        let mut next = [0f32; 8];
        let mut best = (f32::MAX, 0usize);
        for (t, preds) in PREDECESSORS.iter().enumerate() {
            let mut m = (f32::MAX, 0u8, 0u8);
            for &(s, y) in preds {
                let sub = usize::from((y << 1) | (s & 1));
                let v = self.metric[usize::from(s)] + dist[sub];
                if v < m.0 {
                    m = (v, s, near[sub]);
                }
            }
            next[t] = m.0;
            self.paths[self.pos][t] = (m.1, m.2);
            if m.0 < best.0 {
                best = (m.0, t);
            }
        }
        for (m, n) in self.metric.iter_mut().zip(next) {
            *m = n - best.0;
        }
        self.filled += 1;
        if self.filled < LOOKBACK {
            return None;
        }
        let mut s = best.1;
        let mut p = self.pos;
        for _ in 0..LOOKBACK - 1 {
            s = usize::from(self.paths[p][s].0);
            p = (p + DEPTH - 1) % DEPTH;
        }
        Some(self.paths[p][s].1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RxPhase {
    Idle,
    Acquire,
    Alternation,
    Conditioning,
    Bridge,
    Data,
}

/// Symbols of the alternation spent acquiring timing and gain.
const ACQUIRE: u32 = 32;
/// Segment-2 symbols matched (by hard decision) to recognise its start.
const PREFIX: u32 = 8;
/// Symbols after the short segment 2 used to tell long from short training.
const PROBE: u32 = 8;
/// Give up (and re-acquire) if segment 2 has not started after this many alternation symbols.
const ALT_TIMEOUT: u32 = SEG1 + 64;
/// Symbol-timing loop gains for data (slow: timing jitter hurts the 128-point constellation
/// more than a slow drift, which the equaliser follows).
const DATA_SYNC: (f32, f32) = (0.005, 0.00002);
/// Decoded symbols of segment 4 let through the descrambler before bits are delivered (the
/// decoder starts in an unknown state; the short training's probe takes 8 of the 48).
const SYNC_SYMBOLS: u32 = 24;

/// V.17 receiver.
#[derive(Debug, Clone)]
pub struct V17Rx {
    rate: ImageRate,
    bits: u32,
    pts: Vec<Complex>,
    front: RxFront,
    phase: RxPhase,
    count: u32,
    recent: [Complex; 8],
    next_is_b: bool,
    decisions: u32,
    prefix: u32,
    after_prefix: Training,
    training: Training,
    probe_err: f32,
    viterbi: Viterbi,
    prev_diff: u8,
    decoded: u32,
    descrambler: Scrambler,
    mse: f32,
    trained: bool,
    short_seen: bool,
}

impl V17Rx {
    /// A receiver at `rate` (`V17_7200` to `V17_14400`; anything else is treated as 14400).
    pub fn new(rate: ImageRate, cfg: RxConfig) -> Self {
        let (rate, bits, table) = params(rate);
        let pts = points(table);
        let front = RxFront::new(FrontConfig {
            carrier_hz: CARRIER_HZ,
            baud: BAUD as f32,
            beta: BETA,
            span: 10,
            eq_half_span: 8,
            on_dbm0: cfg.carrier_on_dbm0,
            off_dbm0: cfg.carrier_off_dbm0,
        });
        let mut after_prefix = Training::new();
        let mut prefix = 0u32;
        for _ in 0..PREFIX {
            prefix = (prefix << 2) | u32::from(after_prefix.seg2());
        }
        let mut r = V17Rx {
            rate,
            bits,
            pts,
            front,
            phase: RxPhase::Idle,
            count: 0,
            recent: [Complex::ZERO; 8],
            next_is_b: false,
            decisions: 0,
            prefix,
            training: after_prefix.clone(),
            after_prefix,
            probe_err: 0.0,
            viterbi: Viterbi::new(),
            prev_diff: 0,
            decoded: 0,
            descrambler: Scrambler::v29(),
            mse: 1.0,
            trained: false,
            short_seen: false,
        };
        r.reset();
        r
    }

    /// Whether the last training recognised was the short one.
    pub fn short_train_seen(&self) -> bool {
        self.short_seen
    }

    fn restart(&mut self) {
        self.front.restart(TRAIN_POWER);
        self.front.sync.set_gains(0.2, 0.002);
        self.front.pll.set_gains(0.2, 0.01);
        self.phase = RxPhase::Acquire;
        self.count = 0;
        self.recent = [Complex::ZERO; 8];
        self.decisions = 0;
        self.trained = false;
        self.mse = 1.0;
    }

    /// End of acquisition: find which parity carries A (B is A turned by +90°), set the
    /// carrier loop from the last eight symbols. False if this is no A/B alternation.
    fn lock_alternation(&mut self) -> bool {
        let y = |c: u32| self.recent[(c % 8) as usize];
        let mut turn = Complex::ZERO;
        let mut energy = 0.0;
        for c in ACQUIRE - 6..=ACQUIRE {
            let u = y(c) * y(c - 1).conj();
            turn += if c % 2 == 1 { u } else { -u };
            energy += y(c).norm_sqr();
        }
        // Seven steps, each ±90° by parity: a real alternation gives |Im| near the energy.
        if turn.im.abs() < 0.5 * energy {
            return false;
        }
        let even_is_a = turn.im > 0.0;
        let mut s = Complex::ZERO;
        let mut f = Complex::ZERO;
        let mut prev = Complex::ZERO;
        for c in ACQUIRE - 7..=ACQUIRE {
            let r = if c.is_multiple_of(2) == even_is_a { ABCD[0] } else { ABCD[1] };
            let u = y(c) * r.conj();
            s += u;
            if c > ACQUIRE - 7 {
                f += u * prev.conj();
            }
            prev = u;
        }
        let freq = f.arg();
        self.front.pll.set(s.arg() + 4.5 * freq, freq);
        self.next_is_b = (ACQUIRE + 1).is_multiple_of(2) == even_is_a;
        true
    }

    fn nearest_abcd(z: Complex) -> u8 {
        let mut best = (f32::MAX, 0u8);
        for (i, p) in ABCD.iter().enumerate() {
            let d = (z - *p).norm_sqr();
            if d < best.0 {
                best = (d, i as u8);
            }
        }
        best.1
    }

    fn start_data(&mut self, short: bool) {
        self.phase = RxPhase::Data;
        self.count = 0;
        self.short_seen = short;
        self.viterbi.reset();
        self.prev_diff = 0;
        self.decoded = 0;
        self.trained = true;
        self.front.detect.hold_reference();
        self.front.pll.set_gains(0.05, 0.001);
        if short {
            self.front.sync.set_gains(0.02, 0.0002);
        } else {
            self.front.sync.set_gains(DATA_SYNC.0, DATA_SYNC.1);
        }
    }

    fn data(&mut self, z: Complex, on_bit: &mut dyn FnMut(u8)) {
        let mut dist = [f32::MAX; 8];
        let mut near = [0u8; 8];
        let mut best = (f32::MAX, 0usize);
        for (i, p) in self.pts.iter().enumerate() {
            let d = (z - *p).norm_sqr();
            let sub = i & 7;
            if d < dist[sub] {
                dist[sub] = d;
                near[sub] = i as u8;
            }
            if d < best.0 {
                best = (d, i);
            }
        }
        // After a short training the equaliser has had little to learn from: let it converge
        // faster (decision-directed) over the first symbols, then settle.
        let mu = if self.short_seen && self.count < 400 { 0.1 } else { 0.03 };
        if self.count == 1200 {
            self.front.sync.set_gains(0.01, 0.0001);
        } else if self.count == 4800 {
            self.front.sync.set_gains(DATA_SYNC.0, DATA_SYNC.1);
        }
        let e = self.front.train(z, self.pts[best.1], mu);
        self.mse += (e / TRAIN_POWER - self.mse) * 0.01;
        let Some(idx) = self.viterbi.step(&dist, &near) else { return };
        self.decoded += 1;
        let diff = (idx >> 1) & 3;
        let q = ((idx >> 3) << 2) | (diff.wrapping_sub(self.prev_diff) & 3);
        self.prev_diff = diff;
        let emit = self.decoded > SYNC_SYMBOLS;
        for i in 0..self.bits {
            let b = self.descrambler.descramble((q >> i) & 1);
            if emit {
                on_bit(b);
            }
        }
    }

    fn symbol(&mut self, y: Complex, on_bit: &mut dyn FnMut(u8)) {
        self.count += 1;
        match self.phase {
            RxPhase::Idle => {}
            RxPhase::Acquire => {
                if self.count == 6 || self.count == 10 {
                    self.front.sync.fix_parity();
                }
                self.recent[(self.count % 8) as usize] = y;
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
                let want = u8::from(self.next_is_b);
                self.next_is_b = !self.next_is_b;
                let d = Self::nearest_abcd(z);
                self.decisions = (self.decisions << 2) | u32::from(d);
                let e =
                    self.front.train(z, ABCD[usize::from(d)], if d == want { 0.2 } else { 0.0 });
                if d == want {
                    self.mse += (e / TRAIN_POWER - self.mse) * 0.05;
                }
                let mask = (1u32 << (2 * PREFIX)) - 1;
                if self.decisions & mask == self.prefix {
                    self.phase = RxPhase::Conditioning;
                    self.count = PREFIX;
                    self.training = self.after_prefix.clone();
                    self.probe_err = 0.0;
                    self.front.pll.set_gains(0.1, 0.004);
                } else if self.count > ALT_TIMEOUT {
                    self.restart();
                }
            }
            RxPhase::Conditioning => {
                let z = self.front.derotate(y);
                let want = ABCD[usize::from(self.training.seg2())];
                let n = self.count;
                if n <= SEG2_SHORT {
                    let e = self.front.train(z, want, 0.15);
                    self.mse += (e / TRAIN_POWER - self.mse) * 0.05;
                } else if n <= SEG2_SHORT + PROBE {
                    // Long or short training? Hold still and compare with the sequence.
                    self.probe_err += (z - want).norm_sqr();
                    self.front.pll.update(z, z);
                    if n == SEG2_SHORT + PROBE && self.probe_err > 0.3 * TRAIN_POWER * PROBE as f32
                    {
                        self.start_data(true);
                    }
                } else {
                    let mu = if n < 600 { 0.15 } else { 0.05 };
                    if n == 600 {
                        self.front.sync.set_gains(0.01, 0.0001);
                        self.front.pll.set_gains(0.05, 0.001);
                    }
                    let e = self.front.train(z, want, mu);
                    self.mse += (e / TRAIN_POWER - self.mse) * 0.05;
                    if n == SEG2_LONG {
                        self.phase = RxPhase::Bridge;
                        self.count = 0;
                    }
                }
            }
            RxPhase::Bridge => {
                // Phase steps between the training points: follow them, adapt nothing else.
                let z = self.front.derotate(y);
                let d = Self::nearest_abcd(z);
                self.front.train(z, ABCD[usize::from(d)], 0.0);
                if self.count == SEG3 {
                    self.start_data(false);
                }
            }
            RxPhase::Data => {
                let z = self.front.derotate(y);
                self.data(z, on_bit);
            }
        }
    }
}

impl ModemRx for V17Rx {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constellations_are_distinct_and_rotate_with_y2y1() {
        // Turning a point by +90° keeps Q3.., flips Y0 and steps Y2Y1 back by one: what
        // differential coding of Y1Y2 relies on.
        for table in [&P7200[..], &P9600[..], &P12000[..], &P14400[..]] {
            let p = points(table);
            let n = p.len();
            for i in 0..n {
                for j in 0..i {
                    assert_ne!(p[i], p[j]);
                }
                let r = Complex::new(-p[i].im, p[i].re);
                let j = (0..n).find(|&j| p[j] == r).expect("rotated point exists");
                assert_eq!(j >> 3, i >> 3);
                assert_eq!(j & 1, (i & 1) ^ 1);
                assert_eq!((j >> 1) & 3, ((i >> 1) + 3) & 3);
            }
        }
    }

    #[test]
    fn every_state_has_four_predecessors() {
        let mut count = [0; 8];
        for s in 0..8 {
            for y in 0..4 {
                count[usize::from(conv_next(s, y))] += 1;
            }
        }
        assert_eq!(count, [4; 8]);
    }

    #[test]
    fn segment2_prefix_is_not_an_alternation() {
        let rx = V17Rx::new(ImageRate::V17_14400, RxConfig::default());
        for alt in [0b0001_0001_0001_0001u32, 0b0100_0100_0100_0100] {
            assert_ne!(rx.prefix, alt);
        }
    }

    /// Encoder → noisy points → Viterbi: the decoded indices match, with a noise level at
    /// which hard decisions alone make errors.
    #[test]
    fn viterbi_corrects_what_slicing_gets_wrong() {
        let pts = points(&P14400);
        let mut x = 0x1234_5678u32;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let (mut diff, mut conv) = (0u8, 0u8);
        let mut vit = Viterbi::new();
        let mut sent = Vec::new();
        let (mut got, mut hard_errors) = (Vec::new(), 0);
        for _ in 0..4000 {
            let q = (rnd() & 63) as u8;
            diff = (diff + (q & 3)) & 3;
            let idx = ((q >> 2) << 3) | (diff << 1) | (conv & 1);
            conv = conv_next(conv, diff);
            sent.push(idx);
            // Uniform noise of ±0.8 in each axis (points are 1 apart diagonally).
            let nz = |v: u32| (v % 1000) as f32 / 1000.0 * 1.6 - 0.8;
            let z = pts[usize::from(idx)] + Complex::new(nz(rnd()), nz(rnd()));
            let mut dist = [f32::MAX; 8];
            let mut near = [0u8; 8];
            let mut best = (f32::MAX, 0usize);
            for (i, p) in pts.iter().enumerate() {
                let d = (z - *p).norm_sqr();
                if d < dist[i & 7] {
                    dist[i & 7] = d;
                    near[i & 7] = i as u8;
                }
                if d < best.0 {
                    best = (d, i);
                }
            }
            hard_errors += usize::from(best.1 != usize::from(idx));
            if let Some(v) = vit.step(&dist, &near) {
                got.push(v);
            }
        }
        let errors = got.iter().zip(&sent).filter(|(a, b)| a != b).count();
        assert!(hard_errors > 100, "{hard_errors}");
        assert!(errors * 20 < hard_errors, "viterbi {errors}, hard {hard_errors}");
    }
}
