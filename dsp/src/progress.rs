//! Call-progress tone detection: dial, busy, ringback and congestion tones of a [`TonePlan`],
//! the ITU-T E.180 special information tone (SIT), and "voice" (energy that is not a tone),
//! for FXO disconnect supervision and for telling how an outgoing call went.
//!
//! The detector works on 10 ms blocks ([`BLOCK_LEN`] = 80 samples). Per block it measures the
//! power at each plan frequency with a [`Goertzel`] filter and the total power. A block is
//! "tone on" when the plan-frequency power is at least [`ProgressConfig::min_tone_dbm0`] and
//! holds at least [`ProgressConfig::min_tone_ratio`] of the block's total power, so speech,
//! whose energy is spread over many harmonics, rarely counts. On/off decisions are debounced
//! by [`DEBOUNCE_BLOCKS`] blocks and turned into run lengths, which are matched against the
//! plan cadences with a tolerance of ±10 % or ±50 ms, whichever is larger.
//!
//! - Dial: one on run of at least [`ProgressConfig::dial_min_ms`] (by default 1 s, or longer
//!   when a cadenced tone of the plan has on times close to 1 s, as ringback's 1 s on).
//! - Busy and Congestion: [`ProgressConfig::cycles`] full on/off cycles (default 2). The last
//!   off time counts as soon as it has lasted its minimum, so busy tone is reported about
//!   2 periods after it starts.
//! - Ringback: one on and one off time ([`ProgressConfig::ringback_cycles`]).
//! - Sit ([`ProgressTone::Sit`]): three successive tones in the bands 950, 1400 and 1800 Hz
//!   ± 50 Hz, each 330 ± 70 ms long (measured 240..=420 ms, which also takes the North
//!   American short 274 ms and long 380 ms segments), with gaps of at most 30 ms (40 ms
//!   measured) between them, each steady in level. Each band is listened to by two filters
//!   25 Hz either side of its centre, so a tone anywhere in the band keeps at least about 80 %
//!   of its block power in one of them, and a tone 100 Hz or more off the centre falls below
//!   the [`ProgressConfig::min_tone_ratio`]. Reported when the third segment ends; the
//!   measured segments, with a North American [`SitKind`], are kept
//!   ([`ProgressDetector::last_sit`]).
//!   SIT blocks count as neither tone nor voice, so a SIT never looks like an answer. The SIT
//!   stops after [`SIT_HOLD_MS`] without a SIT segment, or when a plan tone or voice starts.
//! - `ToneStopped` when a detected tone leaves its cadence (an on or off time too long or out of
//!   pattern); `VoiceDetected` once [`ProgressConfig::voice_min_ms`] of non-tone energy has
//!   been heard (re-armed by a detected tone or by 1 s without voice).
//!
//! The detector keeps all state between calls, so feeding 8-sample ticks or 160-sample chunks
//! gives the same events at the same sample positions. [`ProgressDetector::process`] does not
//! allocate.

use crate::goertzel::Goertzel;
use crate::tone::{ToneSpec, DBM0_PEAK, MAX_SEGMENTS};
use crate::toneplan::{ProgressTone, TonePlan};

/// Samples per analysis block (10 ms at 8 kHz).
pub const BLOCK_LEN: usize = 80;

/// Milliseconds per analysis block.
const BLOCK_MS: u32 = 10;

/// Blocks a new on/off state must hold before the detector believes it.
pub const DEBOUNCE_BLOCKS: u32 = 2;

/// Most distinct tone frequencies the detector listens to.
const MAX_FREQS: usize = 4;

/// Completed runs remembered for cadence matching.
const HISTORY: usize = 16;

/// Most ratio between the strongest and weakest tone block of one on run (6 dB; a partly
/// filled edge block of a steady tone is at most about 4.4 dB down).
const MAX_SPREAD: f64 = 4.0;

/// Marks a run whose start was not seen (the run in progress when the detector started).
const UNKNOWN_MS: u32 = u32::MAX;

/// Tones that are matched against cadences.
const DETECTED_TONES: [ProgressTone; 4] =
    [ProgressTone::Dial, ProgressTone::Busy, ProgressTone::Ringback, ProgressTone::Congestion];

/// E.180 SIT nominal frequencies, Hz.
pub const SIT_FREQS: [f32; 3] = [950.0, 1400.0, 1800.0];

