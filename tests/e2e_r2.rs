//! End-to-end MFC/R2 (China No.1) calls on the simulator's virtual clock: the daemon's call
//! control runs an R2 channel per timeslot of an E1 CAS span, the simulated R2 exchange runs
//! the other side with its own channels; the ABCD bits travel as CAS, the compelled MF
//! register signals as tones in the timeslots' audio (generated and detected on both sides),
//! and the audio of every connected call is checked by signatures both ways.

use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{Alarms, SpanId};
use cardpbx_signalling::r2::{BSignal, ClearReason, LineState};
use cardpbx_sim::{ClockMode, EndpointId, R2RemoteCall, RemoteDirection, SimCard};

const CONFIG: &str = r#"
[system]
name = "e2e-r2"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 0
e1_spans = 1
  [card.sim]
  seed = 5
  clock = "virtual"
  co_answer_delay_ms = 1500

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
[[extension]]
number = "2003"
port = "sim0/fxs3"

[[trunk_group]]
name = "r2"
signalling = "r2_china"
ports = ["sim0/span1"]
incoming = "2003"

[[route]]
prefix = "0"
trunk_group = "r2"
strip = 1
min_digits = 3
"#;

fn pbx_with(tune: impl FnOnce(&mut cardpbx_sim::SimConfig)) -> Stepped<SimCard> {
    let cfg = Config::parse_str(CONFIG, "e2e-r2.toml").expect("test config is valid");
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    tune(&mut sc);
    let card = SimCard::new(sc).expect("simulated card");
    let mut p = Stepped::new(card, &cfg, "sim0").expect("pbx");
    p.run_ms(200).unwrap();
    p
}

fn pbx() -> Stepped<SimCard> {
    pbx_with(|_| {})
}

fn phone(p: &mut Stepped<SimCard>, port: u32) -> &mut cardpbx_sim::SimPhone {
    p.card_mut().phone_mut(port).expect("phone exists")
}

fn calls(p: &Stepped<SimCard>) -> Vec<R2RemoteCall> {
    p.card().r2_calls(1)
}

fn dial_out(p: &mut Stepped<SimCard>, port: u32, digits: &str) {
    assert!(phone(p, port).off_hook());
    let ok = p
        .run_until(2000, |s| s.card().phone(port).unwrap().hears().tone == Some(ProgressTone::Dial))
        .unwrap();
    assert!(ok, "dial tone");
    phone(p, port).dial(digits).unwrap();
}

/// Talk for `ms` and check that phone `port` and the remote party on `ts` hear each other.
fn assert_talking(p: &mut Stepped<SimCard>, port: u32, ts: u8, ms: u64) {
    let remote = EndpointId::Bearer { span: 1, ts };
    phone(p, port).expect_peer(Some(remote));
    p.card_mut().r2_expect_peer(1, ts, Some(EndpointId::Phone(port)));
    let b0 = (p.card().phone(port).unwrap().audio_check(), p.card().r2_audio_check(1, ts).unwrap());
    p.run_ms(ms).unwrap();
    let b1 = (p.card().phone(port).unwrap().audio_check(), p.card().r2_audio_check(1, ts).unwrap());
    let blocks = ms / 20;
    for (who, d) in [("phone", b1.0.since(&b0.0)), ("remote", b1.1.since(&b0.1))] {
        assert_eq!(d.error_blocks, 0, "{who}: audio errors {d:?}");
        assert_eq!(d.wrong_peer_blocks, 0, "{who}: wrong party {d:?}");
        assert!(
            d.ok_blocks >= blocks - 12,
            "{who} heard its peer in {} of {blocks} blocks",
            d.ok_blocks
        );
    }
    phone(p, port).expect_peer(None);
    p.card_mut().r2_expect_peer(1, ts, None);
}

