//! `[fax]`: the daemon's fax service (received faxes in the spool, `cardpbx fax send --to`).

use super::check::Loc;
use super::model::{Config, SystemConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[fax]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaxConfig {
    /// Where received faxes are written (TIFF-F and PDF); default `<system.spool_dir>/fax`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// Our identity sent as CSI/TSI (up to 20 characters: digits, `+` and spaces).
    #[serde(default = "default_station_id")]
    pub station_id: String,
    /// Image modems offered: `v27ter` (4800/2400), `v29` (9600/7200).
    #[serde(default = "default_modems")]
    pub modems: Vec<String>,
    /// Fax sessions that can run at once (fax ports of the media engine).
    #[serde(default = "default_ports")]
    pub ports: u32,
    /// Also write every received fax as PDF next to its TIFF.
    #[serde(default = "yes")]
    pub pdf: bool,
    /// Attempts after the first for `cardpbx fax send --to` when it gives no `--retries`.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait between attempts of an outgoing fax, s.
    #[serde(default = "default_retry_delay_s")]
    pub retry_delay_s: u32,
    /// Longest fax session, s (then DCN).
    #[serde(default = "default_max_duration_s")]
    pub max_duration_s: u32,
}

fn default_station_id() -> String {
    "cardpbx".into()
}
fn default_modems() -> Vec<String> {
    vec!["v27ter".into(), "v29".into()]
}
fn default_ports() -> u32 {
    8
}
fn yes() -> bool {
    true
}
fn default_retries() -> u32 {
    3
}
fn default_retry_delay_s() -> u32 {
    60
}
fn default_max_duration_s() -> u32 {
    900
}

impl Default for FaxConfig {
    fn default() -> Self {
        FaxConfig {
            spool_dir: None,
            station_id: default_station_id(),
            modems: default_modems(),
            ports: default_ports(),
            pdf: true,
            retries: default_retries(),
            retry_delay_s: default_retry_delay_s(),
            max_duration_s: default_max_duration_s(),
        }
    }
}

impl FaxConfig {
    /// The directory received faxes go to.
    pub fn spool_dir(&self, system: &SystemConfig) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| system.spool_dir.join("fax"))
    }

    /// Whether this is the default configuration (not written out then).
    pub fn is_default(&self) -> bool {
        *self == FaxConfig::default()
    }
}

/// Check `[fax]`.
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    let f = &cfg.fax;
    if f.station_id.chars().count() > 20 {
        p.push((
            Loc::top(&["fax", "station_id"]),
            format!("{:?} is longer than 20 characters", f.station_id),
        ));
    }
    if !f.station_id.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        p.push((
            Loc::top(&["fax", "station_id"]),
            format!("{:?}: only printable ASCII characters are sent", f.station_id),
        ));
    }
    if let Err(e) = crate::faxcli::parse_modems(&f.modems.join(",")) {
        let e = e.to_string().replace("--modems: ", "");
        p.push((Loc::top(&["fax", "modems"]), e));
    }
    let ranges: [(&str, u32, u32, u32); 4] = [
        ("ports", f.ports, 1, 256),
        ("retries", f.retries, 0, 20),
        ("retry_delay_s", f.retry_delay_s, 1, 86_400),
        ("max_duration_s", f.max_duration_s, 30, 7200),
    ];
    for (key, v, lo, hi) in ranges {
        if v < lo || v > hi {
            p.push((Loc::top(&["fax", key]), format!("{v} is out of range (allowed {lo}..={hi})")));
        }
    }
    if f.spool_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
        p.push((Loc::top(&["fax", "spool_dir"]), "the path must not be empty".into()));
    }
}
