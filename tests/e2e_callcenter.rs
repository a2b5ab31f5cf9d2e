//! End-to-end call center on the simulator's virtual clock: inbound routing, an IVR menu driven
//! by the caller's DTMF, ACD queues with agents logged in by feature codes on simulated phones,
//! music on hold, overflow, ring-no-answer, schedules, blacklist and VIP, with every connected
//! call's audio checked by signatures and the queue, agent, IVR and CDR records fed to an
//! in-memory store whose reports must agree.

use cardpbx::callcenter::acd::AgentState;
use cardpbx::store::report::{self, ReportOptions};
use cardpbx::store::{QueueEventKind, Record};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::signature::BlockClass;
use cardpbx_sim::EndpointId;

/// The signatures the prompts play: endpoints no test call uses, so that a listener
/// recognises them.
const WELCOME_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 30 };
const MOH_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 31 };
const MSG_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 29 };
const POSITION_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 28 };
const ONE_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 27 };
const OTHER_WORD_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 26 };

const BASE: &str = r#"
[system]
name = "e2e-cc"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 1
e1_spans = 1
  [card.sim]
  seed = 5
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
[[extension]]
number = "2004"
port = "sim0/fxs4"

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2004"

[[trunk_group]]
name = "analog"
ports = ["sim0/fxo1"]
incoming = "2004"

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[agent]]
id = "102"
pin = "5678"
name = "Bob"
queues = ["600"]

[[ivr]]
name = "main"
prompt = "@welcome"
timeout_s = 5
choices = { 1 = "queue:sales" }
"#;

mod support;
use support::{local, tone_wav, Rig};

struct Cc {
    r: Rig,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Cc {
    type Target = Rig;
    fn deref(&self) -> &Rig {
        &self.r
    }
}

impl std::ops::DerefMut for Cc {
    fn deref_mut(&mut self) -> &mut Rig {
        &mut self.r
    }
}

/// A PBX with `BASE` plus `extra` (`@welcome`, `@moh`, `@msg` name the prompt files).
fn center(extra: &str, auto_answer_ms: Option<u32>) -> Cc {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{BASE}\n{extra}");
    // The card's signature plan: 4 phones, 1 CO line, 1 span.
    let plan = cardpbx_sim::signature::SignaturePlan::with_spans(4, 1, 1).unwrap();
    let file = |name: &str, sig: EndpointId, ms: u32| {
        let path = dir.path().join(name);
        tone_wav(&path, plan.signature(sig), ms);
        path.display().to_string()
    };
    // Recorded words for queue announcements: "position", the digits, "wait", "minutes".
    let words = dir.path().join("words");
    std::fs::create_dir(&words).unwrap();
    let mut word_files = vec![("position.wav".to_string(), POSITION_SIG, 1000)];
    word_files.extend((0..10).map(|d| {
        let sig = if d == 1 { ONE_SIG } else { OTHER_WORD_SIG };
        (format!("{d}.wav"), sig, 600)
    }));
    word_files.push(("wait.wav".into(), OTHER_WORD_SIG, 800));
    word_files.push(("minutes.wav".into(), OTHER_WORD_SIG, 800));
    for (name, sig, ms) in word_files {
        tone_wav(&words.join(name), plan.signature(sig), ms);
    }
    let text = text.replace("@words", &words.display().to_string());
    let text = text
        .replace("@welcome", &file("welcome.wav", WELCOME_SIG, 3000))
        .replace("@moh", &file("moh.wav", MOH_SIG, 1000))
        .replace("@msg", &file("closed.wav", MSG_SIG, 1500));
    let mut r = Rig::new(&text, |sc| sc.phone.auto_answer_ms = auto_answer_ms);
    r.wait_pri_up();
    Cc { r, _dir: dir }
}

impl Cc {
    /// Check for `ms` that phone `port` and the caller on bearer `ts` hear each other.
    fn talking(&mut self, port: u32, ts: u8, ms: u64) {
        self.r.assert_talking(EndpointId::Phone(port), EndpointId::Bearer { span: 1, ts }, ms);
    }

