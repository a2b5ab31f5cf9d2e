//! Supervisor feature codes, dialled by a logged-in agent whose `supervisor_of` covers the
//! supervised agent's queue, carried out with the media engine's switch matrix:
//!
//! | Code | Does | Supervisor hears | Agent hears | Caller hears |
//! |------|------|------------------|-------------|--------------|
//! | `*31<agent>#` | listen | caller + agent | caller | agent |
//! | `*32<agent>#` | whisper (coach) | caller + agent | caller + supervisor | agent |
//! | `*33<agent>#` | barge (three-way) | caller + agent | caller + supervisor | agent + supervisor |
//! | `*34<agent>#` | force release | confirmation tone | busy tone | (cleared) |
//! | `*35<agent>*<dest>#` | force transfer | confirmation tone | busy tone | ringback / music |
//!
//! A forced transfer moves the caller to `<dest>`: a queue number (the caller waits in that
//! queue) or an extension or hunt group number (it rings; refused when the extension is busy or
//! has do-not-disturb on). The call keeps its id and call data (`phonefeat.rs`).
//!
//! A refused code (unknown agent, not permitted, agent not on a call, already supervised)
//! gives congestion tone. When the supervised call ends the supervisor hears busy tone; when
//! the supervisor hangs up, caller and agent are bridged plainly again. A supervisor who was
//! ready is made not ready (`supervising`) by the ACD meanwhile and ready again afterwards.

use super::cc::Mode;
use super::{CallId, CallState, Pbx};
use crate::callcenter::acd::{AgentId, AgentState, ReasonCode, SupervisorAction, SupervisorOp};
use crate::engine::api::{Detectors, Source};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::ChannelId;

/// A supervisor listening to, whispering to or barged in on an agent's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Monitor {
    /// The supervisor's own call (their phone dialled the code).
    sup_call: CallId,
    /// The supervisor's phone.
    sup_phone: ChannelId,
    /// The supervisor.
    supervisor: AgentId,
    /// The supervised agent.
    agent: AgentId,
    /// The agent's call.
    agent_call: CallId,
}

/// What dialled digits mean as a supervisor code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Code {
    /// Not a supervisor code.
    No,
    /// A supervisor code, not complete yet.
    Incomplete,
    /// A complete code: the operation and the agent number.
    Op(SupervisorOp, String),
    /// A supervisor code that cannot be right.
    Invalid,
}

/// Parse `digits`; `complete` when no more will come.
fn parse(digits: &str, complete: bool) -> Code {
    if digits == "*3" {
        return if complete { Code::Invalid } else { Code::Incomplete };
    }
    let Some(rest) = digits.strip_prefix("*3") else { return Code::No };
    let (code, args) = rest.split_at(1);
    let op = match code {
        "1" => SupervisorOp::Listen,
        "2" => SupervisorOp::Whisper,
        "3" => SupervisorOp::Barge,
        "4" => SupervisorOp::ForceRelease,
        "5" => return parse_transfer(args, complete),
        _ => return Code::No,
    };
    match args.strip_suffix('#') {
        Some(agent) if !agent.is_empty() && agent.bytes().all(|b| b.is_ascii_digit()) => {
            Code::Op(op, agent.to_string())
        }
        Some(_) => Code::Invalid,
        None if complete || args.contains('#') => Code::Invalid,
        None => Code::Incomplete,
    }
}

/// Parse the arguments of `*35`: `<agent>*<destination>#`.
fn parse_transfer(args: &str, complete: bool) -> Code {
    let Some(body) = args.strip_suffix('#') else {
        return if complete || args.contains('#') { Code::Invalid } else { Code::Incomplete };
    };
    match body.split_once('*') {
        Some((agent, dest))
            if !agent.is_empty()
                && !dest.is_empty()
                && agent.bytes().chain(dest.bytes()).all(|b| b.is_ascii_digit()) =>
        {
            Code::Op(SupervisorOp::ForceTransfer(dest.to_string()), agent.to_string())
        }
        _ => Code::Invalid,
    }
}

