//! Plain snapshots of call control for `show` commands and tests.

use super::{CallState, Direction, LineKind, Pbx, SpanState};
use crate::config::model::PortKind;
use crate::engine::api::{Detectors, Source};
use cardpbx_hal::Tick;
use cardpbx_hal::{ChannelId, SpanId};
use serde::Serialize;

/// Call counters since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PbxCounters {
    /// Calls started (a phone went off-hook, or a trunk rang).
    pub calls_total: u64,
    /// Calls that were connected and then cleared.
    pub calls_completed: u64,
    /// Calls that ended without being connected (busy, unknown number, no answer, no line).
    pub calls_failed: u64,
    /// Of the failed: the called extension or every hunt group member was busy.
    pub calls_busy: u64,
    /// Of the failed: nobody answered in time.
    pub calls_unanswered: u64,
    /// Of the failed: no free line in the trunk group.
    pub calls_congested: u64,
    /// Card commands that failed.
    pub card_errors: u64,
    /// Incoming calls moved to the fax destination on hearing fax calling tone.
    pub fax_calls: u64,
    /// Caller ID messages received on trunk lines.
    pub callerid_received: u64,
    /// Caller ID messages received with a bad checksum or content.
    pub callerid_errors: u64,
}

/// One call, as `cardpbx calls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// Call number.
    pub id: u64,
    /// Internal, outbound or inbound.
    pub direction: Direction,
    /// Where the call is.
    pub state: CallState,
    /// Calling party: extension number, the number caller ID gave, or the trunk port.
    pub from: String,
    /// Calling party's name (extension name or caller ID).
    pub from_name: Option<String>,
    /// The call was moved to the fax destination on fax calling tone.
    pub fax: bool,
    /// Called number.
    pub to: String,
    /// The originating port.
    pub a_port: String,
    /// The answering port, once known.
    pub b_port: Option<String>,
    /// Tick the call started.
    pub started: Tick,
    /// Tick it was answered.
    pub answered: Option<Tick>,
}

/// One configured port, as `cardpbx ports` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortInfo {
    /// `sim0/fxs1`.
    pub port: String,
    /// FXS or FXO.
    pub kind: PortKind,
    /// Line state (`idle`, `ringing`, `off_hook`, ...).
    pub state: String,
    /// Extension number on an FXS port.
    pub extension: Option<String>,
    /// Trunk group of an FXO port.
    pub trunk_group: Option<String>,
    /// The call on the port.
    pub call: Option<u64>,
}

impl Pbx {
    /// Counters since start.
    pub fn counters(&self) -> PbxCounters {
        self.counters
    }

    /// Number of calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The calls in progress, oldest first.
    pub fn calls(&self) -> Vec<CallInfo> {
        self.calls
            .values()
            .map(|c| CallInfo {
                id: c.id,
                direction: c.direction,
                state: c.state,
                from: c.from.clone(),
                from_name: c.name.clone(),
                fax: c.fax,
                to: c.to.clone(),
                a_port: self.lines[c.a.index()].port.clone(),
                b_port: c.b.map(|b| self.lines[b.index()].port.clone()),
                started: c.started,
                answered: c.answered,
            })
            .collect()
    }

    /// Every configured port with its state.
    pub fn ports(&self) -> Vec<PortInfo> {
        self.lines
            .iter()
            .filter_map(|l| {
                let (kind, state, extension, trunk_group) = match &l.kind {
                    LineKind::Fxs { line, number } => {
                        (PortKind::Fxs, crate::json_name(&line.state()), Some(number.clone()), None)
                    }
                    LineKind::Fxo { line, group } => (
                        PortKind::Fxo,
                        crate::json_name(&line.state()),
                        None,
                        Some(self.trunk_groups[*group].name.clone()),
                    ),
                    LineKind::Bchan { .. } | LineKind::R2 { .. } | LineKind::None => return None,
                };
                Some(PortInfo {
                    port: l.port.clone(),
                    kind,
                    state,
                    extension,
                    trunk_group,
                    call: l.call,
                })
            })
            .collect()
    }

    /// A span's settings and last alarms (defaults for a span the card has but the
    /// configuration does not mention).
    pub fn span_state(&self, span: SpanId) -> SpanState {
        self.spans.get(&span).cloned().unwrap_or(SpanState {
            framing: "ccs".into(),
            line_code: "hdb3".into(),
            crc4: true,
            alarms: cardpbx_hal::Alarms::NOT_OPEN,
        })
    }

    /// What a channel transmits, in words (`silence`, `chan 3`, `tone`), which detectors
    /// listen to it and whether its echo canceller runs.
    pub fn channel_source(&self, chan: ChannelId) -> (String, Detectors, bool) {
        let Some((src, det, echo)) = self.sources.get(chan.index()) else {
            return ("?".into(), Detectors::NONE, false);
        };
        let text = match src {
            Source::Silence => "silence".to_string(),
            Source::Channel(c) => format!("chan {}", c.0),
            Source::Mix(m) => {
                let v: Vec<String> = m.iter().flatten().map(|c| c.0.to_string()).collect();
                format!("mix {}", v.join("+"))
            }
            Source::Conference(c) => format!("conf {}", c.0),
            Source::Tone(t) => {
                let f = t.segments().first().map(|s| s.freqs[0]).unwrap_or(0.0);
                format!("tone {f:.0} Hz")
            }
            Source::Prompt { prompt, .. } => format!("prompt {}", prompt.0),
            Source::Fsk(_) => "caller id".to_string(),
            Source::FaxPort(s) => format!("fax port {}", s.0),
        };
        (text, *det, *echo)
    }

    /// The display name of an extension, if configured.
    pub fn extension_name(&self, number: &str) -> Option<&str> {
        self.extension_names.get(number).map(String::as_str)
    }
}
