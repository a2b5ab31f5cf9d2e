//! The `cardpbx` command line: argument definitions (clap) and the client subcommands that talk
//! to a running daemon over the control socket and render its answers as tables or JSON.
//!
//! `daemon`, `demo`, `bench` and `dsp` are run by the binary itself; this module only defines their
//! arguments. Everything else is carried out by [`run_client_command`].

use super::client::{ClientError, CtlClient};
use super::proto::{
    CallData, CardData, ChannelData, CtlData, CtlRequest, PortData, SpanData, StatusData,
};
use super::trunk::{render_reload, run_trunk, TrunkCmd};
use crate::config::{default_socket_path, Config};
use crate::dspcli::DspCmd;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: the daemon refused the request, or the configuration has errors.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the command line is wrong (clap uses it too).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the daemon could not be reached (not running, stale socket, permission).
pub const EXIT_UNREACHABLE: i32 = 3;

/// Environment variable naming the control socket.
pub const SOCKET_ENV: &str = "CARDPBX_SOCKET";

/// cardpbx: board-based PBX daemon and technician CLI.
#[derive(Debug, Parser)]
#[command(name = "cardpbx", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Command,
    /// Control socket of the daemon (default: $CARDPBX_SOCKET, else $XDG_RUNTIME_DIR/cardpbx.sock,
    /// else /tmp/cardpbx-<uid>.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Run the PBX daemon with a configuration file.
    Daemon {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the bundled demo: a simulated card with phones and exchange lines, with traffic.
    Demo {
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Print the final report as JSON.
        #[arg(long)]
        json: bool,
        /// Use this configuration instead of the bundled demo configuration.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seed of the simulated traffic (default: the configuration's).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check that the daemon answers.
    Ping,
    /// Show daemon and media engine status.
    Status {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the cards.
    Cards {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the E1 spans with alarms and error counters.
    Spans {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List FXS/FXO ports and spans with their state.
    Ports {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List channels with what each transmits.
    Channels {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List calls in progress.
    Calls {
        /// Print the daemon's data as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow the event stream (calls, agents, queues) until interrupted.
    Events {
        /// Print each event as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// What-if simulations on the virtual clock (`sim busy-hour`).
    #[command(subcommand)]
    Sim(crate::whatif::SimCmd),
    /// Run the DSP detectors on recordings (DTMF, tones, caller ID, echo canceller).
    #[command(subcommand)]
    Dsp(DspCmd),
    /// ISDN PRI tools (`pri probe`: test a D-channel with our stack).
    #[command(subcommand)]
    Pri(crate::pri::PriCmd),
    /// Trunk groups: list, show, add, set, remove (edits the configuration file, keeping its
    /// comments, and reloads the running daemon without dropping calls).
    #[command(subcommand)]
    Trunk(TrunkCmd),
    /// Fax terminal over raw audio streams (`fax send|receive --in PATH --out PATH`).
    #[command(subcommand)]
    Fax(crate::faxcli::FaxCmd),
    /// E1 spans: show one in detail, capture a PRI span's D-channel to a pcap file.
    #[command(subcommand)]
    Span(super::span::SpanCmd),
    /// Conference rooms: list, show, mute, unmute, kick, invite.
    #[command(subcommand)]
    Conference(super::conference::ConferenceCmd),
    /// Reports from the store: queues, agents, hourly, ivr, cdr, recordings, staffing
    /// (`--from`, `--to`, `--csv`, `--json`).
    Report(crate::store::report::ReportArgs),
}

/// `cardpbx config ...`
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum ConfigCmd {
    /// Check a configuration file (and its include directory) without starting anything.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
}

/// `cardpbx bench ...`
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum BenchCmd {
    /// Run the media engine on a simulated card as fast as possible and report tick timing.
    Engine {
        /// Number of channels.
        #[arg(long, default_value_t = 1000)]
        channels: usize,
        /// Run time in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// PRI call setups per second through the whole stack on a simulated span.
    Pri {
        /// Number of calls.
        #[arg(long, default_value_t = 3000)]
        calls: u32,
        /// Calls in flight at once (1..=30).
        #[arg(long, default_value_t = 30)]
        parallel: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// The control request this command sends and whether `--json` was given, for the
    /// commands that talk to a running daemon.
    pub fn ctl_request(&self) -> Option<(CtlRequest, bool)> {
        Some(match *self {
            Command::Ping => (CtlRequest::Ping, false),
            Command::Status { json } => (CtlRequest::Status, json),
            Command::Cards { json } => (CtlRequest::Cards, json),
            Command::Spans { json } => (CtlRequest::Spans, json),
            Command::Ports { json } => (CtlRequest::Ports, json),
            Command::Channels { json } => (CtlRequest::Channels, json),
            Command::Calls { json } => (CtlRequest::Calls, json),
            _ => return None,
        })
    }

    /// Whether [`run_client_command`] carries this command out (everything but `daemon`,
    /// `demo` and `bench`).
    pub fn is_client_command(&self) -> bool {
        self.ctl_request().is_some()
            || matches!(
                self,
                Command::Config(_)
                    | Command::Trunk(_)
                    | Command::Span(_)
                    | Command::Events { .. }
                    | Command::Conference(_)
            )
    }
}

/// The control socket to use: `--socket`, else `$CARDPBX_SOCKET`, else [`default_socket_path`].
pub fn resolve_socket(option: Option<&Path>) -> PathBuf {
    if let Some(p) = option {
        return p.to_path_buf();
    }
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default_socket_path(),
    }
}

/// Carry out a client command (`status`, `cards`, ..., `config check`), printing to stdout and
/// errors to stderr, and return the process exit code ([`EXIT_OK`], [`EXIT_FAILED`],
/// [`EXIT_UNREACHABLE`]).
///
/// # Errors
/// When `cmd` is not a client command, or stdout cannot be written.
pub fn run_client_command(cmd: &Command, socket_path: &Path) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_client_command_to(cmd, socket_path, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run_client_command`] writing to the given streams.
///
/// # Errors
/// As [`run_client_command`].
pub fn run_client_command_to(
    cmd: &Command,
    socket_path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if let Command::Config(ConfigCmd::Check { file }) = cmd {
        return run_config_check(file, out, err);
    }
    if let Command::Trunk(t) = cmd {
        return run_trunk(t, socket_path, out, err);
    }
    if let Command::Span(s) = cmd {
        return super::span::run_span(s, socket_path, out, err);
    }
    if let Command::Conference(c) = cmd {
        return super::conference::run_conference(c, socket_path, out, err);
    }
    if let Command::Events { json } = *cmd {
        return run_events(socket_path, json, out, err);
    }
    let Some((req, json)) = cmd.ctl_request() else {
        anyhow::bail!("{cmd:?} is not a control client command");
    };
    let result = CtlClient::connect(socket_path).and_then(|mut c| c.request(req));
    let data = match result {
        Ok(data) => data,
        Err(e) => {
            writeln!(err, "cardpbx: {e}")?;
            if matches!(e, ClientError::NotRunning(_)) && std::env::var_os(SOCKET_ENV).is_none() {
                writeln!(
                    err,
                    "hint: start it with `cardpbx daemon --config FILE`, or name its socket with \
                     --socket PATH or {SOCKET_ENV}"
                )?;
            }
            return Ok(if e.is_unreachable() { EXIT_UNREACHABLE } else { EXIT_FAILED });
        }
    };
    if json {
        let text = match &data {
            CtlData::Ping(d) => serde_json::to_string_pretty(d),
            CtlData::Status(d) => serde_json::to_string_pretty(d),
            CtlData::Cards(d) => serde_json::to_string_pretty(d),
            CtlData::Spans(d) => serde_json::to_string_pretty(d),
            CtlData::Ports(d) => serde_json::to_string_pretty(d),
            CtlData::Channels(d) => serde_json::to_string_pretty(d),
            CtlData::Calls(d) => serde_json::to_string_pretty(d),
            CtlData::ConfigFile(d) => serde_json::to_string_pretty(d),
            CtlData::Reload(d) => serde_json::to_string_pretty(d),
            CtlData::Capture(d) => serde_json::to_string_pretty(d),
            CtlData::FaxJob(d) => serde_json::to_string_pretty(d),
            CtlData::Event(d) => serde_json::to_string(d),
            CtlData::Conference(d) => serde_json::to_string_pretty(d),
        }?;
        writeln!(out, "{text}")?;
    } else {
        write!(out, "{}", render(&data))?;
    }
    Ok(EXIT_OK)
}

/// `cardpbx events`: print the daemon's events as they happen, one per line, until the daemon
/// stops or the output is closed.
///
/// # Errors
/// When the output cannot be written.
fn run_events(
    socket_path: &Path,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut client = match CtlClient::connect(socket_path) {
        Ok(c) => c,
        Err(e) => {
            writeln!(err, "cardpbx: {e}")?;
            return Ok(if e.is_unreachable() { EXIT_UNREACHABLE } else { EXIT_FAILED });
        }
    };
    let result = client.follow(CtlRequest::Events, |data| {
        let CtlData::Event(v) = data else { return Ok(true) };
        let line = if json { v.to_string() } else { render_event(&v) };
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(true)
    });
    match result {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => {
            writeln!(err, "cardpbx: {e}")?;
            Ok(EXIT_FAILED)
        }
    }
}

/// One event as a line for people: the UTC time, the event, then its fields as `key=value`.
pub fn render_event(v: &serde_json::Value) -> String {
    let ms = v.get("ts_ms").and_then(serde_json::Value::as_i64).unwrap_or(0);
    let day_ms = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) =
        (day_ms / 3_600_000, day_ms / 60_000 % 60, day_ms / 1000 % 60, day_ms % 1000);
    let name = v.get("event").and_then(serde_json::Value::as_str).unwrap_or("?");
    let mut line = format!("{h:02}:{m:02}:{s:02}.{milli:03}Z {name:<14}");
    if let Some(obj) = v.get("data").and_then(serde_json::Value::as_object) {
        for (k, val) in obj {
            if k == "ts_ms" || val.is_null() {
                continue;
            }
            match val {
                serde_json::Value::String(s) => line.push_str(&format!(" {k}={s}")),
                other => line.push_str(&format!(" {k}={other}")),
            }
        }
    }
    line
}

/// `cardpbx config check FILE`: print `FILE: OK (...)` or every error, return the exit code.
///
/// # Errors
/// When the output cannot be written.
pub fn run_config_check(
    file: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match Config::load(file) {
        Ok(cfg) => {
            writeln!(out, "{}: OK ({})", file.display(), summary(&cfg))?;
            Ok(EXIT_OK)
        }
        Err(errors) => {
            for e in errors.errors() {
                writeln!(err, "{e}")?;
            }
            let n = errors.errors().len();
            writeln!(err, "{}: {n} error{}", file.display(), if n == 1 { "" } else { "s" })?;
            Ok(EXIT_FAILED)
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// One-line summary of a configuration: `1 card, 8 extensions, ...`.
pub fn summary(cfg: &Config) -> String {
    let ports: u32 = cfg.cards.iter().map(|c| c.fxs_ports + c.fxo_ports).sum();
    let spans: u32 = cfg.cards.iter().map(|c| c.e1_spans).sum();
    [
        plural(cfg.cards.len(), "card"),
        plural(ports as usize, "analog port"),
        plural(spans as usize, "E1 span"),
        plural(cfg.extensions.len(), "extension"),
        plural(cfg.hunt_groups.len(), "hunt group"),
        plural(cfg.trunk_groups.len(), "trunk group"),
        plural(cfg.routes.len(), "route"),
    ]
    .join(", ")
}

/// Render the daemon's data as the human-readable text the CLI prints.
pub fn render(data: &CtlData) -> String {
    match data {
        CtlData::Ping(p) => format!("pong: cardpbx {} is running\n", p.version),
        CtlData::Status(s) => render_status(s),
        CtlData::Cards(c) => render_cards(c),
        CtlData::Spans(s) => render_spans(s),
        CtlData::Ports(p) => render_ports(p),
        CtlData::Channels(c) => render_channels(c),
        CtlData::Calls(c) => render_calls(c),
        CtlData::ConfigFile(c) => format!("{}\n", c.path),
        CtlData::Reload(r) => render_reload(r),
        CtlData::Capture(c) => super::span::render_capture(c),
        CtlData::FaxJob(j) => crate::faxsvc::cli::render_job(j),
        CtlData::Event(e) => format!("{}\n", render_event(e)),
        CtlData::Conference(d) => super::conference::render_conference(d, false),
    }
}

/// A duration in seconds as `1h 02m 03s`.
fn duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 { secs as u64 } else { 0 };
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Nanoseconds as microseconds with one decimal.
fn micros(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

fn render_status(s: &StatusData) -> String {
    let e = &s.engine;
    let rows = [
        ("name", s.name.clone()),
        ("version", s.version.clone()),
        ("uptime", duration(s.uptime_s)),
        ("ticks", s.ticks.to_string()),
        ("calls", format!("{} active, {} total", s.calls_active, s.calls_total)),
        ("realtime", s.realtime.clone()),
        (
            "tick time",
            format!(
                "p50 {}, p99 {}, p99.9 {}, max {}",
                micros(e.p50_ns),
                micros(e.p99_ns),
                micros(e.p999_ns),
                micros(e.max_tick_ns)
            ),
        ),
        ("late ticks", format!("{} of {}", e.late_ticks, e.ticks)),
        ("overruns", format!("commands {}, events {}", e.cmd_overruns, e.event_overruns)),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

/// An aligned text table: a header row and one row per item, columns two spaces apart.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(cell);
            l.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn render_cards(cards: &[CardData]) -> String {
    if cards.is_empty() {
        return "no cards\n".into();
    }
    table(
        &["CARD", "DRIVER", "MODEL", "FXS", "FXO", "SPANS"],
        cards
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.driver.clone(),
                    c.model.clone(),
                    c.fxs.to_string(),
                    c.fxo.to_string(),
                    c.spans.to_string(),
                ]
            })
            .collect(),
    )
}

fn render_spans(spans: &[SpanData]) -> String {
    if spans.is_empty() {
        return "no E1 spans\n".into();
    }
    table(
        &["SPAN", "FRAMING", "CODE", "CRC4", "ALARMS", "SLIPS", "CRC4 ERR", "BPV", "TIMING"],
        spans
            .iter()
            .map(|s| {
                vec![
                    format!("{}/span{}", s.card, s.span),
                    s.framing.clone(),
                    s.line_code.clone(),
                    yes_no(s.crc4),
                    if s.alarms.is_empty() { "OK".into() } else { s.alarms.join(",") },
                    s.slips.to_string(),
                    s.crc4_errors.to_string(),
                    s.bpv.to_string(),
                    if s.timing_source { "source".into() } else { "-".into() },
                ]
            })
            .collect(),
    )
}

fn render_ports(ports: &[PortData]) -> String {
    if ports.is_empty() {
        return "no ports\n".into();
    }
    table(
        &["PORT", "KIND", "STATE", "EXTENSION", "TRUNK GROUP"],
        ports
            .iter()
            .map(|p| {
                vec![
                    p.port.clone(),
                    p.kind.to_string(),
                    p.state.clone(),
                    opt(&p.extension),
                    opt(&p.trunk_group),
                ]
            })
            .collect(),
    )
}

fn render_channels(chans: &[ChannelData]) -> String {
    if chans.is_empty() {
        return "no channels\n".into();
    }
    table(
        &["CARD", "CHAN", "NAME", "SIG", "LAW", "SOURCE", "DTMF", "REC"],
        chans
            .iter()
            .map(|c| {
                vec![
                    c.card.clone(),
                    c.chan.to_string(),
                    c.name.clone(),
                    c.sig.clone(),
                    c.law.clone(),
                    c.source.clone(),
                    yes_no(c.dtmf),
                    yes_no(c.recording),
                ]
            })
            .collect(),
    )
}

fn render_calls(calls: &[CallData]) -> String {
    if calls.is_empty() {
        return "no calls in progress\n".into();
    }
    table(
        &["ID", "FROM", "TO", "STATE", "A PORT", "B PORT", "DURATION"],
        calls
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.from.clone(),
                    c.to.clone(),
                    c.state.clone(),
                    c.a_port.clone(),
                    opt(&c.b_port),
                    duration(c.duration_s),
                ]
            })
            .collect(),
    )
}