/// Each SIT band has two filters this far below and above its centre, Hz.
const SIT_SPLIT_HZ: f32 = 25.0;

/// Shortest and longest SIT segment as measured in 10 ms blocks, ms (E.180: 330 ± 70 ms).
pub const SIT_MIN_MS: u32 = 240;
/// See [`SIT_MIN_MS`].
pub const SIT_MAX_MS: u32 = 420;

/// Longest gap inside or between SIT segments, blocks (E.180: 30 ms, plus an edge block).
const SIT_MAX_GAP_BLOCKS: u32 = 4;

/// A detected SIT has stopped after this long without a SIT segment, ms (E.180: 1 s ± 250 ms
/// of silence between repetitions).
pub const SIT_HOLD_MS: u32 = 1500;

/// North American segments shorter than this are "short" (274 ms), longer "long" (380 ms).
const SIT_SHORT_LONG_MS: u32 = 327;

/// Mean square of a 0 dBm0 sine, 16-bit units.
const DBM0_MS: f64 = (DBM0_PEAK as f64) * (DBM0_PEAK as f64) / 2.0;

/// Tuning of a [`ProgressDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressConfig {
    /// Least power at the plan frequencies for a block to be "tone on", dBm0.
    pub min_tone_dbm0: f32,
    /// Least share (0..1) of the block's power that must be at the plan frequencies.
    pub min_tone_ratio: f32,
    /// Full on/off cycles that must match before Busy or Congestion is reported.
    pub cycles: u32,
    /// On/off cycles that must match before Ringback is reported.
    pub ringback_cycles: u32,
    /// Continuous tone needed for Dial, ms; 0 = automatic (≥ 1000 ms and longer than any
    /// cadenced on time of the plan plus its tolerance).
    pub dial_min_ms: u32,
    /// Least block power counted as voice, dBm0.
    pub voice_min_dbm0: f32,
    /// Voice needed before `VoiceDetected`, ms.
    pub voice_min_ms: u32,
    /// Listen for the E.180 special information tone (costs six more filters per sample).
    pub sit: bool,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            min_tone_dbm0: -36.0,
            min_tone_ratio: 0.6,
            cycles: 2,
            ringback_cycles: 1,
            dial_min_ms: 0,
            voice_min_dbm0: -42.0,
            voice_min_ms: 150,
            sit: true,
        }
    }
}

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A plan tone was recognised; `at_sample` counts samples since the detector started and is
    /// the end of the block in which the decision was made.
    Detected {
        /// Which tone.
        tone: ProgressTone,
        /// Sample position of the decision.
        at_sample: u64,
    },
    /// The tone reported last has stopped or left its cadence.
    ToneStopped {
        /// The tone that stopped.
        tone: ProgressTone,
        /// Sample position of the decision.
        at_sample: u64,
    },
    /// Energy that is not a plan tone (someone talking, e.g. answered after ringback).
    VoiceDetected {
        /// Sample position of the decision.
        at_sample: u64,
    },
}

/// The North American (Telcordia) meaning of a SIT, from the short/long durations of its
/// segments and the low/high frequencies of its first two segments (as publicly tabulated;
/// not checked against the Telcordia text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SitKind {
    /// IC, intercept (vacant number or changed): short, short, long; low, low.
    Intercept,
    /// VC, vacant code: long, short, long; high, low.
    VacantCode,
    /// RO, reorder (intra-LATA): short, long, long; low, high.
    Reorder,
    /// RO', reorder (inter-LATA carrier): short, long, long; high, low.
    ReorderInterLata,
    /// NC, no circuit (intra-LATA): long, long, long; high, high.
    NoCircuit,
    /// NC', no circuit (inter-LATA carrier): long, long, long; low, low.
    NoCircuitInterLata,
    /// IO, ineffective other: long, short, long; low, high.
    IneffectiveOther,
    /// Reserved code: short, short, long; high, high.
    Reserved,
}

/// The three segments of the SIT heard last, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SitSegments {
    /// Duration of each segment, ms (multiples of 10).
    pub ms: [u32; 3],
    /// Whether each segment's frequency lay above its band's E.180 nominal frequency (the
    /// North American "high" 985.2 / 1428.5 Hz as opposed to "low" 913.8 / 1370.6 Hz).
    pub high: [bool; 3],
}

