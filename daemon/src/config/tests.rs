//! Tests of the configuration model, loader and checks.

use super::*;
use proptest::prelude::*;
use std::path::Path;

const DEMO: &str = include_str!("../../config/demo.toml");
const EXAMPLE: &str = include_str!("../../config/example.toml");

/// A small valid configuration; tests append or change lines to break it.
const BASE: &str = r#"[system]
name = "t"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 2

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[extension]]
number = "2002"
port = "sim0/fxs2"

[[hunt_group]]
number = "6000"
members = ["2001", "2002"]

[[trunk_group]]
name = "pstn"
ports = ["sim0/fxo1", "sim0/fxo2"]
incoming = "6000"

[[route]]
prefix = "9"
trunk_group = "pstn"
strip = 1
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse_str(text, "t.toml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// The single error of `text`, checked to be at `line` and `key` and to mention `needle`.
fn one_error(text: &str, line: usize, key: &str, needle: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = errs.into_iter().next().unwrap();
    assert_eq!(e.file, "t.toml");
    assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
    assert!(e.message.contains(needle), "{e:?} should mention {needle:?}");
    e
}

#[test]
fn demo_config_is_valid() {
    let cfg = Config::parse_str(DEMO, "demo.toml").unwrap();
    assert_eq!(cfg.cards.len(), 1);
    assert_eq!(cfg.cards[0].fxs_ports, 8);
    assert_eq!(cfg.cards[0].sim_settings().clock, SimClock::Realtime);
    assert_eq!(cfg.extensions.len(), 8);
    assert_eq!(cfg.extensions[7].number, "2008");
    assert_eq!(cfg.hunt_groups[0].members, ["2005", "2006", "2007", "2008"]);
    assert_eq!(cfg.hunt_groups[0].strategy, HuntStrategy::Linear);
    assert_eq!(cfg.trunk_groups[0].ports.len(), 4);
    assert_eq!(cfg.trunk_groups[0].incoming.as_deref(), Some("6000"));
    assert_eq!(cfg.routes[0].prefix, "9");
    assert_eq!(cfg.routes[0].strip, 1);
}

#[test]
fn example_config_is_valid_and_sets_every_section() {
    let cfg = Config::parse_str(EXAMPLE, "example.toml").unwrap();
    assert_eq!(cfg.system.name, "Demo call center");
    assert_eq!(cfg.spans.len(), 1);
    assert_eq!(cfg.spans[0].to_hal().framing, cardpbx_hal::Framing::Ccs);
    assert_eq!(cfg.trunk_groups[1].ports[0].kind, PortKind::Span);
    assert_eq!(cfg.routes.len(), 2);
}

#[test]
fn defaults_apply_to_an_almost_empty_file() {
    let cfg =
        Config::parse_str("[[card]]\nname = \"c\"\ndriver = \"sim\"\nfxs_ports = 1\n", "t.toml")
            .unwrap();
    assert_eq!(cfg.system.name, "cardpbx");
    assert_eq!(cfg.system.tone_plan, "cn");
    assert_eq!(cfg.system.law, LawSetting::Alaw);
    assert!(cfg.system.realtime);
    assert_eq!(cfg.system.rt_priority, 50);
    assert_eq!(cfg.analog, AnalogConfig::default());
    assert_eq!(cfg.analog.flash_max_ms, 600);
    assert_eq!(cfg.dialplan.inter_digit_timeout_ms, 4000);
    assert!(cfg.cards[0].sim.is_none());
    assert_eq!(cfg.cards[0].sim_settings().co_disconnect, CoDisconnect::Both);
}

#[test]
fn config_round_trips_through_toml() {
    let cfg = Config::parse_str(EXAMPLE, "example.toml").unwrap();
    let text = toml::to_string(&cfg).unwrap();
    let again = Config::parse_str(&text, "again.toml").unwrap();
    assert_eq!(cfg, again);
}

#[test]
fn port_refs_parse_and_display() {
    let p: PortRef = "sim0/fxs12".parse().unwrap();
    assert_eq!(p, PortRef { card: "sim0".into(), kind: PortKind::Fxs, index: 12 });
    assert_eq!(p.to_string(), "sim0/fxs12");
    assert_eq!("a-b/span2".parse::<PortRef>().unwrap().kind, PortKind::Span);
    for bad in ["sim0", "/fxs1", "sim0/fxs", "sim0/fxs0", "sim0/abc1", "sim0/fxs-1", "sim0/fxs1x"] {
        assert!(bad.parse::<PortRef>().is_err(), "{bad} should not parse");
    }
}

#[test]
fn default_socket_path_follows_xdg_runtime_dir() {
    let p = default_socket_path();
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => assert_eq!(p, Path::new(&d).join("cardpbx.sock")),
        _ => assert!(p.to_str().unwrap().starts_with("/tmp/cardpbx-")),
    }
}

