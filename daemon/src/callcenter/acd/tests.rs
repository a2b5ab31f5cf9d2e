//! ACD unit tests on hand-made states.

use super::*;
use crate::config::callcenter::{AgentConfig, QueueConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Cc {
    #[serde(default)]
    queue: Vec<QueueConfig>,
    #[serde(default)]
    agent: Vec<AgentConfig>,
}

/// An engine from `[[queue]]`/`[[agent]]` TOML (checked like a real configuration).
pub(super) fn acd(text: &str) -> Acd {
    let cc: Cc = toml::from_str(text).unwrap();
    let acd = Acd::new(&cc.queue, &cc.agent);
    acd.check_invariants().unwrap();
    acd
}

/// Agents 1..=n (`10k`, PIN 1234) in queue 600 with the given strategy, logged in on
/// extensions `200k` at time 0.
fn simple(strategy: &str, n: usize, extra_queue: &str) -> Acd {
    let mut t = format!(
        "[[queue]]\nnumber = \"600\"\nname = \"q\"\nstrategy = \"{strategy}\"\n{extra_queue}\n"
    );
    for k in 1..=n {
        t += &format!(
            "[[agent]]\nid = \"10{k}\"\npin = \"1234\"\nname = \"A{k}\"\nqueues = [\"600\"]\n"
        );
    }
    let mut a = acd(&t);
    for k in 1..=n {
        a.login(&format!("10{k}"), "1234", &format!("200{k}"), 0).unwrap();
    }
    a.drain_actions();
    a
}

fn ag(k: u16) -> AgentId {
    AgentId(k - 1)
}

const Q: QueueId = QueueId(0);

fn actions(a: &mut Acd) -> Vec<Action> {
    let v: Vec<Action> = a.drain_actions().collect();
    a.check_invariants().unwrap();
    v
}

/// The agents rung by these actions, in order.
fn rung(v: &[Action]) -> Vec<(CallId, AgentId)> {
    v.iter()
        .filter_map(|x| match x {
            Action::RingAgent { call, agent, .. } => Some((*call, *agent)),
            _ => None,
        })
        .collect()
}

fn events(v: &[Action]) -> Vec<QueueEventKind> {
    v.iter()
        .filter_map(|x| match x {
            Action::QueueEvent(e) => Some(e.kind.clone()),
            _ => None,
        })
        .collect()
}

/// Offer call `c`, answer it with whoever rings, and end it `talk` ms later; returns the agent.
fn serve(a: &mut Acd, c: CallId, now: Millis, talk: u64) -> AgentId {
    a.call_arrives(now, Q, Arrival::new(c, "555")).unwrap();
    let r = rung(&actions(a));
    assert_eq!(r.len(), 1, "one agent rings for call {c}");
    let who = r[0].1;
    a.agent_answered(who, now + 1000).unwrap();
    a.call_ended(who, now + 1000 + talk).unwrap();
    actions(a);
    who
}

#[test]
fn longest_idle_picks_the_agent_ready_longest() {
    let mut a = simple("longest_idle", 3, "");
    a.set_not_ready(ag(1), ReasonCode(1), 10).unwrap();
    a.set_not_ready(ag(2), ReasonCode(1), 10).unwrap();
    a.set_not_ready(ag(3), ReasonCode(1), 10).unwrap();
    a.set_ready(ag(2), 100).unwrap();
    a.set_ready(ag(3), 50).unwrap();
    a.set_ready(ag(1), 200).unwrap();
    actions(&mut a);
    a.call_arrives(300, Q, Arrival::new(1, "555")).unwrap();
    let v = actions(&mut a);
    assert_eq!(rung(&v), vec![(1, ag(3))]);
    assert!(v.contains(&Action::RingAgent {
        call: 1,
        queue: Q,
        agent: ag(3),
        extension: "2003".into()
    }));
    a.call_arrives(300, Q, Arrival::new(2, "555")).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(2, ag(2))]);
}

#[test]
fn round_robin_takes_members_in_turn() {
    let mut a = simple("round_robin", 3, "");
    let order: Vec<AgentId> = (1..=5).map(|c| serve(&mut a, c, c * 100_000, 10_000)).collect();
    assert_eq!(order, vec![ag(1), ag(2), ag(3), ag(1), ag(2)]);
    // An agent who is not ready is skipped, and the turn continues after the one rung.
    a.set_not_ready(ag(3), ReasonCode(2), 900_000).unwrap();
    assert_eq!(serve(&mut a, 6, 1_000_000, 1), ag(1));
}

