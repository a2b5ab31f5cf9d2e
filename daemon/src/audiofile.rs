//! Audio files for the technician DSP tools (`cardpbx dsp ...`): reading 8 kHz mono recordings
//! and writing 16-bit PCM WAV.
//!
//! Accepted input:
//! - WAV (RIFF/WAVE) with format tag 1 (16-bit PCM), 6 (8-bit A-law), 7 (8-bit µ-law), or
//!   0xFFFE (WAVE_FORMAT_EXTENSIBLE) whose sub-format is one of those; 8000 Hz, one channel.
//!   Unknown chunks are skipped (with their pad byte when the size is odd). A data chunk that
//!   claims more bytes than the file holds (a recording cut short) is read as far as it goes;
//!   a trailing half sample is dropped. A missing `fmt ` or `data` chunk is an error.
//! - Raw signed 16-bit little-endian samples at 8000 Hz, named `*.raw`, `*.sln` or `*.sl`.
//!   An odd number of bytes is an error.
//!
//! A file with another extension is read as WAV when it starts with `RIFF`.
//! Every error names the file and what was wrong ([`AudioError`]).

use cardpbx_dsp::g711::Law;
use std::path::{Path, PathBuf};

/// The only sample rate the tools accept and write.
pub const SAMPLE_RATE: u32 = 8000;

/// Size of the header [`wav_bytes`] writes.
pub const WAV_HEADER_LEN: usize = 44;

/// WAVE format tag: integer PCM.
const TAG_PCM: u16 = 1;
/// WAVE format tag: G.711 A-law.
const TAG_ALAW: u16 = 6;
/// WAVE format tag: G.711 µ-law.
const TAG_ULAW: u16 = 7;
/// WAVE format tag: WAVE_FORMAT_EXTENSIBLE (the real format is in the sub-format GUID).
const TAG_EXTENSIBLE: u16 = 0xFFFE;
/// Bytes 2..16 of every KSDATAFORMAT_SUBTYPE_* GUID derived from a format tag.
const GUID_TAIL: [u8; 14] =
    [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

/// What accepted WAV formats are, for error messages.
const ACCEPTED_FORMATS: &str =
    "16-bit PCM (tag 1), 8-bit A-law (tag 6), 8-bit µ-law (tag 7), or extensible (0xFFFE) with one of those";

/// How the samples were stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 16-bit linear PCM (WAV tag 1 or raw s16le).
    Pcm16,
    /// G.711 A-law, one byte per sample.
    Alaw,
    /// G.711 µ-law, one byte per sample.
    Ulaw,
}

impl Encoding {
    /// Bytes per sample in the file.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Pcm16 => 2,
            Encoding::Alaw | Encoding::Ulaw => 1,
        }
    }

    /// A short human-readable name (`16-bit PCM`, `A-law`, `µ-law`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Pcm16 => "16-bit PCM",
            Encoding::Alaw => "A-law",
            Encoding::Ulaw => "µ-law",
        }
    }
}

/// Where the samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A RIFF/WAVE file.
    Wav,
    /// Headerless signed 16-bit little-endian samples.
    Raw,
}

/// A decoded recording: 8 kHz mono linear samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// The samples, decoded to 16-bit linear.
    pub samples: Vec<i16>,
    /// How they were stored.
    pub encoding: Encoding,
    /// WAV or raw.
    pub container: Container,
    /// Whether the WAV data chunk claimed more bytes than the file holds (cut-short recording).
    pub truncated: bool,
}

impl Audio {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// Why an audio file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// No `RIFF....WAVE` header.
    #[error("{}: not a WAV file (no RIFF/WAVE header){}", path.display(), hint)]
    NotWav {
        /// The file.
        path: PathBuf,
        /// Extra advice (empty or starting with "; ").
        hint: &'static str,
    },
    /// The WAV file has no `fmt ` chunk (before the end of the file).
    #[error("{}: WAV file has no fmt chunk", path.display())]
    MissingFmt {
        /// The file.
        path: PathBuf,
    },
    /// The WAV file has no `data` chunk.
    #[error("{}: WAV file has no data chunk", path.display())]
    MissingData {
        /// The file.
        path: PathBuf,
    },
    /// A chunk is malformed (too short, cut off, inconsistent).
    #[error("{}: malformed WAV file: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A valid WAV file in a format the tools do not take.
    #[error("{}: unsupported {what}: found {found}; accepted: {accepted}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Which property (`sample rate`, `channel count`, `format`, `bits per sample`).
        what: &'static str,
        /// What the file has.
        found: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// A raw file with an odd number of bytes (not whole 16-bit samples).
    #[error(
        "{}: raw audio has an odd length ({len} bytes); expected signed 16-bit little-endian \
         samples at 8000 Hz",
        path.display()
    )]
    OddRawLength {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// More samples than a WAV file can hold.
    #[error("{}: {samples} samples do not fit in a WAV file", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
        /// How many samples were to be written.
        samples: usize,
    },
}

