//! The media engine's command and event records: what the control plane sends to the
//! real-time thread and what comes back. All are small `Copy` values that travel through
//! preallocated single-producer single-consumer rings.

use cardpbx_dsp::callerid::{self, CallerIdMessage, CidError, Format, FskStandard};
use cardpbx_dsp::faxtone::FaxToneEvent;
use cardpbx_dsp::mfr2::MfDirection;
use cardpbx_dsp::progress::ProgressEvent;
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

/// Index of a fax port (a pair of preallocated rings to the fax worker thread, see
/// [`super::faxport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaxSlot(pub u16);

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
    /// The channel's own FSK modulator, sending one on-hook caller ID burst (channel seizure,
    /// mark, the message); silence and [`EngineEvent::PlayDone`] when it is over.
    Fsk(FskBurst),
    /// A fax port: the channel transmits what the fax worker sends on the port, and the audio
    /// the channel receives goes to the worker through the port (one channel per port).
    FaxPort(FaxSlot),
}

/// One caller ID message to send with [`Source::Fsk`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FskBurst {
    /// Which modem.
    pub standard: FskStandard,
    /// Level of the signal, dBm0.
    pub level_dbm0: f32,
    /// The message frame (type, length, data, checksum).
    pub frame: CidFrame,
}

/// A caller ID message frame as it travels on the line: type, length, data, checksum
/// (at most [`callerid::MAX_MESSAGE_BYTES`]), in a fixed-size record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CidFrame {
    len: u16,
    bytes: [u8; callerid::MAX_MESSAGE_BYTES],
}

impl CidFrame {
    /// A frame holding `bytes`, or `None` when they are longer than
    /// [`callerid::MAX_MESSAGE_BYTES`].
    pub fn new(bytes: &[u8]) -> Option<CidFrame> {
        let mut f = CidFrame { len: 0, bytes: [0; callerid::MAX_MESSAGE_BYTES] };
        f.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        f.len = bytes.len() as u16;
        Some(f)
    }

    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Check the checksum and decode the message.
    ///
    /// # Errors
    /// What [`callerid::decode`] finds wrong.
    pub fn decode(&self) -> Result<(Format, CallerIdMessage), CidError> {
        callerid::decode(self.as_bytes())
    }
}

impl std::fmt::Debug for CidFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CidFrame(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Which detectors listen to a channel's received audio. Each is reset when it is switched on,
/// and reports sample times counted from then (converted to ticks in the events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Detectors {
    /// DTMF digits ([`EngineEvent::Digit`]).
    pub dtmf: bool,
    /// Clamp DTMF: while a digit sounds, whoever listens to this channel hears silence
    /// instead. Costs [`CLAMP_DELAY_SAMPLES`] of delay on the channel's audio. Implies `dtmf`.
    pub clamp_dtmf: bool,
    /// Call-progress tones of the engine's tone plan and voice ([`EngineEvent::Progress`]).
    pub progress: bool,
    /// Fax and modem tones CNG and CED/ANS ([`EngineEvent::FaxTone`]).
    pub fax: bool,
    /// On-hook FSK caller ID with this modem ([`EngineEvent::CallerId`]).
    pub callerid: Option<FskStandard>,
    /// MFC/R2 register signals of this direction ([`EngineEvent::Mf`]).
    pub mfr2: Option<MfDirection>,
}

impl Detectors {
    /// Nothing listens.
    pub const NONE: Detectors = Detectors {
        dtmf: false,
        clamp_dtmf: false,
        progress: false,
        fax: false,
        callerid: None,
        mfr2: None,
    };
    /// Only the DTMF detector.
    pub const DTMF: Detectors = Detectors { dtmf: true, ..Detectors::NONE };

    /// Whether any detector is on.
    pub fn any(&self) -> bool {
        self.dtmf
            || self.clamp_dtmf
            || self.progress
            || self.fax
            || self.callerid.is_some()
            || self.mfr2.is_some()
    }
}

/// How far a channel's audio is delayed while DTMF clamping is on: longer than the DTMF
/// detector takes to report a digit (two 102-sample blocks after the first full block), so
/// that the whole tone, from its onset, can be replaced by silence (48 ms).
pub const CLAMP_DELAY_SAMPLES: usize = 384;

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
    /// Set which detectors listen to the channel (see [`Detectors`]).
    Detect(ChannelId, Detectors),
    /// Turn the channel's line echo canceller on (reset, to converge anew) or off. Only
    /// channels the engine was built with an echo canceller for accept it.
    EchoCancel(ChannelId, bool),
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
    /// The call-progress detector of a channel reported; `at` is the tick of the decision.
    Progress(ChannelId, ProgressEvent, Tick),
    /// The fax tone detector of a channel heard CNG or CED; `at` is the tick of the decision.
    FaxTone(ChannelId, FaxToneEvent, Tick),
    /// A caller ID message frame was received (not yet checked or decoded: see
    /// [`CidFrame::decode`]), or one broke off ([`CidError::Truncated`]).
    CallerId(ChannelId, Result<CidFrame, CidError>, Tick),
    /// The MFC/R2 detector of a channel heard a signal start (`Some(1..=15)`) or stop
    /// (`None`); `at` is the tick of the change.
    Mf(ChannelId, Option<u8>, Tick),
    /// A non-repeating tone or prompt on this channel finished; its source is now silence.
    PlayDone(ChannelId, Tick),
    /// A card command failed (the control plane logs it and clears the call).
    CommandFailed(ChannelId, Tick),
    /// The tick number, sent every 1000 ticks so the control plane sees time pass.
    Heartbeat(Tick),
}