#[test]
fn syntax_error_names_line_and_column() {
    let text = BASE.replace("strip = 1", "strip = = 1");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    let line = text.lines().position(|l| l.contains("strip")).unwrap() + 1;
    assert_eq!(errs[0].line, line, "{}", errs[0]);
    assert_eq!(errs[0].column, 9);
    assert!(errs[0].to_string().starts_with(&format!("t.toml:{line}:9: ")), "{}", errs[0]);
}

#[test]
fn wrong_type_names_the_key() {
    let text = BASE.replace("fxs_ports = 4", "fxs_ports = \"4\"");
    let e = one_error(&text, 7, "card[0].fxs_ports", "invalid type: string \"4\"");
    assert!(e.message.ends_with("expected a non-negative integer"), "{e}");
    assert_eq!(e.column, 13);
}

#[test]
fn unknown_key_is_an_error() {
    let text = BASE.replace("fxs_ports = 4", "fxs_port = 4");
    one_error(&text, 7, "card[0].fxs_port", "unknown field `fxs_port`");
}

#[test]
fn unknown_enum_value_lists_the_allowed_ones() {
    let text = BASE.replace("driver = \"sim\"", "driver = \"simulator\"");
    let e = one_error(&text, 6, "card[0].driver", "`sim`");
    assert!(e.message.contains("dahdi"), "{e}");
}

#[test]
fn malformed_port_is_located() {
    let text = BASE.replace("port = \"sim0/fxs2\"", "port = \"sim0-fxs2\"");
    one_error(&text, 16, "extension[1].port", "card/fxsN");
}

#[test]
fn missing_required_key_is_located_at_its_table() {
    let text = BASE.replace("number = \"2002\"\n", "");
    one_error(&text, 14, "extension[1]", "missing field `number`");
}

#[test]
fn unknown_card_in_port() {
    let text = BASE.replace("port = \"sim0/fxs2\"", "port = \"sim9/fxs2\"");
    let e = one_error(&text, 16, "extension[1].port", "card \"sim9\" does not exist (cards: sim0)");
    assert_eq!(
        e.to_string(),
        "t.toml:16:8: extension[1].port: card \"sim9\" does not exist (cards: sim0)"
    );
}

#[test]
fn out_of_range_port() {
    let text = BASE.replace("port = \"sim0/fxs2\"", "port = \"sim0/fxs5\"");
    one_error(&text, 16, "extension[1].port", "card \"sim0\" has 4 FXS ports");
}

#[test]
fn extension_on_fxo_port() {
    let text = BASE.replace("port = \"sim0/fxs2\"", "port = \"sim0/fxo1\"");
    // fxo1 is then also in the trunk group, but the kind error is the one reported.
    one_error(&text, 16, "extension[1].port", "needs an FXS port");
}

#[test]
fn trunk_on_fxs_port() {
    let text = BASE.replace("[\"sim0/fxo1\", \"sim0/fxo2\"]", "[\"sim0/fxo1\", \"sim0/fxs3\"]");
    one_error(&text, 24, "trunk_group[0].ports[1]", "FXS (phone) port");
}

#[test]
fn port_used_twice() {
    let text = BASE.replace("port = \"sim0/fxs2\"", "port = \"sim0/fxs1\"");
    one_error(&text, 16, "extension[1].port", "already used by extension 2001");
    let text = BASE.replace("[\"sim0/fxo1\", \"sim0/fxo2\"]", "[\"sim0/fxo1\", \"sim0/fxo1\"]");
    one_error(&text, 24, "trunk_group[0].ports[1]", "already used by trunk group \"pstn\"");
}

#[test]
fn duplicate_numbers() {
    let text = BASE.replace("number = \"2002\"", "number = \"2001\"");
    // The hunt group's member 2002 is then gone as well.
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].key.as_str()), (15, "extension[1].number"));
    assert!(errs[0].message.contains("already used by the extension on sim0/fxs1"));
    assert_eq!(errs[1].key, "hunt_group[0].members[1]");
    assert!(errs[1].message.contains("member 2002 is not an extension"));

    let text = BASE.replace("[\"2001\", \"2002\"]", "[\"2001\", \"2001\"]");
    one_error(&text, 20, "hunt_group[0].members[1]", "member 2001 is listed twice");

    let text =
        BASE.replace("number = \"6000\"", "number = \"2002\"").replace("\"6000\"", "\"2002\"");
    one_error(&text, 19, "hunt_group[0].number", "already used by the extension on sim0/fxs2");
}

