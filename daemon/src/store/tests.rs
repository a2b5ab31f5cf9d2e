//! Store tests: opening and migrations, refusing bad files, the writer, and every report on a
//! hand-made data set with known answers.

use super::report::{self, ReportArgs, ReportKind, ReportOptions};
use super::time::parse_datetime;
use super::*;
use std::time::Duration;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// 2026-03-02 00:00 UTC, the data set's day.
fn day() -> i64 {
    parse_datetime("2026-03-02", 0).unwrap()
}

/// `h:m:s` on the data set's day, UTC ms.
fn at(h: i64, m: i64, s: i64) -> i64 {
    day() + ((h * 60 + m) * 60 + s) * 1000
}

fn opts(from: i64, to: i64) -> ReportOptions {
    ReportOptions { from_ms: from, to_ms: to, now_ms: to + 1000, offset_s: 0, sl_seconds: 20 }
}

fn cdr(call_id: u64, started_ms: i64, answered: Option<i64>, ended_ms: i64) -> CdrRecord {
    CdrRecord {
        call_id,
        started_ms,
        answered_ms: answered,
        ended_ms,
        direction: "inbound".into(),
        caller: format!("1380000{call_id:04}"),
        called: "2001".into(),
        wait_ms: answered.unwrap_or(ended_ms) - started_ms,
        talk_ms: answered.map_or(0, |a| ended_ms - a),
        hangup_side: Some(HangupSide::Caller),
        cause: if answered.is_some() { "normal_clearing" } else { "caller_abandoned" }.into(),
        ..CdrRecord::default()
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

fn ae(ts: i64, agent: &str, ev: AgentEventKind, call: Option<u64>) -> Record {
    Record::AgentEvent(AgentEvent { ts_ms: ts, agent: agent.into(), event: ev, call_id: call })
}

fn ivr(ts: i64, call: u64, node: &str, key: Option<&str>, ms: i64, exit: &str) -> Record {
    Record::IvrStep(IvrStep {
        ts_ms: ts,
        call_id: call,
        node: node.into(),
        key: key.map(Into::into),
        ms_in_node: ms,
        exit: exit.into(),
    })
}

/// The hand-made data set. Queue "sales", 10:00-11:00:
/// - call 1 enters 10:00:00, answered after 10 s (agent a1 talks 10:00:10-10:02:10 = 120 s,
///   wrap-up 10:02:10-10:02:40 = 30 s);
/// - call 2 enters 10:05:00, answered after 30 s (a1 talks 10:05:30-10:06:30 = 60 s, no wrap-up);
/// - call 3 enters 10:10:00, abandons after 40 s;
/// - call 4 enters 10:20:00, abandons after 20 s;
/// - call 5 enters 10:30:00, times out after 60 s;
/// - call 6 enters 11:10:00 (next hour), answered after 5 s, no agent events.
///
/// Queue "support": call 7 enters 10:40:00, overflows after 15 s.
/// An "enter" at 09:59:59 for call 8 (before the range), answered at 10:00:05: not counted.
fn data_set() -> Vec<Record> {
    use AgentEventKind as A;
    use QueueEventKind as Q;
    vec![
        // Agent a1: logged in before the range (09:00), ready at 09:30.
        ae(at(9, 0, 0), "a1", A::Login, None),
        ae(at(9, 30, 0), "a1", A::Ready, None),
        qe(at(9, 59, 59), "sales", 8, Q::Enter, 0),
        qe(at(10, 0, 5), "sales", 8, Q::Answer, 6),
        qe(at(10, 0, 0), "sales", 1, Q::Enter, 0),
        ae(at(10, 0, 2), "a1", A::Ringing, Some(1)),
        qe(at(10, 0, 10), "sales", 1, Q::Answer, 10),
        ae(at(10, 0, 10), "a1", A::TalkStart, Some(1)),
        ae(at(10, 2, 10), "a1", A::TalkEnd, Some(1)),
        ae(at(10, 2, 10), "a1", A::WrapupStart, Some(1)),
        ae(at(10, 2, 40), "a1", A::WrapupEnd, Some(1)),
        qe(at(10, 5, 0), "sales", 2, Q::Enter, 0),
        ae(at(10, 5, 30), "a1", A::TalkStart, Some(2)),
        qe(at(10, 5, 30), "sales", 2, Q::Answer, 30),
        ae(at(10, 6, 30), "a1", A::TalkEnd, Some(2)),
        qe(at(10, 10, 0), "sales", 3, Q::Enter, 0),
        qe(at(10, 10, 40), "sales", 3, Q::Abandon, 40),
        qe(at(10, 20, 0), "sales", 4, Q::Enter, 0),
        qe(at(10, 20, 20), "sales", 4, Q::Abandon, 20),
        qe(at(10, 30, 0), "sales", 5, Q::Enter, 0),
        qe(at(10, 31, 0), "sales", 5, Q::Timeout, 60),
        qe(at(10, 40, 0), "support", 7, Q::Enter, 0),
        qe(at(10, 40, 15), "support", 7, Q::Overflow, 15),
        // a1 not ready (lunch) 10:30-10:50, logs out at 10:55.
        ae(at(10, 30, 0), "a1", A::NotReady(Some("lunch".into())), None),
        ae(at(10, 50, 0), "a1", A::Ready, None),
        ae(at(10, 55, 0), "a1", A::Logout, None),
        // Agent a2: logs in at 10:45, ready at once, rung at 10:50 without answer.
        ae(at(10, 45, 0), "a2", A::Login, None),
        ae(at(10, 45, 0), "a2", A::Ready, None),
        ae(at(10, 50, 0), "a2", A::Ringing, Some(9)),
        ae(at(10, 50, 15), "a2", A::NoAnswer, Some(9)),
        ae(at(10, 50, 15), "a2", A::NotReady(Some("no_answer".into())), None),
        qe(at(11, 10, 0), "sales", 6, Q::Enter, 0),
        qe(at(11, 10, 5), "sales", 6, Q::Answer, 5),
        // IVR: main menu visited 4 times, 1 hang-up; sales node 2 visits, 1 hang-up.
        ivr(at(10, 0, 0), 1, "main", Some("1"), 4000, "sales"),
        ivr(at(10, 1, 0), 2, "main", Some("1"), 6000, "sales"),
        ivr(at(10, 2, 0), 3, "main", None, 10_000, "hangup"),
        ivr(at(10, 3, 0), 4, "main", Some("2"), 2000, "queue:support"),
        ivr(at(10, 0, 5), 1, "sales", Some("1"), 3000, "queue:sales"),
        ivr(at(10, 1, 9), 2, "sales", None, 7000, "hangup"),
        // CDRs: two in hour 10 (one answered), one in hour 11 (answered).
        Record::Cdr(cdr(1, at(10, 0, 0), Some(at(10, 0, 10)), at(10, 2, 10))),
        Record::Cdr(cdr(3, at(10, 10, 0), None, at(10, 10, 40))),
        Record::Cdr(cdr(6, at(11, 10, 0), Some(at(11, 10, 5)), at(11, 12, 5))),
    ]
}

fn store_with_data() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    s.write(&data_set()).unwrap();
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn new_file_gets_the_current_schema_and_reopens() {
    let d = tmp();
    let path = d.path().join("sub/dir/cardpbx.db");
    {
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), CURRENT_VERSION);
        s.write(&[Record::Cdr(cdr(1, 1000, Some(2000), 5000))]).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), CURRENT_VERSION);
    assert_eq!(s.count("cdr").unwrap(), 1);
    let ro = Store::open_read_only(&path).unwrap();
    assert_eq!(ro.cdrs(0, 10_000).unwrap(), vec![cdr(1, 1000, Some(2000), 5000)]);
    let mode: String = s.connection().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_file_with_an_older_version_is_migrated() {
    let d = tmp();
    let path = d.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);").unwrap();
    }
    // Version table present but empty: version 0, so every migration runs.
    let ro = Store::open_read_only(&path);
    assert!(matches!(ro, Err(StoreError::TooOld { found: 0, .. })), "{ro:?}");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), CURRENT_VERSION);
    assert_eq!(s.count("queue_events").unwrap(), 0);
}

