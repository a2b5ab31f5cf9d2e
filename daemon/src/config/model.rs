//! The configuration model: plain serde types that mirror the TOML file one to one.
//!
//! This module only describes the shape of a configuration and its defaults. Reading files,
//! merging the include directory and checking cross-references live in [`super::load`].

use cardpbx_hal::{Framing, LineCode, SpanConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A whole cardpbx configuration (the main file with its include directory merged in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[system]`: daemon-wide settings.
    #[serde(default)]
    pub system: SystemConfig,
    /// `[[card]]`: the telephony cards.
    #[serde(default, rename = "card")]
    pub cards: Vec<CardConfig>,
    /// `[[span]]`: per-E1-span line settings.
    #[serde(default, rename = "span")]
    pub spans: Vec<SpanSettings>,
    /// `[analog]`: loop-start timing.
    #[serde(default)]
    pub analog: AnalogConfig,
    /// `[[extension]]`: phones on FXS ports.
    #[serde(default, rename = "extension")]
    pub extensions: Vec<ExtensionConfig>,
    /// `[[hunt_group]]`: numbers that ring a list of extensions.
    #[serde(default, rename = "hunt_group")]
    pub hunt_groups: Vec<HuntGroupConfig>,
    /// `[[trunk_group]]`: groups of lines to the exchange.
    #[serde(default, rename = "trunk_group")]
    pub trunk_groups: Vec<TrunkGroupConfig>,
    /// `[[route]]`: the outgoing dialplan, first matching prefix wins.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// `[dialplan]`: digit collection and ring timers.
    #[serde(default)]
    pub dialplan: DialplanConfig,
    /// `[[queue]]`: ACD queues (main file only).
    #[serde(default, rename = "queue", skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<super::callcenter::QueueConfig>,
    /// `[[agent]]`: call-center agents (main file only).
    #[serde(default, rename = "agent", skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<super::callcenter::AgentConfig>,
    /// `[[inbound]]`: inbound call-center routing rules (main file only).
    #[serde(default, rename = "inbound", skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<super::callcenter_routing::InboundRule>,
    /// `[[schedule]]`: named working hours (main file only).
    #[serde(default, rename = "schedule", skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<super::callcenter_routing::ScheduleConfig>,
    /// `[[holiday]]`: closed days (main file only).
    #[serde(default, rename = "holiday", skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<super::callcenter_routing::HolidayConfig>,
    /// `[[ivr]]`: IVR menus and digit collection nodes (main file only).
    #[serde(default, rename = "ivr", skip_serializing_if = "Vec::is_empty")]
    pub ivr: Vec<super::callcenter_routing::IvrConfig>,
    /// `[fax]`: the fax service (main file only).
    #[serde(default, skip_serializing_if = "super::fax::FaxConfig::is_default")]
    pub fax: super::fax::FaxConfig,
    /// `[callback]`: the attendant that takes callers' numbers for callbacks.
    #[serde(default, skip_serializing_if = "super::callback::CallbackConfig::is_default")]
    pub callback: super::callback::CallbackConfig,
    /// `[recording]`: where call recordings go and their format.
    #[serde(default, skip_serializing_if = "super::recording::RecordingConfig::is_default")]
    pub recording: super::recording::RecordingConfig,
    /// `[voicemail]`: where messages go, limits and retrieval codes.
    #[serde(default, skip_serializing_if = "super::voicemail::VoicemailConfig::is_default")]
    pub voicemail: super::voicemail::VoicemailConfig,
    /// `[[mailbox]]`: voicemail boxes (main file only).
    #[serde(default, rename = "mailbox", skip_serializing_if = "Vec::is_empty")]
    pub mailboxes: Vec<super::voicemail::MailboxConfig>,
    /// `[[conference]]`: meet-me conference rooms (main file only).
    #[serde(default, rename = "conference", skip_serializing_if = "Vec::is_empty")]
    pub conferences: Vec<super::conference::ConferenceConfig>,
}

/// The control socket path used when the configuration names none:
/// `$XDG_RUNTIME_DIR/cardpbx.sock` if that variable is set, else `/tmp/cardpbx-<uid>.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("cardpbx.sock"),
        _ => PathBuf::from(format!("/tmp/cardpbx-{}.sock", nix::unistd::getuid().as_raw())),
    }
}

