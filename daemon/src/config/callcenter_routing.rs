//! Call-center inbound routing and IVR configuration: `[[inbound]]` rules, `[[schedule]]`
//! working hours, `[[holiday]]` dates and `[[ivr]]` menus, plus their semantic checks.
//!
//! The value types here ([`Destination`], [`WeeklyHours`], [`Date`], ...) are shared with the
//! engines in [`crate::callcenter`], which interpret them; this module only parses and checks.
//! These sections may appear in the main file only (not in the include directory).

use super::check::{Loc, Seg};
use super::model::Config;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Highest queue priority (`queue:name:9`); higher is served first.
pub const MAX_PRIORITY: u8 = 9;

/// Longest digit string an IVR collection node accepts.
pub const MAX_COLLECT_DIGITS: u32 = 32;

/// Implement `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Where a call goes: written `kind:argument` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `ivr:<name>`: an `[[ivr]]` menu or collection node.
    Ivr(String),
    /// `queue:<name>[:<priority>]`: an ACD queue, priority 0 (default) ..= 9.
    Queue {
        /// The queue name.
        queue: String,
        /// Priority in the queue; higher is served first.
        priority: u8,
    },
    /// `extension:<number>`: an extension or hunt group number.
    Extension(String),
    /// `agent:<id>[:<queue>[:<priority>]]`: one agent, with the queue to fall back to when the
    /// agent is not free.
    Agent {
        /// The agent number.
        agent: String,
        /// Fallback queue.
        queue: Option<String>,
        /// Priority in the fallback queue.
        priority: u8,
    },
    /// `voicemail:<box>`: leave a message in a mailbox.
    Voicemail(String),
    /// `fax:<number>`: receive a fax for this fax box or number.
    Fax(String),
    /// `callback:<queue>`: register a callback request for a queue and hang up.
    Callback(String),
    /// `busy`: reject the call with busy.
    Busy,
    /// `message:<prompt.wav>`: play the message, then hang up.
    Message(PathBuf),
    /// `hangup`: clear the call.
    Hangup,
    /// `conference:<number>`: a `[[conference]]` room (its PIN is asked for).
    Conference(String),
}

/// Why a destination could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid destination {text:?}: {reason} (write ivr:NAME, queue:NAME[:PRIORITY], \
     extension:NUMBER, agent:ID[:QUEUE[:PRIORITY]], voicemail:BOX, fax:NUMBER, callback:QUEUE, \
     message:FILE.wav, conference:ROOM, busy or hangup)"
)]
pub struct DestinationError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