#[test]
fn a_newer_version_is_refused_and_left_alone() {
    let d = tmp();
    let path = d.path().join("new.db");
    drop(Store::open(&path).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("UPDATE schema_version SET version = ?1", [CURRENT_VERSION + 5]).unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::TooNew { found, .. } if found == CURRENT_VERSION + 5));
    assert!(e.to_string().contains("newer than this cardpbx knows"), "{e}");
    let e = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(e, StoreError::TooNew { .. }));
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, CURRENT_VERSION + 5);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_not_overwritten() {
    let d = tmp();
    let path = d.path().join("junk.db");
    let junk: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e:?}");
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
    assert!(StoreWriter::spawn(&path).is_err());
    assert!(Store::open_read_only(&path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), junk, "the file is untouched");
}

#[test]
fn a_corrupt_database_is_refused_and_not_overwritten() {
    let d = tmp();
    let path = d.path().join("corrupt.db");
    {
        let mut s = Store::open(&path).unwrap();
        let many: Vec<Record> =
            (0..2000).map(|i| Record::Cdr(cdr(i, i as i64, None, i as i64 + 5))).collect();
        s.write(&many).unwrap();
        s.connection().pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    // Keep the header, scribble over the pages after the first.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "the database spans several pages");
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i % 253) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::Corrupt { .. } | StoreError::NotADatabase { .. }),
        "corruption is reported as such: {e:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is untouched");
}

