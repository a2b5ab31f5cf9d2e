//! Call-center records for the store: the ACD's agent state changes and queue events and the
//! IVR's steps, turned into [`Record`]s with UTC timestamps (the base set with
//! [`Pbx::set_utc_base`] plus the tick) and published on the event stream (`events.rs`), whose
//! store projection [`Pbx::pop_record`] drains.
//!
//! Agent states become the store's agent events by transition: logging in gives `login` then
//! `ready`; a call answered `talk_start`; its end `talk_end` (then `wrapup_start`, and
//! `wrapup_end` when the wrap-up is over); a ring that timed out `no_answer` then `not_ready`.

use super::events::EventBody;
use super::Pbx;
use crate::callcenter::acd::{self, AgentId, AgentState, QueueEvent, ReasonCode, Work};
use crate::callcenter::ivr::{IvrExit, IvrStep};
use crate::config::callcenter_routing::Destination;
use crate::store::{self, AgentEventKind, CallbackRecord};

/// The store's name for a not-ready reason.
fn reason_name(r: ReasonCode) -> Option<String> {
    match r {
        ReasonCode::UNSPECIFIED => None,
        ReasonCode::NO_ANSWER => Some("no_answer".into()),
        ReasonCode::SUPERVISING => Some("supervising".into()),
        ReasonCode(n) => Some(n.to_string()),
    }
}

/// The store events for an agent moving from `from` to `to`.
fn agent_events(from: AgentState, to: AgentState) -> Vec<AgentEventKind> {
    use AgentEventKind as K;
    use AgentState as S;
    let not_ready = |r: ReasonCode| K::NotReady(reason_name(r));
    match (from, to) {
        (_, S::LoggedOut) => vec![K::Logout],
        (S::LoggedOut, S::Ready) => vec![K::Login, K::Ready],
        (S::LoggedOut, S::NotReady(r)) => vec![K::Login, not_ready(r)],
        (S::Ringing, S::NotReady(r)) if r == ReasonCode::NO_ANSWER => {
            vec![K::NoAnswer, not_ready(r)]
        }
        (S::OnCall, S::WrapUp) => vec![K::TalkEnd, K::WrapupStart],
        (S::OnCall, S::Ready) => vec![K::TalkEnd, K::Ready],
        (S::OnCall, S::NotReady(r)) => vec![K::TalkEnd, not_ready(r)],
        (S::WrapUp, S::Ready) => vec![K::WrapupEnd, K::Ready],
        (S::WrapUp, S::NotReady(r)) => vec![K::WrapupEnd, not_ready(r)],
        (_, S::Ringing) => vec![K::Ringing],
        (_, S::OnCall) => vec![K::TalkStart],
        (_, S::Ready) => vec![K::Ready],
        (_, S::NotReady(r)) => vec![not_ready(r)],
        (_, S::WrapUp) => vec![K::WrapupStart],
    }
}

/// How the store names an IVR step's exit.
fn exit_name(e: &IvrExit) -> String {
    match e {
        IvrExit::Node(n) => n.clone(),
        IvrExit::Repeat => "repeat".into(),
        IvrExit::RetryInvalid => "invalid".into(),
        IvrExit::RetryTimeout => "timeout".into(),
        IvrExit::CallerHangup => "hangup".into(),
        // The store keeps "hangup" for callers who dropped out.
        IvrExit::Destination(Destination::Hangup) => "ivr_hangup".into(),
        IvrExit::Destination(d) => d.to_string(),
    }
}

impl Pbx {
    /// Record an IVR step.
    pub(super) fn cc_ivr_record(&mut self, s: IvrStep) {
        let r = store::IvrStep {
            ts_ms: self.utc_ms(self.now),
            call_id: s.call,
            node: s.node,
            key: s.key,
            ms_in_node: s.ms_in_node as i64,
            exit: exit_name(&s.exit),
        };
        self.publish(EventBody::Ivr(r));
    }

    /// Record an agent's state change.
    pub(super) fn cc_agent_record(&mut self, agent: AgentId, state: AgentState, at_ms: u64) {
        let Some(status) = self.cc.acd.agent(agent) else { return };
        let i = usize::from(agent.0);
        let Some(&(before, last_call)) = self.cc.last_state.get(i) else { return };
        if before == state {
            return;
        }
        let call = match status.work {
            Some(Work::Call(c) | Work::Direct(c)) => Some(c),
            _ => None,
        };
        let ts_ms = self.utc_ms(at_ms);
        for kind in agent_events(before, state) {
            let call_id = match kind {
                AgentEventKind::Ringing | AgentEventKind::TalkStart => call,
                AgentEventKind::TalkEnd
                | AgentEventKind::WrapupStart
                | AgentEventKind::NoAnswer => last_call,
                _ => None,
            };
            let e = store::AgentEvent { ts_ms, agent: status.number.clone(), event: kind, call_id };
            self.publish(EventBody::Agent(e));
        }
        self.cc.last_state[i] = (state, call.or(last_call));
    }

