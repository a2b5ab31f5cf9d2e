//! End-to-end analog calls on the simulator's virtual clock: simulated phones and exchange
//! lines, the real media engine and call control, stepped tick by tick. Every connected call
//! checks the audio signatures of both parties, so these prove the switch path as well as the
//! signalling.

use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::{ClockMode, EndpointId, PhoneState, SimCard};

const CONFIG: &str = r#"
[system]
name = "e2e"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 6
fxo_ports = 2
  [card.sim]
  seed = 7
  clock = "virtual"
  co_disconnect = "polarity"
  co_answer_delay_ms = 2000

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
[[extension]]
number = "2005"
port = "sim0/fxs5"

[[hunt_group]]
number = "6000"
members = ["2004", "2005"]
strategy = "linear"
ring_timeout_s = 15

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

fn pbx_with(text: &str) -> Stepped<SimCard> {
    pbx_sim(text, |_| {})
}

/// A PBX from configuration `text` on a simulated card whose settings `tune` adjusts first.
fn pbx_sim(text: &str, tune: impl FnOnce(&mut cardpbx_sim::SimConfig)) -> Stepped<SimCard> {
    let cfg = Config::parse_str(text, "e2e.toml").expect("test config is valid");
    let mut sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    tune(&mut sc);
    let card = SimCard::new(sc).expect("simulated card");
    Stepped::new(card, &cfg, "sim0").expect("pbx")
}

fn pbx() -> Stepped<SimCard> {
    pbx_with(CONFIG)
}

fn phone(p: &mut Stepped<SimCard>, port: u32) -> &mut cardpbx_sim::SimPhone {
    p.card_mut().phone_mut(port).expect("phone exists")
}

fn co(p: &mut Stepped<SimCard>, port: u32) -> &mut cardpbx_sim::SimCoLine {
    p.card_mut().co_line_mut(port).expect("line exists")
}

/// Lift phone `port` and wait until it hears dial tone.
fn lift_and_hear_dial_tone(p: &mut Stepped<SimCard>, port: u32) {
    assert!(phone(p, port).off_hook());
    let ok = p
        .run_until(2000, |s| s.card().phone(port).unwrap().hears().tone == Some(ProgressTone::Dial))
        .unwrap();
    assert!(ok, "phone {port} hears dial tone after lifting the handset");
}

/// Lift, dial, and wait for phone `to` to ring.
fn call_extension(p: &mut Stepped<SimCard>, from: u32, number: &str, to: u32) {
    lift_and_hear_dial_tone(p, from);
    phone(p, from).dial(number).unwrap();
    let ok = p.run_until(5000, |s| s.card().phone(to).unwrap().is_ringing()).unwrap();
    assert!(ok, "phone {to} rings after {number} was dialled");
}

/// Run a talk period and assert both parties heard each other and nothing else.
fn assert_talking(p: &mut Stepped<SimCard>, a: EndpointId, b: EndpointId, ms: u64) {
    let get = |s: &Stepped<SimCard>, e: EndpointId| match e {
        EndpointId::Phone(n) => s.card().phone(n).unwrap().audio_check(),
        EndpointId::CoLine(n) => s.card().co_line(n).unwrap().audio_check(),
        EndpointId::Bearer { .. } => unreachable!("no E1 spans in these tests"),
    };
    let before = (get(p, a), get(p, b));
    p.run_ms(ms).unwrap();
    let after = (get(p, a), get(p, b));
    let da = after.0.since(&before.0);
    let db = after.1.since(&before.1);
    let blocks = ms / 20;
    for (who, d) in [(a, da), (b, db)] {
        assert_eq!(d.error_blocks, 0, "{who}: audio errors {d:?}");
        assert_eq!(d.wrong_peer_blocks, 0, "{who}: heard the wrong party {d:?}");
        assert!(
            d.ok_blocks >= blocks - 2,
            "{who} heard its peer in {} of {blocks} blocks",
            d.ok_blocks
        );
    }
}