#[test]
fn someone_elses_database_is_refused() {
    let d = tmp();
    let path = d.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);").unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::Foreign { .. }), "{e:?}");
    assert!(Store::open(std::path::Path::new("")).is_err(), "an empty path is refused");
    let e = Store::open_read_only(&d.path().join("missing.db")).unwrap_err();
    assert!(matches!(e, StoreError::Missing { .. }), "{e:?}");
}

#[test]
fn every_record_kind_is_written_and_voicemail_and_callbacks_are_replaced_by_id() {
    let mut s = Store::open_in_memory().unwrap();
    let vm = VoicemailRecord {
        id: 7,
        mailbox: "2001".into(),
        caller: "13800138000".into(),
        ts_ms: 100,
        duration_ms: 12_000,
        file: "vm/7.wav".into(),
        heard: false,
    };
    let cb = CallbackRecord {
        id: 3,
        number: "13912345678".into(),
        queue: "sales".into(),
        requested_ms: 50,
        state: "pending".into(),
        attempts: 0,
        done_ms: None,
    };
    let rec = RecordingRecord {
        call_id: 9,
        agent: Some("a1".into()),
        caller: "1".into(),
        called: "2".into(),
        queue: None,
        start_ms: 5,
        duration_ms: 6,
        file: "rec/9.wav".into(),
        channels: 2,
    };
    s.write(&[
        Record::Voicemail(vm.clone()),
        Record::Callback(cb.clone()),
        Record::Recording(rec),
        ivr(1, 1, "main", None, 1, "hangup"),
        ae(1, "a1", AgentEventKind::NotReady(Some("break".into())), None),
        qe(1, "q", 1, QueueEventKind::Callback, 3),
    ])
    .unwrap();
    assert_eq!(s.voicemails("2001").unwrap(), vec![vm.clone()]);
    let heard = VoicemailRecord { heard: true, ..vm };
    let done = CallbackRecord { state: "done".into(), attempts: 2, done_ms: Some(99), ..cb };
    s.write(&[Record::Voicemail(heard.clone()), Record::Callback(done.clone())]).unwrap();
    assert_eq!(s.voicemails("2001").unwrap(), vec![heard]);
    assert_eq!(s.callbacks(None).unwrap(), vec![done.clone()]);
    assert_eq!(s.callbacks(Some("pending")).unwrap(), vec![]);
    assert_eq!(s.callbacks(Some("done")).unwrap(), vec![done]);
    s.write(&[Record::VoicemailDeleted(7)]).unwrap();
    assert_eq!(s.count("voicemail").unwrap(), 0);
    for t in ["recordings", "ivr_log", "agent_events", "queue_events"] {
        assert_eq!(s.count(t).unwrap(), 1, "{t}");
    }
    let reason: Option<String> =
        s.connection().query_row("SELECT reason FROM agent_events", [], |r| r.get(0)).unwrap();
    assert_eq!(reason.as_deref(), Some("break"));
    assert!(s.count("no_such_table; DROP TABLE cdr").is_err());
}

