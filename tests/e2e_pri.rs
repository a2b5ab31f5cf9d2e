//! End-to-end ISDN PRI calls on the simulator's virtual clock: the daemon's call control runs
//! one side of our LAPD/Q.931 stack on an E1 span, the simulated exchange runs the other side
//! on the span's far end, and the bearer audio of every connected call is checked by
//! signatures both ways.

use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{Alarms, SpanId};
use cardpbx_sim::{ClockMode, EndpointId, RemoteCall, RemoteDirection, SimCard};

fn config(signalling: &str) -> String {
    format!(
        r#"
[system]
name = "e2e-pri"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 0
e1_spans = 1
  [card.sim]
  seed = 3
  clock = "virtual"
  co_answer_delay_ms = 1500

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
signalling = "{signalling}"
ports = ["sim0/span1"]
incoming = "2003"

[[route]]
prefix = "0"
trunk_group = "isdn"
strip = 1
min_digits = 3
"#
    )
}

fn pbx_with(signalling: &str, tune: impl FnOnce(&mut cardpbx_sim::SimConfig)) -> Stepped<SimCard> {
    let text = config(signalling);
    let cfg = Config::parse_str(&text, "e2e-pri.toml").expect("test config is valid");
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    tune(&mut sc);
    let card = SimCard::new(sc).expect("simulated card");
    let mut p = Stepped::new(card, &cfg, "sim0").expect("pbx");
    let up = p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap();
    assert!(up, "the D-channel comes up");
    // Let the restart on link up finish.
    p.run_ms(500).unwrap();
    p
}

fn pbx() -> Stepped<SimCard> {
    pbx_with("pri_cpe", |_| {})
}

fn phone(p: &mut Stepped<SimCard>, port: u32) -> &mut cardpbx_sim::SimPhone {
    p.card_mut().phone_mut(port).expect("phone exists")
}

fn live_call(p: &Stepped<SimCard>) -> RemoteCall {
    let calls = p.card().pri_calls(1);
    calls.into_iter().find(|c| c.cause.is_none()).expect("a call is up on the exchange")
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
    p.card_mut().pri_expect_peer(1, ts, Some(EndpointId::Phone(port)));
    let b0 =
        (p.card().phone(port).unwrap().audio_check(), p.card().pri_audio_check(1, ts).unwrap());
    p.run_ms(ms).unwrap();
    let b1 =
        (p.card().phone(port).unwrap().audio_check(), p.card().pri_audio_check(1, ts).unwrap());
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
    p.card_mut().pri_expect_peer(1, ts, None);
}

#[test]
fn outgoing_call_is_answered_talks_and_clears_normally() {
    let mut p = pbx();
    dial_out(&mut p, 1, "05551234");
    // En-bloc after the inter-digit timeout.
    let ok = p.run_until(8000, |s| !s.card().pri_calls(1).is_empty()).unwrap();
    assert!(ok, "a SETUP reached the exchange");
    assert_eq!(p.card().pri_dialed(1), vec!["5551234".to_string()]);
    let c = live_call(&p);
    assert_eq!(c.direction, RemoteDirection::FromPbx);
    assert_eq!(c.calling.as_deref(), Some("2001"));
    // Alerting: the caller hears ringback until the remote party answers.
    let ok = p
        .run_until(1400, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Ringback)
        })
        .unwrap();
    assert!(ok, "ringback while the remote party is alerted");
    let ok = p.run_until(3000, |s| s.card().pri_calls(1)[0].answered).unwrap();
    assert!(ok, "the remote party answers");
    let ts = live_call(&p).ts.unwrap();
    assert_talking(&mut p, 1, ts, 2000);
    assert!(phone(&mut p, 1).on_hook());
    let ok = p.run_until(2000, |s| s.card().pri_calls(1)[0].cause.is_some()).unwrap();
    assert!(ok, "the call is released on the exchange");
    assert_eq!(p.card().pri_calls(1)[0].cause, Some(16));
    assert_eq!(p.pbx().active_calls(), 0);
}

