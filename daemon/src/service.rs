//! The daemon: a configured card, the engine and call control on their threads, and the
//! control socket that the CLI talks to.

use crate::config::model::{CardConfig, CoDisconnect, Config, Driver, SimClock};
use crate::config::model::{PortKind, TrunkSignalling};
use crate::ctl::proto::{
    CallData, CardData, ChannelData, CtlData, CtlRequest, CtlResponse, EngineSummary, PingData,
    PortData, StatusData,
};
use crate::ctl::server::{CtlEnvelope, CtlServer};
use crate::engine::EngineStats;
use crate::json_name;
use crate::runner::Realtime;
use anyhow::Context;
use cardpbx_hal::{CardInfo, SigKind, SpanId};
use cardpbx_signalling::q931::call::Side;
use cardpbx_sim::{ClockMode, DisconnectSignal, SimCard, SimConfig, SpanFarEnd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why `config_file` and `reload` cannot be answered.
const NO_CONFIG_FILE: &str =
    "the daemon was started without a configuration file (name one with --config FILE)";

/// The simulator settings for a `driver = "sim"` card of the configuration.
pub fn sim_config(cfg: &Config, card: &CardConfig, clock: Option<ClockMode>) -> SimConfig {
    let s = card.sim_settings();
    let mut sc = SimConfig {
        name: card.name.clone(),
        fxs_ports: card.fxs_ports,
        fxo_ports: card.fxo_ports,
        e1_spans: card.e1_spans,
        law: cfg.system.law.to_hal(),
        seed: s.seed,
        clock: clock.unwrap_or(match s.clock {
            SimClock::Realtime => ClockMode::RealTime,
            SimClock::Virtual => ClockMode::Virtual,
        }),
        ..SimConfig::default()
    };
    sc.co.answer_delay_ms = s.co_answer_delay_ms;
    sc.co.answer_polarity_reversal = s.co_answer_polarity;
    sc.co.disconnect = match s.co_disconnect {
        CoDisconnect::Polarity => DisconnectSignal::PolarityReversal,
        CoDisconnect::BusyTone => DisconnectSignal::BusyTone,
        CoDisconnect::Both => DisconnectSignal::Both,
    };
    sc.exchange.answer_delay_ms = s.co_answer_delay_ms;
    // Spans of PRI trunk groups face a simulated exchange that runs the other side.
    sc.span_far = (1..=card.e1_spans)
        .map(|n| {
            let group = cfg.trunk_groups.iter().find(|t| {
                t.ports
                    .iter()
                    .any(|p| p.card == card.name && p.kind == PortKind::Span && p.index == n)
            });
            let peer = cfg
                .spans
                .iter()
                .find(|s| s.card == card.name && s.span == n)
                .and_then(|s| s.sim_peer_socket.clone());
            match group.map(|t| t.signalling) {
                Some(TrunkSignalling::PriCpe | TrunkSignalling::PriNet) if peer.is_some() => {
                    SpanFarEnd::Socket(peer.expect("checked"))
                }
                Some(TrunkSignalling::PriCpe) => SpanFarEnd::Exchange(Side::Network),
                Some(TrunkSignalling::PriNet) => SpanFarEnd::Exchange(Side::User),
                Some(TrunkSignalling::R2China) => SpanFarEnd::R2Exchange,
                _ => SpanFarEnd::None,
            }
        })
        .collect();
    sc
}

/// The one card this daemon drives.
///
/// # Errors
/// No card configured, more than one (not supported yet), or a driver this binary lacks.
pub fn the_card(cfg: &Config) -> anyhow::Result<&CardConfig> {
    match cfg.cards.as_slice() {
        [] => anyhow::bail!(
            "no [[card]] is configured: add one (driver = \"sim\" to try without hardware)"
        ),
        [c] => Ok(c),
        [first, ..] => anyhow::bail!(
            "{} cards are configured; this version drives one card per daemon (card {:?} first)",
            cfg.cards.len(),
            first.name
        ),
    }
}

/// Open the configured card as a simulator.
///
/// # Errors
/// A driver that is not built into this binary, or a simulator configuration it refuses.
pub fn open_sim_card(cfg: &Config, clock: Option<ClockMode>) -> anyhow::Result<SimCard> {
    let card = the_card(cfg)?;
    match card.driver {
        Driver::Sim => {}
        other => anyhow::bail!(
            "card {:?}: driver {other} is not built into this binary (only \"sim\" is)",
            card.name
        ),
    }
    SimCard::new(sim_config(cfg, card, clock))
        .map_err(|e| anyhow::anyhow!("card {:?}: {e}", card.name))
}

/// A running daemon.
pub struct Daemon {
    rt: Realtime,
    info: CardInfo,
    card_driver: String,
    name: String,
    started: Instant,
    ctl: Option<CtlServer>,
    requests: crossbeam_channel::Receiver<CtlEnvelope>,
    /// The configuration file the daemon was started with (for `config_file` and `reload`).
    config_file: Option<std::path::PathBuf>,
    /// Trunk group and signalling of each span, by span number (for `spans`).
    span_groups: std::collections::BTreeMap<u32, (String, String)>,
    /// The store CDRs are written to.
    store: Option<crate::store::DaemonStore>,
}

impl Daemon {
    /// Bind the control socket of `cfg` (creating its directory), before anything starts.
    ///
    /// # Errors
    /// Another daemon answers on it, or it cannot be created (permissions).
    pub fn bind_socket(cfg: &Config) -> anyhow::Result<CtlServer> {
        let path = &cfg.system.control_socket;
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("creating the control socket's directory {}", dir.display())
                })?;
            }
        }
        CtlServer::bind(path).with_context(|| format!("control socket {}", path.display()))
    }

    /// Start the engine and call control on `card`, serving `ctl` if given.
    ///
    /// # Errors
    /// The configuration does not fit the card, or a thread cannot start.
    pub fn start(cfg: &Config, card: SimCard, ctl: Option<CtlServer>) -> anyhow::Result<Daemon> {
        let card_cfg = the_card(cfg)?;
        let info = cardpbx_hal::Card::info(&card).clone();
        let prio = cfg.system.realtime.then_some(i32::from(cfg.system.rt_priority));
        let db = cfg.system.database_path();
        let store = crate::store::DaemonStore::open(&db).context("opening the database")?;
        let rt = Realtime::start_with_store(card, cfg, &card_cfg.name, prio, Some(store.handle()))?;
        seed_sticky_routing(&rt, &db);
        let (tx, rx) = crossbeam_channel::unbounded();
        let ctl = match ctl {
            Some(mut server) => {
                server.serve(tx).context("starting the control socket server")?;
                tracing::info!(socket = %server.path().display(), "control socket ready");
                Some(server)
            }
            None => None,
        };
        Ok(Daemon {
            rt,
            info,
            card_driver: card_cfg.driver.to_string(),
            name: cfg.system.name.clone(),
            started: Instant::now(),
            ctl,
            requests: rx,
            config_file: None,
            span_groups: crate::ctl::span::span_groups(cfg, &card_cfg.name),
            store: Some(store),
        })
    }

    /// The engine and call control threads.
    pub fn runtime(&self) -> &Realtime {
        &self.rt
    }

    /// Serve control-socket requests until `stop` is set or the engine stops.
    pub fn serve(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) && self.rt.is_running() {
            self.serve_once(Duration::from_millis(100));
        }
    }

    /// Answer the control requests that arrive within `timeout`.
    pub fn serve_once(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.requests.recv_timeout(left) {
                Ok((CtlRequest::Events, reply)) => self.follow_events(reply),
                Ok((req, reply)) => {
                    let _ = reply.send(self.answer(req));
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    }

    /// Send every event from now on to `reply` (a control client following `events`) until
    /// the client goes away. A client that falls [`EVENT_BACKLOG`] events behind misses events
    /// (it sees the gap in their sequence numbers) rather than holding call control up.
    ///
    /// [`EVENT_BACKLOG`]: crate::ctl::server::EVENT_BACKLOG
    fn follow_events(&self, reply: crossbeam_channel::Sender<CtlResponse>) {
        self.rt.subscribe(Box::new(move |ev| {
            let Ok(v) = serde_json::to_value(ev) else { return true };
            match reply.try_send(CtlResponse::Ok(CtlData::Event(v))) {
                Ok(()) | Err(crossbeam_channel::TrySendError::Full(_)) => true,
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
            }
        }));
    }

    /// Answer one control request.
    pub fn answer(&self, req: CtlRequest) -> CtlResponse {
        let data = match req {
            CtlRequest::Ping => {
                CtlData::Ping(PingData { pong: true, version: env!("CARGO_PKG_VERSION").into() })
            }
            CtlRequest::Status => {
                let name = self.name.clone();
                let uptime = self.started.elapsed().as_secs_f64();
                let realtime = self.rt.realtime().to_string();
                match self.rt.query(move |pbx, stats| StatusData {
                    name,
                    version: env!("CARGO_PKG_VERSION").into(),
                    uptime_s: uptime,
                    ticks: stats.ticks.load(Ordering::Relaxed),
                    calls_active: pbx.active_calls() as u64,
                    calls_total: pbx.counters().calls_total,
                    engine: engine_summary(stats),
                    realtime,
                }) {
                    Some(s) => CtlData::Status(s),
                    None => return CtlResponse::Error("call control is not running".into()),
                }
            }
            CtlRequest::Cards => CtlData::Cards(vec![CardData {
                name: self.info.name.clone(),
                driver: self.card_driver.clone(),
                model: self.info.model.clone(),
                fxs: self.count(SigKind::FxsLoopStart),
                fxo: self.count(SigKind::FxoLoopStart),
                spans: self.info.spans.len() as u32,
            }]),
            CtlRequest::Spans => {
                let card = self.info.name.clone();
                let spans: Vec<SpanId> = self.info.spans.iter().map(|s| s.id).collect();
                let groups = self.span_groups.clone();
                match self.rt.query(move |pbx, stats| {
                    spans
                        .iter()
                        .map(|&id| {
                            crate::ctl::span::span_data(pbx, stats, &card, id, groups.get(&id.0))
                        })
                        .collect()
                }) {
                    Some(v) => CtlData::Spans(v),
                    None => return CtlResponse::Error("call control is not running".into()),
                }
            }
            CtlRequest::Ports => match self.rt.query(|pbx, _| pbx.ports()) {
                Some(ports) => CtlData::Ports(
                    ports
                        .into_iter()
                        .map(|p| PortData {
                            kind: p.kind,
                            port: p.port,
                            state: p.state,
                            extension: p.extension,
                            trunk_group: p.trunk_group,
                        })
                        .collect(),
                ),
                None => return CtlResponse::Error("call control is not running".into()),
            },
            CtlRequest::Channels => {
                let info = self.info.clone();
                match self.rt.query(move |pbx, _| {
                    info.channels
                        .iter()
                        .map(|c| {
                            let (source, det, _) = pbx.channel_source(c.id);
                            let dtmf = det.dtmf || det.clamp_dtmf;
                            ChannelData {
                                card: info.name.clone(),
                                chan: c.id.0,
                                name: c.name.clone(),
                                sig: json_name(&c.sig),
                                law: json_name(&c.law),
                                source,
                                dtmf,
                                recording: false,
                            }
                        })
                        .collect()
                }) {
                    Some(v) => CtlData::Channels(v),
                    None => return CtlResponse::Error("call control is not running".into()),
                }
            }
            CtlRequest::Calls => match self.rt.query(|pbx, stats| {
                let now = stats.ticks.load(Ordering::Relaxed);
                pbx.calls()
                    .into_iter()
                    .map(|c| CallData {
                        id: c.id,
                        from: c.from,
                        to: c.to,
                        state: json_name(&c.state),
                        a_port: c.a_port,
                        b_port: c.b_port,
                        started_tick: c.started,
                        answered_tick: c.answered,
                        duration_s: now.saturating_sub(c.started) as f64 / 1000.0,
                    })
                    .collect()
            }) {
                Some(v) => CtlData::Calls(v),
                None => return CtlResponse::Error("call control is not running".into()),
            },
            CtlRequest::ConfigFile => match &self.config_file {
                Some(p) => CtlData::ConfigFile(crate::ctl::proto::ConfigFileData {
                    path: p.display().to_string(),
                }),
                None => return CtlResponse::Error(NO_CONFIG_FILE.into()),
            },
            CtlRequest::Reload => return self.reload(),
            CtlRequest::Events => {
                return CtlResponse::Error("events is a stream: follow it on a connection".into())
            }
            CtlRequest::FaxSend(args) => match crate::faxsvc::cli::serve_send(&self.rt, &args) {
                Ok(d) => CtlData::FaxJob(d),
                Err(e) => return CtlResponse::Error(e),
            },
            CtlRequest::Conference(args) => {
                match self.rt.query_mut(move |pbx, _| crate::ctl::conference::serve(pbx, &args)) {
                    Some(Ok(d)) => CtlData::Conference(d),
                    Some(Err(e)) => return CtlResponse::Error(e),
                    None => return CtlResponse::Error("call control is not running".into()),
                }
            }
            CtlRequest::SpanCapture(args) => {
                let card = self.info.name.clone();
                match self
                    .rt
                    .query_mut(move |pbx, _| crate::ctl::span::span_capture(pbx, &card, &args))
                {
                    Some(Ok(d)) => CtlData::Capture(d),
                    Some(Err(e)) => return CtlResponse::Error(e),
                    None => return CtlResponse::Error("call control is not running".into()),
                }
            }
        };
        CtlResponse::Ok(data)
    }

    /// Name the configuration file the daemon was started with (made absolute), which
    /// `config_file` reports and `reload` reads.
    pub fn set_config_file(&mut self, path: &std::path::Path) {
        self.config_file = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    }

    /// `reload`: read the configuration file again, check it, and apply it to call control
    /// (trunk groups, routes, hunt groups) without dropping calls.
    fn reload(&self) -> CtlResponse {
        let Some(file) = self.config_file.clone() else {
            return CtlResponse::Error(NO_CONFIG_FILE.into());
        };
        let cfg = match Config::load(&file) {
            Ok(cfg) => cfg,
            Err(e) => {
                return CtlResponse::Error(format!(
                    "configuration not reloaded, it has errors:\n{e}"
                ))
            }
        };
        match self.rt.query_mut(move |pbx, _| pbx.reconfigure(&cfg)) {
            Some(Ok(report)) => CtlResponse::Ok(CtlData::Reload(crate::ctl::proto::ReloadData {
                file: file.display().to_string(),
                report,
            })),
            Some(Err(e)) => CtlResponse::Error(format!("configuration not applied: {e}")),
            None => CtlResponse::Error("call control is not running".into()),
        }
    }

    fn count(&self, sig: SigKind) -> u32 {
        self.info.channels.iter().filter(|c| c.sig == sig).count() as u32
    }

    /// Stop the control socket, then the threads.
    ///
    /// # Errors
    /// The card error that stopped the engine, if any.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some(ctl) = self.ctl.take() {
            ctl.shutdown();
        }
        let r = self.rt.stop();
        if let Some(store) = self.store.take() {
            store.close();
        }
        r
    }
}

