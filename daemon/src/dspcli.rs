//! `cardpbx dsp ...`: technician tools that run the DSP detectors on recordings.
//!
//! Input files are read with [`crate::audiofile::read_audio`] (8 kHz mono WAV in 16-bit PCM,
//! A-law or µ-law, or raw s16le named `*.raw`/`*.sln`/`*.sl`). Output formats are described
//! on each command and in `docs/dsp-cli.md`; they are stable so scripts can parse them.
//! Times are milliseconds from the first sample of the file, rounded to the nearest ms.

use crate::audiofile::{read_audio, write_wav, Audio};
use anyhow::{anyhow, bail, Context};
use cardpbx_dsp::callerid::{
    parse_dtmf, AbsenceReason, CallerIdMessage, CallerIdReceiver, CidError, Format, FskStandard,
};
use cardpbx_dsp::dtmf::{key_position, DtmfConfig, DtmfDetector, DtmfEvent};
use cardpbx_dsp::dtmf::{DtmfGenConfig, DtmfGenerator};
use cardpbx_dsp::echo::{EchoCanceller, EchoConfig};
use cardpbx_dsp::faxtone::{FaxToneDetector, FaxToneEvent, MAX_GAP_BLOCKS};
use cardpbx_dsp::goertzel::Goertzel;
use cardpbx_dsp::progress::{ProgressConfig, ProgressDetector, ProgressEvent};
use cardpbx_dsp::tone::DBM0_PEAK;
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan};
use clap::{Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Samples per millisecond.
const PER_MS: u64 = 8;
/// Samples fed to the detectors per call: 20 ms, as a real-time channel (and the SpanDSP
/// reference peer) would.
pub const FEED_BLOCK: usize = 160;
/// Default iteration count of `dtmf-detect --bench`, as the SpanDSP reference peer.
pub const DEFAULT_BENCH_ITERATIONS: u32 = 20;
/// Analysis block of the tone extent estimate (10 ms, the detectors' own block).
const TONE_BLOCK: usize = 80;
/// Mean square of a 0 dBm0 sine, 16-bit units.
const DBM0_MS: f64 = (DBM0_PEAK as f64) * (DBM0_PEAK as f64) / 2.0;
/// Far end counts as active for the ERLE figure at or above this block power (−45 dBm0, as
/// the canceller's own far-activity test).
pub const ERLE_FAR_ACTIVE_DBM0: f64 = -45.0;

/// `cardpbx dsp ...`
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum DspCmd {
    /// Find DTMF digits in a recording: one line `<digit> <start_ms>` per digit.
    ///
    /// start_ms is the tone onset the detector estimates (first sample of the tone × 1000 /
    /// 8000, rounded to the nearest ms), not the detection instant.
    ///
    /// With --bench [N] (default 20), the file is loaded into memory and a fresh detector is
    /// run over it N times in 160-sample blocks; prints `cardpbx_dtmf_rx samples_per_sec=<f>`
    /// and `ns_per_sample=<f>` on stdout, in the format of the SpanDSP reference peer
    /// `dtmf_detect --bench`, and a summary on stderr.
    DtmfDetect {
        /// Recording: 8 kHz mono WAV (PCM/A-law/µ-law) or raw s16le (*.raw, *.sln, *.sl).
        file: PathBuf,
        /// Benchmark: run the detector N times (default 20) and print throughput.
        #[arg(long, value_name = "N", num_args = 0..=1,
              default_missing_value = "20",
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        bench: Option<u32>,
    },
    /// Find call-progress and fax/modem tones: one line `<kind> <start_ms> <end_ms>` each.
    ///
    /// Kinds: dial, busy, ringback, congestion (of the chosen tone plan), sit (ITU-T E.180
    /// special information tone 950/1400/1800 Hz, any plan), cng (1100 Hz fax
    /// calling tone), ced (2100 Hz answer tone), ced-phase-reversal (2100 Hz with phase
    /// reversals: V.25 ANS/PR or V.8 ANSam), voice (energy that is not a plan tone).
    /// Start and end are estimated from 10 ms blocks holding the tone around the moment the
    /// detector recognised it (which is later than the start: e.g. two busy cycles).
    Tones {
        /// Recording: 8 kHz mono WAV (PCM/A-law/µ-law) or raw s16le (*.raw, *.sln, *.sl).
        file: PathBuf,
        /// Tone plan of the call-progress tones.
        #[arg(long, value_enum, default_value_t = PlanName::China)]
        plan: PlanName,
    },
    /// Decode caller ID (FSK SDMF/MDMF, or DTMF) from a recording.
    ///
    /// Prints `standard:`, `type:` (SDMF, MDMF or DTMF), `date_time:`, `number:`, `name:` and
    /// `checksum:` lines; absent fields show `-`, withheld ones `absent (private)` or
    /// `absent (unavailable)`. Exits with status 1 when no valid message is found.
    Callerid {
        /// Recording: 8 kHz mono WAV (PCM/A-law/µ-law) or raw s16le (*.raw, *.sln, *.sl).
        file: PathBuf,
        /// Which signalling to look for; auto tries Bell 202, V.23, then DTMF.
        #[arg(long, value_enum, default_value_t = CidStandard::Auto)]
        standard: CidStandard,
    },
    /// Generate DTMF digits into a WAV file (8 kHz, 16-bit PCM, mono).
    ///
    /// Each digit is on for --on-ms then silent for --off-ms; the first starts at sample 0.
    DtmfGen {
        /// Digits to send: 0-9, *, #, A-D.
        digits: String,
        /// Output WAV file.
        out: PathBuf,
        /// Tone duration per digit, ms.
        #[arg(long, default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=60_000))]
        on_ms: u32,
        /// Silence after each digit, ms.
        #[arg(long, default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(0..=60_000))]
        off_ms: u32,
        /// Level of each of the two tones, dBm0 (-60 to -3).
        #[arg(long, default_value_t = -10.0, allow_negative_numbers = true)]
        level: f32,
    },
    /// Run the line echo canceller over a far-end and a near-end recording.
    ///
    /// FAR is what was sent towards the line, NEAR what came back (echo plus near talker),
    /// sample-aligned and starting together; a FAR shorter than NEAR is continued with
    /// silence. The cleaned near end is written to OUT (8 kHz 16-bit WAV).
    ///
    /// Prints `erle_overall_db=<f>` and `erle_last_half_db=<f>`. ERLE (echo return loss
    /// enhancement) is 10·log10(Σ near² / Σ out²) summed over the 10 ms blocks in which the
    /// far end is active (block power at least -45 dBm0): over the whole file, and over its
    /// second half (after convergence). Near-end speech in those blocks (double talk) lowers
    /// the figure. `inf` when the output is digital silence, `n/a` when the far end is never
    /// active.
    EchoCancel {
        /// Far-end (reference) recording.
        #[arg(long, value_name = "FILE")]
        far: PathBuf,
        /// Near-end recording (echo of the far end plus near talker).
        #[arg(long, value_name = "FILE")]
        near: PathBuf,
        /// Output WAV file: the near end with the echo removed.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Echo tail covered, ms (1 to 128).
        #[arg(long, default_value_t = 64,
              value_parser = clap::value_parser!(u32).range(1..=128))]
        tail_ms: u32,
        /// Turn the non-linear processor off (linear filter only).
        #[arg(long)]
        no_nlp: bool,
    },
}

