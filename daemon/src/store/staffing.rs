//! `cardpbx report staffing`: agents needed per hour of day for a target service level, from
//! the measured arrivals, handling times and abandonment (Erlang C, and Erlang A when callers
//! abandon). The math is in [`crate::callcenter::erlang`]; docs/reports.md gives the formulas.

use super::report::{handling_ms, ReportOptions};
use super::{Store, StoreError};
use crate::callcenter::erlang;
use rusqlite::params;
use serde::Serialize;
use std::collections::HashMap;

/// How far past the end of the range the outcome of a queued call is looked for.
const OUTCOME_GRACE_MS: i64 = 24 * 3_600_000;

/// What `queue` means when the queues are pooled.
pub const ALL_QUEUES: &str = "*";

/// `cardpbx report staffing` options (ignored by the other reports).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct StaffingArgs {
    /// staffing: only this queue (default: all queues together).
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,
    /// staffing: the service level to reach, a fraction in (0, 1): this share of the calls
    /// answered within --sl-seconds.
    #[arg(long, default_value_t = 0.8, value_name = "FRACTION")]
    pub target_sl: f64,
    /// staffing: the highest agent occupancy to plan for, a fraction in (0, 1] (default: none).
    #[arg(long, value_name = "FRACTION")]
    pub max_occupancy: Option<f64>,
}

impl Default for StaffingArgs {
    fn default() -> Self {
        StaffingArgs { queue: None, target_sl: 0.8, max_occupancy: None }
    }
}

impl StaffingArgs {
    /// Check the values.
    ///
    /// # Errors
    /// A target outside (0, 1), an occupancy outside (0, 1], or an empty queue name.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.target_sl > 0.0 && self.target_sl < 1.0) {
            anyhow::bail!(
                "--target-sl {}: must be a fraction between 0 and 1 (exclusive), e.g. 0.8 for 80 %",
                self.target_sl
            );
        }
        if let Some(m) = self.max_occupancy {
            if !(m > 0.0 && m <= 1.0) {
                anyhow::bail!(
                    "--max-occupancy {m}: must be a fraction above 0 and at most 1, e.g. 0.85"
                );
            }
        }
        if self.queue.as_deref().is_some_and(|q| q.trim().is_empty()) {
            anyhow::bail!("--queue: empty queue name");
        }
        Ok(())
    }
}

/// One hour of day's measured load and the agents it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffingRow {
    /// The hour of day, local time (`HH:00`).
    pub hour: String,
    /// The queue, or `*` for all queues together.
    pub queue: String,
    /// How many hours of this hour of day the period covers (the days measured).
    pub hours_measured: f64,
    /// Callers who entered the queue(s) in this hour of day over the period.
    pub offered: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those, abandoned.
    pub abandoned: u64,
    /// Arrival rate: offered / hours_measured, calls per hour.
    pub calls_per_hour: f64,
    /// Mean handling time (talk + wrap-up) of the answered calls of this hour, s; the period's
    /// mean when this hour has no measured handling.
    pub aht_s: Option<f64>,
    /// Offered traffic, erlangs: calls_per_hour × aht_s / 3600.
    pub traffic_erl: Option<f64>,
    /// Mean wait of the abandoned callers of this hour, s.
    pub avg_abandon_s: Option<f64>,
    /// Mean patience estimated over the whole period (total queue time of all callers /
    /// abandons), s; none without abandons.
    pub patience_s: Option<f64>,
    /// Agents needed by Erlang C.
    pub agents_c: Option<u32>,
    /// Erlang C service level with agents_c.
    pub sl_c: Option<f64>,
    /// Erlang C average speed of answer with agents_c, s.
    pub asa_c_s: Option<f64>,
    /// Occupancy with agents_c.
    pub occupancy_c: Option<f64>,
    /// Agents needed by Erlang A (only when callers abandoned in the period).
    pub agents_a: Option<u32>,
    /// Erlang A service level with agents_a (abandons count as missed).
    pub sl_a: Option<f64>,
    /// Erlang A average speed of answer (answered calls) with agents_a, s.
    pub asa_a_s: Option<f64>,
    /// Erlang A share of callers abandoning with agents_a.
    pub abandon_a: Option<f64>,
    /// Erlang A occupancy with agents_a.
    pub occupancy_a: Option<f64>,
    /// The service level aimed at.
    pub target_sl: f64,
    /// The occupancy cap, if any.
    pub max_occupancy: Option<f64>,
}