#[test]
fn writer_batches_in_transactions_and_flushes_on_shutdown() {
    let d = tmp();
    let path = d.path().join("w.db");
    let store = Store::open(&path).unwrap();
    // The writer must wait out the lock however slowly this machine runs today.
    store.connection().busy_timeout(Duration::from_secs(3600)).unwrap();
    // Hold the writer on its first record (another connection has the write lock) while 2500
    // more are queued, so the batching does not depend on thread timing.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (h, join) = StoreWriter::spawn_store(store, 8192).unwrap();
    assert!(h.send(Record::Cdr(cdr(0, 0, None, 1))));
    while h.queued() > 0 {
        std::thread::yield_now();
    }
    for i in 1..2500 {
        assert!(h.send(Record::Cdr(cdr(i, i as i64, None, i as i64 + 1))));
    }
    let h2 = h.clone();
    drop(h);
    assert!(h2.send(Record::Cdr(cdr(9999, 1, None, 2))));
    blocker.execute_batch("COMMIT").unwrap();
    // The last handle gone, the writer writes everything queued and ends: 2501 records in
    // batches of at most 1000. Its first batch (held by the lock) took between 1 and 1000 of
    // them, however fast the records came in while it gathered it, so three or four
    // transactions in all.
    drop(h2);
    let stats = join.join().unwrap();
    assert_eq!((stats.written, stats.dropped, stats.failed), (2501, 0, 0), "{stats:?}");
    assert!((3..=4).contains(&stats.batches), "{stats:?}");
    assert_eq!(Store::open_read_only(&path).unwrap().count("cdr").unwrap(), 2501);
}

#[test]
fn flush_waits_until_written() {
    let d = tmp();
    let path = d.path().join("f.db");
    let (h, join) = StoreWriter::spawn(&path).unwrap();
    h.send(Record::Cdr(cdr(1, 1, None, 2)));
    assert!(h.flush(Duration::from_secs(30)));
    // Readable from another connection while the writer runs.
    assert_eq!(Store::open_read_only(&path).unwrap().count("cdr").unwrap(), 1);
    assert_eq!(h.stats().written, 1);
    drop(h);
    join.join().unwrap();
}

#[test]
fn a_full_channel_drops_and_counts_without_blocking() {
    // Hold the writer up with a second connection's write lock, so the channel fills.
    let d = tmp();
    let path = d.path().join("full.db");
    let store = Store::open(&path).unwrap();
    store.connection().busy_timeout(Duration::from_secs(3600)).unwrap();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (h, join) = StoreWriter::spawn_store(store, 4).unwrap();
    // The writer takes the first record and then waits for the lock.
    assert!(h.send(Record::Cdr(cdr(0, 0, None, 1))));
    while h.queued() > 0 {
        std::thread::yield_now();
    }
    // The writer may still take a few more before it blocks on the lock; after that the
    // channel holds four and the rest are dropped at once, never waited for.
    let accepted = (1..=200).filter(|&i| h.send(Record::Cdr(cdr(i, 0, None, 1)))).count() as u64;
    assert!(
        (4..100).contains(&accepted),
        "the channel holds four (+ what the writer took): {accepted}"
    );
    assert_eq!(h.stats().dropped, 200 - accepted);
    blocker.execute_batch("COMMIT").unwrap();
    drop(h);
    let stats = join.join().unwrap();
    assert_eq!(stats.dropped, 200 - accepted);
    assert_eq!(stats.written + stats.failed, 1 + accepted);
    assert_eq!(Store::open_read_only(&path).unwrap().count("cdr").unwrap() as u64, stats.written);
}