    /// How many 20 ms blocks of `sig` the caller on `ts` hears in the next `ms`.
    fn caller_hears(&mut self, ts: u8, sig: EndpointId, ms: u64) -> u64 {
        self.r.blocks_heard(EndpointId::Bearer { span: 1, ts }, sig, ms)
    }
}

const SALES: &str = r#"
[[queue]]
number = "600"
name = "sales"
wrapup_s = 5
ring_timeout_s = 10
music_on_hold = "@moh"

[[queue]]
number = "610"
name = "support"

[[inbound]]
dnis = ["80001000"]
destination = "ivr:main"
"#;

#[test]
fn ivr_to_queue_to_longest_idle_agent_with_records_and_report() {
    let mut cc = center(SALES, Some(1500));
    cc.login(1, "101", "1234");
    cc.run(1000);
    cc.login(2, "102", "5678");
    assert!(cc.records.iter().any(|r| matches!(r, Record::AgentEvent(e)
        if e.agent == "101" && e.event == cardpbx::store::AgentEventKind::Login)));

    // Call 1: the IVR answers and plays its welcome; the caller presses 1 during it.
    let (h, ts) = cc.pri_call_answered("13900001111", "80001000");
    assert!(cc.caller_hears(ts, WELCOME_SIG, 1000) >= 30, "the caller hears the welcome prompt");
    cc.p.card_mut().pri_remote_dtmf(1, h, "1").unwrap();
    // Ann has been ready longest: her phone rings; the caller hears music on hold meanwhile.
    cc.wait_agent("101", AgentState::Ringing, 3000);
    cc.until(100, "Ann's phone rings", |s| s.card().phone(1).unwrap().is_ringing());
    assert!(!cc.p.card().phone(2).unwrap().is_ringing());
    assert!(cc.caller_hears(ts, MOH_SIG, 800) >= 20, "music on hold while Ann's phone rings");
    cc.wait_agent("101", AgentState::OnCall, 3000);
    cc.talking(1, ts, 2000);
    // The caller hangs up; Ann hears busy tone, hangs up and goes to wrap-up.
    assert!(cc.p.card_mut().pri_hang_up(1, h));
    cc.until(3000, "Ann hears busy tone", |s| {
        s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    assert_eq!(cc.agent_state("101"), AgentState::OnCall, "on call until she hangs up");
    cc.p.card_mut().phone_mut(1).unwrap().on_hook();
    cc.wait_agent("101", AgentState::WrapUp, 2000);

    // Call 2 goes to Bob (Ann is in wrap-up, and was idle less long anyway).
    let (h2, ts2) = cc.pri_call_answered("13900002222", "80001000");
    cc.run(300);
    cc.p.card_mut().pri_remote_dtmf(1, h2, "1").unwrap();
    cc.wait_agent("102", AgentState::Ringing, 3000);
    assert!(!cc.p.card().phone(1).unwrap().is_ringing());
    cc.wait_agent("102", AgentState::OnCall, 3000);
    cc.talking(2, ts2, 2000);
    // This time the agent clears first.
    cc.p.card_mut().phone_mut(2).unwrap().on_hook();
    cc.wait_agent("102", AgentState::WrapUp, 2000);
    cc.until(3000, "the caller is cleared", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h2 && c.cause.is_some())
    });
    cc.run(6000);
    assert_eq!(cc.agent_state("101"), AgentState::Ready);
    assert_eq!(cc.agent_state("102"), AgentState::Ready);

    // IVR steps: menu main, key 1, to the queue.
    let steps: Vec<_> = cc
        .records
        .iter()
        .filter_map(|r| if let Record::IvrStep(s) = r { Some(s) } else { None })
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    for s in &steps {
        assert_eq!((s.node.as_str(), s.key.as_deref()), ("main", Some("1")));
        assert_eq!(s.exit, "queue:sales");
        assert!(s.ms_in_node >= 300 && s.ms_in_node < 3000, "barge-in during the prompt {s:?}");
    }
    // Queue events: two entered, two answered by Ann then Bob.
    let qe = cc.queue_events();
    let answers: Vec<_> = qe.iter().filter(|e| e.event == QueueEventKind::Answer).collect();
    assert_eq!(qe.iter().filter(|e| e.event == QueueEventKind::Enter).count(), 2);
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].agent.as_deref(), Some("101"));
    assert_eq!(answers[1].agent.as_deref(), Some("102"));
    assert!(answers.iter().all(|e| e.queue == "sales" && (1400..2500).contains(&e.wait_ms)));
    // Agent events of Ann's call, in order.
    let ann: Vec<&str> = cc
        .records
        .iter()
        .filter_map(|r| match r {
            Record::AgentEvent(e) if e.agent == "101" => Some(e.event.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        ann,
        [
            "login",
            "ready",
            "ringing",
            "talk_start",
            "talk_end",
            "wrapup_start",
            "wrapup_end",
            "ready"
        ]
    );
    // CDRs of the two inbound calls carry queue, agent, queue wait and IVR path.
    let cdrs: Vec<_> = cc.cdrs().into_iter().filter(|c| c.direction == "inbound").collect();
    assert_eq!(cdrs.len(), 2);
    for (c, (agent, a)) in cdrs.iter().zip([("101", answers[0]), ("102", answers[1])]) {
        assert_eq!(c.queue.as_deref(), Some("sales"));
        assert_eq!(c.agent.as_deref(), Some(agent));
        assert_eq!(c.wait_ms, a.wait_ms, "CDR wait = queue wait");
        assert_eq!(c.ivr_path.as_deref(), Some("main"));
        assert_eq!(c.dnis.as_deref(), Some("80001000"));
        assert!(c.talk_ms >= 2000, "{c:?}");
    }
    assert_eq!(cdrs[0].hangup_side, Some(cardpbx::store::HangupSide::Caller));
    assert_eq!(cdrs[1].hangup_side, Some(cardpbx::store::HangupSide::Called));

    // The reports agree: both answered within 20 s, none within 1 s.
    let store = cc.store();
    let o = |sl| ReportOptions {
        from_ms: 0,
        to_ms: i64::MAX / 2,
        now_ms: 2_000_000_000_000,
        offset_s: 0,
        sl_seconds: sl,
    };
    let rows = report::queues(&store, &o(20)).unwrap();
    let sales = rows.iter().find(|r| r.queue == "sales").unwrap();
    assert_eq!((sales.offered, sales.answered, sales.abandoned), (2, 2, 0));
    assert_eq!(sales.service_level, Some(1.0));
    let asa = (answers[0].wait_ms + answers[1].wait_ms) as f64 / 2000.0;
    assert!((sales.asa_s.unwrap() - asa).abs() < 1e-9);
    let rows = report::queues(&store, &o(1)).unwrap();
    assert_eq!(rows.iter().find(|r| r.queue == "sales").unwrap().service_level, Some(0.0));
    let agents = report::agents(&store, &o(20)).unwrap();
    for a in ["101", "102"] {
        assert_eq!(agents.iter().find(|r| r.agent == a).unwrap().calls, 1, "{a}");
    }
}

#[test]
fn nobody_ready_music_on_hold_then_overflow_to_another_queue_and_an_extension() {
    let mut cc = center(
        r#"
[[queue]]
number = "600"
name = "sales"
max_wait_s = 5
overflow = "queue:610"
music_on_hold = "@moh"

[[queue]]
number = "610"
name = "support"
max_wait_s = 5
overflow = "extension:2003"

[[inbound]]
dnis = ["80002000"]
destination = "queue:sales"
"#,
        Some(1000),
    );
    let (h, ts) = cc.pri_call_answered("13900003333", "80002000");
    // Nobody is logged in: the caller waits with the queue's music.
    assert!(cc.caller_hears(ts, MOH_SIG, 3000) >= 130, "music on hold");
    // After 5 s the call moves to support (no music: ringback), after 5 more to 2003.
    cc.until(9000, "extension 2003 rings", |s| s.card().phone(3).unwrap().is_ringing());
    cc.until(2000, "2003 answers", |s| {
        s.card().phone(3).unwrap().hears().now
            == cardpbx_sim::BlockClass::Signature(EndpointId::Bearer { span: 1, ts })
    });
    cc.talking(3, ts, 1500);
    assert!(cc.p.card_mut().pri_hang_up(1, h));
    cc.run(500);
    cc.p.card_mut().phone_mut(3).unwrap().on_hook();
    cc.run(1500);
    let ev: Vec<(String, QueueEventKind)> =
        cc.queue_events().iter().map(|e| (e.queue.clone(), e.event)).collect();
    use QueueEventKind::*;
    assert_eq!(
        ev,
        [
            ("sales".to_string(), Enter),
            ("sales".to_string(), Timeout),
            ("support".to_string(), Enter),
            ("support".to_string(), Timeout),
        ]
    );
    let cdr = cc.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(cdr.queue.as_deref(), Some("support"));
    assert_eq!(cdr.extension.as_deref(), Some("2003"));
    assert_eq!(cdr.agent, None);
    assert!((9990..10100).contains(&cdr.wait_ms), "queue wait until the overflow: {cdr:?}");
    let rows = report::queues(
        &cc.store(),
        &ReportOptions { from_ms: 0, to_ms: i64::MAX / 2, now_ms: 0, offset_s: 0, sl_seconds: 20 },
    )
    .unwrap();
    assert!(rows.iter().all(|r| r.offered == 1 && r.timed_out == 1 && r.answered == 0));
}

#[test]
fn ring_no_answer_moves_to_the_next_agent_and_sets_the_first_not_ready() {
    let mut cc = center(
        r#"
[[queue]]
number = "600"
name = "sales"
ring_timeout_s = 5

[[inbound]]
dnis = ["80001000"]
destination = "ivr:main"
"#,
        None,
    );
    cc.login(1, "101", "1234");
    cc.run(500);
    cc.login(2, "102", "5678");
    cc.p.card_mut().phone_mut(2).unwrap().set_auto_answer(Some(1000));
    let (h, ts) = cc.pri_call_answered("13900004444", "80001000");
    cc.run(200);
    cc.p.card_mut().pri_remote_dtmf(1, h, "1").unwrap();
    cc.wait_agent("101", AgentState::Ringing, 3000);
    // Ann does not answer: after 5 s Bob's phone rings and Ann is not ready.
    cc.wait_agent("102", AgentState::Ringing, 6000);
    assert!(matches!(cc.agent_state("101"), AgentState::NotReady(_)));
    cc.until(7000, "Ann's phone stops ringing", |s| !s.card().phone(1).unwrap().is_ringing());
    cc.wait_agent("102", AgentState::OnCall, 3000);
    cc.talking(2, ts, 1000);
    assert!(cc.p.card_mut().pri_hang_up(1, h));
    cc.run(500);
    cc.p.card_mut().phone_mut(2).unwrap().on_hook();
    cc.run(2000);
    let ann: Vec<(String, Option<String>)> = cc
        .records
        .iter()
        .filter_map(|r| match r {
            Record::AgentEvent(e) if e.agent == "101" => {
                Some((e.event.as_str().to_string(), e.event.reason().map(str::to_string)))
            }
            _ => None,
        })
        .collect();
    let names: Vec<&str> = ann.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["login", "ready", "ringing", "no_answer", "not_ready"]);
    assert_eq!(ann[4].1.as_deref(), Some("no_answer"));
    let cdr = cc.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(cdr.agent.as_deref(), Some("102"));
    // Ann makes herself ready again with *23 and logs out with *22.
    cc.dial_code(1, "*23", 800);
    assert_eq!(cc.agent_state("101"), AgentState::Ready);
    cc.dial_code(1, "*22", 800);
    assert_eq!(cc.agent_state("101"), AgentState::LoggedOut);
    // A wrong PIN is refused with congestion tone.
    let ph = cc.p.card_mut().phone_mut(1).unwrap();
    assert!(ph.off_hook());
    cc.until(2000, "dial tone", |s| {
        s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Dial)
    });
    cc.p.card_mut().phone_mut(1).unwrap().dial("*21101*9999#").unwrap();
    cc.until(4000, "congestion tone", |s| {
        s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
    });
    assert_eq!(cc.agent_state("101"), AgentState::LoggedOut);
}