#[test]
fn fewest_calls_prefers_the_least_used_agent() {
    let mut a = simple("fewest_calls", 2, "");
    // Agent 1 is idle longest (both logged in at 0) and takes the first call.
    assert_eq!(serve(&mut a, 1, 1000, 5000), ag(1));
    // Now agent 1 has been idle since 7000 and agent 2 since 0... make agent 2 the freshest.
    a.set_not_ready(ag(2), ReasonCode(1), 8000).unwrap();
    a.set_ready(ag(2), 9000).unwrap();
    // Longest idle would pick agent 1; fewest calls picks agent 2 (0 calls).
    assert_eq!(serve(&mut a, 2, 10_000, 5000), ag(2));
    assert_eq!(a.agent(ag(2)).unwrap().calls_answered, 1);
}

#[test]
fn least_talk_time_prefers_the_agent_who_talked_least() {
    let mut a = simple("least_talk_time", 2, "");
    assert_eq!(serve(&mut a, 1, 1000, 60_000), ag(1));
    assert_eq!(serve(&mut a, 2, 100_000, 5_000), ag(2));
    // Agent 1 is idle longer (since 62_000) but talked 60 s; agent 2 talked 5 s.
    assert_eq!(serve(&mut a, 3, 200_000, 1_000), ag(2));
    assert_eq!(a.agent(ag(1)).unwrap().talk_ms, 60_000);
}

#[test]
fn ring_all_rings_everyone_and_the_first_to_answer_wins() {
    let mut a = simple("ring_all", 3, "");
    a.set_not_ready(ag(3), ReasonCode(1), 0).unwrap();
    a.call_arrives(1000, Q, Arrival::new(9, "555")).unwrap();
    let v = actions(&mut a);
    assert_eq!(rung(&v), vec![(9, ag(1)), (9, ag(2))]);
    a.agent_answered(ag(2), 3000).unwrap();
    let v = actions(&mut a);
    assert!(v.contains(&Action::StopRinging {
        agent: ag(1),
        extension: "2001".into(),
        work: Work::Call(9)
    }));
    assert!(v.contains(&Action::Connect { call: 9, agent: ag(2), extension: "2002".into() }));
    assert_eq!(a.agent_state(ag(1)), AgentState::Ready, "the others are not penalised");
    assert_eq!(a.agent_state(ag(2)), AgentState::OnCall);
    assert!(events(&v).contains(&QueueEventKind::Answer { call: 9, agent: ag(2), wait_ms: 2000 }));
    assert_eq!(a.agent_answered(ag(1), 3000), Err(AcdError::NotRinging));
}

const SKILLS: &str = r#"
[[queue]]
number = "600"
name = "support"
strategy = "skills"
skills = { english = 3 }

[[queue.priority]]
callers = ["13900000001"]
prefixes = ["0999"]
priority = 10

[[agent]]
id = "101"
pin = "1234"
name = "Novice"
skills = { english = 2, french = 9 }
queues = ["600"]

[[agent]]
id = "102"
pin = "1234"
name = "Good"
skills = { english = 5 }
queues = ["600"]

[[agent]]
id = "103"
pin = "1234"
name = "Expert"
skills = { english = 9, french = 4 }
queues = ["600"]
"#;

fn skills_acd() -> Acd {
    let mut a = acd(SKILLS);
    for k in 1..=3 {
        a.login(&format!("10{k}"), "1234", &format!("200{k}"), 0).unwrap();
    }
    actions(&mut a);
    a
}

#[test]
fn skills_pick_the_most_skilled_qualified_agent() {
    let mut a = skills_acd();
    a.call_arrives(10, Q, Arrival::new(1, "555")).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(3))], "expert: english 9");
    a.call_arrives(20, Q, Arrival::new(2, "555")).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(2, ag(2))], "good: english 5");
    // The novice lacks english >= 3 and never gets a call of this queue.
    a.call_arrives(30, Q, Arrival::new(3, "555")).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![]);
    assert_eq!(a.position(3), Some((Q, 3)), "behind the two calls still ringing");
}