fn parse_priority(text: &str, s: &str) -> Result<u8, DestinationError> {
    let err = |reason: String| DestinationError { text: text.to_string(), reason };
    let p: u8 = s.parse().map_err(|_| err(format!("priority {s:?} is not a number")))?;
    if p > MAX_PRIORITY {
        return Err(err(format!("priority {p} is above {MAX_PRIORITY}")));
    }
    Ok(p)
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| DestinationError { text: text.to_string(), reason: reason.into() };
        let (kind, arg) = match text.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (text, None),
        };
        let need = |a: Option<&str>| -> Result<String, DestinationError> {
            match a {
                Some(a) if !a.is_empty() && !a.contains(':') => Ok(a.to_string()),
                Some(a) if a.contains(':') => Err(err("too many ':' parts")),
                _ => Err(err("the name or number after ':' is missing")),
            }
        };
        Ok(match kind {
            "busy" | "hangup" if arg.is_some() => return Err(err("takes no argument")),
            "busy" => Destination::Busy,
            "hangup" => Destination::Hangup,
            "ivr" => Destination::Ivr(need(arg)?),
            "extension" => Destination::Extension(need(arg)?),
            "voicemail" => Destination::Voicemail(need(arg)?),
            "fax" => Destination::Fax(need(arg)?),
            "callback" => Destination::Callback(need(arg)?),
            "conference" => Destination::Conference(need(arg)?),
            "message" => match arg {
                Some(a) if !a.is_empty() => Destination::Message(PathBuf::from(a)),
                _ => return Err(err("the prompt file after ':' is missing")),
            },
            "queue" => {
                let parts: Vec<&str> = arg.unwrap_or("").split(':').collect();
                match parts.as_slice() {
                    [q] if !q.is_empty() => {
                        Destination::Queue { queue: q.to_string(), priority: 0 }
                    }
                    [q, p] if !q.is_empty() => Destination::Queue {
                        queue: q.to_string(),
                        priority: parse_priority(text, p)?,
                    },
                    _ => return Err(err("write queue:NAME or queue:NAME:PRIORITY")),
                }
            }
            "agent" => {
                let parts: Vec<&str> = arg.unwrap_or("").split(':').collect();
                match parts.as_slice() {
                    [a] if !a.is_empty() => {
                        Destination::Agent { agent: a.to_string(), queue: None, priority: 0 }
                    }
                    [a, q] if !a.is_empty() && !q.is_empty() => Destination::Agent {
                        agent: a.to_string(),
                        queue: Some(q.to_string()),
                        priority: 0,
                    },
                    [a, q, p] if !a.is_empty() && !q.is_empty() => Destination::Agent {
                        agent: a.to_string(),
                        queue: Some(q.to_string()),
                        priority: parse_priority(text, p)?,
                    },
                    _ => {
                        return Err(err(
                            "write agent:ID, agent:ID:QUEUE or agent:ID:QUEUE:PRIORITY",
                        ))
                    }
                }
            }
            "" => return Err(err("the destination is empty")),
            _ => return Err(err("unknown kind")),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Ivr(n) => write!(f, "ivr:{n}"),
            Destination::Queue { queue, priority: 0 } => write!(f, "queue:{queue}"),
            Destination::Queue { queue, priority } => write!(f, "queue:{queue}:{priority}"),
            Destination::Extension(n) => write!(f, "extension:{n}"),
            Destination::Agent { agent, queue: None, .. } => write!(f, "agent:{agent}"),
            Destination::Agent { agent, queue: Some(q), priority: 0 } => {
                write!(f, "agent:{agent}:{q}")
            }
            Destination::Agent { agent, queue: Some(q), priority } => {
                write!(f, "agent:{agent}:{q}:{priority}")
            }
            Destination::Voicemail(b) => write!(f, "voicemail:{b}"),
            Destination::Fax(n) => write!(f, "fax:{n}"),
            Destination::Callback(q) => write!(f, "callback:{q}"),
            Destination::Busy => f.write_str("busy"),
            Destination::Message(p) => write!(f, "message:{}", p.display()),
            Destination::Hangup => f.write_str("hangup"),
            Destination::Conference(n) => write!(f, "conference:{n}"),
        }
    }
}

serde_via_str!(Destination);

/// What a menu key does: go to a destination (including another menu), or one of the two
/// menu-only actions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MenuAction {
    /// Leave this node for a destination; `ivr:<name>` enters a sub-menu.
    Go(Destination),
    /// `repeat`: play this menu again.
    Repeat,
    /// `back`: return to the menu that led here (the top menu repeats itself).
    Back,
}

impl FromStr for MenuAction {
    type Err = DestinationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "repeat" => Ok(MenuAction::Repeat),
            "back" => Ok(MenuAction::Back),
            _ => s.parse().map(MenuAction::Go).map_err(|mut e| {
                e.reason.push_str("; in menus also repeat or back");
                e
            }),
        }
    }
}

impl fmt::Display for MenuAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MenuAction::Go(d) => d.fmt(f),
            MenuAction::Repeat => f.write_str("repeat"),
            MenuAction::Back => f.write_str("back"),
        }
    }
}

serde_via_str!(MenuAction);

/// A day of the week, Monday first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// 0 for Monday ..= 6 for Sunday.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The day from its index (taken modulo 7).
    pub fn from_index(i: usize) -> Weekday {
        Weekday::ALL[i % 7]
    }

    /// The day before.
    pub fn previous(self) -> Weekday {
        Weekday::from_index(self.index() + 6)
    }

    /// The three-letter name used in the configuration.
    pub fn as_str(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self.index()]
    }
}

/// One line of a schedule: a set of weekdays and the time ranges they are open,
/// written `"mon-fri 08:30-12:00,13:30-18:00"`. A range whose end is not after its start
/// (`"fri 22:00-02:00"`) runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HoursSpec {
    /// Bit `d` set for weekday index `d` (Monday = 0).
    pub days: u8,
    /// Open ranges in minutes from the start of the day: `start < end`, `end` up to
    /// 2 × 1440 for ranges past midnight.
    pub ranges: Vec<(u32, u32)>,
}

