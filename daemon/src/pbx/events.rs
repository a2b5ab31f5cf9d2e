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

/// What happened. Serialised with an `event` tag in snake case (`{"event":"call_state",…}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
        /// Why: `normal`, `busy`, `no_answer`, `congestion`, `abandoned`, `rejected`, … (the
        /// CDR's disposition).
        cause: String,
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
            EventBody::CallStarted { .. } | EventBody::CallState { .. } => None,
            EventBody::CallEnded { .. } => None,
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

    /// UTC milliseconds of tick `t` (the base set with [`Pbx::set_utc_base`] plus the tick).
    pub(super) fn utc_ms(&self, t: u64) -> i64 {
        (self.utc_base_us / 1000) as i64 + t as i64
    }

    /// The next event of the stream, oldest first.
    pub fn pop_event(&mut self) -> Option<PbxEvent> {
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