#[test]
fn call_skills_from_the_ivr_narrow_the_choice() {
    let mut a = skills_acd();
    let mut arr = Arrival::new(1, "555");
    arr.skills = vec![("french".into(), 3)];
    a.call_arrives(10, Q, arr).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(3))]);
    let mut arr = Arrival::new(2, "555");
    arr.skills = vec![("french".into(), 5)];
    a.call_arrives(10, Q, arr).unwrap();
    // Only the novice speaks french 5+, but lacks the queue's english 3.
    assert_eq!(rung(&actions(&mut a)), vec![]);
    // A skill nobody has waits rather than ringing anyone.
    let mut arr = Arrival::new(3, "555");
    arr.skills = vec![("klingon".into(), 1)];
    a.call_arrives(10, Q, arr).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![]);
}

#[test]
fn vip_and_priority_callers_jump_the_queue() {
    let mut a = skills_acd();
    for k in 1..=3 {
        a.set_not_ready(ag(k), ReasonCode(1), 0).unwrap();
    }
    a.call_arrives(100, Q, Arrival::new(1, "555")).unwrap();
    a.call_arrives(200, Q, Arrival::new(2, "556")).unwrap();
    a.call_arrives(300, Q, Arrival::new(3, "09991234")).unwrap(); // prefix rule: 10
    let mut repair = Arrival::new(4, "557");
    repair.priority = 20; // from routing
    a.call_arrives(400, Q, repair).unwrap();
    a.call_arrives(500, Q, Arrival::new(5, "13900000001")).unwrap(); // exact: 10
    let v = actions(&mut a);
    let entered: Vec<(CallId, u32, u8)> = events(&v)
        .into_iter()
        .filter_map(|e| match e {
            QueueEventKind::Enter { call, position, priority } => Some((call, position, priority)),
            _ => None,
        })
        .collect();
    assert_eq!(entered, vec![(1, 1, 0), (2, 2, 0), (3, 1, 10), (4, 1, 20), (5, 3, 10)]);
    let order: Vec<u32> = (1..=5).map(|c| a.position(c).unwrap().1).collect();
    assert_eq!(order, vec![4, 5, 2, 1, 3]);
    a.set_ready(ag(2), 600).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(4, ag(2))]);
    a.set_ready(ag(3), 600).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(3, ag(3))]);
}

#[test]
fn ring_timeout_moves_on_and_sets_the_agent_not_ready() {
    let mut a = simple("longest_idle", 2, "ring_timeout_s = 15");
    a.call_arrives(1000, Q, Arrival::new(1, "555")).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(1))]);
    assert_eq!(a.poll_timeout(), Some(16_000));
    a.tick(15_999);
    assert!(actions(&mut a).is_empty(), "nothing before the timeout");
    a.tick(16_000);
    let v = actions(&mut a);
    assert!(v.contains(&Action::StopRinging {
        agent: ag(1),
        extension: "2001".into(),
        work: Work::Call(1)
    }));
    assert!(v.contains(&Action::AgentState {
        agent: ag(1),
        state: AgentState::NotReady(ReasonCode::NO_ANSWER),
        extension: Some("2001".into()),
        at_ms: 16_000
    }));
    assert!(events(&v).contains(&QueueEventKind::RingNoAnswer { call: 1, agent: ag(1) }));
    assert_eq!(rung(&v), vec![(1, ag(2))]);
    // The phone of agent 2 reports it cannot ring (off hook): the call waits, nobody is left.
    a.agent_no_answer(ag(2), 17_000).unwrap();
    let v = actions(&mut a);
    assert_eq!(a.agent_state(ag(2)), AgentState::NotReady(ReasonCode::NO_ANSWER));
    assert_eq!(rung(&v), vec![]);
    assert_eq!(a.position(1), Some((Q, 1)));
    // Agent 1 comes back and gets the call.
    a.set_ready(ag(1), 20_000).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(1))]);
}

#[test]
fn wrap_up_lasts_the_queue_time_then_ready() {
    let mut a = simple("longest_idle", 1, "wrapup_s = 30");
    a.call_arrives(0, Q, Arrival::new(1, "555")).unwrap();
    a.agent_answered(ag(1), 2000).unwrap();
    a.call_ended(ag(1), 62_000).unwrap();
    assert_eq!(a.agent_state(ag(1)), AgentState::WrapUp);
    a.call_arrives(63_000, Q, Arrival::new(2, "555")).unwrap();
    actions(&mut a);
    assert_eq!(a.poll_timeout(), Some(92_000));
    a.tick(91_999);
    assert_eq!(rung(&actions(&mut a)), vec![], "no call during wrap-up");
    a.tick(92_000);
    let v = actions(&mut a);
    assert!(v.contains(&Action::AgentState {
        agent: ag(1),
        state: AgentState::Ready,
        extension: Some("2001".into()),
        at_ms: 92_000
    }));
    assert_eq!(rung(&v), vec![(2, ag(1))]);
    // Handling time = talk 60 s + wrap-up 30 s.
    assert_eq!(a.queue(Q, 92_000).unwrap().avg_handle_ms, Some(90_000));
}

