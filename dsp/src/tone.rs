//! Tone generation: call-progress tones with cadences, and the tone plans that describe them.
//!
//! A [`ToneSpec`] is a small `Copy` description (up to eight cadence segments, each with up to
//! two frequencies), so that the media engine can be told to play a tone through its fixed-size
//! command ring. A [`ToneGen`] plays one: phase accumulators into a shared sine table, no
//! allocation after [`init`] has built the table.

use std::sync::OnceLock;

/// Samples per second.
const RATE: f32 = 8000.0;
/// Sine table size (power of two); the top bits of the 32-bit phase index it.
const TABLE_BITS: u32 = 12;
const TABLE_LEN: usize = 1 << TABLE_BITS;

/// Peak linear amplitude of a 0 dBm0 sine: 32768 / 10^(3.14/20) (G.711 A-law digital milliwatt).
pub const DBM0_PEAK: f32 = 22_827.0;

static SINE: OnceLock<Box<[f32; TABLE_LEN + 1]>> = OnceLock::new();

/// Build the shared sine table. Call once before the real-time thread starts; later calls are
/// free. [`ToneGen`] calls it too, so forgetting it costs one allocation on first use.
pub fn init() -> &'static [f32; TABLE_LEN + 1] {
    SINE.get_or_init(|| {
        let mut t = Box::new([0f32; TABLE_LEN + 1]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = (i as f64 * std::f64::consts::TAU / TABLE_LEN as f64).sin() as f32;
        }
        t
    })
}

/// Linear peak amplitude of a sine at `dbm0`.
pub fn dbm0_to_peak(dbm0: f32) -> f32 {
    DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
}

/// One cadence segment: a duration and what sounds during it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Duration in milliseconds; 0 means "for ever" (a continuous tone such as dial tone).
    pub ms: u32,
    /// Frequencies in Hz; 0 is an unused slot, both 0 is silence.
    pub freqs: [f32; 2],
    /// Level of each frequency in dBm0.
    pub level_dbm0: f32,
}

impl Segment {
    /// Silence for `ms` milliseconds.
    pub const fn silence(ms: u32) -> Self {
        Segment { ms, freqs: [0.0, 0.0], level_dbm0: 0.0 }
    }

    /// Whether anything sounds during this segment.
    pub fn is_silent(&self) -> bool {
        self.freqs[0] == 0.0 && self.freqs[1] == 0.0
    }
}

/// Most segments a cadence can have.
pub const MAX_SEGMENTS: usize = 8;

/// A tone with its cadence: segments played in order, then repeated (or not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSpec {
    segments: [Segment; MAX_SEGMENTS],
    len: u8,
    /// Repeat the cadence after the last segment; otherwise the tone ends (silence follows).
    pub repeat: bool,
}

/// Why a tone could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToneError {
    /// No segments, or more than [`MAX_SEGMENTS`].
    #[error("a tone needs 1 to {MAX_SEGMENTS} cadence segments, got {0}")]
    SegmentCount(usize),
    /// A frequency outside the telephone band 0 < f < 4000 Hz.
    #[error("frequency {0} Hz is outside 1..3999 Hz")]
    Frequency(f32),
    /// A level above the G.711 maximum (+3 dBm0) or absurdly low.
    #[error("level {0} dBm0 is outside -60..+3 dBm0")]
    Level(f32),
    /// A zero-length segment that is not the only (continuous) one.
    #[error("only a single-segment tone may be continuous (0 ms)")]
    ZeroLength,
}

impl ToneSpec {
    /// A tone from its segments.
    ///
    /// # Errors
    /// See [`ToneError`]: the segment count, every frequency and level, and zero durations
    /// are checked.
    pub fn new(segments: &[Segment], repeat: bool) -> Result<Self, ToneError> {
        if segments.is_empty() || segments.len() > MAX_SEGMENTS {
            return Err(ToneError::SegmentCount(segments.len()));
        }
        for s in segments {
            for &f in &s.freqs {
                if f != 0.0 && !(1.0..4000.0).contains(&f) {
                    return Err(ToneError::Frequency(f));
                }
            }
            if !s.is_silent() && !(-60.0..=3.0).contains(&s.level_dbm0) {
                return Err(ToneError::Level(s.level_dbm0));
            }
            if s.ms == 0 && segments.len() > 1 {
                return Err(ToneError::ZeroLength);
            }
        }
        let mut arr = [Segment::default(); MAX_SEGMENTS];
        arr[..segments.len()].copy_from_slice(segments);
        Ok(ToneSpec { segments: arr, len: segments.len() as u8, repeat })
    }

