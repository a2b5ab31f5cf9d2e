//! Tests of the `[[queue]]` and `[[agent]]` configuration checks.

use super::*;
use crate::config::{Config, ConfigError};

const BASE: &str = r#"[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[queue]]
number = "600"
name = "sales"
strategy = "skills"
skills = { english = 3 }
wrapup_s = 10
max_wait_s = 120
overflow = "queue:601"
announce_position = true
announce_interval_s = 30
music_on_hold = "moh/sales.wav"

[[queue.priority]]
callers = ["13800000001"]
prefixes = ["0755"]
priority = 10

[[queue]]
number = "601"
name = "service"
max_length = 5
overflow = "voicemail"

[[agent]]
id = "101"
pin = "1234"
name = "Ann"
skills = { english = 5 }
queues = ["600", "601"]

[[agent]]
id = "102"
pin = "98765"
name = "Bob"
skills = { english = 3, french = 2 }
queues = ["601", "600"]
supervisor_of = ["600"]
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse_str(text, "t.toml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// The single error of `text`, at `line` and `key`, mentioning `needle`.
fn one_error(text: &str, line: usize, key: &str, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = &errs[0];
    assert_eq!(e.file, "t.toml");
    assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
    assert!(e.message.contains(needle), "{e:?} should mention {needle:?}");
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect(needle) + 1
}

#[test]
fn valid_config_parses_with_all_fields() {
    let cfg = Config::parse_str(BASE, "t.toml").unwrap();
    assert_eq!(cfg.queues.len(), 2);
    let q = &cfg.queues[0];
    assert_eq!(q.strategy, QueueStrategy::Skills);
    assert_eq!(q.skills.get("english"), Some(&3));
    assert_eq!(q.overflow, OverflowTarget::Queue("601".into()));
    assert_eq!(q.priority[0].priority, 10);
    assert_eq!(q.ring_timeout_s, 20, "default ring timeout");
    assert_eq!(cfg.queues[1].overflow, OverflowTarget::Voicemail(None));
    assert_eq!(cfg.queues[1].strategy, QueueStrategy::LongestIdle);
    assert_eq!(cfg.agents[1].skills.get("french"), Some(&2));
    assert_eq!(cfg.agents[1].supervisor_of, vec!["600".to_string()]);
}

#[test]
fn config_round_trips_through_toml() {
    let cfg = Config::parse_str(BASE, "t.toml").unwrap();
    let text = toml::to_string(&cfg).unwrap();
    let again = Config::parse_str(&text, "t.toml").unwrap();
    assert_eq!(again.queues, cfg.queues);
    assert_eq!(again.agents, cfg.agents);
}

#[test]
fn overflow_target_syntax() {
    for (text, want) in [
        ("queue:7", OverflowTarget::Queue("7".into())),
        ("extension:2001", OverflowTarget::Extension("2001".into())),
        ("voicemail:8", OverflowTarget::Voicemail(Some("8".into()))),
        ("voicemail", OverflowTarget::Voicemail(None)),
        ("callback", OverflowTarget::Callback),
        ("hangup", OverflowTarget::Hangup),
    ] {
        let t: OverflowTarget = text.parse().unwrap();
        assert_eq!(t, want);
        assert_eq!(t.to_string(), text);
    }
    for bad in ["queue", "queue:", "callback:1", "ivr:1", ""] {
        assert!(bad.parse::<OverflowTarget>().is_err(), "{bad}");
    }
    let text = BASE.replace("overflow = \"queue:601\"", "overflow = \"queue\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, line_of(&text, "overflow = \"queue\""));
    assert!(errs[0].message.contains("not an overflow target"), "{}", errs[0]);
}

#[test]
fn unknown_strategy_is_a_type_error_at_its_line() {
    let text = BASE.replace("strategy = \"skills\"", "strategy = \"random\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, line_of(&text, "strategy = \"random\""));
}

#[test]
fn overflow_to_unknown_queue() {
    let text = BASE.replace("overflow = \"queue:601\"", "overflow = \"queue:699\"");
    one_error(&text, line_of(&text, "queue:699"), "queue[0].overflow", "queue 699 does not exist");
}

