//! End-to-end phone features on the simulator's virtual clock: hold with music on hook flash,
//! blind and attended transfer, three-way calling, recall, the flash state machine's error
//! paths, call pickup, do-not-disturb and a supervisor's forced transfer, with every connected
//! call's audio checked by signatures and the events and CDRs checked for the transfers and
//! the call data that stays with the call.

use cardpbx::callcenter::acd::AgentState;
use cardpbx::pbx::events::{EventBody, TransferKind};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::signature::BlockClass;
use cardpbx_sim::EndpointId;

mod support;
use support::{tone_wav, Rig};

/// The music on hold prompt's signature: an endpoint no test call uses.
const MOH_SIG: EndpointId = EndpointId::Bearer { span: 1, ts: 31 };

const CONFIG: &str = r#"
[system]
name = "e2e-phone"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 1
e1_spans = 1
  [card.sim]
  seed = 7
  clock = "virtual"

[dialplan]
answer_timeout_s = 20

[[extension]]
number = "2001"
port = "sim0/fxs1"
pickup_group = "sales"
[[extension]]
number = "2002"
port = "sim0/fxs2"
pickup_group = "sales"
[[extension]]
number = "2003"
port = "sim0/fxs3"
pickup_group = "sales"
[[extension]]
number = "2004"
port = "sim0/fxs4"

[[hunt_group]]
number = "700"
members = ["2002", "2003"]

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2004"

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
queues = ["600"]

[[agent]]
id = "103"
pin = "4321"
name = "Sue"
queues = ["610"]
supervisor_of = ["600"]

[[queue]]
number = "600"
name = "sales"
wrapup_s = 30
music_on_hold = "@moh"

[[queue]]
number = "610"
name = "support"

[[inbound]]
dnis = ["80003000"]
destination = "queue:sales"

[[inbound]]
dnis = ["80005000"]
destination = "ivr:account"

[[ivr]]
name = "account"
kind = "collect"
prompt = "@moh"
min_digits = 4
max_digits = 4
store_as = "account"
next = "queue:sales"
"#;

struct Ph {
    r: Rig,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Ph {
    type Target = Rig;
    fn deref(&self) -> &Rig {
        &self.r
    }
}

impl std::ops::DerefMut for Ph {
    fn deref_mut(&mut self) -> &mut Rig {
        &mut self.r
    }
}

fn phone(n: u32) -> EndpointId {
    EndpointId::Phone(n)
}

fn bearer(ts: u8) -> EndpointId {
    EndpointId::Bearer { span: 1, ts }
}

/// The PBX of `CONFIG`, phones answering only when told to.
fn pbx() -> Ph {
    let dir = tempfile::tempdir().unwrap();
    let plan = cardpbx_sim::signature::SignaturePlan::with_spans(4, 1, 1).unwrap();
    let moh = dir.path().join("moh.wav");
    tone_wav(&moh, plan.signature(MOH_SIG), 1000);
    let text = CONFIG.replace("@moh", &moh.display().to_string());
    let mut r = Rig::new(&text, |sc| sc.phone.auto_answer_ms = None);
    r.wait_pri_up();
    Ph { r, _dir: dir }
}

impl Ph {
    /// Wait until phone `port` hears `tone`.
    fn wait_tone(&mut self, port: u32, tone: ProgressTone, what: &str) {
        self.until(6000, what, |s| s.card().phone(port).unwrap().hears().tone == Some(tone));
    }

    /// Wait until phone `port` rings.
    fn wait_ringing(&mut self, port: u32) {
        self.until(6000, &format!("phone {port} rings"), |s| {
            s.card().phone(port).unwrap().is_ringing()
        });
    }

    /// Wait until call control no longer rings phone `port` (the phone itself tells the end
    /// of a ringing episode only after the cadence's silence).
    fn wait_not_ringing(&mut self, port: u32) {
        let idx = port as usize - 1;
        self.until(3000, &format!("phone {port} no longer rung"), |s| {
            s.pbx().ports()[idx].state != "ringing"
        });
    }

    /// Answer ringing phone `port`.
    fn answer(&mut self, port: u32) {
        self.wait_ringing(port);
        assert!(self.phone(port).off_hook());
        self.run(300);
    }

