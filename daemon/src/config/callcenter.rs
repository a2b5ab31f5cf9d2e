//! Call-center configuration: `[[queue]]` (ACD queues) and `[[agent]]` (agents who log in to
//! them), and their checks.
//!
//! The structs mirror the TOML one to one; `check` is called from the configuration checks and
//! reports problems with the key path they concern. Queues and agents are read from the main
//! file only (an include file may not hold them). The engine that uses them is
//! [`crate::callcenter::acd`].

use super::check::{Loc, Seg};
use super::model::Config;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Longest queue or agent number.
pub const MAX_CC_NUMBER_LEN: usize = 20;
/// Highest skill level (levels run 1..=10).
pub const MAX_SKILL_LEVEL: u8 = 10;
/// Highest caller priority a rule may give (0 is the normal priority).
pub const MAX_PRIORITY: u8 = 100;

fn default_ring_timeout_s() -> u32 {
    20
}
fn default_announce_interval_s() -> u32 {
    60
}

/// How a queue picks the agent for the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStrategy {
    /// The agent who has been ready the longest.
    #[default]
    LongestIdle,
    /// Members in turn, starting after the one who was offered the last call.
    RoundRobin,
    /// The agent who has answered the fewest calls since logging in.
    FewestCalls,
    /// The agent with the least talk time since logging in.
    LeastTalkTime,
    /// Every ready member at once; the first to answer takes the call.
    RingAll,
    /// The agent with the highest levels in the skills the call needs.
    Skills,
}

impl QueueStrategy {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStrategy::LongestIdle => "longest_idle",
            QueueStrategy::RoundRobin => "round_robin",
            QueueStrategy::FewestCalls => "fewest_calls",
            QueueStrategy::LeastTalkTime => "least_talk_time",
            QueueStrategy::RingAll => "ring_all",
            QueueStrategy::Skills => "skills",
        }
    }
}

/// Where a call goes when it leaves a queue unanswered (maximum wait or maximum length).
///
/// Written in the file as `"queue:601"` (a queue number or name), `"extension:2001"`, `"voicemail"` (the queue's own
/// mailbox), `"voicemail:8001"`, `"callback"` or `"hangup"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum OverflowTarget {
    /// Another queue, by number (or name).
    Queue(String),
    /// An extension or hunt group, by number.
    Extension(String),
    /// A voicemail box: the given number, or the queue's own (`None`).
    Voicemail(Option<String>),
    /// The automatic attendant that takes the caller's number for a callback.
    Callback,
    /// Clear the call (the caller hears the release).
    #[default]
    Hangup,
}

/// Why an overflow target does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowTargetError(String);

impl fmt::Display for OverflowTargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an overflow target (allowed: \"queue:NUMBER\", \"extension:NUMBER\", \
             \"voicemail\", \"voicemail:NUMBER\", \"callback\", \"hangup\")",
            self.0
        )
    }
}

impl std::error::Error for OverflowTargetError {}

impl FromStr for OverflowTarget {
    type Err = OverflowTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || OverflowTargetError(s.to_string());
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) if !a.is_empty() => (k, Some(a.to_string())),
            Some(_) => return Err(err()),
            None => (s, None),
        };
        match (kind, arg) {
            ("queue", Some(n)) => Ok(OverflowTarget::Queue(n)),
            ("extension", Some(n)) => Ok(OverflowTarget::Extension(n)),
            ("voicemail", n) => Ok(OverflowTarget::Voicemail(n)),
            ("callback", None) => Ok(OverflowTarget::Callback),
            ("hangup", None) => Ok(OverflowTarget::Hangup),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for OverflowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverflowTarget::Queue(n) => write!(f, "queue:{n}"),
            OverflowTarget::Extension(n) => write!(f, "extension:{n}"),
            OverflowTarget::Voicemail(None) => f.write_str("voicemail"),
            OverflowTarget::Voicemail(Some(n)) => write!(f, "voicemail:{n}"),
            OverflowTarget::Callback => f.write_str("callback"),
            OverflowTarget::Hangup => f.write_str("hangup"),
        }
    }
}

