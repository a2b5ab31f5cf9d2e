//! The records written to the store: one enum the call-control, ACD, IVR, voicemail, callback
//! and recording code all send through [`StoreHandle::send`](super::StoreHandle::send).
//!
//! All times are UTC milliseconds since 1970-01-01 (`*_ms` fields that are instants); durations
//! are milliseconds too.

use serde::{Deserialize, Serialize};

/// One thing to write to the store.
// CDRs are the bulk of the traffic: keeping them unboxed saves an allocation per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A finished call.
    Cdr(CdrRecord),
    /// A queue event (a caller entered, was answered, abandoned, ...).
    QueueEvent(QueueEvent),
    /// An agent state change.
    AgentEvent(AgentEvent),
    /// One IVR node a call passed through.
    IvrStep(IvrStep),
    /// A voicemail message, new or changed (heard); replaces the row with the same id.
    Voicemail(VoicemailRecord),
    /// A voicemail message was deleted.
    VoicemailDeleted(i64),
    /// A callback request, new or changed; replaces the row with the same id.
    Callback(CallbackRecord),
    /// A finished recording.
    Recording(RecordingRecord),
    /// A fax received or sent (`faxes` table).
    Fax(super::fax::FaxRecord),
}

/// Who cleared a call first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    /// The calling party.
    Caller,
    /// The called party (extension, agent, or the far end of an outgoing call).
    Called,
    /// The PBX (a timeout, a failed call, a card error).
    System,
}

impl HangupSide {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupSide::Caller => "caller",
            HangupSide::Called => "called",
            HangupSide::System => "system",
        }
    }
}

/// A call detail record: one per call, written when the call ends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CdrRecord {
    /// The call's number in the daemon (unique while it runs).
    pub call_id: u64,
    /// When the call began (off-hook, or the first ring of a trunk call), UTC ms.
    pub started_ms: i64,
    /// When it was answered, UTC ms.
    pub answered_ms: Option<i64>,
    /// When it ended, UTC ms.
    pub ended_ms: i64,
    /// `internal`, `inbound` or `outbound`.
    pub direction: String,
    /// The calling number (extension, or caller ID of a trunk call; the port name when unknown).
    pub caller: String,
    /// The caller's name, when known.
    pub caller_name: Option<String>,
    /// The number dialled, or the target an incoming call was routed to.
    pub called: String,
    /// The number the caller dialled on the network (incoming trunk calls), when known.
    pub dnis: Option<String>,
    /// The trunk group of the trunk leg.
    pub trunk_group: Option<String>,
    /// The trunk leg's port (`sim0/fxo1`, `sim0/span1/ts3`).
    pub trunk_port: Option<String>,
    /// The extension that took part (answered, or placed the call).
    pub extension: Option<String>,
    /// The agent that handled the call.
    pub agent: Option<String>,
    /// The queue the call went through.
    pub queue: Option<String>,
    /// Time from start to answer (or to the end when unanswered), ms.
    pub wait_ms: i64,
    /// Time from answer to end, ms (0 when unanswered).
    pub talk_ms: i64,
    /// Who cleared first.
    pub hangup_side: Option<HangupSide>,
    /// Short cause code: `normal_clearing`, `caller_abandoned`, `busy`, `no_answer`,
    /// `congestion`, `unallocated_number`, `no_digits`, `not_routed`, `card_error`, `failed`;
    /// `feature_code` for a feature code call, `transferred` for a consultation that became a
    /// transfer.
    pub cause: String,
    /// Why, in words.
    pub why: Option<String>,
    /// The recording file, when recorded.
    pub recording: Option<String>,
    /// The IVR nodes passed through, `main>sales>queue`.
    pub ivr_path: Option<String>,
    /// How many times the call was transferred.
    pub transfers: u32,
    /// The call was a fax (moved to the fax destination).
    pub fax: bool,
}

/// What happened in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueEventKind {
    /// A caller entered the queue.
    Enter,
    /// The caller hung up while waiting.
    Abandon,
    /// An agent answered the caller.
    Answer,
    /// The maximum wait passed; the caller leaves the queue.
    Timeout,
    /// The caller was moved on (queue full, or too long a wait) to another destination.
    Overflow,
    /// The caller chose (or was given) a callback and left the queue.
    Callback,
}