const RULES: &str = r#"
[[queue]]
number = "600"
name = "sales"

[[schedule]]
name = "office"
hours = ["mon-fri 08:00-18:00"]

[[inbound]]
kind = "blacklist"
ani = ["13666666666"]
destination = "busy"

[[inbound]]
kind = "vip"
ani = ["13888888888"]
destination = "queue:sales:5"

[[inbound]]
dnis = ["80001000"]
schedule = "office"
destination = "queue:sales"
after_hours = "message:@msg"
"#;

#[test]
fn after_hours_message_then_clear() {
    let mut cc = center(RULES, Some(1000));
    // Monday 20:00: after hours.
    let elapsed_s = cc.p.now() as i64 / 1000;
    cc.p.pbx_mut().set_wall_clock(local(20) - elapsed_s);
    let (h, ts) = cc.pri_call_answered("13900005555", "80001000");
    assert!(cc.caller_hears(ts, MSG_SIG, 1000) >= 35, "the after-hours message plays");
    cc.until(2000, "the PBX clears after the message", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h && c.cause.is_some())
    });
    cc.run(500);
    let cdr = cc.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(
        cdr.called,
        "message:".to_string() + &cc._dir.path().join("closed.wav").display().to_string()
    );
    assert_eq!(cdr.why.as_deref(), Some("message played"));
    assert!(cc.queue_events().is_empty());
}

