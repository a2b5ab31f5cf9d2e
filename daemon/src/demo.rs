//! `cardpbx demo`: the daemon on a simulated card with generated traffic, a live status line
//! and a summary.

use crate::config::model::{Config, PortKind};
use crate::service::{engine_summary, open_sim_card, the_card, Daemon};
use anyhow::Context;
use cardpbx_sim::{ClockMode, TrafficConfig, TrafficSnapshot};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bundled demo configuration.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// What the demo reports at the end.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Seconds the demo ran.
    pub seconds: f64,
    /// Calls the simulated callers started.
    pub calls_attempted: u64,
    /// Calls that were set up, heard both ways and cleared.
    pub calls_completed: u64,
    /// Calls that went wrong (no dial tone, no ringing, no answer, wrong number, audio errors);
    /// a busy called party is not a failure and is counted in `traffic.busy`.
    pub calls_failed: u64,
    /// Calls still in progress when the demo stopped (neither completed nor failed).
    pub calls_in_progress: u64,
    /// Calls whose audio did not arrive, or arrived from the wrong party.
    pub audio_path_errors: u64,
    /// The simulated traffic's detailed counters.
    pub traffic: TrafficSnapshot,
    /// Calls as the PBX counted them.
    pub pbx: crate::pbx::PbxCounters,
    /// Media engine: ticks run.
    pub engine_ticks: u64,
    /// Media engine: ticks whose work overran the 1 ms tick, or that the clock reported late.
    pub engine_late_ticks: u64,
    /// Media engine: commands and events lost because a ring was full.
    pub engine_overruns: u64,
    /// Media engine: tick work at the 99.9th percentile, ns.
    pub engine_p999_ns: u64,
    /// How the media thread was scheduled.
    pub realtime: String,
}

