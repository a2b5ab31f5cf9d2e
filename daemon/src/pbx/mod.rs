//! Call control for analog extensions and trunks: the dialplan, hunt groups and trunk groups.
//!
//! [`Pbx`] is the control plane's state machine. It is fed the media engine's events
//! ([`Pbx::handle_event`]) and timer expiries ([`Pbx::handle_timeout`]) with the card's tick as
//! the time, and queues [`EngineCommand`]s that the runner drains into the engine
//! ([`Pbx::pop_command`]). It owns no thread, socket or clock, so the same code runs on the
//! real-time card and, stepped tick by tick, on the simulator's virtual clock.
//!
//! What it does: FXS phones go off-hook, hear dial tone, dial an extension, a hunt group or a
//! trunk route (prefix); extensions ring with the plan's cadence and are bridged on answer;
//! outgoing trunk calls seize an FXO line, dial the number in DTMF and cut the audio through;
//! incoming trunk calls ring the trunk group's extension or hunt group and are answered on the
//! line when someone picks up. What it does not do yet: features on hook flash (transfer, hold),
//! queues, IVR, PRI and R2 trunks.

mod cc;
mod cc_callback;
mod cc_features;
mod cc_records;
mod cc_supervise;
mod cdr;
pub mod conference;
mod dial;
pub mod events;
mod fax;
mod phonefeat;
mod pri;
mod r2;
mod reconfig;
mod recording;
mod snapshot;
mod trunk;
mod voicemail;

use crate::config::model::{CallerIdFormat, Config, HuntStrategy, PortKind, TrunkHunt};
use crate::engine::api::{CidFrame, Detectors, EngineCommand, EngineEvent, FskBurst, Source};
use crate::engine::EngineConfig;
use cardpbx_dsp::callerid::{self, AbsenceReason, CallerIdMessage, CidError, Format, FskStandard};
use cardpbx_dsp::echo::EchoConfig;
use cardpbx_dsp::faxtone::FaxToneEvent;
use cardpbx_dsp::progress::ProgressEvent;
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan};
use cardpbx_hal::{Alarms, CardInfo, ChannelId, HalCommand, HalEvent, SigKind, SpanId, Tick};
use cardpbx_signalling::loopstart::{
    FxoConfig, FxoEvent, FxoLine, FxsConfig, FxsEvent, FxsLine, FxsState, RingCadence,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

pub use dial::DialResult;
pub use fax::{FaxEvent, FaxJobInfo, FaxSendRequest};
pub use pri::{CaptureInfo, PriSpanInfo};
pub use r2::R2SpanInfo;
pub use reconfig::ReconfigReport;
pub use snapshot::{CallInfo, PbxCounters, PortInfo};

/// A call's number, unique for the life of the daemon.
pub type CallId = u64;

/// Ticks between an FXO seizure and the first DTMF digit sent (time for the exchange to
/// give dial tone).
const SEIZE_TO_DIAL_MS: u64 = 600;
/// DTMF digits sent on trunks: tone and pause, in ms.
const OUTDIAL_ON_MS: u32 = 80;
const OUTDIAL_OFF_MS: u32 = 80;
/// Level of each tone of a sent DTMF digit, dBm0.
const OUTDIAL_LEVEL_DBM0: f32 = -8.0;
/// Caller ID to an extension starts this long after the first ring burst ends (GR-30 asks
/// for at least 500 ms).
const CID_AFTER_RING_MS: u64 = 500;
/// Level of the caller ID sent to extensions, dBm0.
const CID_LEVEL_DBM0: f32 = -13.0;
/// After the first ring burst on an FXO line, how long to wait for caller ID before routing
/// the call without it (the data comes about 0.5 to 1.5 s after the burst).
const CID_WAIT_AFTER_RING_MS: u64 = 3000;
/// Longest wait for caller ID from the first ring on, should the burst never end.
const CID_WAIT_MAX_MS: u64 = 8000;
/// DTMF caller ID to extensions (ETS 300 659-1 Annex C practice, as the Nordic and Dutch
/// networks send it): digits 70 ms on, 70 ms off, no polarity reversal before them, the first
/// ring this long after the last digit.
const DTMF_CID_ON_MS: u32 = 70;
const DTMF_CID_OFF_MS: u32 = 70;
const DTMF_CID_TO_RING_MS: u64 = 300;
/// Level of each tone of a DTMF caller ID digit, dBm0.
const DTMF_CID_LEVEL_DBM0: f32 = -10.0;
/// DTMF caller ID digits received on an idle trunk line are dropped when the next digit or the
/// first ring comes later than this after the last one.
const DTMF_CID_TIMEOUT_MS: u64 = 2000;

/// Why the configuration cannot be turned into call control for this card.
#[derive(Debug, thiserror::Error)]
pub enum PbxError {
    /// A port the configuration uses is not on the card, or has another signalling kind.
    #[error("{port}: {problem}")]
    Port {
        /// The port as configured (`sim0/fxs9`).
        port: String,
        /// What is wrong.
        problem: String,
    },
    /// The tone plan name is unknown.
    #[error("unknown tone plan {0:?} (known: cn, itu, eu)")]
    TonePlan(String),
    /// A timing value the line state machines refuse.
    #[error("analog settings: {0}")]
    Analog(String),
    /// The media engine cannot be built with these settings.
    #[error("media engine: {0}")]
    Engine(#[from] crate::engine::EngineBuildError),
}

/// What kind of line a channel is, with its state machine.
enum LineKind {
    /// An extension's phone port.
    Fxs { line: FxsLine, number: String },
    /// A trunk line towards the exchange.
    Fxo { line: FxoLine, group: usize },
    /// A bearer channel of a PRI span (`pri` indexes `Pbx::pri`).
    Bchan { pri: usize, ts: u8 },
    /// A voice timeslot of an MFC/R2 span (`r2` indexes `Pbx::r2`).
    R2 { r2: usize },
    /// Configured for nothing (or a kind this call control does not drive yet).
    None,
}

struct Line {
    kind: LineKind,
    /// When to send caller ID to this ringing extension.
    cid_due: Option<Tick>,
    /// DTMF caller ID digits still to send to this extension before its first ring (`Some`
    /// while sending, empty while the last digits play).
    dtmf_cid: Option<VecDeque<char>>,
    /// When to start ringing this extension (after its DTMF caller ID).
    ring_due: Option<Tick>,
    /// DTMF caller ID digits heard on this idle trunk line, and when the last came.
    cid_digits: String,
    cid_digit_at: Tick,
    /// The port name in configuration terms (`sim0/fxs1`).
    port: String,
    /// The call the line takes part in.
    call: Option<CallId>,
    /// PRI bearers: the Q.931 call on the channel, until it is released.
    q931: Option<cardpbx_signalling::q931::call::CallHandle>,
    /// The far end cleared while this phone stayed off-hook: it hears busy tone until it
    /// hangs up.
    orphaned: bool,
}

/// How a call came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Extension to extension or hunt group.
    Internal,
    /// Extension out through a trunk group.
    Outbound,
    /// In from a trunk to an extension or hunt group.
    Inbound,
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// An incoming trunk call waits for the caller ID between the first and second ring.
    CallerId,
    /// The caller hears dial tone or is dialling.
    Dialing,
    /// An extension (or several, for a hunt group) is ringing.
    Ringing,
    /// A trunk line is seized and the number is being sent.
    Outdialing,
    /// Both parties are connected.
    Connected,
    /// The caller hears busy or congestion tone and is expected to hang up.
    Failed,
}

/// The timer a call is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallTimer {
    /// No digit since dial tone: the caller gets congestion tone.
    FirstDigit,
    /// No further digit: the number is complete (or incomplete: congestion).
    InterDigit,
    /// Nobody answered in time.
    RingNoAnswer,
    /// The current hunt group member did not answer: ring the next one.
    HuntNext,
    /// The trunk line was seized: start sending digits.
    StartOutdial,
    /// No caller ID came: route the incoming trunk call without it.
    CallerIdWait,
    /// An outgoing trunk call still rings (ringback, no voice): give up.
    TrunkNoAnswer,
}

/// A hunt in progress for a call to a hunt group.
struct Hunt {
    group: usize,
    /// Members still to try, in order (linear and round robin).
    queue: VecDeque<ChannelId>,
}

struct Call {
    id: CallId,
    direction: Direction,
    state: CallState,
    /// The originating leg (an FXS phone, or an FXO line for incoming calls).
    a: ChannelId,
    /// The answering leg once known (extension that answered, or seized trunk).
    b: Option<ChannelId>,
    /// Extensions being rung.
    ringing: Vec<ChannelId>,
    hunt: Option<Hunt>,
    digits: String,
    from: String,
    to: String,
    started: Tick,
    answered: Option<Tick>,
    timer: Option<(Tick, CallTimer)>,
    /// Digits still to send on the seized trunk.
    outdial: VecDeque<char>,
    /// The caller's name, from caller ID or the extension's configuration.
    name: Option<String>,
    /// Why the caller's number is unknown (caller ID said so).
    from_absent: Option<AbsenceReason>,
    /// The trunk gave ringback (call progress on an outgoing trunk call).
    heard_ringback: bool,
    /// Fax calling tone is listened for on the trunk leg until this tick (`Tick::MAX`: until
    /// an extension answers).
    fax_until: Option<Tick>,
    /// The call was moved to the fax destination.
    fax: bool,
    /// State changes not yet published on the event stream (see [`Call::set_state`]).
    transitions: Vec<CallState>,
}