impl SitSegments {
    /// The North American meaning of the durations and frequencies, or `None` when they form
    /// no assigned code (an ITU SIT at 950/1400/1800 Hz, 330 ms, usually gives none or an
    /// arbitrary one: its frequencies sit on the band centres).
    pub fn north_american_kind(&self) -> Option<SitKind> {
        let long = self.ms.map(|m| m > SIT_SHORT_LONG_MS);
        let (l1, l2, l3) = (long[0], long[1], long[2]);
        if !l3 || self.high[2] {
            return None;
        }
        Some(match ((l1, l2), (self.high[0], self.high[1])) {
            ((false, false), (false, false)) => SitKind::Intercept,
            ((false, false), (true, true)) => SitKind::Reserved,
            ((true, false), (true, false)) => SitKind::VacantCode,
            ((true, false), (false, true)) => SitKind::IneffectiveOther,
            ((false, true), (false, true)) => SitKind::Reorder,
            ((false, true), (true, false)) => SitKind::ReorderInterLata,
            ((true, true), (true, true)) => SitKind::NoCircuit,
            ((true, true), (false, false)) => SitKind::NoCircuitInterLata,
            _ => return None,
        })
    }
}

/// Segment-by-segment tracking of a SIT.
#[derive(Debug, Clone, Copy)]
struct SitTracker {
    /// Band (0, 1, 2) of the segment in progress.
    band: Option<usize>,
    /// Blocks of the segment in progress (short dropouts included).
    blocks: u32,
    /// Blocks without the segment's band since its last block.
    gap: u32,
    /// Blocks since the last segment ended (no segment in progress).
    idle: u32,
    /// Blocks since the last block in any SIT band.
    quiet: u32,
    /// The segment in progress follows the previous one closely enough to continue a SIT.
    linked: bool,
    /// Upper filter stronger (+1) or lower (-1), summed over the segment's blocks.
    votes: i32,
    lo: f64,
    hi: f64,
    /// Completed segments in a row: band, ms, high, acceptable.
    done: [(usize, u32, bool, bool); 3],
    ndone: usize,
    last: Option<SitSegments>,
}

impl SitTracker {
    const NEW: SitTracker = SitTracker {
        band: None,
        blocks: 0,
        gap: 0,
        idle: u32::MAX / 2,
        quiet: u32::MAX / 2,
        linked: false,
        votes: 0,
        lo: f64::MAX,
        hi: 0.0,
        done: [(0, 0, false, false); 3],
        ndone: 0,
        last: None,
    };

    /// One block: `label` is the SIT band it belongs to and whether its upper filter was the
    /// stronger, `power` its band power. Returns the segments of a SIT that just completed.
    fn block(&mut self, label: Option<(usize, bool)>, power: f64) -> Option<SitSegments> {
        let mut found = None;
        match label {
            Some((b, high)) => {
                self.quiet = 0;
                if self.band == Some(b) {
                    self.blocks += 1 + self.gap;
                    self.gap = 0;
                } else {
                    let mut gap_before = self.idle;
                    if self.band.is_some() {
                        gap_before = self.gap;
                        found = self.complete();
                    }
                    self.band = Some(b);
                    self.blocks = 1;
                    self.gap = 0;
                    self.votes = 0;
                    self.lo = f64::MAX;
                    self.hi = 0.0;
                    self.linked = gap_before <= SIT_MAX_GAP_BLOCKS;
                }
                self.votes += if high { 1 } else { -1 };
                self.lo = self.lo.min(power);
                self.hi = self.hi.max(power);
                self.idle = 0;
            }
            None => {
                self.quiet = self.quiet.saturating_add(1);
                if self.band.is_some() {
                    self.gap += 1;
                    if self.gap > SIT_MAX_GAP_BLOCKS {
                        let g = self.gap;
                        found = self.complete();
                        self.idle = g;
                    }
                } else {
                    self.idle = self.idle.saturating_add(1);
                }
            }
        }
        found
    }

