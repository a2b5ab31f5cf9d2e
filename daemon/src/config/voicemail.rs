//! Voicemail: the `[voicemail]` section (spool directory, limits, retrieval codes) and the
//! `[[mailbox]]` entries (main file only).
//!
//! A mailbox is reached by `voicemail:<number>` destinations (inbound rules, IVR menus), by a
//! queue's `overflow = "voicemail"` (the mailbox whose number is the queue's number) or
//! `"voicemail:<number>"`, and, for a mailbox with an owner `extension`, when that extension is
//! busy (`on_busy`) or does not answer (`on_no_answer`).

use super::callcenter::{OverflowTarget, MAX_CC_NUMBER_LEN};
use super::callcenter_routing::Destination;
use super::check::{Loc, Seg};
use super::model::{Config, SystemConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// Starts of feature codes other parts of the PBX use (agents `*2x`, supervisors `*3x`,
/// recording `*6x`, do-not-disturb `*78`/`*79`, pickup `*8`, `**`); voicemail codes may not
/// begin with them.
pub const RESERVED_CODES: &[&str] = &["*2", "*3", "*6", "*7", "*8", "**"];

/// Longest PIN, digits.
pub const MAX_PIN_LEN: usize = 12;

fn default_max_message_s() -> u32 {
    120
}

fn default_max_messages() -> u32 {
    100
}

fn default_code() -> String {
    "*98".into()
}

fn default_any_code() -> String {
    "*99".into()
}

/// `[voicemail]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicemailConfig {
    /// Where messages and recorded greetings are kept (`<dir>/<mailbox>/…`); default
    /// `<system.spool_dir>/voicemail`, beside the recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Longest message (and recorded greeting), seconds (5..=600); default 120.
    #[serde(default = "default_max_message_s")]
    pub max_message_s: u32,
    /// Most messages a mailbox keeps (1..=1000); default 100.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Code an extension dials to reach its own mailbox; default `*98`.
    #[serde(default = "default_code")]
    pub code: String,
    /// Code an extension dials, followed by a mailbox number and `#`, to reach any mailbox;
    /// default `*99`.
    #[serde(default = "default_any_code")]
    pub any_code: String,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            dir: None,
            max_message_s: default_max_message_s(),
            max_messages: default_max_messages(),
            code: default_code(),
            any_code: default_any_code(),
        }
    }
}

impl VoicemailConfig {
    /// The spool directory.
    pub fn dir(&self, system: &SystemConfig) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| system.spool_dir.join("voicemail"))
    }

    /// Whether this is the default configuration (not written out then).
    pub fn is_default(&self) -> bool {
        *self == VoicemailConfig::default()
    }
}

/// `[[mailbox]]`: one voicemail box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The mailbox number (`voicemail:<number>`, `*99<number>#`).
    pub number: String,
    /// The PIN asked for when the messages are retrieved (digits).
    pub pin: String,
    /// The owner's extension: `*98` from it reaches this mailbox, its phone gets stutter dial
    /// tone while there are unheard messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// A greeting file (8 kHz mono WAV) played until the owner records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<PathBuf>,
    /// Longest message, seconds; default `[voicemail] max_message_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_s: Option<u32>,
    /// Most messages kept; default `[voicemail] max_messages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u32>,
    /// Calls to the owner's extension go here when it is busy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_busy: bool,
    /// Calls to the owner's extension go here when it does not answer in time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_no_answer: bool,
}

impl MailboxConfig {
    /// Longest message in this mailbox, seconds.
    pub fn max_message_s(&self, vm: &VoicemailConfig) -> u32 {
        self.max_message_s.unwrap_or(vm.max_message_s)
    }

    /// Most messages in this mailbox.
    pub fn max_messages(&self, vm: &VoicemailConfig) -> u32 {
        self.max_messages.unwrap_or(vm.max_messages)
    }
}

fn loc(keys: &[&str], index: Option<usize>) -> Loc {
    let mut path = Vec::new();
    let (first, rest) = keys.split_first().expect("a key");
    path.push(Seg::Key((*first).to_string()));
    if let Some(i) = index {
        path.push(Seg::Index(i));
    }
    path.extend(rest.iter().map(|k| Seg::Key((*k).to_string())));
    Loc { file: 0, path }
}

/// Why `s` is not a usable code of digits, `*` and `#`.
fn bad_number(s: &str, what: &str, max: usize, star_hash: bool) -> Option<String> {
    let ok = |c: char| c.is_ascii_digit() || (star_hash && (c == '*' || c == '#'));
    if s.is_empty() {
        Some(format!("the {what} must not be empty"))
    } else if s.len() > max {
        Some(format!("{what} {s:?} is longer than {max} characters"))
    } else if !s.chars().all(ok) {
        let allowed = if star_hash { "0-9 * #" } else { "0-9" };
        Some(format!("{what} {s:?} is not valid (allowed characters: {allowed})"))
    } else {
        None
    }
}