#[test]
fn incoming_call_by_did_rings_the_extension_and_the_far_end_clears() {
    let mut p = pbx();
    let h = p.card_mut().pri_call_in(1, Some("13800138000"), "2002").unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "the dialled extension rings");
    assert!(!p.card().phone(3).unwrap().is_ringing(), "DID picks 2002, not the group target");
    let calls = p.pbx().calls();
    assert_eq!(calls[0].from, "13800138000");
    assert!(phone(&mut p, 2).off_hook());
    let ok = p.run_until(1000, |s| s.card().pri_calls(1)[0].answered).unwrap();
    assert!(ok, "CONNECT reached the exchange");
    let ts = live_call(&p).ts.unwrap();
    assert_talking(&mut p, 2, ts, 2000);
    assert!(p.card_mut().pri_hang_up(1, h));
    let ok = p
        .run_until(2000, |s| s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the extension hears busy tone after the far end cleared");
    assert_eq!(p.pbx().active_calls(), 0);
}

#[test]
fn incoming_call_to_an_unknown_did_goes_to_the_group_target() {
    let mut p = pbx();
    p.card_mut().pri_call_in(1, None, "88888").unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "the trunk group's incoming target rings");
}

#[test]
fn busy_extension_refuses_the_call_with_cause_17() {
    let mut p = pbx();
    assert!(phone(&mut p, 2).off_hook());
    p.run_ms(100).unwrap();
    p.card_mut().pri_call_in(1, Some("123"), "2002").unwrap();
    let ok = p.run_until(3000, |s| s.card().pri_calls(1)[0].cause.is_some()).unwrap();
    assert!(ok, "the call is cleared");
    assert_eq!(p.card().pri_calls(1)[0].cause, Some(17));
}

#[test]
fn busy_remote_number_gives_the_caller_busy_tone() {
    let mut p = pbx_with("pri_cpe", |sc| sc.exchange.busy_numbers = vec!["5550000".into()]);
    dial_out(&mut p, 1, "05550000");
    let ok = p
        .run_until(8000, |s| s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller hears busy tone");
    assert_eq!(p.card().pri_calls(1)[0].cause, Some(17));
}

#[test]
fn network_side_pbx_calls_both_ways() {
    // cardpbx as the network side; the simulated far end is a PBX on the user side.
    let mut p = pbx_with("pri_net", |_| {});
    dial_out(&mut p, 1, "0777");
    let ok =
        p.run_until(8000, |s| s.card().pri_calls(1).first().is_some_and(|c| c.answered)).unwrap();
    assert!(ok, "the user side answered our call");
    let ts = live_call(&p).ts.unwrap();
    assert_talking(&mut p, 1, ts, 1000);
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(1000).unwrap();
    p.card_mut().pri_call_in(1, Some("100"), "2002").unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "a call from the user side rings the extension");
    assert!(phone(&mut p, 2).off_hook());
    p.run_ms(500).unwrap();
    let ts = live_call(&p).ts.unwrap();
    assert_talking(&mut p, 2, ts, 1000);
}

#[test]
fn dchannel_loss_clears_the_call_after_t309_and_the_span_comes_back() {
    let mut p = pbx();
    p.card_mut().pri_call_in(1, Some("1"), "2002").unwrap();
    p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(phone(&mut p, 2).off_hook());
    p.run_ms(1000).unwrap();
    assert_eq!(p.pbx().active_calls(), 1);
    p.card_mut().set_dchannel_cut(1, true).unwrap();
    // LAPD notices within T203 + N200·T200 (10 + 4 s); active calls then wait T309 (6 s).
    p.run_ms(12_000).unwrap();
    assert_eq!(p.pbx().active_calls(), 1, "an active call survives while T309 runs");
    let ok = p
        .run_until(20_000, |s| s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the call is cleared when T309 expires");
    assert_eq!(p.pbx().active_calls(), 0);
    assert!(phone(&mut p, 2).on_hook());
    p.card_mut().set_dchannel_cut(1, false).unwrap();
    let ok = p.run_until(10_000, |s| s.card().pri_link_up(1)).unwrap();
    assert!(ok, "the D-channel comes back");
    let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
    assert!(info.link_up && info.link_downs >= 1, "{info:?}");
    p.run_ms(1000).unwrap();
    p.card_mut().pri_call_in(1, None, "2001").unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(1).unwrap().is_ringing()).unwrap();
    assert!(ok, "calls work again");
}

