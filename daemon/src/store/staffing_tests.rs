//! `report staffing` tests: a hand-made two-day data set with known arrivals, handling times
//! and abandons; the rows, the queue filter, the zone, CSV/JSON output and argument errors.

use super::super::report::{self, Report, ReportKind, ReportOptions};
use super::super::time::parse_datetime;
use super::super::*;
use super::*;

/// 2026-03-02 00:00 UTC, the first day.
fn day() -> i64 {
    parse_datetime("2026-03-02", 0).unwrap()
}

/// `h:m:s` on day `d` (0 or 1), UTC ms.
fn at(d: i64, h: i64, m: i64, s: i64) -> i64 {
    day() + d * 86_400_000 + ((h * 60 + m) * 60 + s) * 1000
}

fn opts(offset_s: i64) -> ReportOptions {
    ReportOptions {
        from_ms: day(),
        to_ms: at(2, 0, 0, 0),
        now_ms: at(2, 0, 0, 0),
        offset_s,
        sl_seconds: 20,
    }
}

fn qe(ts: i64, queue: &str, call: u64, ev: QueueEventKind, wait_s: i64) -> Record {
    Record::QueueEvent(QueueEvent {
        ts_ms: ts,
        queue: queue.into(),
        call_id: call,
        agent: (ev == QueueEventKind::Answer).then(|| "a1".into()),
        event: ev,
        wait_ms: wait_s * 1000,
        position: None,
    })
}

fn ae(ts: i64, ev: AgentEventKind, call: u64) -> Record {
    Record::AgentEvent(AgentEvent { ts_ms: ts, agent: "a1".into(), event: ev, call_id: Some(call) })
}

fn cdr(call_id: u64, answered_ms: i64, talk_s: i64) -> Record {
    Record::Cdr(CdrRecord {
        call_id,
        started_ms: answered_ms - 1000,
        answered_ms: Some(answered_ms),
        ended_ms: answered_ms + talk_s * 1000,
        direction: "inbound".into(),
        caller: "13800000000".into(),
        called: "600".into(),
        talk_ms: talk_s * 1000,
        cause: "normal_clearing".into(),
        ..CdrRecord::default()
    })
}

/// Two days, UTC.
/// - Queue "sales", hour 10, both days: per day three callers answered after 10 s, each with
///   150 s talk + 30 s wrap-up from the agent events (180 s handling), and one caller who
///   abandons (after 30 s on day 0, 50 s on day 1). 8 offered in 2 measured hours: 4 calls/h.
/// - Queue "sales", hour 14, day 0 only: two callers answered at once, no agent events, CDR
///   talk 300 s each: 1 call/h over 2 hours, AHT 300 s.
/// - Queue "support", hour 11, day 1: one caller answered after 5 s with CDR talk 120 s, one
///   timed out after 60 s.
///
/// Patience over "sales": waits 6×10 + 30 + 50 + 2×0 = 140 s over 2 abandons = 70 s; over all
/// queues: 140 + 5 + 60 = 205 s / 2 = 102.5 s.
fn data_set() -> Vec<Record> {
    use AgentEventKind as A;
    use QueueEventKind as Q;
    let mut v = Vec::new();
    let mut call = 0;
    for d in 0..2 {
        for i in 0..3 {
            call += 1;
            let t0 = at(d, 10, i * 10, 0);
            v.push(qe(t0, "sales", call, Q::Enter, 0));
            v.push(qe(t0 + 10_000, "sales", call, Q::Answer, 10));
            v.push(ae(t0 + 10_000, A::TalkStart, call));
            v.push(ae(t0 + 160_000, A::TalkEnd, call));
            v.push(ae(t0 + 160_000, A::WrapupStart, call));
            v.push(ae(t0 + 190_000, A::WrapupEnd, call));
            // The CDR's talk (150 s) is not used when agent events exist.
            v.push(cdr(call, t0 + 10_000, 150));
        }
        call += 1;
        let t0 = at(d, 10, 45, 0);
        let wait = if d == 0 { 30 } else { 50 };
        v.push(qe(t0, "sales", call, Q::Enter, 0));
        v.push(qe(t0 + wait * 1000, "sales", call, Q::Abandon, wait));
    }
    for i in 0..2 {
        call += 1;
        let t0 = at(0, 14, i * 20, 0);
        v.push(qe(t0, "sales", call, Q::Enter, 0));
        v.push(qe(t0, "sales", call, Q::Answer, 0));
        v.push(cdr(call, t0, 300));
    }
    call += 1;
    let t0 = at(1, 11, 0, 0);
    v.push(qe(t0, "support", call, Q::Enter, 0));
    v.push(qe(t0 + 5000, "support", call, Q::Answer, 5));
    v.push(cdr(call, t0 + 5000, 120));
    call += 1;
    v.push(qe(t0, "support", call, Q::Enter, 0));
    // A time-out without a recorded wait: the wait is taken from the timestamps.
    v.push(qe(t0 + 60_000, "support", call, Q::Timeout, 0));
    v
}

