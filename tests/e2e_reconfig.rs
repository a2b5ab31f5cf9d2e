//! Reconfiguring trunk groups of a running PBX on the simulator's virtual clock: calls in
//! progress survive (with their audio checked), changed groups take effect for new calls at
//! once on idle lines, and lines in a call finish it before they change.

use cardpbx::config::Config;
use cardpbx::runner::Stepped;
use cardpbx::service::sim_config;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_sim::{ClockMode, EndpointId, SimCard};

const BEFORE: &str = r#"
[system]
name = "reconfig"

[analog]
fxo_callerid = "off"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 4
  [card.sim]
  seed = 11
  clock = "virtual"
  co_disconnect = "polarity"
  co_answer_delay_ms = 1000

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

# The main exchange lines.
[[trunk_group]]
name = "pstn"
ports = ["sim0/fxo1"]
incoming = "2001"

[[trunk_group]]
name = "local"
ports = ["sim0/fxo2", "sim0/fxo3"]
hunt = "ascending"
incoming = "2002"

[[route]]
prefix = "9"
trunk_group = "pstn"
strip = 1
min_digits = 4

[[route]]
prefix = "8"
trunk_group = "local"
strip = 1
min_digits = 4
"#;

fn config(text: &str) -> Config {
    Config::parse_str(text, "reconfig.toml").expect("test config is valid")
}

/// `BEFORE` with trunk group "local" hunting descending and ringing 2003.
fn after() -> Config {
    config(&BEFORE.replace(
        "hunt = \"ascending\"\nincoming = \"2002\"",
        "hunt = \"descending\"\nincoming = \"2003\"",
    ))
}

fn pbx() -> Stepped<SimCard> {
    let cfg = config(BEFORE);
    let sc = sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    Stepped::new(SimCard::new(sc).expect("simulated card"), &cfg, "sim0").expect("pbx")
}

fn audio(p: &Stepped<SimCard>, e: EndpointId) -> cardpbx_sim::AudioCheck {
    match e {
        EndpointId::Phone(n) => p.card().phone(n).unwrap().audio_check(),
        EndpointId::CoLine(n) => p.card().co_line(n).unwrap().audio_check(),
        EndpointId::Bearer { .. } => unreachable!("no spans here"),
    }
}

/// Both parties hear each other, and nothing else, for `ms`.
fn assert_talking(p: &mut Stepped<SimCard>, a: EndpointId, b: EndpointId, ms: u64) {
    let before = (audio(p, a), audio(p, b));
    p.run_ms(ms).unwrap();
    let after = (audio(p, a), audio(p, b));
    for (who, d) in [(a, after.0.since(&before.0)), (b, after.1.since(&before.1))] {
        assert_eq!(d.error_blocks, 0, "{who}: audio errors {d:?}");
        assert_eq!(d.wrong_peer_blocks, 0, "{who}: heard the wrong party {d:?}");
        assert!(d.ok_blocks >= ms / 20 - 2, "{who} heard its peer in {} blocks", d.ok_blocks);
    }
}

fn expect(p: &mut Stepped<SimCard>, phone: u32, line: u32) {
    p.card_mut().phone_mut(phone).unwrap().expect_peer(Some(EndpointId::CoLine(line)));
    p.card_mut().co_line_mut(line).unwrap().expect_peer(Some(EndpointId::Phone(phone)));
}

/// Phone `phone` dials `number` out; wait until the exchange on `line` got the digits.
fn call_out(p: &mut Stepped<SimCard>, phone: u32, number: &str, line: u32, digits: &str) {
    assert!(p.card_mut().phone_mut(phone).unwrap().off_hook());
    let ok = p
        .run_until(2000, |s| {
            s.card().phone(phone).unwrap().hears().tone == Some(ProgressTone::Dial)
        })
        .unwrap();
    assert!(ok, "dial tone on phone {phone}");
    p.card_mut().phone_mut(phone).unwrap().dial(number).unwrap();
    let ok = p
        .run_until(15_000, |s| s.card().co_line(line).unwrap().dialed().as_deref() == Some(digits))
        .unwrap();
    assert!(ok, "the exchange on line {line} got {digits}");
    expect(p, phone, line);
    p.run_ms(7000).unwrap(); // answered, past any ringback
}

/// An incoming call on `line` rings phone `phone` (and no other).
fn rings(p: &mut Stepped<SimCard>, line: u32, phone: u32) -> bool {
    assert!(p.card_mut().co_line_mut(line).unwrap().ring_in(None));
    let ok = p.run_until(4000, |s| s.card().phone(phone).unwrap().is_ringing()).unwrap();
    let others = (1..=4).filter(|&n| n != phone).any(|n| p.card().phone(n).unwrap().is_ringing());
    ok && !others
}

