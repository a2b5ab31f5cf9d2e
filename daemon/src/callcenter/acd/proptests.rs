//! Property tests: random event sequences keep the ACD consistent.

use super::tests::acd;
use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const CONFIG: &str = r#"
[[queue]]
number = "600"
name = "all"
strategy = "ring_all"
wrapup_s = 5
max_wait_s = 90
overflow = "queue:601"
announce_position = true
announce_wait = true
announce_interval_s = 20
ring_timeout_s = 10

[[queue]]
number = "601"
name = "skilled"
strategy = "skills"
skills = { english = 2 }
max_length = 3
max_wait_s = 120
overflow = "callback"

[[queue.priority]]
prefixes = ["9"]
priority = 5

[[queue]]
number = "602"
name = "rr"
strategy = "round_robin"
wrapup_s = 3

[[agent]]
id = "1"
pin = "1111"
name = "a"
skills = { english = 3 }
queues = ["600", "601"]

[[agent]]
id = "2"
pin = "2222"
name = "b"
skills = { english = 1, french = 4 }
queues = ["600", "602"]

[[agent]]
id = "3"
pin = "3333"
name = "c"
skills = { english = 5, french = 2 }
queues = ["601", "602"]

[[agent]]
id = "4"
pin = "4444"
name = "d"
skills = { english = 2 }
queues = ["602", "600", "601"]
supervisor_of = ["600", "601"]
"#;

#[derive(Debug, Clone)]
enum Op {
    Login { agent: u8, ext: u8, right_pin: bool },
    Logout(u8),
    Ready(u8),
    NotReady(u8),
    Arrive { queue: u8, call: u8, priority: u8, vip: bool, french: bool, preferred: Option<u8> },
    Answer(u8),
    NoAnswer(u8),
    Abandon(u8),
    End(u8),
    Callback(u8),
    Unreached(u8),
    Direct(u8, u8),
    Supervise(u8, u8, u8),
    Tick(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..4u8, 0..5u8, prop::bool::weighted(0.9))
            .prop_map(|(agent, ext, right_pin)| Op::Login { agent, ext, right_pin }),
        1 => (0..4u8).prop_map(Op::Logout),
        1 => (0..4u8).prop_map(Op::Ready),
        1 => (0..4u8).prop_map(Op::NotReady),
        1 => (
            0..3u8,
            0..10u8,
            0..3u8,
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::option::weighted(0.2, 0..4u8)
        )
            .prop_map(|(queue, call, priority, vip, french, preferred)| Op::Arrive {
                queue,
                call,
                priority,
                vip,
                french,
                preferred
            }),
        4 => (0..4u8).prop_map(Op::Answer),
        1 => (0..4u8).prop_map(Op::NoAnswer),
        1 => (0..10u8).prop_map(Op::Abandon),
        2 => (0..4u8).prop_map(Op::End),
        1 => (0..3u8).prop_map(Op::Callback),
        1 => (0..4u8).prop_map(Op::Unreached),
        1 => (0..4u8, 10..12u8).prop_map(|(a, c)| Op::Direct(a, c)),
        1 => (0..4u8, 0..4u8, 0..5u8).prop_map(|(s, a, o)| Op::Supervise(s, a, o)),
        3 => (0..25_000u32).prop_map(Op::Tick),
    ]
}