#[test]
fn ready_ends_wrap_up_early_and_not_ready_waits_for_the_end() {
    let mut a = simple("longest_idle", 1, "wrapup_s = 30");
    a.call_arrives(0, Q, Arrival::new(1, "555")).unwrap();
    a.agent_answered(ag(1), 0).unwrap();
    a.call_ended(ag(1), 10_000).unwrap();
    a.set_ready(ag(1), 12_000).unwrap();
    assert_eq!(a.agent_state(ag(1)), AgentState::Ready);
    a.call_arrives(20_000, Q, Arrival::new(2, "555")).unwrap();
    a.agent_answered(ag(1), 20_000).unwrap();
    a.set_not_ready(ag(1), ReasonCode(7), 25_000).unwrap();
    assert_eq!(a.agent_state(ag(1)), AgentState::OnCall);
    a.call_abandoned(2, 30_000).unwrap(); // caller hangs up during the talk
    assert_eq!(a.agent_state(ag(1)), AgentState::WrapUp);
    a.tick(60_000);
    assert_eq!(a.agent_state(ag(1)), AgentState::NotReady(ReasonCode(7)));
    actions(&mut a);
}

#[test]
fn max_wait_overflows_to_the_next_queue() {
    let mut a = acd(r#"
[[queue]]
number = "600"
name = "first"
max_wait_s = 60
overflow = "queue:601"

[[queue]]
number = "601"
name = "second"
max_wait_s = 30
overflow = "voicemail"

[[agent]]
id = "101"
pin = "1234"
name = "A"
queues = ["600"]
"#);
    a.login("101", "1234", "2001", 0).unwrap();
    a.call_arrives(1000, Q, Arrival::new(1, "555")).unwrap();
    actions(&mut a);
    // The agent's phone rings for the whole minute (ring timeout 20 s, then not ready).
    a.tick(21_000);
    a.set_ready(ag(1), 50_000).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(1))]);
    assert_eq!(a.poll_timeout(), Some(61_000));
    a.tick(61_000);
    let v = actions(&mut a);
    let second = QueueId(1);
    assert!(v.contains(&Action::StopRinging {
        agent: ag(1),
        extension: "2001".into(),
        work: Work::Call(1)
    }));
    assert_eq!(a.agent_state(ag(1)), AgentState::Ready, "not penalised for the timeout");
    assert!(v.contains(&Action::Overflow {
        call: 1,
        queue: Q,
        target: OverflowTarget::Queue("601".into())
    }));
    assert!(events(&v).contains(&QueueEventKind::Timeout {
        call: 1,
        wait_ms: 60_000,
        target: OverflowTarget::Queue("601".into())
    }));
    assert!(v.contains(&Action::QueueEvent(QueueEvent {
        at_ms: 61_000,
        queue: second,
        kind: QueueEventKind::Enter { call: 1, position: 1, priority: 0 }
    })));
    assert_eq!(a.position(1), Some((second, 1)));
    // The agent is not a member of 601: 30 s later the call goes to 601's mailbox.
    a.tick(91_000);
    let v = actions(&mut a);
    assert!(v.contains(&Action::Overflow {
        call: 1,
        queue: second,
        target: OverflowTarget::Voicemail(None)
    }));
    assert_eq!(a.position(1), None);
    assert_eq!(a.call_abandoned(1, 92_000), Err(AcdError::UnknownCall(1)));
}