fn expect(p: &mut Stepped<SimCard>, a: EndpointId, b: EndpointId) {
    for (me, peer) in [(a, b), (b, a)] {
        match me {
            EndpointId::Phone(n) => phone(p, n).expect_peer(Some(peer)),
            EndpointId::CoLine(n) => co(p, n).expect_peer(Some(peer)),
            EndpointId::Bearer { .. } => unreachable!("no E1 spans in these tests"),
        }
    }
}

#[test]
fn extension_calls_extension_with_audio_both_ways_and_hangup_by_caller() {
    let mut p = pbx();
    call_extension(&mut p, 1, "2002", 2);
    // Ringback is 1 s on, 4 s off: a full period tells it from other tones.
    let ok = p
        .run_until(7000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Ringback)
        })
        .unwrap();
    assert!(ok, "caller hears ringback while the extension rings");
    assert!(phone(&mut p, 2).answer());
    expect(&mut p, EndpointId::Phone(1), EndpointId::Phone(2));
    p.run_ms(400).unwrap();
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::Phone(2), 3000);
    assert_eq!(p.pbx().active_calls(), 1);

    // The caller hangs up: the called phone hears busy tone; the call is over.
    phone(&mut p, 1).expect_peer(None);
    phone(&mut p, 2).expect_peer(None);
    assert!(phone(&mut p, 1).on_hook());
    let ok = p
        .run_until(5000, |s| s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the remaining party hears busy tone");
    assert_eq!(p.pbx().active_calls(), 0);
    assert!(phone(&mut p, 2).on_hook());
    p.run_ms(1000).unwrap();
    let c = p.pbx().counters();
    assert_eq!((c.calls_total, c.calls_completed, c.calls_failed), (1, 1, 0));
}

#[test]
fn called_party_hangs_up_first() {
    let mut p = pbx();
    call_extension(&mut p, 2, "2001", 1);
    p.run_ms(300).unwrap();
    assert!(phone(&mut p, 1).answer());
    expect(&mut p, EndpointId::Phone(2), EndpointId::Phone(1));
    p.run_ms(400).unwrap();
    assert_talking(&mut p, EndpointId::Phone(2), EndpointId::Phone(1), 2000);
    phone(&mut p, 1).expect_peer(None);
    phone(&mut p, 2).expect_peer(None);
    assert!(phone(&mut p, 1).on_hook());
    let ok = p
        .run_until(5000, |s| s.card().phone(2).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller hears busy tone after the called party hung up");
    // The called phone can make a new call at once.
    lift_and_hear_dial_tone(&mut p, 1);
}

#[test]
fn busy_extension_gives_busy_tone() {
    let mut p = pbx();
    call_extension(&mut p, 1, "2002", 2);
    assert!(phone(&mut p, 2).answer());
    p.run_ms(500).unwrap();
    // A third phone calls 2002, which is in a call.
    lift_and_hear_dial_tone(&mut p, 3);
    phone(&mut p, 3).dial("2002").unwrap();
    let ok = p
        .run_until(5000, |s| s.card().phone(3).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller of a busy extension hears busy tone");
    assert!(!p.card().phone(2).unwrap().is_ringing());
    assert_eq!(p.pbx().counters().calls_busy, 1);
}

#[test]
fn unknown_number_gives_congestion_tone() {
    let mut p = pbx();
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("3").unwrap();
    let ok = p
        .run_until(5000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "an unknown number gives congestion tone");
    assert_eq!(p.pbx().counters().calls_failed, 1);
}

#[test]
fn no_digit_after_dial_tone_times_out_to_congestion() {
    let mut p = pbx();
    lift_and_hear_dial_tone(&mut p, 4);
    // First-digit timeout is 10 s by default.
    p.run_ms(9000).unwrap();
    assert_eq!(p.card().phone(4).unwrap().hears().tone, Some(ProgressTone::Dial));
    let ok = p
        .run_until(5000, |s| {
            s.card().phone(4).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok);
}

#[test]
fn outgoing_trunk_call_dials_the_number_and_connects() {
    let mut p = pbx();
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("987654321").unwrap();
    // En-bloc: the number is complete after the inter-digit timeout (4 s).
    let ok = p
        .run_until(15_000, |s| s.card().co_line(1).unwrap().dialed().as_deref() == Some("87654321"))
        .unwrap();
    assert!(
        ok,
        "the exchange received the number without the prefix: {:?}",
        p.card().co_line(1).unwrap().dialed()
    );
    expect(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1));
    // The exchange answers after 2 s.
    p.run_ms(7000).unwrap();
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1), 3000);
    let calls = p.pbx().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].b_port.as_deref(), Some("sim0/fxo1"));
}

