//! Signalling events a card reports and commands it takes.
//!
//! Both are small `Copy` records so that they travel through the media engine's preallocated
//! rings without allocation.

use crate::analog::{FxoCommand, FxsCommand};
use crate::cas::Abcd;
use crate::channel::ChannelId;
use crate::hdlc::HdlcFrame;
use crate::span::{Alarms, SpanConfig, SpanId};

/// Something a card reports, stamped by the caller with the tick it was read on.
// Frames travel inline so that the record needs no allocation on the real-time path; the
// size (about 270 bytes) is the price of a fixed-size ring slot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalEvent {
    /// FXS: the phone went off-hook (debounced loop closure).
    OffHook(ChannelId),
    /// FXS: the phone went on-hook (debounced loop open). Hook flashes are told apart from
    /// hang-ups by the loop-start state machine from the on-hook time.
    OnHook(ChannelId),
    /// FXO: ringing voltage detected (start of a ring burst).
    RingBegin(ChannelId),
    /// FXO: ringing voltage gone (end of a ring burst).
    RingEnd(ChannelId),
    /// FXO: the central office reversed the line's polarity.
    PolarityReversal(ChannelId),
    /// FXO: loop current dropped (battery removed by the exchange: open-loop disconnect).
    LoopCurrentLost(ChannelId),
    /// CAS: the received ABCD bits changed.
    CasBits(ChannelId, Abcd),
    /// D-channel: a frame arrived (good FCS).
    HdlcFrame(ChannelId, HdlcFrame),
    /// D-channel: a frame was dropped (bad FCS, abort, overrun).
    HdlcBadFrame(ChannelId),
    /// A span's alarms changed to the given set.
    Alarm(SpanId, Alarms),
    /// The card disappeared (hot-unplug); no further I/O will succeed.
    CardGone,
}

impl HalEvent {
    /// The channel the event concerns, if any.
    pub fn channel(&self) -> Option<ChannelId> {
        match *self {
            HalEvent::OffHook(c)
            | HalEvent::OnHook(c)
            | HalEvent::RingBegin(c)
            | HalEvent::RingEnd(c)
            | HalEvent::PolarityReversal(c)
            | HalEvent::LoopCurrentLost(c)
            | HalEvent::CasBits(c, _)
            | HalEvent::HdlcFrame(c, _)
            | HalEvent::HdlcBadFrame(c) => Some(c),
            HalEvent::Alarm(..) | HalEvent::CardGone => None,
        }
    }
}

/// Something the daemon asks a card to do.
// Inline frame for the same reason as [`HalEvent`].
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalCommand {
    /// Drive an FXS port.
    Fxs(ChannelId, FxsCommand),
    /// Drive an FXO port.
    Fxo(ChannelId, FxoCommand),
    /// Send ABCD bits on a CAS channel.
    SetCas(ChannelId, Abcd),
    /// Send a frame on a D-channel.
    SendHdlc(ChannelId, HdlcFrame),
    /// (Re)configure a span.
    ConfigureSpan(SpanId, SpanConfig),
}