#[test]
fn max_length_overflows_at_once() {
    let mut a = simple("longest_idle", 1, "max_length = 2\noverflow = \"callback\"");
    a.set_not_ready(ag(1), ReasonCode(1), 0).unwrap();
    for c in 1..=3 {
        a.call_arrives(c * 10, Q, Arrival::new(c, "555")).unwrap();
    }
    let v = actions(&mut a);
    assert!(v.contains(&Action::Overflow { call: 3, queue: Q, target: OverflowTarget::Callback }));
    assert!(events(&v)
        .contains(&QueueEventKind::Overflow { call: 3, target: OverflowTarget::Callback }));
    assert!(!events(&v).iter().any(|e| matches!(e, QueueEventKind::Enter { call: 3, .. })));
    assert_eq!(a.queue(Q, 40).unwrap().waiting, 2);
    // The caller leaves; the queue has room again.
    a.call_abandoned(1, 50).unwrap();
    let v = actions(&mut a);
    assert!(events(&v).contains(&QueueEventKind::Abandon { call: 1, position: 1, wait_ms: 40 }));
    a.call_arrives(60, Q, Arrival::new(4, "555")).unwrap();
    assert_eq!(a.position(4), Some((Q, 2)));
}

#[test]
fn announcements_give_position_and_estimated_wait_at_intervals() {
    let mut a = simple(
        "longest_idle",
        2,
        "announce_position = true\nannounce_wait = true\nannounce_interval_s = 30",
    );
    // Build a handling-time history: 50 s talk each (no wrap-up).
    assert_eq!(serve(&mut a, 100, 0, 50_000), ag(1));
    assert_eq!(serve(&mut a, 101, 60_000, 50_000), ag(2));
    assert_eq!(a.queue(Q, 0).unwrap().avg_handle_ms, Some(50_000));
    // Both agents busy.
    a.call_arrives(200_000, Q, Arrival::new(1, "555")).unwrap();
    a.call_arrives(200_000, Q, Arrival::new(2, "555")).unwrap();
    a.agent_answered(ag(1), 200_000).unwrap();
    a.agent_answered(ag(2), 200_000).unwrap();
    actions(&mut a);
    a.call_arrives(210_000, Q, Arrival::new(3, "555")).unwrap();
    a.call_arrives(211_000, Q, Arrival::new(4, "555")).unwrap();
    let v = actions(&mut a);
    // On entry: position 1 → 1 × 50 s / 2 agents = 25 s; position 2 → 50 s.
    assert!(v.contains(&Action::Announce {
        call: 3,
        queue: Q,
        position: Some(1),
        ewt_s: Some(25)
    }));
    assert!(v.contains(&Action::Announce {
        call: 4,
        queue: Q,
        position: Some(2),
        ewt_s: Some(50)
    }));
    assert_eq!(a.poll_timeout(), Some(240_000));
    a.tick(239_999);
    assert!(actions(&mut a).is_empty());
    a.tick(240_000);
    let v = actions(&mut a);
    assert_eq!(v, vec![Action::Announce { call: 3, queue: Q, position: Some(1), ewt_s: Some(25) }]);
    // Call 3 leaves; call 4 moves up.
    a.call_abandoned(3, 240_500).unwrap();
    actions(&mut a);
    a.tick(241_000);
    let v = actions(&mut a);
    assert_eq!(v, vec![Action::Announce { call: 4, queue: Q, position: Some(1), ewt_s: Some(25) }]);
    // Both agents go not ready after their calls: nobody is staffed, no estimate is given.
    a.set_not_ready(ag(1), ReasonCode(1), 242_000).unwrap();
    a.set_not_ready(ag(2), ReasonCode(1), 242_000).unwrap();
    a.call_ended(ag(1), 243_000).unwrap();
    a.call_ended(ag(2), 243_000).unwrap();
    assert_eq!(a.queue(Q, 243_000).unwrap().staffed, 0);
    a.tick(271_000);
    let v: Vec<Action> =
        actions(&mut a).into_iter().filter(|x| matches!(x, Action::Announce { .. })).collect();
    assert_eq!(v, vec![Action::Announce { call: 4, queue: Q, position: Some(1), ewt_s: None }]);
}