#[test]
fn queue_report_has_the_known_answers() {
    let s = store_with_data();
    let rows = report::queues(&s, &opts(at(10, 0, 0), at(11, 0, 0))).unwrap();
    assert_eq!(rows.len(), 2);
    let sales = &rows[0];
    assert_eq!(sales.queue, "sales");
    assert_eq!(
        (sales.offered, sales.answered, sales.abandoned, sales.timed_out, sales.waiting),
        (5, 2, 2, 1, 0)
    );
    assert_eq!(sales.answered_in_sl, 1, "10 s is within 20 s, 30 s is not");
    assert!(close(sales.service_level.unwrap(), 1.0 / 5.0));
    assert!(close(sales.asa_s.unwrap(), 20.0), "(10 + 30) / 2");
    assert!(close(sales.aht_s.unwrap(), 105.0), "((120 + 30) + 60) / 2");
    assert!(close(sales.abandon_rate.unwrap(), 2.0 / 5.0));
    assert!(close(sales.avg_abandon_s.unwrap(), 30.0), "(40 + 20) / 2");
    let support = &rows[1];
    assert_eq!((support.queue.as_str(), support.offered, support.overflowed), ("support", 1, 1));
    assert_eq!(support.asa_s, None);
    assert!(close(support.service_level.unwrap(), 0.0));
    // A 40 s threshold takes in call 2 too.
    let o = ReportOptions { sl_seconds: 40, ..opts(at(10, 0, 0), at(11, 0, 0)) };
    assert!(close(report::queues(&s, &o).unwrap()[0].service_level.unwrap(), 2.0 / 5.0));
    // A period ending while call 3 waits: it counts as offered and waiting.
    let rows = report::queues(&s, &opts(at(10, 10, 0), at(10, 10, 30))).unwrap();
    assert_eq!(rows[0].offered, 1);
    assert_eq!(rows[0].abandoned, 1, "the outcome after the end of the period still counts");
}

#[test]
fn agent_report_has_the_known_answers() {
    let s = store_with_data();
    let rows = report::agents(&s, &opts(at(10, 0, 0), at(11, 0, 0))).unwrap();
    assert_eq!(rows.len(), 2);
    let a1 = &rows[0];
    assert_eq!(a1.agent, "a1");
    assert_eq!(a1.calls, 2);
    // Ready from 10:00 (state carried in from 09:30). Timeline:
    // idle 10:00:00-10:00:02 (2), ringing 10:00:02-10:00:10 (8), talk 120, wrap 30,
    // idle 10:02:40-10:05:30 (170), talk 60, idle 10:06:30-10:30 (1410), not ready 1200,
    // idle 10:50-10:55 (300), logged out after.
    assert!(close(a1.ringing_s, 8.0));
    assert!(close(a1.talk_s, 180.0));
    assert!(close(a1.wrapup_s, 30.0));
    assert!(close(a1.not_ready_s, 1200.0));
    assert!(close(a1.idle_s, 2.0 + 170.0 + 1410.0 + 300.0));
    assert!(close(a1.logged_in_s, 55.0 * 60.0));
    assert!(close(a1.occupancy.unwrap(), 210.0 / (3300.0 - 1200.0)));
    let a2 = &rows[1];
    assert_eq!((a2.agent.as_str(), a2.calls, a2.no_answer), ("a2", 0, 1));
    // Logged in 10:45-11:00: idle 300, ringing 15, not ready 585.
    assert!(close(a2.idle_s, 300.0));
    assert!(close(a2.ringing_s, 15.0));
    assert!(close(a2.not_ready_s, 585.0));
    assert!(close(a2.logged_in_s, 900.0));
    // A report up to "now" in the middle of the period counts open states only up to now.
    let o = ReportOptions { now_ms: at(10, 0, 2), ..opts(at(10, 0, 0), at(11, 0, 0)) };
    let rows = report::agents(&s, &o).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(close(rows[0].idle_s, 2.0));
}

#[test]
fn hourly_report_has_the_known_answers() {
    let s = store_with_data();
    let rows = report::hourly(&s, &opts(at(9, 0, 0), at(12, 0, 0))).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].hour, "2026-03-02 09:00");
    assert_eq!((rows[0].queue_offered, rows[0].queue_answered), (1, 1), "call 8");
    assert_eq!(rows[1].hour, "2026-03-02 10:00");
    assert_eq!(
        (rows[1].calls, rows[1].calls_answered, rows[1].queue_offered),
        (2, 1, 6),
        "5 sales + 1 support"
    );
    assert_eq!((rows[1].queue_answered, rows[1].queue_abandoned), (2, 2));
    assert_eq!(
        (rows[2].calls, rows[2].calls_answered, rows[2].queue_offered, rows[2].queue_answered),
        (1, 1, 1, 1)
    );
    // In a zone one hour east the same calls fall in the next local hour.
    let o = ReportOptions { offset_s: 3600, ..opts(at(9, 0, 0), at(12, 0, 0)) };
    let rows = report::hourly(&s, &o).unwrap();
    assert_eq!(rows[1].hour, "2026-03-02 11:00");
    assert_eq!(rows[1].queue_offered, 6);
}