impl AudioError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            AudioError::Io { path, .. }
            | AudioError::NotWav { path, .. }
            | AudioError::MissingFmt { path }
            | AudioError::MissingData { path }
            | AudioError::Malformed { path, .. }
            | AudioError::Unsupported { path, .. }
            | AudioError::OddRawLength { path, .. }
            | AudioError::TooLong { path, .. } => path,
        }
    }
}

/// Whether `path` names a raw s16le file by its extension (`raw`, `sln`, `sl`).
pub fn is_raw_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["raw", "sln", "sl"].iter().any(|r| e.eq_ignore_ascii_case(r)))
}

/// Read a recording: raw s16le for `.raw`/`.sln`/`.sl`, WAV otherwise (see the module docs).
///
/// # Errors
/// [`AudioError`] naming `path` when it cannot be read or is not an accepted format.
pub fn read_audio(path: &Path) -> Result<Audio, AudioError> {
    let data =
        std::fs::read(path).map_err(|source| AudioError::Io { path: path.to_owned(), source })?;
    if is_raw_path(path) {
        parse_raw(&data, path)
    } else {
        parse_wav(&data, path).map_err(|e| match e {
            AudioError::NotWav { path, .. } => AudioError::NotWav {
                path,
                hint: "; headerless 16-bit audio must be named *.raw, *.sln or *.sl",
            },
            e => e,
        })
    }
}

/// Interpret `data` as raw signed 16-bit little-endian samples; `path` is for errors.
///
/// # Errors
/// [`AudioError::OddRawLength`] when `data` is not a whole number of samples.
pub fn parse_raw(data: &[u8], path: &Path) -> Result<Audio, AudioError> {
    if data.len() & 1 == 1 {
        return Err(AudioError::OddRawLength { path: path.to_owned(), len: data.len() });
    }
    Ok(Audio {
        samples: data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
        encoding: Encoding::Pcm16,
        container: Container::Raw,
        truncated: false,
    })
}

