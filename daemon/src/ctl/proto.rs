//! The control socket protocol: one JSON object per line over a Unix stream socket.
//!
//! A request is `{"cmd":"status"}` (commands: `ping`, `status`, `cards`, `spans`, `ports`,
//! `channels`, `calls`, `config_file`, `reload`, `events` (a stream, one line per event), and
//! `span_capture`, which takes fields:
//! `{"cmd":"span_capture","span":"sim0/span1","file":"/tmp/d.pcap"}`). The answer is one line, `{"ok":true,"data":...}` or
//! `{"ok":false,"error":"..."}`. The data shapes are plain structs shared by the daemon, which
//! fills them, and the CLI, which renders them.

use crate::config::PortKind;
use serde::{Deserialize, Serialize};

/// Longest request line the server accepts, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

/// A request from a control client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtlRequest {
    /// Is the daemon there? Answered with [`PingData`].
    Ping,
    /// Daemon and engine summary: [`StatusData`].
    Status,
    /// The cards: a list of [`CardData`].
    Cards,
    /// E1 spans with alarms and counters: a list of [`SpanData`].
    Spans,
    /// FXS/FXO ports and spans with their state: a list of [`PortData`].
    Ports,
    /// Every channel with its switch-matrix source: a list of [`ChannelData`].
    Channels,
    /// Calls in progress: a list of [`CallData`].
    Calls,
    /// The configuration file the daemon was started with: [`ConfigFileData`].
    ConfigFile,
    /// Read the configuration file again and apply trunk groups, routes and hunt groups
    /// without dropping calls: [`ReloadData`].
    Reload,
    /// Start or stop capturing a PRI span's D-channel to a pcap file: [`CaptureData`].
    SpanCapture(SpanCaptureArgs),
    /// Queue a fax to send through a trunk group: [`FaxJobData`].
    FaxSend(FaxSendArgs),
    /// Follow the event stream: the connection then carries one answer line per event
    /// (`{"ok":true,"data":{"seq":…,"ts_ms":…,"event":"call_state",…}}`) until it is closed.
    Events,
    /// Conference rooms: list, show, mute, unmute, kick, invite
    /// ([`super::conference::ConferenceArgs`]): [`super::conference::ConferenceData`].
    Conference(super::conference::ConferenceArgs),
}

/// The fields of a `fax_send` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaxSendArgs {
    /// The number (with the route's prefix, or as the network takes it with `group`).
    pub to: String,
    /// The TIFF to send (an absolute path: the daemon reads it).
    pub file: String,
    /// Attempts after the first (default: `[fax] retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The trunk group to send through (default: the route the number matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Answer to `fax_send`: the job queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxJobData {
    /// The job number (the store row of the result carries it).
    pub job: u64,
    /// Pages in the document.
    pub pages: u32,
}