fn store() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    s.write(&data_set()).unwrap();
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn sales() -> StaffingArgs {
    StaffingArgs { queue: Some("sales".into()), ..StaffingArgs::default() }
}

#[test]
fn measured_load_per_hour_of_day() {
    let rows = staffing(&store(), &opts(0), &sales()).unwrap();
    assert_eq!(rows.iter().map(|r| r.hour.as_str()).collect::<Vec<_>>(), ["10:00", "14:00"]);
    let r = &rows[0];
    assert_eq!(r.queue, "sales");
    assert_eq!((r.offered, r.answered, r.abandoned), (8, 6, 2));
    assert!(close(r.hours_measured, 2.0));
    assert!(close(r.calls_per_hour, 4.0));
    assert!(close(r.aht_s.unwrap(), 180.0));
    assert!(close(r.traffic_erl.unwrap(), 0.2));
    assert!(close(r.avg_abandon_s.unwrap(), 40.0));
    assert!(close(r.patience_s.unwrap(), 70.0));
    let r = &rows[1];
    assert_eq!((r.offered, r.answered, r.abandoned), (2, 2, 0));
    assert!(close(r.calls_per_hour, 1.0));
    assert!(close(r.aht_s.unwrap(), 300.0), "CDR talk time when there are no agent events");
    assert_eq!(r.avg_abandon_s, None);
    // The period's patience applies to every hour.
    assert!(close(r.patience_s.unwrap(), 70.0));
}

#[test]
fn agents_needed_come_from_the_erlang_models() {
    let args = StaffingArgs { target_sl: 0.95, ..sales() };
    let rows = staffing(&store(), &opts(0), &args).unwrap();
    for r in &rows {
        let (a, aht) = (r.traffic_erl.unwrap(), r.aht_s.unwrap());
        let n = erlang::agents_needed(a, aht, 20.0, 0.95, None).unwrap();
        assert_eq!(r.agents_c, Some(n));
        assert!(close(r.sl_c.unwrap(), erlang::service_level(n, a, aht, 20.0)));
        assert!(close(r.asa_c_s.unwrap(), erlang::asa(n, a, aht)));
        assert!(close(r.occupancy_c.unwrap(), a / f64::from(n)));
        let (na, fig) =
            erlang::agents_needed_a(r.calls_per_hour / 3600.0, aht, 70.0, 20.0, 0.95, None)
                .unwrap();
        assert_eq!(r.agents_a, Some(na));
        assert!(close(r.sl_a.unwrap(), fig.service_level));
        assert!(close(r.abandon_a.unwrap(), fig.p_abandon));
        assert!(r.sl_a.unwrap() >= 0.95 && r.sl_c.unwrap() >= 0.95);
        assert_eq!(r.target_sl, 0.95);
    }
    // 0.2 erl at 95 % in 20 s: one agent gives 1 − 0.2·e^{−0.8·20/180} ≈ 81.7 %, two agents
    // are needed.
    assert_eq!(rows[0].agents_c, Some(2));
    // 1/12 erl with AHT 300 s: one agent gives 1 − (1/12)·e^{−(11/12)·20/300} ≈ 92.2 %.
    assert_eq!(rows[1].agents_c, Some(2));
    // At 80 % one agent is enough for both.
    let rows = staffing(&store(), &opts(0), &sales()).unwrap();
    assert_eq!(rows.iter().map(|r| r.agents_c).collect::<Vec<_>>(), [Some(1), Some(1)]);
    // An occupancy cap of 10 % needs 0.2/0.1 = 2 agents at hour 10.
    let args = StaffingArgs { max_occupancy: Some(0.1), ..sales() };
    let rows = staffing(&store(), &opts(0), &args).unwrap();
    assert_eq!(rows[0].agents_c, Some(2));
    assert!(rows[0].occupancy_a.unwrap() <= 0.1);
}

#[test]
fn pooled_queues_and_no_abandons() {
    let rows = staffing(&store(), &opts(0), &StaffingArgs::default()).unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.hour.as_str(), r.queue.as_str())).collect::<Vec<_>>(),
        [("10:00", "*"), ("11:00", "*"), ("14:00", "*")]
    );
    let r = &rows[1];
    assert_eq!((r.offered, r.answered, r.abandoned), (2, 1, 0));
    assert!(close(r.aht_s.unwrap(), 120.0));
    assert!(close(r.patience_s.unwrap(), 102.5));
    // Only "support": no abandons, so no Erlang A.
    let args = StaffingArgs { queue: Some("support".into()), ..StaffingArgs::default() };
    let rows = staffing(&store(), &opts(0), &args).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].patience_s, None);
    assert!(rows[0].agents_c.is_some());
    assert_eq!((rows[0].agents_a, rows[0].sl_a), (None, None));
    // An unknown queue has no rows.
    let args = StaffingArgs { queue: Some("nobody".into()), ..StaffingArgs::default() };
    assert!(staffing(&store(), &opts(0), &args).unwrap().is_empty());
}

