//! `cardpbx report queues|agents|hourly|ivr|cdr|recordings|staffing`: reports computed from the
//! store, through a read-only connection (it works while the daemon runs). docs/reports.md gives
//! every formula.

use super::time::{format_datetime, hour_start, now_utc_ms, parse_datetime};
use super::{CdrRecord, Store, StoreError};
use rusqlite::params;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

/// How far past the end of the range the outcome of a call that entered a queue (or the end of
/// an agent's talk and wrap-up) is looked for.
const OUTCOME_GRACE_MS: i64 = 24 * 3_600_000;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    /// Per queue: offered, answered, abandoned, service level, ASA, AHT, abandonment.
    Queues,
    /// Per agent: calls, talk, idle, wrap-up and not-ready time.
    Agents,
    /// Per hour: call and queue volumes.
    Hourly,
    /// Per IVR node: visits, drop-outs, exits.
    Ivr,
    /// The call detail records themselves.
    Cdr,
    /// The call recordings: call, numbers, agent, queue, start, length, file.
    Recordings,
    /// Per hour of day: measured load and the agents needed (Erlang C, and Erlang A).
    Staffing,
}

/// `cardpbx report ...` arguments.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: ReportKind,
    /// Start of the period (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], local time; default: today).
    #[arg(long, value_name = "DATE|DATETIME")]
    pub from: Option<String>,
    /// End of the period, exclusive (default: now; a date alone means its midnight).
    #[arg(long, value_name = "DATE|DATETIME")]
    pub to: Option<String>,
    /// The database file (default: `system.database` of --config, else ./spool/cardpbx.db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Configuration file naming the database.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Service level threshold: the share of calls answered within this many seconds.
    #[arg(long, default_value_t = 20)]
    pub sl_seconds: u32,
    /// Print CSV.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Read and print times in UTC instead of the local zone.
    #[arg(long)]
    pub utc: bool,
    /// The `staffing` report's options.
    #[command(flatten)]
    pub staffing: super::staffing::StaffingArgs,
}

/// The period and settings of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// Start, UTC ms (inclusive).
    pub from_ms: i64,
    /// End, UTC ms (exclusive).
    pub to_ms: i64,
    /// The time now, UTC ms: agent states still open are counted up to `min(to, now)`.
    pub now_ms: i64,
    /// The zone the hours and printed times are in, seconds east of UTC.
    pub offset_s: i64,
    /// Service level threshold, seconds.
    pub sl_seconds: u32,
}

/// One queue's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    /// The queue.
    pub queue: String,
    /// Callers who entered the queue in the period.
    pub offered: u64,
    /// Of those, answered by an agent.
    pub answered: u64,
    /// Answered within the service level threshold.
    pub answered_in_sl: u64,
    /// Hung up while waiting.
    pub abandoned: u64,
    /// Left at the maximum wait.
    pub timed_out: u64,
    /// Moved on to another destination.
    pub overflowed: u64,
    /// Left for a callback.
    pub callbacks: u64,
    /// Still waiting (no outcome yet).
    pub waiting: u64,
    /// answered_in_sl / offered.
    pub service_level: Option<f64>,
    /// Average speed of answer: mean wait of answered calls, s.
    pub asa_s: Option<f64>,
    /// Average handling time: mean talk + wrap-up of answered calls, s.
    pub aht_s: Option<f64>,
    /// abandoned / offered.
    pub abandon_rate: Option<f64>,
    /// Mean wait of abandoned calls, s.
    pub avg_abandon_s: Option<f64>,
}

/// One agent's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    /// The agent.
    pub agent: String,
    /// Calls answered (talk_start events) in the period.
    pub calls: u64,
    /// Calls rung but not answered.
    pub no_answer: u64,
    /// Time logged in, s.
    pub logged_in_s: f64,
    /// Time talking, s.
    pub talk_s: f64,
    /// Time ready and waiting for a call, s.
    pub idle_s: f64,
    /// Time with a call ringing, s.
    pub ringing_s: f64,
    /// Time in after-call work, s.
    pub wrapup_s: f64,
    /// Time not ready, s.
    pub not_ready_s: f64,
    /// (talk + wrap-up) / (logged in - not ready).
    pub occupancy: Option<f64>,
}