#[test]
fn blacklist_rejects_busy_and_vip_jumps_the_queue() {
    let mut cc = center(RULES, Some(1000));
    let h = cc.p.card_mut().pri_call_in(1, Some("13666666666"), "80001000").unwrap();
    cc.until(3000, "the blacklisted call is rejected", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h && c.cause.is_some())
    });
    assert_eq!(cc.remote(h).cause, Some(17), "user busy");
    assert!(!cc.remote(h).answered);

    // A normal caller waits (nobody ready), then a VIP caller comes and goes first.
    let (_h1, _) = cc.pri_call_answered("13900006666", "80001000");
    cc.run(1000);
    let (h2, ts2) = cc.pri_call_answered("13888888888", "80001000");
    cc.run(500);
    let enters: Vec<(u64, Option<u32>)> = cc
        .queue_events()
        .iter()
        .filter(|e| e.event == QueueEventKind::Enter)
        .map(|e| (e.call_id, e.position))
        .collect();
    assert_eq!(enters.len(), 2, "{:?}", cc.records);
    assert_eq!(enters[0].1, Some(1));
    assert_eq!(enters[1].1, Some(1), "the VIP goes to the head of the queue");
    // Ann logs in; her phone rings as soon as it is back on-hook.
    cc.dial_code(1, "*21101*1234#", 1500);
    cc.wait_agent("101", AgentState::OnCall, 4000);
    cc.talking(1, ts2, 1000);
    let answer =
        cc.queue_events().into_iter().find(|e| e.event == QueueEventKind::Answer).unwrap().clone();
    assert_eq!(answer.call_id, enters[1].0, "the VIP was answered first");
    assert!(cc.p.card_mut().pri_hang_up(1, h2));
    cc.run(500);
}