#[test]
fn span_alarm_takes_calls_down_at_once_and_clearing_it_restores_service() {
    let mut p = pbx();
    dial_out(&mut p, 1, "0123");
    let ok =
        p.run_until(8000, |s| s.card().pri_calls(1).first().is_some_and(|c| c.answered)).unwrap();
    assert!(ok);
    p.card_mut().set_span_alarm(SpanId(1), Alarms::LOS).unwrap();
    let ok = p
        .run_until(2000, |s| s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller hears busy tone at once");
    assert_eq!(p.pbx().active_calls(), 0);
    assert!(!p.pbx().pri_span_info(SpanId(1)).unwrap().link_up);
    assert!(phone(&mut p, 1).on_hook());
    // No calls out while the span is down: congestion.
    p.run_ms(1000).unwrap();
    dial_out(&mut p, 1, "0123");
    let ok = p
        .run_until(8000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "no channel while the span is in alarm");
    assert!(phone(&mut p, 1).on_hook());
    p.card_mut().set_span_alarm(SpanId(1), Alarms::NONE).unwrap();
    let ok = p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap();
    assert!(ok, "the D-channel comes back with the line");
    p.run_ms(1500).unwrap();
    dial_out(&mut p, 1, "0124");
    let ok = p
        .run_until(8000, |s| s.card().pri_calls(1).iter().any(|c| c.called == "124" && c.answered))
        .unwrap();
    assert!(ok, "calls go out again");
}

#[test]
fn thirty_simultaneous_incoming_calls_fill_the_span() {
    let text = config("pri_cpe").replace("fxs_ports = 4", "fxs_ports = 31");
    let mut text = text;
    for n in 4..=31 {
        text.push_str(&format!(
            "[[extension]]\nnumber = \"{}\"\nport = \"sim0/fxs{n}\"\n",
            2000 + n
        ));
    }
    let cfg = Config::parse_str(&text, "e2e-pri.toml").expect("valid");
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.phone.auto_answer_ms = Some(300);
    let card = SimCard::new(sc).unwrap();
    let mut p = Stepped::new(card, &cfg, "sim0").unwrap();
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap());
    p.run_ms(500).unwrap();
    for n in 1..=30 {
        p.card_mut().pri_call_in(1, Some("555"), &format!("{}", 2000 + n)).unwrap();
    }
    let ok = p
        .run_until(5000, |s| s.card().pri_calls(1).iter().filter(|c| c.answered).count() == 30)
        .unwrap();
    assert!(ok, "30 calls answered");
    assert_eq!(p.pbx().active_calls(), 30);
    let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
    assert_eq!(info.bearers_in_use, 30);
    // A 31st call finds no channel on the exchange.
    assert!(p.card_mut().pri_call_in(1, None, "2001").is_err());
}

#[test]
fn overlap_receiving_collects_the_did_in_information_messages() {
    let mut p = pbx();
    let h = p.card_mut().pri_call_in_overlap(1, Some("139"), "20").unwrap();
    p.run_ms(200).unwrap();
    assert!(!p.card().phone(2).unwrap().is_ringing(), "20 is not a number yet");
    assert_eq!(
        p.card().pri_calls(1)[0].state.q931_value(cardpbx_signalling::q931::call::Side::Network),
        25
    );
    p.card_mut().pri_send_digits(1, h, "0", false).unwrap();
    p.run_ms(200).unwrap();
    p.card_mut().pri_send_digits(1, h, "2", false).unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "2002 rings once its last digit arrived");
    assert_eq!(p.pbx().calls()[0].to, "2002");
}