/// One hour's volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourRow {
    /// The hour's start, local time (`YYYY-MM-DD HH:00`).
    pub hour: String,
    /// The hour's start, UTC ms.
    pub hour_ms: i64,
    /// Calls (CDRs) that started in the hour.
    pub calls: u64,
    /// Of those, answered.
    pub calls_answered: u64,
    /// Callers who entered a queue in the hour.
    pub queue_offered: u64,
    /// Of those, answered.
    pub queue_answered: u64,
    /// Of those, abandoned.
    pub queue_abandoned: u64,
}

/// One IVR node's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IvrRow {
    /// The node.
    pub node: String,
    /// Times a call passed through it.
    pub visits: u64,
    /// Times the caller hung up in it.
    pub dropouts: u64,
    /// dropouts / visits.
    pub dropout_rate: f64,
    /// Mean time in the node, s.
    pub avg_s_in_node: f64,
    /// How often each exit was taken.
    pub exits: BTreeMap<String, u64>,
}

/// A computed report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// `queues`.
    Queues(Vec<QueueRow>),
    /// `agents`.
    Agents(Vec<AgentRow>),
    /// `hourly`.
    Hourly(Vec<HourRow>),
    /// `ivr`.
    Ivr(Vec<IvrRow>),
    /// `cdr`.
    Cdr(Vec<CdrRecord>),
    /// `recordings`.
    Recordings(Vec<super::RecordingRecord>),
    /// `staffing`.
    Staffing(Vec<super::staffing::StaffingRow>),
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean_s(sum_ms: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum_ms as f64 / n as f64 / 1000.0)
}

/// What became of one caller in one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Waiting,
    Answered { wait_ms: i64 },
    Abandoned { wait_ms: i64 },
    TimedOut,
    Overflowed,
    Callback,
}

/// Each (queue, call) that entered a queue in the period, with when it entered and its first
/// outcome (looked for up to a day past the end).
fn queue_calls(
    store: &Store,
    o: &ReportOptions,
) -> Result<Vec<(String, u64, i64, Outcome)>, StoreError> {
    let mut st = store.connection().prepare(
        "SELECT ts_ms, queue, call_id, event, wait_ms FROM queue_events
         WHERE ts_ms >= ?1 AND ts_ms < ?2 ORDER BY ts_ms, id",
    )?;
    let rows = st.query_map(params![o.from_ms, o.to_ms.saturating_add(OUTCOME_GRACE_MS)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)? as u64,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut calls: Vec<(String, u64, i64, Outcome)> = Vec::new();
    let mut open: HashMap<(String, u64), usize> = HashMap::new();
    for row in rows {
        let (ts, queue, call, event, wait_ms) = row?;
        let key = (queue, call);
        if event == "enter" {
            if ts < o.to_ms {
                open.insert(key.clone(), calls.len());
                calls.push((key.0, key.1, ts, Outcome::Waiting));
            }
            continue;
        }
        let outcome = match event.as_str() {
            "answer" => Outcome::Answered { wait_ms },
            "abandon" => Outcome::Abandoned { wait_ms },
            "timeout" => Outcome::TimedOut,
            "overflow" => Outcome::Overflowed,
            "callback" => Outcome::Callback,
            _ => continue,
        };
        if let Some(i) = open.remove(&key) {
            calls[i].3 = outcome;
        }
    }
    Ok(calls)
}

/// Talk and wrap-up time per call, from the agent events (talk_start..talk_end of the call,
/// and the wrap-up that follows its talk_end on the same agent).
pub(super) fn handling_ms(
    store: &Store,
    o: &ReportOptions,
) -> Result<HashMap<u64, i64>, StoreError> {
    let mut st = store.connection().prepare(
        "SELECT ts_ms, agent, event, call_id FROM agent_events
         WHERE ts_ms >= ?1 AND ts_ms < ?2 AND event IN
           ('talk_start', 'talk_end', 'wrapup_start', 'wrapup_end', 'logout')
         ORDER BY ts_ms, id",
    )?;
    let rows = st.query_map(params![o.from_ms, o.to_ms.saturating_add(OUTCOME_GRACE_MS)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<i64>>(3)?.map(|c| c as u64),
        ))
    })?;
    let mut handled: HashMap<u64, i64> = HashMap::new();
    // Per agent: the call talking (and since when), the last call talked, wrap-up start.
    let mut talk: HashMap<String, (u64, i64)> = HashMap::new();
    let mut last_call: HashMap<String, u64> = HashMap::new();
    let mut wrap: HashMap<String, (u64, i64)> = HashMap::new();
    for row in rows {
        let (ts, agent, event, call) = row?;
        match event.as_str() {
            "talk_start" => {
                if let Some(c) = call {
                    talk.insert(agent, (c, ts));
                }
            }
            "talk_end" => {
                if let Some((c, t0)) = talk.remove(&agent) {
                    *handled.entry(c).or_default() += ts - t0;
                    last_call.insert(agent, c);
                }
            }
            "wrapup_start" => {
                if let Some(c) = call.or_else(|| last_call.get(&agent).copied()) {
                    wrap.insert(agent, (c, ts));
                }
            }
            "wrapup_end" | "logout" => {
                if let Some((c, t0)) = wrap.remove(&agent) {
                    *handled.entry(c).or_default() += ts - t0;
                }
                if event == "logout" {
                    talk.remove(&agent);
                }
            }
            _ => {}
        }
    }
    Ok(handled)
}