/// Built-in tone plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanName {
    /// China (450 Hz).
    China,
    /// ITU-T E.180 generic plan.
    Itu,
    /// Germany / ETSI (425 Hz).
    Europe,
}

impl PlanName {
    /// The plan.
    pub fn plan(self) -> TonePlan {
        match self {
            PlanName::China => TonePlan::china(),
            PlanName::Itu => TonePlan::itu(),
            PlanName::Europe => TonePlan::europe(),
        }
    }
}

/// Caller ID signalling to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CidStandard {
    /// FSK Bell 202 (1200/2200 Hz).
    Bell202,
    /// FSK ITU-T V.23 (1300/2100 Hz).
    V23,
    /// DTMF caller ID (ETS 300 659-1 Annex C).
    Dtmf,
    /// Try Bell 202, V.23, then DTMF.
    Auto,
}

impl CidStandard {
    fn name(self) -> &'static str {
        match self {
            CidStandard::Bell202 => "bell202",
            CidStandard::V23 => "v23",
            CidStandard::Dtmf => "dtmf",
            CidStandard::Auto => "auto",
        }
    }
}

/// Carry out a `cardpbx dsp` command, printing results to `out` and notes to `err`; returns
/// the exit code (0). Bad files and failed decodes are errors (exit status 1 in `main`).
///
/// # Errors
/// A message naming the file or argument at fault.
pub fn run(cmd: &DspCmd, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    match cmd {
        DspCmd::DtmfDetect { file, bench } => {
            let audio = read_audio(file)?;
            match bench {
                Some(n) => dtmf_bench(file, &audio.samples, *n, out, err),
                None => {
                    for (digit, at) in detect_dtmf(&audio.samples) {
                        writeln!(out, "{digit} {}", ms(at))?;
                    }
                    Ok(0)
                }
            }
        }
        DspCmd::Tones { file, plan } => {
            let audio = read_audio(file)?;
            let found = find_tones(&audio.samples, &plan.plan());
            if found.is_empty() {
                writeln!(err, "{}: no tones found", file.display())?;
            }
            for t in found {
                writeln!(out, "{} {} {}", t.kind, ms(t.start), ms(t.end))?;
            }
            Ok(0)
        }
        DspCmd::Callerid { file, standard } => {
            let audio = read_audio(file)?;
            let (used, format, msg) = find_callerid(file, &audio.samples, *standard)?;
            write!(out, "{}", render_callerid(used, format, &msg))?;
            Ok(0)
        }
        DspCmd::DtmfGen { digits, out: path, on_ms, off_ms, level } => {
            let samples = generate_dtmf(digits, *on_ms, *off_ms, *level)?;
            write_wav(path, &samples)?;
            writeln!(
                out,
                "{}: {} digits, {} samples ({:.3} s)",
                path.display(),
                digits.chars().count(),
                samples.len(),
                samples.len() as f64 / 8000.0
            )?;
            Ok(0)
        }
        DspCmd::EchoCancel { far, near, out: path, tail_ms, no_nlp } => {
            let far_audio = read_audio(far)?;
            let near_audio = read_audio(near)?;
            if far_audio.samples.len() != near_audio.samples.len() {
                writeln!(
                    err,
                    "note: {} has {} samples, {} has {}; the far end is taken as silent beyond \
                     its end, and only the near end's length is processed",
                    far.display(),
                    far_audio.samples.len(),
                    near.display(),
                    near_audio.samples.len()
                )?;
            }
            let report = echo_cancel(&far_audio, &near_audio, *tail_ms, !*no_nlp)?;
            write_wav(path, &report.out)?;
            writeln!(
                out,
                "echo-cancel: {} samples ({:.2} s), tail {} ms, NLP {}, far end active {:.2} s",
                report.out.len(),
                report.out.len() as f64 / 8000.0,
                tail_ms,
                if *no_nlp { "off" } else { "on" },
                report.far_active_samples as f64 / 8000.0
            )?;
            writeln!(out, "erle_overall_db={}", fmt_db(report.erle_overall_db))?;
            writeln!(out, "erle_last_half_db={}", fmt_db(report.erle_last_half_db))?;
            Ok(0)
        }
    }
}

