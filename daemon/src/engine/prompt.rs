//! The prompt library: announcements and music on hold, decoded once at start to 16-bit linear
//! 8 kHz samples and shared immutably (behind an `Arc`) with the media engine.
//!
//! Files are WAV: 8 kHz mono 16-bit PCM (read with `hound`), or 8 kHz mono A-law/µ-law
//! (format tags 6 and 7, which `hound` does not read, so a small RIFF reader here handles them).
//! Every error names the file and says what was expected.

use super::api::PromptId;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI16, AtomicUsize, Ordering};
use std::sync::Arc;

/// The [`PromptId`] of player 0 of the [`PromptPlayers`] attached to a library (player `i` is
/// `PLAYER_BASE + i`).
pub const PLAYER_BASE: u16 = 0xFF00;

/// Most players a library can carry.
pub const MAX_PLAYERS: usize = (u16::MAX - PLAYER_BASE) as usize;

/// Why a prompt file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file could not be read.
    #[error("prompt {path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a WAV cardpbx can play.
    #[error("prompt {path}: {reason} (expected an 8000 Hz mono WAV: 16-bit PCM, A-law or µ-law)")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// More prompts than a [`PromptId`] can number.
    #[error("too many prompts: {0} (at most 65535)")]
    TooMany(usize),
}

#[derive(Debug)]
struct Prompt {
    name: String,
    samples: Box<[i16]>,
}

/// An immutable, cheaply cloned set of decoded prompts, numbered by [`PromptId`] in the order
/// they were given, optionally with [`PromptPlayers`] (ids from [`PLAYER_BASE`]).
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    prompts: Arc<Vec<Prompt>>,
    players: Option<PromptPlayers>,
}

#[derive(Debug)]
struct PlayerSlot {
    len: AtomicUsize,
    samples: Box<[AtomicI16]>,
}

/// Prompts whose audio the control plane writes at run time (voicemail messages and
/// greetings): a fixed number of players of a fixed capacity, preallocated at start and shared
/// with the engine without locks. The control plane loads a player only while no channel plays
/// it ([`PromptPlayers::load`]); the engine reads it like any prompt.
#[derive(Debug, Clone)]
pub struct PromptPlayers {
    slots: Arc<Vec<PlayerSlot>>,
}

impl PromptPlayers {
    /// `count` players (at most [`MAX_PLAYERS`]) of `capacity` samples each, all empty.
    pub fn new(count: usize, capacity: usize) -> PromptPlayers {
        let slots = (0..count.min(MAX_PLAYERS))
            .map(|_| PlayerSlot {
                len: AtomicUsize::new(0),
                samples: (0..capacity).map(|_| AtomicI16::new(0)).collect(),
            })
            .collect();
        PromptPlayers { slots: Arc::new(slots) }
    }

    /// Number of players.
    pub fn count(&self) -> usize {
        self.slots.len()
    }

    /// Samples a player holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.first().map_or(0, |s| s.samples.len())
    }

    /// The prompt id that plays player `i`.
    pub fn id(&self, i: usize) -> Option<PromptId> {
        (i < self.slots.len()).then(|| PromptId(PLAYER_BASE + i as u16))
    }

    /// Put `samples` (cut to the capacity) into player `i`; returns how many were kept. The
    /// caller makes sure no channel plays the player meanwhile.
    pub fn load(&self, i: usize, samples: &[i16]) -> usize {
        let Some(slot) = self.slots.get(i) else { return 0 };
        slot.len.store(0, Ordering::Release);
        let n = samples.len().min(slot.samples.len());
        for (d, s) in slot.samples.iter().zip(&samples[..n]) {
            d.store(*s, Ordering::Relaxed);
        }
        slot.len.store(n, Ordering::Release);
        n
    }

    /// Samples in player `i` now.
    pub fn len(&self, i: usize) -> usize {
        self.slots.get(i).map_or(0, |s| s.len.load(Ordering::Acquire))
    }
}

impl PromptLibrary {
    /// A library with no prompts.
    pub fn empty() -> Self {
        PromptLibrary::default()
    }

    /// A library from already decoded prompts `(name, samples)`; ids follow the order.
    ///
    /// # Errors
    /// [`PromptError::TooMany`] beyond 65535 prompts.
    pub fn from_samples(prompts: Vec<(String, Vec<i16>)>) -> Result<Self, PromptError> {
        if prompts.len() > usize::from(u16::MAX) {
            return Err(PromptError::TooMany(prompts.len()));
        }
        let prompts =
            prompts.into_iter().map(|(name, s)| Prompt { name, samples: s.into() }).collect();
        Ok(PromptLibrary { prompts: Arc::new(prompts), players: None })
    }

    /// This library with `players` attached (played as [`PLAYER_BASE`]` + i`).
    ///
    /// # Errors
    /// [`PromptError::TooMany`] when the library's own prompts reach into the players' ids.
    pub fn with_players(mut self, players: PromptPlayers) -> Result<Self, PromptError> {
        if self.prompts.len() > usize::from(PLAYER_BASE) {
            return Err(PromptError::TooMany(self.prompts.len()));
        }
        self.players = Some(players);
        Ok(self)
    }