/// The `queues` report.
///
/// # Errors
/// A failed query.
pub fn queues(store: &Store, o: &ReportOptions) -> Result<Vec<QueueRow>, StoreError> {
    let calls = queue_calls(store, o)?;
    let handled = handling_ms(store, o)?;
    let sl_ms = i64::from(o.sl_seconds) * 1000;
    #[derive(Default)]
    struct Acc {
        offered: u64,
        answered: u64,
        in_sl: u64,
        abandoned: u64,
        timed_out: u64,
        overflowed: u64,
        callbacks: u64,
        waiting: u64,
        answer_wait_ms: i64,
        abandon_wait_ms: i64,
        handled_ms: i64,
        handled_n: u64,
    }
    let mut by_queue: BTreeMap<String, Acc> = BTreeMap::new();
    for (queue, call, _, outcome) in calls {
        let a = by_queue.entry(queue).or_default();
        a.offered += 1;
        match outcome {
            Outcome::Waiting => a.waiting += 1,
            Outcome::Answered { wait_ms } => {
                a.answered += 1;
                a.answer_wait_ms += wait_ms;
                if wait_ms <= sl_ms {
                    a.in_sl += 1;
                }
                if let Some(h) = handled.get(&call) {
                    a.handled_ms += h;
                    a.handled_n += 1;
                }
            }
            Outcome::Abandoned { wait_ms } => {
                a.abandoned += 1;
                a.abandon_wait_ms += wait_ms;
            }
            Outcome::TimedOut => a.timed_out += 1,
            Outcome::Overflowed => a.overflowed += 1,
            Outcome::Callback => a.callbacks += 1,
        }
    }
    Ok(by_queue
        .into_iter()
        .map(|(queue, a)| QueueRow {
            queue,
            offered: a.offered,
            answered: a.answered,
            answered_in_sl: a.in_sl,
            abandoned: a.abandoned,
            timed_out: a.timed_out,
            overflowed: a.overflowed,
            callbacks: a.callbacks,
            waiting: a.waiting,
            service_level: ratio(a.in_sl, a.offered),
            asa_s: mean_s(a.answer_wait_ms, a.answered),
            aht_s: mean_s(a.handled_ms, a.handled_n),
            abandon_rate: ratio(a.abandoned, a.offered),
            avg_abandon_s: mean_s(a.abandon_wait_ms, a.abandoned),
        })
        .collect())
}

/// An agent's state, as the agent events make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentState {
    LoggedOut,
    Idle,
    NotReady,
    Ringing,
    Talking,
    Wrapup,
}

fn state_after(event: &str, before: AgentState) -> AgentState {
    match event {
        "login" | "not_ready" => AgentState::NotReady,
        "logout" => AgentState::LoggedOut,
        "ready" | "talk_end" | "wrapup_end" | "no_answer" => AgentState::Idle,
        "ringing" => AgentState::Ringing,
        "talk_start" => AgentState::Talking,
        "wrapup_start" => AgentState::Wrapup,
        _ => before,
    }
}