#[test]
fn callbacks_are_offered_in_order_after_live_calls() {
    let mut a = simple("longest_idle", 1, "");
    a.set_not_ready(ag(1), ReasonCode(1), 0).unwrap();
    let cb1 = a.request_callback(Q, "13800000001", 10).unwrap();
    let cb2 = a.request_callback(Q, "13800000002", 20).unwrap();
    a.call_arrives(30, Q, Arrival::new(7, "555")).unwrap();
    actions(&mut a);
    assert_eq!(a.queue(Q, 30).unwrap().callbacks, 2);
    // The live caller goes first.
    a.set_ready(ag(1), 40).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(7, ag(1))]);
    a.agent_answered(ag(1), 50).unwrap();
    a.call_ended(ag(1), 60).unwrap();
    let v = actions(&mut a);
    assert!(v.contains(&Action::OfferCallback {
        callback: cb1,
        queue: Q,
        agent: ag(1),
        extension: "2001".into(),
        number: "13800000001".into()
    }));
    a.agent_answered(ag(1), 70).unwrap();
    let v = actions(&mut a);
    assert!(v.contains(&Action::DialOut {
        callback: cb1,
        agent: ag(1),
        extension: "2001".into(),
        number: "13800000001".into()
    }));
    assert!(events(&v).contains(&QueueEventKind::CallbackAccepted {
        callback: cb1,
        agent: ag(1),
        wait_ms: 60
    }));
    a.call_ended(ag(1), 80).unwrap();
    let v = actions(&mut a);
    assert!(events(&v).contains(&QueueEventKind::CallbackDone { callback: cb1, agent: ag(1) }));
    assert!(v
        .iter()
        .any(|x| matches!(x, Action::OfferCallback { callback, .. } if *callback == cb2)));
    assert_eq!(a.queue(Q, 80).unwrap().callbacks, 1);
}

#[test]
fn unreached_callbacks_go_to_the_back_and_are_dropped_after_three_tries() {
    let mut a = simple("longest_idle", 1, "");
    a.set_not_ready(ag(1), ReasonCode(1), 0).unwrap();
    let cb1 = a.request_callback(Q, "1", 0).unwrap();
    let cb2 = a.request_callback(Q, "2", 0).unwrap();
    let mut offered = Vec::new();
    a.set_ready(ag(1), 10).unwrap();
    let mut t = 10;
    for _ in 0..5 {
        let v = actions(&mut a);
        let Some(cb) = v.iter().find_map(|x| match x {
            Action::OfferCallback { callback, .. } => Some(*callback),
            _ => None,
        }) else {
            break;
        };
        offered.push(cb);
        t += 10;
        a.agent_answered(ag(1), t).unwrap();
        if cb == cb1 {
            a.callback_unreached(ag(1), t + 5).unwrap();
        } else {
            a.call_ended(ag(1), t + 5).unwrap();
        }
    }
    assert_eq!(offered, vec![cb1, cb2, cb1, cb1]);
    assert_eq!(a.queue(Q, t).unwrap().callbacks, 0);
}

#[test]
fn declined_callback_offer_moves_to_the_next_agent() {
    let mut a = simple("longest_idle", 2, "");
    let cb = a.request_callback(Q, "1", 100).unwrap();
    let v = actions(&mut a);
    assert!(v.iter().any(|x| matches!(x, Action::OfferCallback { agent, .. } if *agent == ag(1))));
    a.tick(20_100);
    let v = actions(&mut a);
    assert!(v.contains(&Action::StopRinging {
        agent: ag(1),
        extension: "2001".into(),
        work: Work::Callback(cb)
    }));
    assert_eq!(a.agent_state(ag(1)), AgentState::NotReady(ReasonCode::NO_ANSWER));
    assert!(v.iter().any(|x| matches!(x, Action::OfferCallback { agent, .. } if *agent == ag(2))));
}

#[test]
fn free_seating_login_with_pin() {
    let mut a = simple("longest_idle", 2, "");
    a.logout(ag(1), 0).unwrap();
    a.logout(ag(2), 0).unwrap();
    assert_eq!(a.login("999", "1234", "2001", 0), Err(LoginError::UnknownAgent));
    assert_eq!(a.login("101", "0000", "2001", 0), Err(LoginError::WrongPin { failures: 1 }));
    assert_eq!(a.agent_state(ag(1)), AgentState::LoggedOut);
    assert_eq!(a.agent(ag(1)).unwrap().pin_failures, 1);
    assert_eq!(a.login("101", "1234", "2005", 10), Ok(ag(1)));
    assert_eq!(a.agent_at("2005"), Some(ag(1)));
    // Another agent cannot take the same phone.
    assert_eq!(a.login("102", "1234", "2005", 20), Err(LoginError::ExtensionTaken(ag(1))));
    a.login("102", "1234", "2006", 20).unwrap();
    a.call_arrives(30, Q, Arrival::new(1, "555")).unwrap();
    let v = actions(&mut a);
    assert!(v.contains(&Action::RingAgent {
        call: 1,
        queue: Q,
        agent: ag(1),
        extension: "2005".into()
    }));
    // Logging out while rung: the call moves to the other agent; the phone is free again.
    a.logout(ag(1), 40).unwrap();
    let v = actions(&mut a);
    assert!(v.contains(&Action::AgentState {
        agent: ag(1),
        state: AgentState::LoggedOut,
        extension: None,
        at_ms: 40
    }));
    assert_eq!(rung(&v), vec![(1, ag(2))]);
    assert_eq!(a.agent_at("2005"), None);
    assert_eq!(a.logout(ag(1), 50), Err(AcdError::NotLoggedIn));
    a.agent_answered(ag(2), 50).unwrap();
    assert_eq!(a.logout(ag(2), 60), Err(AcdError::Busy));
    // Moving desks while idle.
    a.login("101", "1234", "2001", 70).unwrap();
    a.login("101", "1234", "2003", 80).unwrap();
    assert_eq!(a.agent_at("2001"), None);
    assert_eq!(a.agent(ag(1)).unwrap().extension.as_deref(), Some("2003"));
    assert_eq!(a.login("102", "1234", "2004", 90), Err(LoginError::Busy));
    actions(&mut a);
}

