//! Channels (timeslots and analog ports) and their signalling kind.

use crate::span::SpanId;
use serde::Serialize;
use std::fmt;

/// A channel's index on its card, 0-based and dense: the engine's arrays are indexed by it.
///
/// DAHDI numbers channels from 1 across the whole system; a DAHDI backend maps
/// `ChannelId(n)` to its own channel number through its [`ChannelInfo`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ChannelId(pub u32);

impl ChannelId {
    /// The index as `usize`, for array access.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chan {}", self.0)
    }
}

/// Companding law of a channel's G.711 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// ITU-T G.711 A-law (E1, China, Europe).
    #[default]
    Alaw,
    /// ITU-T G.711 µ-law (T1, North America, Japan).
    Ulaw,
}

/// How a channel is signalled, which decides which commands and events apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigKind {
    /// A bearer (B-channel) of a common-channel-signalled span; signalling is on the D-channel.
    CcsBearer,
    /// The D-channel of an ISDN PRI span (HDLC frames, no audio).
    DChannel,
    /// A channel-associated-signalling timeslot (ABCD bits in timeslot 16, MFC/R2).
    Cas,
    /// An analog FXS port: the card feeds battery and rings a phone (loop start).
    FxsLoopStart,
    /// An analog FXO port: the card is a phone towards a central office line (loop start).
    FxoLoopStart,
    /// Present on the card but not in use (unconfigured timeslot).
    Unused,
}

impl SigKind {
    /// Whether the channel carries audio that the media engine exchanges.
    pub fn carries_audio(self) -> bool {
        !matches!(self, SigKind::DChannel | SigKind::Unused)
    }
}

/// Static description of one channel, as the card reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    /// Dense index on the card.
    pub id: ChannelId,
    /// A technician's name: `span1/ts5`, `fxs3`, `fxo1`.
    pub name: String,
    /// Signalling kind.
    pub sig: SigKind,
    /// Companding law of the bytes the card exchanges on this channel.
    pub law: Law,
    /// The E1/T1 span the channel belongs to, for digital channels.
    pub span: Option<SpanId>,
    /// Timeslot on the span (1..=31 on E1), for digital channels.
    pub timeslot: Option<u8>,
    /// Analog port number on the card (1-based), for FXS/FXO channels.
    pub port: Option<u32>,
}