    /// The segment in progress has ended.
    fn complete(&mut self) -> Option<SitSegments> {
        let band = self.band.take()?;
        let ms = self.blocks * BLOCK_MS;
        let ok = (SIT_MIN_MS..=SIT_MAX_MS).contains(&ms) && self.hi <= MAX_SPREAD * self.lo;
        if !self.linked {
            self.ndone = 0;
        }
        if self.ndone == 3 {
            self.done.copy_within(1..3, 0);
            self.ndone = 2;
        }
        self.done[self.ndone] = (band, ms, self.votes > 0, ok);
        self.ndone += 1;
        let d = &self.done;
        let sit = self.ndone == 3 && (0..3).all(|i| d[i].0 == i && d[i].3);
        if !sit {
            return None;
        }
        self.ndone = 0;
        let seg = SitSegments { ms: [d[0].1, d[1].1, d[2].1], high: [d[0].2, d[1].2, d[2].2] };
        self.last = Some(seg);
        Some(seg)
    }
}

/// On/off times of one cadenced tone, ms, alternating and starting with on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cadence {
    tone: ProgressTone,
    runs: [u32; MAX_SEGMENTS],
    len: usize,
    cycles: u32,
}

/// Allowed deviation from a nominal time: ±10 % or ±50 ms, whichever is larger.
fn tolerance(ms: u32) -> u32 {
    (ms / 10).max(50)
}

fn within(measured: u32, nominal: u32) -> bool {
    measured != UNKNOWN_MS && measured.abs_diff(nominal) <= tolerance(nominal)
}

impl Cadence {
    /// The cadence of `spec` as merged on/off runs, or `None` for a continuous or silent tone.
    fn from_spec(tone: ProgressTone, spec: &ToneSpec, cycles: u32) -> Option<Cadence> {
        let segs = spec.segments();
        if segs.iter().any(|s| s.ms == 0) || !spec.repeat {
            return None;
        }
        // Start at the first sounding segment, walk once round, merging equal kinds.
        let first = segs.iter().position(|s| !s.is_silent())?;
        let mut runs = [0u32; MAX_SEGMENTS];
        let mut kinds = [false; MAX_SEGMENTS];
        let mut len = 0;
        for i in 0..segs.len() {
            let s = &segs[(first + i) % segs.len()];
            let on = !s.is_silent();
            if len > 0 && kinds[len - 1] == on {
                runs[len - 1] += s.ms;
            } else {
                runs[len] = s.ms;
                kinds[len] = on;
                len += 1;
            }
        }
        if len < 2 || len % 2 == 1 {
            // No silence at all, or ends with on (cannot happen after starting at on and merging
            // unless the pattern is all on).
            return None;
        }
        Some(Cadence { tone, runs, len, cycles: cycles.max(1) })
    }

    fn max_of(&self, on: bool) -> u32 {
        let start = if on { 0 } else { 1 };
        self.runs[..self.len]
            .iter()
            .skip(start)
            .step_by(2)
            .map(|&m| m + tolerance(m))
            .max()
            .unwrap_or(0)
    }

    fn fits(&self, on: bool, ms: u32) -> bool {
        let start = if on { 0 } else { 1 };
        self.runs[..self.len].iter().skip(start).step_by(2).any(|&m| within(ms, m))
    }
}

/// Finds a plan's dial, busy, ringback and congestion tones in received audio.
#[derive(Debug, Clone)]
pub struct ProgressDetector {
    cfg: ProgressConfig,
    filters: [Goertzel; MAX_FREQS],
    nfreqs: usize,
    cadences: [Option<Cadence>; 3],
    /// Two filters per SIT band: below and above its centre.
    sit_filters: [Goertzel; 6],
    sit: SitTracker,
    dial: bool,
    dial_min_ms: u32,
    min_tone_ms: f64,
    voice_min_ms: f64,
    // Block accumulators.
    sum_sq: f64,
    in_block: usize,
    sample: u64,
    // Run tracking.
    on: bool,
    run_blocks: u32,
    pending: u32,
    /// Least and most plan-frequency power of the tone blocks of the current on run.
    run_min: f64,
    run_max: f64,
    history: [(bool, u32); HISTORY],
    hist_len: usize,
    hist_head: usize,
    detected: Option<ProgressTone>,
    // Voice.
    voice_blocks: u32,
    quiet_blocks: u32,
    voice_armed: bool,
}

impl ProgressDetector {
    /// A detector for `plan` with the default [`ProgressConfig`].
    pub fn new(plan: &TonePlan) -> Self {
        Self::with_config(plan, ProgressConfig::default())
    }