#[test]
fn incoming_trunk_call_rings_with_cadence_and_far_end_hangup_by_polarity() {
    let mut p = pbx();
    assert!(co(&mut p, 2).ring_in(Some("13800138000")));
    let ok = p.run_until(3000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "the incoming call rings extension 2003");
    let t_ring = p.now();
    // China cadence: 1 s on, 4 s off. Watch the extension's ringing for 11 s.
    let mut edges = Vec::new();
    let mut was = true;
    for _ in 0..11_000 {
        p.step().unwrap();
        let now = p.card().phone(3).unwrap().ring_voltage();
        if now != was {
            edges.push((p.now() - t_ring, now));
            was = now;
        }
    }
    let on_ms: Vec<u64> = edges.iter().filter(|e| !e.1).map(|e| e.0).collect();
    assert!(on_ms.len() >= 2, "ring bursts ended: {edges:?}");
    // Burst ends at ~1000 ms and ~6000 ms after the first burst began.
    assert!((990..=1010).contains(&on_ms[0]), "first burst 1 s: {edges:?}");
    assert!((5990..=6010).contains(&on_ms[1]), "cadence period 5 s: {edges:?}");

    assert!(phone(&mut p, 3).answer());
    expect(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3));
    p.run_ms(500).unwrap();
    assert_talking(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3), 3000);

    // The far end hangs up: the exchange reverses polarity; the PBX releases the line and
    // the extension hears busy tone.
    co(&mut p, 2).expect_peer(None);
    phone(&mut p, 3).expect_peer(None);
    assert!(co(&mut p, 2).hang_up());
    let ok = p
        .run_until(3000, |s| s.card().phone(3).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the extension hears busy tone after the far end hung up");
    assert_eq!(p.card().co_line(2).unwrap().our_hook(), cardpbx_hal::HookState::OnHook);
    assert_eq!(p.pbx().active_calls(), 0);
}

#[test]
fn caller_gives_up_before_answer_stops_ringing() {
    let mut p = pbx();
    assert!(co(&mut p, 1).ring_in(None));
    assert!(p.run_until(3000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap());
    assert!(co(&mut p, 1).give_up());
    // The ring gap timeout (6 s) says the caller has gone.
    let ok = p
        .run_until(12_000, |s| {
            s.card().phone(3).unwrap().state() == PhoneState::Idle && s.pbx().active_calls() == 0
        })
        .unwrap();
    assert!(ok, "ringing stops once the caller gave up");
}

#[test]
fn hunt_group_moves_to_next_member_when_first_does_not_answer() {
    let mut p = pbx();
    call_extension(&mut p, 1, "6000", 4);
    // 2004 does not answer for 15 s: 2005 rings.
    let ok = p.run_until(20_000, |s| s.card().phone(5).unwrap().is_ringing()).unwrap();
    assert!(ok, "the second member rings after the first member's timeout");
    assert!(!p.card().phone(4).unwrap().ring_voltage(), "the first member no longer rings");
    let ports = p.pbx().ports();
    let fxs4 = ports.iter().find(|x| x.port == "sim0/fxs4").unwrap();
    assert_eq!((fxs4.state.as_str(), fxs4.call), ("idle", None));
    assert!(phone(&mut p, 5).answer());
    expect(&mut p, EndpointId::Phone(1), EndpointId::Phone(5));
    p.run_ms(400).unwrap();
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::Phone(5), 2000);
}

#[test]
fn same_seed_gives_the_same_run() {
    let run = || {
        let mut p = pbx();
        call_extension(&mut p, 1, "2002", 2);
        assert!(phone(&mut p, 2).answer());
        p.run_ms(2000).unwrap();
        phone(&mut p, 2).on_hook();
        p.run_ms(2000).unwrap();
        (p.now(), p.pbx().counters(), p.card().phone(1).unwrap().audio_check())
    };
    assert_eq!(run(), run());
}