impl Call {
    /// Move the call to `state`; the change is published on the event stream when call
    /// control finishes handling the current event (`Pbx::flush_call_events`).
    fn set_state(&mut self, state: CallState) {
        if self.state != state {
            self.state = state;
            self.transitions.push(state);
        }
    }
}

struct HuntGroup {
    number: String,
    members: Vec<String>,
    strategy: HuntStrategy,
    ring_timeout_ms: u64,
    /// Round robin: index of the member to start with next time.
    next: usize,
}

struct TrunkGroup {
    name: String,
    lines: Vec<ChannelId>,
    hunt: TrunkHunt,
    incoming: Option<String>,
    fax_destination: Option<String>,
    fax_detect_ms: u64,
    next: usize,
    /// ISDN PRI: `lines` are bearer channels.
    pri: bool,
    /// PRI: outgoing calls ask for the calling number to be withheld.
    restricted: bool,
}

/// Analog line features that call control drives through the media engine's detectors.
#[derive(Debug, Clone, Copy)]
struct AnalogFeatures {
    hangup_on_busy_tone: bool,
    call_progress: bool,
    fxo_cid: Option<FskStandard>,
    fxs_cid: Option<FskStandard>,
    fxs_cid_format: Format,
    /// Idle trunk lines listen for DTMF caller ID before the first ring.
    fxo_cid_dtmf: bool,
    /// Extensions get DTMF caller ID before their first ring.
    fxs_cid_dtmf: bool,
    echo: Option<EchoConfig>,
}

struct Route {
    prefix: String,
    group: usize,
    strip: usize,
    min_digits: usize,
}

/// The call control state machine. See the module documentation.
pub struct Pbx {
    card: CardInfo,
    plan: TonePlan,
    lines: Vec<Line>,
    extensions: HashMap<String, ChannelId>,
    extension_names: HashMap<String, String>,
    hunt_groups: Vec<HuntGroup>,
    trunk_groups: Vec<TrunkGroup>,
    routes: Vec<Route>,
    first_digit_ms: u64,
    inter_digit_ms: u64,
    answer_timeout_ms: u64,
    calls: BTreeMap<CallId, Call>,
    next_call: CallId,
    commands: VecDeque<EngineCommand>,
    counters: PbxCounters,
    now: Tick,
    /// What each channel was last told to transmit, which detectors listen to it, and whether
    /// its echo canceller runs (a mirror of the engine's state for `show` commands).
    sources: Vec<(Source, Detectors, bool)>,
    spans: BTreeMap<SpanId, SpanState>,
    features: AnalogFeatures,
    /// Local time (seconds since 1970 in the local zone) at tick 0, for caller ID.
    wall_base_s: i64,
    /// UTC at tick 0 in microseconds since 1970, for D-channel capture timestamps.
    utc_base_us: u64,
    /// PRI spans in service.
    pri: Vec<pri::PriSpan>,
    /// MFC/R2 timeslots in service.
    r2: Vec<r2::R2Trunk>,
    /// Run-time reconfiguration: what is in effect, retired trunk groups, draining lines.
    reconf: reconfig::Reconf,
    /// Call detail records of finished calls, waiting to be drained.
    cdr: cdr::CdrLog,
    /// The call center: inbound routing, IVR and ACD (`cc.rs`).
    cc: cc::CallCenter,
    /// Fax reception and fax jobs (`fax.rs`).
    fax: fax::FaxCtl,
    /// Call recording policy and feature codes (`recording.rs`).
    rec: recording::RecCtl,
    /// The event stream (`events.rs`).
    events: events::EventLog,
    /// Meet-me conference rooms (`conference.rs`).
    conf: conference::ConfCtl,
    /// Hold, transfer, pickup and do-not-disturb (`phonefeat.rs`).
    pf: phonefeat::PhoneFeat,
    /// Voicemail boxes, messages and message waiting (`voicemail.rs`).
    vm: voicemail::VmCtl,
}

/// A span's settings and alarms as call control knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanState {
    /// Frame format (`ccs`, `cas`).
    pub framing: String,
    /// Line code (`hdb3`, `ami`).
    pub line_code: String,
    /// CRC-4 on.
    pub crc4: bool,
    /// Alarms last reported by the card.
    pub alarms: Alarms,
}