/// The `agents` report.
///
/// # Errors
/// A failed query.
pub fn agents(store: &Store, o: &ReportOptions) -> Result<Vec<AgentRow>, StoreError> {
    let conn = store.connection();
    let end = o.to_ms.min(o.now_ms).max(o.from_ms);
    // Each agent's state at the start: from its last event before it.
    let mut state: BTreeMap<String, (AgentState, i64)> = BTreeMap::new();
    {
        let mut st = conn.prepare(
            "SELECT a.agent, (SELECT event FROM agent_events
                 WHERE agent = a.agent AND ts_ms < ?1 ORDER BY ts_ms DESC, id DESC LIMIT 1)
             FROM (SELECT DISTINCT agent FROM agent_events) a",
        )?;
        let rows = st.query_map([o.from_ms], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (agent, Some(event)) = row? else { continue };
            let s = state_after(&event, AgentState::LoggedOut);
            state.insert(agent, (s, o.from_ms));
        }
    }
    #[derive(Default)]
    struct Acc {
        calls: u64,
        no_answer: u64,
        ms: [i64; 6],
    }
    let idx = |s: AgentState| s as usize;
    let mut acc: BTreeMap<String, Acc> =
        state.keys().map(|a| (a.clone(), Acc::default())).collect();
    let mut st = conn.prepare(
        "SELECT ts_ms, agent, event FROM agent_events WHERE ts_ms >= ?1 AND ts_ms < ?2
         ORDER BY ts_ms, id",
    )?;
    let rows = st.query_map(params![o.from_ms, end], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
    })?;
    for row in rows {
        let (ts, agent, event) = row?;
        let (s, since) = state.get(&agent).copied().unwrap_or((AgentState::LoggedOut, o.from_ms));
        let a = acc.entry(agent.clone()).or_default();
        a.ms[idx(s)] += ts - since;
        match event.as_str() {
            "talk_start" => a.calls += 1,
            "no_answer" => a.no_answer += 1,
            _ => {}
        }
        state.insert(agent, (state_after(&event, s), ts));
    }
    for (agent, (s, since)) in &state {
        if let Some(a) = acc.get_mut(agent) {
            a.ms[idx(*s)] += end - since;
        }
    }
    let sec = |ms: i64| ms as f64 / 1000.0;
    Ok(acc
        .into_iter()
        .filter(|(_, a)| a.calls > 0 || a.ms[1..].iter().any(|m| *m > 0) || a.no_answer > 0)
        .map(|(agent, a)| {
            let m = |s: AgentState| a.ms[idx(s)];
            let logged_in = a.ms[1..].iter().sum::<i64>();
            let busy = m(AgentState::Talking) + m(AgentState::Wrapup);
            let available = logged_in - m(AgentState::NotReady);
            AgentRow {
                agent,
                calls: a.calls,
                no_answer: a.no_answer,
                logged_in_s: sec(logged_in),
                talk_s: sec(m(AgentState::Talking)),
                idle_s: sec(m(AgentState::Idle)),
                ringing_s: sec(m(AgentState::Ringing)),
                wrapup_s: sec(m(AgentState::Wrapup)),
                not_ready_s: sec(m(AgentState::NotReady)),
                occupancy: (available > 0).then(|| busy as f64 / available as f64),
            }
        })
        .collect())
}

