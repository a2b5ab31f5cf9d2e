//! Inbound call routing: which destination an incoming call gets, from its called number
//! (DNIS/DID), calling number (ANI), the local time against `[[schedule]]` working hours and
//! `[[holiday]]` dates, the blacklist, VIP and emergency rules, and sticky routing to the agent
//! who served the caller last.
//!
//! Sans-IO: [`Router::route`] is a pure function of the configuration, the call's numbers, the
//! local time given by the caller and the answer of a [`LastAgentLookup`]. It reads no clock
//! and opens no file; it does not ring anything either — call control acts on the
//! [`RouteDecision`].
//!
//! Rules are tried by class — `emergency`, then `blacklist`, then `vip`, then `normal` — and in
//! configuration order within a class; the first rule whose numbers match decides. A rule with a
//! `schedule` picks `destination` in working hours, else `holiday` on a holiday, `weekend` on a
//! day without working hours, and `after_hours` otherwise (`weekend` and `holiday` default to
//! `after_hours`).
//!
//! ```
//! use cardpbx::callcenter::routing::{InboundCall, LocalTime, NoLastAgent, Router};
//! use cardpbx::config::{callcenter_routing::Destination, Config};
//!
//! let cfg = Config::parse_str(r#"
//!     [[schedule]]
//!     name = "office"
//!     hours = ["mon-fri 08:30-18:00"]
//!
//!     [[inbound]]
//!     dnis = ["80001000"]
//!     schedule = "office"
//!     destination = "busy"
//!     after_hours = "hangup"
//! "#, "doc.toml").unwrap();
//! let router = Router::new(&cfg).unwrap();
//! // Monday 2026-11-23 10:00 local time.
//! let now = LocalTime::from_ymd_hm(2026, 11, 23, 10, 0).unwrap();
//! let call = InboundCall { dnis: "80001000", ani: Some("13900001111") };
//! let d = router.route(&call, now, &NoLastAgent).unwrap();
//! assert_eq!(d.dest, Destination::Busy);
//! ```

use crate::config::callcenter_routing::{
    Date, Destination, HolidayConfig, InboundRule, RuleKind, Weekday, WeeklyHours,
};
use crate::config::Config;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// Local wall-clock time as seconds since 1970-01-01 00:00 *local* time (the caller applies
/// the time zone; the router never reads a clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    /// Seconds since 1970-01-01 00:00 local time.
    pub secs: i64,
}

impl LocalTime {
    /// From local seconds since 1970.
    pub fn new(secs: i64) -> LocalTime {
        LocalTime { secs }
    }

    /// From a local calendar date and time of day, if the date exists and the time is valid.
    pub fn from_ymd_hm(y: i64, m: u32, d: u32, hour: u32, minute: u32) -> Option<LocalTime> {
        if hour > 23 || minute > 59 {
            return None;
        }
        let date = Date::from_ymd(y, m, d)?;
        Some(LocalTime { secs: date.days * 86_400 + i64::from(hour * 3600 + minute * 60) })
    }

    /// The local calendar date.
    pub fn date(self) -> Date {
        Date { days: self.secs.div_euclid(86_400) }
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        self.date().weekday()
    }

    /// Minutes since local midnight, 0..1440.
    pub fn minute_of_day(self) -> u32 {
        (self.secs.rem_euclid(86_400) / 60) as u32
    }
}

/// The numbers of an incoming call, as the trunk delivered them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundCall<'a> {
    /// The called number (DNIS/DID).
    pub dnis: &'a str,
    /// The calling number (ANI), if the network sent one.
    pub ani: Option<&'a str>,
}

/// Finds the agent who last served a caller, for sticky routing. The store implements it
/// over its CDRs; tests use closures or [`NoLastAgent`].
pub trait LastAgentLookup {
    /// The agent who last talked to `ani` on a call through `queue` no longer than
    /// `max_age_s` seconds ago, if any.
    fn last_agent(&self, ani: &str, queue: &str, max_age_s: u64) -> Option<String>;
}

/// A lookup that never knows a last agent (sticky routing off).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLastAgent;

impl LastAgentLookup for NoLastAgent {
    fn last_agent(&self, _ani: &str, _queue: &str, _max_age_s: u64) -> Option<String> {
        None
    }
}

impl<F: Fn(&str, &str, u64) -> Option<String>> LastAgentLookup for F {
    fn last_agent(&self, ani: &str, queue: &str, max_age_s: u64) -> Option<String> {
        self(ani, queue, max_age_s)
    }
}

/// Which part of its schedule a rule was in when it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeOfDay {
    /// The rule has no schedule.
    Always,
    /// Within working hours.
    WorkingHours,
    /// Outside working hours on a working day.
    AfterHours,
    /// On a day without working hours.
    Weekend,
    /// On a `[[holiday]]`.
    Holiday {
        /// The holiday's name, if it has one.
        name: Option<String>,
    },
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeOfDay::Always => f.write_str("always"),
            TimeOfDay::WorkingHours => f.write_str("working hours"),
            TimeOfDay::AfterHours => f.write_str("after hours"),
            TimeOfDay::Weekend => f.write_str("weekend"),
            TimeOfDay::Holiday { name: Some(n) } => write!(f, "holiday {n:?}"),
            TimeOfDay::Holiday { name: None } => f.write_str("holiday"),
        }
    }
}

/// Where an incoming call goes and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    /// The destination (`Busy` and `Message` reject the call; `Agent` comes from sticky
    /// routing or a VIP rule).
    pub dest: Destination,
    /// Index of the deciding rule in `Config::inbound`.
    pub rule: usize,
    /// The rule's name, if it has one.
    pub rule_name: Option<String>,
    /// The rule's class.
    pub kind: RuleKind,
    /// The schedule state the rule was in.
    pub time: TimeOfDay,
    /// The destination came from sticky routing (the caller's last agent).
    pub sticky: bool,
    /// A prompt to play before the destination (a holiday greeting).
    pub greeting: Option<PathBuf>,
}