fn u16_at(d: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([d[at], d[at + 1]])
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// The parts of a `fmt ` chunk the reader checks.
struct Fmt {
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
}

fn tag_name(tag: u16) -> String {
    let name = match tag {
        TAG_PCM => "PCM",
        2 => "MS ADPCM",
        3 => "IEEE float",
        TAG_ALAW => "A-law",
        TAG_ULAW => "µ-law",
        0x11 => "IMA ADPCM",
        0x31 => "GSM 6.10",
        0x55 => "MP3",
        TAG_EXTENSIBLE => "extensible",
        _ => "unknown",
    };
    format!("format tag 0x{tag:04X} ({name})")
}

fn parse_fmt(body: &[u8], path: &Path) -> Result<Fmt, AudioError> {
    let malformed = |problem: String| AudioError::Malformed { path: path.to_owned(), problem };
    if body.len() < 16 {
        return Err(malformed(format!("fmt chunk is {} bytes, at least 16 needed", body.len())));
    }
    let mut fmt = Fmt {
        tag: u16_at(body, 0),
        channels: u16_at(body, 2),
        rate: u32_at(body, 4),
        bits: u16_at(body, 14),
    };
    if fmt.tag == TAG_EXTENSIBLE {
        // cbSize, valid bits, channel mask, then the 16-byte sub-format GUID.
        if body.len() < 40 {
            return Err(malformed(format!(
                "extensible fmt chunk is {} bytes, 40 needed",
                body.len()
            )));
        }
        let guid = &body[24..40];
        let sub = u16_at(guid, 0);
        if guid[2..] != GUID_TAIL {
            return Err(AudioError::Unsupported {
                path: path.to_owned(),
                what: "format",
                found: "extensible format with a non-standard sub-format GUID".into(),
                accepted: ACCEPTED_FORMATS,
            });
        }
        if ![TAG_PCM, TAG_ALAW, TAG_ULAW].contains(&sub) {
            return Err(AudioError::Unsupported {
                path: path.to_owned(),
                what: "format",
                found: format!("extensible with sub-{}", tag_name(sub)),
                accepted: ACCEPTED_FORMATS,
            });
        }
        fmt.tag = sub;
    }
    Ok(fmt)
}

/// Check an `fmt` against what the tools accept and return the encoding.
fn check_fmt(fmt: &Fmt, path: &Path) -> Result<Encoding, AudioError> {
    let unsupported = |what, found: String, accepted| AudioError::Unsupported {
        path: path.to_owned(),
        what,
        found,
        accepted,
    };
    let encoding = match fmt.tag {
        TAG_PCM => Encoding::Pcm16,
        TAG_ALAW => Encoding::Alaw,
        TAG_ULAW => Encoding::Ulaw,
        t => return Err(unsupported("format", tag_name(t), ACCEPTED_FORMATS)),
    };
    let want_bits = if encoding == Encoding::Pcm16 { 16 } else { 8 };
    if fmt.bits != want_bits {
        return Err(unsupported(
            "bits per sample",
            format!(
                "{}-bit {}",
                fmt.bits,
                if fmt.tag == TAG_PCM { "PCM" } else { encoding.name() }
            ),
            "16-bit PCM, 8-bit A-law or 8-bit µ-law",
        ));
    }
    if fmt.channels != 1 {
        let found = match fmt.channels {
            0 => "0 channels".to_string(),
            2 => "2 channels (stereo)".to_string(),
            n => format!("{n} channels"),
        };
        return Err(unsupported("channel count", found, "1 channel (mono)"));
    }
    if fmt.rate != SAMPLE_RATE {
        return Err(unsupported(
            "sample rate",
            format!("{} Hz", fmt.rate),
            "8000 Hz (resample first, e.g. `sox in.wav -r 8000 -c 1 out.wav`)",
        ));
    }
    Ok(encoding)
}

/// Parse a WAV file held in memory; `path` is for errors. See the module docs for what is
/// accepted.
///
/// # Errors
/// [`AudioError`] naming `path`: not RIFF/WAVE, missing or malformed chunks, a format other
/// than 8 kHz mono 16-bit PCM / A-law / µ-law.
pub fn parse_wav(data: &[u8], path: &Path) -> Result<Audio, AudioError> {
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return Err(AudioError::NotWav { path: path.to_owned(), hint: "" });
    }
    let mut fmt = None;
    let mut body: Option<(usize, usize, bool)> = None;
    let mut at = 12usize;
    while at + 8 <= data.len() && (fmt.is_none() || body.is_none()) {
        let id = &data[at..at + 4];
        let size = u32_at(data, at + 4) as usize;
        let start = at + 8;
        let avail = data.len() - start;
        match id {
            b"fmt " => {
                if fmt.is_some() {
                    return Err(AudioError::Malformed {
                        path: path.to_owned(),
                        problem: "more than one fmt chunk".into(),
                    });
                }
                if size > avail {
                    return Err(AudioError::Malformed {
                        path: path.to_owned(),
                        problem: format!(
                            "fmt chunk claims {size} bytes but only {avail} remain in the file"
                        ),
                    });
                }
                fmt = Some(parse_fmt(&data[start..start + size], path)?);
            }
            b"data" if body.is_none() => body = Some((start, size.min(avail), size > avail)),
            _ => {}
        }
        // Chunks are padded to an even size.
        match start.checked_add(size).and_then(|e| e.checked_add(size & 1)) {
            Some(next) => at = next,
            None => break,
        }
    }
    let fmt = fmt.ok_or_else(|| AudioError::MissingFmt { path: path.to_owned() })?;
    let encoding = check_fmt(&fmt, path)?;
    let (start, len, truncated) =
        body.ok_or_else(|| AudioError::MissingData { path: path.to_owned() })?;
    let bytes = &data[start..start + len];
    let samples = match encoding {
        Encoding::Pcm16 => {
            bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
        }
        Encoding::Alaw => bytes.iter().map(|&c| Law::Alaw.decode(c)).collect(),
        Encoding::Ulaw => bytes.iter().map(|&c| Law::Ulaw.decode(c)).collect(),
    };
    Ok(Audio { samples, encoding, container: Container::Wav, truncated })
}