/// One caller's time in the queue and how it ended.
struct Queued {
    entered_ms: i64,
    call: u64,
    /// None while still waiting; else (wait ms, answered, abandoned).
    outcome: Option<(i64, bool, bool)>,
}

/// The callers who entered the queue(s) in the period, with their outcome (looked for up to a
/// day past the end).
fn queued(
    store: &Store,
    o: &ReportOptions,
    queue: Option<&str>,
) -> Result<Vec<Queued>, StoreError> {
    let mut st = store.connection().prepare(
        "SELECT ts_ms, queue, call_id, event, wait_ms FROM queue_events
         WHERE ts_ms >= ?1 AND ts_ms < ?2 AND (?3 IS NULL OR queue = ?3) ORDER BY ts_ms, id",
    )?;
    let rows =
        st.query_map(params![o.from_ms, o.to_ms.saturating_add(OUTCOME_GRACE_MS), queue], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
    let mut calls: Vec<Queued> = Vec::new();
    let mut open: HashMap<(String, u64), usize> = HashMap::new();
    for row in rows {
        let (ts, q, call, event, wait_ms) = row?;
        let key = (q, call);
        if event == "enter" {
            if ts < o.to_ms {
                open.insert(key, calls.len());
                calls.push(Queued { entered_ms: ts, call, outcome: None });
            }
            continue;
        }
        if !matches!(event.as_str(), "answer" | "abandon" | "timeout" | "overflow" | "callback") {
            continue;
        }
        if let Some(i) = open.remove(&key) {
            let c = &mut calls[i];
            let wait = if wait_ms > 0 { wait_ms } else { (ts - c.entered_ms).max(0) };
            c.outcome = Some((wait, event == "answer", event == "abandon"));
        }
    }
    Ok(calls)
}

fn hour_of_day(ts_ms: i64, offset_s: i64) -> usize {
    (ts_ms.div_euclid(1000) + offset_s).div_euclid(3600).rem_euclid(24) as usize
}

/// Hours of each hour of day in the period (partial hours count in part).
fn hours_measured(o: &ReportOptions) -> [f64; 24] {
    let mut out = [0.0; 24];
    let mut h = super::time::hour_start(o.from_ms, o.offset_s);
    while h < o.to_ms {
        let overlap = (h + 3_600_000).min(o.to_ms) - h.max(o.from_ms);
        out[hour_of_day(h, o.offset_s)] += overlap as f64 / 3_600_000.0;
        h += 3_600_000;
    }
    out
}

/// The `staffing` report: one row per hour of day with calls, in hour order.
///
/// # Errors
/// A failed query.
pub fn staffing(
    store: &Store,
    o: &ReportOptions,
    args: &StaffingArgs,
) -> Result<Vec<StaffingRow>, StoreError> {
    let calls = queued(store, o, args.queue.as_deref())?;
    let handled = handling_ms(store, o)?;
    let cdr_talk: HashMap<u64, i64> = store
        .cdrs(o.from_ms, o.to_ms.saturating_add(OUTCOME_GRACE_MS))?
        .into_iter()
        .filter(|c| c.talk_ms > 0)
        .map(|c| (c.call_id, c.talk_ms))
        .collect();
    #[derive(Default, Clone, Copy)]
    struct Acc {
        offered: u64,
        answered: u64,
        abandoned: u64,
        handled_ms: i64,
        handled_n: u64,
        abandon_wait_ms: i64,
    }
    let mut acc = [Acc::default(); 24];
    let (mut all_handled_ms, mut all_handled_n) = (0i64, 0u64);
    let (mut all_wait_ms, mut all_abandons) = (0i64, 0u64);
    for c in &calls {
        let a = &mut acc[hour_of_day(c.entered_ms, o.offset_s)];
        a.offered += 1;
        let Some((wait, answered, abandoned)) = c.outcome else { continue };
        all_wait_ms += wait;
        if abandoned {
            a.abandoned += 1;
            a.abandon_wait_ms += wait;
            all_abandons += 1;
        }
        if answered {
            a.answered += 1;
            // Agent events give talk + wrap-up; else the CDR's talk time.
            if let Some(h) = handled.get(&c.call).or_else(|| cdr_talk.get(&c.call)) {
                a.handled_ms += h;
                a.handled_n += 1;
                all_handled_ms += h;
                all_handled_n += 1;
            }
        }
    }
    let period_aht =
        (all_handled_n > 0).then(|| all_handled_ms as f64 / all_handled_n as f64 / 1000.0);
    // Exponential patience, censored by answers, time-outs and overflows: the MLE is the total
    // time callers spent waiting over the number who abandoned.
    let patience_s =
        (all_abandons > 0).then(|| (all_wait_ms as f64 / all_abandons as f64 / 1000.0).max(0.001));
    let hours = hours_measured(o);
    let t = f64::from(o.sl_seconds);
    let queue = args.queue.clone().unwrap_or_else(|| ALL_QUEUES.to_string());
    let mut rows = Vec::new();
    for (hod, a) in acc.iter().enumerate() {
        if a.offered == 0 || hours[hod] <= 0.0 {
            continue;
        }
        let calls_per_hour = a.offered as f64 / hours[hod];
        let aht_s = if a.handled_n > 0 {
            Some(a.handled_ms as f64 / a.handled_n as f64 / 1000.0)
        } else {
            period_aht
        }
        .filter(|v| *v > 0.0);
        let traffic = aht_s.map(|aht| calls_per_hour * aht / 3600.0);
        let mut row = StaffingRow {
            hour: format!("{hod:02}:00"),
            queue: queue.clone(),
            hours_measured: hours[hod],
            offered: a.offered,
            answered: a.answered,
            abandoned: a.abandoned,
            calls_per_hour,
            aht_s,
            traffic_erl: traffic,
            avg_abandon_s: (a.abandoned > 0)
                .then(|| a.abandon_wait_ms as f64 / a.abandoned as f64 / 1000.0),
            patience_s,
            agents_c: None,
            sl_c: None,
            asa_c_s: None,
            occupancy_c: None,
            agents_a: None,
            sl_a: None,
            asa_a_s: None,
            abandon_a: None,
            occupancy_a: None,
            target_sl: args.target_sl,
            max_occupancy: args.max_occupancy,
        };
        if let (Some(aht), Some(traffic)) = (aht_s, traffic) {
            if let Some(n) =
                erlang::agents_needed(traffic, aht, t, args.target_sl, args.max_occupancy)
            {
                row.agents_c = Some(n);
                row.sl_c = Some(erlang::service_level(n, traffic, aht, t));
                row.asa_c_s = Some(erlang::asa(n, traffic, aht));
                row.occupancy_c = Some(erlang::occupancy(n, traffic));
            }
            if let Some(theta) = patience_s {
                let lambda = calls_per_hour / 3600.0;
                if let Some((n, r)) = erlang::agents_needed_a(
                    lambda,
                    aht,
                    theta,
                    t,
                    args.target_sl,
                    args.max_occupancy,
                ) {
                    row.agents_a = Some(n);
                    row.sl_a = Some(r.service_level);
                    row.asa_a_s = Some(r.asa_s);
                    row.abandon_a = Some(r.p_abandon);
                    row.occupancy_a = Some(r.occupancy);
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{:.1}", v * 100.0))
}

fn count(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The staffing rows as a table: headers and rows of text.
pub fn table(rows: &[StaffingRow]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    (
        vec![
            "hour",
            "queue",
            "hours",
            "offered",
            "abandoned",
            "calls_per_h",
            "aht_s",
            "traffic_erl",
            "patience_s",
            "agents_c",
            "sl_c_%",
            "asa_c_s",
            "occ_c_%",
            "agents_a",
            "sl_a_%",
            "asa_a_s",
            "abandon_a_%",
            "occ_a_%",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.hour.clone(),
                    r.queue.clone(),
                    format!("{:.2}", r.hours_measured),
                    r.offered.to_string(),
                    r.abandoned.to_string(),
                    format!("{:.1}", r.calls_per_hour),
                    opt(r.aht_s, 1),
                    opt(r.traffic_erl, 2),
                    opt(r.patience_s, 1),
                    count(r.agents_c),
                    pct(r.sl_c),
                    opt(r.asa_c_s, 1),
                    pct(r.occupancy_c),
                    count(r.agents_a),
                    pct(r.sl_a),
                    opt(r.asa_a_s, 1),
                    pct(r.abandon_a),
                    pct(r.occupancy_a),
                ]
            })
            .collect(),
    )
}

#[cfg(test)]
#[path = "staffing_tests.rs"]
mod tests;