#[test]
fn hours_follow_the_zone_and_partial_periods() {
    let rows = staffing(&store(), &opts(3600), &sales()).unwrap();
    assert_eq!(rows.iter().map(|r| r.hour.as_str()).collect::<Vec<_>>(), ["11:00", "15:00"]);
    // Half an hour of hour 10 on one day: 4 calls in 0.5 h = 8 calls/h.
    let o = ReportOptions { from_ms: at(0, 10, 0, 0), to_ms: at(0, 10, 30, 0), ..opts(0) };
    let rows = staffing(&store(), &o, &sales()).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(close(rows[0].hours_measured, 0.5));
    assert_eq!(rows[0].offered, 3);
    assert!(close(rows[0].calls_per_hour, 6.0));
    // No abandon in that half hour: no patience estimate.
    assert_eq!(rows[0].patience_s, None);
}

#[test]
fn csv_json_and_text_outputs() {
    let rows = staffing(&store(), &opts(0), &sales()).unwrap();
    let r = Report::Staffing(rows);
    let mut out = Vec::new();
    report::write_csv(&r, 0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "hour,queue,hours,offered,abandoned,calls_per_h,aht_s,traffic_erl,patience_s,agents_c,\
         sl_c_%,asa_c_s,occ_c_%,agents_a,sl_a_%,asa_a_s,abandon_a_%,occ_a_%"
    );
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].starts_with("10:00,sales,2.00,8,2,4.0,180.0,0.20,70.0,1,81.7,"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("14:00,sales,2.00,2,0,1.0,300.0,0.08,70.0,1,"), "{}", lines[2]);

    let mut out = Vec::new();
    report::write_json(&r, ReportKind::Staffing, &opts(0), &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["report"], "staffing");
    assert_eq!(v["sl_seconds"], 20);
    assert_eq!(v["rows"][0]["hour"], "10:00");
    assert_eq!(v["rows"][0]["agents_c"], 1);
    assert_eq!(v["rows"][0]["calls_per_hour"], 4.0);
    assert_eq!(v["rows"][0]["target_sl"], 0.8);
    assert_eq!(v["rows"][0]["max_occupancy"], serde_json::Value::Null);
    assert!(v["rows"][0]["agents_a"].as_u64().is_some());

    let mut out = Vec::new();
    report::write_text(&r, 0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().next().unwrap().starts_with("hour   queue  hours"), "{text}");
}

#[test]
fn the_cli_runs_staffing_and_checks_its_arguments() {
    use clap::Parser;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.db");
    Store::open(&path).unwrap().write(&data_set()).unwrap();
    let parse = |extra: &[&str]| {
        let mut argv = vec![
            "cardpbx",
            "report",
            "staffing",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-04",
            "--db",
            path.to_str().unwrap(),
            "--utc",
            "--csv",
        ];
        argv.extend_from_slice(extra);
        let cli = crate::ctl::cli::Cli::try_parse_from(argv).unwrap();
        let crate::ctl::cli::Command::Report(args) = cli.cmd else { panic!("report command") };
        args
    };
    let args = parse(&["--queue", "sales", "--target-sl", "0.95", "--max-occupancy", "0.85"]);
    assert_eq!(args.kind, ReportKind::Staffing);
    assert_eq!(
        args.staffing,
        StaffingArgs { queue: Some("sales".into()), target_sl: 0.95, max_occupancy: Some(0.85) }
    );
    let mut out = Vec::new();
    assert_eq!(report::run(&args, &mut out).unwrap(), 0);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("10:00,sales,2.00,8,2,4.0,180.0,0.20,70.0,2,"));

    for (extra, msg) in [
        (&["--target-sl", "1.5"][..], "--target-sl 1.5"),
        (&["--target-sl", "0"][..], "--target-sl 0"),
        (&["--max-occupancy", "0"][..], "--max-occupancy 0"),
        (&["--max-occupancy", "1.2"][..], "--max-occupancy 1.2"),
        (&["--queue", " "][..], "--queue"),
    ] {
        let e = report::run(&parse(extra), &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains(msg), "{extra:?}: {e}");
    }
    // Not a number: clap refuses it.
    let argv = ["cardpbx", "report", "staffing", "--target-sl", "most"];
    assert!(crate::ctl::cli::Cli::try_parse_from(argv).is_err());
    // The staffing options do not disturb the other reports.
    let mut args = parse(&["--target-sl", "7"]);
    args.kind = ReportKind::Queues;
    assert_eq!(report::run(&args, &mut Vec::new()).unwrap(), 0);
    // `compute` uses the defaults.
    let r = report::compute(&store(), ReportKind::Staffing, &opts(0)).unwrap();
    let Report::Staffing(rows) = r else { panic!("staffing rows") };
    assert_eq!(rows.len(), 3);
}
