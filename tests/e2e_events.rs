//! The one event stream: every call, agent and queue transition is published exactly once, in
//! order, with sequence numbers without gaps, and the store's queue and agent rows are the
//! events' projections.

mod support;

use cardpbx::callcenter::acd::AgentState;
use cardpbx::pbx::events::{EventBody, PbxEvent};
use cardpbx::pbx::CallState;
use cardpbx::store::{AgentEventKind, QueueEventKind, Record};
use cardpbx_sim::EndpointId;
use support::Rig;

const CONFIG: &str = r#"
[system]
name = "e2e-events"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 3
fxo_ports = 0
e1_spans = 1
  [card.sim]
  seed = 9
  clock = "virtual"

[[extension]]
number = "2001"
port = "sim0/fxs1"
[[extension]]
number = "2002"
port = "sim0/fxs2"
[[extension]]
number = "2003"
port = "sim0/fxs3"

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2003"

[[queue]]
number = "600"
name = "sales"
wrapup_s = 2

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[inbound]]
dnis = ["5000"]
destination = "queue:sales"
"#;

/// The events of call `call`, as (event name, state) pairs.
fn call_story(events: &[PbxEvent], call: u64) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::CallStarted { call: c, .. } if *c == call => Some("started".to_string()),
            EventBody::CallState { call: c, state, .. } if *c == call => {
                Some(format!("{state:?}").to_lowercase())
            }
            EventBody::CallEnded { call: c, cause, .. } if *c == call => {
                Some(format!("ended:{cause}"))
            }
            _ => None,
        })
        .collect()
}

fn assert_no_gaps(events: &[PbxEvent]) {
    for w in events.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "sequence numbers without gaps: {w:?}");
        assert!(w[1].ts_ms >= w[0].ts_ms, "time never goes back: {w:?}");
    }
}

#[test]
fn an_internal_call_is_started_rings_connects_and_ends_once_each() {
    let mut r = Rig::new(CONFIG, |_| {});
    r.run(500);
    let _ = r.events();
    r.lift(1);
    r.phone(1).dial("2002").unwrap();
    r.until(5000, "2002 rings", |s| s.card().phone(2).unwrap().is_ringing());
    r.phone(2).answer();
    r.run(300);
    r.assert_talking(EndpointId::Phone(1), EndpointId::Phone(2), 1000);
    r.hang_up(1);
    r.run(200);
    let ev = r.events();
    assert_no_gaps(&ev);
    let call = ev
        .iter()
        .find_map(|e| match &e.body {
            EventBody::CallStarted { call, from, line, .. } => {
                assert_eq!((from.as_str(), line.as_str()), ("2001", "sim0/fxs1"));
                Some(*call)
            }
            _ => None,
        })
        .expect("call_started");
    assert_eq!(call_story(&ev, call), ["started", "ringing", "connected", "ended:normal_clearing"]);
    let connected = ev
        .iter()
        .find_map(|e| match &e.body {
            EventBody::CallState { state: CallState::Connected, to, answered_by, .. } => {
                Some((to.clone(), answered_by.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(connected, ("2002".to_string(), Some("sim0/fxs2".to_string())));
    // The JSON shape consumers see.
    let json = serde_json::to_value(&ev[0]).unwrap();
    assert_eq!(json["event"], "call_started");
    assert_eq!(json["seq"], ev[0].seq);
    assert_eq!(json["data"]["direction"], "internal");
}

#[test]
fn a_queue_call_gives_one_event_per_agent_and_queue_transition_and_the_store_rows_match() {
    let mut r = Rig::new(CONFIG, |sc| sc.phone.auto_answer_ms = Some(1000));
    r.wait_pri_up();
    r.login(1, "101", "1234");
    let (h, ts) = r.pri_call_answered("0301234567", "5000");
    r.wait_agent("101", AgentState::OnCall, 5000);
    r.run(300);
    r.assert_talking(EndpointId::Phone(1), EndpointId::Bearer { span: 1, ts }, 1000);
    assert!(r.p.card_mut().pri_hang_up(1, h));
    r.hang_up(1);
    r.wait_agent("101", AgentState::WrapUp, 3000);
    r.wait_agent("101", AgentState::Ready, 4000);
    r.run(200);
    let ev = r.events();
    assert_no_gaps(&ev);
    // The agent's story, once each: ringing, talk start, talk end, wrap-up, ready.
    let agent: Vec<AgentEventKind> = ev
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Agent(a) if a.agent == "101" => Some(a.event.clone()),
            _ => None,
        })
        .collect();
    let after_login: Vec<_> =
        agent.iter().skip_while(|k| !matches!(k, AgentEventKind::Ringing)).cloned().collect();
    assert_eq!(
        after_login,
        [
            AgentEventKind::Ringing,
            AgentEventKind::TalkStart,
            AgentEventKind::TalkEnd,
            AgentEventKind::WrapupStart,
            AgentEventKind::WrapupEnd,
            AgentEventKind::Ready
        ],
        "{agent:?}"
    );
    let queue: Vec<QueueEventKind> = ev
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Queue(q) => Some(q.event),
            _ => None,
        })
        .collect();
    assert_eq!(queue, [QueueEventKind::Enter, QueueEventKind::Answer]);
    // The trunk call: started, connected (answered into the queue), ended by the caller.
    let call = ev
        .iter()
        .find_map(|e| match &e.body {
            EventBody::CallStarted { call, from, .. } if from == "0301234567" => Some(*call),
            _ => None,
        })
        .expect("the trunk call started");
    let story = call_story(&ev, call);
    assert_eq!(story.first().map(String::as_str), Some("started"));
    assert_eq!(story.last().map(String::as_str), Some("ended:normal_clearing"), "{story:?}");
    assert_eq!(story.iter().filter(|s| *s == "connected").count(), 1, "{story:?}");
    // The store rows are exactly the events' projections, in the same order.
    let projected: Vec<Record> = ev.iter().filter_map(|e| e.body.record()).collect();
    let stored: Vec<&Record> = r.records.iter().filter(|x| !matches!(x, Record::Cdr(_))).collect();
    let tail = &stored[stored.len() - projected.len()..];
    assert_eq!(tail.iter().copied().cloned().collect::<Vec<_>>(), projected);
}