impl Serialize for OverflowTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OverflowTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `[[queue.priority]]`: callers who get a higher place in the queue (VIP or repair lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRule {
    /// Calling numbers matched exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<String>,
    /// Calling-number prefixes (a whole area or a customer's number block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// The priority these callers get (1..=100; higher is served first; others have 0).
    pub priority: u8,
}

/// `[[queue]]`: an ACD queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The number that reaches the queue (routing and overflow targets use it).
    pub number: String,
    /// A display name (`sales`, `repairs`), shown in reports.
    pub name: String,
    /// How an agent is picked.
    #[serde(default)]
    pub strategy: QueueStrategy,
    /// Skills an agent needs to take this queue's calls: skill name → minimum level (1..=10).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skills: BTreeMap<String, u8>,
    /// Seconds an agent's phone rings before the call moves to the next agent (5..=600).
    #[serde(default = "default_ring_timeout_s")]
    pub ring_timeout_s: u32,
    /// Seconds of after-call work (wrap-up) before the agent is ready again (0..=3600).
    #[serde(default)]
    pub wrapup_s: u32,
    /// Longest wait before the call overflows, seconds; 0 = no limit (at most 86400).
    #[serde(default)]
    pub max_wait_s: u32,
    /// Most calls waiting; a further call overflows at once; 0 = no limit (at most 10000).
    #[serde(default)]
    pub max_length: u32,
    /// Where overflowing calls go (default `hangup`).
    #[serde(default)]
    pub overflow: OverflowTarget,
    /// Tell waiting callers their position in the queue.
    #[serde(default)]
    pub announce_position: bool,
    /// Tell waiting callers the estimated wait.
    #[serde(default)]
    pub announce_wait: bool,
    /// Seconds between announcements (10..=3600); the first comes on entry.
    #[serde(default = "default_announce_interval_s")]
    pub announce_interval_s: u32,
    /// Music on hold for waiting callers (a WAV file); none = the default tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music_on_hold: Option<PathBuf>,
    /// The recorded words position and wait announcements are made of: a directory with
    /// `position.wav` ("you are caller number"), `wait.wav` ("the expected wait is about"),
    /// `minutes.wav` and `0.wav`..`9.wav` (numbers are said digit by digit). Without it,
    /// nothing is announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_prompts: Option<PathBuf>,
    /// Priority rules for callers (VIP, repair).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<PriorityRule>,
    /// Call recording for calls answered from this queue: `never` (default), `on_demand`,
    /// `always`.
    #[serde(default, skip_serializing_if = "super::recording::RecordingPolicy::is_never")]
    pub recording: super::recording::RecordingPolicy,
    /// When this percentage (1..=100) of the incoming trunk group's lines is busy, new
    /// callers are not queued: the callback attendant takes their number instead (a burst
    /// after a TV advert). Unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_trunk_busy_percent: Option<u8>,
}

/// `[[agent]]`: a person who logs in to queues from any phone (free seating).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent number typed at login.
    pub id: String,
    /// The login PIN (4..=8 digits).
    pub pin: String,
    /// The agent's name.
    pub name: String,
    /// Skills: skill name → level (1..=10).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skills: BTreeMap<String, u8>,
    /// Queue numbers the agent takes calls from once logged in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    /// Queue numbers whose agents this agent may supervise (listen, whisper, barge, force
    /// release, force transfer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supervisor_of: Vec<String>,
}

type Problems = Vec<(Loc, String)>;

fn with_index(mut l: Loc, i: usize) -> Loc {
    l.path.push(Seg::Index(i));
    l
}

fn range(p: &mut Problems, l: Loc, value: u64, lo: u64, hi: u64, unit: &str) {
    if value < lo || value > hi {
        p.push((l, format!("{value} {unit} is out of range (allowed {lo}..={hi} {unit})")));
    }
}

/// Why `number` is not a usable queue, agent or caller number, if it is not one.
fn bad_digits(number: &str, what: &str) -> Option<String> {
    if number.is_empty() {
        Some(format!("the {what} must not be empty"))
    } else if number.len() > MAX_CC_NUMBER_LEN {
        Some(format!("{what} {number:?} is longer than {MAX_CC_NUMBER_LEN} digits"))
    } else if !number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
        Some(format!("{what} {number:?} is not a number (allowed characters: 0-9 * #)"))
    } else {
        None
    }
}

fn check_skills(p: &mut Problems, base: &Loc, skills: &BTreeMap<String, u8>, what: &str) {
    for (name, level) in skills {
        let mut l = base.clone();
        l.path.push(Seg::Key(name.clone()));
        if name.trim().is_empty()
            || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            p.push((l.clone(), format!("skill name {name:?} must be letters, digits, '_' or '-'")));
        }
        if !(1..=MAX_SKILL_LEVEL).contains(level) {
            p.push((
                l,
                format!("{what} {level} for skill {name:?} is out of range (allowed 1..=10)"),
            ));
        }
    }
}

fn queue_list(cfg: &Config) -> String {
    let numbers: Vec<&str> = cfg.queues.iter().map(|q| q.number.as_str()).collect();
    if numbers.is_empty() {
        "no [[queue]] is defined".into()
    } else {
        format!("queues: {}", numbers.join(", "))
    }
}

/// The index of the queue a reference names: a queue number, else a queue name.
pub fn find_queue(cfg: &Config, reference: &str) -> Option<usize> {
    find_queue_in(&cfg.queues, reference)
}

