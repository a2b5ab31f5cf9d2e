//! Tone plans: which call-progress tones a country or network uses, and its ringing cadence.
//!
//! A [`TonePlan`] maps each [`ProgressTone`] to a [`ToneSpec`] that the media engine can play,
//! and carries the FXS power-ringing on/off pattern. Three plans are built in: China (the
//! default), the ITU-T E.180 generic plan, and the German/ETSI 425 Hz plan. Any of them can be
//! adjusted from configuration with [`TonePlanOverrides`]. This module only describes tones; it
//! does not generate or detect them (see [`crate::tone`]).
//!
//! Plans are built when configuration is loaded, not on the real-time tick: they allocate (the
//! name, the ring cadence). [`TonePlan::tone`] returns a `Copy` [`ToneSpec`] that can be sent
//! through the engine's fixed-size command ring.

use crate::tone::{Segment, ToneError, ToneSpec, MAX_SEGMENTS};

/// Default level of each tone component, in dBm0.
pub const DEFAULT_LEVEL_DBM0: f32 = -10.0;

/// A call-progress tone that a plan defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressTone {
    /// Dial tone: the exchange is ready for digits.
    Dial,
    /// Busy (engaged): the called line is in use.
    Busy,
    /// Ringback (ringing tone): the called line is being rung.
    Ringback,
    /// Congestion (reorder): no route or no free circuit.
    Congestion,
    /// Call waiting: another call is waiting on a line that is in a call.
    CallWaiting,
    /// The plan's own "special information" tone (China: 450 Hz 3 × 100/100 then 400/400;
    /// the E.180 three-tone sequence in the ITU and European plans).
    Info,
    /// Recording warning: the call is being recorded.
    Record,
    /// ITU-T E.180 §6 / Q.35 special information tone (SIT): 950, 1400 and 1800 Hz for 330 ms
    /// each, then 1 s of silence, repeated. The network cannot complete the call (number
    /// unobtainable, changed, no circuit); an announcement often follows. The call-progress
    /// detector recognises it in every plan.
    Sit,
}

impl ProgressTone {
    /// Every tone, in declaration order.
    pub const ALL: [ProgressTone; 8] = [
        ProgressTone::Dial,
        ProgressTone::Busy,
        ProgressTone::Ringback,
        ProgressTone::Congestion,
        ProgressTone::CallWaiting,
        ProgressTone::Info,
        ProgressTone::Record,
        ProgressTone::Sit,
    ];

    /// The configuration key of the tone (`"call_waiting"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ProgressTone::Dial => "dial",
            ProgressTone::Busy => "busy",
            ProgressTone::Ringback => "ringback",
            ProgressTone::Congestion => "congestion",
            ProgressTone::CallWaiting => "call_waiting",
            ProgressTone::Info => "info",
            ProgressTone::Record => "record",
            ProgressTone::Sit => "sit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for ProgressTone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tone as written in configuration: one or two frequencies and an on/off cadence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToneDef {
    /// One or two frequencies in Hz, sounding together.
    pub freqs: Vec<f32>,
    /// On/off times in ms, alternating and starting with on, repeated; empty for continuous.
    #[serde(default)]
    pub cadence_ms: Vec<u32>,
    /// Level of each frequency in dBm0; the plan's level when absent.
    #[serde(default)]
    pub level_dbm0: Option<f32>,
}

/// Changes to a built-in plan, as read from configuration. Absent fields keep the plan's value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TonePlanOverrides {
    /// Dial tone.
    pub dial: Option<ToneDef>,
    /// Busy tone.
    pub busy: Option<ToneDef>,
    /// Ringback tone.
    pub ringback: Option<ToneDef>,
    /// Congestion tone.
    pub congestion: Option<ToneDef>,
    /// Call-waiting tone.
    pub call_waiting: Option<ToneDef>,
    /// Special information tone.
    pub info: Option<ToneDef>,
    /// Recording warning tone.
    pub record: Option<ToneDef>,
    /// E.180 special information tone (a simple tone here replaces the three-tone sequence;
    /// the detector keeps listening for E.180 SIT).
    pub sit: Option<ToneDef>,
    /// FXS power-ringing on/off pattern in ms, starting with on.
    pub ring_cadence: Option<Vec<u32>>,
    /// Level of every tone component in dBm0 (the built-in tones and overrides without their own
    /// level).
    pub level_dbm0: Option<f32>,
}