impl RouteDecision {
    /// A one-line reason for logs and `show` output.
    pub fn reason(&self) -> String {
        let kind = match self.kind {
            RuleKind::Normal => "rule",
            RuleKind::Emergency => "emergency rule",
            RuleKind::Blacklist => "blacklist rule",
            RuleKind::Vip => "vip rule",
        };
        let name = match &self.rule_name {
            Some(n) => format!("{kind} {n:?}"),
            None => format!("{kind} #{}", self.rule),
        };
        let sticky = if self.sticky { ", caller's last agent" } else { "" };
        format!("{name}, {}{sticky} -> {}", self.time, self.dest)
    }
}

/// Why a router could not be built (the configuration check reports the same problems).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// A rule names a schedule that does not exist.
    #[error("inbound[{rule}]: unknown schedule {schedule:?}")]
    UnknownSchedule {
        /// Index of the rule.
        rule: usize,
        /// The schedule name.
        schedule: String,
    },
}

/// The compiled inbound routing rules.
#[derive(Debug, Clone)]
pub struct Router {
    /// (index in `Config::inbound`, rule, compiled schedule) in the order they are tried.
    rules: Vec<(usize, InboundRule, Option<WeeklyHours>)>,
    holidays: Vec<HolidayConfig>,
}

fn class_rank(k: RuleKind) -> u8 {
    match k {
        RuleKind::Emergency => 0,
        RuleKind::Blacklist => 1,
        RuleKind::Vip => 2,
        RuleKind::Normal => 3,
    }
}

fn number_matches(n: Option<&str>, exact: &[String], prefixes: &[String]) -> bool {
    if exact.is_empty() && prefixes.is_empty() {
        return true;
    }
    let Some(n) = n.filter(|n| !n.is_empty()) else {
        return false;
    };
    exact.iter().any(|e| e == n) || prefixes.iter().any(|p| n.starts_with(p.as_str()))
}

impl Router {
    /// Compile the `[[inbound]]`, `[[schedule]]` and `[[holiday]]` sections.
    ///
    /// # Errors
    /// A rule naming an unknown schedule (a checked configuration has none).
    pub fn new(cfg: &Config) -> Result<Router, RouterError> {
        let schedules: HashMap<&str, WeeklyHours> =
            cfg.schedules.iter().map(|s| (s.name.as_str(), WeeklyHours::new(&s.hours))).collect();
        let mut rules = Vec::with_capacity(cfg.inbound.len());
        for (i, r) in cfg.inbound.iter().enumerate() {
            let hours = match &r.schedule {
                None => None,
                Some(s) => Some(schedules.get(s.as_str()).cloned().ok_or_else(|| {
                    RouterError::UnknownSchedule { rule: i, schedule: s.clone() }
                })?),
            };
            rules.push((i, r.clone(), hours));
        }
        // Stable: configuration order is kept within a class.
        rules.sort_by_key(|(_, r, _)| class_rank(r.kind));
        Ok(Router { rules, holidays: cfg.holidays.clone() })
    }

    /// Whether any rule exists (without rules every call takes the trunk group's `incoming`).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The holiday on `date`, if it is one.
    pub fn holiday(&self, date: Date) -> Option<&HolidayConfig> {
        self.holidays.iter().find(|h| h.contains(date))
    }

    /// Decide where `call` goes at local time `now`; `None` when no rule matches (call control
    /// then uses the trunk group's `incoming` number).
    pub fn route(
        &self,
        call: &InboundCall<'_>,
        now: LocalTime,
        lookup: &dyn LastAgentLookup,
    ) -> Option<RouteDecision> {
        let (i, rule, hours) = self.rules.iter().find(|(_, r, _)| {
            number_matches(Some(call.dnis), &r.dnis, &r.dnis_prefix)
                && number_matches(call.ani, &r.ani, &r.ani_prefix)
        })?;
        let mut greeting = None;
        let (time, dest) = match hours {
            None => (TimeOfDay::Always, rule.destination.clone()),
            Some(hours) => {
                let fallback = rule.after_hours.as_ref().unwrap_or(&rule.destination);
                if let Some(h) = self.holiday(now.date()) {
                    greeting = h.greeting.clone();
                    let d = rule.holiday.as_ref().unwrap_or(fallback);
                    (TimeOfDay::Holiday { name: h.name.clone() }, d.clone())
                } else if hours.is_open(now.weekday(), now.minute_of_day()) {
                    (TimeOfDay::WorkingHours, rule.destination.clone())
                } else if !hours.is_working_day(now.weekday()) {
                    (TimeOfDay::Weekend, rule.weekend.as_ref().unwrap_or(fallback).clone())
                } else {
                    (TimeOfDay::AfterHours, fallback.clone())
                }
            }
        };
        let mut decision = RouteDecision {
            dest,
            rule: *i,
            rule_name: rule.name.clone(),
            kind: rule.kind,
            time,
            sticky: false,
            greeting,
        };
        if let (Some(days), Some(ani)) = (rule.sticky_days, call.ani.filter(|a| !a.is_empty())) {
            if matches!(decision.time, TimeOfDay::Always | TimeOfDay::WorkingHours) {
                if let Destination::Queue { queue, priority } = &decision.dest {
                    if let Some(agent) = lookup.last_agent(ani, queue, u64::from(days) * 86_400) {
                        decision.dest = Destination::Agent {
                            agent,
                            queue: Some(queue.clone()),
                            priority: *priority,
                        };
                        decision.sticky = true;
                    }
                }
            }
        }
        Some(decision)
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