impl QueueEventKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueEventKind::Enter => "enter",
            QueueEventKind::Abandon => "abandon",
            QueueEventKind::Answer => "answer",
            QueueEventKind::Timeout => "timeout",
            QueueEventKind::Overflow => "overflow",
            QueueEventKind::Callback => "callback",
        }
    }
}

/// A queue event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEvent {
    /// When, UTC ms.
    pub ts_ms: i64,
    /// The queue's name.
    pub queue: String,
    /// The call.
    pub call_id: u64,
    /// The agent (for `answer`).
    pub agent: Option<String>,
    /// What happened.
    pub event: QueueEventKind,
    /// How long the caller had waited in the queue, ms (0 for `enter`).
    pub wait_ms: i64,
    /// The caller's position in the queue (1 = next), when known.
    pub position: Option<u32>,
}

/// An agent state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentEventKind {
    /// Logged in (not ready until `ready`).
    Login,
    /// Logged out.
    Logout,
    /// Ready for calls.
    Ready,
    /// Not ready, with a reason code.
    NotReady(Option<String>),
    /// A call rings at the agent's phone.
    Ringing,
    /// The agent did not answer in time.
    NoAnswer,
    /// A call was answered.
    TalkStart,
    /// The call ended.
    TalkEnd,
    /// After-call work began.
    WrapupStart,
    /// After-call work ended.
    WrapupEnd,
}

impl AgentEventKind {
    /// The name stored in the database (without the reason).
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentEventKind::Login => "login",
            AgentEventKind::Logout => "logout",
            AgentEventKind::Ready => "ready",
            AgentEventKind::NotReady(_) => "not_ready",
            AgentEventKind::Ringing => "ringing",
            AgentEventKind::NoAnswer => "no_answer",
            AgentEventKind::TalkStart => "talk_start",
            AgentEventKind::TalkEnd => "talk_end",
            AgentEventKind::WrapupStart => "wrapup_start",
            AgentEventKind::WrapupEnd => "wrapup_end",
        }
    }

    /// The not-ready reason, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            AgentEventKind::NotReady(r) => r.as_deref(),
            _ => None,
        }
    }
}

/// An agent event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// When, UTC ms.
    pub ts_ms: i64,
    /// The agent's number.
    pub agent: String,
    /// What happened.
    pub event: AgentEventKind,
    /// The call concerned, if any.
    pub call_id: Option<u64>,
}

/// One IVR node a call passed through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrStep {
    /// When the call left the node, UTC ms.
    pub ts_ms: i64,
    /// The call.
    pub call_id: u64,
    /// The node's name.
    pub node: String,
    /// The key pressed (or the digits collected), if any.
    pub key: Option<String>,
    /// Time spent in the node, ms.
    pub ms_in_node: i64,
    /// How the node was left: a next node's name, `queue:NAME`, `extension:N`, `voicemail`,
    /// `timeout`, `invalid`, or `hangup` when the caller hung up in the node.
    pub exit: String,
}

/// A voicemail message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailRecord {
    /// The message's id (chosen by the voicemail code, unique).
    pub id: i64,
    /// The mailbox.
    pub mailbox: String,
    /// The caller's number.
    pub caller: String,
    /// When it was left, UTC ms.
    pub ts_ms: i64,
    /// Its length, ms.
    pub duration_ms: i64,
    /// The WAV file.
    pub file: String,
    /// Whether the owner has heard it.
    pub heard: bool,
}

/// A callback request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// The request's id (chosen by the callback code, unique).
    pub id: i64,
    /// The number to call back.
    pub number: String,
    /// The queue it belongs to.
    pub queue: String,
    /// When it was requested, UTC ms.
    pub requested_ms: i64,
    /// `pending`, `dialling`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// Dial attempts so far.
    pub attempts: u32,
    /// When it was completed (or given up), UTC ms.
    pub done_ms: Option<i64>,
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingRecord {
    /// The call recorded.
    pub call_id: u64,
    /// The agent, if any.
    pub agent: Option<String>,
    /// The calling number.
    pub caller: String,
    /// The called number.
    pub called: String,
    /// The queue, if any.
    pub queue: Option<String>,
    /// When the recording began, UTC ms.
    pub start_ms: i64,
    /// Its length, ms.
    pub duration_ms: i64,
    /// The WAV file.
    pub file: String,
    /// 2: caller and agent in separate channels; 1: mixed mono.
    pub channels: u8,
}
