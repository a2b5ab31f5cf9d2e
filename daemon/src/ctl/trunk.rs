//! `cardpbx trunk list|show|add|set|remove`: the technician's trunk group commands.
//!
//! The configuration file is the truth: `list` and `show` read it (with the include directory)
//! and add the live state of the lines when the daemon runs; `add`, `set` and `remove` edit it
//! with [`crate::config::edit`] (comments and order kept, checked by the loader, replaced
//! atomically) and then ask the daemon to `reload`, which applies the change without dropping
//! calls. Which file: `--config FILE`, else the one the running daemon was started with.

use super::cli::{EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use super::client::CtlClient;
use super::proto::{CallData, CtlData, CtlRequest, PortData, ReloadData};
use crate::config::edit::{self, EditError, TrunkEdit};
use crate::config::{Config, TrunkGroupConfig};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the configuration file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConfigArg {
    /// The configuration file (default: the one the running daemon was started with).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The settings `trunk add` takes as options.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TrunkOptions {
    /// Signalling: fxo, pri-cpe, pri-net or r2-china.
    #[arg(long, value_name = "S")]
    pub signalling: String,
    /// Ports: card/fxoN or card/spanN, comma-separated.
    #[arg(long, value_name = "P[,P..]")]
    pub ports: String,
    /// Span groups: timeslots used for calls, e.g. 1-15,17-31 (default: all 30).
    #[arg(long, value_name = "RANGES")]
    pub channels: Option<String>,
    /// Outgoing line choice: ascending, descending or round-robin.
    #[arg(long, value_name = "H")]
    pub hunt: Option<String>,
    /// PRI: the ISDN variant (euroisdn).
    #[arg(long, value_name = "T")]
    pub switch_type: Option<String>,
    /// PRI: calling number presentation, allowed or restricted.
    #[arg(long, value_name = "P")]
    pub presentation: Option<String>,
    /// Extension or hunt group number incoming calls ring.
    #[arg(long, value_name = "NUMBER")]
    pub incoming: Option<String>,
}

impl TrunkOptions {
    /// The options as `key = value` settings.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("signalling".to_string(), self.signalling.clone()),
            ("ports".to_string(), self.ports.clone()),
        ];
        for (k, val) in [
            ("channels", &self.channels),
            ("hunt", &self.hunt),
            ("switch_type", &self.switch_type),
            ("presentation", &self.presentation),
            ("incoming", &self.incoming),
        ] {
            if let Some(val) = val {
                v.push((k.to_string(), val.clone()));
            }
        }
        v
    }
}