    /// Phone `from` calls extension `to`, which answers; they talk.
    fn call(&mut self, from: u32, to: u32) {
        self.lift(from);
        self.phone(from).dial(&format!("200{to}")).unwrap();
        self.answer(to);
        self.assert_talking(phone(from), phone(to), 1000);
    }

    /// Hook flash on phone `port`, then wait for dial tone.
    fn flash_for_dial_tone(&mut self, port: u32) {
        assert!(self.phone(port).flash(300));
        self.wait_tone(port, ProgressTone::Dial, "dial tone after the flash");
    }

    /// Phone `port` goes on-hook (without waiting for the PBX to see it idle).
    fn on_hook(&mut self, port: u32) {
        self.phone(port).on_hook();
        self.run(1500);
    }

    /// Wait until phone `port` hears a mix of two signatures.
    fn wait_mix(&mut self, port: u32) {
        self.until(3000, &format!("phone {port} hears a mix"), |s| {
            s.card().phone(port).unwrap().hears().now == BlockClass::Other
        });
    }

    /// The events published so far.
    fn events(&mut self) -> Vec<EventBody> {
        let mut v = Vec::new();
        while let Some(e) = self.p.pbx_mut().pop_event() {
            v.push(e.body);
        }
        v
    }
}

fn transfers(events: &[EventBody]) -> Vec<(u64, String, String, TransferKind)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventBody::CallTransferred { call, from_line, to_line, kind } => {
                Some((*call, from_line.clone(), to_line.clone(), *kind))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn hold_with_music_then_blind_transfer_keeps_the_call_data() {
    let mut p = pbx();
    p.login(1, "101", "1234");
    // The caller keys an account number in the IVR, then waits in the queue.
    let (h, ts) = p.pri_call_answered("13900001111", "80005000");
    p.run(500);
    p.p.card_mut().pri_remote_dtmf(1, h, "4321").unwrap();
    p.answer(1);
    p.wait_agent("101", AgentState::OnCall, 3000);
    p.assert_talking(phone(1), bearer(ts), 1000);

    // Flash: the caller hears the queue's music on hold, not the agent.
    p.flash_for_dial_tone(1);
    assert!(p.blocks_heard(bearer(ts), MOH_SIG, 2000) >= 80, "the held caller hears music");
    assert_eq!(p.blocks_heard(bearer(ts), phone(1), 1000), 0, "the held caller hears no agent");

    // Dial 2003, hang up while it rings: blind transfer; the caller hears ringback.
    p.phone(1).dial("2003").unwrap();
    p.wait_ringing(3);
    p.on_hook(1);
    p.run(500);
    assert_eq!(p.blocks_heard(bearer(ts), MOH_SIG, 1000), 0, "ringback, not music");
    p.answer(3);
    p.assert_talking(phone(3), bearer(ts), 1500);
    assert_eq!(p.agent_state("101"), AgentState::WrapUp, "the agent wraps up");

    let ev = p.events();
    let call = ev
        .iter()
        .find_map(|e| match e {
            EventBody::CallHeld { call, line } if line == "sim0/fxs1" => Some(*call),
            _ => None,
        })
        .expect("call held event");
    let t = transfers(&ev);
    assert_eq!(t, vec![(call, "sim0/fxs1".into(), "sim0/fxs3".into(), TransferKind::Blind)]);
    assert_eq!(
        ev.iter().filter(|e| matches!(e, EventBody::CallHeld { .. })).count(),
        1,
        "one hold, published once"
    );

    let data = p.p.pbx().call_data(call);
    assert_eq!(data, vec![("account".to_string(), "4321".to_string())], "IVR digits kept");
    assert!(p.p.card_mut().pri_hang_up(1, h));
    p.run(1500);
    p.hang_up(3);
    let cdrs = p.cdrs();
    let cdr = cdrs.iter().find(|c| c.call_id == call).expect("the transferred call's CDR");
    assert_eq!(cdr.caller, "13900001111");
    assert_eq!(cdr.dnis.as_deref(), Some("80005000"));
    assert_eq!(cdr.ivr_path.as_deref(), Some("account"));
    assert_eq!(cdr.queue.as_deref(), Some("sales"));
    assert_eq!(cdr.agent.as_deref(), Some("101"));
    assert_eq!(cdr.extension.as_deref(), Some("2003"));
    assert_eq!(cdr.transfers, 1);
    assert!(cdr.talk_ms >= 4000, "talk time from the agent's answer: {cdr:?}");
    // The consultation has a record of its own.
    assert!(cdrs.iter().any(|c| c.caller == "2001" && c.called == "2003" && c.transfers == 0));
}

#[test]
fn three_way_then_attended_transfer() {
    let mut p = pbx();
    p.call(1, 2);
    // Hold: no music configured for an internal call, a held tone; 2 does not hear 1.
    p.flash_for_dial_tone(1);
    assert_eq!(p.blocks_heard(phone(2), phone(1), 1000), 0, "the held party hears no one");
    // Consultation with 3, privately.
    p.phone(1).dial("2003").unwrap();
    p.answer(3);
    p.assert_talking(phone(1), phone(3), 1000);
    assert_eq!(p.blocks_heard(phone(2), phone(1), 500), 0, "the consultation is private");

    // Flash: three-way; everyone hears the other two.
    assert!(p.phone(1).flash(300));
    for port in [1, 2, 3] {
        p.wait_mix(port);
    }
    p.run(1000);
    for port in [1, 2, 3] {
        assert_eq!(p.p.card().phone(port).unwrap().hears().now, BlockClass::Other, "{port}");
    }
    // Flash again: 3 is dropped (busy tone), 1 and 2 talk.
    assert!(p.phone(1).flash(300));
    p.wait_tone(3, ProgressTone::Busy, "the dropped party hears busy tone");
    p.assert_talking(phone(1), phone(2), 1000);
    p.hang_up(3);

    // Consult 3 again and hang up after the answer: attended transfer, 2 and 3 talk.
    p.flash_for_dial_tone(1);
    p.phone(1).dial("2003").unwrap();
    p.answer(3);
    p.assert_talking(phone(1), phone(3), 500);
    p.hang_up(1);
    p.assert_talking(phone(2), phone(3), 1500);
    let ev = p.events();
    let t = transfers(&ev);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].3, TransferKind::Attended);
    assert_eq!((t[0].1.as_str(), t[0].2.as_str()), ("sim0/fxs1", "sim0/fxs3"));
    assert_eq!(ev.iter().filter(|e| matches!(e, EventBody::ThreeWay { .. })).count(), 1);
    p.hang_up(2);
    p.run(500);
    p.hang_up(3);
    let cdrs = p.cdrs();
    let cdr = cdrs.iter().find(|c| c.call_id == t[0].0).unwrap();
    assert_eq!((cdr.caller.as_str(), cdr.called.as_str(), cdr.transfers), ("2001", "2002", 1));
}