/// Why a schedule line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid hours {text:?}: {reason} (write DAYS HH:MM-HH:MM[,HH:MM-HH:MM], e.g. \
     \"mon-fri 08:30-18:00\", days mon tue wed thu fri sat sun, ranges like mon-fri, lists \
     like sat,sun, or daily)"
)]
pub struct HoursError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

fn parse_day(s: &str) -> Option<Weekday> {
    Weekday::ALL.iter().copied().find(|d| d.as_str() == s)
}

/// `HH:MM` to minutes; `24:00` allowed when `end`.
fn parse_clock(s: &str, end: bool) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
        return None;
    }
    Some(h * 60 + m)
}

impl FromStr for HoursSpec {
    type Err = HoursError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| HoursError { text: text.to_string(), reason };
        let mut words = text.split_whitespace();
        let (Some(days_txt), Some(times_txt), None) = (words.next(), words.next(), words.next())
        else {
            return Err(err("expected the days, one space, then the times".into()));
        };
        let mut days = 0u8;
        if days_txt == "daily" {
            days = 0x7f;
        } else {
            for part in days_txt.split(',') {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (Some(a), Some(b)) = (parse_day(a), parse_day(b)) else {
                    return Err(err(format!("{part:?} is not a day or day range")));
                };
                // Ranges may wrap around the week: "fri-mon".
                let mut d = a;
                loop {
                    days |= 1 << d.index();
                    if d == b {
                        break;
                    }
                    d = Weekday::from_index(d.index() + 1);
                }
            }
        }
        let mut ranges = Vec::new();
        for part in times_txt.split(',') {
            let Some((a, b)) = part.split_once('-') else {
                return Err(err(format!("{part:?} is not a time range HH:MM-HH:MM")));
            };
            let start = parse_clock(a, false)
                .ok_or_else(|| err(format!("{a:?} is not a time 00:00..23:59")))?;
            let mut end = parse_clock(b, true)
                .ok_or_else(|| err(format!("{b:?} is not a time 00:00..24:00")))?;
            if end == start {
                return Err(err(format!("range {part} is empty")));
            }
            if end < start {
                end += 1440;
            }
            ranges.push((start, end));
        }
        Ok(HoursSpec { days, ranges })
    }
}

fn clock(m: u32) -> String {
    format!("{:02}:{:02}", (m / 60) % 24 + if m == 1440 { 24 } else { 0 }, m % 60)
}

impl fmt::Display for HoursSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = Weekday::ALL
            .iter()
            .filter(|d| self.days & (1 << d.index()) != 0)
            .map(|d| d.as_str())
            .collect();
        f.write_str(&days.join(","))?;
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { "," })?;
            write!(f, "{}-{}", clock(*a), clock(*b))?;
        }
        Ok(())
    }
}

serde_via_str!(HoursSpec);

/// The opening hours of a whole week, compiled from a schedule's lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeeklyHours {
    /// Per weekday (Monday first): open ranges starting that day, in minutes from its start
    /// (the end may pass 1440 into the next day).
    pub days: [Vec<(u32, u32)>; 7],
}

impl WeeklyHours {
    /// Compile a schedule's lines.
    pub fn new(lines: &[HoursSpec]) -> WeeklyHours {
        let mut w = WeeklyHours::default();
        for line in lines {
            for d in Weekday::ALL {
                if line.days & (1 << d.index()) != 0 {
                    w.days[d.index()].extend_from_slice(&line.ranges);
                }
            }
        }
        w
    }

    /// Whether it is open on `day` at `minute` (0..1440), counting ranges of the previous
    /// day that run past midnight.
    pub fn is_open(&self, day: Weekday, minute: u32) -> bool {
        self.days[day.index()].iter().any(|&(a, b)| a <= minute && minute < b)
            || self.days[day.previous().index()]
                .iter()
                .any(|&(a, b)| a <= minute + 1440 && minute + 1440 < b)
    }

    /// Whether `day` has opening hours of its own (a working day); a day without is a
    /// weekend day.
    pub fn is_working_day(&self, day: Weekday) -> bool {
        !self.days[day.index()].is_empty()
    }
}

/// A calendar date, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// Days since 1970-01-01.
    pub days: i64,
}