#[test]
fn ivr_report_has_the_known_answers() {
    let s = store_with_data();
    let rows = report::ivr(&s, &opts(at(10, 0, 0), at(11, 0, 0))).unwrap();
    assert_eq!(rows.len(), 2);
    let main = &rows[0];
    assert_eq!((main.node.as_str(), main.visits, main.dropouts), ("main", 4, 1));
    assert!(close(main.dropout_rate, 0.25));
    assert!(close(main.avg_s_in_node, 5.5), "(4 + 6 + 10 + 2) / 4");
    assert_eq!(main.exits.get("sales"), Some(&2));
    assert_eq!(main.exits.get("queue:support"), Some(&1));
    assert_eq!(main.exits.get("hangup"), Some(&1));
    let sales = &rows[1];
    assert_eq!((sales.visits, sales.dropouts), (2, 1));
    assert!(close(sales.avg_s_in_node, 5.0));
}

#[test]
fn cdr_report_is_the_rows_of_the_period() {
    let s = store_with_data();
    let r = report::compute(&s, ReportKind::Cdr, &opts(at(10, 0, 0), at(11, 0, 0))).unwrap();
    let report::Report::Cdr(rows) = r else { panic!("cdr rows") };
    assert_eq!(rows.iter().map(|c| c.call_id).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(rows[0], cdr(1, at(10, 0, 0), Some(at(10, 0, 10)), at(10, 2, 10)));
}

#[test]
fn csv_and_json_outputs() {
    let s = store_with_data();
    let o = opts(at(10, 0, 0), at(11, 0, 0));
    let r = report::compute(&s, ReportKind::Queues, &o).unwrap();
    let mut out = Vec::new();
    report::write_csv(&r, 0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("queue,offered,answered,in_sl,abandoned"));
    assert_eq!(lines[1], "sales,5,2,1,2,1,0,0,0,20.0,20.0,105.0,40.0,30.0");
    assert_eq!(lines[2], "support,1,0,0,0,0,1,0,0,0.0,-,-,0.0,-");

    let mut out = Vec::new();
    report::write_json(&r, ReportKind::Queues, &o, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["report"], "queues");
    assert_eq!(v["from"], "2026-03-02 10:00:00");
    assert_eq!(v["rows"][0]["queue"], "sales");
    assert_eq!(v["rows"][0]["offered"], 5);
    assert_eq!(v["rows"][0]["aht_s"], 105.0);
    assert_eq!(v["rows"][1]["asa_s"], serde_json::Value::Null);

    // CSV quoting of the IVR exits and CDR names.
    let mut c = cdr(42, at(10, 0, 0), None, at(10, 0, 1));
    c.caller_name = Some("Li, \"Si\"".into());
    let r = report::Report::Cdr(vec![c]);
    let mut out = Vec::new();
    report::write_csv(&r, 0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().nth(1).unwrap().contains(",\"Li, \"\"Si\"\"\","), "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with("42,2026-03-02 10:00:00,,"));

    let mut out = Vec::new();
    report::write_text(&report::Report::Ivr(vec![]), 0, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("(no data in this period)"));
}

#[test]
fn the_cli_reads_the_file_and_parses_the_period() {
    use clap::Parser;
    let d = tmp();
    let path = d.path().join("r.db");
    Store::open(&path).unwrap().write(&data_set()).unwrap();
    let cli = crate::ctl::cli::Cli::try_parse_from([
        "cardpbx",
        "report",
        "ivr",
        "--from",
        "2026-03-02T10:00",
        "--to",
        "2026-03-02 11:00",
        "--db",
        path.to_str().unwrap(),
        "--csv",
        "--utc",
    ])
    .unwrap();
    let crate::ctl::cli::Command::Report(args) = cli.cmd else { panic!("report command") };
    let mut out = Vec::new();
    assert_eq!(report::run(&args, &mut out).unwrap(), 0);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().nth(1), Some("main,4,1,25.0,5.5,hangup=1;queue:support=1;sales=2"));

    let bad = ReportArgs {
        from: Some("2026-03-02".into()),
        to: Some("2026-03-01".into()),
        ..args.clone()
    };
    let e = report::run(&bad, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("period is empty"), "{e}");
    let bad = ReportArgs { from: Some("soon".into()), ..args.clone() };
    assert!(report::run(&bad, &mut Vec::new()).unwrap_err().to_string().contains("--from"));
    let missing = ReportArgs { db: Some(d.path().join("none.db")), ..args };
    assert!(report::run(&missing, &mut Vec::new())
        .unwrap_err()
        .to_string()
        .contains("no such file"));
    // Without --from, today from local midnight to now.
    let o = report::options(&ReportArgs { from: None, to: None, ..bad_args() }, 0, at(15, 30, 0))
        .unwrap();
    assert_eq!((o.from_ms, o.to_ms), (day(), at(15, 30, 0)));
}

fn bad_args() -> ReportArgs {
    ReportArgs {
        kind: ReportKind::Cdr,
        from: None,
        to: None,
        db: None,
        config: None,
        sl_seconds: 20,
        csv: false,
        json: false,
        utc: true,
        staffing: Default::default(),
    }
}

#[test]
fn database_path_comes_from_the_config() {
    let d = tmp();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[system]\nspool_dir = \"/var/spool/x\"\n").unwrap();
    let args = ReportArgs { config: Some(cfg.clone()), ..bad_args() };
    assert_eq!(
        report::database_path(&args).unwrap(),
        std::path::Path::new("/var/spool/x/cardpbx.db")
    );
    std::fs::write(&cfg, "[system]\ndatabase = \"/data/pbx.db\"\n").unwrap();
    assert_eq!(report::database_path(&args).unwrap(), std::path::Path::new("/data/pbx.db"));
    let args = ReportArgs { db: Some("/x.db".into()), ..args };
    assert_eq!(report::database_path(&args).unwrap(), std::path::Path::new("/x.db"));
}

