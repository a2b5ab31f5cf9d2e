//! Supervisor requests: who may listen to, whisper to, barge in on, release or transfer which
//! agent's call. The ACD checks the request against the configuration (`supervisor_of`) and
//! the agents' states and emits [`Action::Supervise`]; call control sets up the switch matrix
//! (listen: the supervisor hears a mix of caller and agent; whisper: the agent hears a mix of
//! caller and supervisor; barge: a three-way conference) or clears/transfers the call and then
//! reports [`Acd::call_ended`] for the agent.

use super::{Acd, AcdError, Action, AgentId, AgentState, CallId, Millis, ReasonCode, Work};

/// What a supervisor does to an agent's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorOp {
    /// Hear caller and agent, unheard.
    Listen,
    /// Hear both and speak to the agent only (coaching).
    Whisper,
    /// Join the call as a third party.
    Barge,
    /// Clear the call.
    ForceRelease,
    /// Transfer the call (the caller's leg) to this number.
    ForceTransfer(String),
}

/// A checked supervisor request for call control to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorAction {
    /// The supervisor.
    pub supervisor: AgentId,
    /// The extension the supervisor is logged in on.
    pub supervisor_extension: String,
    /// The supervised agent.
    pub agent: AgentId,
    /// The agent's extension.
    pub agent_extension: String,
    /// The agent's current call (for a callback, the dialled call is call control's own; this
    /// is then 0 and call control finds it by the agent).
    pub call: CallId,
    /// Whether the call is a callback dial-out (see `call`).
    pub callback: bool,
    /// What to do.
    pub op: SupervisorOp,
}

/// Why a supervisor request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuperviseError {
    /// An agent id is not known.
    #[error(transparent)]
    Acd(#[from] AcdError),
    /// The supervisor is not logged in (their extension is not known).
    #[error("the supervisor is not logged in")]
    SupervisorNotLoggedIn,
    /// The supervisor's `supervisor_of` does not cover the agent's queue.
    #[error("not permitted to supervise this agent")]
    NotPermitted,
    /// The agent is not on a call.
    #[error("the agent is not on a call")]
    NoCall,
    /// The supervisor is on a call or ringing and cannot listen, whisper or barge.
    #[error("the supervisor is busy")]
    SupervisorBusy,
    /// A supervisor cannot supervise themselves.
    #[error("a supervisor cannot supervise their own call")]
    SelfSupervision,
    /// A forced transfer needs a number.
    #[error("no transfer target")]
    NoTarget,
}

impl Acd {
    /// Whether `supervisor` may supervise `agent` now: the agent is logged in and belongs to
    /// (or is on a call from) a queue listed in the supervisor's `supervisor_of`.
    pub fn may_supervise(&self, supervisor: AgentId, agent: AgentId) -> bool {
        let (Some(s), Some(a)) =
            (self.agents.get(usize::from(supervisor.0)), self.agents.get(usize::from(agent.0)))
        else {
            return false;
        };
        supervisor != agent
            && a.state != AgentState::LoggedOut
            && match a.work_queue {
                Some(q) if a.state == AgentState::OnCall => s.supervisor_of.contains(&q),
                _ => a.queues.iter().any(|q| s.supervisor_of.contains(q)),
            }
    }

    /// Check and issue a supervisor request on `agent`'s current call. Listen, whisper and
    /// barge put a ready supervisor into not ready ([`ReasonCode::SUPERVISING`]) so that no
    /// queue call rings them meanwhile.
    ///
    /// # Errors
    /// See [`SuperviseError`].
    pub fn supervise(
        &mut self,
        supervisor: AgentId,
        agent: AgentId,
        op: SupervisorOp,
        now: Millis,
    ) -> Result<(), SuperviseError> {
        self.check_agent(supervisor)?;
        self.check_agent(agent)?;
        if supervisor == agent {
            return Err(SuperviseError::SelfSupervision);
        }
        let s = self.ag(supervisor);
        let Some(supervisor_extension) = s.extension.clone() else {
            return Err(SuperviseError::SupervisorNotLoggedIn);
        };
        let monitors =
            matches!(op, SupervisorOp::Listen | SupervisorOp::Whisper | SupervisorOp::Barge);
        if monitors && matches!(s.state, AgentState::OnCall | AgentState::Ringing) {
            return Err(SuperviseError::SupervisorBusy);
        }
        if matches!(&op, SupervisorOp::ForceTransfer(t) if t.is_empty()) {
            return Err(SuperviseError::NoTarget);
        }
        let a = self.ag(agent);
        if a.state != AgentState::OnCall {
            return Err(SuperviseError::NoCall);
        }
        if !self.may_supervise(supervisor, agent) {
            return Err(SuperviseError::NotPermitted);
        }
        let (call, callback) = match a.work {
            Some(Work::Call(c) | Work::Direct(c)) => (c, false),
            _ => (0, true),
        };
        let agent_extension = a.extension.clone().unwrap_or_default();
        if monitors && self.ag(supervisor).state == AgentState::Ready {
            self.set_state(supervisor, AgentState::NotReady(ReasonCode::SUPERVISING), now);
        }
        self.actions.push_back(Action::Supervise(SupervisorAction {
            supervisor,
            supervisor_extension,
            agent,
            agent_extension,
            call,
            callback,
            op,
        }));
        Ok(())
    }
}
