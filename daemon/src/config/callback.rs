//! `[callback]`: the automatic attendant that takes a caller's number for a callback (reached by
//! a `callback:` destination, a queue's `overflow = "callback"`, or a queue's
//! `callback_trunk_busy_percent` threshold) and how it talks.

use super::check::Loc;
use super::model::Config;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The recorded words the attendant says, as files in [`CallbackConfig::prompts`].
pub const PROMPT_FILES: [&str; 4] = ["intro.wav", "confirm.wav", "enter.wav", "thanks.wav"];

/// `[callback]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// A directory of recorded words: `intro.wav` ("we will call you back on"), the digits
    /// `0.wav`..`9.wav`, `confirm.wav` ("press 1 to confirm, 2 to give another number"),
    /// `enter.wav` ("key in your number and press the hash key") and `thanks.wav`. Without it
    /// the attendant speaks in beeps (the keys work the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<PathBuf>,
    /// Fewest digits a keyed-in number may have.
    #[serde(default = "default_min_digits")]
    pub min_digits: u32,
    /// Most digits a keyed-in number may have (the number ends there without `#`).
    #[serde(default = "default_max_digits")]
    pub max_digits: u32,
    /// Seconds the attendant waits for a key (and between the digits of a number).
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u32,
    /// How many times it asks before it gives up (and registers nothing).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

fn default_min_digits() -> u32 {
    5
}
fn default_max_digits() -> u32 {
    15
}
fn default_timeout_s() -> u32 {
    8
}
fn default_attempts() -> u32 {
    3
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            prompts: None,
            min_digits: default_min_digits(),
            max_digits: default_max_digits(),
            timeout_s: default_timeout_s(),
            attempts: default_attempts(),
        }
    }
}

impl CallbackConfig {
    /// Whether this is the default configuration (not written out then).
    pub fn is_default(&self) -> bool {
        *self == CallbackConfig::default()
    }

    /// Every prompt file the attendant needs (none without `prompts`).
    pub fn prompt_files(&self) -> Vec<PathBuf> {
        let Some(dir) = &self.prompts else { return Vec::new() };
        let digits = (0..10).map(|d| format!("{d}.wav"));
        PROMPT_FILES.iter().map(|f| f.to_string()).chain(digits).map(|f| dir.join(f)).collect()
    }
}

/// Check `[callback]` and the queues' `callback_trunk_busy_percent`.
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    let c = &cfg.callback;
    let at = |k: &str| Loc::top(&["callback", k]);
    if !(1..=20).contains(&c.min_digits) {
        p.push((at("min_digits"), format!("{} is out of range (allowed 1..=20)", c.min_digits)));
    }
    if !(1..=20).contains(&c.max_digits) {
        p.push((at("max_digits"), format!("{} is out of range (allowed 1..=20)", c.max_digits)));
    } else if c.max_digits < c.min_digits {
        p.push((
            at("max_digits"),
            format!("{} is less than min_digits ({})", c.max_digits, c.min_digits),
        ));
    }
    if !(2..=60).contains(&c.timeout_s) {
        p.push((at("timeout_s"), format!("{} s is out of range (allowed 2..=60 s)", c.timeout_s)));
    }
    if !(1..=10).contains(&c.attempts) {
        p.push((at("attempts"), format!("{} is out of range (allowed 1..=10)", c.attempts)));
    }
    if let Some(dir) = &c.prompts {
        if !dir.is_dir() {
            p.push((at("prompts"), format!("{} is not a directory", dir.display())));
        } else {
            let missing: Vec<String> = c
                .prompt_files()
                .iter()
                .filter(|f| !f.is_file())
                .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            if !missing.is_empty() {
                p.push((at("prompts"), format!("{} lacks {}", dir.display(), missing.join(", "))));
            }
        }
    }
    for (i, q) in cfg.queues.iter().enumerate() {
        if let Some(pct) = q.callback_trunk_busy_percent {
            if !(1..=100).contains(&pct) {
                p.push((
                    Loc::item("queue", i, &["callback_trunk_busy_percent"]),
                    format!("{pct} % is out of range (allowed 1..=100 %)"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = r#"
[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 1

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[queue]]
number = "600"
name = "sales"
"#;

    fn errors(extra: &str) -> Vec<String> {
        match Config::parse_str(&format!("{BASE}{extra}"), "cb.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.errors().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(errors("").is_empty());
        let e = errors("[callback]\nmin_digits = 9\nmax_digits = 4\ntimeout_s = 1\n");
        assert!(
            e.iter().any(|m| m.contains("callback.max_digits") && m.contains("less than")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("callback.timeout_s")), "{e:?}");
        let e = errors("[callback]\nprompts = \"/nonexistent/words\"\n");
        assert!(
            e.iter().any(|m| m.contains("callback.prompts") && m.contains("not a directory")),
            "{e:?}"
        );
        let e = errors("[callback]\nbogus = 1\n");
        assert!(e.iter().any(|m| m.contains("bogus")), "{e:?}");
    }

    #[test]
    fn a_prompt_directory_must_hold_every_word() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("intro.wav"), b"").unwrap();
        let e = errors(&format!("[callback]\nprompts = \"{}\"\n", dir.path().display()));
        assert!(
            e.iter()
                .any(|m| m.contains("lacks") && m.contains("confirm.wav") && m.contains("9.wav")),
            "{e:?}"
        );
    }

    #[test]
    fn the_trunk_share_of_a_queue_must_be_a_percentage() {
        let text =
            BASE.replace("name = \"sales\"", "name = \"sales\"\ncallback_trunk_busy_percent = 0");
        let e = match Config::parse_str(&text, "cb.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.errors().iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(e.iter().any(|m| m.contains("queue[0].callback_trunk_busy_percent")), "{e:?}");
    }
}
