use super::*;
use crate::config::{Config, ConfigError};
use std::path::Path;

/// A directory with good and bad prompt files.
struct Prompts {
    dir: tempfile::TempDir,
}

impl Prompts {
    fn new() -> Prompts {
        let dir = tempfile::tempdir().unwrap();
        crate::audiofile::write_wav(&dir.path().join("good.wav"), &[0i16; 800]).unwrap();
        // A 16 kHz file: wrong rate.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.path().join("wide.wav"), spec).unwrap();
        for _ in 0..100 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        std::fs::write(dir.path().join("text.wav"), b"hello, not a wav").unwrap();
        Prompts { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `text` with `@name` replaced by the absolute path of prompt `name`.
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for name in ["good.wav", "wide.wav", "text.wav", "missing.wav"] {
            out = out.replace(&format!("@{name}"), &self.path(name));
        }
        out
    }
}

const BASE: &str = r#"
[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2

[[extension]]
number = "201"
port = "sim0/fxs1"

[[queue]]
number = "7000"
name = "support"

[[agent]]
id = "1001"
pin = "1234"
name = "Ann"
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse_str(text, "t.toml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.0,
    }
}

/// Line of the first line of `text` containing `needle` (1-based).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn has(errs: &[ConfigError], line: usize, key: &str, needle: &str) -> bool {
    errs.iter().any(|e| e.line == line && e.key == key && e.message.contains(needle))
}

#[test]
fn a_full_call_center_configuration_is_valid() {
    let p = Prompts::new();
    let text = p.fill(&format!(
        r#"{BASE}
[[schedule]]
name = "office"
hours = ["mon-fri 08:30-18:00", "sat 09:00-12:00"]

[[holiday]]
date = "2026-10-01"
until = "2026-10-07"
name = "National Day"
greeting = "@good.wav"

[[inbound]]
name = "hotline"
dnis = ["80001000"]
schedule = "office"
destination = "ivr:main"
after_hours = "voicemail:201"
holiday = "message:@good.wav"

[[inbound]]
kind = "vip"
ani = ["13911112222"]
destination = "agent:1001:support:9"

[[inbound]]
kind = "blacklist"
ani_prefix = ["0900"]
destination = "busy"

[[inbound]]
dnis_prefix = ["8000"]
destination = "queue:7000"
sticky_days = 30

[[ivr]]
name = "main"
prompt = "@good.wav"
invalid_prompt = "@good.wav"
choices = {{ 1 = "queue:support:2", 2 = "ivr:card", 3 = "extension:201", 9 = "repeat", "*" = "back" }}

[[ivr]]
name = "card"
kind = "collect"
prompt = "@good.wav"
min_digits = 12
max_digits = 19
validate = "luhn"
store_as = "card"
next = "queue:support"
on_invalid = "callback:support"
"#
    ));
    let cfg = Config::parse_str(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.inbound.len(), 4);
    assert_eq!(cfg.ivr[1].kind, IvrKind::Collect);
    assert_eq!(cfg.holidays[0].until.unwrap().to_string(), "2026-10-07");
    assert_eq!(
        cfg.inbound[1].destination,
        Destination::Agent { agent: "1001".into(), queue: Some("support".into()), priority: 9 }
    );
    // The engines build from it.
    crate::callcenter::routing::Router::new(&cfg).unwrap();
    crate::callcenter::ivr::IvrEngine::new(&cfg.ivr).unwrap();
}

#[test]
fn prompt_files_missing_or_wrong_format_are_located() {
    let p = Prompts::new();
    let text = p.fill(&format!(
        r#"{BASE}
[[ivr]]
name = "main"
prompt = "@missing.wav"
invalid_prompt = "@wide.wav"
timeout_prompt = "@text.wav"
choices = {{ 1 = "message:@wide.wav" }}

[[holiday]]
date = "2026-12-25"
greeting = "@missing.wav"
"#
    ));
    let errs = errors(&text);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    let at = |n: &str| line_of(&text, n);
    assert!(has(&errs, at("prompt = "), "ivr[0].prompt", "cannot read"), "{errs:#?}");
    assert!(has(&errs, at("invalid_prompt"), "ivr[0].invalid_prompt", "sample rate 16000"));
    assert!(has(&errs, at("timeout_prompt"), "ivr[0].timeout_prompt", "not a RIFF/WAVE"));
    assert!(has(&errs, at("choices"), "ivr[0].choices.1", "sample rate 16000"), "{errs:#?}");
    assert!(has(&errs, at("greeting"), "holiday[0].greeting", "cannot read"));
    assert!(errs.iter().all(|e| e.file == "t.toml"));
    // The message names the file and what is expected.
    let e = errs.iter().find(|e| e.key == "ivr[0].invalid_prompt").unwrap();
    assert!(e.message.contains("wide.wav") && e.message.contains("8000 Hz mono"), "{e}");
}