#[test]
fn duplicate_trunk_group_and_card_names() {
    let text = format!("{BASE}\n[[trunk_group]]\nname = \"pstn\"\nports = []\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0].key, "trunk_group[1].name");
    assert!(errs[0].message.contains("defined twice"));
    assert_eq!(errs[1].key, "trunk_group[1].ports");

    let text = format!("{BASE}\n[[card]]\nname = \"sim0\"\ndriver = \"sim\"\nfxs_ports = 1\n");
    one_error(&text, 33, "card[1].name", "card \"sim0\" is defined twice");
}

#[test]
fn bad_numbers() {
    let text =
        BASE.replace("number = \"2002\"", "number = \"20a2\"").replace("\"2002\"]", "\"2001\"]");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.key == "extension[1].number" && e.message.contains("0-9 * #")));
    let text =
        BASE.replace("number = \"6000\"", "number = \"\"").replace("incoming = \"6000\"", "");
    one_error(&text, 19, "hunt_group[0].number", "must not be empty");
}

#[test]
fn number_overlapping_route_prefix() {
    let text =
        BASE.replace("number = \"2002\"", "number = \"9002\"").replace("\"2002\"]", "\"9002\"]");
    one_error(&text, 15, "extension[1].number", "overlaps route prefix 9");
}

#[test]
fn hunt_member_and_incoming_must_exist() {
    let text = BASE.replace("members = [\"2001\", \"2002\"]", "members = [\"2001\", \"2099\"]");
    one_error(&text, 20, "hunt_group[0].members[1]", "member 2099 is not an extension");
    let text = BASE.replace("incoming = \"6000\"", "incoming = \"7000\"");
    one_error(&text, 25, "trunk_group[0].incoming", "neither an extension nor a hunt group");
}

#[test]
fn route_must_name_a_trunk_group_and_not_be_shadowed() {
    let text = BASE.replace("trunk_group = \"pstn\"", "trunk_group = \"isdn\"");
    one_error(
        &text,
        29,
        "route[0].trunk_group",
        "trunk group \"isdn\" does not exist (trunk groups: pstn)",
    );
    let text = format!("{BASE}\n[[route]]\nprefix = \"90\"\ntrunk_group = \"pstn\"\n");
    one_error(&text, 33, "route[1].prefix", "never matches");
    let text = BASE.replace("strip = 1", "strip = 5");
    one_error(&text, 30, "route[0].strip", "removes more digits");
}

#[test]
fn unknown_tone_plan() {
    let text = BASE.replace("name = \"t\"", "name = \"t\"\ntone_plan = \"mars\"");
    one_error(&text, 3, "system.tone_plan", "allowed: cn, china, itu");
}

#[test]
fn timer_ranges() {
    let text = format!("{BASE}\n[analog]\nflash_min_ms = 700\n");
    one_error(&text, 33, "analog.flash_min_ms", "must be less than flash_max_ms (600)");
    let text = format!("{BASE}\n[dialplan]\ninter_digit_timeout_ms = 10\n");
    one_error(&text, 33, "dialplan.inter_digit_timeout_ms", "allowed 500..=60000 ms");
    let text = format!("{BASE}\n[analog]\nfxo_ring_gap_timeout_ms = 99999\n");
    one_error(&text, 33, "analog.fxo_ring_gap_timeout_ms", "out of range");
    let text = BASE.replace("name = \"t\"", "name = \"t\"\nrt_priority = 0");
    one_error(&text, 3, "system.rt_priority", "1..=99");
}

#[test]
fn card_checks() {
    let text = BASE.replace("driver = \"sim\"", "driver = \"dahdi\"");
    one_error(&text, 6, "card[0].driver", "driver dahdi is not built into this binary");
    let text = format!("{BASE}\n[[card]]\nname = \"empty\"\ndriver = \"sim\"\n");
    one_error(&text, 32, "card[1]", "has no ports");
    let text = format!("{BASE}\n[[card]]\nname = \"big\"\ndriver = \"sim\"\nfxs_ports = 999\n");
    one_error(&text, 32, "card[1]", "at most 1000");
    let text = BASE.replace("name = \"sim0\"", "name = \"sim/0\"");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.key == "card[0].name" && e.message.contains("letters, digits")));
}