/// The fields of a `span_capture` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanCaptureArgs {
    /// The span: `card/spanN` or `N`.
    pub span: String,
    /// The pcap file (an absolute path: the daemon's working directory is not the client's).
    /// Needed to start; ignored when stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Stop the capture running on the span instead of starting one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop: bool,
    /// Stop by itself after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl CtlRequest {
    /// Every request, in the order the help text lists them.
    pub const ALL: [CtlRequest; 13] = [
        CtlRequest::Ping,
        CtlRequest::Status,
        CtlRequest::Cards,
        CtlRequest::Spans,
        CtlRequest::Ports,
        CtlRequest::Channels,
        CtlRequest::Calls,
        CtlRequest::ConfigFile,
        CtlRequest::Reload,
        CtlRequest::SpanCapture(SpanCaptureArgs {
            span: String::new(),
            file: None,
            stop: false,
            duration_ms: None,
        }),
        CtlRequest::FaxSend(FaxSendArgs {
            to: String::new(),
            file: String::new(),
            retries: None,
            group: None,
        }),
        CtlRequest::Events,
        CtlRequest::Conference(super::conference::ConferenceArgs {
            op: String::new(),
            room: None,
            member: None,
            number: None,
        }),
    ];

    /// The command word on the wire (`"status"`).
    pub fn name(&self) -> &'static str {
        match self {
            CtlRequest::Ping => "ping",
            CtlRequest::Status => "status",
            CtlRequest::Cards => "cards",
            CtlRequest::Spans => "spans",
            CtlRequest::Ports => "ports",
            CtlRequest::Channels => "channels",
            CtlRequest::Calls => "calls",
            CtlRequest::ConfigFile => "config_file",
            CtlRequest::Reload => "reload",
            CtlRequest::SpanCapture(_) => "span_capture",
            CtlRequest::FaxSend(_) => "fax_send",
            CtlRequest::Events => "events",
            CtlRequest::Conference(_) => "conference",
        }
    }

    /// The command with this wire name.
    pub fn from_name(name: &str) -> Option<CtlRequest> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the command takes fields besides `cmd`.
    pub fn takes_fields(&self) -> bool {
        matches!(
            self,
            CtlRequest::SpanCapture(_) | CtlRequest::FaxSend(_) | CtlRequest::Conference(_)
        )
    }

    /// The request as one protocol line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self)
            .unwrap_or_else(|_| format!("{{\"cmd\":\"{}\"}}", self.name()));
        line.push('\n');
        line
    }

    /// Parse one request line (without its newline).
    ///
    /// # Errors
    /// A message for the client naming what was wrong: not JSON, not an object, no `cmd`,
    /// an unknown command, or extra fields.
    pub fn parse_line(line: &str) -> Result<CtlRequest, String> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("request is not valid JSON: {e}"))?;
        let Some(obj) = value.as_object() else {
            return Err(format!(
                "request must be a JSON object like {{\"cmd\":\"status\"}}, got {}",
                json_kind(&value)
            ));
        };
        let cmd = match obj.get("cmd") {
            None => return Err("request has no \"cmd\" field".into()),
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(format!("\"cmd\" must be a string, got {}", json_kind(other)))
            }
        };
        let Some(req) = CtlRequest::from_name(cmd) else {
            let names: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
            return Err(format!("unknown command {cmd:?} (commands: {})", names.join(", ")));
        };
        if req.takes_fields() {
            let mut fields = obj.clone();
            fields.remove("cmd");
            let fields = serde_json::Value::Object(fields);
            return match req {
                CtlRequest::SpanCapture(_) => serde_json::from_value(fields)
                    .map(CtlRequest::SpanCapture)
                    .map_err(|e| format!("command {cmd:?}: {e}")),
                CtlRequest::FaxSend(_) => serde_json::from_value(fields)
                    .map(CtlRequest::FaxSend)
                    .map_err(|e| format!("command {cmd:?}: {e}")),
                CtlRequest::Conference(_) => serde_json::from_value(fields)
                    .map(CtlRequest::Conference)
                    .map_err(|e| format!("command {cmd:?}: {e}")),
                other => Ok(other),
            };
        }
        if let Some(extra) = obj.keys().find(|k| k.as_str() != "cmd") {
            return Err(format!("command {cmd:?} takes no field {extra:?}"));
        }
        Ok(req)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The data of a successful answer; which variant depends on the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CtlData {
    /// Answer to `ping`.
    Ping(PingData),
    /// Answer to `status`.
    Status(StatusData),
    /// Answer to `cards`.
    Cards(Vec<CardData>),
    /// Answer to `spans`.
    Spans(Vec<SpanData>),
    /// Answer to `ports`.
    Ports(Vec<PortData>),
    /// Answer to `channels`.
    Channels(Vec<ChannelData>),
    /// Answer to `calls`.
    Calls(Vec<CallData>),
    /// Answer to `config_file`.
    ConfigFile(ConfigFileData),
    /// Answer to `reload`.
    Reload(ReloadData),
    /// Answer to `span_capture`.
    Capture(CaptureData),
    /// Answer to `fax_send`.
    FaxJob(FaxJobData),
    /// One event of the stream `events` follows (see `pbx::events::PbxEvent`).
    Event(serde_json::Value),
    /// Answer to `conference`.
    Conference(super::conference::ConferenceData),
}