fn default_name() -> String {
    "cardpbx".to_string()
}
fn default_spool_dir() -> PathBuf {
    PathBuf::from("./spool")
}
fn default_tone_plan() -> String {
    "cn".to_string()
}
fn default_true() -> bool {
    true
}
fn default_rt_priority() -> u8 {
    50
}

/// `[system]`: daemon-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// Name of the installation, shown by `cardpbx status`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Path of the control socket the CLI talks to.
    #[serde(default = "default_socket_path")]
    pub control_socket: PathBuf,
    /// Directory for recordings, faxes and other spooled files.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Call-progress tone plan name (`cn`, `itu`, `eu`, ...).
    #[serde(default = "default_tone_plan")]
    pub tone_plan: String,
    /// Companding law of the channels.
    #[serde(default)]
    pub law: LawSetting,
    /// Try to run the media thread with SCHED_FIFO and lock memory (mlockall).
    #[serde(default = "default_true")]
    pub realtime: bool,
    /// SCHED_FIFO priority of the media thread (1..=99).
    #[serde(default = "default_rt_priority")]
    pub rt_priority: u8,
    /// Directory whose `*.toml` files (sorted by name) are merged into this configuration;
    /// relative to the directory of the main file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_dir: Option<PathBuf>,
    /// The SQLite store (CDRs, queue/agent events, voicemail, callbacks, recordings index);
    /// default `<spool_dir>/cardpbx.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<PathBuf>,
}

impl SystemConfig {
    /// The store's file: `database`, else `cardpbx.db` in the spool directory.
    pub fn database_path(&self) -> PathBuf {
        self.database.clone().unwrap_or_else(|| self.spool_dir.join("cardpbx.db"))
    }
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            name: default_name(),
            control_socket: default_socket_path(),
            spool_dir: default_spool_dir(),
            tone_plan: default_tone_plan(),
            law: LawSetting::default(),
            realtime: true,
            rt_priority: default_rt_priority(),
            include_dir: None,
            database: None,
        }
    }
}

/// Companding law setting (`alaw` or `ulaw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawSetting {
    /// G.711 A-law (E1, China, Europe).
    #[default]
    Alaw,
    /// G.711 µ-law (T1, North America, Japan).
    Ulaw,
}

impl LawSetting {
    /// The HAL's law value.
    pub fn to_hal(self) -> cardpbx_hal::Law {
        match self {
            LawSetting::Alaw => cardpbx_hal::Law::Alaw,
            LawSetting::Ulaw => cardpbx_hal::Law::Ulaw,
        }
    }
}

/// Which backend drives a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// The software card simulator.
    Sim,
    /// DAHDI kernel drivers (Digium, Sangoma, OpenVox cards).
    Dahdi,
}

impl Driver {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Sim => "sim",
            Driver::Dahdi => "dahdi",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[card]]`: one telephony card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardConfig {
    /// The card's name, used in port references (`sim0/fxs1`).
    pub name: String,
    /// Which backend drives it.
    pub driver: Driver,
    /// Number of analog FXS ports (phones), numbered from 1.
    #[serde(default)]
    pub fxs_ports: u32,
    /// Number of analog FXO ports (exchange lines), numbered from 1.
    #[serde(default)]
    pub fxo_ports: u32,
    /// Number of E1 spans, numbered from 1.
    #[serde(default)]
    pub e1_spans: u32,
    /// `[card.sim]`: simulator settings (only for `driver = "sim"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimCardConfig>,
}