#[test]
fn changing_one_trunk_group_keeps_a_call_on_another_and_applies_to_new_calls() {
    let mut p = pbx();
    // A call out on "pstn" (sim0/fxo1), talking.
    call_out(&mut p, 1, "95551234", 1, "5551234");
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1), 1000);

    // Change "local": hunting and incoming target.
    let report = p.pbx_mut().reconfigure(&after()).expect("reconfigure");
    assert_eq!(report.changed, vec!["local".to_string()]);
    assert_eq!(report.unchanged, vec!["pstn".to_string()]);
    assert!(report.draining.is_empty(), "{report:?}");
    assert!(report.restart_needed.is_empty(), "{report:?}");
    assert_eq!(report.routes, 2);

    // The call on "pstn" goes on, audio intact, through and after the change.
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1), 2000);
    assert_eq!(p.pbx().active_calls(), 1);

    // New calls on "local" use the new settings: incoming rings 2003, outgoing takes the last
    // line first.
    assert!(rings(&mut p, 2, 3), "incoming call on local rings the new target 2003");
    assert!(p.card_mut().phone_mut(3).unwrap().answer());
    // Past the polarity guard after our answer, so the far end's reversal counts.
    p.run_ms(1500).unwrap();
    assert!(p.card_mut().co_line_mut(2).unwrap().hang_up());
    assert!(p.run_until(5000, |s| s.pbx().active_calls() == 1).unwrap());
    assert!(p.card_mut().phone_mut(3).unwrap().on_hook());
    p.run_ms(1000).unwrap();
    call_out(&mut p, 2, "84443333", 3, "4443333");
    assert_talking(&mut p, EndpointId::Phone(2), EndpointId::CoLine(3), 1000);
    // Still the first call, too.
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1), 1000);
    let ports = p.pbx().ports();
    let fxo3 = ports.iter().find(|x| x.port == "sim0/fxo3").unwrap();
    assert_eq!(fxo3.trunk_group.as_deref(), Some("local"));
}

#[test]
fn a_line_in_a_call_finishes_it_with_the_old_settings_then_changes() {
    let mut p = pbx();
    // A call out on "local" (sim0/fxo2).
    call_out(&mut p, 1, "85551234", 2, "5551234");
    let report = p.pbx_mut().reconfigure(&after()).expect("reconfigure");
    assert_eq!(report.draining, vec!["sim0/fxo2".to_string()]);
    assert_eq!(p.pbx().draining_ports(), vec!["sim0/fxo2".to_string()]);
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(2), 2000);
    // The idle line of the group took the new settings at once.
    assert!(rings(&mut p, 3, 3), "sim0/fxo3 rings 2003 now");
    assert!(p.card_mut().co_line_mut(3).unwrap().hang_up());
    p.run_ms(8000).unwrap();
    // The call ends; the line moves.
    assert!(p.card_mut().phone_mut(1).unwrap().on_hook());
    assert!(p.run_until(5000, |s| s.pbx().draining_ports().is_empty()).unwrap());
    p.run_ms(1000).unwrap();
    assert!(rings(&mut p, 2, 3), "sim0/fxo2 rings 2003 after its call");
}

#[test]
fn removing_and_adding_groups_at_run_time() {
    let mut p = pbx();
    call_out(&mut p, 1, "95551234", 1, "5551234");
    // "local" goes, "spare" on fxo4 comes, routed by 7.
    let text = BEFORE
        .replace(
            "[[trunk_group]]\nname = \"local\"\nports = [\"sim0/fxo2\", \"sim0/fxo3\"]\nhunt = \"ascending\"\nincoming = \"2002\"\n",
            "[[trunk_group]]\nname = \"spare\"\nports = [\"sim0/fxo4\"]\nincoming = \"2004\"\n",
        )
        .replace("prefix = \"8\"\ntrunk_group = \"local\"", "prefix = \"7\"\ntrunk_group = \"spare\"");
    let report = p.pbx_mut().reconfigure(&config(&text)).expect("reconfigure");
    assert_eq!(report.added, vec!["spare".to_string()]);
    assert_eq!(report.removed, vec!["local".to_string()]);
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1), 1000);
    assert!(rings(&mut p, 4, 4), "the new group's line rings its target");
    assert!(p.card_mut().phone_mut(4).unwrap().answer());
    p.card_mut().phone_mut(4).unwrap().expect_peer(Some(EndpointId::CoLine(4)));
    p.card_mut().co_line_mut(4).unwrap().expect_peer(Some(EndpointId::Phone(4)));
    p.run_ms(500).unwrap();
    assert_talking(&mut p, EndpointId::CoLine(4), EndpointId::Phone(4), 1000);
    // The removed group's lines are out of service: a ring there reaches nobody.
    assert!(p.card_mut().co_line_mut(2).unwrap().ring_in(None));
    p.run_ms(3000).unwrap();
    assert!(!p.card().phone(2).unwrap().is_ringing());
    assert!(p.pbx().ports().iter().all(|x| x.port != "sim0/fxo2"));
    assert_talking(&mut p, EndpointId::Phone(1), EndpointId::CoLine(1), 1000);
}

#[test]
fn call_center_changes_are_reported_as_needing_a_restart() {
    let mut p = pbx();
    let text = format!(
        "{BEFORE}\n[[queue]]\nnumber = \"600\"\nname = \"sales\"\n\n[callback]\nmin_digits = 7\n"
    );
    let report = p.pbx_mut().reconfigure(&config(&text)).expect("reconfigure");
    assert_eq!(report.restart_needed, ["[[queue]]", "[callback]"], "{report:?}");
    assert!(report.changed.is_empty(), "{report:?}");
}