impl CtlData {
    /// Decode the `data` of an answer to `req`.
    ///
    /// # Errors
    /// When the data does not have the shape `req` is answered with.
    pub fn from_value(req: &CtlRequest, data: serde_json::Value) -> serde_json::Result<CtlData> {
        Ok(match req {
            CtlRequest::Ping => CtlData::Ping(serde_json::from_value(data)?),
            CtlRequest::Status => CtlData::Status(serde_json::from_value(data)?),
            CtlRequest::Cards => CtlData::Cards(serde_json::from_value(data)?),
            CtlRequest::Spans => CtlData::Spans(serde_json::from_value(data)?),
            CtlRequest::Ports => CtlData::Ports(serde_json::from_value(data)?),
            CtlRequest::Channels => CtlData::Channels(serde_json::from_value(data)?),
            CtlRequest::Calls => CtlData::Calls(serde_json::from_value(data)?),
            CtlRequest::ConfigFile => CtlData::ConfigFile(serde_json::from_value(data)?),
            CtlRequest::Reload => CtlData::Reload(serde_json::from_value(data)?),
            CtlRequest::SpanCapture(_) => CtlData::Capture(serde_json::from_value(data)?),
            CtlRequest::FaxSend(_) => CtlData::FaxJob(serde_json::from_value(data)?),
            CtlRequest::Events => CtlData::Event(data),
            CtlRequest::Conference(_) => CtlData::Conference(serde_json::from_value(data)?),
        })
    }

    /// The request this data answers.
    pub fn request(&self) -> CtlRequest {
        match self {
            CtlData::Ping(_) => CtlRequest::Ping,
            CtlData::Status(_) => CtlRequest::Status,
            CtlData::Cards(_) => CtlRequest::Cards,
            CtlData::Spans(_) => CtlRequest::Spans,
            CtlData::Ports(_) => CtlRequest::Ports,
            CtlData::Channels(_) => CtlRequest::Channels,
            CtlData::Calls(_) => CtlRequest::Calls,
            CtlData::ConfigFile(_) => CtlRequest::ConfigFile,
            CtlData::Reload(_) => CtlRequest::Reload,
            CtlData::Capture(_) => CtlRequest::SpanCapture(SpanCaptureArgs::default()),
            CtlData::FaxJob(_) => CtlRequest::FaxSend(FaxSendArgs::default()),
            CtlData::Event(_) => CtlRequest::Events,
            CtlData::Conference(_) => {
                CtlRequest::Conference(super::conference::ConferenceArgs::default())
            }
        }
    }
}

/// An answer to a request.
#[derive(Debug, Clone, PartialEq)]
// Answers are built once per request and sent at once: boxing the data would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum CtlResponse {
    /// The request was carried out: `{"ok":true,"data":...}`.
    Ok(CtlData),
    /// It was not: `{"ok":false,"error":"..."}`.
    Error(String),
}

/// The wire shape of an answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireResponse {
    /// Whether the request was carried out.
    pub ok: bool,
    /// The answer's data when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// What went wrong when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CtlResponse {
    /// The answer as one protocol line, newline included.
    pub fn to_line(&self) -> String {
        /// The wire shape, borrowing the data so fields keep their declared order.
        #[derive(Serialize)]
        struct Out<'a> {
            ok: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a CtlData>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<&'a str>,
        }
        let out = match self {
            CtlResponse::Ok(data) => Out { ok: true, data: Some(data), error: None },
            CtlResponse::Error(e) => Out { ok: false, data: None, error: Some(e) },
        };
        let mut line = serde_json::to_string(&out)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"internal: unserialisable answer"}"#.into());
        line.push('\n');
        line
    }

    /// Parse an answer line to `req`.
    ///
    /// # Errors
    /// A description of what is malformed.
    pub fn parse_line(req: CtlRequest, line: &str) -> Result<CtlResponse, String> {
        let wire: WireResponse = serde_json::from_str(line)
            .map_err(|e| format!("malformed answer from the daemon: {e}"))?;
        match (wire.ok, wire.data, wire.error) {
            (true, Some(data), _) => CtlData::from_value(&req, data)
                .map(CtlResponse::Ok)
                .map_err(|e| format!("unexpected {} data from the daemon: {e}", req.name())),
            (true, None, _) => Err("malformed answer from the daemon: ok without data".into()),
            (false, _, Some(e)) => Ok(CtlResponse::Error(e)),
            (false, _, None) => Ok(CtlResponse::Error("unspecified error".into())),
        }
    }
}

/// Answer to `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingData {
    /// Always `true`.
    pub pong: bool,
    /// The daemon's version.
    pub version: String,
}

/// Media engine counters for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EngineSummary {
    /// Ticks run.
    pub ticks: u64,
    /// Ticks that finished after their deadline.
    pub late_ticks: u64,
    /// Longest tick, ns.
    pub max_tick_ns: u64,
    /// Commands dropped because the command ring was full.
    pub cmd_overruns: u64,
    /// Events dropped because the event ring was full.
    pub event_overruns: u64,
    /// Median tick duration, ns.
    pub p50_ns: u64,
    /// 99th percentile tick duration, ns.
    pub p99_ns: u64,
    /// 99.9th percentile tick duration, ns.
    pub p999_ns: u64,
}