#[test]
fn ring_all_hunt_group_rings_every_free_member_and_first_answer_wins() {
    let mut p = pbx_with(&CONFIG.replace("strategy = \"linear\"", "strategy = \"ring_all\""));
    call_extension(&mut p, 1, "6000", 4);
    assert!(p.run_until(100, |s| s.card().phone(5).unwrap().ring_voltage()).unwrap());
    assert!(phone(&mut p, 5).answer());
    expect(&mut p, EndpointId::Phone(1), EndpointId::Phone(5));
    p.run_ms(400).unwrap();
    assert!(!p.card().phone(4).unwrap().ring_voltage(), "the other member stops ringing");
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::Phone(5), 2000);
}

#[test]
fn round_robin_hunt_group_starts_with_the_next_member_each_call() {
    let mut p = pbx_with(&CONFIG.replace("strategy = \"linear\"", "strategy = \"round_robin\""));
    let mut first_rung = Vec::new();
    for _ in 0..3 {
        lift_and_hear_dial_tone(&mut p, 1);
        phone(&mut p, 1).dial("6000").unwrap();
        let ok = p
            .run_until(5000, |s| {
                s.card().phone(4).unwrap().ring_voltage()
                    || s.card().phone(5).unwrap().ring_voltage()
            })
            .unwrap();
        assert!(ok, "a member rings");
        first_rung.push(if p.card().phone(4).unwrap().ring_voltage() { 4 } else { 5 });
        assert!(phone(&mut p, 1).on_hook());
        // Let the hang-up confirm and the simulated phones see the ringing stop.
        p.run_ms(8000).unwrap();
    }
    assert_eq!(first_rung, vec![4, 5, 4]);
}

