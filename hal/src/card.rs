//! The capability traits a card backend implements.
//!
//! They are split by capability, as embedded-hal does, so that a backend implements only what
//! its hardware has, and tests can stand in for one capability at a time. [`Card`] bundles them
//! for the media engine, which owns the card and is the only caller on the tick path.

use crate::channel::{ChannelId, ChannelInfo};
use crate::error::Result;
use crate::event::{HalCommand, HalEvent};
use crate::span::{SpanConfig, SpanId, SpanInfo, SpanStatus};
use crate::{Chunk, Tick};
use serde::Serialize;

/// Static description of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardInfo {
    /// The name the configuration gives the card.
    pub name: String,
    /// Which backend drives it: `sim`, `dahdi`, ...
    pub driver: String,
    /// Model or description reported by the backend.
    pub model: String,
    /// Its spans (empty on a purely analog card).
    pub spans: Vec<SpanInfo>,
    /// Its channels, indexed by [`ChannelId`].
    pub channels: Vec<ChannelInfo>,
}

impl CardInfo {
    /// The channel with this id.
    pub fn channel(&self, id: ChannelId) -> Option<&ChannelInfo> {
        self.channels.get(id.index())
    }
}

/// The source of the 1 ms tick.
pub trait ClockSource {
    /// Block until the next tick is due and return its number (the first tick is 1).
    ///
    /// A hardware card returns when its interrupt delivered the next chunk; the simulator sleeps
    /// until the next millisecond (real-time clock) or returns at once (virtual clock).
    ///
    /// # Errors
    /// [`ErrorKind::Gone`](crate::ErrorKind::Gone) when the card vanished.
    fn wait_tick(&mut self) -> Result<Tick>;

    /// The number of the last tick returned by [`wait_tick`](Self::wait_tick).
    fn now(&self) -> Tick;
}

/// Exchange of one chunk of audio per channel per tick.
pub trait MediaIo {
    /// Number of channels, the length of the slices [`exchange`](Self::exchange) takes.
    fn channel_count(&self) -> usize;

    /// Write `tx[ch]` to every channel and read the chunk each received into `rx[ch]`.
    ///
    /// Both slices are [`channel_count`](Self::channel_count) long. Channels that carry no
    /// audio ignore `tx` and leave silence in `rx`.
    ///
    /// # Real-time
    /// Called once per tick from the media thread; backends must not allocate or block
    /// beyond the device transfer itself.
    ///
    /// # Errors
    /// [`ErrorKind::Overrun`](crate::ErrorKind::Overrun) when the device lost data.
    fn exchange(&mut self, tx: &[Chunk], rx: &mut [Chunk]) -> Result<()>;
}

/// Out-of-band signalling: events read from the card and commands written to it.
pub trait SignallingIo {
    /// The next pending event, if any. Called repeatedly after each tick until it returns `None`.
    fn poll_event(&mut self) -> Option<HalEvent>;

    /// Carry out a command.
    ///
    /// # Errors
    /// [`ErrorKind::WrongSignalling`](crate::ErrorKind::WrongSignalling) when the command does
    /// not apply to the channel; [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an
    /// unknown channel or span.
    fn command(&mut self, cmd: HalCommand) -> Result<()>;
}

/// E1/T1 span management.
pub trait SpanControl {
    /// Apply a span configuration (framing, line code, CRC-4, timing priority).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown span,
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) for an unsupported
    /// combination.
    fn configure_span(&mut self, span: SpanId, config: SpanConfig) -> Result<()>;

    /// Current alarms and counters of a span.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown span.
    fn span_status(&self, span: SpanId) -> Result<SpanStatus>;
}

/// Everything the media engine needs from a card.
pub trait Card: ClockSource + MediaIo + SignallingIo + SpanControl + Send {
    /// Static description of the card.
    fn info(&self) -> &CardInfo;
}
