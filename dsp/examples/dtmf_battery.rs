//! Writes a DTMF receiver test battery as raw s16le 8 kHz mono files plus a manifest, for
//! comparing detectors that read such files (`scripts/compare-spandsp.sh` runs SpanDSP's
//! `dtmf_detect` and `cardpbx dsp dtmf-detect` on it).
//!
//! ```text
//! cargo run -p cardpbx-dsp --example dtmf_battery -- OUT_DIR
//! ```
//!
//! `OUT_DIR/manifest.tsv` has one line per file: `name kind digits onsets_ms on_ms`
//! (tab-separated). `kind` is
//! - `accept`: every digit must be found, in order (`onsets_ms` are the true tone onsets);
//! - `reject`: the tones are out of specification, nothing may be found;
//! - `talkoff`: speech or music from the talk-off corpus, nothing may be found;
//! - `talkdown`: digits over running speech, every digit must be found.
//!
//! `OUT_DIR/bench.raw` is the whole corpus plus the nominal digit file, for throughput runs.
//! Signals are synthesised with f64 sines (not the crate's generator), onsets are not aligned
//! to any block size, and the noise is seeded: the battery is the same on every run.

#[path = "../tests/support/talkoff_corpus.rs"]
mod talkoff_corpus;

use cardpbx_dsp::dtmf::key_freqs;
use cardpbx_dsp::tone::DBM0_PEAK;
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::path::Path;

const KEYS: &str = "123A456B789C*0#D";
const RATE: f64 = 8000.0;

/// xorshift64* with Box–Muller, seeded: the battery is reproducible.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        (-2.0 * u1.ln()).sqrt() * (TAU * self.uniform()).cos()
    }
}

fn peak(dbm0: f64) -> f64 {
    f64::from(DBM0_PEAK) * 10f64.powf(dbm0 / 20.0)
}

/// How one digit sequence is played.
#[derive(Clone, Copy)]
struct Spec {
    on_ms: usize,
    off_ms: usize,
    row_dbm0: f64,
    col_dbm0: f64,
    /// Frequency scale of both tones (1.015 = +1.5 %).
    freq_scale: f64,
}

impl Spec {
    fn level(dbm0: f64) -> Spec {
        Spec { on_ms: 50, off_ms: 50, row_dbm0: dbm0, col_dbm0: dbm0, freq_scale: 1.0 }
    }
}

/// Adds the 16 keys to `buf` from `start`; returns the true onsets in samples.
fn add_keys(buf: &mut [f64], start: usize, s: Spec) -> Vec<usize> {
    let mut onsets = Vec::new();
    let mut at = start;
    for (i, d) in KEYS.chars().enumerate() {
        let (r, c) = key_freqs(d).expect("key");
        let len = s.on_ms * 8;
        for (f, lvl, ph) in [(f64::from(r), s.row_dbm0, 0.4), (f64::from(c), s.col_dbm0, 1.3)] {
            let (a, w) = (peak(lvl), TAU * f * s.freq_scale / RATE);
            for n in 0..len {
                buf[at + n] += a * (w * n as f64 + ph + i as f64).sin();
            }
        }
        onsets.push(at);
        // 0..6 extra samples, so onsets drift across any block grid.
        at += len + s.off_ms * 8 + (i * 7) % 13;
    }
    onsets
}

fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter().map(|&v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
}

struct Battery {
    dir: std::path::PathBuf,
    manifest: String,
    bench: Vec<i16>,
}

impl Battery {
    fn write(&mut self, name: &str, kind: &str, pcm: &[i16], onsets: &[usize], on_ms: usize) {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let path = self.dir.join(format!("{name}.raw"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let digits = if onsets.is_empty() { "-".to_string() } else { KEYS.to_string() };
        let ms: Vec<String> = onsets.iter().map(|&o| format!("{:.1}", o as f64 / 8.0)).collect();
        let ms = if ms.is_empty() { "-".to_string() } else { ms.join(",") };
        writeln!(self.manifest, "{name}\t{kind}\t{digits}\t{ms}\t{on_ms}").expect("string");
    }

    /// The 16 keys played by `s` after 200 ms of silence, optionally with white noise
    /// `snr_db` below the two-tone power.
    fn keys(&mut self, name: &str, kind: &str, s: Spec, snr_db: Option<f64>, rng: &mut Rng) {
        let mut buf = vec![0.0; 200 * 8 + KEYS.len() * (s.on_ms + s.off_ms + 2) * 8 + 2400];
        let onsets = add_keys(&mut buf, 1613, s);
        if let Some(snr) = snr_db {
            let tone_power = peak(s.row_dbm0).powi(2) / 2.0 + peak(s.col_dbm0).powi(2) / 2.0;
            let sigma = (tone_power / 10f64.powf(snr / 10.0)).sqrt();
            for v in &mut buf {
                *v += sigma * rng.gauss();
            }
        }
        let pcm = to_i16(&buf);
        if name == "nominal_m10" {
            self.bench.extend_from_slice(&pcm);
        }
        let onsets = if kind == "reject" { Vec::new() } else { onsets };
        self.write(name, kind, &pcm, &onsets, s.on_ms);
    }
}

/// Scale speech to an active level (mean power of 10 ms blocks above -50 dBm0) of `dbm0`.
fn active_level(x: &[i16], dbm0: f64) -> Vec<f64> {
    let floor = peak(-50.0).powi(2) / 2.0;
    let (mut sum, mut n) = (0.0, 0usize);
    for b in x.chunks_exact(80) {
        let p = b.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 80.0;
        if p > floor {
            sum += p;
            n += 1;
        }
    }
    let g = (peak(dbm0).powi(2) / 2.0 / (sum / n.max(1) as f64)).sqrt();
    x.iter().map(|&s| f64::from(s) * g).collect()
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: dtmf_battery OUT_DIR");
        std::process::exit(2);
    });
    let dir = Path::new(&dir).to_path_buf();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut b = Battery { dir, manifest: String::new(), bench: Vec::new() };
    let mut rng = Rng(0x5eed_d7f0_0000_0001);

