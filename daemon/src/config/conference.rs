//! Meet-me conference rooms: the `[[conference]]` entries (main file only) and their checks.
//!
//! ```toml
//! [[conference]]
//! number = "800"                 # dialled like an extension
//! name = "weekly"
//! pin = "4321"                   # optional: asked for as <pin>#
//! moderator_pin = "9999"         # optional (needs pin): joins as moderator
//! max_parties = 20               # 2..=50, default 10
//! entry_tone = true              # beep to the others when someone joins (default on)
//! exit_tone = true               # and when someone leaves (default on)
//! music_when_alone = "/var/lib/cardpbx/prompts/alone.wav"   # optional
//! pin_prompt = "/var/lib/cardpbx/prompts/pin.wav"           # optional (default: a tone)
//! ```

use super::callcenter_routing::{Destination, MenuAction};
use super::check::{Loc, Seg};
use super::model::Config;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// Most parties one room takes.
pub const MAX_PARTIES: u32 = 50;
/// Longest PIN, digits.
pub const MAX_PIN_LEN: usize = 12;
/// Longest room number, digits.
const MAX_ROOM_NUMBER_LEN: usize = 20;

fn default_max_parties() -> u32 {
    10
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One `[[conference]]` room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceConfig {
    /// The room's number, dialled like an extension (and `conference:<number>` as a routing
    /// destination).
    pub number: String,
    /// The room's name, for `show` and records.
    pub name: String,
    /// Digits a caller enters (then `#`) to join; none: anyone who dials in joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// Digits that join as moderator (needs `pin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator_pin: Option<String>,
    /// Most parties in the room at once, 2..=50.
    #[serde(default = "default_max_parties")]
    pub max_parties: u32,
    /// The others hear a short beep when a party joins.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub entry_tone: bool,
    /// The others hear a short low beep when a party leaves.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub exit_tone: bool,
    /// A prompt (8 kHz WAV) played, repeating, to a party alone in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music_when_alone: Option<PathBuf>,
    /// A prompt asking for the PIN (default: two short beeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_prompt: Option<PathBuf>,
}

/// The prompt files the rooms name, for the engine's prompt library.
pub fn prompt_files(cfg: &Config) -> Vec<PathBuf> {
    cfg.conferences
        .iter()
        .flat_map(|c| c.music_when_alone.iter().chain(c.pin_prompt.iter()))
        .cloned()
        .collect()
}

fn loc(index: usize, key: &str) -> Loc {
    Loc {
        file: 0,
        path: vec![Seg::Key("conference".into()), Seg::Index(index), Seg::Key(key.into())],
    }
}

/// Why `s` is not a usable digit string of at most `max` digits, if it is not.
fn bad_digits(s: &str, what: &str, max: usize) -> Option<String> {
    if s.is_empty() {
        Some(format!("the {what} must not be empty"))
    } else if !s.bytes().all(|b| b.is_ascii_digit()) {
        Some(format!("the {what} {s:?} may only hold the digits 0-9"))
    } else if s.len() > max {
        Some(format!("the {what} {s:?} is longer than {max} digits"))
    } else {
        None
    }
}

/// Check the `[[conference]]` rooms: numbers, PINs, sizes and files.
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    let mut used: HashMap<&str, String> = HashMap::new();
    for e in &cfg.extensions {
        used.insert(&e.number, format!("the extension on {}", e.port));
    }
    for h in &cfg.hunt_groups {
        used.entry(&h.number).or_insert_with(|| "a hunt group".to_string());
    }
    for q in &cfg.queues {
        used.entry(&q.number).or_insert_with(|| format!("queue {:?}", q.name));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, c) in cfg.conferences.iter().enumerate() {
        if let Some(why) = bad_digits(&c.number, "room number", MAX_ROOM_NUMBER_LEN) {
            p.push((loc(i, "number"), why));
        } else if let Some(first) = used.get(c.number.as_str()) {
            p.push((loc(i, "number"), format!("number {} is already used by {first}", c.number)));
        } else {
            used.insert(&c.number, format!("conference {:?}", c.name));
            for r in cfg.routes.iter().filter(|r| !r.prefix.is_empty()) {
                if c.number.starts_with(r.prefix.as_str()) || r.prefix.starts_with(&c.number) {
                    p.push((
                        loc(i, "number"),
                        format!(
                            "number {} overlaps route prefix {} (trunk group {:?}): dialling it \
                             would be ambiguous",
                            c.number, r.prefix, r.trunk_group
                        ),
                    ));
                }
            }
        }
        if c.name.trim().is_empty() {
            p.push((loc(i, "name"), "the name must not be empty".into()));
        } else if let Some(first) = names.insert(&c.name, i) {
            p.push((
                loc(i, "name"),
                format!("conference name {:?} is already used by conference[{first}]", c.name),
            ));
        }
        if let Some(pin) = &c.pin {
            if let Some(why) = bad_digits(pin, "PIN", MAX_PIN_LEN) {
                p.push((loc(i, "pin"), why));
            }
        }
        if let Some(m) = &c.moderator_pin {
            if let Some(why) = bad_digits(m, "moderator PIN", MAX_PIN_LEN) {
                p.push((loc(i, "moderator_pin"), why));
            } else if c.pin.is_none() {
                p.push((
                    loc(i, "moderator_pin"),
                    "a moderator PIN needs a pin for the other parties".into(),
                ));
            } else if c.pin.as_ref() == Some(m) {
                p.push((loc(i, "moderator_pin"), "the moderator PIN must differ from pin".into()));
            }
        }
        if !(2..=MAX_PARTIES).contains(&c.max_parties) {
            p.push((
                loc(i, "max_parties"),
                format!("{} is out of range (allowed 2..={MAX_PARTIES})", c.max_parties),
            ));
        }
        for (key, f) in [("music_when_alone", &c.music_when_alone), ("pin_prompt", &c.pin_prompt)] {
            if f.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
                p.push((loc(i, key), "the path must not be empty".into()));
            }
        }
    }
    check_destinations(cfg, p);
}

