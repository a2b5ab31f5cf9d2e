//! Call detail records end to end: calls on the simulator's virtual clock through the real
//! engine and call control, their CDRs drained into the store's writer thread, read back from
//! the SQLite file.

use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx::store::{CdrRecord, HangupSide, Store, StoreWriter};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::{ClockMode, PhoneState, SimCard};
use std::time::Duration;

const CONFIG: &str = r#"
[system]
name = "e2e-cdr"

[[card]]
name = "sim0"
driver = "sim"
# Six ports as in e2e_analog: with four, the exchange's answer after ringback on sim0/fxo1 is
# not recognised as voice (seen while writing this test; an issue of the simulated signatures
# or the progress detector, not of CDRs).
fxs_ports = 6
fxo_ports = 2
  [card.sim]
  seed = 11
  clock = "virtual"
  co_disconnect = "polarity"
  co_answer_delay_ms = 8000

[[extension]]
number = "2001"
port = "sim0/fxs1"
name = "Front desk"
[[extension]]
number = "2002"
port = "sim0/fxs2"
[[extension]]
number = "2003"
port = "sim0/fxs3"

[[trunk_group]]
name = "pstn"
ports = ["sim0/fxo1", "sim0/fxo2"]
incoming = "2003"

[[route]]
prefix = "9"
trunk_group = "pstn"
strip = 1
min_digits = 4
"#;

/// UTC ms at tick 0 in these tests: 2026-03-02 10:00:00.
const BASE_MS: i64 = 1_772_445_600_000;

fn pbx() -> Stepped<SimCard> {
    let cfg = Config::parse_str(CONFIG, "e2e.toml").expect("test config is valid");
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let card = SimCard::new(sc).expect("simulated card");
    let mut p = Stepped::new(card, &cfg, "sim0").expect("pbx");
    p.pbx_mut().set_utc_base(BASE_MS as u64 * 1000);
    p
}

fn lift(p: &mut Stepped<SimCard>, port: u32) {
    assert!(p.card_mut().phone_mut(port).unwrap().off_hook());
    let ok = p
        .run_until(2000, |s| s.card().phone(port).unwrap().hears().tone == Some(ProgressTone::Dial))
        .unwrap();
    assert!(ok, "phone {port} hears dial tone");
}

fn call(p: &mut Stepped<SimCard>, from: u32, number: &str, to: u32) {
    lift(p, from);
    p.card_mut().phone_mut(from).unwrap().dial(number).unwrap();
    assert!(p.run_until(5000, |s| s.card().phone(to).unwrap().is_ringing()).unwrap());
}

fn idle(p: &mut Stepped<SimCard>) {
    let ok = p.run_until(15_000, |s| s.pbx().active_calls() == 0).unwrap();
    assert!(ok, "all calls cleared");
}

/// Tick → UTC ms as the CDRs give it.
fn utc(tick: u64) -> i64 {
    BASE_MS + tick as i64
}