impl TonePlanOverrides {
    fn def(&self, t: ProgressTone) -> Option<&ToneDef> {
        match t {
            ProgressTone::Dial => self.dial.as_ref(),
            ProgressTone::Busy => self.busy.as_ref(),
            ProgressTone::Ringback => self.ringback.as_ref(),
            ProgressTone::Congestion => self.congestion.as_ref(),
            ProgressTone::CallWaiting => self.call_waiting.as_ref(),
            ProgressTone::Info => self.info.as_ref(),
            ProgressTone::Record => self.record.as_ref(),
            ProgressTone::Sit => self.sit.as_ref(),
        }
    }
}

/// What is wrong with one item of a [`TonePlanOverrides`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideProblem {
    /// A tone needs one or two frequencies.
    #[error("needs 1 or 2 frequencies, got {0}")]
    FreqCount(usize),
    /// A cadence must be on/off pairs.
    #[error("cadence must be on/off pairs (an even number of times), got {0} times")]
    OddCadence(usize),
    /// A cadence with more on/off times than a tone can hold.
    #[error("cadence has {0} times, at most {MAX_SEGMENTS}")]
    LongCadence(usize),
    /// A zero time inside a cadence.
    #[error("cadence times must be non-zero")]
    ZeroTime,
    /// A frequency or level the tone generator refuses.
    #[error(transparent)]
    Tone(#[from] ToneError),
}

/// An override that cannot be applied: which item (`"busy"`, `"ring_cadence"`, `"level_dbm0"`)
/// and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tone plan override `{item}`: {problem}")]
pub struct TonePlanError {
    /// The configuration key at fault.
    pub item: &'static str,
    /// What is wrong with it.
    pub problem: OverrideProblem,
}

/// The call-progress tones and ringing cadence of one country or network.
#[derive(Debug, Clone, PartialEq)]
pub struct TonePlan {
    /// Short name of the plan (`"cn"`, `"itu"`, `"eu"`).
    pub name: String,
    tones: [ToneSpec; 8],
    ring_cadence: Vec<u32>,
    level_dbm0: f32,
}

/// A single tone from frequencies, a level and a cadence (empty = continuous); built-in
/// values are known good, so errors are programming errors there.
fn simple(freqs: &[f32], level: f32, cadence: &[u32]) -> Result<ToneSpec, OverrideProblem> {
    let f = match *freqs {
        [a] => [a, 0.0],
        [a, b] => [a, b],
        _ => return Err(OverrideProblem::FreqCount(freqs.len())),
    };
    if cadence.is_empty() {
        return Ok(ToneSpec::continuous(f, level)?);
    }
    if cadence.len() % 2 == 1 {
        return Err(OverrideProblem::OddCadence(cadence.len()));
    }
    if cadence.len() > MAX_SEGMENTS {
        return Err(OverrideProblem::LongCadence(cadence.len()));
    }
    if cadence.contains(&0) {
        return Err(OverrideProblem::ZeroTime);
    }
    Ok(ToneSpec::cadenced(f, level, cadence)?)
}

/// The E.180 special information tone: 950, 1400, 1800 Hz for 330 ms each, then 1 s silence.
pub fn sit_three_tone(level: f32) -> ToneSpec {
    let seg = |f: f32| Segment { ms: 330, freqs: [f, 0.0], level_dbm0: level };
    ToneSpec::new(&[seg(950.0), seg(1400.0), seg(1800.0), Segment::silence(1000)], true)
        .expect("built-in SIT is valid")
}

fn builtin(freqs: &[f32], cadence: &[u32]) -> ToneSpec {
    simple(freqs, DEFAULT_LEVEL_DBM0, cadence).expect("built-in tone is valid")
}

/// The same tone with every sounding segment at `level`.
fn relevel(spec: &ToneSpec, level: f32) -> Result<ToneSpec, ToneError> {
    let mut segs = [Segment::default(); MAX_SEGMENTS];
    let n = spec.segments().len();
    for (d, s) in segs.iter_mut().zip(spec.segments()) {
        *d = *s;
        if !s.is_silent() {
            d.level_dbm0 = level;
        }
    }
    ToneSpec::new(&segs[..n], spec.repeat)
}

impl Default for TonePlan {
    /// The China plan.
    fn default() -> Self {
        TonePlan::china()
    }
}

/// Bursts of stutter dial tone before it turns steady (message waiting: the line's mailbox
/// has unheard messages). Each burst is [`STUTTER_MS`] of dial tone and as long of silence.
pub const STUTTER_BURSTS: u32 = 10;
/// Length of one stutter dial tone burst, and of the pause after it, ms.
pub const STUTTER_MS: u32 = 100;