/// The `hourly` report: every hour of the period, in the report's zone.
///
/// # Errors
/// A failed query.
pub fn hourly(store: &Store, o: &ReportOptions) -> Result<Vec<HourRow>, StoreError> {
    let mut rows: BTreeMap<i64, HourRow> = BTreeMap::new();
    let mut h = hour_start(o.from_ms, o.offset_s);
    while h < o.to_ms {
        let label = format_datetime(h, o.offset_s);
        rows.insert(
            h,
            HourRow {
                hour: label[..13].to_string() + ":00",
                hour_ms: h,
                calls: 0,
                calls_answered: 0,
                queue_offered: 0,
                queue_answered: 0,
                queue_abandoned: 0,
            },
        );
        h += 3_600_000;
    }
    for c in store.cdrs(o.from_ms, o.to_ms)? {
        if let Some(r) = rows.get_mut(&hour_start(c.started_ms, o.offset_s)) {
            r.calls += 1;
            r.calls_answered += u64::from(c.answered_ms.is_some());
        }
    }
    for (_, _, entered, outcome) in queue_calls(store, o)? {
        if let Some(r) = rows.get_mut(&hour_start(entered, o.offset_s)) {
            r.queue_offered += 1;
            match outcome {
                Outcome::Answered { .. } => r.queue_answered += 1,
                Outcome::Abandoned { .. } => r.queue_abandoned += 1,
                _ => {}
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// The `ivr` report.
///
/// # Errors
/// A failed query.
pub fn ivr(store: &Store, o: &ReportOptions) -> Result<Vec<IvrRow>, StoreError> {
    let mut st = store.connection().prepare(
        "SELECT node, ms_in_node, exit FROM ivr_log WHERE ts_ms >= ?1 AND ts_ms < ?2
         ORDER BY ts_ms, id",
    )?;
    let rows = st.query_map(params![o.from_ms, o.to_ms], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
    })?;
    let mut acc: BTreeMap<String, (u64, u64, i64, BTreeMap<String, u64>)> = BTreeMap::new();
    for row in rows {
        let (node, ms, exit) = row?;
        let a = acc.entry(node).or_default();
        a.0 += 1;
        a.1 += u64::from(exit == "hangup");
        a.2 += ms;
        *a.3.entry(exit).or_default() += 1;
    }
    Ok(acc
        .into_iter()
        .map(|(node, (visits, dropouts, ms, exits))| IvrRow {
            node,
            visits,
            dropouts,
            dropout_rate: dropouts as f64 / visits as f64,
            avg_s_in_node: ms as f64 / visits as f64 / 1000.0,
            exits,
        })
        .collect())
}

/// Compute report `kind`.
///
/// # Errors
/// A failed query.
pub fn compute(store: &Store, kind: ReportKind, o: &ReportOptions) -> Result<Report, StoreError> {
    Ok(match kind {
        ReportKind::Queues => Report::Queues(queues(store, o)?),
        ReportKind::Agents => Report::Agents(agents(store, o)?),
        ReportKind::Hourly => Report::Hourly(hourly(store, o)?),
        ReportKind::Ivr => Report::Ivr(ivr(store, o)?),
        ReportKind::Cdr => Report::Cdr(store.cdrs(o.from_ms, o.to_ms)?),
        ReportKind::Recordings => Report::Recordings(store.recordings(o.from_ms, o.to_ms)?),
        // With the default target; `run` passes the command line's.
        ReportKind::Staffing => Report::Staffing(super::staffing::staffing(
            store,
            o,
            &super::staffing::StaffingArgs::default(),
        )?),
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{:.1}", v * 100.0))
}

/// A report as a table: headers and rows of text (for the text and CSV outputs).
pub fn table(report: &Report, offset_s: i64) -> (Vec<&'static str>, Vec<Vec<String>>) {
    match report {
        Report::Queues(rows) => (
            vec![
                "queue",
                "offered",
                "answered",
                "in_sl",
                "abandoned",
                "timed_out",
                "overflowed",
                "callbacks",
                "waiting",
                "sl_%",
                "asa_s",
                "aht_s",
                "abandon_%",
                "avg_abandon_s",
            ],
            rows.iter()
                .map(|r| {
                    vec![
                        r.queue.clone(),
                        r.offered.to_string(),
                        r.answered.to_string(),
                        r.answered_in_sl.to_string(),
                        r.abandoned.to_string(),
                        r.timed_out.to_string(),
                        r.overflowed.to_string(),
                        r.callbacks.to_string(),
                        r.waiting.to_string(),
                        pct(r.service_level),
                        opt(r.asa_s, 1),
                        opt(r.aht_s, 1),
                        pct(r.abandon_rate),
                        opt(r.avg_abandon_s, 1),
                    ]
                })
                .collect(),
        ),
        Report::Agents(rows) => (
            vec![
                "agent",
                "calls",
                "no_answer",
                "logged_in_s",
                "talk_s",
                "idle_s",
                "ringing_s",
                "wrapup_s",
                "not_ready_s",
                "occupancy_%",
            ],
            rows.iter()
                .map(|r| {
                    vec![
                        r.agent.clone(),
                        r.calls.to_string(),
                        r.no_answer.to_string(),
                        format!("{:.0}", r.logged_in_s),
                        format!("{:.0}", r.talk_s),
                        format!("{:.0}", r.idle_s),
                        format!("{:.0}", r.ringing_s),
                        format!("{:.0}", r.wrapup_s),
                        format!("{:.0}", r.not_ready_s),
                        pct(r.occupancy),
                    ]
                })
                .collect(),
        ),
        Report::Hourly(rows) => (
            vec![
                "hour",
                "calls",
                "calls_answered",
                "queue_offered",
                "queue_answered",
                "queue_abandoned",
            ],
            rows.iter()
                .map(|r| {
                    vec![
                        r.hour.clone(),
                        r.calls.to_string(),
                        r.calls_answered.to_string(),
                        r.queue_offered.to_string(),
                        r.queue_answered.to_string(),
                        r.queue_abandoned.to_string(),
                    ]
                })
                .collect(),
        ),
        Report::Ivr(rows) => (
            vec!["node", "visits", "dropouts", "dropout_%", "avg_s_in_node", "exits"],
            rows.iter()
                .map(|r| {
                    let exits: Vec<String> =
                        r.exits.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        r.node.clone(),
                        r.visits.to_string(),
                        r.dropouts.to_string(),
                        pct(Some(r.dropout_rate)),
                        format!("{:.1}", r.avg_s_in_node),
                        exits.join(";"),
                    ]
                })
                .collect(),
        ),
        Report::Cdr(rows) => (
            vec![
                "call_id",
                "started",
                "answered",
                "ended",
                "direction",
                "caller",
                "caller_name",
                "called",
                "dnis",
                "trunk_group",
                "trunk_port",
                "extension",
                "agent",
                "queue",
                "wait_s",
                "talk_s",
                "hangup_side",
                "cause",
                "why",
                "recording",
                "ivr_path",
                "transfers",
                "fax",
            ],
            rows.iter()
                .map(|c| {
                    let s = |v: &Option<String>| v.clone().unwrap_or_default();
                    vec![
                        c.call_id.to_string(),
                        format_datetime(c.started_ms, offset_s),
                        c.answered_ms.map(|t| format_datetime(t, offset_s)).unwrap_or_default(),
                        format_datetime(c.ended_ms, offset_s),
                        c.direction.clone(),
                        c.caller.clone(),
                        s(&c.caller_name),
                        c.called.clone(),
                        s(&c.dnis),
                        s(&c.trunk_group),
                        s(&c.trunk_port),
                        s(&c.extension),
                        s(&c.agent),
                        s(&c.queue),
                        format!("{:.1}", c.wait_ms as f64 / 1000.0),
                        format!("{:.1}", c.talk_ms as f64 / 1000.0),
                        c.hangup_side.map(|h| h.as_str().to_string()).unwrap_or_default(),
                        c.cause.clone(),
                        s(&c.why),
                        s(&c.recording),
                        s(&c.ivr_path),
                        c.transfers.to_string(),
                        u8::from(c.fax).to_string(),
                    ]
                })
                .collect(),
        ),
        Report::Recordings(rows) => (
            vec![
                "call_id", "start", "length_s", "caller", "called", "agent", "queue", "channels",
                "file",
            ],
            rows.iter()
                .map(|r| {
                    vec![
                        r.call_id.to_string(),
                        format_datetime(r.start_ms, offset_s),
                        format!("{:.1}", r.duration_ms as f64 / 1000.0),
                        r.caller.clone(),
                        r.called.clone(),
                        r.agent.clone().unwrap_or_default(),
                        r.queue.clone().unwrap_or_default(),
                        r.channels.to_string(),
                        r.file.clone(),
                    ]
                })
                .collect(),
        ),
        Report::Staffing(rows) => super::staffing::table(rows),
    }
}

/// One CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Write `report` as CSV: a header line, then one line per row.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_csv(report: &Report, offset_s: i64, out: &mut dyn Write) -> std::io::Result<()> {
    let (headers, rows) = table(report, offset_s);
    writeln!(out, "{}", headers.join(","))?;
    for r in rows {
        let fields: Vec<String> = r.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

/// Write `report` as an aligned text table.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_text(report: &Report, offset_s: i64, out: &mut dyn Write) -> std::io::Result<()> {
    let (headers, rows) = table(report, offset_s);
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, f) in widths.iter_mut().zip(r) {
            *w = (*w).max(f.chars().count());
        }
    }
    let line = |fields: Vec<String>| {
        let cells: Vec<String> =
            fields.iter().zip(&widths).map(|(f, w)| format!("{f:<w$}")).collect();
        cells.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(headers.iter().map(|h| h.to_string()).collect()))?;
    if rows.is_empty() {
        writeln!(out, "(no data in this period)")?;
    }
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

/// Write `report` as JSON: `{"report": KIND, "from": .., "to": .., "rows": [...]}`.
///
/// # Errors
/// When `out` cannot be written.
pub fn write_json(
    report: &Report,
    kind: ReportKind,
    o: &ReportOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        report: &'static str,
        from: String,
        to: String,
        from_ms: i64,
        to_ms: i64,
        sl_seconds: u32,
        rows: &'a Report,
    }
    let name = match kind {
        ReportKind::Queues => "queues",
        ReportKind::Agents => "agents",
        ReportKind::Hourly => "hourly",
        ReportKind::Ivr => "ivr",
        ReportKind::Cdr => "cdr",
        ReportKind::Recordings => "recordings",
        ReportKind::Staffing => "staffing",
    };
    let doc = Doc {
        report: name,
        from: format_datetime(o.from_ms, o.offset_s),
        to: format_datetime(o.to_ms, o.offset_s),
        from_ms: o.from_ms,
        to_ms: o.to_ms,
        sl_seconds: o.sl_seconds,
        rows: report,
    };
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

/// The options for `args` with the zone offset `offset_s` and the time `now_ms`.
///
/// # Errors
/// A date that does not parse, or an empty period.
pub fn options(args: &ReportArgs, offset_s: i64, now_ms: i64) -> anyhow::Result<ReportOptions> {
    let from_ms = match &args.from {
        Some(s) => parse_datetime(s, offset_s).map_err(|e| anyhow::anyhow!("--from {e}"))?,
        // Local midnight today.
        None => {
            ((now_ms.div_euclid(1000) + offset_s).div_euclid(86_400) * 86_400 - offset_s) * 1000
        }
    };
    let to_ms = match &args.to {
        Some(s) => parse_datetime(s, offset_s).map_err(|e| anyhow::anyhow!("--to {e}"))?,
        None => now_ms,
    };
    if to_ms <= from_ms {
        anyhow::bail!(
            "the period is empty: --to ({}) is not after --from ({})",
            format_datetime(to_ms, offset_s),
            format_datetime(from_ms, offset_s)
        );
    }
    Ok(ReportOptions { from_ms, to_ms, now_ms, offset_s, sl_seconds: args.sl_seconds })
}

/// The database a report reads: `--db`, else `system.database` of `--config`, else the
/// default.
///
/// # Errors
/// The configuration file does not load.
pub fn database_path(args: &ReportArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.db {
        return Ok(p.clone());
    }
    let system = match &args.config {
        Some(c) => crate::config::Config::load(c).map_err(|e| anyhow::anyhow!("{e}"))?.system,
        None => crate::config::model::SystemConfig::default(),
    };
    Ok(system.database_path())
}

/// Run `cardpbx report ...`, printing to `out`; the exit code.
///
/// # Errors
/// Bad arguments, a database that cannot be opened, or `out` cannot be written.
pub fn run(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let offset_s = if args.utc { 0 } else { crate::runner::utc_offset_s(now_utc_ms() / 1000) };
    let o = options(args, offset_s, now_utc_ms())?;
    if args.kind == ReportKind::Staffing {
        args.staffing.check()?;
    }
    let path = database_path(args)?;
    let store = Store::open_read_only(&path)?;
    let report = match args.kind {
        ReportKind::Staffing => {
            Report::Staffing(super::staffing::staffing(&store, &o, &args.staffing)?)
        }
        kind => compute(&store, kind, &o)?,
    };
    if args.json {
        write_json(&report, args.kind, &o, out)?;
    } else if args.csv {
        write_csv(&report, o.offset_s, out)?;
    } else {
        write_text(&report, o.offset_s, out)?;
    }
    Ok(0)
}