fn apply(a: &mut Acd, op: &Op, now: Millis) {
    // Refusals are fine: the property is that no sequence breaks the engine.
    let _ = match op.clone() {
        Op::Login { agent, ext, right_pin } => {
            let pin = if right_pin { format!("{0}{0}{0}{0}", agent + 1) } else { "0000".into() };
            a.login(&(agent + 1).to_string(), &pin, &format!("20{ext}"), now)
                .map(|_| ())
                .map_err(|_| AcdError::Busy)
        }
        Op::Logout(g) => a.logout(AgentId(g.into()), now),
        Op::Ready(g) => a.set_ready(AgentId(g.into()), now),
        Op::NotReady(g) => a.set_not_ready(AgentId(g.into()), ReasonCode(3), now),
        Op::Arrive { queue, call, priority, vip, french, preferred } => {
            let mut arr = Arrival::new(call.into(), if vip { "9123" } else { "555" });
            arr.priority = priority;
            arr.preferred = preferred.map(|p| AgentId(p.into()));
            if french {
                arr.skills.push(("french".into(), 3));
            }
            a.call_arrives(now, QueueId(queue.into()), arr)
        }
        Op::Answer(g) => a.agent_answered(AgentId(g.into()), now),
        Op::NoAnswer(g) => a.agent_no_answer(AgentId(g.into()), now),
        Op::Abandon(c) => a.call_abandoned(c.into(), now),
        Op::End(g) => a.call_ended(AgentId(g.into()), now),
        Op::Callback(q) => a.request_callback(QueueId(q.into()), "777", now).map(|_| ()),
        Op::Unreached(g) => a.callback_unreached(AgentId(g.into()), now),
        Op::Direct(g, c) => a.agent_direct_call(AgentId(g.into()), c.into(), now),
        Op::Supervise(s, g, o) => {
            let op = match o {
                0 => SupervisorOp::Listen,
                1 => SupervisorOp::Whisper,
                2 => SupervisorOp::Barge,
                3 => SupervisorOp::ForceRelease,
                _ => SupervisorOp::ForceTransfer("2001".into()),
            };
            a.supervise(AgentId(s.into()), AgentId(g.into()), op, now).map_err(|_| AcdError::Busy)
        }
        Op::Tick(_) => {
            a.tick(now);
            Ok(())
        }
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Any sequence of inputs keeps the engine consistent: an agent is in one state, a call
    /// is in at most one place, no agent rings for two calls, queues stay in order; every
    /// agent state change is reported exactly once; a phone is told to ring only when its
    /// agent's state says ringing; timers are never in the past after a tick.
    #[test]
    fn random_events_keep_invariants(ops in prop::collection::vec(op(), 1..120)) {
        let mut a = acd(CONFIG);
        let mut now: Millis = 0;
        let mut reported: HashMap<AgentId, (AgentState, Option<String>)> = HashMap::new();
        // Start staffed, so that short sequences reach the interesting states.
        for g in 0..4u8 {
            let ext = format!("20{g}");
            let id = a.login(&(g + 1).to_string(), &format!("{0}{0}{0}{0}", g + 1), &ext, 0);
            prop_assert_eq!(id, Ok(AgentId(g.into())));
            reported.insert(AgentId(g.into()), (AgentState::Ready, Some(ext)));
        }
        a.drain_actions();
        for op in &ops {
            now += match op { Op::Tick(d) => u64::from(*d), _ => 100 };
            apply(&mut a, op, now);
            if let Err(e) = a.check_invariants() {
                return Err(TestCaseError::fail(format!("after {op:?}: {e}")));
            }
            let mut rang_now: Vec<AgentId> = Vec::new();
            for act in a.drain_actions() {
                match act {
                    Action::AgentState { agent, state, extension, at_ms } => {
                        prop_assert_eq!(at_ms, now);
                        let before = reported.insert(agent, (state, extension.clone()));
                        let before = before.unwrap_or((AgentState::LoggedOut, None));
                        prop_assert_ne!(before, (state, extension), "a repeated report for {:?}", agent);
                    }
                    Action::RingAgent { agent, .. } | Action::OfferCallback { agent, .. } => {
                        prop_assert!(!rang_now.contains(&agent), "{:?} rung twice at once", agent);
                        prop_assert_eq!(reported[&agent].0, AgentState::Ringing);
                        rang_now.push(agent);
                    }
                    Action::StopRinging { agent, .. } => {
                        prop_assert_eq!(reported[&agent].0, AgentState::Ringing);
                        rang_now.retain(|x| *x != agent);
                    }
                    _ => {}
                }
            }
            for g in 0..4u16 {
                let id = AgentId(g);
                let st = a.agent_state(id);
                let (state, ext) = reported.get(&id).cloned().unwrap_or((AgentState::LoggedOut, None));
                prop_assert_eq!(state, st);
                prop_assert_eq!(ext, a.agent(id).unwrap().extension);
            }
            if let Op::Tick(_) = op {
                prop_assert!(a.poll_timeout().is_none_or(|t| t > now), "a timer is overdue");
            }
        }
    }
}