#[test]
fn overlap_receiving_routes_to_the_group_target_when_t302_expires() {
    let mut p = pbx();
    p.card_mut().pri_call_in_overlap(1, None, "2").unwrap();
    p.run_ms(14_000).unwrap();
    assert!(!p.card().phone(3).unwrap().is_ringing(), "T302 (15 s) still runs");
    let ok = p.run_until(2000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "no more digits: the trunk group's incoming target rings");
}

/// Two PRI spans in two groups, for reloads.
fn two_span_config(b_incoming: &str, b_channels: &str) -> String {
    config("pri_cpe").replace("e1_spans = 1", "e1_spans = 2")
        + &format!(
            "\n[[trunk_group]]\nname = \"b\"\nsignalling = \"pri_cpe\"\nports = [\"sim0/span2\"]\n\
             incoming = \"{b_incoming}\"\nchannels = \"{b_channels}\"\n"
        )
}

#[test]
fn reload_restarts_a_changed_span_group_and_leaves_the_others_calls_alone() {
    let text = two_span_config("2003", "1-15,17-31");
    let cfg = Config::parse_str(&text, "r.toml").unwrap();
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").unwrap();
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1) && s.card().pri_link_up(2)).unwrap());
    p.run_ms(500).unwrap();
    // A call up on span 1 (group "isdn").
    p.card_mut().pri_call_in(1, Some("1"), "2001").unwrap();
    assert!(p.run_until(2000, |s| s.card().phone(1).unwrap().is_ringing()).unwrap());
    assert!(phone(&mut p, 1).off_hook());
    p.run_ms(500).unwrap();
    let ts = live_call(&p).ts.unwrap();
    // Group "b" on span 2 changes its target and channels (the exchange picks from 31 down).
    let new = Config::parse_str(&two_span_config("2002", "20-31"), "r.toml").unwrap();
    let rep = p.pbx_mut().reconfigure(&new).unwrap();
    assert_eq!(rep.span_groups_applied, vec!["b".to_string()], "{rep:?}");
    assert!(rep.span_groups_pending.is_empty());
    assert_talking(&mut p, 1, ts, 1000);
    // Span 2 comes back with the new settings: calls ring 2002 now, on timeslots 20-31 only.
    assert!(p
        .run_until(5000, |s| s.pbx().pri_span_info(SpanId(2)).is_some_and(|i| i.link_up))
        .unwrap());
    assert_eq!(p.pbx().pri_span_info(SpanId(2)).unwrap().bearers, 12);
    p.run_ms(1000).unwrap();
    p.card_mut().pri_call_in(2, None, "999").unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "{:#?} {:?}", p.card().pri_calls(2), p.pbx().calls());
    assert!(phone(&mut p, 2).off_hook());
    p.run_ms(300).unwrap();
    assert!(phone(&mut p, 2).on_hook());
    p.run_ms(1000).unwrap();
    // Changing the busy group "isdn" waits for its call to end.
    let text3 =
        two_span_config("2002", "20-31").replace("incoming = \"2003\"", "incoming = \"2002\"");
    let rep = p.pbx_mut().reconfigure(&Config::parse_str(&text3, "r.toml").unwrap()).unwrap();
    assert_eq!(rep.span_groups_pending, vec!["isdn".to_string()], "{rep:?}");
    assert_talking(&mut p, 1, ts, 500);
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(2000).unwrap();
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap());
    p.run_ms(1000).unwrap();
    // Span 1 runs with the new settings: an unknown DID now rings 2002.
    p.card_mut().pri_call_in(1, None, "777").unwrap();
    let ok = p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap();
    assert!(ok, "{:?}", p.pbx().calls());
    let rep = p.pbx_mut().reconfigure(&Config::parse_str(&text3, "r.toml").unwrap()).unwrap();
    assert!(rep.span_groups_pending.is_empty() && rep.span_groups_applied.is_empty(), "{rep:?}");
}