#[test]
fn caller_hanging_up_in_the_queue_is_an_abandon_on_an_analog_trunk() {
    let mut cc = center(
        r#"
[[queue]]
number = "600"
name = "sales"
music_on_hold = "@moh"

[[inbound]]
dnis = ["2004"]
destination = "ivr:main"
"#,
        Some(1000),
    );
    // An analog caller: the CO line rings our FXO port; the IVR answers.
    assert!(cc.p.card_mut().co_line_mut(1).unwrap().ring_in(Some("13900007777")));
    cc.until(8000, "the IVR answers the analog line", |s| {
        s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Connected
    });
    cc.run(500);
    assert_eq!(
        cc.p.card().co_line(1).unwrap().hears().last_signature,
        Some(WELCOME_SIG),
        "the caller hears the welcome prompt"
    );
    cc.p.card_mut().co_line_mut(1).unwrap().remote_dtmf("1").unwrap();
    cc.run(2000);
    assert_eq!(
        cc.p.card().co_line(1).unwrap().hears().now,
        cardpbx_sim::BlockClass::Signature(MOH_SIG),
        "music on hold of sales"
    );
    assert!(cc.p.card_mut().co_line_mut(1).unwrap().hang_up());
    cc.run(3000);
    let qe = cc.queue_events();
    let kinds: Vec<QueueEventKind> = qe.iter().map(|e| e.event).collect();
    assert_eq!(kinds, [QueueEventKind::Enter, QueueEventKind::Abandon]);
    assert_eq!(qe[1].queue, "sales");
    assert!((1900..5000).contains(&qe[1].wait_ms), "{:?}", qe[1]);
    let cdr = cc.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!(cdr.queue.as_deref(), Some("sales"));
    assert_eq!(cdr.ivr_path.as_deref(), Some("main"));
    assert_eq!(cdr.hangup_side, Some(cardpbx::store::HangupSide::Caller));
    assert_eq!(cdr.caller, "13900007777");
    let rows = report::queues(
        &cc.store(),
        &ReportOptions { from_ms: 0, to_ms: i64::MAX / 2, now_ms: 0, offset_s: 0, sl_seconds: 20 },
    )
    .unwrap();
    let sales = rows.iter().find(|r| r.queue == "sales").unwrap();
    assert_eq!((sales.offered, sales.abandoned), (1, 1));
    assert_eq!(sales.abandon_rate, Some(1.0));
}