#[test]
fn outgoing_call_with_every_trunk_line_busy_gives_congestion() {
    let mut p = pbx();
    for (ph, _line) in [(1, 1), (2, 2)] {
        lift_and_hear_dial_tone(&mut p, ph);
        phone(&mut p, ph).dial("912345").unwrap();
    }
    p.run_ms(6000).unwrap();
    lift_and_hear_dial_tone(&mut p, 3);
    phone(&mut p, 3).dial("955555").unwrap();
    let ok = p
        .run_until(10_000, |s| {
            s.card().phone(3).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "no free trunk line: congestion tone");
    assert_eq!(p.pbx().counters().calls_congested, 1);
}

// ----- DSP on the lines: caller ID, call progress, fax tones, echo -----

use cardpbx_dsp::callerid::{Format, FskStandard};
use cardpbx_hal::HookState;
use cardpbx_sim::CoCallerId;

#[test]
fn caller_id_from_the_exchange_becomes_the_calls_number_and_reaches_the_extension() {
    for (standard, mode) in [(FskStandard::Bell202, "bell202"), (FskStandard::V23, "v23")] {
        for format in [Format::Sdmf, Format::Mdmf] {
            for level in [-13.0, -30.0] {
                let text = CONFIG.replace(
                    "[system]\nname = \"e2e\"",
                    &format!("[system]\nname = \"e2e\"\n[analog]\nfxo_callerid = \"{mode}\""),
                );
                let mut p = pbx_sim(&text, |sc| {
                    sc.co.callerid = Some(CoCallerId {
                        standard,
                        format,
                        dtmf: false,
                        level_dbm0: level,
                        after_ring_ms: 600,
                    });
                });
                let case = format!("{standard:?} {format:?} at {level} dBm0");
                assert!(co(&mut p, 2).ring_in_named(Some("13912345678"), Some("Li Si")));
                let ok = p.run_until(6000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
                assert!(ok, "{case}: the call reaches extension 2003");
                let calls = p.pbx().calls();
                assert_eq!(calls[0].from, "13912345678", "{case}: ANI from caller ID");
                let name = (format == Format::Mdmf).then(|| "Li Si".to_string());
                assert_eq!(calls[0].from_name, name, "{case}: name");
                assert_eq!(p.pbx().counters().callerid_received, 1, "{case}");
                // The extension's display shows it too, sent between its first and second ring
                // (Bell 202 MDMF by default).
                let ok = p
                    .run_until(6000, |s| s.card().phone(3).unwrap().caller_id().is_some())
                    .unwrap();
                assert!(ok, "{case}: the extension received caller ID");
                let (fmt, msg) = p.card().phone(3).unwrap().caller_id().unwrap().unwrap();
                assert_eq!(fmt, Format::Mdmf);
                assert_eq!(msg.number.as_deref(), Some("13912345678"), "{case}");
                assert_eq!(msg.name, name, "{case}");
                assert_eq!(msg.date_time.as_ref().map(String::len), Some(8));
            }
        }
    }
}

#[test]
fn internal_call_sends_the_callers_extension_and_name_to_the_called_phone() {
    let text = CONFIG.replace(
        "number = \"2001\"\nport = \"sim0/fxs1\"",
        "number = \"2001\"\nport = \"sim0/fxs1\"\nname = \"Reception\"",
    );
    let mut p = pbx_with(&text);
    call_extension(&mut p, 1, "2002", 2);
    let ok = p.run_until(4000, |s| s.card().phone(2).unwrap().caller_id().is_some()).unwrap();
    assert!(ok, "the called phone shows caller ID after the first ring");
    let (_, msg) = p.card().phone(2).unwrap().caller_id().unwrap().unwrap();
    assert_eq!(msg.number.as_deref(), Some("2001"));
    assert_eq!(msg.name.as_deref(), Some("Reception"));
    // Answering after the caller ID is an ordinary call.
    assert!(phone(&mut p, 2).answer());
    expect(&mut p, EndpointId::Phone(1), EndpointId::Phone(2));
    p.run_ms(400).unwrap();
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::Phone(2), 2000);
}

#[test]
fn caller_id_off_routes_at_the_first_ring() {
    let mut p = pbx_with(&CONFIG.replace(
        "[system]\nname = \"e2e\"",
        "[system]\nname = \"e2e\"\n[analog]\nfxo_callerid = \"off\"\nfxs_callerid = \"off\"",
    ));
    assert!(co(&mut p, 2).ring_in(Some("13912345678")));
    let ok = p.run_until(800, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "without caller ID the extension rings during the first ring burst");
    assert_eq!(p.pbx().calls()[0].from, "sim0/fxo2");
    p.run_ms(8000).unwrap();
    assert!(p.card().phone(3).unwrap().caller_id().is_none());
}

/// Outgoing call from phone 1 on the first trunk line, answered by the exchange: returns when
/// both talk.
fn outgoing_call_talking(p: &mut Stepped<SimCard>) {
    lift_and_hear_dial_tone(p, 1);
    phone(p, 1).dial("987654321").unwrap();
    let ok = p.run_until(15_000, |s| s.card().co_line(1).unwrap().dialed().is_some()).unwrap();
    assert!(ok, "the number reached the exchange");
    expect(p, EndpointId::Phone(1), EndpointId::CoLine(1));
    let ok = p
        .run_until(15_000, |s| {
            s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Connected
        })
        .unwrap();
    assert!(ok, "the far end answered");
    p.run_ms(2000).unwrap();
    assert_talking(p, EndpointId::Phone(1), EndpointId::CoLine(1), 2000);
}

#[test]
fn far_end_clear_by_busy_tone_alone_is_detected_within_three_cadence_periods() {
    // China busy tone: 350 ms on, 350 ms off; three periods are 2.1 s.
    let text = CONFIG.replace("co_disconnect = \"polarity\"", "co_disconnect = \"busy_tone\"");
    for incoming in [false, true] {
        let mut p = pbx_with(&text);
        let line = if incoming { 2 } else { 1 };
        if incoming {
            assert!(co(&mut p, 2).ring_in(Some("13800138000")));
            assert!(p.run_until(6000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap());
            assert!(phone(&mut p, 3).answer());
            expect(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3));
            p.run_ms(3000).unwrap();
            assert_talking(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3), 2000);
        } else {
            outgoing_call_talking(&mut p);
        }
        co(&mut p, line).expect_peer(None);
        phone(&mut p, if incoming { 3 } else { 1 }).expect_peer(None);
        let t0 = p.now();
        assert!(co(&mut p, line).hang_up());
        let ok = p
            .run_until(5000, |s| s.card().co_line(line).unwrap().our_hook() == HookState::OnHook)
            .unwrap();
        let took = p.now() - t0;
        assert!(ok, "incoming={incoming}: the PBX never released the line after busy tone");
        assert!(took <= 2100, "incoming={incoming}: busy tone took {took} ms to detect");
        assert_eq!(p.pbx().active_calls(), 0);
    }
}