#[test]
fn reload_removes_a_span_group() {
    let text = two_span_config("2003", "1-15,17-31");
    let cfg = Config::parse_str(&text, "r.toml").unwrap();
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut p = Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").unwrap();
    assert!(p.run_until(5000, |s| s.card().pri_link_up(2)).unwrap());
    let rep = p
        .pbx_mut()
        .reconfigure(
            &Config::parse_str(
                &config("pri_cpe").replace("e1_spans = 1", "e1_spans = 2"),
                "r.toml",
            )
            .unwrap(),
        )
        .unwrap();
    assert_eq!(rep.span_groups_applied, vec!["b".to_string()], "{rep:?}");
    assert!(p.pbx().pri_span_info(SpanId(2)).is_none(), "span 2 is out of service");
    // The exchange loses its data link (nobody answers on the D-channel any more).
    assert!(p.run_until(30_000, |s| !s.card().pri_link_up(2)).unwrap());
}

// ----- Q.931 timers on the simulator: the exchange goes deaf or silent -----

/// Dial out and return the tick at which the SETUP left (the call is out-dialling).
fn dial_out_until_setup(p: &mut Stepped<SimCard>, digits: &str) -> u64 {
    dial_out(p, 1, digits);
    let ok = p
        .run_until(8000, |s| {
            s.pbx()
                .calls()
                .first()
                .is_some_and(|c| c.b_port.as_deref().unwrap_or("").contains("span1"))
        })
        .unwrap();
    assert!(ok, "the call went out on the span");
    p.now()
}

fn hears(p: &Stepped<SimCard>, port: u32, tone: ProgressTone) -> bool {
    p.card().phone(port).unwrap().hears().tone == Some(tone)
}

#[test]
fn t303_no_answer_to_setup_is_retried_once_then_the_caller_hears_congestion() {
    let mut p = pbx();
    p.card_mut().pri_set_deaf(1, true).unwrap();
    let sent = dial_out_until_setup(&mut p, "0123");
    // T303 (4 s) runs twice: SETUP, SETUP again, then the call is given up.
    p.run_ms(7_500 - (p.now() - sent)).unwrap();
    assert!(!hears(&p, 1, ProgressTone::Congestion), "still waiting at 7.5 s");
    assert_eq!(p.pbx().active_calls(), 1);
    let ok = p.run_until(2_500, |s| hears(s, 1, ProgressTone::Congestion)).unwrap();
    assert!(ok, "congestion after 2 x T303");
    assert_eq!(p.pbx().pri_span_info(SpanId(1)).unwrap().bearers_in_use, 0);
}

#[test]
fn t310_proceeding_without_alerting_clears_after_30_s() {
    let mut p = pbx_with("pri_cpe", |sc| sc.exchange.silent_numbers = vec!["4444".into()]);
    let sent = dial_out_until_setup(&mut p, "04444");
    p.run_ms(29_000 - (p.now() - sent)).unwrap();
    assert!(!hears(&p, 1, ProgressTone::Congestion), "T310 still runs");
    let ok = p.run_until(4_000, |s| hears(s, 1, ProgressTone::Congestion)).unwrap();
    assert!(ok, "T310 expired: the call is cleared");
    assert!(
        p.card().pri_calls(1).iter().any(|c| c.cause == Some(102)),
        "{:?}",
        p.card().pri_calls(1)
    );
}

#[test]
fn t313_connect_without_acknowledge_clears_the_answered_call() {
    let mut p = pbx();
    p.card_mut().pri_call_in(1, Some("5"), "2002").unwrap();
    assert!(p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap());
    p.card_mut().pri_set_deaf(1, true).unwrap();
    assert!(phone(&mut p, 2).off_hook());
    // CONNECT goes out; no CONNECT ACKNOWLEDGE within T313 (4 s): we clear.
    p.run_ms(3_500).unwrap();
    assert_eq!(p.pbx().active_calls(), 1);
    let ok = p.run_until(3_000, |s| hears(s, 2, ProgressTone::Busy)).unwrap();
    assert!(ok, "the extension hears busy tone when T313 clears the call");
}