impl Pbx {
    /// Call control for the card described by `card` (the card named `card_name` in `cfg`).
    ///
    /// # Errors
    /// When a configured port is missing on the card or has the wrong signalling kind, the tone
    /// plan is unknown, or the analog timing is refused by the line state machines.
    pub fn new(cfg: &Config, card_name: &str, card: CardInfo) -> Result<Pbx, PbxError> {
        let plan = TonePlan::by_name(&cfg.system.tone_plan)
            .ok_or_else(|| PbxError::TonePlan(cfg.system.tone_plan.clone()))?;
        let cadence = RingCadence::new(plan.ring_cadence_ms())
            .map_err(|e| PbxError::Analog(format!("ring cadence of tone plan: {e}")))?;
        let a = &cfg.analog;
        let fxs_cfg = FxsConfig {
            flash_min_ms: a.flash_min_ms,
            flash_max_ms: a.flash_max_ms,
            ring_cadence: cadence,
        };
        let fxo_cfg = FxoConfig {
            ring_min_ms: a.fxo_ring_min_ms,
            ring_gap_timeout_ms: a.fxo_ring_gap_timeout_ms,
            answer_on_polarity: a.fxo_answer_on_polarity,
            hangup_on_polarity: a.fxo_hangup_on_polarity,
            ..FxoConfig::default()
        };
        let mut lines: Vec<Line> = card
            .channels
            .iter()
            .map(|c| Line {
                cid_due: None,
                dtmf_cid: None,
                ring_due: None,
                cid_digits: String::new(),
                cid_digit_at: 0,
                kind: LineKind::None,
                port: c.name.clone(),
                call: None,
                q931: None,
                orphaned: false,
            })
            .collect();
        let find = |kind: PortKind, index: u32| -> Option<ChannelId> {
            let (sig, prefix) = match kind {
                PortKind::Fxs => (SigKind::FxsLoopStart, "fxs"),
                PortKind::Fxo => (SigKind::FxoLoopStart, "fxo"),
                PortKind::Span => return None,
            };
            let name = format!("{prefix}{index}");
            card.channels.iter().find(|c| c.sig == sig && c.name == name).map(|c| c.id)
        };
        let mut extensions = HashMap::new();
        let mut extension_names = HashMap::new();
        for e in &cfg.extensions {
            if e.port.card != card_name {
                continue;
            }
            let chan = find(e.port.kind, e.port.index).ok_or_else(|| PbxError::Port {
                port: e.port.to_string(),
                problem: format!("extension {}: no such FXS port on the card", e.number),
            })?;
            let l = &mut lines[chan.index()];
            l.kind = LineKind::Fxs { line: FxsLine::new(chan, fxs_cfg), number: e.number.clone() };
            l.port = e.port.to_string();
            extensions.insert(e.number.clone(), chan);
            if let Some(n) = &e.name {
                extension_names.insert(e.number.clone(), n.clone());
            }
        }
        let mut trunk_groups = Vec::new();
        let mut pri_spans = Vec::new();
        let mut r2_trunks = Vec::new();
        for (gi, g) in cfg.trunk_groups.iter().enumerate() {
            let mut chans = Vec::new();
            for p in &g.ports {
                if p.card != card_name {
                    continue;
                }
                if g.signalling.is_pri() {
                    let sp = pri::build_span(&card, p, g, gi, pri_spans.len())?;
                    for (&ts, &chan) in &sp.bchans {
                        let l = &mut lines[chan.index()];
                        l.kind = LineKind::Bchan { pri: pri_spans.len(), ts };
                        l.port = format!("{p}/ts{ts}");
                        chans.push(chan);
                    }
                    pri_spans.push(sp);
                    continue;
                }
                if g.signalling == crate::config::model::TrunkSignalling::R2China {
                    r2::build_span(&card, p, g, &mut lines, &mut r2_trunks, &mut chans)?;
                    continue;
                }
                let chan = find(p.kind, p.index).ok_or_else(|| PbxError::Port {
                    port: p.to_string(),
                    problem: format!("trunk group {}: no such FXO port on the card", g.name),
                })?;
                let l = &mut lines[chan.index()];
                l.kind = LineKind::Fxo { line: FxoLine::new(chan, fxo_cfg), group: gi };
                l.port = p.to_string();
                chans.push(chan);
            }
            trunk_groups.push(TrunkGroup {
                name: g.name.clone(),
                lines: chans,
                hunt: g.hunt,
                incoming: g.incoming.clone(),
                fax_destination: g.fax_destination.clone(),
                fax_detect_ms: u64::from(g.fax_detect_s) * 1000,
                next: 0,
                pri: g.signalling.is_pri(),
                restricted: g.presentation == crate::config::model::Presentation::Restricted,
            });
        }
        let hunt_groups = cfg
            .hunt_groups
            .iter()
            .map(|h| HuntGroup {
                number: h.number.clone(),
                members: h.members.clone(),
                strategy: h.strategy,
                ring_timeout_ms: u64::from(h.ring_timeout_s) * 1000,
                next: 0,
            })
            .collect();
        let routes = cfg
            .routes
            .iter()
            .filter_map(|r| {
                let group = cfg.trunk_groups.iter().position(|g| g.name == r.trunk_group)?;
                Some(Route {
                    prefix: r.prefix.clone(),
                    group,
                    strip: r.strip as usize,
                    min_digits: r.min_digits as usize,
                })
            })
            .collect();
        let mut spans = BTreeMap::new();
        for si in &card.spans {
            let set = cfg.spans.iter().find(|s| s.card == card_name && s.span == si.id.0);
            let state = match set {
                Some(s) => SpanState {
                    framing: crate::json_name(&s.framing),
                    line_code: crate::json_name(&s.line_code),
                    crc4: s.crc4,
                    alarms: Alarms::NONE,
                },
                None => SpanState {
                    framing: "ccs".into(),
                    line_code: "hdb3".into(),
                    crc4: true,
                    alarms: Alarms::NONE,
                },
            };
            spans.insert(si.id, state);
        }
        let sources = vec![(Source::Silence, Detectors::NONE, false); card.channels.len()];
        let echo = if a.echo_cancel {
            let e = EchoConfig { tail_ms: a.echo_tail_ms, ..EchoConfig::default() };
            cardpbx_dsp::echo::EchoCanceller::new(e)
                .map_err(|err| PbxError::Analog(format!("echo canceller: {err}")))?;
            Some(e)
        } else {
            None
        };
        let features = AnalogFeatures {
            hangup_on_busy_tone: a.fxo_hangup_on_busy_tone,
            call_progress: a.fxo_call_progress,
            fxo_cid: a.fxo_callerid.standard(),
            fxs_cid: a.fxs_callerid.standard(),
            fxs_cid_format: match a.fxs_callerid_format {
                CallerIdFormat::Sdmf => Format::Sdmf,
                CallerIdFormat::Mdmf => Format::Mdmf,
            },
            fxo_cid_dtmf: a.fxo_callerid.is_dtmf(),
            fxs_cid_dtmf: a.fxs_callerid.is_dtmf(),
            echo,
        };
        let mut pbx = Pbx {
            features,
            wall_base_s: 0,
            utc_base_us: 0,
            sources,
            spans,
            card,
            plan,
            lines,
            extensions,
            extension_names,
            hunt_groups,
            trunk_groups,
            routes,
            first_digit_ms: u64::from(cfg.dialplan.first_digit_timeout_ms),
            inter_digit_ms: u64::from(cfg.dialplan.inter_digit_timeout_ms),
            answer_timeout_ms: u64::from(cfg.dialplan.answer_timeout_s) * 1000,
            calls: BTreeMap::new(),
            next_call: 1,
            commands: VecDeque::with_capacity(256),
            counters: PbxCounters::default(),
            now: 0,
            pri: pri_spans,
            r2: r2_trunks,
            reconf: reconfig::Reconf::new(cfg, card_name),
            cdr: cdr::CdrLog::default(),
            cc: cc::CallCenter::new(cfg)?,
            fax: fax::FaxCtl::new(cfg),
            rec: recording::RecCtl::new(cfg, EngineConfig::default().recording_slots),
            events: events::EventLog::default(),
            conf: conference::ConfCtl::new(cfg, EngineConfig::default().conferences),
            pf: phonefeat::PhoneFeat::new(cfg),
            vm: voicemail::VmCtl::new(cfg, EngineConfig::default().recording_slots),
        };
        // Bring every span into service with its line settings (defaults for spans the
        // configuration does not mention); the card answers with its alarms.
        let span_ids: Vec<SpanId> = pbx.card.spans.iter().map(|s| s.id).collect();
        for id in span_ids {
            let set = cfg.spans.iter().find(|s| s.card == card_name && s.span == id.0);
            let hal = match set {
                Some(s) => s.to_hal(),
                None => crate::config::model::SpanSettings::defaults(card_name, id.0).to_hal(),
            };
            pbx.cmd(EngineCommand::Hal(HalCommand::ConfigureSpan(id, hal)));
        }
        pbx.r2_start();
        for i in 0..pbx.lines.len() {
            let chan = ChannelId(i as u32);
            let d = pbx.idle_detectors(chan);
            pbx.detect(chan, d);
        }
        pbx.pri_start_configured_captures(cfg, card_name);
        Ok(pbx)
    }

    /// The card this call control drives.
    pub fn card(&self) -> &CardInfo {
        &self.card
    }

    /// The media engine settings this call control needs: the tone plan its progress
    /// detectors listen for and an echo canceller on every analog port it drives (when
    /// `echo_cancel` is on).
    pub fn engine_config(&self) -> EngineConfig {
        let (echo_channels, echo) = match self.features.echo {
            Some(e) => {
                let chans = self
                    .lines
                    .iter()
                    .enumerate()
                    // Every analog port too, so one a reload puts in a trunk group has one.
                    .filter(|(i, l)| {
                        matches!(l.kind, LineKind::Fxs { .. } | LineKind::Fxo { .. })
                            || self.card.channels.get(*i).is_some_and(|c| {
                                matches!(c.sig, SigKind::FxsLoopStart | SigKind::FxoLoopStart)
                            })
                    })
                    .map(|(i, _)| ChannelId(i as u32))
                    .collect();
                (chans, e)
            }
            None => (Vec::new(), EchoConfig::default()),
        };
        EngineConfig {
            tone_plan: self.plan.clone(),
            echo_channels,
            echo,
            prompts: self.vm.attach(self.cc.library()),
            fax_ports: self.fax.ports(),
            ..EngineConfig::default()
        }
    }

    /// Set the local time at tick 0 (seconds since 1970-01-01 00:00 in the local time zone),
    /// for the date and time in the caller ID sent to extensions.
    pub fn set_wall_clock(&mut self, local_s_at_tick0: i64) {
        self.wall_base_s = local_s_at_tick0;
    }

    /// The next command for the media engine, if any.
    pub fn pop_command(&mut self) -> Option<EngineCommand> {
        self.commands.pop_front()
    }

    /// Put back a command the engine's ring had no room for; it goes first next time.
    pub fn unpop_command(&mut self, cmd: EngineCommand) {
        self.commands.push_front(cmd);
    }

    /// Feed one event from the media engine.
    pub fn handle_event(&mut self, now: Tick, ev: EngineEvent) {
        self.advance(now);
        match ev {
            EngineEvent::Hal(_, hal) => self.handle_hal(hal),
            EngineEvent::Digit { chan, digit, .. } => self.on_digit(chan, digit),
            EngineEvent::PlayDone(chan, _) => self.on_play_done(chan),
            EngineEvent::Progress(chan, e, _) => self.on_progress(chan, e),
            EngineEvent::FaxTone(chan, e, _) => self.on_fax_tone(chan, e),
            EngineEvent::CallerId(chan, r, _) => self.on_caller_id(chan, r),
            EngineEvent::Mf(chan, signal, _) => self.r2_mf(chan, signal),
            EngineEvent::CommandFailed(chan, _) => {
                tracing::warn!(%chan, "card command failed; clearing the call on this channel");
                self.counters.card_errors += 1;
                self.cdr_system_clear(chan, "card command failed");
                self.leg_gone(chan);
            }
            EngineEvent::Heartbeat(_) => {}
        }
        self.collect();
        self.cc_pump();
        self.flush_call_events();
    }

