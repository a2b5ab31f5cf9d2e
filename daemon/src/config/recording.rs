//! Call recording: the `recording` policy of `[[extension]]`, `[[queue]]` and
//! `[[trunk_group]]`, and the `[recording]` section (where files go, stereo or mono).

use super::check::Loc;
use super::model::{Config, SystemConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Whether calls through an extension, queue or trunk group are recorded. When several apply
/// to one call the strongest wins: `always` > `on_demand` > `never`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordingPolicy {
    /// Not recorded (feature codes are ignored).
    #[default]
    Never,
    /// Recorded when a party asks with a feature code during the call.
    OnDemand,
    /// Recorded from the moment the call is connected until it ends.
    Always,
}

impl RecordingPolicy {
    /// Whether this is `never` (the field is then not written out).
    pub fn is_never(&self) -> bool {
        *self == RecordingPolicy::Never
    }
}

/// How the two directions of a call are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingFormat {
    /// Two channels: the calling party left, the called party (agent, extension) right.
    #[default]
    Stereo,
    /// Both directions mixed into one channel.
    Mono,
}

/// `[recording]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Where recordings are written (`<dir>/YYYY/MM/DD/<call>-<start>.wav`); default
    /// `<system.spool_dir>/recordings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// `stereo` (default) or `mono`.
    #[serde(default)]
    pub format: RecordingFormat,
}

impl RecordingConfig {
    /// The directory recordings go to.
    pub fn dir(&self, system: &SystemConfig) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| system.spool_dir.join("recordings"))
    }

    /// Whether this is the default configuration (not written out then).
    pub fn is_default(&self) -> bool {
        *self == RecordingConfig::default()
    }
}

/// Check `[recording]`.
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    if cfg.recording.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
        p.push((Loc::top(&["recording", "dir"]), "the path must not be empty".into()));
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
recording = "always"
[[extension]]
number = "2002"
port = "sim0/fxs2"
[[trunk_group]]
name = "analog"
ports = ["sim0/fxo1"]
recording = "on_demand"
"#;

    #[test]
    fn policies_parse_with_defaults_and_order() {
        let cfg = Config::parse_str(BASE, "t.toml").unwrap();
        assert_eq!(cfg.extensions[0].recording, RecordingPolicy::Always);
        assert_eq!(cfg.extensions[1].recording, RecordingPolicy::Never);
        assert_eq!(cfg.trunk_groups[0].recording, RecordingPolicy::OnDemand);
        assert_eq!(cfg.recording.format, RecordingFormat::Stereo);
        assert_eq!(cfg.recording.dir(&cfg.system), cfg.system.spool_dir.join("recordings"));
        assert!(RecordingPolicy::Always > RecordingPolicy::OnDemand);
        assert!(RecordingPolicy::OnDemand > RecordingPolicy::Never);
        let text = format!("{BASE}\n[recording]\ndir = \"/r\"\nformat = \"mono\"\n");
        let cfg = Config::parse_str(&text, "t.toml").unwrap();
        assert_eq!(cfg.recording.format, RecordingFormat::Mono);
        assert_eq!(cfg.recording.dir(&cfg.system), PathBuf::from("/r"));
    }

    #[test]
    fn bad_values_are_reported() {
        let bad = BASE.replace("\"on_demand\"", "\"sometimes\"");
        let e = Config::parse_str(&bad, "t.toml").unwrap_err().to_string();
        assert!(e.contains("sometimes") || e.contains("recording"), "{e}");
        let e = Config::parse_str(&format!("{BASE}\n[recording]\ndir = \"\"\n"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recording.dir") && e.contains("empty"), "{e}");
    }
}