impl CardConfig {
    /// Number of ports of the given kind on this card.
    pub fn port_count(&self, kind: PortKind) -> u32 {
        match kind {
            PortKind::Fxs => self.fxs_ports,
            PortKind::Fxo => self.fxo_ports,
            PortKind::Span => self.e1_spans,
        }
    }

    /// The simulator settings, defaults if `[card.sim]` is absent.
    pub fn sim_settings(&self) -> SimCardConfig {
        self.sim.clone().unwrap_or_default()
    }
}

/// How the simulator paces the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimClock {
    /// One tick per real millisecond.
    #[default]
    Realtime,
    /// Ticks as fast as the work allows (tests, load runs).
    Virtual,
}

/// How the simulated exchange signals that the far end hung up on an FXO line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoDisconnect {
    /// Battery polarity reversal.
    Polarity,
    /// Busy tone on the line.
    BusyTone,
    /// Polarity reversal and busy tone.
    #[default]
    Both,
}

fn default_seed() -> u64 {
    1
}
fn default_co_answer_delay_ms() -> u32 {
    2000
}

/// `[card.sim]`: settings of a simulated card and the far ends it simulates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimCardConfig {
    /// Seed of the simulator's random number generator.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Real-time or virtual clock.
    #[serde(default)]
    pub clock: SimClock,
    /// How the simulated exchange signals far-end hang-up.
    #[serde(default)]
    pub co_disconnect: CoDisconnect,
    /// Delay before the simulated far end answers an outgoing call, in ms.
    #[serde(default = "default_co_answer_delay_ms")]
    pub co_answer_delay_ms: u32,
    /// Whether the simulated exchange reverses polarity on answer.
    #[serde(default)]
    pub co_answer_polarity: bool,
}

impl Default for SimCardConfig {
    fn default() -> Self {
        SimCardConfig {
            seed: default_seed(),
            clock: SimClock::default(),
            co_disconnect: CoDisconnect::default(),
            co_answer_delay_ms: default_co_answer_delay_ms(),
            co_answer_polarity: false,
        }
    }
}

/// E1 frame format setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanFraming {
    /// Common channel signalling (ISDN PRI).
    #[default]
    Ccs,
    /// Channel associated signalling (MFC/R2).
    Cas,
}

/// E1 line code setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanLineCode {
    /// HDB3 (the E1 norm).
    #[default]
    Hdb3,
    /// Alternate mark inversion.
    Ami,
}

fn default_timing_priority() -> u8 {
    1
}

/// `[[span]]`: line settings of one E1 span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanSettings {
    /// Name of the card the span is on.
    pub card: String,
    /// Span number on the card, from 1.
    pub span: u32,
    /// Frame format.
    #[serde(default)]
    pub framing: SpanFraming,
    /// Line code.
    #[serde(default)]
    pub line_code: SpanLineCode,
    /// CRC-4 multiframe.
    #[serde(default = "default_true")]
    pub crc4: bool,
    /// Timing source priority: 0 = never, 1 = first choice, 2 = second, ...
    #[serde(default = "default_timing_priority")]
    pub timing_priority: u8,
    /// Write every D-channel frame of this span to this pcap file (LAPD, link type 177).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dchannel_capture: Option<PathBuf>,
    /// Simulator cards only: instead of the simulated exchange, the span's far end is another
    /// program connected to this Unix SOCK_SEQPACKET socket (one LAPD frame per message); the
    /// simulator listens on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_peer_socket: Option<PathBuf>,
}

impl SpanSettings {
    /// The settings of span `span` of card `card` without a `[[span]]` entry.
    pub fn defaults(card: &str, span: u32) -> SpanSettings {
        SpanSettings {
            card: card.to_string(),
            span,
            framing: SpanFraming::default(),
            line_code: SpanLineCode::default(),
            crc4: true,
            timing_priority: default_timing_priority(),
            dchannel_capture: None,
            sim_peer_socket: None,
        }
    }

