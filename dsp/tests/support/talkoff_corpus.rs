//! The talk-off corpus (`dsp/tests/data/talkoff/*.wav`, made by `make_corpus.sh` there): 8 kHz
//! mono µ-law WAV files of synthetic speech and music. Shared by `tests/talkoff_real.rs` and
//! `examples/dtmf_battery.rs` (included with `#[path]`), so neither needs a WAV crate.

use cardpbx_dsp::g711::ulaw_decode;
use std::path::{Path, PathBuf};

/// Where the corpus lives.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/talkoff")
}

/// Decode a WAV file holding 8000 Hz mono 8-bit µ-law (format tag 7) to linear samples.
///
/// Walks the RIFF chunks, so `fact`/`LIST` chunks before `data` are skipped.
pub fn decode_ulaw_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let le16 = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut pos = 12;
    let mut format_ok = false;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = le32(&bytes[pos + 4..pos + 8]) as usize;
        let body = bytes.get(pos + 8..pos + 8 + len).ok_or("chunk runs past the end")?;
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err("short fmt chunk".into());
                }
                let (tag, ch, rate, bits) =
                    (le16(&body[0..]), le16(&body[2..]), le32(&body[4..]), le16(&body[14..]));
                if (tag, ch, rate, bits) != (7, 1, 8000, 8) {
                    return Err(format!(
                        "want µ-law mono 8000 Hz 8 bit, got tag {tag} ch {ch} rate {rate} bits {bits}"
                    ));
                }
                format_ok = true;
            }
            b"data" => {
                if !format_ok {
                    return Err("data before fmt".into());
                }
                return Ok(body.iter().map(|&c| ulaw_decode(c)).collect());
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos += 8 + len + (len & 1);
    }
    Err("no data chunk".into())
}

/// Every corpus file as (file stem, samples), sorted by name. Stems start with `speech_` or
/// `music_`.
pub fn corpus() -> Vec<(String, Vec<i16>)> {
    let dir = corpus_dir();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let pcm = decode_ulaw_wav(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let stem = p.file_stem().and_then(|s| s.to_str()).expect("utf-8 name").to_string();
            (stem, pcm)
        })
        .collect()
}