/// The traffic the demo generates for a configuration: every extension calls, inbound calls
/// arrive on trunk lines whose group has an incoming target, outbound calls use the first route.
///
/// # Errors
/// When the configuration has too little to generate traffic on.
pub fn traffic_for(cfg: &Config) -> anyhow::Result<TrafficConfig> {
    let card = the_card(cfg)?;
    let fxs_port = |number: &str| {
        cfg.extensions
            .iter()
            .find(|e| {
                e.number == number && e.port.card == card.name && e.port.kind == PortKind::Fxs
            })
            .map(|e| e.port.index)
    };
    let extensions: Vec<(u32, String)> = cfg
        .extensions
        .iter()
        .filter(|e| e.port.card == card.name && e.port.kind == PortKind::Fxs)
        .map(|e| (e.port.index, e.number.clone()))
        .collect();
    if extensions.len() < 2 {
        anyhow::bail!("the demo needs at least two extensions on card {:?}", card.name);
    }
    let mut inbound_fxo_ports = Vec::new();
    let mut inbound_target_ports = Vec::new();
    for g in &cfg.trunk_groups {
        let Some(target) = &g.incoming else { continue };
        let targets: Vec<u32> = match cfg.hunt_groups.iter().find(|h| &h.number == target) {
            Some(h) => h.members.iter().filter_map(|m| fxs_port(m)).collect(),
            None => fxs_port(target).into_iter().collect(),
        };
        if targets.is_empty() {
            continue;
        }
        inbound_fxo_ports.extend(
            g.ports
                .iter()
                .filter(|p| p.card == card.name && p.kind == PortKind::Fxo)
                .map(|p| p.index),
        );
        inbound_target_ports = targets;
        break;
    }
    let group_of = |r: &&crate::config::model::RouteConfig| {
        cfg.trunk_groups.iter().find(|g| g.name == r.trunk_group)
    };
    let outgoing_prefix = cfg
        .routes
        .iter()
        .find(|r| group_of(r).is_some_and(|g| !g.signalling.uses_spans()))
        .map(|r| r.prefix.clone());
    // PRI: spans of PRI groups on this card; the exchange calls the group's incoming target
    // when it is the one inbound FXO calls ring, and phones dial out by the first PRI route.
    let pri_groups: Vec<&crate::config::model::TrunkGroupConfig> =
        cfg.trunk_groups.iter().filter(|g| g.signalling.is_pri()).collect();
    let pri_spans: Vec<u32> = pri_groups
        .iter()
        .flat_map(|g| g.ports.iter())
        .filter(|p| p.card == card.name && p.kind == PortKind::Span)
        .map(|p| p.index)
        .collect();
    let pri_inbound_number = pri_groups
        .iter()
        .filter_map(|g| g.incoming.clone())
        .find(|t| {
            let ports: Vec<u32> = match cfg.hunt_groups.iter().find(|h| &h.number == t) {
                Some(h) => h.members.iter().filter_map(|m| fxs_port(m)).collect(),
                None => fxs_port(t).into_iter().collect(),
            };
            !ports.is_empty() && (inbound_target_ports.is_empty() || ports == inbound_target_ports)
        })
        .unwrap_or_default();
    if inbound_target_ports.is_empty() && !pri_inbound_number.is_empty() {
        inbound_target_ports = match cfg.hunt_groups.iter().find(|h| h.number == pri_inbound_number)
        {
            Some(h) => h.members.iter().filter_map(|m| fxs_port(m)).collect(),
            None => fxs_port(&pri_inbound_number).into_iter().collect(),
        };
    }
    let pri_outgoing_prefix = cfg
        .routes
        .iter()
        .find(|r| group_of(r).is_some_and(|g| g.signalling.is_pri()))
        .map(|r| r.prefix.clone());
    // Internal calls between phones outside the hunt group set up in parallel; trunk calls
    // one at a time (the simulator cannot tell whose ringing is whose), so weigh internal ones.
    let mut mix = cardpbx_sim::CallMix {
        internal: 3,
        inbound: 1,
        outbound: 1,
        pri_inbound: 1,
        pri_outbound: 1,
    };
    if inbound_fxo_ports.is_empty() {
        mix.inbound = 0;
    }
    if outgoing_prefix.is_none() {
        mix.outbound = 0;
    }
    if pri_spans.is_empty() || pri_inbound_number.is_empty() {
        mix.pri_inbound = 0;
    }
    if pri_spans.is_empty() || pri_outgoing_prefix.is_none() {
        mix.pri_outbound = 0;
    }
    Ok(TrafficConfig {
        extensions,
        inbound_fxo_ports,
        inbound_target_ports,
        outgoing_prefix,
        external_number: "87654321".into(),
        pri_spans,
        pri_inbound_number,
        pri_outgoing_prefix,
        mean_interarrival_ms: 1000,
        mean_hold_ms: 5000,
        answer_delay_ms: (500, 2500),
        mix,
        ..TrafficConfig::default()
    })
}

/// Load the demo configuration: `path`, or the bundled one. The card is forced to the
/// simulator's real-time clock; without a `system.database` the store is in memory.
///
/// # Errors
/// When the file does not load or validate.
pub fn demo_config(path: Option<&Path>, seed: Option<u64>) -> anyhow::Result<Config> {
    let mut cfg = match path {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::parse_str(DEMO_CONFIG, "demo.toml (bundled)")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    if let Some(seed) = seed {
        for c in &mut cfg.cards {
            let mut s = c.sim_settings();
            s.seed = seed;
            c.sim = Some(s);
        }
    }
    // The demo's CDRs go to a private in-memory store unless the configuration names a file.
    if cfg.system.database.is_none() {
        cfg.system.database = Some(crate::store::IN_MEMORY.into());
    }
    Ok(cfg)
}

/// Run the demo for `duration` seconds (until Ctrl-C when `None`).
///
/// # Errors
/// Configuration or start-up failures.
pub fn run(
    config: Option<&Path>,
    duration: Option<f64>,
    json: bool,
    seed: Option<u64>,
) -> anyhow::Result<DemoSummary> {
    let cfg = demo_config(config, seed)?;
    let card_cfg = the_card(&cfg)?;
    let traffic = traffic_for(&cfg)?;
    let ctl = match Daemon::bind_socket(&cfg) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("note: {e:#}; the demo runs without a control socket");
            None
        }
    };
    let with_socket = ctl.is_some();
    let mut card = open_sim_card(&cfg, Some(ClockMode::RealTime))?;
    card.start_traffic(traffic).map_err(|e| anyhow::anyhow!("starting simulated traffic: {e}"))?;
    let stats = card.traffic_stats();
    let daemon = Daemon::start(&cfg, card, ctl)?;
    if !json {
        let socket = if with_socket {
            format!(
                "control socket {} (try `cardpbx status` in another terminal)",
                cfg.system.control_socket.display()
            )
        } else {
            "no control socket".to_string()
        };
        eprintln!(
            "cardpbx demo: {} on simulated card {:?}; {socket}; Ctrl-C stops",
            cfg.system.name, card_cfg.name
        );
    }
    finish(daemon, duration, json, stats)
}