#[test]
fn flash_error_paths_return_to_the_held_party() {
    let mut p = pbx();
    // A flash on a phone with dial tone is ignored.
    p.lift(4);
    assert!(p.phone(4).flash(300));
    p.run(500);
    p.wait_tone(4, ProgressTone::Dial, "still dial tone after a flash");

    p.call(1, 2);
    // An invalid number after the flash: congestion, then back to the held party.
    p.flash_for_dial_tone(1);
    p.phone(1).dial("9").unwrap();
    p.wait_tone(1, ProgressTone::Congestion, "congestion for an unknown number");
    p.until(4000, "back with the held party", |s| {
        s.card().phone(1).unwrap().hears().tone.is_none()
    });
    p.assert_talking(phone(1), phone(2), 1000);

    // A busy target (4 is off-hook): busy tone, then back.
    p.flash_for_dial_tone(1);
    p.phone(1).dial("2004").unwrap();
    p.wait_tone(1, ProgressTone::Busy, "busy tone for a busy extension");
    p.until(4000, "back with the held party", |s| {
        s.card().phone(1).unwrap().hears().tone.is_none()
    });
    p.assert_talking(phone(1), phone(2), 1000);
    p.hang_up(4);

    // Flash while the target rings: the consultation is dropped.
    p.flash_for_dial_tone(1);
    p.phone(1).dial("2003").unwrap();
    p.wait_ringing(3);
    assert!(p.phone(1).flash(300));
    p.wait_not_ringing(3);
    p.assert_talking(phone(1), phone(2), 1000);

    // Hang up with nothing dialled: the phone rings back (recall) and talks to 2 again.
    p.flash_for_dial_tone(1);
    p.on_hook(1);
    p.answer(1);
    p.assert_talking(phone(1), phone(2), 1000);

    // The held party hangs up during the consultation: the consultation goes on.
    p.flash_for_dial_tone(1);
    p.hang_up(2);
    p.phone(1).dial("2003").unwrap();
    p.answer(3);
    p.assert_talking(phone(1), phone(3), 1000);
    p.hang_up(1);
    p.hang_up(3);
    let ev = p.events();
    assert!(transfers(&ev).is_empty(), "no transfer happened");
    let retrieved = ev.iter().filter(|e| matches!(e, EventBody::CallRetrieved { .. })).count();
    assert_eq!(retrieved, 4, "back to the held party four times");
}