    /// A detector for `plan` tuned by `cfg`. Only the first four distinct frequencies of the
    /// dial, busy, ringback and congestion tones are listened to.
    pub fn with_config(plan: &TonePlan, cfg: ProgressConfig) -> Self {
        let mut filters = [Goertzel::new(0.0, BLOCK_LEN); MAX_FREQS];
        let mut nfreqs = 0;
        for t in DETECTED_TONES {
            for seg in plan.tone(t).segments() {
                for &f in &seg.freqs {
                    let known = filters[..nfreqs].iter().any(|g| (g.freq_hz() - f).abs() < 1.0);
                    if f > 0.0 && !known && nfreqs < MAX_FREQS {
                        filters[nfreqs] = Goertzel::new(f, BLOCK_LEN);
                        nfreqs += 1;
                    }
                }
            }
        }
        let cad = |t, n| Cadence::from_spec(t, &plan.tone(t), n);
        let cadences = [
            cad(ProgressTone::Busy, cfg.cycles),
            cad(ProgressTone::Congestion, cfg.cycles),
            cad(ProgressTone::Ringback, cfg.ringback_cycles),
        ];
        let dial_spec = plan.tone(ProgressTone::Dial);
        let dial = dial_spec.segments().iter().any(|s| s.ms == 0 && !s.is_silent());
        let dial_min_ms = if cfg.dial_min_ms > 0 {
            cfg.dial_min_ms
        } else {
            let longest_on = cadences.iter().flatten().map(|c| c.max_of(true)).max().unwrap_or(0);
            (longest_on + 50).max(1000)
        };
        let to_ms = |dbm0: f32| DBM0_MS * 10f64.powf(f64::from(dbm0) / 10.0);
        let mut sit_filters = [Goertzel::new(0.0, BLOCK_LEN); 6];
        for (i, f) in sit_filters.iter_mut().enumerate() {
            let side = if i % 2 == 0 { -SIT_SPLIT_HZ } else { SIT_SPLIT_HZ };
            *f = Goertzel::new(SIT_FREQS[i / 2] + side, BLOCK_LEN);
        }
        ProgressDetector {
            cfg,
            filters,
            nfreqs,
            cadences,
            sit_filters,
            sit: SitTracker::NEW,
            dial,
            dial_min_ms,
            min_tone_ms: to_ms(cfg.min_tone_dbm0),
            voice_min_ms: to_ms(cfg.voice_min_dbm0),
            sum_sq: 0.0,
            in_block: 0,
            sample: 0,
            on: false,
            run_blocks: 0,
            pending: 0,
            run_min: f64::MAX,
            run_max: 0.0,
            history: [(false, 0); HISTORY],
            hist_len: 0,
            hist_head: 0,
            detected: None,
            voice_blocks: 0,
            quiet_blocks: 0,
            voice_armed: true,
        }
    }