#[test]
fn recordings_report_lists_the_files_of_the_period() {
    let mut s = Store::open_in_memory().unwrap();
    let rec = |call: u64, start: i64| RecordingRecord {
        call_id: call,
        agent: Some("101".into()),
        caller: "13900001111".into(),
        called: "600".into(),
        queue: Some("sales".into()),
        start_ms: start,
        duration_ms: 61_500,
        file: format!("/spool/recordings/2026/03/02/{call}.wav"),
        channels: 2,
    };
    s.write(&[
        Record::Recording(rec(7, at(9, 59, 0))),
        Record::Recording(rec(8, at(10, 5, 0))),
        Record::Recording(rec(9, at(11, 0, 0))),
    ])
    .unwrap();
    let r = report::compute(&s, ReportKind::Recordings, &opts(at(10, 0, 0), at(11, 0, 0))).unwrap();
    let mut out = Vec::new();
    report::write_csv(&r, 0, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "call_id,start,length_s,caller,called,agent,queue,channels,file");
    assert_eq!(lines.len(), 2, "only the recording that began in the period: {text}");
    assert!(lines[1].starts_with("8,2026-03-02 10:05:00,61.5,13900001111,600,101,sales,2,"));
    assert!(lines[1].ends_with("/8.wav"));
}

#[test]
fn last_agents_are_the_latest_per_caller_and_queue_within_the_period() {
    let mut s = Store::open_in_memory().unwrap();
    let call = |id: u64, caller: &str, queue: &str, agent: &str, ended: i64| {
        let mut c = cdr(id, ended - 60_000, Some(ended - 50_000), ended);
        c.caller = caller.into();
        c.queue = Some(queue.into());
        c.agent = Some(agent.into());
        Record::Cdr(c)
    };
    let mut unanswered = cdr(9, at(9, 0, 0), None, at(9, 1, 0));
    unanswered.queue = Some("sales".into());
    s.write(&[
        call(1, "0301", "sales", "101", at(8, 0, 0)),
        call(2, "0301", "sales", "102", at(10, 0, 0)),
        call(3, "0301", "support", "103", at(9, 0, 0)),
        call(4, "0302", "sales", "104", at(6, 0, 0)),
        Record::Cdr(unanswered),
    ])
    .unwrap();
    let rows = s.last_agents(at(7, 0, 0)).unwrap();
    assert_eq!(
        rows,
        [
            ("0301".to_string(), "sales".to_string(), "102".to_string(), at(10, 0, 0)),
            ("0301".to_string(), "support".to_string(), "103".to_string(), at(9, 0, 0)),
        ]
    );
}