#[test]
fn repeated_wrong_pins_lock_the_login() {
    let mut a = simple("longest_idle", 1, "");
    a.logout(ag(1), 0).unwrap();
    for k in 1..=MAX_PIN_FAILURES {
        assert_eq!(a.login("101", "9999", "2001", 100), Err(LoginError::WrongPin { failures: k }));
    }
    let until = 100 + PIN_LOCK_MS;
    assert_eq!(a.login("101", "1234", "2001", 200), Err(LoginError::Locked { until_ms: until }));
    assert_eq!(a.agent(ag(1)).unwrap().pin_failures, MAX_PIN_FAILURES);
    assert_eq!(a.login("101", "1234", "2001", until), Ok(ag(1)));
}

#[test]
fn direct_calls_keep_the_agent_out_of_the_queue() {
    let mut a = simple("longest_idle", 1, "wrapup_s = 30");
    a.agent_direct_call(ag(1), 50, 0).unwrap();
    a.call_arrives(10, Q, Arrival::new(1, "555")).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![]);
    assert_eq!(a.call_arrives(10, Q, Arrival::new(50, "1")), Err(AcdError::DuplicateCall(50)));
    a.call_ended(ag(1), 100).unwrap();
    // No wrap-up after a direct call: the waiting call rings at once.
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(1))]);
}

const SUPERVISION: &str = r#"
[[queue]]
number = "600"
name = "sales"

[[queue]]
number = "601"
name = "service"

[[agent]]
id = "101"
pin = "1234"
name = "Sales agent"
queues = ["600"]

[[agent]]
id = "102"
pin = "1234"
name = "Service agent"
queues = ["601"]

[[agent]]
id = "109"
pin = "1234"
name = "Sales supervisor"
supervisor_of = ["600"]
"#;

#[test]
fn supervisors_act_only_on_their_queues() {
    let mut a = acd(SUPERVISION);
    let sup = ag(3);
    assert_eq!(
        a.supervise(sup, ag(1), SupervisorOp::Listen, 0),
        Err(SuperviseError::SupervisorNotLoggedIn)
    );
    a.login("101", "1234", "2001", 0).unwrap();
    a.login("102", "1234", "2002", 0).unwrap();
    a.login("109", "1234", "2009", 0).unwrap();
    assert_eq!(a.supervise(sup, ag(1), SupervisorOp::Listen, 0), Err(SuperviseError::NoCall));
    a.call_arrives(0, QueueId(0), Arrival::new(1, "555")).unwrap();
    a.call_arrives(0, QueueId(1), Arrival::new(2, "556")).unwrap();
    a.agent_answered(ag(1), 10).unwrap();
    a.agent_answered(ag(2), 10).unwrap();
    actions(&mut a);
    assert!(a.may_supervise(sup, ag(1)));
    assert!(!a.may_supervise(sup, ag(2)));
    assert!(!a.may_supervise(ag(1), sup));
    assert_eq!(a.supervise(sup, ag(2), SupervisorOp::Barge, 20), Err(SuperviseError::NotPermitted));
    assert_eq!(
        a.supervise(ag(1), ag(2), SupervisorOp::Listen, 20),
        Err(SuperviseError::SupervisorBusy)
    );
    assert_eq!(
        a.supervise(sup, sup, SupervisorOp::Listen, 20),
        Err(SuperviseError::SelfSupervision)
    );
    assert_eq!(
        a.supervise(sup, ag(1), SupervisorOp::ForceTransfer(String::new()), 20),
        Err(SuperviseError::NoTarget)
    );
    a.supervise(sup, ag(1), SupervisorOp::Whisper, 20).unwrap();
    let v = actions(&mut a);
    assert_eq!(
        v,
        vec![
            Action::AgentState {
                agent: sup,
                state: AgentState::NotReady(ReasonCode::SUPERVISING),
                extension: Some("2009".into()),
                at_ms: 20
            },
            Action::Supervise(SupervisorAction {
                supervisor: sup,
                supervisor_extension: "2009".into(),
                agent: ag(1),
                agent_extension: "2001".into(),
                call: 1,
                callback: false,
                op: SupervisorOp::Whisper,
            })
        ]
    );
    a.supervise(sup, ag(1), SupervisorOp::ForceTransfer("2002".into()), 30).unwrap();
    assert!(matches!(
        actions(&mut a).as_slice(),
        [Action::Supervise(SupervisorAction { op: SupervisorOp::ForceTransfer(t), .. })] if t == "2002"
    ));
}