    /// The HAL span configuration these settings describe.
    pub fn to_hal(&self) -> SpanConfig {
        SpanConfig {
            framing: match self.framing {
                SpanFraming::Ccs => Framing::Ccs,
                SpanFraming::Cas => Framing::Cas,
            },
            line_code: match self.line_code {
                SpanLineCode::Hdb3 => LineCode::Hdb3,
                SpanLineCode::Ami => LineCode::Ami,
            },
            crc4: self.crc4,
            timing_priority: self.timing_priority,
            line_build_out: 0,
        }
    }
}

fn default_flash_min_ms() -> u32 {
    80
}
fn default_flash_max_ms() -> u32 {
    600
}
fn default_fxo_ring_min_ms() -> u32 {
    100
}
fn default_fxo_ring_gap_timeout_ms() -> u32 {
    6000
}

/// `[analog]`: loop-start timing for FXS and FXO ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalogConfig {
    /// Shortest on-hook that counts as a hook flash (shorter is a bounce), ms.
    #[serde(default = "default_flash_min_ms")]
    pub flash_min_ms: u32,
    /// Longest on-hook that counts as a hook flash (longer is a hang-up), ms.
    #[serde(default = "default_flash_max_ms")]
    pub flash_max_ms: u32,
    /// Shortest ring burst an FXO port accepts as ringing, ms.
    #[serde(default = "default_fxo_ring_min_ms")]
    pub fxo_ring_min_ms: u32,
    /// Silence after a ring burst after which an unanswered incoming call is over, ms.
    #[serde(default = "default_fxo_ring_gap_timeout_ms")]
    pub fxo_ring_gap_timeout_ms: u32,
    /// Treat a polarity reversal on an FXO line as the far end answering.
    #[serde(default)]
    pub fxo_answer_on_polarity: bool,
    /// Treat a polarity reversal on an FXO line as the far end hanging up.
    #[serde(default = "default_true")]
    pub fxo_hangup_on_polarity: bool,
    /// Listen for busy and congestion tone on FXO calls and treat it as the far end hanging
    /// up (Chinese exchanges often signal a clear only this way).
    #[serde(default = "default_true")]
    pub fxo_hangup_on_busy_tone: bool,
    /// Follow the call progress of outgoing FXO calls by ear: busy tone clears the call as
    /// busy, voice after ringback marks the answer, ringback beyond the answer timeout clears
    /// it as unanswered.
    #[serde(default = "default_true")]
    pub fxo_call_progress: bool,
    /// Caller ID the exchange sends on FXO lines between the first and second ring
    /// (`off` routes the call at the first ring).
    #[serde(default = "default_callerid")]
    pub fxo_callerid: CallerIdMode,
    /// Caller ID sent to extensions between the first and second ring.
    #[serde(default = "default_callerid")]
    pub fxs_callerid: CallerIdMode,
    /// Message format of the caller ID sent to extensions.
    #[serde(default)]
    pub fxs_callerid_format: CallerIdFormat,
    /// Cancel the line (hybrid) echo on analog ports during calls.
    #[serde(default = "default_true")]
    pub echo_cancel: bool,
    /// Echo tail the canceller covers, ms (1-128).
    #[serde(default = "default_echo_tail_ms")]
    pub echo_tail_ms: u32,
}

fn default_callerid() -> CallerIdMode {
    CallerIdMode::Bell202
}
fn default_echo_tail_ms() -> u32 {
    64
}

/// How on-hook caller ID is carried: an FSK modem between the first and second ring, or DTMF
/// digits before the first ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdMode {
    /// No caller ID.
    Off,
    /// Bell 202 (China, North America).
    Bell202,
    /// ITU-T V.23 (ETSI countries).
    V23,
    /// DTMF digits before the first ring (ETS 300 659-1 Annex C: `A<number>C`; some Chinese
    /// regions, the Nordic countries, the Netherlands, India, Brazil).
    Dtmf,
}