#[test]
fn unanswered_blind_transfer_recalls_then_clears() {
    let mut p = pbx();
    p.call(1, 2);
    p.flash_for_dial_tone(1);
    p.phone(1).dial("2003").unwrap();
    p.wait_ringing(3);
    p.on_hook(1);
    // Nobody takes it within the answer timeout (20 s): 3 stops, 1 is rung back.
    p.run(15_000);
    assert_eq!(p.p.pbx().ports()[2].state, "ringing", "the target still rings");
    p.until(8000, "recall", |s| s.pbx().ports()[0].state == "ringing");
    p.wait_not_ringing(3);
    assert!(p.blocks_heard(phone(2), phone(1), 1000) == 0, "held, not connected");
    p.answer(1);
    p.assert_talking(phone(1), phone(2), 1000);

    // Recall again (hang up with nothing dialled) and leave it: the call is cleared.
    p.flash_for_dial_tone(1);
    p.on_hook(1);
    p.wait_ringing(1);
    p.until(25_000, "the held party is cleared after the recall timeout", |s| {
        s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy)
    });
    p.hang_up(2);
    p.until(3000, "phone 1 no longer rung", |s| s.pbx().ports()[0].state == "idle");
    let ev = p.events();
    assert_eq!(transfers(&ev).len(), 1, "the blind transfer was made");
    let cdrs = p.cdrs();
    let call = transfers(&ev)[0].0;
    let cdr = cdrs.iter().find(|c| c.call_id == call).unwrap();
    assert_eq!(cdr.why.as_deref(), Some("recall not answered"), "{cdr:?}");
    assert_eq!(cdr.cause, "no_answer");
}

#[test]
fn pickup_and_do_not_disturb() {
    let mut p = pbx();
    // Group pickup: 4 calls 2002; 3 (same group) dials *8 and talks to 4.
    p.lift(4);
    p.phone(4).dial("2002").unwrap();
    p.wait_ringing(2);
    p.lift(3);
    p.phone(3).dial("*8").unwrap();
    p.wait_not_ringing(2);
    p.assert_talking(phone(3), phone(4), 1000);
    p.hang_up(3);
    p.hang_up(4);

    // Directed pickup: 4 calls 2001; 2 dials **2001.
    p.lift(4);
    p.phone(4).dial("2001").unwrap();
    p.wait_ringing(1);
    p.lift(2);
    p.phone(2).dial("**2001").unwrap();
    p.wait_not_ringing(1);
    p.assert_talking(phone(2), phone(4), 1000);
    p.hang_up(2);
    p.hang_up(4);

    // Nothing rings: *8 gives congestion.
    p.lift(3);
    p.phone(3).dial("*8").unwrap();
    p.wait_tone(3, ProgressTone::Congestion, "nothing to pick up");
    p.hang_up(3);

    // Do-not-disturb on 2002 (twice: one event); a direct call finds it busy.
    for _ in 0..2 {
        p.dial_code(2, "*78", 1000);
    }
    assert!(p.p.pbx().dnd("2002"));
    p.lift(4);
    p.phone(4).dial("2002").unwrap();
    p.wait_tone(4, ProgressTone::Busy, "a DND extension is busy");
    p.hang_up(4);
    // The hunt group skips it: 3 rings, 2 does not.
    p.lift(4);
    p.phone(4).dial("700").unwrap();
    p.wait_ringing(3);
    assert!(!p.p.card().phone(2).unwrap().is_ringing());
    p.answer(3);
    p.assert_talking(phone(3), phone(4), 500);
    p.hang_up(3);
    p.hang_up(4);
    // Off again: 2002 rings.
    p.dial_code(2, "*79", 1000);
    assert!(!p.p.pbx().dnd("2002"));
    p.lift(4);
    p.phone(4).dial("2002").unwrap();
    p.answer(2);
    p.assert_talking(phone(2), phone(4), 500);
    let ev = p.events();
    let dnd: Vec<(String, bool)> = ev
        .iter()
        .filter_map(|e| match e {
            EventBody::Dnd { extension, on } => Some((extension.clone(), *on)),
            _ => None,
        })
        .collect();
    assert_eq!(dnd, vec![("2002".into(), true), ("2002".into(), false)]);
    assert_eq!(ev.iter().filter(|e| matches!(e, EventBody::CallPickedUp { .. })).count(), 2);
}