#[test]
fn wrong_inputs_are_errors_not_panics() {
    let mut a = simple("longest_idle", 1, "");
    assert_eq!(a.agent_answered(ag(1), 0), Err(AcdError::NotRinging));
    assert_eq!(a.agent_no_answer(ag(1), 0), Err(AcdError::NotRinging));
    assert_eq!(a.call_ended(ag(1), 0), Err(AcdError::NotOnCall));
    assert_eq!(a.callback_unreached(ag(1), 0), Err(AcdError::NotOnCall));
    assert_eq!(a.call_ended(AgentId(7), 0), Err(AcdError::UnknownAgent));
    assert_eq!(a.call_abandoned(99, 0), Err(AcdError::UnknownCall(99)));
    assert_eq!(a.call_arrives(0, QueueId(3), Arrival::new(1, "5")), Err(AcdError::UnknownQueue));
    assert_eq!(a.request_callback(QueueId(3), "5", 0), Err(AcdError::UnknownQueue));
    a.call_arrives(0, Q, Arrival::new(1, "5")).unwrap();
    assert_eq!(a.call_arrives(0, Q, Arrival::new(1, "5")), Err(AcdError::DuplicateCall(1)));
    assert_eq!(a.set_ready(ag(1), 0), Err(AcdError::Busy));
    actions(&mut a);
}

#[test]
fn preferred_agent_is_tried_first_then_the_queue() {
    let mut a = simple("longest_idle", 3, "");
    let mut arr = Arrival::new(1, "555");
    arr.preferred = Some(ag(3));
    a.call_arrives(10, Q, arr.clone()).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(3))], "sticky agent, not the longest idle");
    // The preferred agent does not answer: the queue's strategy takes over.
    a.tick(20_010);
    assert_eq!(rung(&actions(&mut a)), vec![(1, ag(1))]);
    // A preferred agent who is busy is not waited for.
    a.agent_answered(ag(1), 20_020).unwrap();
    let mut arr = Arrival::new(2, "555");
    arr.preferred = Some(ag(1));
    a.call_arrives(20_030, Q, arr).unwrap();
    assert_eq!(rung(&actions(&mut a)), vec![(2, ag(2))]);
}

#[test]
fn an_unchecked_overflow_loop_ends_in_hangup() {
    // The configuration check refuses this circle; the engine still must not loop.
    let mut a = acd(r#"
[[queue]]
number = "600"
name = "a"
max_length = 1
overflow = "queue:601"

[[queue]]
number = "601"
name = "b"
max_length = 1
overflow = "queue:600"
"#);
    for c in 1..=3 {
        a.call_arrives(c, Q, Arrival::new(c, "555")).unwrap();
    }
    let v = actions(&mut a);
    let overflows: Vec<(QueueId, OverflowTarget)> = v
        .iter()
        .filter_map(|x| match x {
            Action::Overflow { call: 3, queue, target } => Some((*queue, target.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        overflows,
        vec![
            (QueueId(0), OverflowTarget::Queue("601".into())),
            (QueueId(1), OverflowTarget::Queue("600".into())),
            (QueueId(0), OverflowTarget::Hangup),
        ]
    );
    assert_eq!(a.position(3), None);
    assert_eq!(a.position(2), Some((QueueId(1), 1)));
}