    // Nominal and dynamic range (per tone).
    for lvl in [-3.0, -10.0, -20.0, -30.0, -36.0] {
        let name = format!("nominal_m{}", -lvl as i32);
        b.keys(&name, "accept", Spec::level(lvl), None, &mut rng);
    }
    b.keys("level_m50", "reject", Spec::level(-50.0), None, &mut rng);
    // Frequency tolerance (Q.24: accept within 1.5 %, reject beyond 3.5 %).
    for (pct, kind) in [(1.5, "accept"), (-1.5, "accept"), (3.5, "reject"), (-3.5, "reject")] {
        let s = Spec { freq_scale: 1.0 + pct / 100.0, ..Spec::level(-10.0) };
        let name = format!("freq_{}{}", if pct > 0.0 { "p" } else { "m" }, f64::abs(pct));
        b.keys(&name, kind, s, None, &mut rng);
    }
    // Twist: row (low group) louder up to 8 dB, column louder up to 4 dB; far beyond rejected.
    for (row, col, name, kind) in [
        (-10.0, -16.0, "twist_row_louder6", "accept"),
        (-10.0, -18.0, "twist_row_louder8", "accept"),
        (-13.0, -10.0, "twist_col_louder3", "accept"),
        (-14.0, -10.0, "twist_col_louder4", "accept"),
        (-10.0, -24.0, "twist_row_louder14", "reject"),
        (-20.0, -10.0, "twist_col_louder10", "reject"),
    ] {
        let s = Spec { row_dbm0: row, col_dbm0: col, ..Spec::level(-10.0) };
        b.keys(name, kind, s, None, &mut rng);
    }
    // Timing: 40 ms tones with 40 ms pauses must pass; 20 ms bursts must not.
    b.keys(
        "dur_40on_40off",
        "accept",
        Spec { on_ms: 40, off_ms: 40, ..Spec::level(-10.0) },
        None,
        &mut rng,
    );
    b.keys(
        "dur_20on_80off",
        "reject",
        Spec { on_ms: 20, off_ms: 80, ..Spec::level(-10.0) },
        None,
        &mut rng,
    );
    // White Gaussian noise 15 dB below the two-tone power.
    for lvl in [-10.0, -25.0] {
        let name = format!("noise15_m{}", -lvl as i32);
        b.keys(&name, "accept", Spec::level(lvl), Some(15.0), &mut rng);
    }

    // Talk-off corpus, and digits over speech at the nominal active level (-23 dBm0).
    let corpus = talkoff_corpus::corpus();
    for (name, pcm) in &corpus {
        b.write(&format!("talkoff_{name}"), "talkoff", pcm, &[], 0);
    }
    for (name, pcm) in corpus.iter().filter(|(n, _)| n.starts_with("speech_")) {
        for lvl in [-10.0, -15.0, -20.0] {
            let mut buf = active_level(pcm, -23.0);
            let s = Spec { on_ms: 70, off_ms: 80, ..Spec::level(lvl) };
            let onsets = add_keys(&mut buf, 8000 + 29, s);
            let short = name.trim_start_matches("speech_");
            b.write(
                &format!("talkdown_{short}_m{}", -lvl as i32),
                "talkdown",
                &to_i16(&buf),
                &onsets,
                70,
            );
        }
    }

    for (_, pcm) in &corpus {
        b.bench.extend_from_slice(pcm);
    }
    let bench: Vec<u8> = b.bench.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(b.dir.join("bench.raw"), bench).expect("write bench.raw");
    std::fs::write(b.dir.join("manifest.tsv"), &b.manifest).expect("write manifest");
    eprintln!(
        "wrote {} files and bench.raw ({:.1} s) to {}",
        b.manifest.lines().count(),
        b.bench.len() as f64 / 8000.0,
        b.dir.display()
    );
}