impl Date {
    /// The date of a (year, month 1..=12, day 1..=31), if it exists.
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        // Days from civil (proleptic Gregorian), years starting in March.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (i64::from(m) + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date { days: era * 146_097 + doe - 719_468 })
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i64, u32, u32) {
        let z = self.days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3).
        Weekday::from_index((self.days + 3).rem_euclid(7) as usize)
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Why a date could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {0:?} (write YYYY-MM-DD, e.g. \"2026-10-01\")")]
pub struct DateError(pub String);

impl FromStr for Date {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DateError(s.to_string());
        let mut it = s.split('-');
        let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(err());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(err());
        }
        let y: i64 = y.parse().map_err(|_| err())?;
        let m: u32 = m.parse().map_err(|_| err())?;
        let d: u32 = d.parse().map_err(|_| err())?;
        Date::from_ymd(y, m, d).ok_or_else(err)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

serde_via_str!(Date);

/// Which class an `[[inbound]]` rule belongs to; classes are tried in this order:
/// emergency, blacklist, vip, normal (config order within a class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// An ordinary routing rule.
    #[default]
    Normal,
    /// Emergency or priority numbers: tried first, even before the blacklist.
    Emergency,
    /// Callers to reject (`destination` is `busy`, `message:FILE` or `hangup`).
    Blacklist,
    /// Important callers: skip the IVR, go to a chosen agent or jump the queue.
    Vip,
}

/// `[[inbound]]`: an inbound routing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRule {
    /// A name shown in route decisions and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The rule's class.
    #[serde(default)]
    pub kind: RuleKind,
    /// Called numbers (DNIS/DID) matched exactly; empty with `dnis_prefix`: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dnis: Vec<String>,
    /// Called number prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dnis_prefix: Vec<String>,
    /// Calling numbers (ANI) matched exactly; empty with `ani_prefix`: any (also no ANI).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ani: Vec<String>,
    /// Calling number prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ani_prefix: Vec<String>,
    /// A `[[schedule]]` name: outside its hours the call goes to `after_hours`, `weekend` or
    /// `holiday` instead of `destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Where calls go (in working hours, when a schedule is set).
    pub destination: Destination,
    /// Where calls go outside working hours on a working day (required with `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hours: Option<Destination>,
    /// Where calls go on a day without working hours (default: `after_hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekend: Option<Destination>,
    /// Where calls go on a `[[holiday]]` (default: `after_hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holiday: Option<Destination>,
    /// Route a known caller to the agent who served them last, if within this many days
    /// (only when `destination` is a queue, in working hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_days: Option<u32>,
}

/// `[[schedule]]`: named working hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The name rules refer to.
    pub name: String,
    /// Open hours, e.g. `["mon-fri 08:30-18:00", "sat 09:00-12:00"]`.
    pub hours: Vec<HoursSpec>,
}

/// `[[holiday]]`: a closed day (or a run of days) for every schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayConfig {
    /// The (first) day.
    pub date: Date,
    /// The last day of a run of days (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Date>,
    /// A name for logs and decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A prompt played to callers before they go to the rule's `holiday` destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<PathBuf>,
}

impl HolidayConfig {
    /// Whether `d` is in this holiday.
    pub fn contains(&self, d: Date) -> bool {
        d >= self.date && d <= self.until.unwrap_or(self.date)
    }
}

/// What an `[[ivr]]` node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IvrKind {
    /// Play a prompt and act on one key.
    #[default]
    Menu,
    /// Play a prompt and collect a digit string (an account or card number).
    Collect,
}

/// How collected digits are validated (beyond their count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigitCheck {
    /// Digits 0-9 only, `min_digits..=max_digits` of them.
    #[default]
    Digits,
    /// As `digits`, and the Luhn (mod 10) check digit must be right (card numbers).
    Luhn,
}

fn default_ivr_timeout_s() -> u32 {
    5
}
fn default_ivr_retries() -> u32 {
    2
}
fn default_hangup() -> Destination {
    Destination::Hangup
}
fn default_min_collect() -> u32 {
    1
}
fn default_max_collect() -> u32 {
    20
}
fn default_terminator() -> String {
    "#".to_string()
}