impl CallerIdMode {
    /// The FSK modem, or `None` when off or DTMF.
    pub fn standard(self) -> Option<cardpbx_dsp::callerid::FskStandard> {
        match self {
            CallerIdMode::Off | CallerIdMode::Dtmf => None,
            CallerIdMode::Bell202 => Some(cardpbx_dsp::callerid::FskStandard::Bell202),
            CallerIdMode::V23 => Some(cardpbx_dsp::callerid::FskStandard::V23),
        }
    }

    /// Whether caller ID is sent as DTMF digits before the first ring.
    pub fn is_dtmf(self) -> bool {
        self == CallerIdMode::Dtmf
    }
}

/// Caller ID message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdFormat {
    /// Single data message: date, time and number.
    Sdmf,
    /// Multiple data message: date, time, number and name.
    #[default]
    Mdmf,
}

impl Default for AnalogConfig {
    fn default() -> Self {
        AnalogConfig {
            flash_min_ms: default_flash_min_ms(),
            flash_max_ms: default_flash_max_ms(),
            fxo_ring_min_ms: default_fxo_ring_min_ms(),
            fxo_ring_gap_timeout_ms: default_fxo_ring_gap_timeout_ms(),
            fxo_answer_on_polarity: false,
            fxo_hangup_on_polarity: true,
            fxo_hangup_on_busy_tone: true,
            fxo_call_progress: true,
            fxo_callerid: default_callerid(),
            fxs_callerid: default_callerid(),
            fxs_callerid_format: CallerIdFormat::default(),
            echo_cancel: true,
            echo_tail_ms: default_echo_tail_ms(),
        }
    }
}

/// `[[extension]]`: a phone on an FXS port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionConfig {
    /// The number dialled to reach it (digits, `*`, `#`).
    pub number: String,
    /// The FXS port the phone is on (`card/fxsN`).
    pub port: PortRef,
    /// A display name (the agent or the room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Call recording for calls of this phone: `never` (default), `on_demand`, `always`.
    #[serde(default, skip_serializing_if = "super::recording::RecordingPolicy::is_never")]
    pub recording: super::recording::RecordingPolicy,
    /// Call pickup group: `*8` on a phone of the group answers a call ringing another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_group: Option<String>,
}

/// How a hunt group picks members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HuntStrategy {
    /// Always from the first member on.
    #[default]
    Linear,
    /// Starting after the member that took the last call.
    RoundRobin,
    /// All free members at once.
    RingAll,
}

fn default_ring_timeout_s() -> u32 {
    20
}

/// `[[hunt_group]]`: a number that rings a list of extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuntGroupConfig {
    /// The number dialled to reach the group.
    pub number: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Extension numbers, in hunting order.
    pub members: Vec<String>,
    /// How members are picked.
    #[serde(default)]
    pub strategy: HuntStrategy,
    /// Ring time per member (linear, round_robin) or in total (ring_all), seconds.
    #[serde(default = "default_ring_timeout_s")]
    pub ring_timeout_s: u32,
}

/// How a trunk group picks a free line for an outgoing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkHunt {
    /// The first free port in the listed order.
    #[default]
    Ascending,
    /// The last free port in the listed order.
    Descending,
    /// The free port after the one used last.
    RoundRobin,
}

/// The signalling a trunk group speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkSignalling {
    /// Analog loop start on FXO ports.
    #[default]
    Fxo,
    /// ISDN PRI on E1 spans, user side (customer premises equipment, towards an exchange).
    #[serde(alias = "pri-cpe")]
    PriCpe,
    /// ISDN PRI on E1 spans, network side (an exchange for a PBX behind cardpbx).
    #[serde(alias = "pri-net")]
    PriNet,
    /// MFC/R2, China No.1 variant, on E1 CAS spans.
    #[serde(alias = "r2-china")]
    R2China,
}