impl TonePlan {
    /// Up to 4 bursts (`bursts` is clamped to 1..=4) of stutter dial tone as one non-repeating
    /// tone: the plan's dial tone frequencies and level, [`STUTTER_MS`] on and as long off.
    /// Every plan has it, since it is made from the plan's own dial tone. A phone with waiting
    /// messages hears [`STUTTER_BURSTS`] bursts (these pieces played one after another), then
    /// the steady [`ProgressTone::Dial`].
    pub fn stutter_dial(&self, bursts: u32) -> ToneSpec {
        let dial = self.tone(ProgressTone::Dial);
        let first = dial.segments().iter().find(|s| !s.is_silent()).copied().unwrap_or(Segment {
            ms: 0,
            freqs: [425.0, 0.0],
            level_dbm0: self.level_dbm0,
        });
        let on = Segment { ms: STUTTER_MS, ..first };
        let pair = [on, Segment::silence(STUTTER_MS)];
        let n = bursts.clamp(1, (MAX_SEGMENTS / 2) as u32) as usize;
        let segs: Vec<Segment> = pair.iter().copied().cycle().take(2 * n).collect();
        ToneSpec::new(&segs, false).expect("at most MAX_SEGMENTS valid segments")
    }
}

impl TonePlan {
    /// China (the default plan), from the ITU national-tones list as Asterisk's `[cn]` gives it:
    /// 450 Hz dial (continuous), busy 350/350 ms, ringback 1000/4000, congestion 700/700,
    /// call waiting 400/4000, special information 3 × (100/100) then 400/400, record 950 Hz
    /// 400/10000; power ringing 1000/4000 ms. Levels -10 dBm0. [`ProgressTone::Sit`] is the
    /// E.180 sequence (950/1400/1800 Hz, 330 ms each, 1 s silence) as in every plan: Chinese
    /// exchanges mostly announce vacant numbers with the 450 Hz "info" tone and a recording,
    /// but the E.180 frequencies are the same wherever SIT is sent (unverified for YD/T).
    pub fn china() -> Self {
        let f = [450.0];
        TonePlan {
            name: "cn".into(),
            tones: [
                builtin(&f, &[]),
                builtin(&f, &[350, 350]),
                builtin(&f, &[1000, 4000]),
                builtin(&f, &[700, 700]),
                builtin(&f, &[400, 4000]),
                builtin(&f, &[100, 100, 100, 100, 100, 100, 400, 400]),
                builtin(&[950.0], &[400, 10_000]),
                sit_three_tone(DEFAULT_LEVEL_DBM0),
            ],
            ring_cadence: vec![1000, 4000],
            level_dbm0: DEFAULT_LEVEL_DBM0,
        }
    }

    /// The ITU-T E.180 generic plan. The E.180 text was not at hand when this was written, so
    /// the values are the recommendation's preferred values as commonly quoted, unverified:
    /// - 425 Hz: inside E.180's preferred 400–450 Hz band (and the ETSI value);
    /// - dial continuous; busy 500/500 ms (period 300–1100 ms, ratio 0.67–1.5 preferred);
    /// - ringback 1000/4000 ms (on 0.67–1.5 s, off 3–5 s preferred);
    /// - congestion 250/250 ms (like busy but faster);
    /// - special information tone per E.180 §6: 950, 1400, 1800 Hz for 330 ms each, then 1 s
    ///   silence (this one matches many national plans);
    /// - call waiting 200/200/200/5000 ms and record 1400 Hz 400/15000 ms are not E.180
    ///   preferred values but the common European practice;
    /// - power ringing 1000/4000 ms; levels -10 dBm0 (E.180's nominal send level).
    pub fn itu() -> Self {
        let f = [425.0];
        TonePlan {
            name: "itu".into(),
            tones: [
                builtin(&f, &[]),
                builtin(&f, &[500, 500]),
                builtin(&f, &[1000, 4000]),
                builtin(&f, &[250, 250]),
                builtin(&f, &[200, 200, 200, 5000]),
                sit_three_tone(DEFAULT_LEVEL_DBM0),
                builtin(&[1400.0], &[400, 15_000]),
                sit_three_tone(DEFAULT_LEVEL_DBM0),
            ],
            ring_cadence: vec![1000, 4000],
            level_dbm0: DEFAULT_LEVEL_DBM0,
        }
    }