#[test]
fn callback_request_is_offered_to_an_agent_and_dialled_out_on_the_trunk() {
    let mut cc = center(
        r#"
[[queue]]
number = "600"
name = "sales"

[[route]]
prefix = "1"
trunk_group = "isdn"
min_digits = 5

[[inbound]]
dnis = ["80004000"]
destination = "callback:sales"
"#,
        Some(1000),
    );
    // The callback attendant answers and beeps (no words configured); 1 confirms the ANI.
    let (h, _ts) = cc.pri_call_answered("13900008888", "80004000");
    cc.run(1000);
    cc.p.card_mut().pri_remote_dtmf(1, h, "1").unwrap();
    cc.until(3000, "the callback request is taken and the call cleared", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h && c.cause.is_some())
    });
    assert!(cc.records.iter().any(|r| matches!(r, Record::Callback(c)
        if c.number == "13900008888" && c.queue == "sales" && c.state == "pending")));
    // Ann logs in: her phone rings with the offer once it is back on-hook; she takes it and
    // the PBX dials the customer on the PRI.
    cc.dial_code(1, "*21101*1234#", 1500);
    cc.wait_agent("101", AgentState::OnCall, 4000);
    cc.until(5000, "the exchange gets the callback call", |s| {
        s.card().pri_dialed(1).iter().any(|n| n == "13900008888")
    });
    let out =
        cc.p.card()
            .pri_calls(1)
            .into_iter()
            .find(|c| c.direction == cardpbx_sim::RemoteDirection::FromPbx)
            .unwrap();
    cc.until(5000, "the customer answers", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == out.handle && c.answered)
    });
    cc.run(300);
    cc.talking(1, out.ts.unwrap(), 1500);
    assert!(cc.p.card_mut().pri_hang_up(1, out.handle));
    cc.run(500);
    cc.p.card_mut().phone_mut(1).unwrap().on_hook();
    cc.wait_agent("101", AgentState::Ready, 3000);
    let cdr = cc.cdrs().into_iter().find(|c| c.direction == "outbound").unwrap().clone();
    assert_eq!(cdr.called, "13900008888");
    assert_eq!(cdr.agent.as_deref(), Some("101"));
    assert_eq!(cdr.extension.as_deref(), Some("2001"));
    let states: Vec<(&str, u32)> = cc
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Callback(c) => Some((c.state.as_str(), c.attempts)),
            _ => None,
        })
        .collect();
    assert_eq!(states, [("pending", 0), ("dialling", 0), ("done", 1)]);
    let rows = cc.store().callbacks(None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].state.as_str(), rows[0].number.as_str()), ("done", "13900008888"));
}

#[test]
fn r2_call_by_dnis_reaches_a_queue_agent() {
    // The daemon's R2 registers take 4 DNIS digits.
    let text = r#"
[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
e1_spans = 1
  [card.sim]
  seed = 5
  clock = "virtual"

[[span]]
card = "sim0"
span = 1
framing = "cas"

[[extension]]
number = "2001"
port = "sim0/fxs1"
[[extension]]
number = "2002"
port = "sim0/fxs2"

[[trunk_group]]
name = "r2"
signalling = "r2_china"
ports = ["sim0/span1"]
incoming = "2002"

[[queue]]
number = "600"
name = "sales"

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[inbound]]
dnis = ["8800"]
destination = "queue:sales"
"#;
    let r = Rig::new(text, |sc| sc.phone.auto_answer_ms = Some(1000));
    let mut cc = Cc { r, _dir: tempfile::tempdir().unwrap() };
    cc.run(200);
    cc.login(1, "101", "1234");
    cc.p.card_mut().r2_call_in(1, "13800138000", "8800").unwrap();
    cc.until(15_000, "the R2 call is answered", |s| {
        s.card().r2_calls(1).first().is_some_and(|c| c.answered)
    });
    cc.wait_agent("101", AgentState::OnCall, 4000);
    let ts = cc.p.card().r2_calls(1)[0].ts;
    cc.run(300);
    cc.talking(1, ts, 1000);
    cc.p.card_mut().phone_mut(1).unwrap().on_hook();
    cc.wait_agent("101", AgentState::Ready, 3000);
    let cdr = cc.cdrs().into_iter().find(|c| c.direction == "inbound").unwrap().clone();
    assert_eq!((cdr.queue.as_deref(), cdr.agent.as_deref()), (Some("sales"), Some("101")));
    assert_eq!(cdr.caller, "13800138000");
}