/// `cardpbx trunk ...`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TrunkCmd {
    /// List the trunk groups, with lines in use when the daemon runs.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show one trunk group: its settings, its lines and their calls.
    Show {
        /// The trunk group's name.
        name: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Add a trunk group (after the last one in the file) and apply it.
    Add {
        /// The new group's name.
        name: String,
        #[command(flatten)]
        options: TrunkOptions,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Change settings of a trunk group (key=value; keys: signalling, ports, channels, hunt,
    /// switch_type, presentation, incoming, fax_destination, fax_detect_s; an empty value
    /// removes channels, incoming or fax_destination) and apply them.
    Set {
        /// The trunk group's name.
        name: String,
        /// Settings, key=value.
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove a trunk group no route uses, and apply it (its lines finish their calls first).
    Remove {
        /// The trunk group's name.
        name: String,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A trunk group as `trunk list` and `trunk show` print it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrunkView {
    /// Name.
    pub name: String,
    /// `fxo`, `pri_cpe`, `pri_net`, `r2_china`.
    pub signalling: String,
    /// PRI: the ISDN variant.
    pub switch_type: Option<String>,
    /// Ports as configured.
    pub ports: Vec<String>,
    /// Span groups: the timeslots used for calls.
    pub channels: Option<String>,
    /// Outgoing line choice.
    pub hunt: String,
    /// PRI: calling number presentation.
    pub presentation: Option<String>,
    /// Number incoming calls ring.
    pub incoming: Option<String>,
    /// Number fax calls go to.
    pub fax_destination: Option<String>,
    /// Live state, when the daemon runs this configuration.
    pub live: Option<TrunkLive>,
}

/// The live state of a trunk group's lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrunkLive {
    /// Lines (FXO ports, bearer channels) the daemon has in this group.
    pub lines: usize,
    /// Of those, not idle.
    pub in_use: usize,
    /// Each line with its state.
    pub ports: Vec<PortData>,
    /// Calls on the group's lines.
    pub calls: Vec<CallData>,
}

/// What `trunk add|set|remove` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrunkChange {
    /// `added`, `changed` or `removed`.
    pub action: String,
    /// The trunk group.
    pub name: String,
    /// The file written.
    pub file: String,
    /// Other changes made so the result validates (span framing).
    pub notes: Vec<String>,
    /// The daemon's reload answer, if it runs this file.
    pub reload: Option<ReloadData>,
    /// Why the daemon was not reloaded, if it was not (or the reload failed).
    pub reload_problem: Option<String>,
}

fn json_word<T: Serialize>(v: &T) -> String {
    crate::json_name(v)
}

/// The printable view of a configured trunk group.
pub fn view(t: &TrunkGroupConfig) -> TrunkView {
    let spans = t.signalling.uses_spans();
    TrunkView {
        name: t.name.clone(),
        signalling: t.signalling.as_str().to_string(),
        switch_type: t.signalling.is_pri().then(|| json_word(&t.switch_type)),
        ports: t.ports.iter().map(ToString::to_string).collect(),
        channels: spans.then(|| t.channels.as_ref().map_or("1-15,17-31".into(), |c| c.to_string())),
        hunt: json_word(&t.hunt),
        presentation: t.signalling.is_pri().then(|| json_word(&t.presentation)),
        incoming: t.incoming.clone(),
        fax_destination: t.fax_destination.clone(),
        live: None,
    }
}

/// Which lines and calls of the daemon's answers belong to trunk group `name`.
pub fn live_of(name: &str, ports: &[PortData], calls: &[CallData]) -> TrunkLive {
    let mine: Vec<PortData> =
        ports.iter().filter(|p| p.trunk_group.as_deref() == Some(name)).cloned().collect();
    let is_mine = |p: &str| mine.iter().any(|m| m.port == p);
    let calls: Vec<CallData> = calls
        .iter()
        .filter(|c| is_mine(&c.a_port) || c.b_port.as_deref().is_some_and(is_mine))
        .cloned()
        .collect();
    TrunkLive {
        lines: mine.len(),
        in_use: mine.iter().filter(|p| p.state != "idle").count(),
        ports: mine,
        calls,
    }
}

/// The daemon, if it answers, and the file it was started with.
struct Daemon {
    client: Option<CtlClient>,
    file: Option<PathBuf>,
    problem: Option<String>,
}

fn connect(socket: &Path) -> Daemon {
    match CtlClient::connect(socket) {
        Ok(mut c) => match c.request(CtlRequest::ConfigFile) {
            Ok(CtlData::ConfigFile(f)) => {
                Daemon { client: Some(c), file: Some(PathBuf::from(f.path)), problem: None }
            }
            Ok(_) => Daemon { client: Some(c), file: None, problem: None },
            Err(e) => Daemon { client: Some(c), file: None, problem: Some(e.to_string()) },
        },
        Err(e) => Daemon { client: None, file: None, problem: Some(e.to_string()) },
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Carry out a `trunk` command; returns the exit code.
///
/// # Errors
/// When the output cannot be written.
pub fn run_trunk(
    cmd: &TrunkCmd,
    socket: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let config = match cmd {
        TrunkCmd::List { config, .. }
        | TrunkCmd::Show { config, .. }
        | TrunkCmd::Add { config, .. }
        | TrunkCmd::Set { config, .. }
        | TrunkCmd::Remove { config, .. } => config.config.clone(),
    };
    let mut daemon = connect(socket);
    let file = match (config, &daemon.file) {
        (Some(f), _) => f,
        (None, Some(f)) => f.clone(),
        (None, None) => {
            writeln!(
                err,
                "cardpbx: which configuration file? Give --config FILE (the daemon could not \
                 tell: {})",
                daemon.problem.as_deref().unwrap_or("it was started without one")
            )?;
            return Ok(if daemon.client.is_none() { EXIT_UNREACHABLE } else { EXIT_FAILED });
        }
    };
    let runs_this_file = daemon.file.as_deref().is_some_and(|d| same_file(d, &file));
    match cmd {
        TrunkCmd::List { json, .. } | TrunkCmd::Show { json, .. } => {
            let cfg = match Config::load(&file) {
                Ok(c) => c,
                Err(e) => {
                    writeln!(err, "{e}")?;
                    return Ok(EXIT_FAILED);
                }
            };
            let live =
                if runs_this_file { daemon.client.as_mut().and_then(live_data) } else { None };
            let mut views: Vec<TrunkView> = cfg.trunk_groups.iter().map(view).collect();
            if let Some((ports, calls)) = &live {
                for v in &mut views {
                    v.live = Some(live_of(&v.name, ports, calls));
                }
            }
            if let TrunkCmd::Show { name, .. } = cmd {
                let Some(v) = views.into_iter().find(|v| &v.name == name) else {
                    let names: Vec<&str> =
                        cfg.trunk_groups.iter().map(|t| t.name.as_str()).collect();
                    writeln!(
                        err,
                        "cardpbx: no trunk group {name:?} in {} (trunk groups: {})",
                        file.display(),
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    )?;
                    return Ok(EXIT_FAILED);
                };
                if *json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    write!(out, "{}", render_show(&v))?;
                }
            } else if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&views)?)?;
            } else {
                write!(out, "{}", render_list(&views, live.is_some()))?;
            }
            Ok(EXIT_OK)
        }
        TrunkCmd::Add { name, options, json, .. } => {
            let edit = TrunkEdit::Add { name: name.clone(), settings: options.settings() };
            change(&edit, "added", *json, &file, runs_this_file, &mut daemon, out, err)
        }
        TrunkCmd::Set { name, settings, json, .. } => {
            let mut parsed = Vec::new();
            for s in settings {
                match edit::parse_setting(s) {
                    Ok(kv) => parsed.push(kv),
                    Err(e) => {
                        writeln!(err, "cardpbx: {e}")?;
                        return Ok(super::cli::EXIT_USAGE);
                    }
                }
            }
            let edit = TrunkEdit::Set { name: name.clone(), settings: parsed };
            change(&edit, "changed", *json, &file, runs_this_file, &mut daemon, out, err)
        }
        TrunkCmd::Remove { name, json, .. } => {
            let edit = TrunkEdit::Remove { name: name.clone() };
            change(&edit, "removed", *json, &file, runs_this_file, &mut daemon, out, err)
        }
    }
}

/// The daemon's ports and calls.
fn live_data(c: &mut CtlClient) -> Option<(Vec<PortData>, Vec<CallData>)> {
    let ports = match c.request(CtlRequest::Ports).ok()? {
        CtlData::Ports(p) => p,
        _ => return None,
    };
    let calls = match c.request(CtlRequest::Calls).ok()? {
        CtlData::Calls(c) => c,
        _ => return None,
    };
    Some((ports, calls))
}

#[allow(clippy::too_many_arguments)]
fn change(
    e: &TrunkEdit,
    action: &str,
    json: bool,
    file: &Path,
    runs_this_file: bool,
    daemon: &mut Daemon,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let outcome = match edit::apply(file, e) {
        Ok(o) => o,
        Err(error) => {
            writeln!(err, "cardpbx: {error}")?;
            if !matches!(error, EditError::Invalid(_) | EditError::Io { .. }) {
                writeln!(err, "{}: unchanged", file.display())?;
            }
            return Ok(EXIT_FAILED);
        }
    };
    let (reload, reload_problem) = match (&mut daemon.client, runs_this_file) {
        (Some(c), true) => match c.request(CtlRequest::Reload) {
            Ok(CtlData::Reload(r)) => (Some(r), None),
            Ok(_) => (None, Some("unexpected answer to reload".to_string())),
            Err(e) => (None, Some(format!("the daemon did not apply it: {e}"))),
        },
        (Some(_), false) => (
            None,
            Some(format!(
                "the running daemon uses {}, not this file: not reloaded",
                daemon.file.as_deref().map_or("another file".into(), |f| f.display().to_string())
            )),
        ),
        (None, _) => (
            None,
            Some("the daemon is not running: the change takes effect when it starts".to_string()),
        ),
    };
    let failed_reload = reload.is_none() && daemon.client.is_some() && runs_this_file;
    let change = TrunkChange {
        action: action.to_string(),
        name: e.name().to_string(),
        file: outcome.file.display().to_string(),
        notes: outcome.notes,
        reload,
        reload_problem,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&change)?)?;
    } else {
        writeln!(out, "trunk group {:?} {} in {}", change.name, change.action, change.file)?;
        for n in &change.notes {
            writeln!(out, "also: {n}")?;
        }
        match (&change.reload, &change.reload_problem) {
            (Some(r), _) => write!(out, "{}", render_reload(r))?,
            (None, Some(p)) if failed_reload => writeln!(err, "cardpbx: {p}")?,
            (None, Some(p)) => writeln!(out, "{p}")?,
            (None, None) => {}
        }
    }
    Ok(if failed_reload { EXIT_FAILED } else { EXIT_OK })
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// `trunk list` as a table.
pub fn render_list(views: &[TrunkView], live: bool) -> String {
    if views.is_empty() {
        return "no trunk groups\n".into();
    }
    let mut rows = vec![["NAME", "SIGNALLING", "PORTS", "CHANNELS", "HUNT", "INCOMING", "IN USE"]
        .map(String::from)
        .to_vec()];
    for v in views {
        rows.push(vec![
            v.name.clone(),
            v.signalling.clone(),
            v.ports.join(","),
            or_dash(&v.channels),
            v.hunt.clone(),
            or_dash(&v.incoming),
            match &v.live {
                Some(l) => format!("{}/{}", l.in_use, l.lines),
                None if live => "-".into(),
                None => "(daemon not running)".into(),
            },
        ]);
    }
    columns(&rows)
}

fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            line.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `trunk show` as text.
pub fn render_show(v: &TrunkView) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("name", v.name.clone()),
        ("signalling", v.signalling.clone()),
        ("ports", v.ports.join(", ")),
    ];
    if let Some(s) = &v.switch_type {
        rows.push(("switch type", s.clone()));
    }
    if let Some(c) = &v.channels {
        rows.push(("channels", c.clone()));
    }
    rows.push(("hunt", v.hunt.clone()));
    if let Some(p) = &v.presentation {
        rows.push(("presentation", p.clone()));
    }
    rows.push(("incoming", or_dash(&v.incoming)));
    if v.fax_destination.is_some() {
        rows.push(("fax destination", or_dash(&v.fax_destination)));
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out: String = rows.iter().map(|(k, val)| format!("{k:<w$}  {val}\n")).collect();
    match &v.live {
        None => out.push_str("\n(daemon not running this configuration: no live state)\n"),
        Some(l) => {
            out.push_str(&format!("\nlines in use: {} of {}\n", l.in_use, l.lines));
            let mut rows = vec![vec!["PORT".to_string(), "STATE".to_string(), "CALL".to_string()]];
            for p in &l.ports {
                let call = l
                    .calls
                    .iter()
                    .find(|c| c.a_port == p.port || c.b_port.as_deref() == Some(&p.port))
                    .map_or("-".to_string(), |c| {
                        format!("#{} {} -> {} ({})", c.id, c.from, c.to, c.state)
                    });
                rows.push(vec![p.port.clone(), p.state.clone(), call]);
            }
            out.push_str(&columns(&rows));
        }
    }
    out
}

/// A reload answer as text.
pub fn render_reload(r: &ReloadData) -> String {
    let rep = &r.report;
    let mut out = format!("daemon reloaded {}\n", r.file);
    for (what, list) in [
        ("added", &rep.added),
        ("changed", &rep.changed),
        ("removed", &rep.removed),
        ("unchanged", &rep.unchanged),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("  {what}: {}\n", list.join(", ")));
        }
    }
    if !rep.draining.is_empty() {
        out.push_str(&format!("  finishing their call first: {}\n", rep.draining.join(", ")));
    }
    if !rep.span_groups_applied.is_empty() {
        out.push_str(&format!(
            "  span groups restarted with their new settings: {}\n",
            rep.span_groups_applied.join(", ")
        ));
    }
    if !rep.span_groups_pending.is_empty() {
        out.push_str(&format!(
            "  span groups that change when their calls end: {}\n",
            rep.span_groups_pending.join(", ")
        ));
    }
    if !rep.restart_needed.is_empty() {
        out.push_str(&format!("  needs a restart: {}\n", rep.restart_needed.join("; ")));
    }
    out.push_str(&format!("  routes: {}, hunt groups: {}\n", rep.routes, rep.hunt_groups));
    out
}