#[test]
fn busy_tone_detection_off_keeps_the_line_until_the_extension_hangs_up() {
    let text =
        CONFIG.replace("co_disconnect = \"polarity\"", "co_disconnect = \"busy_tone\"").replace(
            "[system]\nname = \"e2e\"",
            "[system]\nname = \"e2e\"\n[analog]\nfxo_hangup_on_busy_tone = false",
        );
    let mut p = pbx_with(&text);
    outgoing_call_talking(&mut p);
    co(&mut p, 1).expect_peer(None);
    phone(&mut p, 1).expect_peer(None);
    assert!(co(&mut p, 1).hang_up());
    p.run_ms(5000).unwrap();
    assert_eq!(p.card().co_line(1).unwrap().our_hook(), HookState::OffHook);
    assert!(phone(&mut p, 1).on_hook());
    let ok = p
        .run_until(2000, |s| s.card().co_line(1).unwrap().our_hook() == HookState::OnHook)
        .unwrap();
    assert!(ok);
}

#[test]
fn busy_number_on_a_trunk_is_cleared_as_busy_and_the_caller_hears_busy() {
    let mut p = pbx_sim(CONFIG, |sc| sc.co.busy_numbers = vec!["5550000".into()]);
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("95550000").unwrap();
    let ok = p
        .run_until(20_000, |s| {
            s.card().co_line(1).unwrap().our_hook() == HookState::OnHook
                && s.card().co_line(1).unwrap().dialed().is_some()
        })
        .unwrap();
    assert!(ok, "the trunk was released on busy tone");
    let ok = p
        .run_until(3000, |s| s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Busy))
        .unwrap();
    assert!(ok, "the caller hears busy tone");
    assert_eq!(p.pbx().counters().calls_busy, 1);
}

#[test]
fn voice_after_ringback_marks_the_answer_of_an_outgoing_trunk_call() {
    let text = CONFIG.replace("co_answer_delay_ms = 2000", "co_answer_delay_ms = 8000");
    let mut p = pbx_with(&text);
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("987654321").unwrap();
    let ok = p
        .run_until(15_000, |s| {
            s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Ringback
        })
        .unwrap();
    assert!(ok);
    p.run_ms(6000).unwrap();
    assert_eq!(p.pbx().calls()[0].answered, None, "still ringing: not answered");
    let ok = p
        .run_until(5000, |s| {
            s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Connected
        })
        .unwrap();
    assert!(ok);
    let t_answer = p.now();
    let ok = p.run_until(2000, |s| s.pbx().calls()[0].answered.is_some()).unwrap();
    assert!(ok, "voice after ringback counts as the answer");
    let at = p.pbx().calls()[0].answered.unwrap();
    assert!(at >= t_answer && at <= t_answer + 1000, "answer {at} vs far end {t_answer}");
}

#[test]
fn outgoing_trunk_call_that_only_rings_is_given_up_after_the_answer_timeout() {
    let text = CONFIG
        .replace("co_answer_delay_ms = 2000", "co_answer_delay_ms = 120000")
        .replace("[[route]]", "[dialplan]\nanswer_timeout_s = 10\n\n[[route]]");
    let mut p = pbx_with(&text);
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("987654321").unwrap();
    let ok = p
        .run_until(15_000, |s| {
            s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Ringback
        })
        .unwrap();
    assert!(ok);
    let ok = p
        .run_until(15_000, |s| s.card().co_line(1).unwrap().our_hook() == HookState::OnHook)
        .unwrap();
    assert!(ok, "the unanswered trunk call was given up");
    assert_eq!(p.pbx().counters().calls_unanswered, 1);
}