#[test]
fn waiting_callers_hear_their_position_then_music_on_hold() {
    let mut cc = center(
        r#"
[[queue]]
number = "600"
name = "sales"
music_on_hold = "@moh"
announce_position = true
announce_wait = true
announce_interval_s = 10
announce_prompts = "@words"

[[inbound]]
dnis = ["80002000"]
destination = "queue:sales"
"#,
        Some(1000),
    );
    let (_h, ts) = cc.pri_call_answered("13900004444", "80002000");
    // On entry: "you are caller number" "1" (nobody staffed: no wait estimate), then music.
    assert!(cc.caller_hears(ts, POSITION_SIG, 1000) >= 40, "the position word");
    assert!(cc.caller_hears(ts, ONE_SIG, 600) >= 20, "the digit 1");
    assert!(cc.caller_hears(ts, MOH_SIG, 3000) >= 130, "music on hold afterwards");
    // The next announcement comes after the interval.
    cc.run(5000);
    assert!(cc.caller_hears(ts, POSITION_SIG, 2500) >= 40, "announced again after 10 s");
}

const SUPERVISED: &str = r#"
[[queue]]
number = "600"
name = "sales"

[[queue]]
number = "610"
name = "support"

[[inbound]]
dnis = ["80003000"]
destination = "queue:sales"

[[agent]]
id = "103"
pin = "4321"
name = "Sue"
queues = ["610"]
supervisor_of = ["600"]
"#;

impl Cc {
    /// Take phone `port` off-hook and dial `digits` after dial tone (the phone stays off-hook).
    fn dial_off_hook(&mut self, port: u32, digits: &str) {
        self.lift(port);
        self.phone(port).dial(digits).unwrap();
    }

    /// The caller on `ts`'s audio check over the next `ms`, expecting phone `port` alone.
    fn caller_check(&mut self, ts: u8, port: u32, ms: u64) -> cardpbx_sim::signature::AudioCheck {
        self.p.card_mut().pri_expect_peer(1, ts, Some(EndpointId::Phone(port)));
        let b0 = self.p.card().pri_audio_check(1, ts).unwrap();
        self.run(ms);
        let d = self.p.card().pri_audio_check(1, ts).unwrap().since(&b0);
        self.p.card_mut().pri_expect_peer(1, ts, None);
        d
    }

    /// Wait until phone `port` hears mixed audio (two signatures at once).
    fn wait_mix(&mut self, port: u32, what: &str) {
        self.until(2000, what, |s| s.card().phone(port).unwrap().hears().now == BlockClass::Other);
    }
}