    /// The German/ETSI 425 Hz plan (Asterisk's `[de]`): dial continuous, busy 480/480 ms,
    /// ringback 1000/4000, congestion 240/240, call waiting 200/200/200/5000 (repeating here;
    /// Germany stops after five bursts), SIT 950/1400/1800 Hz 330 ms each then 1 s silence,
    /// record 1400 Hz 80/15000; power ringing 1000/4000 ms. Levels -10 dBm0.
    pub fn europe() -> Self {
        let f = [425.0];
        TonePlan {
            name: "eu".into(),
            tones: [
                builtin(&f, &[]),
                builtin(&f, &[480, 480]),
                builtin(&f, &[1000, 4000]),
                builtin(&f, &[240, 240]),
                builtin(&f, &[200, 200, 200, 5000]),
                sit_three_tone(DEFAULT_LEVEL_DBM0),
                builtin(&[1400.0], &[80, 15_000]),
                sit_three_tone(DEFAULT_LEVEL_DBM0),
            ],
            ring_cadence: vec![1000, 4000],
            level_dbm0: DEFAULT_LEVEL_DBM0,
        }
    }

    /// A built-in plan by name: `cn`/`china`, `itu`/`e180`, `eu`/`de`/`europe`
    /// (case-insensitive).
    pub fn by_name(name: &str) -> Option<TonePlan> {
        match name.to_ascii_lowercase().as_str() {
            "cn" | "china" => Some(TonePlan::china()),
            "itu" | "e180" => Some(TonePlan::itu()),
            "eu" | "de" | "europe" => Some(TonePlan::europe()),
            _ => None,
        }
    }

    /// The tone to play for `t`.
    pub fn tone(&self, t: ProgressTone) -> ToneSpec {
        self.tones[t.index()]
    }

    /// FXS power-ringing on/off pattern in ms, starting with on, repeated.
    pub fn ring_cadence_ms(&self) -> &[u32] {
        &self.ring_cadence
    }

    /// The plan's level per tone component, in dBm0.
    pub fn level_dbm0(&self) -> f32 {
        self.level_dbm0
    }

    /// This plan with `o` applied. A plan-wide `level_dbm0` re-levels the built-in tones and
    /// is the default for overriding tones that give no level of their own.
    ///
    /// # Errors
    /// A [`TonePlanError`] naming the first bad item: a tone with no or more than two
    /// frequencies, an odd, too long or zero-containing cadence, a frequency outside the
    /// telephone band, a level outside -60..+3 dBm0, or a bad ring cadence.
    pub fn with_overrides(&self, o: &TonePlanOverrides) -> Result<TonePlan, TonePlanError> {
        let mut plan = self.clone();
        if let Some(level) = o.level_dbm0 {
            for t in ProgressTone::ALL {
                plan.tones[t.index()] = relevel(&self.tones[t.index()], level)
                    .map_err(|e| TonePlanError { item: "level_dbm0", problem: e.into() })?;
            }
            plan.level_dbm0 = level;
        }
        for t in ProgressTone::ALL {
            if let Some(def) = o.def(t) {
                let level = def.level_dbm0.unwrap_or(plan.level_dbm0);
                plan.tones[t.index()] = simple(&def.freqs, level, &def.cadence_ms)
                    .map_err(|problem| TonePlanError { item: t.name(), problem })?;
            }
        }
        if let Some(ring) = &o.ring_cadence {
            let err = |problem| TonePlanError { item: "ring_cadence", problem };
            if ring.is_empty() || ring.len() % 2 == 1 {
                return Err(err(OverrideProblem::OddCadence(ring.len())));
            }
            if ring.len() > MAX_SEGMENTS {
                return Err(err(OverrideProblem::LongCadence(ring.len())));
            }
            if ring.contains(&0) {
                return Err(err(OverrideProblem::ZeroTime));
            }
            plan.ring_cadence = ring.clone();
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod stutter_tests {
    use super::*;

    #[test]
    fn every_plan_has_a_stutter_dial_tone_made_of_its_dial_tone() {
        for name in ["cn", "itu", "eu"] {
            let plan = TonePlan::by_name(name).unwrap();
            let dial = plan.tone(ProgressTone::Dial).segments()[0];
            let s = plan.stutter_dial(4);
            assert!(!s.repeat, "{name}");
            assert_eq!(s.segments().len(), 8, "{name}");
            assert_eq!(s.period_ms(), 8 * STUTTER_MS, "{name}");
            let on = s.segments()[0];
            assert_eq!((on.freqs, on.level_dbm0, on.ms), (dial.freqs, dial.level_dbm0, 100));
            assert!(s.segments()[1].is_silent());
            assert_eq!(plan.stutter_dial(2).segments().len(), 4);
            assert_eq!(plan.stutter_dial(9).segments().len(), 8);
        }
    }
}