    /// A continuous single or dual frequency tone.
    ///
    /// # Errors
    /// As [`ToneSpec::new`].
    pub fn continuous(freqs: [f32; 2], level_dbm0: f32) -> Result<Self, ToneError> {
        ToneSpec::new(&[Segment { ms: 0, freqs, level_dbm0 }], true)
    }

    /// A repeating on/off cadence of one frequency set: `pattern` alternates on and off times
    /// in milliseconds, starting with on.
    ///
    /// # Errors
    /// As [`ToneSpec::new`].
    pub fn cadenced(freqs: [f32; 2], level_dbm0: f32, pattern: &[u32]) -> Result<Self, ToneError> {
        let mut segs = [Segment::default(); MAX_SEGMENTS];
        if pattern.is_empty() || pattern.len() > MAX_SEGMENTS {
            return Err(ToneError::SegmentCount(pattern.len()));
        }
        for (i, &ms) in pattern.iter().enumerate() {
            segs[i] =
                if i % 2 == 0 { Segment { ms, freqs, level_dbm0 } } else { Segment::silence(ms) };
        }
        ToneSpec::new(&segs[..pattern.len()], true)
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.len as usize]
    }

    /// Length of one cadence period in ms (0 for a continuous tone).
    pub fn period_ms(&self) -> u32 {
        self.segments().iter().map(|s| s.ms).sum()
    }
}

/// Plays a [`ToneSpec`] sample by sample.
#[derive(Debug, Clone)]
pub struct ToneGen {
    spec: ToneSpec,
    seg: usize,
    /// Samples left in the current segment (u64::MAX for continuous).
    left: u64,
    phase: [u32; 2],
    step: [u32; 2],
    amp: f32,
    done: bool,
    table: &'static [f32; TABLE_LEN + 1],
}

impl ToneGen {
    /// A generator at the start of `spec`.
    pub fn new(spec: ToneSpec) -> Self {
        let mut g = ToneGen {
            spec,
            seg: 0,
            left: 0,
            phase: [0; 2],
            step: [0; 2],
            amp: 0.0,
            done: false,
            table: init(),
        };
        g.enter(0);
        g
    }

    /// Restart with another tone without allocating.
    pub fn set(&mut self, spec: ToneSpec) {
        self.spec = spec;
        self.phase = [0; 2];
        self.done = false;
        self.enter(0);
    }

    fn enter(&mut self, seg: usize) {
        self.seg = seg;
        let s = self.spec.segments[seg];
        self.left = if s.ms == 0 { u64::MAX } else { u64::from(s.ms) * 8 };
        for k in 0..2 {
            self.step[k] = ((s.freqs[k] as f64 / RATE as f64) * 4_294_967_296.0) as u32;
        }
        // Each component at the given level (two components at -3 dBm0 or below never clip).
        self.amp = if s.is_silent() { 0.0 } else { dbm0_to_peak(s.level_dbm0) };
    }

    /// Whether a non-repeating tone has finished.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next sample.
    ///
    /// # Real-time
    /// Constant work, no allocation.
    #[inline]
    pub fn next_sample(&mut self) -> i16 {
        if self.done {
            return 0;
        }
        let mut acc = 0f32;
        if self.amp != 0.0 {
            for k in 0..2 {
                if self.step[k] != 0 {
                    let p = self.phase[k];
                    let idx = (p >> (32 - TABLE_BITS)) as usize;
                    let frac = (p & ((1 << (32 - TABLE_BITS)) - 1)) as f32
                        * (1.0 / (1u64 << (32 - TABLE_BITS)) as f32);
                    let a = self.table[idx];
                    let b = self.table[idx + 1];
                    acc += a + (b - a) * frac;
                    self.phase[k] = p.wrapping_add(self.step[k]);
                }
            }
        }
        let out = (acc * self.amp).clamp(-32768.0, 32767.0) as i16;
        if self.left != u64::MAX {
            self.left -= 1;
            if self.left == 0 {
                let next = self.seg + 1;
                if next < self.spec.len as usize {
                    self.enter(next);
                } else if self.spec.repeat {
                    self.enter(0);
                } else {
                    self.done = true;
                }
            }
        }
        out
    }

    /// Fill `out` with the next samples.
    ///
    /// # Real-time
    /// Work proportional to `out.len()`, no allocation.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = self.next_sample();
        }
    }
}