impl TrunkSignalling {
    /// The word used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkSignalling::Fxo => "fxo",
            TrunkSignalling::PriCpe => "pri_cpe",
            TrunkSignalling::PriNet => "pri_net",
            TrunkSignalling::R2China => "r2_china",
        }
    }

    /// ISDN PRI, either side.
    pub fn is_pri(self) -> bool {
        matches!(self, TrunkSignalling::PriCpe | TrunkSignalling::PriNet)
    }

    /// Runs on E1 spans (PRI or R2) rather than FXO ports.
    pub fn uses_spans(self) -> bool {
        self != TrunkSignalling::Fxo
    }
}

/// The ISDN variant a PRI trunk speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchType {
    /// ETSI EuroISDN (ETS 300 102 / EN 300 403), used in Europe and China.
    #[default]
    Euroisdn,
}

/// Whether the calling number of outgoing calls may be shown to the called party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presentation {
    /// Presentation allowed.
    #[default]
    Allowed,
    /// Presentation restricted (the network withholds the number).
    Restricted,
}

/// A set of E1 timeslots, written like `"1-15,17-31"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRanges(pub Vec<u8>);

/// Why a channel range list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid channels {text:?}: {reason} (write ranges of timeslots 1..=31 without 16, e.g. \"1-15,17-31\")")]
pub struct ChannelRangesError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for ChannelRanges {
    type Err = ChannelRangesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ChannelRangesError { text: s.to_string(), reason };
        let mut out: Vec<u8> = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err("an empty range".into()));
            }
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let num = |t: &str| -> Result<u8, ChannelRangesError> {
                let t = t.trim();
                let n: u8 =
                    t.parse().map_err(|_| err(format!("{t:?} is not a timeslot number")))?;
                if !(1..=31).contains(&n) {
                    return Err(err(format!("timeslot {n} is outside 1..=31")));
                }
                if n == 16 {
                    return Err(err("timeslot 16 carries signalling, not calls".into()));
                }
                Ok(n)
            };
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(err(format!("range {a}-{b} runs backwards")));
            }
            for n in a..=b {
                if n == 16 {
                    continue;
                }
                if out.contains(&n) {
                    return Err(err(format!("timeslot {n} is listed twice")));
                }
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(ChannelRanges(out))
    }
}

