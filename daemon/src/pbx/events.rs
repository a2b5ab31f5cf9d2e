//! The one internal event stream: every call, agent and queue state change that call control
//! makes is published here once, as it happens, with a sequence number and a UTC timestamp.
//!
//! Consumers read the stream rather than reaching into call control or the ACD: the control
//! socket's `events` command, the CTI server and the wallboard (through [`Pbx::pop_event`] and
//! the runner's event bus), and the store, whose queue, agent and IVR records are projections
//! of the same events ([`EventBody::record`]), so the two can never disagree.
//!
//! Each transition is published exactly once, by the code that makes it; nothing else derives
//! events by comparing states. Events nobody drains are kept up to [`MAX_EVENTS`]; older ones
//! are then dropped and counted ([`Pbx::events_dropped`]).

use super::{CallId, CallState, Direction, Pbx};
use crate::store::{self, Record};
use serde::Serialize;
use std::collections::VecDeque;

/// Events kept for a consumer that has not drained them yet.
pub const MAX_EVENTS: usize = 20_000;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PbxEvent {
    /// Sequence number, from 1, without gaps (a consumer that sees a gap lost events).
    pub seq: u64,
    /// When, UTC milliseconds since 1970.
    pub ts_ms: i64,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened. Serialised as the kind in snake case and its fields
/// (`{"event":"call_state","data":{"call":7,…}}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum EventBody {
    /// A call began on `line` (a port name such as `sim0/fxs1` or `sim0/span1/3`).
    CallStarted {
        /// The call.
        call: CallId,
        /// Internal, inbound or outbound.
        direction: Direction,
        /// The calling number, as far as known.
        from: String,
        /// The called number, as far as known (empty while an extension dials).
        to: String,
        /// The originating line.
        line: String,
    },
    /// The call moved to `state`.
    CallState {
        /// The call.
        call: CallId,
        /// The new state.
        state: CallState,
        /// The called number as known now.
        to: String,
        /// The line that answered, for `connected`.
        #[serde(skip_serializing_if = "Option::is_none")]
        answered_by: Option<String>,
    },
    /// The call is over; its CDR follows.
    CallEnded {
        /// The call.
        call: CallId,
        /// The CDR's cause (`normal_clearing`, `user_busy`, `no_answer`, …).
        cause: String,
        /// Which side hung up, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        hangup_side: Option<store::HangupSide>,
    },
    /// A queue event (enter, answer, abandon, timeout, overflow, callback).
    Queue(store::QueueEvent),
    /// An agent state change (login, ready, ringing, talk start, wrap-up, …).
    Agent(store::AgentEvent),
    /// A step through an IVR menu node.
    Ivr(store::IvrStep),
    /// A callback request changed (registered, offered, done, failed).
    Callback(store::CallbackRecord),
    /// A call recording was finished and filed.
    Recording(store::RecordingRecord),
    /// A voicemail message was left (or changed: heard).
    Voicemail(store::VoicemailRecord),
    /// A voicemail message was deleted.
    VoicemailDeleted {
        /// The mailbox.
        mailbox: String,
        /// The message.
        id: i64,
    },
    /// Message waiting changed for a mailbox's owner: `unheard` messages wait now.
    Mwi {
        /// The mailbox.
        mailbox: String,
        /// The owner's extension.
        extension: String,
        /// Unheard messages.
        unheard: u32,
    },
    /// A party joined a conference room.
    ConferenceJoined {
        /// The room's number.
        room: String,
        /// The member number in the room.
        member: u32,
        /// The party's call.
        call: CallId,
        /// The party's line.
        line: String,
        /// Joined with the moderator PIN.
        moderator: bool,
    },
    /// A party left a conference room (hung up or was kicked).
    ConferenceLeft {
        /// The room's number.
        room: String,
        /// The member number in the room.
        member: u32,
        /// The party's call.
        call: CallId,
        /// The party's line.
        line: String,
    },
    /// A conference party was muted or unmuted.
    ConferenceMuted {
        /// The room's number.
        room: String,
        /// The member number in the room.
        member: u32,
        /// The party's call.
        call: CallId,
        /// Muted now (listens only).
        muted: bool,
    },
    /// A party was put on hold by a hook flash on `line` (it hears music on hold).
    CallHeld {
        /// The held call.
        call: CallId,
        /// The phone that flashed.
        line: String,
    },
    /// The phone on `line` is back with the held party of `call`.
    CallRetrieved {
        /// The call.
        call: CallId,
        /// The phone.
        line: String,
    },
    /// `call` was transferred from the extension on `from_line` to `to_line` (a port, or
    /// `queue:<number>`); it keeps its id and call data.
    CallTransferred {
        /// The call.
        call: CallId,
        /// The line that transferred (or whose call a supervisor moved).
        from_line: String,
        /// Where the call went.
        to_line: String,
        /// Blind, attended or forced.
        kind: TransferKind,
    },
    /// The phone on `line` joined held `call` and consultation `consult` in a three-way call.
    ThreeWay {
        /// The held call.
        call: CallId,
        /// The consultation call.
        consult: CallId,
        /// The phone that flashed.
        line: String,
    },
    /// The phone on `line` picked up ringing `call`.
    CallPickedUp {
        /// The call.
        call: CallId,
        /// The picking phone.
        line: String,
    },
    /// Do-not-disturb of `extension` was turned on or off.
    Dnd {
        /// The extension number.
        extension: String,
        /// On now.
        on: bool,
    },
}