/// [`find_queue`] over a list of queues.
pub fn find_queue_in(queues: &[QueueConfig], reference: &str) -> Option<usize> {
    queues
        .iter()
        .position(|q| q.number == reference)
        .or_else(|| queues.iter().position(|q| q.name == reference))
}

/// Check `[[queue]]` and `[[agent]]`: numbers, names, ranges, references between them and to
/// extensions, duplicate ids, PIN format and overflow loops.
pub(super) fn check(cfg: &Config, p: &mut Vec<(Loc, String)>) {
    check_queues(cfg, p);
    check_overflow_loops(cfg, p);
    check_agents(cfg, p);
}

/// The announcement prompt files queue `q` needs (none without `announce_prompts`).
pub fn announce_files(q: &QueueConfig) -> Vec<PathBuf> {
    let Some(dir) = &q.announce_prompts else { return Vec::new() };
    let mut names: Vec<String> = (0..10).map(|d| format!("{d}.wav")).collect();
    if q.announce_position {
        names.push("position.wav".into());
    }
    if q.announce_wait {
        names.push("wait.wav".into());
        names.push("minutes.wav".into());
    }
    names.into_iter().map(|n| dir.join(n)).collect()
}

fn check_queues(cfg: &Config, p: &mut Problems) {
    let mut used: HashMap<&str, String> = HashMap::new();
    for e in &cfg.extensions {
        used.insert(&e.number, format!("the extension on {}", e.port));
    }
    for h in &cfg.hunt_groups {
        used.entry(&h.number).or_insert_with(|| "a hunt group".to_string());
    }
    let dialable: HashSet<&str> = used.keys().copied().collect();
    let queue_numbers: HashSet<&str> = cfg.queues.iter().map(|q| q.number.as_str()).collect();
    let mut names: HashSet<&str> = HashSet::new();
    for (i, q) in cfg.queues.iter().enumerate() {
        let at = |keys: &[&str]| Loc::item("queue", i, keys);
        if let Some(why) = bad_digits(&q.number, "queue number") {
            p.push((at(&["number"]), why));
        } else if let Some(first) = used.get(q.number.as_str()) {
            p.push((at(&["number"]), format!("number {} is already used by {first}", q.number)));
        } else {
            used.insert(&q.number, format!("queue {:?}", q.name));
        }
        if q.name.trim().is_empty() {
            p.push((at(&["name"]), "the name must not be empty".into()));
        } else if !names.insert(&q.name) {
            p.push((at(&["name"]), format!("queue name {:?} is used twice", q.name)));
        } else if q.name != q.number && queue_numbers.contains(q.name.as_str()) {
            p.push((
                at(&["name"]),
                format!(
                    "queue name {:?} is another queue's number (references would be ambiguous)",
                    q.name
                ),
            ));
        }
        check_skills(p, &at(&["skills"]), &q.skills, "minimum level");
        range(p, at(&["ring_timeout_s"]), q.ring_timeout_s.into(), 5, 600, "s");
        range(p, at(&["wrapup_s"]), q.wrapup_s.into(), 0, 3600, "s");
        range(p, at(&["max_wait_s"]), q.max_wait_s.into(), 0, 86_400, "s");
        range(p, at(&["max_length"]), q.max_length.into(), 0, 10_000, "calls");
        if q.announce_position || q.announce_wait {
            range(p, at(&["announce_interval_s"]), q.announce_interval_s.into(), 10, 3600, "s");
        }
        match &q.overflow {
            OverflowTarget::Queue(n) if n == &q.number || n == &q.name => {
                p.push((at(&["overflow"]), "a queue cannot overflow to itself".into()));
            }
            OverflowTarget::Queue(n) if find_queue(cfg, n).is_none() => {
                p.push((
                    at(&["overflow"]),
                    format!("queue {n} does not exist ({})", queue_list(cfg)),
                ));
            }
            OverflowTarget::Extension(n) if !dialable.contains(n.as_str()) => {
                p.push((
                    at(&["overflow"]),
                    format!("{n} is neither an extension nor a hunt group number"),
                ));
            }
            OverflowTarget::Voicemail(Some(n)) => {
                if let Some(why) = bad_digits(n, "mailbox number") {
                    p.push((at(&["overflow"]), why));
                }
            }
            _ => {}
        }
        if q.overflow != OverflowTarget::Hangup && q.max_wait_s == 0 && q.max_length == 0 {
            p.push((
                at(&["overflow"]),
                format!(
                    "overflow = \"{}\" never applies: set max_wait_s or max_length",
                    q.overflow
                ),
            ));
        }
        if let Some(dir) = &q.announce_prompts {
            let missing: Vec<String> = announce_files(q)
                .into_iter()
                .filter(|f| !f.is_file())
                .map(|f| f.file_name().map_or(String::new(), |n| n.to_string_lossy().into()))
                .collect();
            if !dir.is_dir() {
                p.push((
                    at(&["announce_prompts"]),
                    format!("{} is not a directory", dir.display()),
                ));
            } else if !missing.is_empty() {
                p.push((
                    at(&["announce_prompts"]),
                    format!("{} lacks {}", dir.display(), missing.join(", ")),
                ));
            }
        }
        if let Some(path) = &q.music_on_hold {
            let wav = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
            if !wav {
                p.push((
                    at(&["music_on_hold"]),
                    format!("{} is not a WAV file (the name must end in .wav)", path.display()),
                ));
            }
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for (j, rule) in q.priority.iter().enumerate() {
            let r = |k: &str| {
                let mut l = with_index(at(&["priority"]), j);
                l.path.push(Seg::Key(k.into()));
                l
            };
            if rule.callers.is_empty() && rule.prefixes.is_empty() {
                p.push((
                    with_index(at(&["priority"]), j),
                    "a priority rule needs callers or prefixes".into(),
                ));
            }
            range(p, r("priority"), rule.priority.into(), 1, MAX_PRIORITY.into(), "");
            for (key, list) in [("callers", &rule.callers), ("prefixes", &rule.prefixes)] {
                for (k, n) in list.iter().enumerate() {
                    if let Some(why) = bad_digits(n, "caller number") {
                        p.push((with_index(r(key), k), why));
                    } else if key == "callers" && !seen.insert(n) {
                        p.push((
                            with_index(r(key), k),
                            format!("caller {n} is listed in two priority rules of this queue"),
                        ));
                    }
                }
            }
        }
    }
}

/// Queues that overflow to queues in a circle would pass a caller round for ever.
fn check_overflow_loops(cfg: &Config, p: &mut Problems) {
    let next = |i: usize| match &cfg.queues[i].overflow {
        OverflowTarget::Queue(n) => find_queue(cfg, n),
        _ => None,
    };
    for start in 0..cfg.queues.len() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(n) = next(at) {
            if n == start {
                if path.iter().all(|&k| k >= start) && path.len() > 1 {
                    let numbers: Vec<&str> =
                        path.iter().map(|&k| cfg.queues[k].number.as_str()).collect();
                    p.push((
                        Loc::item("queue", start, &["overflow"]),
                        format!(
                            "queues overflow in a circle ({} -> {}): a caller would never leave",
                            numbers.join(" -> "),
                            cfg.queues[start].number
                        ),
                    ));
                }
                break;
            }
            if path.contains(&n) {
                break;
            }
            path.push(n);
            at = n;
        }
    }
}