impl fmt::Display for ChannelRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        let v = &self.0;
        while i < v.len() {
            let start = v[i];
            let mut end = start;
            // 15 and 17 join across the signalling timeslot.
            while i + 1 < v.len() && (v[i + 1] == end + 1 || (end == 15 && v[i + 1] == 17)) {
                i += 1;
                end = v[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

impl Serialize for ChannelRanges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChannelRanges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `[[trunk_group]]`: lines to the exchange used together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkGroupConfig {
    /// The group's name, used by routes.
    pub name: String,
    /// The signalling: `fxo` (default) for FXO ports; `pri_cpe`, `pri_net` or `r2_china` for
    /// E1 spans.
    #[serde(default)]
    pub signalling: TrunkSignalling,
    /// PRI only: the ISDN variant.
    #[serde(default)]
    pub switch_type: SwitchType,
    /// Its ports (`card/fxoN`, `card/spanN`).
    pub ports: Vec<PortRef>,
    /// Spans only: the timeslots used for calls on each span (default: all 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelRanges>,
    /// Calling number presentation on outgoing PRI calls.
    #[serde(default)]
    pub presentation: Presentation,
    /// PRI: restart the interface (RESTART, all channels) whenever the data link comes up.
    #[serde(default = "default_true")]
    pub restart_on_link_up: bool,
    /// How a free line is picked for outgoing calls.
    #[serde(default)]
    pub hunt: TrunkHunt,
    /// Extension or hunt group number that incoming calls ring (none: incoming calls are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<String>,
    /// Extension or hunt group number that takes incoming fax calls. When set, incoming calls
    /// are answered at once (the caller hears ringback from us) and listened to for fax
    /// calling tone (CNG), which moves the call here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax_destination: Option<String>,
    /// How long after an extension answers a CNG still moves the call to the fax destination, s.
    #[serde(default = "default_fax_detect_s")]
    pub fax_detect_s: u32,
    /// Call recording for calls on this group's lines: `never` (default), `on_demand`, `always`.
    #[serde(default, skip_serializing_if = "super::recording::RecordingPolicy::is_never")]
    pub recording: super::recording::RecordingPolicy,
}

fn default_fax_detect_s() -> u32 {
    5
}

fn default_min_digits() -> u32 {
    1
}

/// `[[route]]`: an outgoing dialplan entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Dialled digits that select this route.
    pub prefix: String,
    /// The trunk group the call goes out on.
    pub trunk_group: String,
    /// Number of leading digits removed before sending the number to the trunk.
    #[serde(default)]
    pub strip: u32,
    /// Digits needed after the prefix before the call is placed.
    #[serde(default = "default_min_digits")]
    pub min_digits: u32,
}

fn default_first_digit_timeout_ms() -> u32 {
    10_000
}
fn default_inter_digit_timeout_ms() -> u32 {
    4_000
}
fn default_answer_timeout_s() -> u32 {
    60
}

/// `[dialplan]`: digit collection and ring timers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialplanConfig {
    /// Dial tone until the first digit, ms.
    #[serde(default = "default_first_digit_timeout_ms")]
    pub first_digit_timeout_ms: u32,
    /// Longest pause between digits, ms.
    #[serde(default = "default_inter_digit_timeout_ms")]
    pub inter_digit_timeout_ms: u32,
    /// Ring time before an unanswered call is given up, seconds.
    #[serde(default = "default_answer_timeout_s")]
    pub answer_timeout_s: u32,
}

impl Default for DialplanConfig {
    fn default() -> Self {
        DialplanConfig {
            first_digit_timeout_ms: default_first_digit_timeout_ms(),
            inter_digit_timeout_ms: default_inter_digit_timeout_ms(),
            answer_timeout_s: default_answer_timeout_s(),
        }
    }
}

/// The kind of port a [`PortRef`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    /// An analog FXS port (a phone).
    Fxs,
    /// An analog FXO port (an exchange line).
    Fxo,
    /// An E1 span.
    Span,
}

impl PortKind {
    /// The word used in port references: `fxs`, `fxo`, `span`.
    pub fn as_str(self) -> &'static str {
        match self {
            PortKind::Fxs => "fxs",
            PortKind::Fxo => "fxo",
            PortKind::Span => "span",
        }
    }
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to a port on a card, written `card/fxsN`, `card/fxoN` or `card/spanN` (N from 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRef {
    /// Name of the card.
    pub card: String,
    /// Kind of port.
    pub kind: PortKind,
    /// Port number on the card, from 1.
    pub index: u32,
}

/// Why a port reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {text:?}: {reason} (write card/fxsN, card/fxoN or card/spanN, e.g. \"sim0/fxs1\")")]
pub struct PortRefError {
    /// The text that was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for PortRef {
    type Err = PortRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PortRefError { text: s.to_string(), reason };
        let (card, port) = s.split_once('/').ok_or_else(|| err("no '/' between card and port"))?;
        if card.is_empty() {
            return Err(err("the card name is empty"));
        }
        let (kind, digits) = if let Some(d) = port.strip_prefix("fxs") {
            (PortKind::Fxs, d)
        } else if let Some(d) = port.strip_prefix("fxo") {
            (PortKind::Fxo, d)
        } else if let Some(d) = port.strip_prefix("span") {
            (PortKind::Span, d)
        } else {
            return Err(err("the port kind must be fxs, fxo or span"));
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the port number must be digits"));
        }
        let index: u32 = digits.parse().map_err(|_| err("the port number is too large"))?;
        if index == 0 {
            return Err(err("ports are numbered from 1"));
        }
        Ok(PortRef { card: card.to_string(), kind, index })
    }
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.card, self.kind, self.index)
    }
}

impl Serialize for PortRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