    /// The earliest tick at which [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Option<Tick> {
        let calls = self.calls.values().filter_map(|c| c.timer.map(|(t, _)| t));
        let fax = self.calls.values().filter_map(|c| c.fax_until);
        let lines = self.lines.iter().filter_map(|l| {
            let t = match &l.kind {
                LineKind::Fxs { line, .. } => line.poll_timeout(),
                LineKind::Fxo { line, .. } => line.poll_timeout(),
                LineKind::Bchan { .. } | LineKind::R2 { .. } | LineKind::None => None,
            };
            t.into_iter().chain(l.cid_due).chain(l.ring_due).min()
        });
        calls
            .chain(fax)
            .chain(lines)
            .chain(self.pri_timeout())
            .chain(self.r2_timeout())
            .chain(self.cc_timeout())
            .chain(self.vm_timeout())
            .chain(self.fax_timeout())
            .chain(self.pf_timeout())
            .min()
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Tick) {
        self.advance(now);
        for l in &mut self.lines {
            match &mut l.kind {
                LineKind::Fxs { line, .. } => line.handle_timeout(now),
                LineKind::Fxo { line, .. } => line.handle_timeout(now),
                LineKind::Bchan { .. } | LineKind::R2 { .. } | LineKind::None => {}
            }
        }
        let due: Vec<(CallId, CallTimer)> = self
            .calls
            .values()
            .filter_map(|c| c.timer.filter(|(t, _)| *t <= now).map(|(_, k)| (c.id, k)))
            .collect();
        for (id, kind) in due {
            if let Some(c) = self.calls.get_mut(&id) {
                c.timer = None;
            }
            self.on_call_timer(id, kind);
        }
        let fax_over: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.fax_until.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in fax_over {
            if let Some(c) = self.calls.get_mut(&id) {
                c.fax_until = None;
                let a = c.a;
                self.update_detectors(a);
            }
        }
        for i in 0..self.lines.len() {
            if self.lines[i].cid_due.is_some_and(|t| t <= now) {
                self.lines[i].cid_due = None;
                self.send_caller_id(ChannelId(i as u32));
            }
            if self.lines[i].ring_due.is_some_and(|t| t <= now) {
                self.lines[i].ring_due = None;
                self.ring_after_dtmf_cid(ChannelId(i as u32));
            }
        }
        self.pri_poll(now);
        self.r2_poll(now);
        self.cc_tick(now);
        self.vm_tick(now);
        self.fax_poll(now);
        self.pf_poll(now);
        self.collect();
        self.cc_pump();
        self.flush_call_events();
    }

    fn advance(&mut self, now: Tick) {
        self.now = self.now.max(now);
    }

    fn cmd(&mut self, c: EngineCommand) {
        match c {
            EngineCommand::SetSource(ch, src) => {
                let old = self.sources.get(ch.index()).map(|m| m.0);
                if let Some(m) = self.sources.get_mut(ch.index()) {
                    m.0 = src;
                }
                // A fax port left behind: its session stops.
                if let Some(Source::FaxPort(slot)) = old.filter(|o| *o != src) {
                    self.fax_detached(slot);
                }
            }
            EngineCommand::Detect(ch, d) => {
                if let Some(m) = self.sources.get_mut(ch.index()) {
                    m.1 = d;
                }
            }
            EngineCommand::EchoCancel(ch, on) => {
                if let Some(m) = self.sources.get_mut(ch.index()) {
                    m.2 = on;
                }
            }
            _ => {}
        }
        self.commands.push_back(c);
    }

    /// Set a channel's detectors, unless they already are.
    fn detect(&mut self, chan: ChannelId, d: Detectors) {
        if self.sources.get(chan.index()).is_some_and(|m| m.1 != d) {
            self.cmd(EngineCommand::Detect(chan, d));
        }
    }

    /// Turn a channel's echo canceller on or off, if it has one and is not already so.
    fn echo(&mut self, chan: ChannelId, on: bool) {
        let has = self.features.echo.is_some()
            && matches!(
                self.lines.get(chan.index()).map(|l| &l.kind),
                Some(LineKind::Fxs { .. } | LineKind::Fxo { .. })
            );
        if has && self.sources.get(chan.index()).is_some_and(|m| m.2 != on) {
            self.cmd(EngineCommand::EchoCancel(chan, on));
        }
    }

    /// The detectors a trunk line in a call needs now: busy tone (far-end clear) and call
    /// progress once connected, fax calling tone while that is listened for.
    fn update_detectors(&mut self, chan: ChannelId) {
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(c) = self.calls.get(&id) else { return };
        if matches!(self.lines[chan.index()].kind, LineKind::Bchan { .. }) {
            // PRI bearers: fax calling tone while listened for; other detectors stay as set.
            let fax = c.fax_until.is_some() && c.a == chan;
            let d = Detectors { fax, ..self.sources[chan.index()].1 };
            self.detect(chan, d);
            return;
        }
        if !matches!(self.lines[chan.index()].kind, LineKind::Fxo { .. }) {
            return;
        }
        let f = self.features;
        let connected = c.state == CallState::Connected;
        let outbound_unanswered = c.direction == Direction::Outbound && c.answered.is_none();
        let d = Detectors {
            progress: connected
                && (f.hangup_on_busy_tone || (f.call_progress && outbound_unanswered)),
            fax: c.fax_until.is_some() && c.a == chan,
            dtmf: self.cc_wants_dtmf(chan) || self.vm_wants_dtmf(chan),
            callerid: if c.state == CallState::CallerId { f.fxo_cid } else { None },
            ..Detectors::NONE
        };
        self.detect(chan, d);
    }

    fn set_source(&mut self, chan: ChannelId, s: Source) {
        self.cmd(EngineCommand::SetSource(chan, s));
    }

    fn tone(&mut self, chan: ChannelId, t: ProgressTone) {
        let spec = self.plan.tone(t);
        self.set_source(chan, Source::Tone(spec));
    }

    fn handle_hal(&mut self, ev: HalEvent) {
        let Some(chan) = ev.channel() else {
            match ev {
                HalEvent::Alarm(span, alarms) => {
                    if alarms.is_clear() {
                        tracing::info!(%span, "span in service (no alarm)");
                    } else {
                        tracing::warn!(%span, %alarms, "span alarm");
                    }
                    if let Some(st) = self.spans.get_mut(&span) {
                        st.alarms = alarms;
                    }
                    self.pri_alarm(span, alarms);
                    self.r2_alarm(span, alarms);
                }
                HalEvent::CardGone => {
                    tracing::error!("the card is gone: clearing every call");
                    let chans: Vec<ChannelId> = self.card.channels.iter().map(|c| c.id).collect();
                    for c in chans {
                        self.cdr_system_clear(c, "card gone");
                        self.leg_gone(c);
                    }
                }
                _ => {}
            }
            return;
        };
        if let HalEvent::HdlcFrame(_, frame) = &ev {
            self.pri_frame(chan, frame);
            return;
        }
        if let HalEvent::CasBits(_, abcd) = ev {
            self.r2_cas(chan, abcd);
            return;
        }
        let now = self.now;
        let Some(l) = self.lines.get_mut(chan.index()) else { return };
        match &mut l.kind {
            LineKind::Fxs { line, .. } => line.handle_hal(now, &ev),
            LineKind::Fxo { line, .. } => line.handle_hal(now, &ev),
            LineKind::Bchan { .. } | LineKind::R2 { .. } | LineKind::None => {}
        }
    }

    /// Drain what the line state machines want done, until nothing is left.
    fn collect(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.lines.len() {
                let chan = ChannelId(i as u32);
                let (cmd, ev) = match &mut self.lines[i].kind {
                    LineKind::Fxs { line, .. } => (
                        line.poll_command().map(|c| HalCommand::Fxs(chan, c)),
                        line.poll_event().map(LineEvent::Fxs),
                    ),
                    LineKind::Fxo { line, .. } => (
                        line.poll_command().map(|c| HalCommand::Fxo(chan, c)),
                        line.poll_event().map(LineEvent::Fxo),
                    ),
                    LineKind::Bchan { .. } | LineKind::R2 { .. } | LineKind::None => (None, None),
                };
                if let Some(c) = cmd {
                    self.cmd(EngineCommand::Hal(c));
                    progressed = true;
                }
                if let Some(e) = ev {
                    match e {
                        LineEvent::Fxs(e) => self.on_fxs(chan, e),
                        LineEvent::Fxo(e) => self.on_fxo(chan, e),
                    }
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        // Lines a reload left draining move to their new trunk group once their call is over.
        self.settle_draining();
    }

    fn on_fxs(&mut self, chan: ChannelId, ev: FxsEvent) {
        match ev {
            FxsEvent::OffHook => self.originate(chan),
            FxsEvent::Answered => self.answered(chan),
            FxsEvent::Hangup if self.pf_hangup(chan) => {}
            FxsEvent::Hangup => {
                let l = &mut self.lines[chan.index()];
                if l.orphaned {
                    l.orphaned = false;
                    self.set_source(chan, Source::Silence);
                } else {
                    self.leg_gone(chan);
                }
            }
            FxsEvent::Flash => self.pf_flash(chan),
            FxsEvent::FirstRingEnded => {
                if self.features.fxs_cid.is_some() && self.lines[chan.index()].call.is_some() {
                    self.lines[chan.index()].cid_due = Some(self.now + CID_AFTER_RING_MS);
                }
            }
        }
    }

    fn on_fxo(&mut self, chan: ChannelId, ev: FxoEvent) {
        if self.fax_fxo_event(chan, &ev) {
            return;
        }
        match ev {
            FxoEvent::Ringing => self.incoming(chan),
            FxoEvent::RingingStopped => self.leg_gone(chan),
            FxoEvent::RingEndedFirst => {
                let now = self.now;
                if let Some(c) =
                    self.lines[chan.index()].call.and_then(|id| self.calls.get_mut(&id))
                {
                    if c.state == CallState::CallerId {
                        c.timer = Some((now + CID_WAIT_AFTER_RING_MS, CallTimer::CallerIdWait));
                    }
                }
            }
            FxoEvent::FarEndAnswer => {
                if let Some(id) = self.lines[chan.index()].call {
                    self.trunk_answered(id);
                }
            }
            FxoEvent::FarEndDisconnect { cause } => {
                tracing::debug!(%chan, ?cause, "far end disconnected");
                self.leg_gone(chan);
            }
            FxoEvent::PolarityReversalOnHook => {}
        }
    }

    /// A phone went off-hook: give it dial tone and collect digits.
    fn originate(&mut self, chan: ChannelId) {
        if let Some(id) = self.lines[chan.index()].call {
            // Lifted while its DTMF caller ID played, before the first ring: an answer.
            let l = &mut self.lines[chan.index()];
            if l.dtmf_cid.is_some() || l.ring_due.is_some() {
                l.dtmf_cid = None;
                l.ring_due = None;
                if self.calls.get(&id).is_some_and(|c| c.ringing.contains(&chan)) {
                    self.answered(chan);
                }
            }
            return;
        }
        self.lines[chan.index()].orphaned = false;
        let from = self.number_of(chan);
        let id = self.new_call(Direction::Internal, chan, from);
        let due = self.now + self.first_digit_ms;
        self.calls.get_mut(&id).expect("new call").timer = Some((due, CallTimer::FirstDigit));
        let name = self.extension_names.get(&self.number_of(chan)).cloned();
        self.calls.get_mut(&id).expect("new call").name = name;
        self.vm_dial_tone(chan);
        self.detect(chan, Detectors::DTMF);
    }

    fn new_call(&mut self, direction: Direction, a: ChannelId, from: String) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        self.counters.calls_total += 1;
        self.calls.insert(
            id,
            Call {
                id,
                direction,
                state: CallState::Dialing,
                a,
                b: None,
                ringing: Vec::new(),
                hunt: None,
                digits: String::new(),
                from,
                to: String::new(),
                started: self.now,
                answered: None,
                timer: None,
                outdial: VecDeque::new(),
                name: None,
                from_absent: None,
                heard_ringback: false,
                fax_until: None,
                fax: false,
                transitions: Vec::new(),
            },
        );
        self.lines[a.index()].call = Some(id);
        let line = self.lines[a.index()].port.clone();
        let from = self.calls[&id].from.clone();
        self.publish(events::EventBody::CallStarted {
            call: id,
            direction,
            from,
            to: String::new(),
            line,
        });
        id
    }

    fn number_of(&self, chan: ChannelId) -> String {
        match &self.lines[chan.index()].kind {
            LineKind::Fxs { number, .. } => number.clone(),
            _ => self.lines[chan.index()].port.clone(),
        }
    }

    fn on_digit(&mut self, chan: ChannelId, digit: char) {
        if self.conf_digit(chan, digit)
            || self.cc_digit(chan, digit)
            || self.rec_digit(chan, digit)
            || self.vm_digit(chan, digit)
        {
            return;
        }
        let Some(id) = self.lines[chan.index()].call else {
            self.dtmf_cid_digit(chan, digit);
            return;
        };
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.state != CallState::Dialing || c.a != chan {
            return;
        }
        if c.digits.is_empty()
            || self.routes.iter().any(|r| !r.prefix.is_empty() && r.prefix == c.digits)
        {
            self.set_source(chan, Source::Silence);
        }
        let c = self.calls.get_mut(&id).expect("call exists");
        c.digits.push(digit);
        c.timer = Some((self.now + self.inter_digit_ms, CallTimer::InterDigit));
        let digits = c.digits.clone();
        self.dial(id, &digits, false);
        // After an outside-line access code, give dial tone again (the "second dial tone"
        // users of analog PBXs expect) until the next digit.
        let still_dialing = self.calls.get(&id).is_some_and(|c| c.state == CallState::Dialing);
        if still_dialing && self.routes.iter().any(|r| !r.prefix.is_empty() && r.prefix == digits) {
            self.tone(chan, ProgressTone::Dial);
        }
    }

    /// Act on the digits collected so far; `complete` when no more will come.
    fn dial(&mut self, id: CallId, digits: &str, complete: bool) {
        if self.fax_dial(id, digits, complete) || self.pf_dial(id, digits, complete) {
            return;
        }
        if self.cc_feature(id, digits, complete) || self.cc_supervise_code(id, digits, complete) {
            return;
        }
        if self.conf_dial(id, digits, complete) || self.vm_feature(id, digits, complete) {
            return;
        }
        match dial::analyse(self, digits, complete) {
            DialResult::Extension(chan) => {
                self.set_to(id, digits);
                self.ring_extension(id, chan);
            }
            DialResult::HuntGroup(g) => {
                self.set_to(id, digits);
                self.start_hunt(id, g);
            }
            DialResult::Route { route, number } => {
                self.set_to(id, digits);
                self.outbound(id, route, number);
            }
            DialResult::Incomplete => {}
            DialResult::Unknown => {
                self.set_to(id, digits);
                self.fail(id, ProgressTone::Congestion, "unknown number");
            }
        }
    }

    fn set_to(&mut self, id: CallId, digits: &str) {
        if let Some(c) = self.calls.get_mut(&id) {
            c.to = digits.to_string();
        }
    }

    /// The caller hears `tone` until it hangs up.
    fn fail(&mut self, id: CallId, tone: ProgressTone, why: &str) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        tracing::debug!(call = id, to = %c.to, why, "call failed");
        self.cdr.note(id, why);
        c.set_state(CallState::Failed);
        c.timer = None;
        let a = c.a;
        let ringing = std::mem::take(&mut c.ringing);
        self.counters.calls_failed += 1;
        self.pf_failed(id);
        self.stop_ringing(&ringing);
        for r in ringing {
            self.lines[r.index()].call = None;
        }
        self.detect(a, Detectors::NONE);
        // An incoming trunk call nobody takes stays unanswered: the exchange gives the caller
        // its own tone, and the call ends when the ringing stops. A PRI call is cleared with
        // the cause the network passes on to the caller.
        match self.lines[a.index()].kind {
            LineKind::Fxs { .. } => self.tone(a, tone),
            LineKind::Bchan { .. } => {
                use cardpbx_signalling::q931::Cause;
                let cause = match (tone, why) {
                    (_, "unknown number") => Cause::UNALLOCATED_NUMBER,
                    (_, "no answer") => Cause::NO_ANSWER,
                    (ProgressTone::Busy, _) => Cause::USER_BUSY,
                    _ => Cause::NO_CIRCUIT_AVAILABLE,
                };
                self.pri_clear(a, cause);
            }
            LineKind::R2 { .. } => self.r2_fail(a, tone, why),
            _ => {}
        }
    }

    fn stop_ringing(&mut self, chans: &[ChannelId]) {
        let now = self.now;
        for &r in chans {
            self.lines[r.index()].cid_due = None;
            self.lines[r.index()].ring_due = None;
            let dtmf_cid = self.lines[r.index()].dtmf_cid.take().is_some();
            if let LineKind::Fxs { line, .. } = &mut self.lines[r.index()].kind {
                line.stop_ring(now);
            }
            if dtmf_cid || matches!(self.sources[r.index()].0, Source::Fsk(_)) {
                self.set_source(r, Source::Silence);
            }
        }
    }

    /// Whether an extension's phone is free to ring.
    fn extension_free(&self, chan: ChannelId) -> bool {
        let l = &self.lines[chan.index()];
        match &l.kind {
            LineKind::Fxs { line, .. } => {
                l.call.is_none() && !l.orphaned && line.state() == FxsState::Idle
            }
            _ => false,
        }
    }

    fn ring_extension(&mut self, id: CallId, chan: ChannelId) {
        if !self.extension_free(chan) || self.pf_dnd(chan) {
            if self.vm_divert(id, chan, true) {
                return;
            }
            self.counters.calls_busy += 1;
            self.fail(id, ProgressTone::Busy, "extension busy");
            return;
        }
        let due = self.now + self.answer_timeout_ms;
        self.start_ringing(id, &[chan], (due, CallTimer::RingNoAnswer));
    }

    fn start_ringing(&mut self, id: CallId, chans: &[ChannelId], timer: (Tick, CallTimer)) {
        let now = self.now;
        let mut rung = Vec::new();
        // DTMF caller ID goes before the first ring.
        let dtmf = self
            .calls
            .get(&id)
            .filter(|_| self.features.fxs_cid_dtmf)
            .map(|c| caller_id_message(c, self.wall_base_s + (now / 1000) as i64))
            .and_then(|msg| match callerid::encode_dtmf(&msg) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(call = id, ?msg, error = %e, "no DTMF caller ID for this call");
                    None
                }
            });
        for &chan in chans {
            if let Some(digits) = &dtmf {
                if self.extension_free(chan) {
                    self.lines[chan.index()].call = Some(id);
                    self.lines[chan.index()].dtmf_cid = Some(digits.chars().collect());
                    self.send_dtmf_cid(chan);
                    rung.push(chan);
                }
                continue;
            }
            if let LineKind::Fxs { line, .. } = &mut self.lines[chan.index()].kind {
                if line.ring(now).is_ok() {
                    self.lines[chan.index()].call = Some(id);
                    rung.push(chan);
                }
            }
        }
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.set_state(CallState::Ringing);
        c.timer = Some(timer);
        c.ringing.extend(rung);
        let a = c.a;
        match &self.lines[a.index()].kind {
            LineKind::Fxs { .. } => {
                self.detect(a, Detectors::NONE);
                self.tone(a, ProgressTone::Ringback);
            }
            // A trunk call we answered ourselves (to listen for fax) hears our ringback.
            LineKind::Fxo { line, .. } if line.state().is_off_hook() => {
                self.tone(a, ProgressTone::Ringback);
            }
            _ => {}
        }
    }

    fn start_hunt(&mut self, id: CallId, g: usize) {
        let members: Vec<ChannelId> = self.hunt_groups[g]
            .members
            .iter()
            .filter_map(|m| self.extensions.get(m).copied())
            .collect();
        let group = &mut self.hunt_groups[g];
        let timeout = group.ring_timeout_ms;
        let order: Vec<ChannelId> = match group.strategy {
            HuntStrategy::Linear | HuntStrategy::RingAll => members,
            HuntStrategy::RoundRobin => {
                let n = members.len().max(1);
                let start = group.next % n;
                group.next = (start + 1) % n;
                members.iter().cycle().skip(start).take(members.len()).copied().collect()
            }
        };
        let free: Vec<ChannelId> =
            order.into_iter().filter(|c| self.extension_free(*c) && !self.pf_dnd(*c)).collect();
        if free.is_empty() {
            self.counters.calls_busy += 1;
            self.fail(id, ProgressTone::Busy, "every hunt group member is busy");
            return;
        }
        if self.hunt_groups[g].strategy == HuntStrategy::RingAll {
            let due = self.now + timeout.min(self.answer_timeout_ms);
            self.start_ringing(id, &free, (due, CallTimer::RingNoAnswer));
            return;
        }
        let mut queue: VecDeque<ChannelId> = free.into();
        let first = queue.pop_front().expect("not empty");
        if let Some(c) = self.calls.get_mut(&id) {
            c.hunt = Some(Hunt { group: g, queue });
        }
        self.start_ringing(id, &[first], (self.now + timeout, CallTimer::HuntNext));
    }

    fn hunt_next(&mut self, id: CallId) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        let ringing = std::mem::take(&mut c.ringing);
        let next = c.hunt.as_mut().and_then(|h| h.queue.pop_front().map(|m| (m, h.group)));
        self.stop_ringing(&ringing);
        for r in &ringing {
            self.lines[r.index()].call = None;
        }
        let Some((mut m, g)) = next else {
            self.fail(id, ProgressTone::Busy, "no hunt group member answered");
            return;
        };
        // Skip members that became busy meanwhile.
        loop {
            if self.extension_free(m) && !self.pf_dnd(m) {
                let timeout = self.hunt_groups[g].ring_timeout_ms;
                self.start_ringing(id, &[m], (self.now + timeout, CallTimer::HuntNext));
                return;
            }
            let Some(c) = self.calls.get_mut(&id) else { return };
            match c.hunt.as_mut().and_then(|h| h.queue.pop_front()) {
                Some(n) => m = n,
                None => {
                    self.fail(id, ProgressTone::Busy, "no hunt group member answered");
                    return;
                }
            }
        }
    }

    /// An extension that was ringing went off-hook.
    fn answered(&mut self, chan: ChannelId) {
        let Some(id) = self.lines[chan.index()].call else {
            // Ringing stopped just as the phone was lifted: treat it as a new call.
            self.originate(chan);
            return;
        };
        if self.pf_answered(chan) || self.cc_agent_answered(chan) {
            return;
        }
        let now = self.now;
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.state != CallState::Ringing {
            return;
        }
        // A trunk the call center answered already (IVR, queue overflow) is not answered again.
        let trunk_answered = c.answered.is_some();
        let others: Vec<ChannelId> = c.ringing.iter().copied().filter(|r| *r != chan).collect();
        c.ringing.clear();
        c.b = Some(chan);
        c.set_state(CallState::Connected);
        c.answered = Some(now);
        c.timer = None;
        let a = c.a;
        self.stop_ringing(&others);
        for o in others {
            self.lines[o.index()].call = None;
        }
        if let LineKind::Fxo { line, .. } = &mut self.lines[a.index()].kind {
            if !line.state().is_off_hook() {
                if let Err(e) = line.answer(now) {
                    tracing::warn!(chan = %a, error = %e, "could not answer the trunk line");
                    self.leg_gone(a);
                    return;
                }
            }
        }
        if matches!(self.lines[a.index()].kind, LineKind::Bchan { .. })
            && !trunk_answered
            && !self.pri_answer(a)
        {
            tracing::warn!(chan = %a, "could not answer the PRI call");
            self.leg_gone(a);
            return;
        }
        if matches!(self.lines[a.index()].kind, LineKind::R2 { .. })
            && !trunk_answered
            && !self.r2_answer(a)
        {
            tracing::warn!(chan = %a, "could not answer the R2 call");
            self.leg_gone(a);
            return;
        }
        let ms = self.trunk_group_of(a).map_or(0, |g| self.trunk_groups[g].fax_detect_ms);
        if let Some(c) = self.calls.get_mut(&id) {
            if c.fax_until == Some(Tick::MAX) {
                c.fax_until = (ms > 0).then_some(now + ms);
            }
        }
        self.bridge(a, chan);
    }

    /// Connect two legs both ways, with their echo cancellers and trunk detectors.
    fn bridge(&mut self, a: ChannelId, b: ChannelId) {
        if self.conf_bridge(a, b) {
            return;
        }
        self.set_source(a, Source::Channel(b));
        self.set_source(b, Source::Channel(a));
        for leg in [a, b] {
            self.echo(leg, true);
            self.update_detectors(leg);
        }
        self.rec_bridged(a, b);
    }

    /// The far end of an outgoing trunk call answered (polarity reversal, or voice after
    /// ringback).
    fn trunk_answered(&mut self, id: CallId) {
        let now = self.now;
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.answered.is_some() {
            return;
        }
        c.answered = Some(now);
        if matches!(c.timer, Some((_, CallTimer::TrunkNoAnswer))) {
            c.timer = None;
        }
        tracing::debug!(call = id, "far end answered");
        if let Some(b) = c.b {
            self.update_detectors(b);
        }
    }

    /// The call-progress detector of a trunk line reported.
    fn on_progress(&mut self, chan: ChannelId, e: ProgressEvent) {
        if self.fax_progress(chan, e) {
            return;
        }
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(c) = self.calls.get_mut(&id) else { return };
        let outbound_unanswered =
            c.direction == Direction::Outbound && c.answered.is_none() && c.b == Some(chan);
        match e {
            ProgressEvent::Detected { tone: ProgressTone::Ringback, .. } => {
                c.heard_ringback = true;
            }
            ProgressEvent::Detected {
                tone: t @ (ProgressTone::Busy | ProgressTone::Congestion),
                ..
            } => {
                if outbound_unanswered && self.features.call_progress {
                    tracing::debug!(call = id, tone = ?t, "the called number is busy");
                    self.cdr.note(id, "busy");
                    self.counters.calls_busy += 1;
                    self.leg_gone(chan);
                } else if self.features.hangup_on_busy_tone {
                    let now = self.now;
                    if let LineKind::Fxo { line, .. } = &mut self.lines[chan.index()].kind {
                        line.far_end_disconnect(now);
                    }
                }
            }
            ProgressEvent::Detected { tone: ProgressTone::Sit, .. } => {
                // Special information tone: the network cannot complete the call (number
                // unobtainable). Cleared like congestion; the caller hears congestion tone.
                if outbound_unanswered && self.features.call_progress {
                    tracing::debug!(call = id, "special information tone: number unobtainable");
                    self.cdr.note(id, "number unobtainable");
                    self.counters.calls_congested += 1;
                    let a = c.a;
                    self.leg_gone(chan);
                    if self.lines[a.index()].orphaned {
                        self.tone(a, ProgressTone::Congestion);
                    }
                }
            }
            ProgressEvent::VoiceDetected { .. } => {
                if outbound_unanswered && c.heard_ringback && self.features.call_progress {
                    self.trunk_answered(id);
                }
            }
            ProgressEvent::Detected { .. } | ProgressEvent::ToneStopped { .. } => {}
        }
    }

    /// The fax tone detector of a trunk line heard CNG or CED.
    fn on_fax_tone(&mut self, chan: ChannelId, e: FaxToneEvent) {
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(c) = self.calls.get(&id) else { return };
        match e {
            FaxToneEvent::Ced { phase_reversals, .. } => {
                // A modem or fax answered: echo cancellers would garble its signals.
                tracing::debug!(call = id, phase_reversals, "answer tone: echo cancellers off");
                let legs: Vec<ChannelId> = std::iter::once(c.a).chain(c.b).collect();
                for leg in legs {
                    self.echo(leg, false);
                }
            }
            FaxToneEvent::Cng { .. } => {
                if c.a != chan || c.fax_until.is_none() || c.fax {
                    return;
                }
                let Some(group) = self.trunk_group_of(chan) else { return };
                let Some(dest) = self.trunk_groups[group].fax_destination.clone() else { return };
                self.move_to_fax(id, &dest);
            }
        }
    }

    /// An incoming trunk call turned out to be a fax: ring the fax destination instead.
    fn move_to_fax(&mut self, id: CallId, dest: &str) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        tracing::info!(call = id, from = %c.from, to = dest, "fax calling tone: moving the call");
        let ringing = std::mem::take(&mut c.ringing);
        let answered_by = c.b.take();
        c.hunt = None;
        c.timer = None;
        c.fax = true;
        c.fax_until = None;
        // A PRI call we answered to listen for fax stays answered (no second CONNECT).
        let a = c.a;
        if !matches!(self.lines[a.index()].kind, LineKind::Bchan { .. }) {
            c.answered = None;
        }
        c.set_state(CallState::Dialing);
        self.counters.fax_calls += 1;
        self.stop_ringing(&ringing);
        for r in ringing {
            self.lines[r.index()].call = None;
        }
        if let Some(b) = answered_by {
            // The extension that took the call hears busy tone until it hangs up.
            self.lines[b.index()].call = None;
            self.lines[b.index()].orphaned = true;
            self.echo(b, false);
            self.tone(b, ProgressTone::Busy);
        }
        self.echo(a, false);
        self.update_detectors(a);
        self.set_to(id, dest);
        self.dial(id, dest, true);
    }

    /// A caller ID frame came in on a trunk line (or broke off).
    fn on_caller_id(&mut self, chan: ChannelId, r: Result<CidFrame, CidError>) {
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(c) = self.calls.get_mut(&id) else { return };
        if c.state != CallState::CallerId {
            return;
        }
        match r.and_then(|f| f.decode()) {
            Ok((format, msg)) => {
                tracing::debug!(call = id, ?format, ?msg, "caller ID");
                if let Some(n) = msg.number.filter(|n| !n.is_empty()) {
                    c.from = n;
                }
                c.from_absent = msg.number_absent;
                c.name = msg.name;
                self.counters.callerid_received += 1;
            }
            Err(CidError::Truncated { .. }) => return,
            Err(e) => {
                tracing::warn!(call = id, %chan, error = %e, "bad caller ID message");
                self.counters.callerid_errors += 1;
            }
        }
        c.timer = None;
        self.route_incoming(id);
    }

    /// Send caller ID to a ringing extension, between its first and second ring.
    fn send_caller_id(&mut self, chan: ChannelId) {
        let (Some(std), Some(id)) = (self.features.fxs_cid, self.lines[chan.index()].call) else {
            return;
        };
        let LineKind::Fxs { line, .. } = &self.lines[chan.index()].kind else { return };
        if line.state() != FxsState::Ringing {
            return;
        }
        let Some(c) = self.calls.get(&id) else { return };
        let msg = caller_id_message(c, self.wall_base_s + (self.now / 1000) as i64);
        let frame = callerid::encode(self.features.fxs_cid_format, &msg)
            .ok()
            .and_then(|bytes| CidFrame::new(&bytes));
        match frame {
            Some(frame) => {
                let burst = FskBurst { standard: std, level_dbm0: CID_LEVEL_DBM0, frame };
                self.set_source(chan, Source::Fsk(burst));
            }
            None => tracing::warn!(call = id, ?msg, "caller ID cannot be encoded; not sent"),
        }
    }

    /// The detectors a line without a call runs: DTMF on trunk lines that get DTMF caller ID.
    fn idle_detectors(&self, chan: ChannelId) -> Detectors {
        let fxo = matches!(self.lines[chan.index()].kind, LineKind::Fxo { .. });
        if fxo && self.features.fxo_cid_dtmf {
            Detectors::DTMF
        } else {
            Detectors::NONE
        }
    }

    /// A DTMF digit on a line without a call: DTMF caller ID on an idle trunk line.
    fn dtmf_cid_digit(&mut self, chan: ChannelId, digit: char) {
        if !self.features.fxo_cid_dtmf {
            return;
        }
        let now = self.now;
        let l = &mut self.lines[chan.index()];
        if !matches!(l.kind, LineKind::Fxo { .. }) {
            return;
        }
        if now > l.cid_digit_at + DTMF_CID_TIMEOUT_MS || l.cid_digits.len() >= 64 {
            l.cid_digits.clear();
        }
        l.cid_digits.push(digit);
        l.cid_digit_at = now;
    }

    /// The first ring of an incoming call on a DTMF caller ID trunk line: the digits heard
    /// before it (if recent) give the call's number.
    fn take_dtmf_cid(&mut self, id: CallId, chan: ChannelId) {
        let l = &mut self.lines[chan.index()];
        let digits = std::mem::take(&mut l.cid_digits);
        if digits.is_empty() || self.now > l.cid_digit_at + DTMF_CID_TIMEOUT_MS {
            tracing::debug!(call = id, %chan, "no DTMF caller ID before the first ring");
            return;
        }
        let Some(c) = self.calls.get_mut(&id) else { return };
        match callerid::parse_dtmf(&digits) {
            Ok(msg) => {
                tracing::debug!(call = id, %digits, ?msg, "DTMF caller ID");
                if let Some(n) = msg.number.filter(|n| !n.is_empty()) {
                    c.from = n;
                }
                c.from_absent = msg.number_absent;
                self.counters.callerid_received += 1;
            }
            Err(e) => {
                tracing::warn!(call = id, %chan, %digits, error = %e, "bad DTMF caller ID");
                self.counters.callerid_errors += 1;
            }
        }
    }

    /// Send the next DTMF caller ID digits (up to four per tone) to a ringing extension, or,
    /// when all are sent, ring it shortly.
    fn send_dtmf_cid(&mut self, chan: ChannelId) {
        let l = &mut self.lines[chan.index()];
        let Some(q) = l.dtmf_cid.as_mut() else { return };
        match trunk::dtmf_burst(q, DTMF_CID_ON_MS, DTMF_CID_OFF_MS, DTMF_CID_LEVEL_DBM0) {
            Some(spec) => self.set_source(chan, Source::Tone(spec)),
            None => {
                l.dtmf_cid = None;
                l.ring_due = Some(self.now + DTMF_CID_TO_RING_MS);
                self.set_source(chan, Source::Silence);
            }
        }
    }

    /// The DTMF caller ID of a called extension is over: start ringing it.
    fn ring_after_dtmf_cid(&mut self, chan: ChannelId) {
        let now = self.now;
        let Some(id) = self.lines[chan.index()].call else { return };
        if !self.calls.get(&id).is_some_and(|c| c.ringing.contains(&chan)) {
            return;
        }
        if let LineKind::Fxs { line, .. } = &mut self.lines[chan.index()].kind {
            if let Err(e) = line.ring(now) {
                tracing::debug!(%chan, error = %e, "extension not rung after DTMF caller ID");
            }
        }
    }

    /// A trunk line rings: wait for caller ID, or route the call at once.
    fn incoming(&mut self, chan: ChannelId) {
        if self.lines[chan.index()].call.is_some() {
            return;
        }
        let from = self.lines[chan.index()].port.clone();
        let id = self.new_call(Direction::Inbound, chan, from);
        if self.features.fxo_cid_dtmf {
            self.take_dtmf_cid(id, chan);
            self.route_incoming(id);
        } else if self.features.fxo_cid.is_some() {
            let c = self.calls.get_mut(&id).expect("new call");
            c.set_state(CallState::CallerId);
            c.timer = Some((self.now + CID_WAIT_MAX_MS, CallTimer::CallerIdWait));
            self.update_detectors(chan);
        } else {
            self.route_incoming(id);
        }
    }

    /// Route an incoming trunk call to its trunk group's target; with a fax destination,
    /// answer it at once and listen for fax calling tone.
    fn route_incoming(&mut self, id: CallId) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.set_state(CallState::Dialing);
        let chan = c.a;
        let LineKind::Fxo { group, .. } = self.lines[chan.index()].kind else { return };
        self.update_detectors(chan);
        let tg = &self.trunk_groups[group];
        let (mut target, fax) = (tg.incoming.clone(), tg.fax_destination.is_some());
        // FXO lines carry no called number: the call center routes by the group's target.
        match self.cc_route(id, target.as_deref().unwrap_or("")) {
            cc::CcRouted::Default => {}
            cc::CcRouted::Target(t) => target = Some(t),
            cc::CcRouted::Handled => return,
        }
        let Some(target) = target else {
            self.set_to(id, "");
            self.fail(id, ProgressTone::Congestion, "trunk group has no incoming target");
            return;
        };
        if fax {
            let now = self.now;
            if let LineKind::Fxo { line, .. } = &mut self.lines[chan.index()].kind {
                if let Err(e) = line.answer(now) {
                    tracing::warn!(%chan, error = %e, "could not answer the trunk line");
                    self.leg_gone(chan);
                    return;
                }
            }
            if let Some(c) = self.calls.get_mut(&id) {
                c.fax_until = Some(Tick::MAX);
            }
            self.update_detectors(chan);
        }
        self.set_to(id, &target);
        self.dial(id, &target, true);
    }

    /// Seize a line of the route's trunk group and dial `number` on it.
    fn outbound(&mut self, id: CallId, route: usize, number: String) {
        let g = self.routes[route].group;
        if self.trunk_groups[g].pri {
            self.pri_outbound(id, g, number);
            return;
        }
        if self.r2_group(g) {
            self.r2_outbound(id, g, number);
            return;
        }
        let now = self.now;
        let Some(trunk) = self.seize_fxo_line(g) else {
            self.counters.calls_congested += 1;
            self.fail(id, ProgressTone::Congestion, "no free line in the trunk group");
            return;
        };
        if let Some(pos) = self.trunk_groups[g].lines.iter().position(|c| *c == trunk) {
            self.trunk_groups[g].next = pos + 1;
        }
        self.lines[trunk.index()].call = Some(id);
        self.lines[trunk.index()].cid_digits.clear();
        self.detect(trunk, Detectors::NONE);
        tracing::debug!(call = id, trunk = %self.lines[trunk.index()].port, %number, "trunk seized");
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.direction = Direction::Outbound;
        c.set_state(CallState::Outdialing);
        c.b = Some(trunk);
        c.outdial = number.chars().collect();
        c.timer = Some((now + SEIZE_TO_DIAL_MS, CallTimer::StartOutdial));
        let a = c.a;
        self.detect(a, Detectors::NONE);
        self.set_source(a, Source::Silence);
    }

    /// Send the next digits (up to four per tone) on the seized trunk, or cut through.
    fn send_next_digits(&mut self, id: CallId) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        let Some(trunk) = c.b else { return };
        if c.outdial.is_empty() {
            c.set_state(CallState::Connected);
            let a = c.a;
            let answer_on_polarity = match &self.lines[trunk.index()].kind {
                LineKind::Fxo { line, .. } => line.config().answer_on_polarity,
                _ => false,
            };
            if self.features.call_progress {
                // Busy tone, ringback and voice tell how the call goes on.
                c.timer = Some((self.now + self.answer_timeout_ms, CallTimer::TrunkNoAnswer));
            } else if !answer_on_polarity {
                c.answered = Some(self.now);
            }
            tracing::debug!(call = id, "number sent; trunk connected");
            self.bridge(a, trunk);
            return;
        }
        match trunk::dtmf_burst(&mut c.outdial, OUTDIAL_ON_MS, OUTDIAL_OFF_MS, OUTDIAL_LEVEL_DBM0) {
            Some(spec) => self.set_source(trunk, Source::Tone(spec)),
            None => self.send_next_digits(id),
        }
    }

    fn on_play_done(&mut self, chan: ChannelId) {
        if self.fax_play_done(chan) {
            return;
        }
        if self.vm_play_done(chan) || self.cc_play_done(chan) || self.conf_play_done(chan) {
            return;
        }
        if self.lines[chan.index()].dtmf_cid.is_some() {
            self.send_dtmf_cid(chan);
            return;
        }
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(c) = self.calls.get(&id) else { return };
        if c.state == CallState::Outdialing && c.b == Some(chan) {
            self.send_next_digits(id);
        }
    }

    fn on_call_timer(&mut self, id: CallId, kind: CallTimer) {
        match kind {
            CallTimer::FirstDigit => self.fail(id, ProgressTone::Congestion, "no digit dialled"),
            CallTimer::InterDigit => {
                let Some(c) = self.calls.get(&id) else { return };
                if c.state == CallState::Dialing {
                    let digits = c.digits.clone();
                    self.dial(id, &digits, true);
                }
            }
            CallTimer::RingNoAnswer => {
                if self.vm_divert_no_answer(id) {
                    return;
                }
                self.counters.calls_unanswered += 1;
                self.fail(id, ProgressTone::Busy, "no answer");
            }
            CallTimer::HuntNext => self.hunt_next(id),
            CallTimer::StartOutdial => self.send_next_digits(id),
            CallTimer::CallerIdWait => {
                if self.calls.get(&id).is_some_and(|c| c.state == CallState::CallerId) {
                    tracing::debug!(call = id, "no caller ID; routing without it");
                    self.route_incoming(id);
                }
            }
            CallTimer::TrunkNoAnswer => {
                let Some(c) = self.calls.get(&id) else { return };
                if c.answered.is_none() {
                    if let Some(trunk) = c.b {
                        tracing::debug!(call = id, "trunk call not answered in time");
                        self.cdr.note(id, "no answer");
                        self.counters.calls_unanswered += 1;
                        self.leg_gone(trunk);
                    }
                }
            }
        }
    }

    /// A leg of a call went away (hang-up, far-end disconnect, card failure).
    fn leg_gone(&mut self, chan: ChannelId) {
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(mut c) = self.calls.remove(&id) else {
            self.lines[chan.index()].call = None;
            return;
        };
        self.cdr_call_ended(&mut c, chan);
        self.cc_call_gone(&c, chan);
        self.pf_call_gone(&c);
        self.conf_call_gone(id);
        self.vm_call_gone(id);
        let now = self.now;
        if c.state == CallState::Connected {
            self.counters.calls_completed += 1;
        }
        let mut legs = vec![c.a];
        legs.extend(c.b);
        self.stop_ringing(&c.ringing);
        legs.extend(c.ringing.iter().copied());
        legs.retain(|l| !self.pf_keeps_leg(id, *l));
        for leg in legs {
            self.lines[leg.index()].call = None;
            self.lines[leg.index()].cid_due = None;
            self.lines[leg.index()].ring_due = None;
            self.lines[leg.index()].dtmf_cid = None;
            self.lines[leg.index()].cid_digits.clear();
            let idle = self.idle_detectors(leg);
            self.detect(leg, idle);
            self.echo(leg, false);
            let mut source = Source::Silence;
            match &mut self.lines[leg.index()].kind {
                LineKind::Fxo { line, .. } => {
                    if line.state().is_off_hook() {
                        line.release(now);
                    }
                }
                LineKind::Fxs { line, .. } => {
                    if leg != chan && line.state() == FxsState::OffHook {
                        // The other party is still off-hook: busy tone until it hangs up.
                        self.lines[leg.index()].orphaned = true;
                        source = Source::Tone(self.plan.tone(ProgressTone::Busy));
                    }
                }
                LineKind::Bchan { .. } => {
                    self.pri_clear(leg, cardpbx_signalling::q931::Cause::NORMAL_CLEARING)
                }
                LineKind::R2 { .. } => self.r2_hangup(leg),
                LineKind::None => {}
            }
            self.cmd(EngineCommand::SetSource(leg, source));
        }
        tracing::debug!(call = id, from = %c.from, to = %c.to, "call cleared");
    }
}