/// A sample position as milliseconds, rounded to the nearest.
fn ms(sample: u64) -> u64 {
    (sample * 1000 + 4000) / 8000
}

/// Run a DTMF detector over `samples` (in [`FEED_BLOCK`] chunks) and return each digit with
/// the sample at which its tone began.
pub fn detect_dtmf(samples: &[i16]) -> Vec<(char, u64)> {
    let mut d = DtmfDetector::new(DtmfConfig::default());
    let mut found = Vec::new();
    for chunk in samples.chunks(FEED_BLOCK) {
        d.process(chunk, |e| {
            if let DtmfEvent::Start { digit, at_sample } = e {
                found.push((digit, at_sample));
            }
        });
    }
    found
}

fn dtmf_bench(
    file: &Path,
    samples: &[i16],
    iterations: u32,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if samples.is_empty() {
        bail!("{}: bench: empty input", file.display());
    }
    let mut digits = 0usize;
    let t0 = Instant::now();
    for _ in 0..iterations {
        let mut d = DtmfDetector::new(DtmfConfig::default());
        for chunk in samples.chunks(FEED_BLOCK) {
            d.process(std::hint::black_box(chunk), |e| {
                if matches!(e, DtmfEvent::Start { .. }) {
                    digits += 1;
                }
            });
        }
    }
    let dt = t0.elapsed().as_secs_f64().max(1e-9);
    let total = samples.len() as f64 * f64::from(iterations);
    writeln!(out, "cardpbx_dtmf_rx samples_per_sec={:.1}", total / dt)?;
    writeln!(out, "ns_per_sample={:.3}", dt * 1e9 / total)?;
    writeln!(
        err,
        "({} samples x {} iterations in {:.3} s; {:.0}x real time; digits {})",
        samples.len(),
        iterations,
        dt,
        total / dt / 8000.0,
        digits
    )?;
    Ok(0)
}