#[test]
fn overflow_to_itself_and_in_a_circle() {
    let text = BASE.replace("overflow = \"queue:601\"", "overflow = \"queue:600\"");
    one_error(&text, line_of(&text, "queue:600"), "queue[0].overflow", "itself");
    let text = BASE.replace("overflow = \"voicemail\"", "overflow = \"queue:600\"");
    one_error(
        &text,
        line_of(&text, "queue:601"),
        "queue[0].overflow",
        "circle (600 -> 601 -> 600)",
    );
}

#[test]
fn overflow_to_unknown_extension() {
    let text = BASE.replace("overflow = \"voicemail\"", "overflow = \"extension:2999\"");
    one_error(&text, line_of(&text, "2999"), "queue[1].overflow", "2999 is neither");
    let ok = BASE.replace("overflow = \"voicemail\"", "overflow = \"extension:2001\"");
    Config::parse_str(&ok, "t.toml").unwrap();
}

#[test]
fn overflow_without_a_limit_never_applies() {
    let text = BASE.replace("max_length = 5\n", "");
    one_error(&text, line_of(&text, "overflow = \"voicemail\""), "queue[1].overflow", "never");
}

#[test]
fn queue_number_clashes_with_extension_and_other_queue() {
    let text = BASE.replace("number = \"601\"", "number = \"2001\"").replace("601", "2001");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.key == "queue[1].number"
                && e.message.contains("already used by the extension")),
        "{errs:#?}"
    );
}

#[test]
fn duplicate_queue_name() {
    let text = BASE.replace("name = \"service\"", "name = \"sales\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "queue[1].name");
    assert!(errs[0].message.contains("used twice"));
}

#[test]
fn ranges_are_checked() {
    let text = BASE.replace("wrapup_s = 10", "wrapup_s = 5000");
    one_error(&text, line_of(&text, "wrapup_s"), "queue[0].wrapup_s", "allowed 0..=3600");
    let text = BASE.replace("wrapup_s = 10", "ring_timeout_s = 2");
    one_error(&text, line_of(&text, "ring_timeout_s"), "queue[0].ring_timeout_s", "5..=600");
    let text = BASE.replace("announce_interval_s = 30", "announce_interval_s = 3");
    one_error(
        &text,
        line_of(&text, "announce_interval_s"),
        "queue[0].announce_interval_s",
        "10..=3600",
    );
    let text = BASE.replace("priority = 10", "priority = 0");
    one_error(&text, line_of(&text, "priority = 0"), "queue[0].priority[0].priority", "1..=100");
}

#[test]
fn skill_levels_are_checked() {
    let text = BASE.replace("skills = { english = 5 }", "skills = { english = 11 }");
    one_error(&text, line_of(&text, "english = 11"), "agent[0].skills.english", "1..=10");
    let text = BASE.replace("skills = { english = 3 }", "skills = { english = 0 }");
    one_error(&text, line_of(&text, "english = 0"), "queue[0].skills.english", "1..=10");
}

#[test]
fn agent_lacking_queue_skills_is_reported() {
    let text = BASE.replace("skills = { english = 3, french = 2 }", "skills = { french = 2 }");
    one_error(
        &text,
        line_of(&text, "queues = [\"601\", \"600\"]"),
        "agent[1].queues[1]",
        "english >= 3",
    );
}

#[test]
fn duplicate_agent_and_bad_pin() {
    let text = BASE.replace("id = \"102\"", "id = \"101\"");
    one_error(&text, line_of(&text, "pin = \"98765\"") - 1, "agent[1].id", "defined twice");
    for pin in ["123", "123456789", "12a4", ""] {
        let text = BASE.replace("pin = \"1234\"", &format!("pin = \"{pin}\""));
        one_error(
            &text,
            line_of(&text, &format!("pin = \"{pin}\"")),
            "agent[0].pin",
            "4 to 8 digits",
        );
    }
}

#[test]
fn agent_queue_references() {
    let text = BASE.replace("queues = [\"600\", \"601\"]", "queues = [\"600\", \"699\"]");
    one_error(
        &text,
        line_of(&text, "\"699\""),
        "agent[0].queues[1]",
        "queue 699 does not exist (queues: 600, 601)",
    );
    let text = BASE.replace("queues = [\"600\", \"601\"]", "queues = [\"600\", \"600\"]");
    one_error(&text, line_of(&text, "[\"600\", \"600\"]"), "agent[0].queues[1]", "listed twice");
    let text = BASE.replace("supervisor_of = [\"600\"]", "supervisor_of = [\"6\"]");
    one_error(
        &text,
        line_of(&text, "supervisor_of"),
        "agent[1].supervisor_of[0]",
        "queue 6 does not exist",
    );
}

#[test]
fn priority_rule_numbers() {
    let text = BASE.replace("prefixes = [\"0755\"]", "prefixes = [\"07x5\"]");
    one_error(&text, line_of(&text, "07x5"), "queue[0].priority[0].prefixes[0]", "not a number");
    let text = BASE.replace("callers = [\"13800000001\"]\nprefixes = [\"0755\"]\n", "");
    one_error(
        &text,
        line_of(&text, "[[queue.priority]]"),
        "queue[0].priority[0]",
        "needs callers or prefixes",
    );
}

#[test]
fn music_on_hold_must_be_wav() {
    let text = BASE.replace("moh/sales.wav", "moh/sales.mp3");
    one_error(&text, line_of(&text, "sales.mp3"), "queue[0].music_on_hold", "not a WAV file");
}

#[test]
fn unknown_key_is_refused() {
    let text = BASE.replace("wrapup_s = 10", "wrap_up = 10");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, line_of(&text, "wrap_up"));
}

