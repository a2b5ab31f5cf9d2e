//! Fax and modem answer tone detection: CNG (1100 Hz, sent by a calling fax) and CED/ANS
//! (2100 Hz, sent by the answering side), with a flag for ANS phase reversals (V.25 ANS with
//! reversals every 450 ms, or V.8 ANSam).
//!
//! Works on 10 ms blocks ([`BLOCK_LEN`] = 80 samples) with one [`Goertzel`] filter per
//! frequency. A block "has" a tone when its power is at least [`FaxToneConfig::min_dbm0`] and
//! at least [`FaxToneConfig::min_ratio`] of the block's total power. Dropouts of up to
//! [`MAX_GAP_BLOCKS`] blocks do not break a burst (a phase reversal inside a block cancels
//! part of that block's energy).
//!
//! - CNG is reported once per burst when the burst has lasted [`FaxToneConfig::cng_min_ms`]
//!   (default 400 ms; CNG bursts are 500 ms).
//! - CED is reported once per burst when the burst has lasted [`FaxToneConfig::ced_min_ms`]
//!   (default 500 ms), with `phase_reversals` set when a reversal was seen by then.
//!
//! Reversals are found cheaply: over 80 samples a 2100 Hz tone advances exactly 21 cycles,
//! so the Goertzel value of consecutive blocks has the same phase unless the tone's phase
//! jumped; a jump of more than 120° between two full-tone blocks (or across a dropout) is a
//! reversal. Feeding any chunk size gives the same events. [`FaxToneDetector::process`] does
//! not allocate.

use crate::goertzel::Goertzel;
use crate::tone::DBM0_PEAK;

/// Samples per analysis block (10 ms at 8 kHz).
pub const BLOCK_LEN: usize = 80;

/// Blocks without the tone that do not end a burst.
pub const MAX_GAP_BLOCKS: u32 = 2;

const BLOCK_MS: u32 = 10;

/// Mean square of a 0 dBm0 sine, 16-bit units.
const DBM0_MS: f64 = (DBM0_PEAK as f64) * (DBM0_PEAK as f64) / 2.0;

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaxToneEvent {
    /// Calling tone (1100 Hz) from a fax machine that is calling.
    Cng {
        /// Sample position of the decision (end of its block), counted from the start.
        at_sample: u64,
    },
    /// Answer tone (2100 Hz) from a fax machine or modem that answered.
    Ced {
        /// Sample position of the decision (end of its block), counted from the start.
        at_sample: u64,
        /// Whether the tone's phase reversed (ANS with reversals / ANSam) before the decision.
        phase_reversals: bool,
    },
}

/// Tuning of a [`FaxToneDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaxToneConfig {
    /// Least tone power in a block, dBm0.
    pub min_dbm0: f32,
    /// Least share (0..1) of the block's power at the tone frequency.
    pub min_ratio: f32,
    /// CNG burst length before it is reported, ms.
    pub cng_min_ms: u32,
    /// CED length before it is reported, ms.
    pub ced_min_ms: u32,
}

impl Default for FaxToneConfig {
    fn default() -> Self {
        FaxToneConfig { min_dbm0: -40.0, min_ratio: 0.6, cng_min_ms: 400, ced_min_ms: 500 }
    }
}

/// One tone's burst tracker.
#[derive(Debug, Clone, Copy)]
struct Burst {
    filter: Goertzel,
    /// Blocks since the burst started (including tolerated gaps), 0 = no burst.
    blocks: u32,
    gap: u32,
    reported: bool,
    /// Goertzel value of the last block that had the tone.
    last: (f32, f32),
    reversal: bool,
}

impl Burst {
    fn new(freq: f32) -> Self {
        Burst {
            filter: Goertzel::new(freq, BLOCK_LEN),
            blocks: 0,
            gap: 0,
            reported: false,
            last: (0.0, 0.0),
            reversal: false,
        }
    }