/// Check `[voicemail]` and `[[mailbox]]`, and the mailboxes that destinations and queue
/// overflows name (when mailboxes are configured at all).
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    let vm = &cfg.voicemail;
    if vm.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
        p.push((loc(&["voicemail", "dir"], None), "the path must not be empty".into()));
    }
    if !(5..=600).contains(&vm.max_message_s) {
        p.push((
            loc(&["voicemail", "max_message_s"], None),
            format!("{} s is out of range (allowed 5..=600 s)", vm.max_message_s),
        ));
    }
    if !(1..=1000).contains(&vm.max_messages) {
        p.push((
            loc(&["voicemail", "max_messages"], None),
            format!("{} is out of range (allowed 1..=1000)", vm.max_messages),
        ));
    }
    for (key, code) in [("code", &vm.code), ("any_code", &vm.any_code)] {
        let why = bad_number(code, "code", 6, true)
            .or_else(|| {
                (!code.starts_with('*') || code.len() < 2)
                    .then(|| format!("code {code:?} must be * and at least one more character"))
            })
            .or_else(|| {
                RESERVED_CODES
                    .iter()
                    .find(|r| code.starts_with(*r))
                    .map(|r| format!("code {code:?} clashes with the feature codes starting {r}"))
            });
        if let Some(why) = why {
            p.push((loc(&["voicemail", key], None), why));
        }
    }
    if vm.code == vm.any_code
        || vm.code.starts_with(&vm.any_code)
        || vm.any_code.starts_with(&vm.code)
    {
        p.push((
            loc(&["voicemail", "any_code"], None),
            format!(
                "{:?} and code {:?} must differ and not start one another",
                vm.any_code, vm.code
            ),
        ));
    }
    let extensions: HashMap<&str, ()> =
        cfg.extensions.iter().map(|e| (e.number.as_str(), ())).collect();
    let mut numbers: HashMap<&str, usize> = HashMap::new();
    let mut owners: HashMap<&str, usize> = HashMap::new();
    for (i, m) in cfg.mailboxes.iter().enumerate() {
        let at = |key: &str| loc(&["mailbox", key], Some(i));
        if let Some(why) = bad_number(&m.number, "mailbox number", MAX_CC_NUMBER_LEN, false) {
            p.push((at("number"), why));
        } else if let Some(first) = numbers.insert(&m.number, i) {
            p.push((at("number"), format!("mailbox {} is also mailbox[{first}]", m.number)));
        }
        if let Some(why) = bad_number(&m.pin, "PIN", MAX_PIN_LEN, false) {
            p.push((at("pin"), why));
        }
        if let Some(e) = &m.extension {
            if !extensions.contains_key(e.as_str()) {
                p.push((at("extension"), format!("{e} is not a configured extension")));
            } else if let Some(first) = owners.insert(e, i) {
                p.push((at("extension"), format!("extension {e} already owns mailbox[{first}]")));
            }
        } else if m.on_busy || m.on_no_answer {
            let key = if m.on_busy { "on_busy" } else { "on_no_answer" };
            p.push((at(key), "needs the owner's `extension`".into()));
        }
        if m.greeting.as_ref().is_some_and(|g| g.as_os_str().is_empty()) {
            p.push((at("greeting"), "the path must not be empty".into()));
        }
        if m.max_message_s.is_some_and(|s| !(5..=600).contains(&s)) {
            p.push((at("max_message_s"), "out of range (allowed 5..=600 s)".into()));
        }
        if m.max_messages.is_some_and(|n| !(1..=1000).contains(&n)) {
            p.push((at("max_messages"), "out of range (allowed 1..=1000)".into()));
        }
    }
    if cfg.mailboxes.is_empty() {
        return;
    }
    let known = |n: &str| numbers.contains_key(n);
    for (i, q) in cfg.queues.iter().enumerate() {
        let want = match &q.overflow {
            OverflowTarget::Voicemail(Some(n)) => n,
            OverflowTarget::Voicemail(None) => &q.number,
            _ => continue,
        };
        if !known(want) {
            p.push((
                loc(&["queue", "overflow"], Some(i)),
                format!("there is no [[mailbox]] {want}"),
            ));
        }
    }
    let dest_bad = |d: &Destination| match d {
        Destination::Voicemail(b) if !known(b) => Some(format!("there is no [[mailbox]] {b}")),
        _ => None,
    };
    for (i, n) in cfg.ivr.iter().enumerate() {
        let mut named: Vec<(Vec<&str>, &Destination)> = n
            .choices
            .iter()
            .filter_map(|(k, a)| match a {
                super::callcenter_routing::MenuAction::Go(d) => {
                    Some((vec!["ivr", "choices", k.as_str()], d))
                }
                _ => None,
            })
            .collect();
        named.push((vec!["ivr", "on_timeout"], &n.on_timeout));
        named.push((vec!["ivr", "on_invalid"], &n.on_invalid));
        named.extend(n.next.as_ref().map(|d| (vec!["ivr", "next"], d)));
        for (keys, d) in named {
            if let Some(why) = dest_bad(d) {
                p.push((loc(&keys, Some(i)), why));
            }
        }
    }
    for (i, r) in cfg.inbound.iter().enumerate() {
        let named = [
            ("destination", Some(&r.destination)),
            ("after_hours", r.after_hours.as_ref()),
            ("weekend", r.weekend.as_ref()),
            ("holiday", r.holiday.as_ref()),
        ];
        for (key, d) in named {
            if let Some(why) = d.and_then(dest_bad) {
                p.push((loc(&["inbound", key], Some(i)), why));
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
[[extension]]
number = "2002"
port = "sim0/fxs2"
[[mailbox]]
number = "2001"
pin = "1234"
extension = "2001"
on_busy = true
"#;

    fn err(extra: &str) -> String {
        Config::parse_str(&format!("{BASE}{extra}"), "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn mailboxes_parse_with_defaults() {
        let cfg = Config::parse_str(BASE, "t.toml").unwrap();
        let m = &cfg.mailboxes[0];
        assert_eq!((m.number.as_str(), m.pin.as_str()), ("2001", "1234"));
        assert_eq!(m.extension.as_deref(), Some("2001"));
        assert!(m.on_busy && !m.on_no_answer);
        assert_eq!(m.max_message_s(&cfg.voicemail), 120);
        assert_eq!(m.max_messages(&cfg.voicemail), 100);
        assert_eq!(cfg.voicemail.dir(&cfg.system), cfg.system.spool_dir.join("voicemail"));
        assert_eq!((cfg.voicemail.code.as_str(), cfg.voicemail.any_code.as_str()), ("*98", "*99"));
        let cfg = Config::parse_str(
            &format!("{BASE}[voicemail]\ndir = \"/vm\"\nmax_message_s = 30\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(cfg.voicemail.dir(&cfg.system), PathBuf::from("/vm"));
        assert_eq!(cfg.mailboxes[0].max_message_s(&cfg.voicemail), 30);
    }

    #[test]
    fn bad_mailboxes_are_reported_by_key() {
        let e = err("[[mailbox]]\nnumber = \"2001\"\npin = \"12a4\"\n");
        assert!(e.contains("mailbox[1].number") && e.contains("also mailbox[0]"), "{e}");
        assert!(e.contains("mailbox[1].pin") && e.contains("0-9"), "{e}");
        let e = err("[[mailbox]]\nnumber = \"7\"\npin = \"1\"\nextension = \"2999\"\n");
        assert!(e.contains("mailbox[1].extension") && e.contains("2999"), "{e}");
        let e = err("[[mailbox]]\nnumber = \"7\"\npin = \"\"\non_no_answer = true\n");
        assert!(e.contains("mailbox[1].pin") && e.contains("empty"), "{e}");
        assert!(e.contains("mailbox[1].on_no_answer"), "{e}");
        let e = err("[voicemail]\ndir = \"\"\nmax_messages = 0\n");
        assert!(e.contains("voicemail.dir") && e.contains("voicemail.max_messages"), "{e}");
        let e = err("[voicemail]\ncode = \"*61\"\n");
        assert!(e.contains("voicemail.code") && e.contains("*6"), "{e}");
        let e = err("[voicemail]\ncode = \"98\"\n");
        assert!(e.contains("voicemail.code"), "{e}");
        let e = err("[voicemail]\ncode = \"*99\"\n");
        assert!(e.contains("voicemail.any_code"), "{e}");
        let e = err("[[inbound]]\ndnis = [\"5\"]\ndestination = \"voicemail:3000\"\n");
        assert!(e.contains("inbound[0].destination") && e.contains("3000"), "{e}");
        let e = err(
            "[[ivr]]\nname = \"m\"\nprompt = \"/p.wav\"\nchoices = { 1 = \"voicemail:3001\" }\n",
        );
        assert!(e.contains("ivr[0].choices.1") && e.contains("3001"), "{e}");
    }
}