#[test]
fn outgoing_call_carries_dnis_and_ani_talks_and_we_clear_forward() {
    let mut p = pbx();
    dial_out(&mut p, 1, "05551234");
    let ok =
        p.run_until(15_000, |s| s.card().r2_calls(1).first().is_some_and(|c| c.answered)).unwrap();
    assert!(ok, "the exchange answered: {:?}", calls(&p));
    let c = calls(&p)[0].clone();
    assert_eq!(c.direction, RemoteDirection::FromPbx);
    assert_eq!(c.dnis, "5551234");
    assert_eq!(c.ani, "2001");
    assert_eq!(c.category, 1);
    assert_eq!(c.b_signal, Some(BSignal::FreeCharge));
    assert_eq!(p.pbx().active_calls(), 1);
    assert_talking(&mut p, 1, c.ts, 2000);
    // Our clear: clear forward, the exchange sees the call end and both lines go idle.
    assert!(phone(&mut p, 1).on_hook());
    let ok = p.run_until(2000, |s| s.card().r2_calls(1)[0].cleared.is_some()).unwrap();
    assert!(ok, "the exchange saw the clear forward");
    assert_eq!(calls(&p)[0].cleared, Some(ClearReason::RemoteHangup));
    p.run_ms(500).unwrap();
    assert_eq!(p.card().r2_line_state(1, c.ts), Some(LineState::Idle));
    let chan = p.card().timeslot_channel(1, c.ts).unwrap();
    assert_eq!(p.pbx().r2_line_state(chan), Some(LineState::Idle));
    assert_eq!(p.pbx().active_calls(), 0);
}

#[test]
fn outgoing_call_ringback_then_far_end_clear_back() {
    let mut p = pbx();
    dial_out(&mut p, 1, "0777");
    let ok = p
        .run_until(15_000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Ringback)
        })
        .unwrap();
    assert!(ok, "ringback after B-1");
    let ok =
        p.run_until(5000, |s| s.card().r2_calls(1).first().is_some_and(|c| c.answered)).unwrap();
    assert!(ok, "answered");
    let c = calls(&p)[0].clone();
    assert_eq!(c.dnis, "777");
    assert_talking(&mut p, 1, c.ts, 1000);
    assert!(p.card_mut().r2_hang_up(1, c.handle));
    let ok = p
        .run_until(2000, |s| s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller hears busy tone after the clear back");
    assert_eq!(p.pbx().active_calls(), 0);
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(500).unwrap();
    assert_eq!(p.card().r2_line_state(1, c.ts), Some(LineState::Idle));
}