#[test]
fn queues_may_be_referenced_by_name() {
    let text = BASE
        .replace("overflow = \"queue:601\"", "overflow = \"queue:service\"")
        .replace("queues = [\"600\", \"601\"]", "queues = [\"sales\", \"service\"]");
    let cfg = Config::parse_str(&text, "t.toml").unwrap();
    let acd = crate::callcenter::acd::Acd::new(&cfg.queues, &cfg.agents);
    assert_eq!(acd.queue_by_number("service"), acd.queue_by_number("601"));
    // The same queue by name and by number is listed twice.
    let text = BASE.replace("queues = [\"600\", \"601\"]", "queues = [\"600\", \"sales\"]");
    one_error(&text, line_of(&text, "\"sales\"]"), "agent[0].queues[1]", "listed twice");
    // A name that is another queue's number would be ambiguous.
    let text = BASE.replace("name = \"service\"", "name = \"600\"");
    one_error(&text, line_of(&text, "name = \"600\""), "queue[1].name", "ambiguous");
}

#[test]
fn the_documented_example_is_valid() {
    let doc = include_str!("../../../../docs/configuration.md");
    let section = &doc[doc.find("## ACD: `[[queue]]` and `[[agent]]`").expect("ACD section")..];
    let start = section.find("```toml\n").expect("example") + "```toml\n".len();
    let example = &section[start..start + section[start..].find("```").expect("end")];
    let cfg = Config::parse_str(example, "doc.toml").unwrap();
    assert_eq!((cfg.queues.len(), cfg.agents.len()), (2, 2));
}

#[test]
fn announce_prompts_must_hold_every_word() {
    let dir = tempfile::tempdir().unwrap();
    for d in 0..10 {
        std::fs::write(dir.path().join(format!("{d}.wav")), b"x").unwrap();
    }
    // position.wav is missing (announce_position is on).
    let text = BASE.replace(
        "announce_interval_s = 30\n",
        &format!("announce_interval_s = 30\nannounce_prompts = \"{}\"\n", dir.path().display()),
    );
    one_error(
        &text,
        line_of(&text, "announce_prompts"),
        "queue[0].announce_prompts",
        "position.wav",
    );
    std::fs::write(dir.path().join("position.wav"), b"x").unwrap();
    Config::parse_str(&text, "t.toml").expect("complete word set");
    let text = BASE.replace(
        "announce_interval_s = 30\n",
        "announce_interval_s = 30\nannounce_prompts = \"/nonexistent/words\"\n",
    );
    one_error(
        &text,
        line_of(&text, "announce_prompts"),
        "queue[0].announce_prompts",
        "not a directory",
    );
}
