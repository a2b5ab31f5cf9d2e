//! The media engine's command and event records: what the control plane sends to the
//! real-time thread and what comes back. All are small `Copy` values that travel through
//! preallocated single-producer single-consumer rings.

use cardpbx_dsp::tone::ToneSpec;
use cardpbx_hal::{ChannelId, HalCommand, HalEvent, Tick};

/// Index of a conference bridge in the engine's preallocated conference table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfId(pub u16);

/// Index of a prompt in the prompt library the engine was started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptId(pub u16);

/// Index of a recording slot (a preallocated ring to the recording writer thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecSlot(pub u16);

/// Most channels one [`Source::Mix`] output can mix.
pub const MAX_MIX: usize = 4;

/// What a channel transmits: the switch matrix entry for one output timeslot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// Idle code (silence in the channel's law).
    Silence,
    /// What another channel receives (one-way path; a two-way call is two of these).
    Channel(ChannelId),
    /// The saturated sum of up to [`MAX_MIX`] channels' received audio (`None` slots unused):
    /// supervisor listen (supervisor hears caller + agent) and whisper (agent hears caller +
    /// supervisor) are mixes.
    Mix([Option<ChannelId>; MAX_MIX]),
    /// A conference's mix without this channel's own contribution (N-1).
    Conference(ConfId),
    /// The channel's own tone generator, playing the given tone.
    Tone(ToneSpec),
    /// The channel's own prompt player, playing a prompt from the library.
    Prompt {
        /// Which prompt.
        prompt: PromptId,
        /// Start again at the end (music on hold) instead of falling silent.
        repeat: bool,
    },
}

/// How a channel takes part in a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfMode {
    /// Talks and listens (its transmit source becomes the conference).
    TalkListen,
    /// Only contributes audio; its own transmit source is left alone (whisper).
    TalkOnly,
    /// Only listens (silent monitoring); contributes nothing.
    ListenOnly,
}

/// A command for the media engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineCommand {
    /// Set what a channel transmits.
    SetSource(ChannelId, Source),
    /// Join a conference.
    ConfJoin(ConfId, ChannelId, ConfMode),
    /// Leave a conference (the channel's source becomes silence if it was the conference).
    ConfLeave(ConfId, ChannelId),
    /// Turn the channel's DTMF detector on or off.
    DetectDtmf(ChannelId, bool),
    /// Start recording the channel, both directions, into a slot the writer thread has opened.
    RecordStart(ChannelId, RecSlot),
    /// Stop recording the slot (the writer closes the file when it has drained the ring).
    RecordStop(RecSlot),
    /// Pass a command to the card (hook, ring, CAS bits, D-channel frame).
    Hal(HalCommand),
}

/// Something the media engine reports.
// Fixed-size `Copy` records travel through preallocated rings: boxing the large HAL event
// (a D-channel frame) would allocate on the real-time path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineEvent {
    /// An event read from the card on the given tick.
    Hal(Tick, HalEvent),
    /// A DTMF digit started on a channel; `at` is the tick in which its tone began.
    Digit {
        /// Channel it was heard on.
        chan: ChannelId,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// Tick of the digit's start.
        at: Tick,
    },
    /// A non-repeating tone or prompt on this channel finished; its source is now silence.
    PlayDone(ChannelId, Tick),
    /// A card command failed (the control plane logs it and clears the call).
    CommandFailed(ChannelId, Tick),
    /// The tick number, sent every 1000 ticks so the control plane sees time pass.
    Heartbeat(Tick),
}