#[test]
fn internal_calls_give_cdrs_with_times_and_hangup_side() {
    let mut p = pbx();
    // 1: 2001 calls 2002, answered, 3 s of talk, the caller hangs up.
    let t0 = p.now();
    call(&mut p, 1, "2002", 2);
    p.run_ms(1500).unwrap();
    assert!(p.card_mut().phone_mut(2).unwrap().answer());
    let answered = |s: &Stepped<SimCard>| s.pbx().calls().first().and_then(|c| c.answered);
    assert!(p.run_until(1000, |s| answered(s).is_some()).unwrap());
    let t_start = p.pbx().calls()[0].started;
    let t_answer = answered(&p).unwrap();
    p.run_ms(3000).unwrap();
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    idle(&mut p);
    let t_end = p.now();
    assert!(p.card_mut().phone_mut(2).unwrap().on_hook());
    // Longer than a hook flash.
    p.run_ms(2000).unwrap();
    let cdrs = p.take_cdrs();
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let c = &cdrs[0];
    assert_eq!((c.caller.as_str(), c.called.as_str()), ("2001", "2002"));
    assert_eq!(c.caller_name.as_deref(), Some("Front desk"));
    assert_eq!(c.direction, "internal");
    assert_eq!(c.extension.as_deref(), Some("2002"));
    assert_eq!(c.hangup_side, Some(HangupSide::Caller));
    assert_eq!(c.cause, "normal_clearing");
    assert!(t_start >= t0 && t_start < t0 + 200);
    assert_eq!(c.started_ms, utc(t_start));
    let answered = c.answered_ms.expect("answered");
    assert_eq!(answered, utc(t_answer));
    assert_eq!(c.ended_ms, utc(t_end), "the call ended when call control cleared it");
    // 3 s of talk plus the on-hook debounce.
    assert!((3000..4000).contains(&c.talk_ms), "talk ≈ 3 s: {}", c.talk_ms);
    assert_eq!(c.talk_ms, c.ended_ms - answered);
    assert_eq!(c.wait_ms, answered - c.started_ms);
    assert_eq!((c.trunk_group.as_deref(), c.trunk_port.as_deref()), (None, None));

    // 2: 2002 calls 2001; the called party hangs up first.
    call(&mut p, 2, "2001", 1);
    assert!(p.card_mut().phone_mut(1).unwrap().answer());
    p.run_ms(2000).unwrap();
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    idle(&mut p);
    assert!(p.card_mut().phone_mut(2).unwrap().on_hook());
    // Longer than a hook flash.
    p.run_ms(2000).unwrap();
    // 3: 2001 dials an unknown number: the system fails the call.
    lift(&mut p, 1);
    p.card_mut().phone_mut(1).unwrap().dial("3").unwrap();
    let ok = p
        .run_until(8000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok);
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    idle(&mut p);
    let cdrs = p.take_cdrs();
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    let c = &cdrs[0];
    assert_eq!((c.caller.as_str(), c.called.as_str()), ("2002", "2001"));
    assert_eq!(c.hangup_side, Some(HangupSide::Called));
    assert_eq!(c.cause, "normal_clearing");
    assert!((2000..3000).contains(&c.talk_ms), "talk ≈ 2 s: {}", c.talk_ms);
    let c = &cdrs[1];
    assert_eq!((c.caller.as_str(), c.called.as_str()), ("2001", "3"));
    assert_eq!(c.hangup_side, Some(HangupSide::System));
    assert_eq!(
        (c.cause.as_str(), c.why.as_deref()),
        ("unallocated_number", Some("unknown number"))
    );
    assert_eq!((c.answered_ms, c.talk_ms), (None, 0));
}