/// Generate `digits` as DTMF: each `on_ms` of tone at `level_dbm0` per tone, then `off_ms` of
/// silence, the first starting at sample 0.
///
/// # Errors
/// An empty string, a character that is not a DTMF key, or a level outside -60..=-3 dBm0.
pub fn generate_dtmf(
    digits: &str,
    on_ms: u32,
    off_ms: u32,
    level_dbm0: f32,
) -> anyhow::Result<Vec<i16>> {
    if digits.is_empty() {
        bail!("DIGITS is empty: give at least one of 0-9, *, #, A-D");
    }
    if let Some((i, ch)) = digits.chars().enumerate().find(|&(_, c)| key_position(c).is_none()) {
        bail!(
            "DIGITS {digits:?}: {ch:?} at position {} is not a DTMF digit (accepted: 0-9, *, #, \
             A-D)",
            i + 1
        );
    }
    if !(level_dbm0.is_finite() && (-60.0..=-3.0).contains(&level_dbm0)) {
        bail!("--level {level_dbm0}: must be between -60 and -3 dBm0 per tone (louder clips)");
    }
    let per_digit = (u64::from(on_ms) + u64::from(off_ms)) * PER_MS;
    let total = per_digit * digits.chars().count() as u64;
    if total > 8000 * 3600 {
        bail!("{} digits of {on_ms}+{off_ms} ms exceed one hour", digits.chars().count());
    }
    let mut gen = DtmfGenerator::new(DtmfGenConfig { on_ms, off_ms, level_dbm0, twist_db: 0.0 });
    let mut samples = vec![0i16; total as usize];
    for (ch, slot) in digits.chars().zip(samples.chunks_mut(per_digit as usize)) {
        gen.queue(&ch.to_string()).map_err(|e| anyhow!("DIGITS {digits:?}: {e}"))?;
        gen.fill(slot);
    }
    Ok(samples)
}

/// A tone found by [`find_tones`], in samples from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTone {
    /// `dial`, `busy`, `ringback`, `congestion`, `sit`, `cng`, `ced`, `ced-phase-reversal`,
    /// `voice`.
    pub kind: &'static str,
    /// Estimated first sample.
    pub start: u64,
    /// Estimated first sample after it.
    pub end: u64,
    /// Where the detector recognised it.
    pub detected_at: u64,
}

/// What makes a 10 ms block count as part of a tone.
#[derive(Debug, Clone, Copy)]
struct BlockTest<'a> {
    freqs: &'a [f32],
    min_dbm0: f64,
    /// Least share of the block's power at `freqs`; 0 = total power only.
    ratio: f64,
}

impl BlockTest<'_> {
    fn holds(&self, x: &[i16], block: usize) -> bool {
        let b = &x[block * TONE_BLOCK..((block + 1) * TONE_BLOCK).min(x.len())];
        if b.is_empty() {
            return false;
        }
        let n = b.len() as f64;
        let total = b.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / n;
        let min = DBM0_MS * 10f64.powf(self.min_dbm0 / 10.0);
        if self.freqs.is_empty() {
            return total >= min;
        }
        let tone: f64 = self
            .freqs
            .iter()
            .map(|&f| {
                let mut g = Goertzel::new(f, b.len());
                g.push_block(b);
                2.0 * f64::from(g.power()) / (n * n)
            })
            .sum();
        tone >= min && tone >= self.ratio * total
    }
}

/// The blocks around `detected_at` that pass `test`, with gaps of at most `max_gap` blocks,
/// not reaching back before `floor` nor beyond `ceiling` (samples). Returns (start, end).
fn extent(
    x: &[i16],
    detected_at: u64,
    floor: u64,
    ceiling: u64,
    max_gap: usize,
    test: BlockTest<'_>,
) -> (u64, u64) {
    let nblocks = x.len().div_ceil(TONE_BLOCK);
    if nblocks == 0 {
        return (detected_at, detected_at);
    }
    let d = ((detected_at.saturating_sub(1)) as usize / TONE_BLOCK).min(nblocks - 1);
    let lo = (floor as usize / TONE_BLOCK).min(d);
    let hi = (ceiling as usize).div_ceil(TONE_BLOCK).clamp(d + 1, nblocks);
    let (mut first, mut gap) = (None, 0);
    for b in (lo..=d).rev() {
        if test.holds(x, b) {
            first = Some(b);
            gap = 0;
        } else {
            gap += 1;
            if gap > max_gap {
                break;
            }
        }
    }
    let (mut last, mut gap) = (None, 0);
    for b in d..hi {
        if test.holds(x, b) {
            last = Some(b);
            gap = 0;
        } else {
            gap += 1;
            if gap > max_gap {
                break;
            }
        }
    }
    let start = first.map_or(detected_at, |b| (b * TONE_BLOCK) as u64);
    let end = last.map_or(detected_at, |b| ((b + 1) * TONE_BLOCK).min(x.len()) as u64);
    (start.min(detected_at), end.max(start))
}