    /// Whether `id` can be played (a prompt, or an attached player).
    pub fn contains(&self, id: PromptId) -> bool {
        usize::from(id.0) < self.prompts.len() || self.player(id).is_some()
    }

    fn player(&self, id: PromptId) -> Option<&PlayerSlot> {
        let i = id.0.checked_sub(PLAYER_BASE)?;
        self.players.as_ref()?.slots.get(usize::from(i))
    }

    /// Fill `out` with prompt `id` from sample `pos` on (from the start again at the end when
    /// `repeat`, silence after the end otherwise). Returns the next position and whether a
    /// non-repeating prompt has ended.
    ///
    /// # Real-time
    /// Never blocks or allocates.
    #[inline]
    pub fn fill(&self, id: PromptId, pos: usize, repeat: bool, out: &mut [i16]) -> (usize, bool) {
        out.fill(0);
        if let Some(p) = self.prompts.get(usize::from(id.0)) {
            return copy_prompt(out, pos, repeat, p.samples.len(), |d, from| {
                d.copy_from_slice(&p.samples[from..from + d.len()]);
            });
        }
        let Some(slot) = self.player(id) else { return (pos, true) };
        let len = slot.len.load(Ordering::Acquire).min(slot.samples.len());
        copy_prompt(out, pos, repeat, len, |d, from| {
            for (x, a) in d.iter_mut().zip(&slot.samples[from..]) {
                *x = a.load(Ordering::Relaxed);
            }
        })
    }

    /// Load WAV files; prompt `i` is `paths[i]`, named after the file stem.
    ///
    /// # Errors
    /// The first file that cannot be read or is not an 8 kHz mono PCM16/A-law/µ-law WAV.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Self, PromptError> {
        let mut v = Vec::with_capacity(paths.len());
        for p in paths {
            let p = p.as_ref();
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            v.push((name, load_wav(p)?));
        }
        PromptLibrary::from_samples(v)
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether the library is empty.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// The samples of a prompt.
    #[inline]
    pub fn samples(&self, id: PromptId) -> Option<&[i16]> {
        self.prompts.get(usize::from(id.0)).map(|p| &*p.samples)
    }

    /// The name of a prompt.
    pub fn name(&self, id: PromptId) -> Option<&str> {
        self.prompts.get(usize::from(id.0)).map(|p| p.name.as_str())
    }

    /// The id of the prompt with this name.
    pub fn find(&self, name: &str) -> Option<PromptId> {
        self.prompts.iter().position(|p| p.name == name).map(|i| PromptId(i as u16))
    }
}

/// Copy a prompt of `len` samples into `out` from `pos` with `copy(dest, from)`.
#[inline]
fn copy_prompt(
    out: &mut [i16],
    mut pos: usize,
    repeat: bool,
    len: usize,
    mut copy: impl FnMut(&mut [i16], usize),
) -> (usize, bool) {
    if len == 0 {
        return (pos, true);
    }
    let mut i = 0;
    while i < out.len() {
        if pos >= len {
            if !repeat {
                break;
            }
            pos = 0;
        }
        let take = (out.len() - i).min(len - pos);
        copy(&mut out[i..i + take], pos);
        i += take;
        pos += take;
    }
    (pos, !repeat && pos >= len)
}

/// Decode one WAV file to 16-bit linear samples.
///
/// # Errors
/// See [`PromptLibrary::load`].
pub fn load_wav(path: &Path) -> Result<Vec<i16>, PromptError> {
    let bytes =
        std::fs::read(path).map_err(|source| PromptError::Io { path: path.into(), source })?;
    let fmt_err = |reason: String| PromptError::Format { path: path.into(), reason };
    let (tag, channels, rate, bits, data) = riff_fmt_and_data(&bytes).map_err(fmt_err)?;
    if channels != 1 {
        return Err(fmt_err(format!("{channels} channels")));
    }
    if rate != 8000 {
        return Err(fmt_err(format!("sample rate {rate} Hz")));
    }
    match tag {
        1 => {
            if bits != 16 {
                return Err(fmt_err(format!("{bits}-bit PCM")));
            }
            let reader = hound::WavReader::new(std::io::Cursor::new(&bytes))
                .map_err(|e| fmt_err(e.to_string()))?;
            reader
                .into_samples::<i16>()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fmt_err(e.to_string()))
        }
        6 | 7 => {
            if bits != 8 {
                return Err(fmt_err(format!("{bits}-bit G.711")));
            }
            let law =
                if tag == 6 { cardpbx_dsp::g711::Law::Alaw } else { cardpbx_dsp::g711::Law::Ulaw };
            Ok(data.iter().map(|&c| law.decode(c)).collect())
        }
        t => Err(fmt_err(format!("unsupported format tag {t:#06x}"))),
    }
}