/// `[[ivr]]`: one IVR node, a menu or a digit collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// The name destinations refer to (`ivr:NAME`).
    pub name: String,
    /// Menu or digit collection.
    #[serde(default)]
    pub kind: IvrKind,
    /// The prompt played on entry (8 kHz mono WAV).
    pub prompt: PathBuf,
    /// How long to wait for a key after the prompt ends, seconds.
    #[serde(default = "default_ivr_timeout_s")]
    pub timeout_s: u32,
    /// How many more tries the caller gets after a timeout or invalid input.
    #[serde(default = "default_ivr_retries")]
    pub retries: u32,
    /// Played before the prompt repeats after an invalid key (or digits that fail validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<PathBuf>,
    /// Played before the prompt repeats after a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_prompt: Option<PathBuf>,
    /// Where the call goes when the tries are used up by timeouts.
    #[serde(default = "default_hangup")]
    pub on_timeout: Destination,
    /// Where the call goes when the tries are used up by invalid input.
    #[serde(default = "default_hangup")]
    pub on_invalid: Destination,
    /// Menus: key (`0`-`9`, `*`, `#`, `A`-`D`) to action.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub choices: BTreeMap<String, MenuAction>,
    /// Collection: fewest digits accepted.
    #[serde(default = "default_min_collect")]
    pub min_digits: u32,
    /// Collection: most digits; reaching it ends the input.
    #[serde(default = "default_max_collect")]
    pub max_digits: u32,
    /// Collection: the key that ends the input early (`""` for none).
    #[serde(default = "default_terminator")]
    pub terminator: String,
    /// Collection: longest pause between digits, seconds (default `timeout_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_timeout_s: Option<u32>,
    /// Collection: the validation applied.
    #[serde(default)]
    pub validate: DigitCheck,
    /// Collection: the call data key the digits are attached under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_as: Option<String>,
    /// Collection: where the call goes after valid input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Destination>,
}

impl IvrConfig {
    /// The terminator key, if any.
    pub fn terminator_key(&self) -> Option<char> {
        self.terminator.chars().next()
    }

    /// Every prompt file of this node with its key.
    pub fn prompts(&self) -> Vec<(&'static str, &Path)> {
        let mut v = vec![("prompt", self.prompt.as_path())];
        if let Some(p) = &self.invalid_prompt {
            v.push(("invalid_prompt", p));
        }
        if let Some(p) = &self.timeout_prompt {
            v.push(("timeout_prompt", p));
        }
        v
    }
}

/// Whether `c` is a DTMF key.
pub fn is_dtmf_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// Why a prompt file cannot be played, if it cannot: missing, unreadable or not an 8 kHz mono
/// 16-bit PCM / A-law / µ-law WAV (checked with the engine's prompt loader). Relative paths
/// are relative to the daemon's working directory.
pub fn prompt_problem(path: &Path) -> Option<String> {
    crate::engine::prompt::load_wav(path).err().map(|e| e.to_string())
}

/// Why `queue` names no `[[queue]]` (by name or number), if it does not.
fn queue_problem(cfg: &Config, queue: &str) -> Option<String> {
    if cfg.queues.iter().any(|q| q.name == queue || q.number == queue) {
        return None;
    }
    let names: Vec<&str> = cfg.queues.iter().map(|q| q.name.as_str()).collect();
    Some(if names.is_empty() {
        format!("unknown queue {queue:?} (no [[queue]] is defined)")
    } else {
        format!("unknown queue {queue:?} (queues: {})", names.join(", "))
    })
}

fn number_problem(n: &str) -> Option<String> {
    if n.is_empty() {
        Some("the number must not be empty".into())
    } else if n.len() > 32 || !n.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
        Some(format!("{n:?} is not a number (0-9 * #, at most 32)"))
    } else {
        None
    }
}