/// A complete 16-bit PCM, 8000 Hz, mono WAV file holding `samples`, or `None` if they do not
/// fit in a WAV file (more than about 2³¹ samples).
pub fn wav_bytes(samples: &[i16]) -> Option<Vec<u8>> {
    let data_len = u32::try_from(samples.len().checked_mul(2)?).ok()?;
    let riff_len = data_len.checked_add(36)?;
    let mut out = Vec::with_capacity(WAV_HEADER_LEN + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_len.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&TAG_PCM.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // channels
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    Some(out)
}

/// Write `samples` to `path` as a 16-bit PCM, 8000 Hz, mono WAV file.
///
/// # Errors
/// [`AudioError::Io`] when the file cannot be written, [`AudioError::TooLong`] for more
/// samples than a WAV file can hold.
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), AudioError> {
    let bytes = wav_bytes(samples)
        .ok_or_else(|| AudioError::TooLong { path: path.to_owned(), samples: samples.len() })?;
    std::fs::write(path, bytes).map_err(|source| AudioError::Io { path: path.to_owned(), source })
}

/// The file name [`fuzz_check_wav`] parses under; its errors must name it.
pub const FUZZ_FILE_NAME: &str = "fuzz.wav";

/// Fuzz check for the WAV reader (`fuzz/fuzz_targets/wav_input.rs` and the corpus replay):
/// parse `data` with [`parse_wav`], which must not panic.
///
/// Invariants:
/// - an accepted file has no more samples than the bytes after the smallest possible header
///   allow for its encoding, and written back with [`wav_bytes`] it reads back to the same
///   samples;
/// - a rejected file's error names [`FUZZ_FILE_NAME`].
///
/// Returns the number of samples when the file was accepted.
pub fn fuzz_check_wav(data: &[u8]) -> Option<usize> {
    let path = Path::new(FUZZ_FILE_NAME);
    match parse_wav(data, path) {
        Ok(audio) => {
            let payload = data.len().saturating_sub(WAV_HEADER_LEN);
            let most = payload / audio.encoding.bytes_per_sample();
            assert!(
                audio.samples.len() <= most,
                "{} samples from {} bytes of {}",
                audio.samples.len(),
                data.len(),
                audio.encoding.name()
            );
            if let Some(bytes) = wav_bytes(&audio.samples) {
                let back = parse_wav(&bytes, path).expect("our own WAV output is accepted");
                assert_eq!(back.samples, audio.samples, "samples changed on a WAV round trip");
                assert!(!back.truncated);
            }
            Some(audio.samples.len())
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with(FUZZ_FILE_NAME), "error does not name the file: {text}");
            assert_eq!(e.path(), path);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A WAV file with the given fmt fields and data, built by hand.
    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        let align = channels * bits.div_ceil(8);
        fmt.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        fmt.extend_from_slice(&align.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        riff(&[(b"fmt ", &fmt), (b"data", data)])
    }

    fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn extensible_fmt(sub: u16, bits: u16) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&TAG_EXTENSIBLE.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&8000u32.to_le_bytes());
        f.extend_from_slice(&(8000u32 * u32::from(bits / 8)).to_le_bytes());
        f.extend_from_slice(&(bits / 8).to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes()); // front centre
        f.extend_from_slice(&sub.to_le_bytes());
        f.extend_from_slice(&GUID_TAIL);
        f
    }

    fn p() -> &'static Path {
        Path::new("x.wav")
    }

    fn pcm(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn reads_pcm_alaw_ulaw_and_extensible() {
        let a = parse_wav(&wav(1, 1, 8000, 16, &pcm(&[1, -2, 32767, -32768])), p()).unwrap();
        assert_eq!(a.samples, vec![1, -2, 32767, -32768]);
        assert_eq!(
            (a.encoding, a.container, a.truncated),
            (Encoding::Pcm16, Container::Wav, false)
        );

        let codes = [0xD5u8, 0x2A, 0x55, 0xAA];
        let al = parse_wav(&wav(6, 1, 8000, 8, &codes), p()).unwrap();
        assert_eq!(al.encoding, Encoding::Alaw);
        assert_eq!(al.samples, codes.iter().map(|&c| Law::Alaw.decode(c)).collect::<Vec<_>>());
        let ul = parse_wav(&wav(7, 1, 8000, 8, &codes), p()).unwrap();
        assert_eq!(ul.encoding, Encoding::Ulaw);
        assert_eq!(ul.samples, codes.iter().map(|&c| Law::Ulaw.decode(c)).collect::<Vec<_>>());

        let ext = riff(&[(b"fmt ", &extensible_fmt(1, 16)), (b"data", &pcm(&[5, 6]))]);
        assert_eq!(parse_wav(&ext, p()).unwrap().samples, vec![5, 6]);
        let ext = riff(&[(b"fmt ", &extensible_fmt(7, 8)), (b"data", &codes)]);
        assert_eq!(parse_wav(&ext, p()).unwrap().encoding, Encoding::Ulaw);
        let float = riff(&[(b"fmt ", &extensible_fmt(3, 32)), (b"data", &[0; 8])]);
        let e = parse_wav(&float, p()).unwrap_err().to_string();
        assert!(e.contains("x.wav") && e.contains("IEEE float"), "{e}");
    }

    #[test]
    fn skips_unknown_chunks_with_odd_padding() {
        let mut fmt = wav(1, 1, 8000, 16, &[]);
        fmt.truncate(12 + 8 + 16);
        let fmt_body = fmt[20..36].to_vec();
        let f = riff(&[
            (b"LIST", b"odd"),
            (b"fmt ", &fmt_body),
            (b"fact", &[1, 2, 3, 4, 5]),
            (b"data", &pcm(&[7, -7, 9])),
            (b"cue ", &[0; 3]),
        ]);
        assert_eq!(parse_wav(&f, p()).unwrap().samples, vec![7, -7, 9]);
    }

    #[test]
    fn truncated_data_chunk_is_read_as_far_as_it_goes() {
        let mut f = wav(1, 1, 8000, 16, &pcm(&[1, 2, 3, 4]));
        // Claim far more data than present, and cut the file inside a sample.
        let n = f.len();
        f[n - 12..n - 8].copy_from_slice(&1_000_000u32.to_le_bytes());
        f.truncate(n - 1);
        let a = parse_wav(&f, p()).unwrap();
        assert_eq!(a.samples, vec![1, 2, 3]);
        assert!(a.truncated);
    }

    #[test]
    fn rejects_other_rates_channels_and_depths_naming_the_file() {
        let cases = [
            (wav(1, 2, 8000, 16, &[0; 8]), "2 channels (stereo)"),
            (wav(1, 1, 16000, 16, &[0; 8]), "16000 Hz"),
            (wav(1, 1, 8000, 8, &[0; 8]), "8-bit PCM"),
            (wav(1, 1, 8000, 24, &[0; 6]), "24-bit PCM"),
            (wav(3, 1, 8000, 32, &[0; 8]), "IEEE float"),
            (wav(6, 1, 8000, 16, &[0; 8]), "16-bit A-law"),
        ];
        for (f, found) in cases {
            let e = parse_wav(&f, p()).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, AudioError::Unsupported { .. }), "{text}");
            assert!(text.starts_with("x.wav: unsupported"), "{text}");
            assert!(text.contains(found), "{text} lacks {found}");
            assert!(text.contains("accepted"), "{text}");
        }
    }

    #[test]
    fn missing_chunks_and_bad_headers() {
        let fmt_only = riff(&[(b"fmt ", &wav(1, 1, 8000, 16, &[])[20..36])]);
        assert!(matches!(parse_wav(&fmt_only, p()), Err(AudioError::MissingData { .. })));
        let data_only = riff(&[(b"data", &[0; 4])]);
        assert!(matches!(parse_wav(&data_only, p()), Err(AudioError::MissingFmt { .. })));
        assert!(matches!(parse_wav(b"RIFX\0\0\0\0WAVE", p()), Err(AudioError::NotWav { .. })));
        assert!(matches!(parse_wav(b"", p()), Err(AudioError::NotWav { .. })));
        let short_fmt = riff(&[(b"fmt ", &[1, 0, 1, 0]), (b"data", &[])]);
        let e = parse_wav(&short_fmt, p()).unwrap_err().to_string();
        assert!(e.contains("fmt chunk is 4 bytes"), "{e}");
    }

    #[test]
    fn raw_files() {
        let a = parse_raw(&[1, 0, 0xff, 0xff], Path::new("a.raw")).unwrap();
        assert_eq!(a.samples, vec![1, -1]);
        assert_eq!(a.container, Container::Raw);
        let e = parse_raw(&[1, 2, 3], Path::new("a.sln")).unwrap_err().to_string();
        assert!(e.starts_with("a.sln: raw audio has an odd length (3 bytes)"), "{e}");
        assert!(is_raw_path(Path::new("x.SLN")) && is_raw_path(Path::new("d/x.sl")));
        assert!(!is_raw_path(Path::new("x.wav")) && !is_raw_path(Path::new("raw")));
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("t.wav");
        write_wav(&w, &[3, -3, 100]).unwrap();
        assert_eq!(read_audio(&w).unwrap().samples, vec![3, -3, 100]);
        let r = dir.path().join("t.sl");
        std::fs::write(&r, pcm(&[9, 8])).unwrap();
        assert_eq!(read_audio(&r).unwrap().samples, vec![9, 8]);
        let missing = dir.path().join("nope.wav");
        let e = read_audio(&missing).unwrap_err();
        assert!(matches!(e, AudioError::Io { .. }));
        assert!(e.to_string().contains("nope.wav"));
        let headerless = dir.path().join("t.pcm");
        std::fs::write(&headerless, pcm(&[1, 2])).unwrap();
        let e = read_audio(&headerless).unwrap_err().to_string();
        assert!(e.contains("not a WAV file") && e.contains("*.raw"), "{e}");
    }

    proptest! {
        #[test]
        fn written_pcm_reads_back_identical(samples in proptest::collection::vec(any::<i16>(), 0..2000)) {
            let bytes = wav_bytes(&samples).unwrap();
            prop_assert_eq!(bytes.len(), WAV_HEADER_LEN + 2 * samples.len());
            let a = parse_wav(&bytes, p()).unwrap();
            prop_assert_eq!(a.samples, samples);
            prop_assert!(!a.truncated);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_check_wav(&data);
            let mut with_header = b"RIFF\x00\x01\x00\x00WAVE".to_vec();
            with_header.extend_from_slice(&data);
            fuzz_check_wav(&with_header);
            let _ = parse_raw(&data, Path::new("r.raw"));
        }

        #[test]
        fn mutated_headers_give_errors_not_panics(
            at in 0usize..WAV_HEADER_LEN,
            value in any::<u8>(),
            cut in 0usize..60,
        ) {
            let mut f = wav_bytes(&[100, -100, 5, 6, 7, 8]).unwrap();
            f[at] = value;
            f.truncate(f.len().saturating_sub(cut));
            fuzz_check_wav(&f);
            if let Err(e) = parse_wav(&f, p()) {
                prop_assert!(e.to_string().starts_with("x.wav: "));
            }
        }
    }

    #[test]
    fn fuzz_seed_corpus_is_accepted_or_rejected_as_named() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/wav_input");
        let expect = [
            ("pcm16-8k-mono.wav", Some(40)),
            ("alaw-8k-mono.wav", Some(40)),
            ("ulaw-8k-mono.wav", Some(40)),
            ("extensible-pcm16.wav", Some(40)),
            ("odd-chunks-list.wav", Some(40)),
            ("truncated-data.wav", Some(38)),
            ("extensible-float-rejected.wav", None),
            ("stereo-rejected.wav", None),
            ("rate-16k-rejected.wav", None),
            ("missing-data.wav", None),
            ("missing-fmt.wav", None),
            ("empty", None),
        ];
        for (name, want) in expect {
            let data = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(fuzz_check_wav(&data), want, "{name}");
        }
    }

    #[test]
    fn fuzz_check_counts() {
        assert_eq!(fuzz_check_wav(&wav_bytes(&[1, 2, 3]).unwrap()), Some(3));
        assert_eq!(fuzz_check_wav(&wav(1, 2, 8000, 16, &[0; 4])), None);
        assert_eq!(fuzz_check_wav(b"garbage"), None);
    }
}