#[test]
fn unknown_references_are_located() {
    let p = Prompts::new();
    let text = p.fill(&format!(
        r#"{BASE}
[[inbound]]
dnis = ["800"]
schedule = "nosuch"
destination = "ivr:nomenu"
after_hours = "queue:nosuchqueue"
weekend = "agent:9999"
holiday = "extension:999"

[[ivr]]
name = "main"
prompt = "@good.wav"
on_timeout = "ivr:gone"
choices = {{ 1 = "ivr:sub", 2 = "callback:nq" }}
"#
    ));
    let errs = errors(&text);
    let at = |n: &str| line_of(&text, n);
    assert!(has(&errs, at("schedule = "), "inbound[0].schedule", "unknown schedule \"nosuch\""));
    assert!(has(
        &errs,
        at("ivr:nomenu"),
        "inbound[0].destination",
        "unknown IVR menu \"nomenu\" (menus: main)"
    ));
    assert!(has(
        &errs,
        at("nosuchqueue"),
        "inbound[0].after_hours",
        "unknown queue \"nosuchqueue\" (queues: support)"
    ));
    assert!(has(&errs, at("agent:9999"), "inbound[0].weekend", "agent \"9999\""));
    assert!(has(&errs, at("extension:999"), "inbound[0].holiday", "extension \"999\""));
    assert!(has(&errs, at("ivr:gone"), "ivr[0].on_timeout", "unknown IVR menu \"gone\""));
    assert!(has(&errs, at("choices"), "ivr[0].choices.1", "unknown IVR menu \"sub\""));
    assert!(has(&errs, at("choices"), "ivr[0].choices.2", "unknown queue \"nq\""));
    assert_eq!(errs.len(), 8, "{errs:#?}");
}

#[test]
fn rule_and_node_shape_errors() {
    let p = Prompts::new();
    let text = p.fill(&format!(
        r#"{BASE}
[[schedule]]
name = "office"
hours = ["mon-fri 08:30-18:00"]

[[schedule]]
name = "office"
hours = []

[[holiday]]
date = "2026-10-07"
until = "2026-10-01"

[[inbound]]
dnis = ["80a"]
schedule = "office"
destination = "queue:support"

[[inbound]]
kind = "blacklist"
ani = ["1"]
destination = "queue:support"

[[inbound]]
destination = "ivr:main"
weekend = "busy"
sticky_days = 0

[[ivr]]
name = "main"
prompt = "@good.wav"
timeout_s = 0
retries = 10
choices = {{ 12 = "hangup" }}
store_as = "x"

[[ivr]]
name = "main"
kind = "collect"
prompt = "@good.wav"
min_digits = 5
max_digits = 4
terminator = "1"
choices = {{ 1 = "hangup" }}
"#
    ));
    let errs = errors(&text);
    let at = |n: &str| line_of(&text, n);
    assert!(has(&errs, at("hours = []") - 1, "schedule[1].name", "defined twice"), "{errs:#?}");
    assert!(has(&errs, at("hours = []"), "schedule[1].hours", "at least one"));
    assert!(has(&errs, at("until"), "holiday[0].until", "before date"));
    assert!(has(&errs, at("80a"), "inbound[0].dnis[0]", "not a number"));
    assert!(errs
        .iter()
        .any(|e| e.key == "inbound[0].after_hours" && e.message.contains("needs after_hours")));
    assert!(has(&errs, at("ani = [\"1\"]") + 1, "inbound[1].destination", "must reject"));
    assert!(has(&errs, at("weekend = \"busy\""), "inbound[2].weekend", "needs a schedule"));
    assert!(has(&errs, at("sticky_days"), "inbound[2].sticky_days", "needs a queue"));
    assert!(has(&errs, at("sticky_days"), "inbound[2].sticky_days", "out of range"));
    assert!(has(&errs, at("timeout_s = 0"), "ivr[0].timeout_s", "out of range"));
    assert!(has(&errs, at("retries = 10"), "ivr[0].retries", "out of range"));
    assert!(has(&errs, at("12 = "), "ivr[0].choices.12", "one DTMF key"));
    assert!(has(&errs, at("store_as"), "ivr[0].store_as", "only to kind = \"collect\""));
    assert!(has(&errs, at("kind = \"collect\"") - 1, "ivr[1].name", "defined twice"));
    assert!(has(&errs, at("min_digits"), "ivr[1].min_digits", "1 <= min <= max"));
    assert!(has(&errs, at("terminator"), "ivr[1].terminator", "non-digit"));
    assert!(has(&errs, at("1 = \"hangup\" }"), "ivr[1].choices", "only to kind = \"menu\""));
    assert!(errs.iter().any(|e| e.key == "ivr[1].next" && e.message.contains("needs next")));
    assert_eq!(errs.len(), 18, "{errs:#?}");
}

#[test]
fn syntax_errors_in_values_are_located() {
    for (bad, key, needle) in [
        ("destination = \"queue:support:10\"", "inbound[0].destination", "priority 10"),
        ("destination = \"ring:201\"", "inbound[0].destination", "unknown kind"),
    ] {
        let text = format!("{BASE}\n[[inbound]]\n{bad}\n");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].line, line_of(&text, bad), "{errs:#?}");
        assert_eq!(errs[0].key, key);
        assert!(errs[0].message.contains(needle), "{errs:#?}");
    }
    let text = format!("{BASE}\n[[schedule]]\nname = \"x\"\nhours = [\"mon-fri 8-18\"]\n");
    let errs = errors(&text);
    assert_eq!(errs[0].line, line_of(&text, "8-18"));
    assert!(
        errs[0].message.contains("is not a time range") || errs[0].message.contains("not a time"),
        "{errs:#?}"
    );
    let text = format!("{BASE}\n[[holiday]]\ndate = \"2026-02-30\"\n");
    let errs = errors(&text);
    assert_eq!((errs[0].line, errs[0].key.as_str()), (line_of(&text, "02-30"), "holiday[0].date"));
}

#[test]
fn prompt_problem_accepts_good_files() {
    let p = Prompts::new();
    assert_eq!(prompt_problem(Path::new(&p.path("good.wav"))), None);
    assert!(prompt_problem(Path::new(&p.path("missing.wav"))).is_some());
}
