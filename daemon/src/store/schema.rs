//! The database schema, as a list of migrations.
//!
//! `MIGRATIONS[i]` takes a database from schema version `i` to `i + 1`; a new database runs them
//! all. Never edit a released migration: add a new one.

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: CDRs, queue/agent events, IVR log, voicemail, callbacks, recordings.
    "
    CREATE TABLE cdr (
        id          INTEGER PRIMARY KEY,
        call_id     INTEGER NOT NULL,
        started_ms  INTEGER NOT NULL,
        answered_ms INTEGER,
        ended_ms    INTEGER NOT NULL,
        direction   TEXT NOT NULL,
        caller      TEXT NOT NULL,
        caller_name TEXT,
        called      TEXT NOT NULL,
        dnis        TEXT,
        trunk_group TEXT,
        trunk_port  TEXT,
        extension   TEXT,
        agent       TEXT,
        queue       TEXT,
        wait_ms     INTEGER NOT NULL,
        talk_ms     INTEGER NOT NULL,
        hangup_side TEXT,
        cause       TEXT NOT NULL,
        why         TEXT,
        recording   TEXT,
        ivr_path    TEXT,
        transfers   INTEGER NOT NULL DEFAULT 0,
        fax         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX cdr_started ON cdr(started_ms);
    CREATE INDEX cdr_call ON cdr(call_id);

    CREATE TABLE queue_events (
        id       INTEGER PRIMARY KEY,
        ts_ms    INTEGER NOT NULL,
        queue    TEXT NOT NULL,
        call_id  INTEGER NOT NULL,
        agent    TEXT,
        event    TEXT NOT NULL,
        wait_ms  INTEGER NOT NULL DEFAULT 0,
        position INTEGER
    );
    CREATE INDEX queue_events_ts ON queue_events(ts_ms);
    CREATE INDEX queue_events_queue_ts ON queue_events(queue, ts_ms);

    CREATE TABLE agent_events (
        id      INTEGER PRIMARY KEY,
        ts_ms   INTEGER NOT NULL,
        agent   TEXT NOT NULL,
        event   TEXT NOT NULL,
        reason  TEXT,
        call_id INTEGER
    );
    CREATE INDEX agent_events_ts ON agent_events(ts_ms);
    CREATE INDEX agent_events_agent_ts ON agent_events(agent, ts_ms);

    CREATE TABLE ivr_log (
        id         INTEGER PRIMARY KEY,
        ts_ms      INTEGER NOT NULL,
        call_id    INTEGER NOT NULL,
        node       TEXT NOT NULL,
        key        TEXT,
        ms_in_node INTEGER NOT NULL,
        exit       TEXT NOT NULL
    );
    CREATE INDEX ivr_log_ts ON ivr_log(ts_ms);
    CREATE INDEX ivr_log_call ON ivr_log(call_id);

    CREATE TABLE voicemail (
        id          INTEGER PRIMARY KEY,
        mailbox     TEXT NOT NULL,
        caller      TEXT NOT NULL,
        ts_ms       INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        file        TEXT NOT NULL,
        heard       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX voicemail_mailbox ON voicemail(mailbox, ts_ms);

    CREATE TABLE callbacks (
        id           INTEGER PRIMARY KEY,
        number       TEXT NOT NULL,
        queue        TEXT NOT NULL,
        requested_ms INTEGER NOT NULL,
        state        TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        done_ms      INTEGER
    );
    CREATE INDEX callbacks_requested ON callbacks(requested_ms);
    CREATE INDEX callbacks_state ON callbacks(state, requested_ms);

    CREATE TABLE recordings (
        id          INTEGER PRIMARY KEY,
        call_id     INTEGER NOT NULL,
        agent       TEXT,
        caller      TEXT NOT NULL,
        called      TEXT NOT NULL,
        queue       TEXT,
        start_ms    INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        file        TEXT NOT NULL,
        channels    INTEGER NOT NULL
    );
    CREATE INDEX recordings_start ON recordings(start_ms);
    CREATE INDEX recordings_call ON recordings(call_id);
    ",
    // 2: faxes received and sent.
    super::fax::MIGRATION,
];

/// The schema version this build writes and reads.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;