/// A mix of two channels.
fn mix2(a: ChannelId, b: ChannelId) -> Source {
    Source::Mix([Some(a), Some(b), None, None])
}

impl Pbx {
    /// Handle `digits` of call `id` as a supervisor code; true when they are one.
    pub(super) fn cc_supervise_code(&mut self, id: CallId, digits: &str, complete: bool) -> bool {
        let Some((a, ext)) = self.feature_dialer(id) else { return false };
        let (op, agent) = match parse(digits, complete) {
            Code::No => return false,
            Code::Incomplete => return true,
            Code::Invalid => (None, String::new()),
            Code::Op(op, agent) => (Some(op), agent),
        };
        self.set_to(id, digits.get(..3).unwrap_or(digits));
        if let Some(c) = self.calls.get_mut(&id) {
            c.set_state(CallState::Failed);
            c.timer = None;
        }
        self.detect(a, Detectors::NONE);
        let now = self.now;
        let result = match (op, self.cc.acd.agent_at(&ext), self.cc.acd.agent_by_number(&agent)) {
            (None, ..) => Err("not a supervisor code".to_string()),
            (_, None, _) => Err("no agent logged in here".to_string()),
            (_, _, None) => Err(format!("unknown agent {agent}")),
            (Some(op), Some(sup), Some(target)) => {
                let monitors =
                    !matches!(op, SupervisorOp::ForceRelease | SupervisorOp::ForceTransfer(_));
                if monitors && self.cc.monitors.iter().any(|m| m.agent == target) {
                    Err("the agent's call is already supervised".to_string())
                } else {
                    self.cc.acd.supervise(sup, target, op, now).map_err(|e| e.to_string())
                }
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(%ext, %agent, "supervisor code accepted");
                self.cdr.note(id, "agent feature code");
                // The ACD's `Action::Supervise` sets up the switch matrix.
            }
            Err(e) => {
                tracing::info!(%ext, %agent, "supervisor code refused: {e}");
                self.cdr.note(id, "agent feature code refused");
                self.tone(a, ProgressTone::Congestion);
            }
        }
        true
    }

    /// Carry out a supervisor request the ACD accepted.
    pub(super) fn cc_supervise_action(&mut self, s: SupervisorAction) {
        let sup_phone = self.extensions.get(&s.supervisor_extension).copied();
        let sup_call = sup_phone.and_then(|p| self.lines[p.index()].call);
        let agent_call = if s.callback {
            self.cc.calls.iter().find_map(|(id, cc)| match cc.mode {
                Mode::DialOut(a, _) if a == s.agent => Some(*id),
                _ => None,
            })
        } else {
            Some(s.call)
        };
        let agent_phone = self.extensions.get(&s.agent_extension).copied();
        let legs = agent_call.and_then(|id| self.calls.get(&id)).and_then(|c| {
            let (b, phone) = (c.b?, agent_phone?);
            let other = if c.a == phone { b } else { c.a };
            (c.state == CallState::Connected && (c.a == phone || b == phone))
                .then_some((other, phone))
        });
        let (Some(sup_phone), Some(sup_call), Some(agent_call), Some((caller, agent))) =
            (sup_phone, sup_call, agent_call, legs)
        else {
            tracing::info!(?s, "supervisor request: the call or the supervisor is gone");
            if let Some(p) = sup_phone {
                self.tone(p, ProgressTone::Congestion);
            }
            self.cc_supervisor_done(s.supervisor);
            return;
        };
        match s.op {
            SupervisorOp::ForceRelease => {
                tracing::info!(call = agent_call, agent = %s.agent_extension, "force release");
                self.cdr.note(agent_call, "force released by supervisor");
                self.set_source(sup_phone, Source::Tone(super::cc_features::confirmation_tone()));
                self.leg_gone(caller);
            }
            SupervisorOp::ForceTransfer(dest) => {
                if self.pf_force_transfer(agent_call, caller, agent, &dest) {
                    let beeps = Source::Tone(super::cc_features::confirmation_tone());
                    self.set_source(sup_phone, beeps);
                } else {
                    tracing::info!(call = agent_call, %dest, "forced transfer refused");
                    self.cdr.note(sup_call, "agent feature code refused");
                    self.tone(sup_phone, ProgressTone::Congestion);
                }
            }
            op => {
                tracing::info!(call = agent_call, agent = %s.agent_extension, ?op, "supervising");
                self.set_source(sup_phone, mix2(caller, agent));
                if op != SupervisorOp::Listen {
                    self.set_source(agent, mix2(caller, sup_phone));
                    self.echo(sup_phone, true);
                }
                if op == SupervisorOp::Barge {
                    self.set_source(caller, mix2(agent, sup_phone));
                }
                self.cc.monitors.push(Monitor {
                    sup_call,
                    sup_phone,
                    supervisor: s.supervisor,
                    agent: s.agent,
                    agent_call,
                });
            }
        }
    }