#[test]
fn fax_calling_tone_moves_an_incoming_call_to_the_fax_destination() {
    let text =
        CONFIG.replace("incoming = \"2003\"", "incoming = \"2003\"\nfax_destination = \"2005\"");
    let mut p = pbx_with(&text);
    co(&mut p, 2).set_remote_fax(true);
    assert!(co(&mut p, 2).ring_in(Some("075512345678")));
    let ok = p.run_until(6000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "the call first rings its normal target");
    // The PBX answered the line itself to listen: the fax machine's CNG moves the call.
    assert_eq!(p.card().co_line(2).unwrap().our_hook(), HookState::OffHook);
    let ok = p.run_until(6000, |s| s.card().phone(5).unwrap().is_ringing()).unwrap();
    assert!(ok, "the fax destination rings");
    p.run_ms(7000).unwrap();
    assert!(!p.card().phone(3).unwrap().is_ringing(), "the first target stopped ringing");
    let calls = p.pbx().calls();
    assert!(calls[0].fax);
    assert_eq!(calls[0].to, "2005");
    assert_eq!(calls[0].from, "075512345678");
    assert_eq!(p.pbx().counters().fax_calls, 1);
    assert!(phone(&mut p, 5).answer());
    p.run_ms(1000).unwrap();
    assert_eq!(p.pbx().calls()[0].b_port.as_deref(), Some("sim0/fxs5"));
}

#[test]
fn a_person_calling_a_fax_enabled_trunk_is_not_moved() {
    let text =
        CONFIG.replace("incoming = \"2003\"", "incoming = \"2003\"\nfax_destination = \"2005\"");
    let mut p = pbx_with(&text);
    assert!(co(&mut p, 2).ring_in(Some("075512345678")));
    assert!(p.run_until(6000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap());
    p.run_ms(1000).unwrap();
    assert!(phone(&mut p, 3).answer());
    expect(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3));
    p.run_ms(500).unwrap();
    assert_talking(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3), 8000);
    assert_eq!(p.pbx().counters().fax_calls, 0);
    assert!(!p.card().phone(5).unwrap().is_ringing());
}

// ----- Special information tone and DTMF caller ID -----

#[test]
fn special_information_tone_on_a_trunk_clears_the_call_as_congestion() {
    let mut p = pbx_sim(CONFIG, |sc| sc.co.unobtainable_numbers = vec!["5559999".into()]);
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("95559999").unwrap();
    let ok = p
        .run_until(20_000, |s| {
            s.card().co_line(1).unwrap().state() == cardpbx_sim::CoState::Unobtainable
        })
        .unwrap();
    assert!(ok, "the exchange plays SIT for the number");
    let t0 = p.now();
    let ok = p
        .run_until(5000, |s| s.card().co_line(1).unwrap().our_hook() == HookState::OnHook)
        .unwrap();
    assert!(ok, "the trunk was released on the special information tone");
    // One SIT (3 × 330 ms) and the gap that ends its third segment.
    let took = p.now() - t0;
    assert!(took <= 1300, "SIT took {took} ms to detect");
    let ok = p
        .run_until(3000, |s| {
            s.card().phone(1).unwrap().hears().tone == Some(ProgressTone::Congestion)
        })
        .unwrap();
    assert!(ok, "the caller hears congestion tone");
    assert_eq!(p.pbx().counters().calls_congested, 1);
    assert_eq!(p.pbx().counters().calls_busy, 0);
    assert_eq!(p.card().co_line(1).unwrap().counters().calls_out_unobtainable, 1);
    assert!(phone(&mut p, 1).on_hook());
    p.run_ms(500).unwrap();
    assert_eq!(p.pbx().active_calls(), 0);
}

fn dtmf_cid_config(fxo: &str, fxs: &str) -> String {
    CONFIG.replace(
        "[system]\nname = \"e2e\"",
        &format!(
            "[system]\nname = \"e2e\"\n[analog]\nfxo_callerid = \"{fxo}\"\nfxs_callerid = \"{fxs}\""
        ),
    )
}