/// `conference:<number>` routing destinations must name a room.
fn check_destinations(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    let bad = |d: Option<&Destination>| match d {
        Some(Destination::Conference(n)) if !cfg.conferences.iter().any(|c| c.number == *n) => {
            Some(format!("there is no [[conference]] room {n}"))
        }
        _ => None,
    };
    let at = |section: &str, i: usize, key: &str| Loc {
        file: 0,
        path: vec![Seg::Key(section.into()), Seg::Index(i), Seg::Key(key.into())],
    };
    for (i, r) in cfg.inbound.iter().enumerate() {
        for (key, d) in [
            ("destination", Some(&r.destination)),
            ("after_hours", r.after_hours.as_ref()),
            ("weekend", r.weekend.as_ref()),
            ("holiday", r.holiday.as_ref()),
        ] {
            if let Some(why) = bad(d) {
                p.push((at("inbound", i, key), why));
            }
        }
    }
    for (i, n) in cfg.ivr.iter().enumerate() {
        let fixed = [("on_timeout", &n.on_timeout), ("on_invalid", &n.on_invalid)];
        let next = n.next.iter().map(|d| ("next", d));
        for (key, d) in fixed.into_iter().chain(next) {
            if let Some(why) = bad(Some(d)) {
                p.push((at("ivr", i, key), why));
            }
        }
        for (k, a) in &n.choices {
            if let MenuAction::Go(d) = a {
                if let Some(why) = bad(Some(d)) {
                    let mut l = at("ivr", i, "choices");
                    l.path.push(Seg::Key(k.clone()));
                    p.push((l, why));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 2
fxo_ports = 1
[[extension]]
number = "2001"
port = "sim0/fxs1"
[[route]]
prefix = "0"
trunk_group = "t"
[[trunk_group]]
name = "t"
ports = ["sim0/fxo1"]
"#;

    fn errors(extra: &str) -> String {
        match Config::parse_str(&format!("{BASE}\n{extra}"), "t.toml") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rooms_parse_with_defaults() {
        let cfg = Config::parse_str(
            &format!("{BASE}\n[[conference]]\nnumber = \"800\"\nname = \"a\"\npin = \"12\"\n"),
            "t.toml",
        )
        .unwrap();
        let c = &cfg.conferences[0];
        assert_eq!((c.number.as_str(), c.pin.as_deref(), c.max_parties), ("800", Some("12"), 10));
        assert!(c.entry_tone && c.exit_tone && c.moderator_pin.is_none());
        assert!(prompt_files(&cfg).is_empty());
    }

    #[test]
    fn bad_rooms_are_reported_with_their_key() {
        let room = |body: &str| format!("[[conference]]\nname = \"a\"\n{body}\n");
        let e = errors(&room("number = \"2001\""));
        assert!(e.contains("conference[0].number") && e.contains("already used"), "{e}");
        let e = errors(&format!("{}{}", room("number = \"800\""), room("number = \"800\"")));
        assert!(e.contains("conference[1].number") && e.contains("already used"), "{e}");
        assert!(e.contains("conference[1].name"), "{e}");
        let e = errors(&room("number = \"80a\""));
        assert!(e.contains("conference[0].number") && e.contains("digits"), "{e}");
        let e = errors(&room("number = \"05\""));
        assert!(e.contains("overlaps route prefix 0"), "{e}");
        let e = errors(&room("number = \"800\"\npin = \"12*\""));
        assert!(e.contains("conference[0].pin") && e.contains("digits"), "{e}");
        let e = errors(&room("number = \"800\"\npin = \"\""));
        assert!(e.contains("conference[0].pin") && e.contains("empty"), "{e}");
        let e = errors(&room("number = \"800\"\nmoderator_pin = \"9\""));
        assert!(e.contains("conference[0].moderator_pin") && e.contains("needs a pin"), "{e}");
        let e = errors(&room("number = \"800\"\npin = \"9\"\nmoderator_pin = \"9\""));
        assert!(e.contains("must differ"), "{e}");
        let e = errors(&room("number = \"800\"\nmax_parties = 51"));
        assert!(e.contains("conference[0].max_parties") && e.contains("2..=50"), "{e}");
        let e = errors(&room("number = \"800\"\nmax_parties = 1"));
        assert!(e.contains("conference[0].max_parties"), "{e}");
        let e = errors("[[inbound]]\ndnis = [\"5\"]\ndestination = \"conference:801\"\n");
        assert!(e.contains("inbound[0].destination") && e.contains("no [[conference]] room 801"));
        let e = errors(
            "[[ivr]]\nname = \"m\"\nprompt = \"/p.wav\"\nchoices = { 2 = \"conference:802\" }\n",
        );
        assert!(e.contains("ivr[0].choices.2") && e.contains("room 802"), "{e}");
        let e = errors(&room("number = \"800\"\ncolour = \"red\""));
        assert!(e.contains("colour"), "{e}");
        assert_eq!(errors(&room("number = \"800\"\npin = \"1\"\nmoderator_pin = \"2\"")), "");
    }
}