    /// End a block; returns the burst's length in ms if the tone is (still) present.
    fn end_block(&mut self, total_ms: f64, min_ms: f64, ratio: f64) -> Option<u32> {
        let n = BLOCK_LEN as f64;
        let tone_ms = 2.0 * f64::from(self.filter.power()) / (n * n);
        let value = self.filter.value();
        self.filter.reset();
        if tone_ms >= min_ms && tone_ms >= ratio * total_ms {
            if self.blocks > 0 {
                let (a, b) = (self.last, value);
                let dot = f64::from(a.0) * f64::from(b.0) + f64::from(a.1) * f64::from(b.1);
                let mag =
                    (f64::from(a.0).hypot(f64::from(a.1))) * (f64::from(b.0).hypot(f64::from(b.1)));
                if dot < -0.5 * mag {
                    self.reversal = true;
                }
            } else {
                self.reported = false;
                self.reversal = false;
            }
            self.last = value;
            self.blocks += 1 + self.gap;
            self.gap = 0;
            Some(self.blocks * BLOCK_MS)
        } else {
            if self.blocks > 0 {
                self.gap += 1;
                if self.gap > MAX_GAP_BLOCKS {
                    self.blocks = 0;
                    self.gap = 0;
                }
            }
            None
        }
    }

    fn reset(&mut self) {
        self.filter.reset();
        self.blocks = 0;
        self.gap = 0;
        self.reported = false;
        self.reversal = false;
    }
}

/// Finds CNG and CED/ANS tones in received audio.
#[derive(Debug, Clone)]
pub struct FaxToneDetector {
    cfg: FaxToneConfig,
    cng: Burst,
    ced: Burst,
    min_ms: f64,
    sum_sq: f64,
    in_block: usize,
    sample: u64,
}

impl Default for FaxToneDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl FaxToneDetector {
    /// A detector with the default [`FaxToneConfig`].
    pub fn new() -> Self {
        Self::with_config(FaxToneConfig::default())
    }

    /// A detector tuned by `cfg`.
    pub fn with_config(cfg: FaxToneConfig) -> Self {
        FaxToneDetector {
            cfg,
            cng: Burst::new(1100.0),
            ced: Burst::new(2100.0),
            min_ms: DBM0_MS * 10f64.powf(f64::from(cfg.min_dbm0) / 10.0),
            sum_sq: 0.0,
            in_block: 0,
            sample: 0,
        }
    }

    /// Forget everything heard. Does not allocate.
    pub fn reset(&mut self) {
        self.cng.reset();
        self.ced.reset();
        self.sum_sq = 0.0;
        self.in_block = 0;
        self.sample = 0;
    }

    /// Feed received samples (any chunk size) and get the events they complete.
    ///
    /// # Real-time
    /// Work proportional to `samples.len()`, no allocation.
    pub fn process(&mut self, samples: &[i16], mut on_event: impl FnMut(FaxToneEvent)) {
        for &x in samples {
            let v = f32::from(x);
            self.cng.filter.push(v);
            self.ced.filter.push(v);
            self.sum_sq += f64::from(v) * f64::from(v);
            self.in_block += 1;
            self.sample += 1;
            if self.in_block == BLOCK_LEN {
                let total = self.sum_sq / BLOCK_LEN as f64;
                self.sum_sq = 0.0;
                self.in_block = 0;
                let ratio = f64::from(self.cfg.min_ratio);
                if let Some(ms) = self.cng.end_block(total, self.min_ms, ratio) {
                    if !self.cng.reported && ms >= self.cfg.cng_min_ms {
                        self.cng.reported = true;
                        on_event(FaxToneEvent::Cng { at_sample: self.sample });
                    }
                }
                if let Some(ms) = self.ced.end_block(total, self.min_ms, ratio) {
                    if !self.ced.reported && ms >= self.cfg.ced_min_ms {
                        self.ced.reported = true;
                        on_event(FaxToneEvent::Ced {
                            at_sample: self.sample,
                            phase_reversals: self.ced.reversal,
                        });
                    }
                }
            }
        }
    }
}