fn check_agents(cfg: &Config, p: &mut Problems) {
    let mut ids: HashSet<&str> = HashSet::new();
    for (i, a) in cfg.agents.iter().enumerate() {
        let at = |keys: &[&str]| Loc::item("agent", i, keys);
        if let Some(why) = bad_digits(&a.id, "agent number") {
            p.push((at(&["id"]), why));
        } else if !ids.insert(&a.id) {
            p.push((at(&["id"]), format!("agent {} is defined twice", a.id)));
        }
        if !(4..=8).contains(&a.pin.len()) || !a.pin.chars().all(|c| c.is_ascii_digit()) {
            p.push((at(&["pin"]), "the PIN must be 4 to 8 digits (0-9)".into()));
        }
        if a.name.trim().is_empty() {
            p.push((at(&["name"]), "the name must not be empty".into()));
        }
        check_skills(p, &at(&["skills"]), &a.skills, "level");
        for (key, list) in [("queues", &a.queues), ("supervisor_of", &a.supervisor_of)] {
            let mut seen = HashSet::new();
            for (j, n) in list.iter().enumerate() {
                let l = with_index(at(&[key]), j);
                match find_queue(cfg, n) {
                    None => p.push((l, format!("queue {n} does not exist ({})", queue_list(cfg)))),
                    Some(q) if !seen.insert(q) => {
                        p.push((l, format!("queue {n} is listed twice")));
                    }
                    Some(_) => {}
                }
            }
        }
        for (j, n) in a.queues.iter().enumerate() {
            let Some(q) = find_queue(cfg, n).map(|k| &cfg.queues[k]) else { continue };
            let missing: Vec<String> = q
                .skills
                .iter()
                .filter(|(s, lvl)| a.skills.get(*s).is_none_or(|have| have < lvl))
                .map(|(s, lvl)| format!("{s} >= {lvl}"))
                .collect();
            if !missing.is_empty() {
                p.push((
                    with_index(at(&["queues"]), j),
                    format!(
                        "agent {} lacks the skills queue {n} requires ({}): they would never get \
                         its calls",
                        a.id,
                        missing.join(", ")
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