#[test]
fn dtmf_caller_id_before_the_first_ring_becomes_the_calls_number() {
    for level in [-10.0, -25.0] {
        let mut p = pbx_sim(&dtmf_cid_config("dtmf", "off"), |sc| {
            sc.co.callerid = Some(CoCallerId {
                dtmf: true,
                level_dbm0: level,
                after_ring_ms: 300,
                ..CoCallerId::default()
            });
        });
        assert!(co(&mut p, 2).ring_in(Some("13912345678")));
        let ok = p.run_until(6000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
        assert!(ok, "{level} dBm0: the call reaches extension 2003");
        let calls = p.pbx().calls();
        assert_eq!(calls[0].from, "13912345678", "{level} dBm0: ANI from DTMF caller ID");
        assert_eq!(p.pbx().counters().callerid_received, 1);
        assert_eq!(p.pbx().counters().callerid_errors, 0);
        // Routed at the first ring: 13 digits × 140 ms, 300 ms, then the ring.
        assert!(p.now() < 2600, "routed at {} ms", p.now());
        assert!(phone(&mut p, 3).answer());
        expect(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3));
        p.run_ms(500).unwrap();
        assert_talking(&mut p, EndpointId::CoLine(2), EndpointId::Phone(3), 2000);
        // After the call, the idle line listens again: a second call without a number keeps
        // the port name, and a stale number is not reused.
        assert!(co(&mut p, 2).hang_up());
        p.run_until(3000, |s| s.pbx().active_calls() == 0).unwrap();
        assert!(phone(&mut p, 3).on_hook());
        p.run_ms(1000).unwrap();
        assert!(co(&mut p, 2).ring_in(None));
        let ok = p.run_until(6000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
        assert!(ok);
        assert_eq!(p.pbx().calls()[0].from, "sim0/fxo2", "unavailable: no number");
    }
}

#[test]
fn extension_gets_dtmf_caller_id_from_an_internal_call_and_a_trunk_call() {
    let tune = |sc: &mut cardpbx_sim::SimConfig| {
        sc.phone.callerid = None;
        sc.phone.callerid_dtmf = true;
    };
    // Internal: 2001 calls 2002.
    let mut p = pbx_sim(&dtmf_cid_config("bell202", "dtmf"), tune);
    call_extension(&mut p, 1, "2002", 2);
    let msg = p.card().phone(2).unwrap().dtmf_caller_id().expect("DTMF caller ID").unwrap();
    assert_eq!(msg.number.as_deref(), Some("2001"));
    assert_eq!(p.card().phone(2).unwrap().ring_count(), 1, "sent before the first ring");
    assert!(phone(&mut p, 2).answer());
    expect(&mut p, EndpointId::Phone(1), EndpointId::Phone(2));
    p.run_ms(400).unwrap();
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::Phone(2), 2000);

    // From the trunk (FSK caller ID from the exchange, DTMF to the extension).
    let mut p = pbx_sim(&dtmf_cid_config("bell202", "dtmf"), tune);
    assert!(co(&mut p, 2).ring_in(Some("075512345678")));
    let ok = p.run_until(10_000, |s| s.card().phone(3).unwrap().is_ringing()).unwrap();
    assert!(ok, "the trunk call reaches 2003");
    let msg = p.card().phone(3).unwrap().dtmf_caller_id().expect("DTMF caller ID").unwrap();
    assert_eq!(msg.number.as_deref(), Some("075512345678"));
    assert!(p.card().phone(3).unwrap().caller_id().is_none(), "no FSK as well");

    // Lifting the handset while the digits play answers the call.
    let mut p = pbx_sim(&dtmf_cid_config("bell202", "dtmf"), tune);
    lift_and_hear_dial_tone(&mut p, 1);
    phone(&mut p, 1).dial("2002").unwrap();
    let ok = p.run_until(5000, |s| s.pbx().calls().first().is_some_and(|c| c.to == "2002"));
    assert!(ok.unwrap());
    p.run_ms(200).unwrap();
    assert!(!p.card().phone(2).unwrap().is_ringing());
    assert!(phone(&mut p, 2).off_hook());
    expect(&mut p, EndpointId::Phone(1), EndpointId::Phone(2));
    p.run_ms(600).unwrap();
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::Phone(2), 2000);
}