#[test]
fn span_checks() {
    let text = format!("{BASE}\n[[span]]\ncard = \"sim0\"\nspan = 1\n");
    one_error(&text, 34, "span[0].span", "has no E1 spans");
    let text = format!("{BASE}\n[[span]]\ncard = \"nope\"\nspan = 1\n");
    one_error(&text, 33, "span[0].card", "does not exist");
    let text = format!("{BASE}\n[[span]]\ncard = \"sim0\"\nspan = 1\nframing = \"esf\"\n");
    one_error(&text, 35, "span[0].framing", "`ccs`");
}

#[test]
fn all_semantic_errors_are_reported_at_once_in_line_order() {
    let text = BASE
        .replace("port = \"sim0/fxs2\"", "port = \"sim9/fxs2\"")
        .replace("incoming = \"6000\"", "incoming = \"7000\"")
        .replace("trunk_group = \"pstn\"", "trunk_group = \"x\"");
    let errs = errors(&text);
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["extension[1].port", "trunk_group[0].incoming", "route[0].trunk_group"]);
    let shown = ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 3);
}

#[test]
fn validate_works_without_a_file() {
    let mut cfg = Config::parse_str(BASE, "t.toml").unwrap();
    assert!(cfg.validate().is_empty());
    cfg.routes[0].trunk_group = "gone".into();
    let errs = cfg.validate();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].key, "route[0].trunk_group");
    assert_eq!(errs[0].line, 0);
    assert!(errs[0].to_string().starts_with("<config>: route[0].trunk_group: "));
}

#[test]
fn include_dir_entries_are_appended_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(
        &main,
        format!("{BASE}\n").replace("[system]\n", "[system]\ninclude_dir = \"conf.d\"\n"),
    )
    .unwrap();
    let inc = dir.path().join("conf.d");
    std::fs::create_dir(&inc).unwrap();
    std::fs::write(inc.join("b.toml"), "[[extension]]\nnumber = \"2004\"\nport = \"sim0/fxs4\"\n")
        .unwrap();
    std::fs::write(inc.join("a.toml"), "[[extension]]\nnumber = \"2003\"\nport = \"sim0/fxs3\"\n")
        .unwrap();
    std::fs::write(inc.join("notes.txt"), "not toml").unwrap();
    let cfg = Config::load(&main).unwrap();
    let numbers: Vec<&str> = cfg.extensions.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, ["2001", "2002", "2003", "2004"]);

    // A semantic error in an included file names that file and its own line and index.
    std::fs::write(
        inc.join("b.toml"),
        "\n[[extension]]\nnumber = \"2004\"\nport = \"sim0/fxs1\"\n",
    )
    .unwrap();
    let errs = Config::load(&main).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].file.ends_with("conf.d/b.toml"), "{}", errs[0]);
    assert_eq!((errs[0].line, errs[0].key.as_str()), (4, "extension[0].port"));
    assert!(errs[0].message.contains("already used by extension 2001"));

    // Included files may not carry [system].
    std::fs::write(inc.join("b.toml"), "[system]\nname = \"x\"\n").unwrap();
    let errs = Config::load(&main).unwrap_err().0;
    assert!(errs[0].file.ends_with("b.toml"));
    assert_eq!(errs[0].line, 1);
    assert!(errs[0].message.contains("may only add"), "{}", errs[0]);
}

#[test]
fn missing_include_dir_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(&main, BASE.replace("[system]\n", "[system]\ninclude_dir = \"nope\"\n"))
        .unwrap();
    let errs = Config::load(&main).unwrap_err().0;
    assert_eq!((errs[0].line, errs[0].key.as_str()), (2, "system.include_dir"));
    assert!(errs[0].message.contains("cannot read include directory"));

    let errs = Config::load(&dir.path().join("absent.toml")).unwrap_err().0;
    assert_eq!(errs[0].line, 0);
    assert!(errs[0].to_string().contains("absent.toml: cannot read the configuration"));
}

proptest! {
    #[test]
    fn parse_str_never_panics_on_random_text(text in ".{0,200}") {
        let _ = Config::parse_str(&text, "fuzz.toml");
    }

    #[test]
    fn parse_str_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Config::parse_str(&text, "fuzz.toml");
    }

    #[test]
    fn parse_str_never_panics_on_mutated_config(cut in 0usize..800, insert in "[ \\[\\]=\"a-z0-9/\\n.#]{0,8}") {
        let mut text = BASE.to_string();
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        text.insert_str(at, &insert);
        if let Err(errs) = Config::parse_str(&text, "fuzz.toml") {
            prop_assert!(!errs.0.is_empty());
            for e in errs.0 { prop_assert!(e.line >= 1); }
        }
    }
}