fn finish(
    daemon: Daemon,
    duration: Option<f64>,
    json: bool,
    stats: Arc<cardpbx_sim::TrafficStats>,
) -> anyhow::Result<DemoSummary> {
    let stop = Arc::new(AtomicBool::new(false));
    crate::service::install_stop_handler(stop.clone())?;
    let started = Instant::now();
    let live = !json && std::io::stderr().is_terminal();
    let mut last_line = Instant::now() - Duration::from_secs(1);
    let deadline = duration.map(|d| started + Duration::from_secs_f64(d.max(0.0)));
    while !stop.load(Ordering::Relaxed) && daemon.runtime().is_running() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // Serve `cardpbx status` and friends while the demo runs.
        daemon.serve_once(Duration::from_millis(50));
        if last_line.elapsed() >= Duration::from_millis(500) {
            last_line = Instant::now();
            let t = stats.snapshot();
            let e = engine_summary(daemon.runtime().stats());
            let line = format!(
                "t={:5.1}s calls: attempted {} completed {} failed {} in progress {} audio errors {} | engine: late ticks {} overruns {} p99.9 {} us",
                started.elapsed().as_secs_f64(),
                t.attempted,
                t.completed,
                t.failed,
                t.in_progress,
                t.audio_path_errors,
                e.late_ticks,
                e.cmd_overruns + e.event_overruns,
                e.p999_ns / 1000
            );
            if live {
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
            } else if !json {
                eprintln!("{line}");
            }
        }
    }
    if live {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    let pbx = daemon.runtime().query(|pbx, _| pbx.counters()).unwrap_or_default();
    let e = engine_summary(daemon.runtime().stats());
    let realtime = daemon.runtime().realtime().to_string();
    daemon.stop().context("stopping the demo")?;
    let t = stats.snapshot();
    Ok(DemoSummary {
        seconds,
        calls_attempted: t.attempted,
        calls_completed: t.completed,
        calls_failed: t.failed,
        calls_in_progress: t.in_progress,
        audio_path_errors: t.audio_path_errors,
        traffic: t,
        pbx,
        engine_ticks: e.ticks,
        engine_late_ticks: e.late_ticks,
        engine_overruns: e.cmd_overruns + e.event_overruns,
        engine_p999_ns: e.p999_ns,
        realtime,
    })
}

impl DemoSummary {
    /// The summary as a human reads it.
    pub fn render(&self) -> String {
        format!(
            "cardpbx demo summary ({:.1} s)\n\
             calls attempted     {}\n\
             calls completed     {}\n\
             calls failed        {}\n\
             still in progress   {}\n\
             audio path errors   {}\n\
             engine ticks        {}\n\
             engine late ticks   {}\n\
             engine overruns     {}\n\
             tick work p99.9     {} us\n\
             media thread        {}\n",
            self.seconds,
            self.calls_attempted,
            self.calls_completed,
            self.calls_failed,
            self.calls_in_progress,
            self.audio_path_errors,
            self.engine_ticks,
            self.engine_late_ticks,
            self.engine_overruns,
            self.engine_p999_ns / 1000,
            self.realtime
        )
    }
}
