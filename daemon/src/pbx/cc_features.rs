//! Agent feature codes dialled from any extension (free seating), when `[[agent]]`s exist:
//!
//! | Code | Does |
//! |------|------|
//! | `*21<agent>*<pin>#` | log agent `<agent>` in on this extension |
//! | `*22` | log out the agent on this extension |
//! | `*23` | ready |
//! | `*24#`, `*24<reason>#` | not ready (reason code 1..=899; none: unspecified) |
//!
//! The phone hears a confirmation tone (three short 1400 Hz beeps) when the ACD accepts the
//! request, congestion tone when it refuses it (unknown agent, wrong PIN, not logged in). The
//! code's digits never reach a record: the CDR's called number is the code alone (`*21`).

use super::{CallId, CallState, Direction, LineKind, Pbx};
use crate::callcenter::acd::ReasonCode;
use crate::engine::api::{Detectors, Source};
use cardpbx_dsp::tone::{Segment, ToneSpec};
use cardpbx_dsp::toneplan::ProgressTone;

/// What dialled digits mean as an agent feature code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Feature {
    /// Not a feature code.
    No,
    /// A feature code, not complete yet.
    Incomplete,
    /// Log in.
    Login { agent: String, pin: String },
    /// Log out.
    Logout,
    /// Ready.
    Ready,
    /// Not ready, with a reason code.
    NotReady(u16),
    /// A feature code that cannot be right.
    Invalid,
}

/// Parse `digits`; `complete` when no more will come.
pub(super) fn parse(digits: &str, complete: bool) -> Feature {
    let more = || if complete { Feature::Invalid } else { Feature::Incomplete };
    if digits == "*" || digits == "*2" {
        return more();
    }
    let Some(rest) = digits.strip_prefix("*2") else { return Feature::No };
    let (code, args) = rest.split_at(1.min(rest.len()));
    match code {
        "1" => {
            let Some(body) = args.strip_suffix('#') else {
                return if args.contains('#') { Feature::Invalid } else { more() };
            };
            match body.split_once('*') {
                Some((agent, pin))
                    if !agent.is_empty()
                        && !pin.is_empty()
                        && agent.bytes().chain(pin.bytes()).all(|b| b.is_ascii_digit()) =>
                {
                    Feature::Login { agent: agent.into(), pin: pin.into() }
                }
                _ => Feature::Invalid,
            }
        }
        "2" if args.is_empty() => Feature::Logout,
        "3" if args.is_empty() => Feature::Ready,
        "4" => {
            let body = match args.strip_suffix('#') {
                Some(b) => b,
                None if complete && !args.contains('#') => args,
                None if args.contains('#') => return Feature::Invalid,
                None => return Feature::Incomplete,
            };
            if body.is_empty() {
                return Feature::NotReady(0);
            }
            match body.parse::<u16>() {
                Ok(n) if (1..900).contains(&n) && body.bytes().all(|b| b.is_ascii_digit()) => {
                    Feature::NotReady(n)
                }
                _ => Feature::Invalid,
            }
        }
        _ => Feature::No,
    }
}

/// Three short beeps: the request was accepted.
pub(super) fn confirmation_tone() -> ToneSpec {
    let beep = Segment { ms: 100, freqs: [1400.0, 0.0], level_dbm0: -13.0 };
    let gap = Segment::silence(100);
    ToneSpec::new(&[beep, gap, beep, gap, beep, gap], false).expect("beeps are a valid tone")
}

impl Pbx {
    /// For call-center feature codes: the phone and extension number of call `id` while it
    /// dials from an extension (and agents are configured at all).
    pub(super) fn feature_dialer(&self, id: CallId) -> Option<(cardpbx_hal::ChannelId, String)> {
        if !self.cc.has_agents() {
            return None;
        }
        let c = self.calls.get(&id)?;
        if c.direction != Direction::Internal || c.state != CallState::Dialing {
            return None;
        }
        let LineKind::Fxs { number, .. } = &self.lines[c.a.index()].kind else { return None };
        Some((c.a, number.clone()))
    }

    /// Handle `digits` of call `id` as an agent feature code; true when they are one.
    pub(super) fn cc_feature(&mut self, id: CallId, digits: &str, complete: bool) -> bool {
        let Some((a, ext)) = self.feature_dialer(id) else { return false };
        let f = parse(digits, complete);
        let now = self.now;
        let acd = &mut self.cc.acd;
        let here = acd.agent_at(&ext);
        let (code, result) = match &f {
            Feature::No => return false,
            Feature::Incomplete => return true,
            Feature::Invalid => ("*2", Err("not a feature code".to_string())),
            Feature::Login { agent, pin } => {
                ("*21", acd.login(agent, pin, &ext, now).map(|_| ()).map_err(|e| e.to_string()))
            }
            Feature::Logout => (
                "*22",
                here.ok_or("no agent here".to_string())
                    .and_then(|g| acd.logout(g, now).map_err(|e| e.to_string())),
            ),
            Feature::Ready => (
                "*23",
                here.ok_or("no agent here".to_string())
                    .and_then(|g| acd.set_ready(g, now).map_err(|e| e.to_string())),
            ),
            Feature::NotReady(r) => (
                "*24",
                here.ok_or("no agent here".to_string()).and_then(|g| {
                    acd.set_not_ready(g, ReasonCode(*r), now).map_err(|e| e.to_string())
                }),
            ),
        };
        self.set_to(id, code);
        if let Some(c) = self.calls.get_mut(&id) {
            c.set_state(CallState::Failed);
            c.timer = None;
        }
        self.detect(a, Detectors::NONE);
        match result {
            Ok(()) => {
                tracing::info!(%ext, code, "agent feature code accepted");
                self.cdr.note(id, "agent feature code");
                self.set_source(a, Source::Tone(confirmation_tone()));
            }
            Err(e) => {
                tracing::info!(%ext, code, "agent feature code refused: {e}");
                self.cdr.note(id, "agent feature code refused");
                self.tone(a, ProgressTone::Congestion);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_codes_parse() {
        assert_eq!(parse("*", false), Feature::Incomplete);
        assert_eq!(parse("*21101*12", false), Feature::Incomplete);
        assert_eq!(
            parse("*21101*1234#", false),
            Feature::Login { agent: "101".into(), pin: "1234".into() }
        );
        assert_eq!(parse("*21101#", false), Feature::Invalid);
        assert_eq!(parse("*21101*1234", true), Feature::Invalid);
        assert_eq!(parse("*22", false), Feature::Logout);
        assert_eq!(parse("*23", false), Feature::Ready);
        assert_eq!(parse("*24", false), Feature::Incomplete);
        assert_eq!(parse("*24", true), Feature::NotReady(0));
        assert_eq!(parse("*24#", false), Feature::NotReady(0));
        assert_eq!(parse("*247#", false), Feature::NotReady(7));
        assert_eq!(parse("*24950#", false), Feature::Invalid);
        assert_eq!(parse("*9", false), Feature::No);
        assert_eq!(parse("2001", false), Feature::No);
        assert_eq!(parse("*2", true), Feature::Invalid);
    }
}