/// BASE with an E1 span on the card and a second trunk group using it.
fn with_span_trunk(trunk: &str, span: &str) -> String {
    let base = BASE.replace("fxo_ports = 2\n", "fxo_ports = 2\ne1_spans = 2\n");
    format!("{base}{span}\n[[trunk_group]]\nname = \"isdn\"\n{trunk}\n")
}

#[test]
fn pri_trunk_group_on_a_span_is_accepted() {
    let text = with_span_trunk(
        "signalling = \"pri-cpe\"\nports = [\"sim0/span1\"]\nchannels = \"1-10, 17-20\"\npresentation = \"restricted\"",
        "[[span]]\ncard = \"sim0\"\nspan = 1\ndchannel_capture = \"/tmp/d.pcap\"\nsim_peer_socket = \"/tmp/d.sock\"\n",
    );
    let cfg = Config::parse_str(&text, "t.toml").unwrap();
    let t = &cfg.trunk_groups[1];
    assert_eq!(t.signalling, model::TrunkSignalling::PriCpe);
    assert_eq!(t.presentation, model::Presentation::Restricted);
    let ch = t.channels.as_ref().unwrap();
    assert_eq!(ch.0, (1..=10).chain(17..=20).collect::<Vec<u8>>());
    assert_eq!(ch.to_string(), "1-10,17-20");
}

#[test]
fn channel_ranges_parse_display_and_refuse_nonsense() {
    let all: model::ChannelRanges = "1-31".parse().unwrap();
    assert_eq!(all.0.len(), 30);
    assert_eq!(all.to_string(), "1-31");
    for (bad, needle) in [
        ("16", "timeslot 16"),
        ("0-3", "outside 1..=31"),
        ("5-2", "backwards"),
        ("1,1", "twice"),
        ("1,,2", "empty"),
        ("x", "not a timeslot"),
    ] {
        let e = bad.parse::<model::ChannelRanges>().unwrap_err();
        assert!(e.to_string().contains(needle), "{bad}: {e}");
    }
}

#[test]
fn span_port_needs_span_signalling_and_fxo_port_needs_fxo() {
    let text = with_span_trunk("ports = [\"sim0/span1\"]", "");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.message.contains("set signalling")), "{errs:#?}");
    let text = with_span_trunk("signalling = \"pri_net\"\nports = [\"sim0/fxo2\"]", "")
        .replace("ports = [\"sim0/fxo1\", \"sim0/fxo2\"]", "ports = [\"sim0/fxo1\"]");
    let errs = errors(&text);
    assert!(errs.iter().any(|e| e.message.contains("runs on E1 spans")), "{errs:#?}");
}

#[test]
fn framing_must_fit_the_signalling() {
    let text = with_span_trunk("signalling = \"r2_china\"\nports = [\"sim0/span1\"]", "");
    let e = errors(&text);
    assert!(e.iter().any(|e| e.message.contains("CAS framing") && e.key.ends_with("signalling")));
    let text = with_span_trunk(
        "signalling = \"pri_cpe\"\nports = [\"sim0/span1\"]",
        "[[span]]\ncard = \"sim0\"\nspan = 1\nframing = \"cas\"\n",
    );
    let e = errors(&text);
    assert!(e.iter().any(|e| e.message.contains("CCS framing")), "{e:#?}");
}

#[test]
fn capture_and_peer_socket_need_a_pri_span() {
    let text = with_span_trunk(
        "signalling = \"r2_china\"\nports = [\"sim0/span1\"]",
        "[[span]]\ncard = \"sim0\"\nspan = 1\nframing = \"cas\"\ndchannel_capture = \"x.pcap\"\nsim_peer_socket = \"x.sock\"\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e.iter().any(|e| e.key.ends_with("dchannel_capture")));
    assert!(e.iter().any(|e| e.key.ends_with("sim_peer_socket")));
}

#[test]
fn pickup_group_needs_a_name() {
    let ok = BASE.replace("port = \"sim0/fxs2\"\n", "port = \"sim0/fxs2\"\npickup_group = \"a\"\n");
    let cfg = Config::parse_str(&ok, "t.toml").unwrap();
    assert_eq!(cfg.extensions[1].pickup_group.as_deref(), Some("a"));
    assert_eq!(cfg.extensions[0].pickup_group, None);
    let text =
        BASE.replace("port = \"sim0/fxs2\"\n", "port = \"sim0/fxs2\"\npickup_group = \" \"\n");
    let line = text.lines().position(|l| l.starts_with("pickup_group")).unwrap() + 1;
    one_error(&text, line, "extension[1].pickup_group", "needs a name");
}