#[test]
fn incoming_call_by_dnis_rings_the_extension_with_ani_and_the_far_end_clears() {
    let mut p = pbx();
    let h = p.card_mut().r2_call_in(1, "13800138000", "2002").unwrap();
    let ok = p.run_until(10_000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "the dialled extension rings");
    assert!(!p.card().phone(3).unwrap().is_ringing(), "DNIS picks 2002, not the group target");
    let info = p.pbx().calls();
    assert_eq!(info[0].from, "13800138000");
    assert_eq!(info[0].to, "2002");
    let ok = p.run_until(2000, |s| s.card().r2_calls(1)[0].b_signal.is_some()).unwrap();
    assert!(ok, "B-1 reached the exchange");
    assert_eq!(calls(&p)[0].b_signal, Some(BSignal::FreeCharge));
    assert!(phone(&mut p, 2).off_hook());
    let ok = p.run_until(1000, |s| s.card().r2_calls(1)[0].answered).unwrap();
    assert!(ok, "the answer reached the exchange");
    let ts = calls(&p)[0].ts;
    assert_talking(&mut p, 2, ts, 2000);
    // The far end clears forward.
    assert!(p.card_mut().r2_hang_up(1, h));
    let ok = p
        .run_until(2000, |s| s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the extension hears busy tone after the clear forward");
    assert_eq!(p.pbx().active_calls(), 0);
    assert!(phone(&mut p, 2).on_hook());
    p.run_ms(500).unwrap();
    assert_eq!(p.card().r2_line_state(1, ts), Some(LineState::Idle));
}

#[test]
fn incoming_call_answered_then_we_clear_back() {
    let mut p = pbx();
    p.card_mut().r2_call_in(1, "0755", "88888").unwrap();
    let ok = p.run_until(10_000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "an unknown DNIS goes to the group's incoming target");
    assert_eq!(p.pbx().calls()[0].from, "0755");
    assert!(phone(&mut p, 3).off_hook());
    let ok = p.run_until(1000, |s| s.card().r2_calls(1)[0].answered).unwrap();
    assert!(ok);
    let ts = calls(&p)[0].ts;
    assert_talking(&mut p, 3, ts, 1000);
    assert!(phone(&mut p, 3).on_hook());
    let ok = p.run_until(2000, |s| s.card().r2_calls(1)[0].cleared.is_some()).unwrap();
    assert!(ok, "the exchange saw the clear back");
    assert_eq!(calls(&p)[0].cleared, Some(ClearReason::RemoteHangup));
    p.run_ms(500).unwrap();
    assert_eq!(p.card().r2_line_state(1, ts), Some(LineState::Idle));
}

#[test]
fn busy_extension_refuses_with_group_b_busy() {
    let mut p = pbx();
    assert!(phone(&mut p, 2).off_hook());
    p.run_ms(100).unwrap();
    p.card_mut().r2_call_in(1, "123", "2002").unwrap();
    let ok = p.run_until(10_000, |s| s.card().r2_calls(1)[0].cleared.is_some()).unwrap();
    assert!(ok, "the call is refused");
    assert_eq!(calls(&p)[0].cleared, Some(ClearReason::Rejected(BSignal::Busy)));
    p.run_ms(500).unwrap();
    assert_eq!(p.pbx().active_calls(), 1, "only the off-hook extension's own call");
    let ts = calls(&p)[0].ts;
    assert_eq!(p.card().r2_line_state(1, ts), Some(LineState::Idle));
}

#[test]
fn busy_remote_number_gives_the_caller_busy_tone() {
    let mut p = pbx_with(|sc| sc.exchange.busy_numbers = vec!["5550000".into()]);
    dial_out(&mut p, 1, "05550000");
    let ok = p
        .run_until(15_000, |s| s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller hears busy tone");
    assert_eq!(calls(&p)[0].b_signal, Some(BSignal::Busy));
    assert_eq!(calls(&p)[0].dnis, "5550000");
}

#[test]
fn no_seize_acknowledge_times_out_with_congestion() {
    let mut p = pbx();
    // The CAS bits are lost: the exchange never sees the seizure.
    p.card_mut().r2_set_cas_cut(1, true).unwrap();
    p.run_ms(100).unwrap();
    dial_out(&mut p, 1, "0123");
    let ok = p
        .run_until(7000, |s| s.pbx().r2_span_info(SpanId(1)).is_some_and(|i| i.in_use == 1))
        .unwrap();
    assert!(ok, "a timeslot is seized");
    let seized = p.now();
    let ok = p
        .run_until(15_000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "congestion once the seize acknowledge wait ran out");
    assert!(p.now() >= seized + 8000, "not before the 8 s seize acknowledge timer");
    assert!(calls(&p).is_empty(), "nothing reached the exchange");
    // The line comes back: calls work again.
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(1500).unwrap();
    p.card_mut().r2_set_cas_cut(1, false).unwrap();
    let ok = p
        .run_until(10_000, |s| s.pbx().r2_span_info(SpanId(1)).is_some_and(|i| i.in_use == 0))
        .unwrap();
    assert!(ok, "every channel idle again");
    dial_out(&mut p, 1, "0124");
    let ok =
        p.run_until(15_000, |s| s.card().r2_calls(1).first().is_some_and(|c| c.answered)).unwrap();
    assert!(ok, "a call goes out after the CAS came back");
    assert_eq!(calls(&p)[0].dnis, "124");
}

#[test]
fn span_alarm_clears_calls_gives_congestion_and_service_returns() {
    let mut p = pbx();
    p.card_mut().r2_call_in(1, "66", "2002").unwrap();
    assert!(p.run_until(10_000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap());
    assert!(phone(&mut p, 2).off_hook());
    assert!(p.run_until(1000, |s| s.card().r2_calls(1)[0].answered).unwrap());
    p.card_mut().set_span_alarm(SpanId(1), Alarms::LOS).unwrap();
    let ok = p
        .run_until(2000, |s| s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the extension hears busy tone at once");
    assert_eq!(p.pbx().active_calls(), 0);
    assert!(phone(&mut p, 2).on_hook());
    dial_out(&mut p, 1, "0123");
    let ok = p
        .run_until(8000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "no channel while the span is in alarm");
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(1500).unwrap();
    p.card_mut().set_span_alarm(SpanId(1), Alarms::NONE).unwrap();
    // Both ends settle (the exchange saw AIS, we wait for the release).
    let ok = p
        .run_until(20_000, |s| {
            s.pbx().r2_span_info(SpanId(1)).is_some_and(|i| i.in_use == 0 && i.blocked == 0)
                && (1..=31u8)
                    .filter(|t| *t != 16)
                    .all(|t| s.card().r2_line_state(1, t) == Some(LineState::Idle))
        })
        .unwrap();
    assert!(ok, "every channel idle at both ends");
    dial_out(&mut p, 1, "0125");
    let ok = p
        .run_until(15_000, |s| s.card().r2_calls(1).iter().any(|c| c.dnis == "125" && c.answered))
        .unwrap();
    assert!(ok, "calls go out again");
}

#[test]
fn glare_the_exchange_keeps_its_call_and_ours_fails() {
    let text = CONFIG.replace("incoming = \"2003\"", "incoming = \"2003\"\nhunt = \"descending\"");
    let cfg = Config::parse_str(&text, "e2e-r2.toml").expect("valid");
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").unwrap();
    p.run_ms(200).unwrap();
    let chan31 = p.card().timeslot_channel(1, 31).unwrap();
    dial_out(&mut p, 1, "0999");
    let ok =
        p.run_until(7000, |s| s.pbx().r2_line_state(chan31) == Some(LineState::SeizeSent)).unwrap();
    assert!(ok, "we seized timeslot 31");
    // The exchange seizes the same timeslot before our seizure reached it.
    p.card_mut().r2_call_in(1, "8613", "2002").unwrap();
    assert_eq!(calls(&p)[0].ts, 31);
    let ok = p
        .run_until(3000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "our attempt lost the glare");
    let ok = p.run_until(10_000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "the exchange's call goes through on the same timeslot");
    assert_eq!(p.pbx().calls().iter().filter(|c| c.from == "8613").count(), 1);
}

#[test]
fn blocked_timeslots_are_skipped_and_a_fully_blocked_span_gives_congestion() {
    let mut p = pbx();
    for ts in (1..=31u8).filter(|t| *t != 16) {
        if ts != 5 {
            assert!(p.card_mut().r2_block(1, ts, true));
        }
    }
    p.run_ms(200).unwrap();
    dial_out(&mut p, 1, "0444");
    let ok =
        p.run_until(15_000, |s| s.card().r2_calls(1).first().is_some_and(|c| c.answered)).unwrap();
    assert!(ok, "the call goes out on the only unblocked timeslot");
    assert_eq!(calls(&p)[0].ts, 5);
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(1000).unwrap();
    assert!(p.card_mut().r2_block(1, 5, true));
    p.run_ms(200).unwrap();
    dial_out(&mut p, 1, "0444");
    let ok = p
        .run_until(8000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "congestion: every channel is blocked");
}