#[test]
fn trunk_calls_go_through_the_writer_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let (store, writer) = StoreWriter::spawn(&path).unwrap();
    let mut p = pbx();
    p.set_store(store.clone());

    // Outbound: 2001 dials 9 87654321; the exchange answers; 2001 hangs up after talk.
    lift(&mut p, 1);
    p.card_mut().phone_mut(1).unwrap().dial("987654321").unwrap();
    let ok = p
        .run_until(15_000, |s| s.card().co_line(1).unwrap().dialed().as_deref() == Some("87654321"))
        .unwrap();
    assert!(ok);
    let ok = p
        .run_until(15_000, |s| s.pbx().calls().first().is_some_and(|c| c.answered.is_some()))
        .unwrap();
    assert!(ok, "the far end answered (voice after ringback)");
    p.run_ms(3000).unwrap();
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    idle(&mut p);
    p.run_ms(500).unwrap();

    // Inbound with caller ID, answered at 2003, talk 4 s, the far end hangs up.
    assert!(p.card_mut().co_line_mut(2).unwrap().ring_in(Some("13800138000")));
    assert!(p.run_until(3000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap());
    p.run_ms(500).unwrap();
    assert!(p.card_mut().phone_mut(3).unwrap().answer());
    p.run_ms(4000).unwrap();
    assert!(p.card_mut().co_line_mut(2).unwrap().hang_up());
    idle(&mut p);
    assert!(p.card_mut().phone_mut(3).unwrap().on_hook());
    p.run_ms(2000).unwrap();

    // Inbound, never answered: the caller gives up.
    assert!(p.card_mut().co_line_mut(1).unwrap().ring_in(None));
    assert!(p.run_until(3000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap());
    assert!(p.card_mut().co_line_mut(1).unwrap().give_up());
    let ok = p
        .run_until(12_000, |s| {
            s.card().phone(3).unwrap().state() == PhoneState::Idle && s.pbx().active_calls() == 0
        })
        .unwrap();
    assert!(ok);

    assert!(store.flush(Duration::from_secs(30)));
    assert!(p.take_cdrs().is_empty(), "records went to the store, not left in the Pbx");
    let rows: Vec<CdrRecord> = Store::open_read_only(&path).unwrap().cdrs(0, i64::MAX).unwrap();
    assert_eq!(rows.len(), 3, "{rows:#?}");

    let c = &rows[0];
    assert_eq!(
        (c.direction.as_str(), c.caller.as_str(), c.called.as_str()),
        ("outbound", "2001", "987654321")
    );
    assert_eq!(
        (c.trunk_group.as_deref(), c.trunk_port.as_deref()),
        (Some("pstn"), Some("sim0/fxo1"))
    );
    assert_eq!(c.extension.as_deref(), Some("2001"));
    assert_eq!(c.hangup_side, Some(HangupSide::Caller));
    assert!(c.answered_ms.is_some(), "{c:?}");
    assert!((3000..4000).contains(&c.talk_ms), "talk ≈ 3 s: {}", c.talk_ms);

    let c = &rows[1];
    assert_eq!(
        (c.direction.as_str(), c.caller.as_str(), c.called.as_str()),
        ("inbound", "13800138000", "2003")
    );
    assert_eq!(
        (c.trunk_group.as_deref(), c.trunk_port.as_deref()),
        (Some("pstn"), Some("sim0/fxo2"))
    );
    assert_eq!(c.extension.as_deref(), Some("2003"));
    assert_eq!(c.hangup_side, Some(HangupSide::Caller), "the far end (the caller) hung up");
    assert_eq!(c.cause, "normal_clearing");
    assert!(c.answered_ms.is_some());
    assert!((4000..4800).contains(&c.talk_ms), "talk ≈ 4 s: {}", c.talk_ms);

    let c = &rows[2];
    assert_eq!((c.direction.as_str(), c.trunk_port.as_deref()), ("inbound", Some("sim0/fxo1")));
    assert_eq!((c.answered_ms, c.talk_ms), (None, 0));
    assert_eq!(c.hangup_side, Some(HangupSide::Caller));
    assert_eq!(c.cause, "caller_abandoned");
    assert_eq!(c.wait_ms, c.ended_ms - c.started_ms);

    for c in &rows {
        assert!(c.started_ms >= BASE_MS && c.ended_ms >= c.started_ms, "{c:?}");
    }

    drop(p);
    drop(store);
    let stats = writer.join().unwrap();
    assert_eq!((stats.written, stats.dropped, stats.failed), (3, 0, 0));
}

const PRI_CONFIG: &str = r#"
[system]
name = "e2e-cdr-pri"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 0
e1_spans = 1
  [card.sim]
  seed = 3
  clock = "virtual"

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
"#;

#[test]
fn pri_calls_record_the_dialled_number_and_the_refusal_cause() {
    let cfg = Config::parse_str(PRI_CONFIG, "e2e-pri.toml").expect("test config is valid");
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").expect("pbx");
    p.pbx_mut().set_utc_base(BASE_MS as u64 * 1000);
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap(), "D-channel up");
    p.run_ms(500).unwrap();

    // A DID that is no extension goes to the group's target 2003; the far end clears.
    let h = p.card_mut().pri_call_in(1, Some("13800138000"), "88888").unwrap();
    assert!(p.run_until(2000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap());
    assert!(p.card_mut().phone_mut(3).unwrap().off_hook());
    assert!(p.run_until(1000, |s| s.card().pri_calls(1)[0].answered).unwrap());
    p.run_ms(2000).unwrap();
    assert!(p.card_mut().pri_hang_up(1, h));
    idle(&mut p);
    assert!(p.card_mut().phone_mut(3).unwrap().on_hook());
    p.run_ms(2000).unwrap();

    // 2002 is busy (off-hook): the call to it is refused.
    assert!(p.card_mut().phone_mut(2).unwrap().off_hook());
    p.run_ms(100).unwrap();
    p.card_mut().pri_call_in(1, Some("123"), "2002").unwrap();
    assert!(p
        .run_until(3000, |s| s.card().pri_calls(1).iter().any(|c| c.cause.is_some()))
        .unwrap());
    // The call ends when the exchange has released it.
    p.run_ms(2000).unwrap();
    let cdrs = p.take_cdrs();
    let inbound: Vec<&CdrRecord> = cdrs.iter().filter(|c| c.direction == "inbound").collect();
    assert_eq!(inbound.len(), 2, "{cdrs:#?}");

    let c = inbound[0];
    assert_eq!((c.caller.as_str(), c.called.as_str()), ("13800138000", "2003"));
    assert_eq!(c.dnis.as_deref(), Some("88888"));
    assert_eq!(c.trunk_group.as_deref(), Some("isdn"));
    assert!(c.trunk_port.as_deref().is_some_and(|p| p.starts_with("sim0/span1/ts")), "{c:?}");
    assert_eq!(c.extension.as_deref(), Some("2003"));
    assert_eq!((c.hangup_side, c.cause.as_str()), (Some(HangupSide::Caller), "normal_clearing"));
    assert!((2000..3000).contains(&c.talk_ms), "talk ≈ 2 s: {}", c.talk_ms);

    let c = inbound[1];
    assert_eq!(
        (c.caller.as_str(), c.called.as_str(), c.dnis.as_deref()),
        ("123", "2002", Some("2002"))
    );
    assert_eq!((c.hangup_side, c.cause.as_str()), (Some(HangupSide::System), "busy"));
    assert_eq!(c.answered_ms, None);
}