/// How a call was transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// The transferring phone hung up while the target rang.
    Blind,
    /// The transferring phone hung up after the target answered (or in a three-way call).
    Attended,
    /// A supervisor moved an agent's call (`*35`).
    Forced,
}

impl EventBody {
    /// The store record this event is projected to, if the store keeps it.
    pub fn record(&self) -> Option<Record> {
        match self {
            EventBody::Queue(e) => Some(Record::QueueEvent(e.clone())),
            EventBody::Agent(e) => Some(Record::AgentEvent(e.clone())),
            EventBody::Ivr(s) => Some(Record::IvrStep(s.clone())),
            EventBody::Callback(c) => Some(Record::Callback(c.clone())),
            EventBody::Recording(r) => Some(Record::Recording(r.clone())),
            EventBody::Voicemail(v) => Some(Record::Voicemail(v.clone())),
            EventBody::VoicemailDeleted { id, .. } => Some(Record::VoicemailDeleted(*id)),
            EventBody::Mwi { .. } => None,
            EventBody::CallStarted { .. } | EventBody::CallState { .. } => None,
            EventBody::CallEnded { .. } => None,
            EventBody::ConferenceJoined { .. }
            | EventBody::ConferenceLeft { .. }
            | EventBody::ConferenceMuted { .. } => None,
            EventBody::CallHeld { .. }
            | EventBody::CallRetrieved { .. }
            | EventBody::CallTransferred { .. }
            | EventBody::ThreeWay { .. }
            | EventBody::CallPickedUp { .. }
            | EventBody::Dnd { .. } => None,
        }
    }
}

/// The published events waiting for their consumer, and the store records projected from them.
#[derive(Debug, Default)]
pub(super) struct EventLog {
    events: VecDeque<PbxEvent>,
    records: VecDeque<Record>,
    next_seq: u64,
    dropped: u64,
    records_dropped: u64,
}

impl Pbx {
    /// Publish one event now. Call control calls this exactly once per transition.
    pub(super) fn publish(&mut self, body: EventBody) {
        let ts_ms = self.utc_ms(self.now);
        let log = &mut self.events;
        if let Some(r) = body.record() {
            if log.records.len() >= MAX_EVENTS {
                log.records_dropped += 1;
            } else {
                log.records.push_back(r);
            }
        }
        log.next_seq += 1;
        if log.events.len() >= MAX_EVENTS {
            log.events.pop_front();
            log.dropped += 1;
        }
        log.events.push_back(PbxEvent { seq: log.next_seq, ts_ms, body });
    }

    /// Publish the state changes calls made while the current event was handled, call by
    /// call in order.
    pub(super) fn flush_call_events(&mut self) {
        let mut due = Vec::new();
        for c in self.calls.values_mut() {
            if !c.transitions.is_empty() {
                due.push((c.id, std::mem::take(&mut c.transitions), c.to.clone(), c.b));
            }
        }
        for (call, states, to, b) in due {
            self.publish_states(call, states, to, b);
        }
    }

    /// Publish `states` of call `call` (called `to`, answered on line `b`).
    fn publish_states(
        &mut self,
        call: CallId,
        states: Vec<CallState>,
        to: String,
        b: Option<cardpbx_hal::ChannelId>,
    ) {
        for state in states {
            let answered_by = (state == CallState::Connected)
                .then(|| b.map(|b| self.lines[b.index()].port.clone()))
                .flatten();
            self.publish(EventBody::CallState { call, state, to: to.clone(), answered_by });
        }
    }

    /// Call `c` is over (its CDR `cdr` is written): publish its last state changes and the end.
    pub(super) fn publish_call_ended(&mut self, c: &mut super::Call, cdr: &store::CdrRecord) {
        let states = std::mem::take(&mut c.transitions);
        self.publish_states(c.id, states, c.to.clone(), c.b);
        self.publish(EventBody::CallEnded {
            call: c.id,
            cause: cdr.cause.clone(),
            hangup_side: cdr.hangup_side,
        });
    }

    /// UTC milliseconds of tick `t` (the base set with [`Pbx::set_utc_base`] plus the tick).
    pub(super) fn utc_ms(&self, t: u64) -> i64 {
        (self.utc_base_us / 1000) as i64 + t as i64
    }

    /// The next event of the stream, oldest first.
    pub fn pop_event(&mut self) -> Option<PbxEvent> {
        if self.events.events.is_empty() {
            self.flush_call_events();
        }
        self.events.events.pop_front()
    }

    /// Events dropped because nobody drained them.
    pub fn events_dropped(&self) -> u64 {
        self.events.dropped
    }

    /// The next queue event, agent event, IVR step or callback change for the store, oldest
    /// first (projections of the events, see [`EventBody::record`]).
    pub fn pop_record(&mut self) -> Option<Record> {
        self.events.records.pop_front()
    }

    /// Store records lost because nobody drained them.
    pub fn records_dropped(&self) -> u64 {
        self.events.records_dropped
    }
}