/// Longest silence between the on times of a plan tone, in 10 ms blocks, with the detector's
/// tolerance (±10 % or ±50 ms); a few blocks for a continuous tone.
fn max_gap_blocks(plan: &TonePlan, t: ProgressTone) -> usize {
    let spec = plan.tone(t);
    let segs = spec.segments();
    let mut longest = 0u32;
    let mut run = 0u32;
    // Twice round, so a silence that wraps from the end to the start is merged.
    for s in segs.iter().chain(segs.iter()) {
        if s.is_silent() {
            run += s.ms;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    if longest == 0 {
        return 3;
    }
    ((longest + (longest / 10).max(50)) as usize).div_ceil(10)
}

/// The frequencies of a plan tone.
fn tone_freqs(plan: &TonePlan, t: ProgressTone) -> Vec<f32> {
    let mut f: Vec<f32> = Vec::new();
    for s in plan.tone(t).segments() {
        for &hz in &s.freqs {
            if hz > 0.0 && !f.iter().any(|&g| (g - hz).abs() < 1.0) {
                f.push(hz);
            }
        }
    }
    f
}

/// Run the call-progress (for `plan`), fax-tone detectors over `x` and return the tones found,
/// ordered by start. See [`DspCmd::Tones`].
pub fn find_tones(x: &[i16], plan: &TonePlan) -> Vec<FoundTone> {
    enum Ev {
        Tone(ProgressTone, u64, Option<u64>),
        Voice(u64),
        Fax(&'static str, u64),
    }
    let mut progress = ProgressDetector::new(plan);
    let mut fax = FaxToneDetector::new();
    let mut events: Vec<Ev> = Vec::new();
    let mut open: Option<usize> = None;
    for chunk in x.chunks(FEED_BLOCK) {
        progress.process(chunk, |e| match e {
            ProgressEvent::Detected { tone, at_sample } => {
                open = Some(events.len());
                events.push(Ev::Tone(tone, at_sample, None));
            }
            ProgressEvent::ToneStopped { at_sample, .. } => {
                if let Some(Ev::Tone(_, _, stop)) = open.take().and_then(|i| events.get_mut(i)) {
                    *stop = Some(at_sample);
                }
            }
            ProgressEvent::VoiceDetected { at_sample } => events.push(Ev::Voice(at_sample)),
        });
        fax.process(chunk, |e| match e {
            FaxToneEvent::Cng { at_sample } => events.push(Ev::Fax("cng", at_sample)),
            FaxToneEvent::Ced { at_sample, phase_reversals } => events.push(Ev::Fax(
                if phase_reversals { "ced-phase-reversal" } else { "ced" },
                at_sample,
            )),
        });
    }
    let at = |e: &Ev| match *e {
        Ev::Tone(_, a, _) | Ev::Voice(a) | Ev::Fax(_, a) => a,
    };
    events.sort_by_key(at);

    let pcfg = ProgressConfig::default();
    let fcfg = cardpbx_dsp::faxtone::FaxToneConfig::default();
    let len = x.len() as u64;
    let mut found: Vec<FoundTone> = Vec::new();
    // Each class of tone does not reach back into the previous one of its class.
    let (mut progress_floor, mut cng_floor, mut ced_floor) = (0u64, 0u64, 0u64);
    for e in &events {
        let tone = match *e {
            Ev::Tone(t, a, stop) => {
                let freqs = tone_freqs(plan, t);
                let test = BlockTest {
                    freqs: &freqs,
                    min_dbm0: f64::from(pcfg.min_tone_dbm0),
                    ratio: f64::from(pcfg.min_tone_ratio),
                };
                let gap = max_gap_blocks(plan, t);
                let (s, end) = extent(x, a, progress_floor, stop.unwrap_or(len), gap, test);
                progress_floor = end;
                FoundTone { kind: t.name(), start: s, end, detected_at: a }
            }
            Ev::Voice(a) => {
                let test =
                    BlockTest { freqs: &[], min_dbm0: f64::from(pcfg.voice_min_dbm0), ratio: 0.0 };
                // Pauses between words of up to 300 ms belong to the same stretch of voice.
                let (s, end) = extent(x, a, progress_floor, len, 30, test);
                progress_floor = end;
                FoundTone { kind: "voice", start: s, end, detected_at: a }
            }
            Ev::Fax(kind, a) => {
                let (freq, floor) =
                    if kind == "cng" { (1100.0, &mut cng_floor) } else { (2100.0, &mut ced_floor) };
                let test = BlockTest {
                    freqs: &[freq],
                    min_dbm0: f64::from(fcfg.min_dbm0),
                    ratio: f64::from(fcfg.min_ratio),
                };
                let (s, end) = extent(x, a, *floor, len, MAX_GAP_BLOCKS as usize, test);
                *floor = end;
                FoundTone { kind, start: s, end, detected_at: a }
            }
        };
        found.push(tone);
    }
    found.sort_by_key(|t| (t.start, t.detected_at));
    found
}

/// Look for a caller ID message in `x` with `standard` (auto: Bell 202, V.23, DTMF) and
/// return the standard that found it, the format (`None` for DTMF) and the message.
///
/// # Errors
/// A message naming `file` when no valid message is found, with the reason when one was
/// heard but could not be decoded (bad checksum, truncated).
pub fn find_callerid(
    file: &Path,
    x: &[i16],
    standard: CidStandard,
) -> anyhow::Result<(CidStandard, Option<Format>, CallerIdMessage)> {
    let tries: &[CidStandard] = match standard {
        CidStandard::Auto => &[CidStandard::Bell202, CidStandard::V23, CidStandard::Dtmf],
        CidStandard::Bell202 => &[CidStandard::Bell202],
        CidStandard::V23 => &[CidStandard::V23],
        CidStandard::Dtmf => &[CidStandard::Dtmf],
    };
    let mut problems: Vec<String> = Vec::new();
    let mut found = Vec::new();
    for &s in tries {
        let result = match s {
            CidStandard::Bell202 => {
                fsk_callerid(x, FskStandard::Bell202).map(|(f, m)| (Some(f), m))
            }
            CidStandard::V23 => fsk_callerid(x, FskStandard::V23).map(|(f, m)| (Some(f), m)),
            _ => dtmf_callerid(x).map(|m| (None, m)),
        };
        match result {
            Ok((format, msg)) => {
                found.push((s, format, msg));
                // Bell 202 and V.23 are close enough that each receiver may decode the other's
                // signal; only then is the other one tried as well.
                if s == CidStandard::Dtmf || found.len() == 2 {
                    break;
                }
            }
            Err(why) => problems.push(format!("{}: {why}", s.name())),
        }
        if !found.is_empty() && s == CidStandard::V23 {
            break;
        }
    }
    if found.len() == 2 {
        // Both FSK receivers decoded it: the signal is the one with more energy at its own
        // mark and space frequencies.
        let score = |st: FskStandard| fsk_energy(x, [st.mark_hz(), st.space_hz()]);
        let v23 = score(FskStandard::V23) > score(FskStandard::Bell202);
        return Ok(found.swap_remove(usize::from(v23)));
    }
    match found.pop() {
        Some(f) => Ok(f),
        None => bail!("{}: no caller ID found ({})", file.display(), problems.join("; ")),
    }
}

/// Energy at two frequencies, summed over 10 ms blocks. At 80 samples per block the filters'
/// nulls are 100 Hz apart, so a Bell 202 tone (1200/2200 Hz) falls on the nulls of the V.23
/// filters (1300/2100 Hz) and the other way round.
fn fsk_energy(x: &[i16], freqs: [u32; 2]) -> f64 {
    x.chunks_exact(TONE_BLOCK)
        .map(|b| {
            freqs
                .iter()
                .map(|&f| {
                    let mut g = Goertzel::new(f as f32, TONE_BLOCK);
                    g.push_block(b);
                    f64::from(g.power())
                })
                .sum::<f64>()
        })
        .sum()
}

fn fsk_callerid(x: &[i16], standard: FskStandard) -> Result<(Format, CallerIdMessage), String> {
    let mut rx = CallerIdReceiver::new(standard);
    let mut first_err: Option<CidError> = None;
    let mut carrier = false;
    for chunk in x.chunks(FEED_BLOCK) {
        let r = rx.process(chunk);
        carrier |= rx.fsk().carrier();
        match r {
            Some(Ok(found)) => return Ok(found),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(match first_err {
        Some(e @ CidError::BadChecksum { .. }) => format!("message heard with a {e}"),
        Some(e) => format!("message heard but not decoded: {e}"),
        None if carrier => "FSK carrier heard but no message".into(),
        None => "no FSK carrier".into(),
    })
}

fn dtmf_callerid(x: &[i16]) -> Result<CallerIdMessage, String> {
    let digits: String = detect_dtmf(x).into_iter().map(|(d, _)| d).collect();
    if digits.is_empty() {
        return Err("no DTMF digits".into());
    }
    if let Ok(m) = parse_dtmf(&digits) {
        return Ok(m);
    }
    // Other digits around the caller ID string: try each start and end marker.
    let idx: Vec<(usize, char)> = digits.char_indices().collect();
    for &(i, c) in &idx {
        if !matches!(c, 'A' | 'B' | 'D') {
            continue;
        }
        for &(j, e) in idx.iter().filter(|&&(j, _)| j > i) {
            if matches!(e, 'C' | '#') {
                if let Ok(m) = parse_dtmf(&digits[i..=j]) {
                    return Ok(m);
                }
            }
        }
    }
    Err(format!("DTMF digits {digits:?} are not a caller ID string"))
}

fn absent(r: AbsenceReason) -> &'static str {
    match r {
        AbsenceReason::Private => "absent (private)",
        AbsenceReason::Unavailable => "absent (unavailable)",
    }
}

/// The text `cardpbx dsp callerid` prints for a decoded message.
pub fn render_callerid(
    standard: CidStandard,
    format: Option<Format>,
    msg: &CallerIdMessage,
) -> String {
    let field = |v: &Option<String>, why: Option<AbsenceReason>| match (v, why) {
        (Some(v), _) => v.clone(),
        (None, Some(r)) => absent(r).into(),
        (None, None) => "-".into(),
    };
    let date = match &msg.date_time {
        Some(d) if d.len() == 8 => {
            format!("{d} ({}-{} {}:{})", &d[0..2], &d[2..4], &d[4..6], &d[6..8])
        }
        Some(d) => d.clone(),
        None => "-".into(),
    };
    let (kind, checksum) = match format {
        Some(Format::Sdmf) => ("SDMF", "OK"),
        Some(Format::Mdmf) => ("MDMF", "OK"),
        None => ("DTMF", "n/a (DTMF)"),
    };
    format!(
        "standard: {}\ntype: {kind}\ndate_time: {date}\nnumber: {}\nname: {}\nchecksum: {checksum}\n",
        standard.name(),
        field(&msg.number, msg.number_absent),
        field(&msg.name, msg.name_absent),
    )
}

/// Result of [`echo_cancel`].
#[derive(Debug, Clone, PartialEq)]
pub struct EchoReport {
    /// The near end with the echo removed (as long as the near input).
    pub out: Vec<i16>,
    /// ERLE over all far-active blocks, dB (`None`: far end never active; infinite when the
    /// output was silent).
    pub erle_overall_db: Option<f64>,
    /// ERLE over the far-active blocks of the second half, dB.
    pub erle_last_half_db: Option<f64>,
    /// Samples in far-active blocks.
    pub far_active_samples: usize,
}

/// Run an [`EchoCanceller`] with `tail_ms` over `near` with `far` as reference (silence beyond
/// the end of `far`) and measure ERLE as documented on [`DspCmd::EchoCancel`].
///
/// # Errors
/// An invalid tail length.
pub fn echo_cancel(
    far: &Audio,
    near: &Audio,
    tail_ms: u32,
    nlp: bool,
) -> anyhow::Result<EchoReport> {
    let mut ec = EchoCanceller::new(EchoConfig { tail_ms, nlp, ..EchoConfig::default() })
        .with_context(|| format!("--tail-ms {tail_ms}"))?;
    let n = near.samples.len();
    let far_at = |i: usize| far.samples.get(i).copied().unwrap_or(0);
    let out: Vec<i16> = (0..n).map(|i| ec.process(far_at(i), near.samples[i])).collect();

    let min_far = DBM0_MS * 10f64.powf(ERLE_FAR_ACTIVE_DBM0 / 10.0);
    let half = n / 2;
    let (mut all, mut late) = ([0f64; 2], [0f64; 2]);
    let mut active = 0;
    for start in (0..n).step_by(TONE_BLOCK) {
        let end = (start + TONE_BLOCK).min(n);
        let sq = |v: i16| f64::from(v) * f64::from(v);
        let far_ms = (start..end).map(|i| sq(far_at(i))).sum::<f64>() / (end - start) as f64;
        if far_ms < min_far {
            continue;
        }
        active += end - start;
        let e_near: f64 = near.samples[start..end].iter().map(|&v| sq(v)).sum();
        let e_out: f64 = out[start..end].iter().map(|&v| sq(v)).sum();
        all[0] += e_near;
        all[1] += e_out;
        if start >= half {
            late[0] += e_near;
            late[1] += e_out;
        }
    }
    let erle = |[near, out]: [f64; 2]| {
        if near <= 0.0 {
            None
        } else if out <= 0.0 {
            Some(f64::INFINITY)
        } else {
            Some(10.0 * (near / out).log10())
        }
    };
    Ok(EchoReport {
        out,
        erle_overall_db: erle(all),
        erle_last_half_db: erle(late),
        far_active_samples: active,
    })
}

fn fmt_db(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v.is_infinite() => "inf".into(),
        Some(v) => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_rounds_to_nearest() {
        assert_eq!([ms(0), ms(3), ms(4), ms(8), ms(9603), ms(9604)], [0, 0, 1, 1, 1200, 1201]);
    }

    #[test]
    fn cadence_gaps_bridge_the_longest_silence() {
        let cn = TonePlan::china();
        // Busy 350/350: 350 ms + 50 ms tolerance = 40 blocks; ringback 1000/4000: 4400 ms.
        assert_eq!(max_gap_blocks(&cn, ProgressTone::Busy), 40);
        assert_eq!(max_gap_blocks(&cn, ProgressTone::Ringback), 440);
        assert_eq!(max_gap_blocks(&cn, ProgressTone::Dial), 3);
        assert_eq!(tone_freqs(&cn, ProgressTone::Busy), vec![450.0]);
    }

    #[test]
    fn generated_dtmf_has_exact_length_and_is_detected() {
        let x = generate_dtmf("7#", 50, 50, -20.0).unwrap();
        assert_eq!(x.len(), 2 * 100 * 8);
        assert!(x[400..800].iter().all(|&s| s == 0), "the pause is silent");
        let found = detect_dtmf(&x);
        assert_eq!(found.iter().map(|&(d, _)| d).collect::<String>(), "7#");
        assert!(found[1].1.abs_diff(800) <= 8, "{found:?}");
        let e = generate_dtmf("", 50, 50, -10.0).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        assert!(generate_dtmf("1", 50, 50, f32::NAN).is_err());
    }

    #[test]
    fn renders_dtmf_and_absent_fields() {
        let msg = CallerIdMessage {
            number_absent: Some(AbsenceReason::Unavailable),
            ..Default::default()
        };
        assert_eq!(
            render_callerid(CidStandard::Dtmf, None, &msg),
            "standard: dtmf\ntype: DTMF\ndate_time: -\nnumber: absent (unavailable)\nname: -\n\
             checksum: n/a (DTMF)\n"
        );
    }

    #[test]
    fn dtmf_callerid_found_among_other_digits() {
        let x = generate_dtmf("12A5551234C9", 60, 60, -10.0).unwrap();
        assert_eq!(dtmf_callerid(&x).unwrap().number.as_deref(), Some("5551234"));
        let x = generate_dtmf("123", 60, 60, -10.0).unwrap();
        assert!(dtmf_callerid(&x).unwrap_err().contains("\"123\""));
    }

    #[test]
    fn echo_report_without_far_activity() {
        let silent = |n| Audio {
            samples: vec![0; n],
            encoding: crate::audiofile::Encoding::Pcm16,
            container: crate::audiofile::Container::Raw,
            truncated: false,
        };
        let r = echo_cancel(&silent(100), &silent(800), 16, true).unwrap();
        assert_eq!((r.out.len(), r.erle_overall_db, r.far_active_samples), (800, None, 0));
        assert_eq!(fmt_db(r.erle_last_half_db), "n/a");
        assert_eq!(fmt_db(Some(f64::INFINITY)), "inf");
    }
}