    /// Call `id` ended: end the supervision it was part of. The supervisor's call: caller
    /// and agent are bridged plainly again; the agent's call: the supervisor hears busy tone.
    pub(super) fn cc_supervise_gone(&mut self, id: CallId) {
        let mut i = 0;
        while i < self.cc.monitors.len() {
            let m = &self.cc.monitors[i];
            if m.sup_call != id && m.agent_call != id {
                i += 1;
                continue;
            }
            let m = self.cc.monitors.remove(i);
            if m.sup_call == id {
                let legs = self.calls.get(&m.agent_call).and_then(|c| Some((c.a, c.b?)));
                if let Some((a, b)) = legs {
                    self.set_source(a, Source::Channel(b));
                    self.set_source(b, Source::Channel(a));
                }
            } else {
                self.tone(m.sup_phone, ProgressTone::Busy);
            }
            self.cc_supervisor_done(m.supervisor);
        }
    }

    /// A supervision is over: a supervisor the ACD made not ready for it is ready again.
    fn cc_supervisor_done(&mut self, supervisor: AgentId) {
        if self.cc.monitors.iter().any(|m| m.supervisor == supervisor) {
            return;
        }
        if self.cc.acd.agent_state(supervisor) == AgentState::NotReady(ReasonCode::SUPERVISING) {
            if let Err(e) = self.cc.acd.set_ready(supervisor, self.now) {
                tracing::debug!(?supervisor, "ACD: ready after supervising refused: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_codes_parse() {
        assert_eq!(parse("*3", false), Code::Incomplete);
        assert_eq!(parse("*3", true), Code::Invalid);
        assert_eq!(parse("*31", false), Code::Incomplete);
        assert_eq!(parse("*3110", false), Code::Incomplete);
        assert_eq!(parse("*31101#", false), Code::Op(SupervisorOp::Listen, "101".into()));
        assert_eq!(parse("*32101#", false), Code::Op(SupervisorOp::Whisper, "101".into()));
        assert_eq!(parse("*33101#", false), Code::Op(SupervisorOp::Barge, "101".into()));
        assert_eq!(parse("*34101#", false), Code::Op(SupervisorOp::ForceRelease, "101".into()));
        assert_eq!(parse("*31#", false), Code::Invalid);
        assert_eq!(parse("*31101", true), Code::Invalid);
        assert_eq!(parse("*311*1#", false), Code::Invalid);
        assert_eq!(parse("*36101#", false), Code::No);
        assert_eq!(parse("*35101*2003", false), Code::Incomplete);
        assert_eq!(parse("*35101*2003", true), Code::Invalid);
        assert_eq!(
            parse("*35101*2003#", false),
            Code::Op(SupervisorOp::ForceTransfer("2003".into()), "101".into())
        );
        assert_eq!(parse("*35101#", false), Code::Invalid);
        assert_eq!(parse("*35*2003#", false), Code::Invalid);
        assert_eq!(parse("*21101*1234#", false), Code::No);
        assert_eq!(parse("2001", false), Code::No);
    }
}