/// Answer to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusData {
    /// `system.name` of the configuration.
    pub name: String,
    /// The daemon's version.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Current tick number.
    pub ticks: u64,
    /// Calls in progress.
    pub calls_active: u64,
    /// Calls since start.
    pub calls_total: u64,
    /// Media engine counters.
    pub engine: EngineSummary,
    /// How the media thread runs: `SCHED_FIFO 50, memory locked`, or why not.
    pub realtime: String,
}

/// Answer to `cards`: one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardData {
    /// Configured name.
    pub name: String,
    /// Backend (`sim`, `dahdi`).
    pub driver: String,
    /// Model reported by the backend.
    pub model: String,
    /// Number of FXS ports.
    pub fxs: u32,
    /// Number of FXO ports.
    pub fxo: u32,
    /// Number of E1 spans.
    pub spans: u32,
}

/// Answer to `spans`: one E1 span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanData {
    /// Card name.
    pub card: String,
    /// Span number on the card, from 1.
    pub span: u32,
    /// Frame format (`ccs`, `cas`).
    pub framing: String,
    /// Line code (`hdb3`, `ami`).
    pub line_code: String,
    /// CRC-4 multiframe on.
    pub crc4: bool,
    /// Active alarms (`LOS`, `AIS`, ...); empty when the span is up.
    pub alarms: Vec<String>,
    /// Frame slips.
    pub slips: u64,
    /// CRC-4 errors.
    pub crc4_errors: u64,
    /// Bipolar violations.
    pub bpv: u64,
    /// Whether the card takes its clock from this span now.
    pub timing_source: bool,
    /// The trunk group using the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk_group: Option<String>,
    /// Its signalling (`pri_cpe`, `pri_net`, `r2_china`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signalling: Option<String>,
    /// PRI spans: the D-channel, its capture and the bearers in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dchannel: Option<crate::pbx::PriSpanInfo>,
}

/// Answer to `span_capture`: the capture started, or the one stopped.
pub type CaptureData = crate::pbx::CaptureInfo;

/// Answer to `ports`: one FXS/FXO port or span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortData {
    /// Port reference, `sim0/fxs1`.
    pub port: String,
    /// FXS, FXO or span.
    pub kind: PortKind,
    /// Line state: `idle`, `ringing`, `off-hook`, `dialing`, `connected`, `alarm`, ...
    pub state: String,
    /// Extension number on this port.
    pub extension: Option<String>,
    /// Trunk group this port belongs to.
    pub trunk_group: Option<String>,
}

/// Answer to `channels`: one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelData {
    /// Card name.
    pub card: String,
    /// Channel index on the card, from 0.
    pub chan: u32,
    /// Channel name (`fxs3`, `span1/ts5`).
    pub name: String,
    /// Signalling kind (`fxs_loop_start`, `ccs_bearer`, ...).
    pub sig: String,
    /// Companding law (`alaw`, `ulaw`).
    pub law: String,
    /// What the channel transmits: `silence`, `chan 5`, `tone dial`, `conf 2`, ...
    pub source: String,
    /// DTMF detector on.
    pub dtmf: bool,
    /// Being recorded.
    pub recording: bool,
}

/// Answer to `calls`: one call in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallData {
    /// Call id, unique since start.
    pub id: u64,
    /// Calling party (extension number or caller ID).
    pub from: String,
    /// Called number.
    pub to: String,
    /// `dialing`, `ringing`, `connected`, ...
    pub state: String,
    /// Port of the calling side.
    pub a_port: String,
    /// Port of the called side, once chosen.
    pub b_port: Option<String>,
    /// Tick the call started.
    pub started_tick: u64,
    /// Tick it was answered.
    pub answered_tick: Option<u64>,
    /// Seconds since it started.
    pub duration_s: f64,
}

/// Answer to `config_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFileData {
    /// Absolute path of the configuration file the daemon was started with.
    pub path: String,
}

/// Answer to `reload`: the file read and what changed (see [`crate::pbx::ReconfigReport`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadData {
    /// The configuration file that was read.
    pub file: String,
    /// What was applied, what waits for calls to end, what needs a restart.
    #[serde(flatten)]
    pub report: crate::pbx::ReconfigReport,
}