/// The engine counters for `status`.
pub fn engine_summary(stats: &EngineStats) -> EngineSummary {
    let s = stats.snapshot();
    EngineSummary {
        ticks: s.ticks,
        late_ticks: s.late_ticks,
        max_tick_ns: s.max_work_ns,
        cmd_overruns: s.command_overruns,
        event_overruns: s.event_overruns,
        p50_ns: s.work_p50_ns,
        p99_ns: s.work_p99_ns,
        p999_ns: s.work_p999_ns,
    }
}

/// Run the daemon until SIGINT/SIGTERM.
///
/// # Errors
/// A configuration or start-up failure.
pub fn run(cfg: &Config) -> anyhow::Result<()> {
    run_daemon(cfg, None)
}

/// Run the daemon with the configuration `cfg` read from `file` (which `reload` reads again)
/// until SIGINT/SIGTERM.
///
/// # Errors
/// A configuration or start-up failure.
pub fn run_with_file(cfg: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    run_daemon(cfg, Some(file))
}

fn run_daemon(cfg: &Config, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let ctl = Daemon::bind_socket(cfg)?;
    let card = open_sim_card(cfg, None)?;
    let mut daemon = Daemon::start(cfg, card, Some(ctl))?;
    if let Some(f) = file {
        daemon.set_config_file(f);
    }
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_handler(stop.clone())?;
    tracing::info!(name = %cfg.system.name, "cardpbx daemon running");
    daemon.serve(&stop);
    tracing::info!("stopping");
    daemon.stop()
}

/// Set `stop` on SIGINT or SIGTERM.
///
/// # Errors
/// When the handler cannot be installed.
pub fn install_stop_handler(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
        .context("installing the SIGINT/SIGTERM handler")
}

/// Give call control the agents who served callers recently (sticky routing survives a
/// restart): the store's CDRs of the last `sticky_days`. A store that cannot be read is
/// logged and skipped (routing then starts without history).
fn seed_sticky_routing(rt: &Realtime, db: &std::path::Path) {
    let Some(days) = rt.query(|pbx, _| pbx.sticky_days()).filter(|d| *d > 0) else { return };
    if db == std::path::Path::new(crate::store::IN_MEMORY) {
        return;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = now_ms - i64::from(days) * 86_400_000;
    match crate::store::Store::open_read_only(db).and_then(|s| s.last_agents(since)) {
        Ok(rows) => {
            let n = rows.len();
            rt.query_mut(move |pbx, _| pbx.seed_last_agents(rows));
            tracing::info!("sticky routing: {n} callers' last agents from the store");
        }
        Err(e) => tracing::warn!("sticky routing starts without history: {e}"),
    }
}