/// Read the RIFF/WAVE header: (format tag, channels, rate, bits per sample, data chunk).
fn riff_fmt_and_data(b: &[u8]) -> Result<(u16, u16, u32, u16, &[u8]), String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let u16le = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32le = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let mut fmt = None;
    let mut off = 12;
    while off + 8 <= b.len() {
        let id = &b[off..off + 4];
        let len = u32le(off + 4) as usize;
        let body = off + 8;
        let end = body.checked_add(len).ok_or("chunk length overflows")?;
        if id == b"fmt " {
            if len < 16 || end > b.len() {
                return Err("truncated fmt chunk".into());
            }
            let mut tag = u16le(body);
            if tag == 0xFFFE && len >= 26 {
                // WAVE_FORMAT_EXTENSIBLE: the real tag opens the SubFormat GUID.
                tag = u16le(body + 24);
            }
            fmt = Some((tag, u16le(body + 2), u32le(body + 4), u16le(body + 14)));
        } else if id == b"data" {
            let (tag, ch, rate, bits) = fmt.ok_or("data chunk before fmt chunk")?;
            let end = end.min(b.len());
            return Ok((tag, ch, rate, bits, &b[body..end]));
        }
        off = end + (len & 1);
    }
    Err(if fmt.is_some() { "no data chunk" } else { "no fmt chunk" }.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardpbx_dsp::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};

    fn g711_wav(tag: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(4 + 8 + 18 + 8 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&8u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn loads_pcm_alaw_and_ulaw() {
        let dir = tempfile::tempdir().unwrap();
        let pcm = dir.path().join("welcome.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&pcm, spec).unwrap();
        for s in [0i16, 1000, -1000, 32767] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let a = dir.path().join("moh.wav");
        std::fs::write(&a, g711_wav(6, &[alaw_encode(1000), alaw_encode(-2000)])).unwrap();
        let u = dir.path().join("busy.wav");
        std::fs::write(&u, g711_wav(7, &[ulaw_encode(1000)])).unwrap();

        let lib = PromptLibrary::load(&[&pcm, &a, &u]).unwrap();
        assert_eq!(lib.len(), 3);
        assert_eq!(lib.samples(PromptId(0)).unwrap(), &[0, 1000, -1000, 32767]);
        assert_eq!(
            lib.samples(PromptId(1)).unwrap(),
            &[alaw_decode(alaw_encode(1000)), alaw_decode(alaw_encode(-2000))]
        );
        assert_eq!(lib.samples(PromptId(2)).unwrap(), &[ulaw_decode(ulaw_encode(1000))]);
        assert_eq!(lib.find("moh"), Some(PromptId(1)));
        assert_eq!(lib.name(PromptId(2)), Some("busy"));
        assert!(lib.samples(PromptId(3)).is_none());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stereo44k.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(&p, spec).unwrap().finalize().unwrap();
        let e = PromptLibrary::load(&[&p]).unwrap_err().to_string();
        assert!(e.contains("stereo44k.wav") && e.contains("2 channels"), "{e}");

        let missing = dir.path().join("nope.wav");
        let e = PromptLibrary::load(&[&missing]).unwrap_err().to_string();
        assert!(e.contains("nope.wav") && e.contains("cannot read"), "{e}");

        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"hello world, not a wav").unwrap();
        let e = PromptLibrary::load(&[&junk]).unwrap_err().to_string();
        assert!(e.contains("junk.wav") && e.contains("RIFF"), "{e}");
    }
}

#[cfg(test)]
mod player_tests {
    use super::*;

    #[test]
    fn players_play_what_was_loaded_and_prompts_still_play() {
        let lib = PromptLibrary::from_samples(vec![("a".into(), vec![1, 2, 3])]).unwrap();
        let players = PromptPlayers::new(2, 5);
        let lib = lib.with_players(players.clone()).unwrap();
        let p1 = players.id(1).unwrap();
        assert_eq!(p1, PromptId(PLAYER_BASE + 1));
        assert!(lib.contains(PromptId(0)) && lib.contains(p1));
        assert!(!lib.contains(PromptId(1)) && players.id(2).is_none());
        let mut out = [9i16; 4];
        // An empty player ends at once.
        assert_eq!(lib.fill(p1, 0, false, &mut out), (0, true));
        assert_eq!(players.load(1, &[5, 6, 7, 8, 9, 10]), 5, "cut to the capacity");
        assert_eq!(players.len(1), 5);
        assert_eq!(lib.fill(p1, 0, false, &mut out), (4, false));
        assert_eq!(out, [5, 6, 7, 8]);
        assert_eq!(lib.fill(p1, 4, false, &mut out), (5, true));
        assert_eq!(out, [9, 0, 0, 0]);
        assert_eq!(lib.fill(PromptId(0), 1, true, &mut out), (2, false));
        assert_eq!(out, [2, 3, 1, 2]);
        assert_eq!(lib.fill(PromptId(7), 0, false, &mut out), (0, true));
    }
}