#[test]
fn supervisor_forces_an_agents_call_to_an_extension_and_a_queue() {
    let mut p = pbx();
    p.login(1, "101", "1234");
    p.login(3, "103", "4321");
    let h = p.p.card_mut().pri_call_in(1, Some("13900002222"), "80003000").unwrap();
    p.answer(1);
    let ts = p.remote(h).ts.unwrap();
    p.wait_agent("101", AgentState::OnCall, 3000);
    p.assert_talking(phone(1), bearer(ts), 500);

    // A busy destination is refused (4 is off-hook): nothing changes.
    p.lift(4);
    p.lift(3);
    p.phone(3).dial("*35101*2004#").unwrap();
    p.wait_tone(3, ProgressTone::Congestion, "refused: the destination is busy");
    p.hang_up(3);
    p.hang_up(4);
    p.assert_talking(phone(1), bearer(ts), 500);

    // To extension 2002: the agent hears busy tone, 2002 rings, the caller talks to it.
    p.lift(3);
    p.phone(3).dial("*35101*2002#").unwrap();
    p.wait_tone(1, ProgressTone::Busy, "the agent is out of the call");
    p.answer(2);
    p.assert_talking(phone(2), bearer(ts), 1000);
    assert_eq!(p.agent_state("101"), AgentState::WrapUp);
    p.hang_up(3);
    p.hang_up(1);
    let ev = p.events();
    let t = transfers(&ev);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].1.as_str(), t[0].2.as_str(), t[0].3),
        ("sim0/fxs1", "sim0/fxs2", TransferKind::Forced)
    );
    assert!(p.p.card_mut().pri_hang_up(1, h));
    p.run(1500);
    p.hang_up(2);
    let cdrs = p.cdrs();
    let cdr = cdrs.iter().find(|c| c.call_id == t[0].0).unwrap();
    assert_eq!(cdr.caller, "13900002222");
    assert_eq!(cdr.dnis.as_deref(), Some("80003000"));
    assert_eq!(cdr.agent.as_deref(), Some("101"));
    assert_eq!(cdr.extension.as_deref(), Some("2002"));
    assert_eq!(cdr.transfers, 1);

    // To queue 610 (support): Sue, a ready agent of it, gets the call once she hangs up.
    p.wait_agent("101", AgentState::Ready, 40_000);
    let h2 = p.p.card_mut().pri_call_in(1, Some("13900003333"), "80003000").unwrap();
    p.answer(1);
    let ts2 = p.remote(h2).ts.unwrap();
    p.wait_agent("101", AgentState::OnCall, 3000);
    p.lift(3);
    p.phone(3).dial("*35101*610#").unwrap();
    p.wait_tone(1, ProgressTone::Busy, "the agent is out of the call");
    p.hang_up(3);
    p.hang_up(1);
    p.answer(3);
    p.wait_agent("103", AgentState::OnCall, 3000);
    p.assert_talking(phone(3), bearer(ts2), 1000);
    let t = transfers(&p.events());
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].2.as_str(), t[0].3), ("queue:610", TransferKind::Forced));
    assert!(p.p.card_mut().pri_hang_up(1, h2));
    p.run(1500);
    p.hang_up(3);
    let cdrs = p.cdrs();
    let cdr = cdrs.iter().find(|c| c.call_id == t[0].0).unwrap();
    assert_eq!(cdr.caller, "13900003333");
    assert_eq!(cdr.queue.as_deref(), Some("support"), "the queue it went to last");
    assert_eq!(cdr.transfers, 1);
}