/// Whether `n` is a number a trunk can dial (digits only, not empty).
pub(super) fn dialable(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
}

enum LineEvent {
    Fxs(FxsEvent),
    Fxo(FxoEvent),
}

/// The caller ID message for a call at local time `local_s` (seconds since 1970 in the local
/// zone): date and time, the caller's number (or why it is absent) and name.
fn caller_id_message(c: &Call, local_s: i64) -> CallerIdMessage {
    let dialable = !c.from.is_empty()
        && c.from.len() <= callerid::MAX_NUMBER_LEN
        && c.from.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
    let (number, number_absent) = if dialable {
        (Some(c.from.clone()), None)
    } else {
        (None, Some(c.from_absent.unwrap_or(AbsenceReason::Unavailable)))
    };
    let name = c.name.as_ref().map(|n| {
        n.chars()
            .filter(|ch| matches!(u32::from(*ch), 0x20..=0x7e | 0xa0..=0xff))
            .take(callerid::MAX_NAME_LEN)
            .collect::<String>()
    });
    let name = name.filter(|n| !n.is_empty());
    let name_absent = if name.is_none() && number.is_none() { number_absent } else { None };
    CallerIdMessage { date_time: Some(mmddhhmm(local_s)), number, number_absent, name, name_absent }
}

/// `MMDDHHMM` of a time given as seconds since 1970-01-01 00:00 (proleptic Gregorian).
fn mmddhhmm(s: i64) -> String {
    let days = s.div_euclid(86_400);
    let secs = s.rem_euclid(86_400);
    // Civil date from days since 1970 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{month:02}{day:02}{:02}{:02}", secs / 3600, secs % 3600 / 60)
}