/// Check the call-center routing and IVR sections; problems are pushed with their location.
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    let ivr_names: HashSet<&str> = cfg.ivr.iter().map(|n| n.name.as_str()).collect();
    let local_numbers: HashSet<&str> = cfg
        .extensions
        .iter()
        .map(|e| e.number.as_str())
        .chain(cfg.hunt_groups.iter().map(|h| h.number.as_str()))
        .collect();
    // A destination's own problems: unknown menu, unknown extension, bad message prompt.
    let check_dest = |p: &mut Vec<(Loc, String)>, l: Loc, d: &Destination| match d {
        Destination::Ivr(n) if !ivr_names.contains(n.as_str()) => {
            let mut known: Vec<&str> = ivr_names.iter().copied().collect();
            known.sort_unstable();
            p.push((
                l,
                if known.is_empty() {
                    format!("unknown IVR menu {n:?} (no [[ivr]] is defined)")
                } else {
                    format!("unknown IVR menu {n:?} (menus: {})", known.join(", "))
                },
            ));
        }
        Destination::Extension(n) if !local_numbers.contains(n.as_str()) => {
            p.push((
                l,
                format!("extension {n:?} is not an [[extension]] or [[hunt_group]] number"),
            ));
        }
        Destination::Queue { queue, .. } | Destination::Callback(queue) => {
            if let Some(why) = queue_problem(cfg, queue) {
                p.push((l, why));
            }
        }
        Destination::Agent { agent, queue, .. } => {
            if !cfg.agents.iter().any(|a| &a.id == agent) {
                p.push((l.clone(), format!("agent {agent:?} is not an [[agent]] id")));
            }
            if let Some(why) = queue.as_deref().and_then(|q| queue_problem(cfg, q)) {
                p.push((l, why));
            }
        }
        Destination::Message(path) => {
            if let Some(why) = prompt_problem(path) {
                p.push((l, why));
            }
        }
        _ => {}
    };

    let mut schedule_names = HashSet::new();
    for (i, s) in cfg.schedules.iter().enumerate() {
        if s.name.trim().is_empty() {
            p.push((Loc::item("schedule", i, &["name"]), "the name must not be empty".into()));
        } else if !schedule_names.insert(s.name.as_str()) {
            p.push((
                Loc::item("schedule", i, &["name"]),
                format!("schedule {:?} is defined twice", s.name),
            ));
        }
        if s.hours.is_empty() {
            p.push((
                Loc::item("schedule", i, &["hours"]),
                "a schedule needs at least one line of hours".into(),
            ));
        }
    }

    for (i, h) in cfg.holidays.iter().enumerate() {
        if let Some(u) = h.until {
            if u < h.date {
                p.push((
                    Loc::item("holiday", i, &["until"]),
                    format!("until {u} is before date {}", h.date),
                ));
            }
        }
        if let Some(g) = &h.greeting {
            if let Some(why) = prompt_problem(g) {
                p.push((Loc::item("holiday", i, &["greeting"]), why));
            }
        }
    }

    for (i, r) in cfg.inbound.iter().enumerate() {
        for (key, list) in [
            ("dnis", &r.dnis),
            ("dnis_prefix", &r.dnis_prefix),
            ("ani", &r.ani),
            ("ani_prefix", &r.ani_prefix),
        ] {
            for (j, n) in list.iter().enumerate() {
                if let Some(why) = number_problem(n) {
                    let mut l = Loc::item("inbound", i, &[key]);
                    l.path.push(Seg::Index(j));
                    p.push((l, why));
                }
            }
        }
        if let Some(s) = &r.schedule {
            if !schedule_names.contains(s.as_str()) {
                p.push((Loc::item("inbound", i, &["schedule"]), format!("unknown schedule {s:?}")));
            }
            if r.after_hours.is_none() {
                p.push((
                    Loc::item("inbound", i, &["after_hours"]),
                    "a rule with a schedule needs after_hours (weekend and holiday default to it)"
                        .into(),
                ));
            }
        } else {
            for key in ["after_hours", "weekend", "holiday"] {
                let set = match key {
                    "after_hours" => r.after_hours.is_some(),
                    "weekend" => r.weekend.is_some(),
                    _ => r.holiday.is_some(),
                };
                if set {
                    p.push((Loc::item("inbound", i, &[key]), format!("{key} needs a schedule")));
                }
            }
        }
        let dests = [
            ("destination", Some(&r.destination)),
            ("after_hours", r.after_hours.as_ref()),
            ("weekend", r.weekend.as_ref()),
            ("holiday", r.holiday.as_ref()),
        ];
        for (key, d) in dests {
            let Some(d) = d else { continue };
            check_dest(p, Loc::item("inbound", i, &[key]), d);
            if r.kind == RuleKind::Blacklist
                && !matches!(d, Destination::Busy | Destination::Message(_) | Destination::Hangup)
            {
                p.push((
                    Loc::item("inbound", i, &[key]),
                    format!("a blacklist rule must reject: busy, message:FILE or hangup, not {d}"),
                ));
            }
        }
        if let Some(days) = r.sticky_days {
            if !matches!(r.destination, Destination::Queue { .. }) {
                p.push((
                    Loc::item("inbound", i, &["sticky_days"]),
                    "sticky routing needs a queue as destination (its fallback)".into(),
                ));
            }
            if !(1..=3650).contains(&days) {
                p.push((
                    Loc::item("inbound", i, &["sticky_days"]),
                    format!("{days} days is out of range (allowed 1..=3650)"),
                ));
            }
        }
    }

    let mut seen = HashSet::new();
    for (i, n) in cfg.ivr.iter().enumerate() {
        let at = |key: &str| Loc::item("ivr", i, &[key]);
        if n.name.trim().is_empty() {
            p.push((at("name"), "the name must not be empty".into()));
        } else if !seen.insert(n.name.as_str()) {
            p.push((at("name"), format!("IVR menu {:?} is defined twice", n.name)));
        }
        for (key, path) in n.prompts() {
            if let Some(why) = prompt_problem(path) {
                p.push((at(key), why));
            }
        }
        if !(1..=60).contains(&n.timeout_s) {
            p.push((
                at("timeout_s"),
                format!("{} s is out of range (allowed 1..=60 s)", n.timeout_s),
            ));
        }
        if n.retries > 9 {
            p.push((at("retries"), format!("{} is out of range (allowed 0..=9)", n.retries)));
        }
        check_dest(p, at("on_timeout"), &n.on_timeout);
        check_dest(p, at("on_invalid"), &n.on_invalid);
        match n.kind {
            IvrKind::Menu => {
                if n.choices.is_empty() {
                    p.push((at("choices"), "a menu needs at least one choice".into()));
                }
                for (key, action) in &n.choices {
                    let l = Loc::item("ivr", i, &["choices", key]);
                    let mut cs = key.chars();
                    match (cs.next(), cs.next()) {
                        (Some(c), None) if is_dtmf_key(c) => {}
                        _ => p.push((
                            l.clone(),
                            format!("choice key {key:?} must be one DTMF key: 0-9, *, #, A-D"),
                        )),
                    }
                    if let MenuAction::Go(d) = action {
                        check_dest(p, l, d);
                    }
                }
                for (key, set) in [
                    ("next", n.next.is_some()),
                    ("store_as", n.store_as.is_some()),
                    ("digit_timeout_s", n.digit_timeout_s.is_some()),
                ] {
                    if set {
                        p.push((at(key), format!("{key} applies only to kind = \"collect\"")));
                    }
                }
            }
            IvrKind::Collect => {
                if !n.choices.is_empty() {
                    p.push((at("choices"), "choices apply only to kind = \"menu\"".into()));
                }
                match &n.next {
                    None => p.push((
                        at("next"),
                        "a collect node needs next (where valid input goes)".into(),
                    )),
                    Some(d) => check_dest(p, at("next"), d),
                }
                if n.min_digits == 0
                    || n.min_digits > n.max_digits
                    || n.max_digits > MAX_COLLECT_DIGITS
                {
                    p.push((
                        at("min_digits"),
                        format!(
                            "min_digits {} and max_digits {} must satisfy 1 <= min <= max <= {MAX_COLLECT_DIGITS}",
                            n.min_digits, n.max_digits
                        ),
                    ));
                }
                let mut t = n.terminator.chars();
                match (t.next(), t.next()) {
                    (None, _) => {}
                    (Some(c), None) if is_dtmf_key(c) && !c.is_ascii_digit() => {}
                    _ => p.push((
                        at("terminator"),
                        format!(
                            "terminator {:?} must be one non-digit DTMF key (* # A-D) or \"\"",
                            n.terminator
                        ),
                    )),
                }
                if let Some(s) = n.digit_timeout_s {
                    if !(1..=60).contains(&s) {
                        p.push((
                            at("digit_timeout_s"),
                            format!("{s} s is out of range (allowed 1..=60 s)"),
                        ));
                    }
                }
                if n.store_as.as_deref().is_some_and(|k| k.trim().is_empty()) {
                    p.push((at("store_as"), "the call data key must not be empty".into()));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "callcenter_routing_tests.rs"]
mod tests;