    /// The frequencies listened to, Hz (unused slots are absent).
    pub fn freqs(&self) -> impl Iterator<Item = f32> + '_ {
        self.filters[..self.nfreqs].iter().map(|g| g.freq_hz())
    }

    /// Continuous tone needed for Dial, ms (after the automatic choice).
    pub fn dial_min_ms(&self) -> u32 {
        self.dial_min_ms
    }

    /// The tone reported last and not yet stopped.
    pub fn current(&self) -> Option<ProgressTone> {
        self.detected
    }

    /// Samples processed since the detector was built or reset.
    pub fn samples_seen(&self) -> u64 {
        self.sample
    }

    /// The segments of the last SIT detected since the detector was built or reset.
    pub fn last_sit(&self) -> Option<SitSegments> {
        self.sit.last
    }

    /// Forget everything heard (e.g. at the start of a new call). Does not allocate.
    pub fn reset(&mut self) {
        for g in self.filters.iter_mut().chain(self.sit_filters.iter_mut()) {
            g.reset();
        }
        self.sit = SitTracker::NEW;
        self.sum_sq = 0.0;
        self.in_block = 0;
        self.sample = 0;
        self.on = false;
        self.run_blocks = 0;
        self.pending = 0;
        self.run_min = f64::MAX;
        self.run_max = 0.0;
        self.hist_len = 0;
        self.hist_head = 0;
        self.detected = None;
        self.voice_blocks = 0;
        self.quiet_blocks = 0;
        self.voice_armed = true;
    }

    /// Feed received samples (any chunk size) and get the events they complete.
    ///
    /// # Real-time
    /// Work proportional to `samples.len()`, no allocation.
    pub fn process(&mut self, samples: &[i16], mut on_event: impl FnMut(ProgressEvent)) {
        for &x in samples {
            let v = f32::from(x);
            for g in &mut self.filters[..self.nfreqs] {
                g.push(v);
            }
            if self.cfg.sit {
                for g in &mut self.sit_filters {
                    g.push(v);
                }
            }
            self.sum_sq += f64::from(v) * f64::from(v);
            self.in_block += 1;
            self.sample += 1;
            if self.in_block == BLOCK_LEN {
                self.end_block(&mut on_event);
            }
        }
    }

    fn end_block(&mut self, on_event: &mut impl FnMut(ProgressEvent)) {
        let n = BLOCK_LEN as f64;
        // A sine of peak A gives Goertzel power (A·N/2)², mean square A²/2 = 2·P/N².
        let tone_ms: f64 =
            self.filters[..self.nfreqs].iter().map(|g| 2.0 * f64::from(g.power()) / (n * n)).sum();
        let total_ms = self.sum_sq / n;
        let ratio = f64::from(self.cfg.min_tone_ratio);
        let mut sit_label = None;
        let mut sit_power = 0.0;
        if self.cfg.sit {
            for b in 0..3 {
                let lo = 2.0 * f64::from(self.sit_filters[2 * b].power()) / (n * n);
                let hi = 2.0 * f64::from(self.sit_filters[2 * b + 1].power()) / (n * n);
                let p = lo.max(hi);
                if p > sit_power {
                    sit_power = p;
                    sit_label = Some((b, hi > lo));
                }
            }
            if sit_power < self.min_tone_ms || sit_power < ratio * total_ms {
                sit_label = None;
            }
            for g in &mut self.sit_filters {
                g.reset();
            }
        }
        for g in &mut self.filters {
            g.reset();
        }
        self.sum_sq = 0.0;
        self.in_block = 0;
        let tone = tone_ms >= self.min_tone_ms && tone_ms >= ratio * total_ms;
        let voice = !tone && sit_label.is_none() && total_ms >= self.voice_min_ms;
        if self.cfg.sit {
            self.track_sit(sit_label, sit_power, on_event);
        }
        self.track_voice(voice, tone, on_event);
        self.track_runs(tone, tone_ms, on_event);
    }

    fn track_sit(
        &mut self,
        label: Option<(usize, bool)>,
        power: f64,
        on_event: &mut impl FnMut(ProgressEvent),
    ) {
        if self.sit.block(label, power).is_some() {
            if self.detected != Some(ProgressTone::Sit) {
                self.stop(on_event);
                self.detect(ProgressTone::Sit, on_event);
            }
        } else if self.detected == Some(ProgressTone::Sit)
            && self.sit.quiet.saturating_mul(BLOCK_MS) > SIT_HOLD_MS
        {
            self.stop(on_event);
        }
    }

    fn track_voice(&mut self, voice: bool, tone: bool, on_event: &mut impl FnMut(ProgressEvent)) {
        if voice {
            self.voice_blocks += 1;
            self.quiet_blocks = 0;
        } else {
            self.quiet_blocks += 1;
            // Syllables have short dips; a longer gap (or a tone) ends the voice run.
            if self.quiet_blocks > 5 || tone {
                self.voice_blocks = 0;
            }
            if self.quiet_blocks >= 1000 / BLOCK_MS {
                self.voice_armed = true;
            }
        }
        if self.voice_armed && self.voice_blocks * BLOCK_MS >= self.cfg.voice_min_ms {
            self.voice_armed = false;
            if self.detected == Some(ProgressTone::Sit) {
                // The announcement after a SIT.
                self.stop(on_event);
            }
            on_event(ProgressEvent::VoiceDetected { at_sample: self.sample });
        }
    }

    fn track_runs(&mut self, tone: bool, tone_ms: f64, on_event: &mut impl FnMut(ProgressEvent)) {
        if tone {
            self.run_min = self.run_min.min(tone_ms);
            self.run_max = self.run_max.max(tone_ms);
        }
        if tone == self.on {
            self.run_blocks += 1 + self.pending;
            self.pending = 0;
        } else {
            self.pending += 1;
            if self.pending >= DEBOUNCE_BLOCKS {
                // The run started before we saw anything has unknown length.
                // A tone keeps its level; an on run whose level wanders (a vowel that happens to
                // sit on the tone frequency) matches no cadence.
                let unsteady = self.on && self.run_max > MAX_SPREAD * self.run_min;
                let ms = if (self.hist_len == 0 && !self.on) || unsteady {
                    UNKNOWN_MS
                } else {
                    self.run_blocks * BLOCK_MS
                };
                self.push_history(self.on, ms);
                self.run_completed(self.on, ms, on_event);
                self.on = tone;
                self.run_blocks = self.pending;
                self.pending = 0;
                // The pending blocks start the new run (their levels are not kept: at most two
                // edge blocks are left out of the spread).
                self.run_min = f64::MAX;
                self.run_max = 0.0;
            }
        }
        self.check_current(on_event);
    }

    fn push_history(&mut self, on: bool, ms: u32) {
        self.history[self.hist_head] = (on, ms);
        self.hist_head = (self.hist_head + 1) % HISTORY;
        self.hist_len = (self.hist_len + 1).min(HISTORY);
    }

    /// The `i`-th most recent completed run (0 = newest).
    fn past(&self, i: usize) -> Option<(bool, u32)> {
        (i < self.hist_len).then(|| self.history[(self.hist_head + HISTORY - 1 - i) % HISTORY])
    }

    fn stop(&mut self, on_event: &mut impl FnMut(ProgressEvent)) {
        if let Some(tone) = self.detected.take() {
            on_event(ProgressEvent::ToneStopped { tone, at_sample: self.sample });
        }
    }

    fn detect(&mut self, tone: ProgressTone, on_event: &mut impl FnMut(ProgressEvent)) {
        self.detected = Some(tone);
        self.voice_armed = true;
        self.voice_blocks = 0;
        on_event(ProgressEvent::Detected { tone, at_sample: self.sample });
    }

    fn cadence_of(&self, tone: ProgressTone) -> Option<Cadence> {
        self.cadences.iter().flatten().find(|c| c.tone == tone).copied()
    }

    /// A run has just ended: a detected tone must stay in its pattern.
    fn run_completed(&mut self, on: bool, ms: u32, on_event: &mut impl FnMut(ProgressEvent)) {
        match self.detected {
            Some(ProgressTone::Dial) if on => self.stop(on_event),
            Some(t) => {
                if let Some(c) = self.cadence_of(t) {
                    if !c.fits(on, ms) {
                        self.stop(on_event);
                    }
                }
            }
            None => {}
        }
    }

    /// Look at the run in progress: stop a tone that overstays, detect a new one.
    fn check_current(&mut self, on_event: &mut impl FnMut(ProgressEvent)) {
        let cur_ms = self.run_blocks * BLOCK_MS;
        if self.detected == Some(ProgressTone::Sit) {
            // A plan tone after a SIT ends it.
            if self.on {
                self.stop(on_event);
            }
            return;
        }
        if let Some(t) = self.detected {
            if let Some(c) = self.cadence_of(t) {
                if cur_ms > c.max_of(self.on) {
                    self.stop(on_event);
                }
            }
            return;
        }
        if self.on {
            if self.dial && cur_ms >= self.dial_min_ms {
                self.detect(ProgressTone::Dial, on_event);
            }
            return;
        }
        let found =
            self.cadences.iter().flatten().find(|c| self.matches(c, cur_ms)).map(|c| c.tone);
        if let Some(t) = found {
            self.detect(t, on_event);
        }
    }

    /// Whether the off run in progress (`cur_ms` so far) and the completed runs before it end
    /// with `c.cycles` periods of `c`.
    fn matches(&self, c: &Cadence, cur_ms: u32) -> bool {
        let need = c.len * c.cycles as usize;
        if self.hist_len + 1 < need {
            return false;
        }
        // The current off run may stand for any off element of the pattern.
        (1..c.len).step_by(2).any(|last| {
            let nominal = c.runs[last];
            if cur_ms + tolerance(nominal) < nominal || cur_ms > nominal + tolerance(nominal) {
                return false;
            }
            (1..need).all(|i| {
                let want = c.runs[(last + c.len * c.cycles as usize - i) % c.len];
                matches!(self.past(i - 1), Some((_, ms)) if within(ms, want))
            })
        })
    }
}