    /// Record callback `cb`'s new `state` (`attempts` more dial attempts; `done_ms` when it
    /// is over).
    fn cc_callback_progress(
        &mut self,
        cb: acd::CallbackId,
        state: &str,
        attempts: u32,
        done_ms: Option<i64>,
    ) {
        let Some(r) = self.cc.callbacks.get_mut(&cb) else { return };
        r.state = state.to_string();
        r.attempts += attempts;
        r.done_ms = done_ms;
        let r = r.clone();
        if done_ms.is_some() {
            self.cc.callbacks.remove(&cb);
        }
        self.publish(EventBody::Callback(r));
    }

    /// Record a queue event (callback events become callback records).
    pub(super) fn cc_queue_record(&mut self, e: QueueEvent) {
        use acd::QueueEventKind as K;
        use store::QueueEventKind as S;
        let queue = self.cc.acd.queue_config(e.queue).map(|q| q.name.clone()).unwrap_or_default();
        let ts_ms = self.utc_ms(e.at_ms);
        let number = |a: AgentId| self.cc.acd.agent(a).map(|s| s.number);
        let (call, agent, event, wait, position) = match e.kind {
            K::Enter { call, position, .. } => (call, None, S::Enter, 0, Some(position)),
            K::Answer { call, agent, wait_ms } => (call, number(agent), S::Answer, wait_ms, None),
            K::Abandon { call, position, wait_ms } => {
                (call, None, S::Abandon, wait_ms, Some(position))
            }
            K::Timeout { call, wait_ms, .. } => (call, None, S::Timeout, wait_ms, None),
            K::Overflow { call, .. } => (call, None, S::Overflow, 0, None),
            K::RingNoAnswer { .. } => return,
            K::CallbackRequested { callback, number } => {
                let r = CallbackRecord {
                    id: callback.0 as i64,
                    number,
                    queue,
                    requested_ms: ts_ms,
                    state: "pending".into(),
                    attempts: 0,
                    done_ms: None,
                };
                self.cc.callbacks.insert(callback, r.clone());
                self.publish(EventBody::Callback(r));
                return;
            }
            K::CallbackAccepted { callback, .. } => {
                self.cc_callback_progress(callback, "dialling", 0, None);
                return;
            }
            K::CallbackDone { callback, .. } => {
                self.cc_callback_progress(callback, "done", 1, Some(ts_ms));
                return;
            }
            K::CallbackUnreached { callback, dropped, .. } => {
                let (state, done) =
                    if dropped { ("failed", Some(ts_ms)) } else { ("pending", None) };
                self.cc_callback_progress(callback, state, 1, done);
                return;
            }
        };
        let r = store::QueueEvent {
            ts_ms,
            queue,
            call_id: call,
            agent,
            event,
            wait_ms: wait as i64,
            position,
        };
        self.publish(EventBody::Queue(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_transitions_map_to_store_events() {
        use AgentEventKind as K;
        use AgentState as S;
        assert_eq!(agent_events(S::LoggedOut, S::Ready), vec![K::Login, K::Ready]);
        assert_eq!(agent_events(S::OnCall, S::WrapUp), vec![K::TalkEnd, K::WrapupStart]);
        assert_eq!(
            agent_events(S::Ringing, S::NotReady(ReasonCode::NO_ANSWER)),
            vec![K::NoAnswer, K::NotReady(Some("no_answer".into()))]
        );
        assert_eq!(agent_events(S::Ringing, S::Ready), vec![K::Ready]);
        assert_eq!(agent_events(S::WrapUp, S::Ready), vec![K::WrapupEnd, K::Ready]);
        assert_eq!(
            agent_events(S::Ready, S::NotReady(ReasonCode(7))),
            vec![K::NotReady(Some("7".into()))]
        );
    }

    #[test]
    fn dropouts_and_ivr_hangups_are_told_apart() {
        assert_eq!(exit_name(&IvrExit::CallerHangup), "hangup");
        assert_eq!(exit_name(&IvrExit::Destination(Destination::Hangup)), "ivr_hangup");
        assert_eq!(exit_name(&IvrExit::Node("sub".into())), "sub");
        let q = Destination::Queue { queue: "sales".into(), priority: 0 };
        assert_eq!(exit_name(&IvrExit::Destination(q)), "queue:sales");
    }
}