#[test]
fn supervisor_listens_whispers_barges_and_releases_an_agents_call() {
    let mut cc = center(SUPERVISED, Some(1000));
    cc.login(1, "101", "1234");
    cc.login(3, "103", "4321");
    let (h, ts) = cc.pri_call_answered("13900005555", "80003000");
    cc.wait_agent("101", AgentState::OnCall, 4000);
    cc.talking(1, ts, 1000);

    // Refused: no supervisor on phone 2; Sue may not supervise a logged-out agent.
    cc.dial_off_hook(2, "*31101#");
    cc.until(3000, "congestion tone", |s| {
        s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Congestion)
    });
    cc.hang_up(2);
    cc.dial_off_hook(3, "*31102#");
    cc.until(3000, "congestion tone", |s| {
        s.card().phone(3).unwrap().hears().tone == Some(ProgressTone::Congestion)
    });
    cc.hang_up(3);
    cc.talking(1, ts, 500);

    // Listen: Sue hears caller and agent mixed; they still hear only each other.
    cc.dial_off_hook(3, "*31101#");
    cc.wait_mix(3, "the supervisor hears caller and agent");
    assert_eq!(
        cc.agent_state("103"),
        AgentState::NotReady(cardpbx::callcenter::acd::ReasonCode::SUPERVISING)
    );
    cc.talking(1, ts, 1500);
    assert_eq!(cc.p.card().phone(3).unwrap().hears().now, BlockClass::Other);
    cc.hang_up(3);
    assert_eq!(cc.agent_state("103"), AgentState::Ready, "ready again after listening");
    cc.talking(1, ts, 1000);

    // Whisper: the agent hears caller and supervisor; the caller still hears only the agent.
    cc.dial_off_hook(3, "*32101#");
    cc.wait_mix(1, "the agent hears caller and supervisor");
    let d = cc.caller_check(ts, 1, 1500);
    assert_eq!(d.error_blocks, 0, "the caller does not hear the whisper: {d:?}");
    assert!(d.ok_blocks >= 60, "the caller hears the agent: {d:?}");
    assert_eq!(cc.p.card().phone(1).unwrap().hears().now, BlockClass::Other);
    assert_eq!(cc.p.card().phone(3).unwrap().hears().now, BlockClass::Other);
    // The supervisor hangs up: the plain bridge again.
    cc.hang_up(3);
    cc.talking(1, ts, 1000);

    // Barge: everyone hears the other two; the caller no longer hears the agent alone.
    cc.dial_off_hook(3, "*33101#");
    cc.wait_mix(1, "the agent hears caller and supervisor");
    let d = cc.caller_check(ts, 1, 1500);
    assert!(d.ok_blocks < 10 && d.error_blocks > 50, "the caller hears the supervisor: {d:?}");
    assert_eq!(cc.p.card().phone(3).unwrap().hears().now, BlockClass::Other);
    cc.hang_up(3);
    cc.talking(1, ts, 1000);

    // The agent's call ends while Sue listens: she hears busy tone.
    cc.dial_off_hook(3, "*31101#");
    cc.wait_mix(3, "the supervisor hears caller and agent");
    assert!(cc.p.card_mut().pri_hang_up(1, h));
    cc.until(3000, "the supervisor hears busy tone", |s| {
        s.card().phone(3).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    cc.hang_up(3);
    cc.hang_up(1);
    cc.wait_agent("101", AgentState::Ready, 3000);

    // Force release: the caller is cleared, the agent hears busy tone.
    let (h2, ts2) = cc.pri_call_answered("13900006666", "80003000");
    cc.wait_agent("101", AgentState::OnCall, 4000);
    cc.talking(1, ts2, 500);
    cc.dial_off_hook(3, "*34101#");
    cc.until(3000, "the caller is cleared", |s| {
        s.card().pri_calls(1).iter().any(|c| c.handle == h2 && c.cause.is_some())
    });
    cc.until(3000, "the agent hears busy tone", |s| {
        s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    assert_ne!(cc.p.card().phone(3).unwrap().hears().tone, Some(ProgressTone::Congestion));
    cc.hang_up(3);
    cc.hang_up(1);
    cc.wait_agent("101", AgentState::Ready, 3000);
    let cdrs = cc.cdrs();
    let first = cdrs.iter().find(|c| c.caller == "13900005555").expect("first call's CDR");
    assert_eq!(first.agent.as_deref(), Some("101"));
    assert_eq!(first.hangup_side, Some(cardpbx::store::HangupSide::Caller), "{first:?}");
    let released = cdrs.iter().find(|c| c.caller == "13900006666").expect("second call's CDR");
    assert_eq!(released.hangup_side, Some(cardpbx::store::HangupSide::System), "{released:?}");
    assert_eq!(released.why.as_deref(), Some("force released by supervisor"));
    let codes = cdrs.iter().filter(|c| c.called == "*31" || c.called == "*32").count();
    assert!(codes >= 3, "the supervisor's own calls have CDRs with the code");
}

#[test]
fn sticky_routing_rings_the_agent_the_store_remembers() {
    let mut cc = center(
        r#"
[[queue]]
number = "600"
name = "sales"

[[inbound]]
dnis = ["80009000"]
destination = "queue:sales"
sticky_days = 30
"#,
        Some(1000),
    );
    // Yesterday agent 102 served this caller (as the store's CDRs say at start).
    let yesterday = 1_000_000_000_000 - 86_400_000;
    cc.p.pbx_mut().seed_last_agents(vec![(
        "13900001111".into(),
        "sales".into(),
        "102".into(),
        yesterday,
    )]);
    // 101 logs in first, so it is ready longest and would be chosen without the history.
    cc.login(1, "101", "1234");
    cc.login(2, "102", "5678");
    let (_h, ts) = cc.pri_call_answered("13900001111", "80009000");
    cc.wait_agent("102", AgentState::OnCall, 5000);
    assert_eq!(cc.agent_state("101"), AgentState::Ready);
    cc.run(300);
    cc.talking(2, ts, 1000);
    // Another caller, unknown to the history, goes to the longest idle agent.
    let (_h2, _) = cc.pri_call_answered("13900002222", "80009000");
    cc.wait_agent("101", AgentState::OnCall, 5000);
}
