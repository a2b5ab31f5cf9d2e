//! Hardware abstraction layer for cardpbx.
//!
//! This crate holds the plain types and the small capability-shaped traits that every card
//! backend implements: the software simulator (`cardpbx-sim`) and the real drivers
//! (`cardpbx-driver`, DAHDI and friends). It does no I/O, spawns no threads and reads no clock.
//!
//! The unit of media exchange is the *tick*: 1 ms, [`CHUNK_SAMPLES`] = 8 G.711 bytes per channel
//! per direction (the DAHDI chunk). A card paces the tick ([`ClockSource::wait_tick`]) and
//! exchanges one chunk for every channel at once ([`MediaIo::exchange`]). Signalling that is not
//! carried in the audio (hook state, ringing, CAS bits, D-channel frames, span alarms) arrives as
//! [`HalEvent`]s and leaves as [`HalCommand`]s.
//!
//! `docs/hal.md` maps each operation to the DAHDI kernel interface.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod analog;
pub mod card;
pub mod cas;
pub mod channel;
pub mod error;
pub mod event;
pub mod hdlc;
pub mod span;

pub use analog::{FxoCommand, FxsCommand, HookState};
pub use card::{Card, CardInfo, ClockSource, MediaIo, SignallingIo, SpanControl};
pub use cas::Abcd;
pub use channel::{ChannelId, ChannelInfo, Law, SigKind};
pub use error::{Error, ErrorKind, Result};
pub use event::{HalCommand, HalEvent};
pub use hdlc::HdlcFrame;
pub use span::{Alarms, Framing, LineCode, SpanConfig, SpanCounters, SpanId, SpanInfo, SpanStatus};

/// Samples per channel per tick: 8 samples = 1 ms at 8 kHz (DAHDI `DAHDI_CHUNKSIZE`).
pub const CHUNK_SAMPLES: usize = 8;

/// Sample rate of every TDM channel, in samples per second.
pub const SAMPLE_RATE: u32 = 8000;

/// One tick of audio for one channel in one direction: 8 G.711 bytes.
pub type Chunk = [u8; CHUNK_SAMPLES];

/// A point in card time, counted in ticks (milliseconds) since the card started.
///
/// Nothing in cardpbx reads the wall clock on the media or signalling path: the card's tick
/// count is the time base, so a simulated card on a virtual clock gives identical results
/// from run to run.
pub type Tick = u64;