#[test]
fn t305_and_t308_release_a_call_the_network_no_longer_answers() {
    let mut p = pbx();
    p.card_mut().pri_call_in(1, Some("5"), "2002").unwrap();
    assert!(p.run_until(2000, |s| s.card().phone(2).unwrap().is_ringing()).unwrap());
    assert!(phone(&mut p, 2).off_hook());
    p.run_ms(1000).unwrap();
    p.card_mut().pri_set_deaf(1, true).unwrap();
    assert!(phone(&mut p, 2).on_hook());
    // DISCONNECT unanswered: T305 (30 s) then RELEASE, T308 (4 s) twice, then the channel is
    // free again.
    // (The hang-up is recognised 0.6 s after the handset goes down: longer than a flash.)
    p.run_ms(29_000).unwrap();
    assert_eq!(p.pbx().pri_span_info(SpanId(1)).unwrap().bearers_in_use, 1, "T305 runs");
    p.run_ms(5_000).unwrap();
    assert_eq!(p.pbx().pri_span_info(SpanId(1)).unwrap().bearers_in_use, 1, "T308 runs");
    p.run_ms(5_500).unwrap();
    assert_eq!(p.pbx().pri_span_info(SpanId(1)).unwrap().bearers_in_use, 0, "released");
}

#[test]
fn t316_unacknowledged_restart_returns_the_channels_after_two_attempts() {
    let text = config("pri_cpe");
    let cfg = Config::parse_str(&text, "e2e-pri.toml").unwrap();
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut card = SimCard::new(sc).unwrap();
    card.pri_set_deaf(1, true).unwrap();
    let mut p = Stepped::new(card, &cfg, "sim0").unwrap();
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap());
    // The RESTART on link up is never acknowledged: the channels stay out of service for
    // 2 x T316 (2 x 120 s); a call meanwhile finds no channel.
    p.run_ms(2000).unwrap();
    dial_out(&mut p, 1, "0123");
    let ok = p.run_until(8000, |s| hears(s, 1, ProgressTone::Congestion)).unwrap();
    assert!(ok, "no channel while the restart is pending");
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(240_000).unwrap();
    // Channels are back: the next SETUP goes out (and is not answered, the exchange is deaf).
    dial_out_until_setup(&mut p, "0124");
}

#[test]
fn glare_both_ends_seize_the_same_channel_and_the_network_wins() {
    // We hunt from timeslot 31 down, as the exchange does: both pick 31 at once.
    let mut p = pbx_with("pri_cpe", |_| {});
    let text = config("pri_cpe")
        .replace("incoming = \"2003\"", "incoming = \"2003\"\nhunt = \"descending\"");
    let cfg = Config::parse_str(&text, "e2e-pri.toml").unwrap();
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    let mut card = SimCard::new(sc).unwrap();
    card.set_dchannel_delay(1, 40).unwrap();
    p = {
        drop(p);
        Stepped::new(card, &cfg, "sim0").unwrap()
    };
    assert!(p.run_until(5000, |s| s.card().pri_link_up(1)).unwrap());
    p.run_ms(1000).unwrap();
    dial_out(&mut p, 1, "0123");
    // The moment our SETUP leaves, the exchange places its own call: the SETUPs cross.
    let ok = p
        .run_until(8000, |s| !s.pbx().calls().is_empty() && s.pbx().calls()[0].b_port.is_some())
        .unwrap();
    assert!(ok);
    let h = p.card_mut().pri_call_in(1, Some("9"), "2002").unwrap();
    let ok = p
        .run_until(5000, |s| {
            let c = s.card().pri_calls(1);
            c.len() == 2
                && c.iter().all(|c| c.answered || c.direction == RemoteDirection::ToPbx)
                && s.card().phone(2).unwrap().is_ringing()
        })
        .unwrap();
    assert!(ok, "both calls go on: {:#?}", p.card().pri_calls(1));
    let calls = p.card().pri_calls(1);
    let theirs = calls.iter().find(|c| c.handle == h).unwrap();
    let ours = calls.iter().find(|c| c.handle != h).unwrap();
    assert_eq!(theirs.ts, Some(31), "the network keeps the channel it chose");
    assert_ne!(ours.ts, Some(31), "our call moved to another channel");
    let ts = ours.ts.expect("our call has a channel");
    // The caller talks on the channel the network gave the call.
    assert_talking(&mut p, 1, ts, 1000);
}
