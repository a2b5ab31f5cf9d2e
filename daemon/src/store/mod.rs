//! The embedded store: CDRs, queue and agent events, the IVR log, voicemail, callbacks and the
//! recordings index in one SQLite file (bundled SQLite, WAL mode).
//!
//! Call control and the call-center engines never touch the database: they send [`Record`]s to a
//! [`StoreHandle`], which never blocks, and one writer thread ([`StoreWriter`]) writes them in
//! batches, each batch one transaction. Reports ([`report`]) read the file through their own
//! read-only connection, which works while the daemon runs.
//!
//! Opening is careful: a file that is not SQLite, is corrupt, belongs to something else or was
//! written by a newer cardpbx is refused with a clear error and left untouched.

pub mod fax;
pub mod record;
pub mod report;
mod schema;
pub mod staffing;
pub mod time;
mod writer;

#[cfg(test)]
mod tests;

pub use fax::FaxRecord;
pub use record::{
    AgentEvent, AgentEventKind, CallbackRecord, CdrRecord, HangupSide, IvrStep, QueueEvent,
    QueueEventKind, Record, RecordingRecord, VoicemailRecord,
};
pub use schema::CURRENT_VERSION;
pub use writer::{DaemonStore, StoreHandle, StoreWriter, WriterStats};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The path that opens a private in-memory database (the demo uses it).
pub const IN_MEMORY: &str = ":memory:";

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("database {path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file or its directory could not be read or created.
    #[error("database {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file exists but is not an SQLite database.
    #[error("database {path}: not an SQLite database (refusing to touch it; move it away or name another file)")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// SQLite's integrity check failed.
    #[error("database {path}: the file is corrupt ({detail}); it was left untouched: restore a backup or move it away")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the check said.
        detail: String,
    },
    /// An SQLite database with tables, but not a cardpbx store.
    #[error("database {path}: an SQLite database, but not a cardpbx store (no schema_version table); refusing to touch it")]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer cardpbx.
    #[error("database {path}: schema version {found} is newer than this cardpbx knows ({known}); upgrade cardpbx or name another file")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// Read-only access to a file whose schema is older than this build's.
    #[error("database {path}: schema version {found} is older than this cardpbx's ({known}); start the daemon once to upgrade it")]
    TooOld {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// This build's version.
        known: i64,
    },
    /// Read-only access to a file that does not exist.
    #[error("database {path}: no such file (the daemon creates it; name one with --db)")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A statement failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// The 16 bytes every SQLite 3 database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Refuse an existing file that is not SQLite (without opening it through SQLite).
fn check_magic(path: &Path) -> Result<(), StoreError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Io { path: path.into(), source }),
    };
    let mut head = Vec::with_capacity(16);
    (&mut f)
        .take(16)
        .read_to_end(&mut head)
        .map_err(|source| StoreError::Io { path: path.into(), source })?;
    if head.is_empty() || head.as_slice() == SQLITE_MAGIC {
        Ok(())
    } else {
        Err(StoreError::NotADatabase { path: path.into() })
    }
}

/// Map SQLite's "not a database" and "corrupt" errors to our clear ones.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path: path.into() },
        Some(ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path: path.into(), detail: e.to_string() }
        }
        _ => StoreError::Open { path: path.into(), source: e },
    }
}

impl Store {
    /// Open (or create) the store at `path` for writing, creating its directory and bringing
    /// its schema up to date. [`IN_MEMORY`] opens a private in-memory store.
    ///
    /// # Errors
    /// See [`StoreError`]: the file is not SQLite, is corrupt, is someone else's database, was
    /// written by a newer cardpbx, or cannot be created. The file is never changed then.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let memory = path.as_os_str() == IN_MEMORY;
        if path.as_os_str().is_empty() {
            // SQLite would open a temporary database that vanishes on close.
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty path");
            return Err(StoreError::Io { path: path.into(), source });
        }
        if !memory {
            check_magic(path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|source| StoreError::Io { path: path.into(), source })?;
            }
        }
        let conn = Connection::open(path).map_err(|e| classify(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| classify(path, e))?;
        let mut store = Store { conn, path: path.into() };
        store.integrity_check()?;
        let found = store.found_version()?;
        if found > CURRENT_VERSION {
            return Err(StoreError::TooNew { path: path.into(), found, known: CURRENT_VERSION });
        }
        if !memory {
            // WAL: readers (reports) do not block the writer, nor it them. NORMAL sync in WAL
            // mode loses nothing committed when the process dies, only on power loss.
            store.conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| classify(path, e))?;
            store.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        store.migrate(found)?;
        Ok(store)
    }

    /// A private in-memory store with the current schema.
    ///
    /// # Errors
    /// Only if SQLite itself fails.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::open(Path::new(IN_MEMORY))
    }

    /// Open an existing store for reading only (reports). Works while the daemon writes.
    ///
    /// # Errors
    /// The file is missing, not SQLite, corrupt, someone else's, or of another schema version.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.into() });
        }
        check_magic(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| classify(path, e))?;
        let store = Store { conn, path: path.into() };
        let found = store.found_version()?;
        match found.cmp(&CURRENT_VERSION) {
            std::cmp::Ordering::Greater => {
                Err(StoreError::TooNew { path: path.into(), found, known: CURRENT_VERSION })
            }
            std::cmp::Ordering::Less => {
                Err(StoreError::TooOld { path: path.into(), found, known: CURRENT_VERSION })
            }
            std::cmp::Ordering::Equal => Ok(store),
        }
    }

    /// The file this store is in (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite connection, for queries the store has no function for.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The schema version of the open file.
    ///
    /// # Errors
    /// A failed query.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.found_version()
    }

    fn integrity_check(&self) -> Result<(), StoreError> {
        let r: Result<String, _> = self.conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
        match r {
            Ok(s) if s == "ok" => Ok(()),
            Ok(s) => Err(StoreError::Corrupt { path: self.path.clone(), detail: s }),
            Err(e) => Err(classify(&self.path, e)),
        }
    }

    /// The schema version in the file: 0 for an empty database.
    fn found_version(&self) -> Result<i64, StoreError> {
        let path = &self.path;
        let tables: Vec<String> = (|| {
            let mut st =
                self.conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
            let names = st.query_map([], |r| r.get::<_, String>(0))?;
            names.collect::<Result<Vec<_>, _>>()
        })()
        .map_err(|e| classify(path, e))?;
        if tables.is_empty() {
            return Ok(0);
        }
        if !tables.iter().any(|t| t == "schema_version") {
            return Err(StoreError::Foreign { path: path.clone() });
        }
        let v: Option<i64> = self
            .conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| classify(path, e))?
            .flatten();
        Ok(v.unwrap_or(0))
    }

    fn migrate(&mut self, found: i64) -> Result<(), StoreError> {
        if found >= CURRENT_VERSION {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)?;
            tx.execute("DELETE FROM schema_version", [])?;
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i as i64 + 1])?;
        }
        tx.commit()?;
        tracing::info!(path = %self.path.display(), from = found, to = CURRENT_VERSION, "database schema updated");
        Ok(())
    }

    /// Write `records` in one transaction.
    ///
    /// # Errors
    /// A failed statement (disk full, database locked too long); nothing of the batch is
    /// written then.
    pub fn write(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for r in records {
            write_one(&tx, r)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The recordings that began in `[from_ms, to_ms)`, oldest first.
    ///
    /// # Errors
    /// A failed query.
    pub fn recordings(&self, from_ms: i64, to_ms: i64) -> Result<Vec<RecordingRecord>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT call_id, agent, caller, called, queue, start_ms, duration_ms, file, channels
             FROM recordings WHERE start_ms >= ?1 AND start_ms < ?2 ORDER BY start_ms, id",
        )?;
        let rows = st.query_map(params![from_ms, to_ms], |r| {
            Ok(RecordingRecord {
                call_id: r.get::<_, i64>(0)? as u64,
                agent: r.get(1)?,
                caller: r.get(2)?,
                called: r.get(3)?,
                queue: r.get(4)?,
                start_ms: r.get(5)?,
                duration_ms: r.get(6)?,
                file: r.get(7)?,
                channels: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The CDRs of calls that started in `[from_ms, to_ms)`, oldest first.
    ///
    /// # Errors
    /// A failed query.
    pub fn cdrs(&self, from_ms: i64, to_ms: i64) -> Result<Vec<CdrRecord>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT call_id, started_ms, answered_ms, ended_ms, direction, caller, caller_name,
                    called, dnis, trunk_group, trunk_port, extension, agent, queue, wait_ms,
                    talk_ms, hangup_side, cause, why, recording, ivr_path, transfers, fax
             FROM cdr WHERE started_ms >= ?1 AND started_ms < ?2 ORDER BY started_ms, id",
        )?;
        let rows = st.query_map(params![from_ms, to_ms], |r| {
            let side: Option<String> = r.get(16)?;
            Ok(CdrRecord {
                call_id: r.get::<_, i64>(0)? as u64,
                started_ms: r.get(1)?,
                answered_ms: r.get(2)?,
                ended_ms: r.get(3)?,
                direction: r.get(4)?,
                caller: r.get(5)?,
                caller_name: r.get(6)?,
                called: r.get(7)?,
                dnis: r.get(8)?,
                trunk_group: r.get(9)?,
                trunk_port: r.get(10)?,
                extension: r.get(11)?,
                agent: r.get(12)?,
                queue: r.get(13)?,
                wait_ms: r.get(14)?,
                talk_ms: r.get(15)?,
                hangup_side: match side.as_deref() {
                    Some("caller") => Some(HangupSide::Caller),
                    Some("called") => Some(HangupSide::Called),
                    Some("system") => Some(HangupSide::System),
                    _ => None,
                },
                cause: r.get(17)?,
                why: r.get(18)?,
                recording: r.get(19)?,
                ivr_path: r.get(20)?,
                transfers: r.get::<_, i64>(21)? as u32,
                fax: r.get::<_, i64>(22)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// For sticky routing: per caller and queue, the agent of the caller's latest answered
    /// queue call that ended at or after `since_ms`, as `(caller, queue, agent, ended_ms)`.
    ///
    /// # Errors
    /// A failed query.
    pub fn last_agents(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        // SQLite gives the bare columns of the row that holds the MAX().
        let mut st = self.conn.prepare(
            "SELECT caller, queue, agent, MAX(ended_ms) FROM cdr
             WHERE agent IS NOT NULL AND queue IS NOT NULL AND caller <> '' AND ended_ms >= ?1
             GROUP BY caller, queue ORDER BY caller, queue",
        )?;
        let rows =
            st.query_map(params![since_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The voicemail messages of `mailbox`, oldest first.
    ///
    /// # Errors
    /// A failed query.
    pub fn voicemails(&self, mailbox: &str) -> Result<Vec<VoicemailRecord>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, mailbox, caller, ts_ms, duration_ms, file, heard FROM voicemail
             WHERE mailbox = ?1 ORDER BY ts_ms, id",
        )?;
        let rows = st.query_map([mailbox], |r| {
            Ok(VoicemailRecord {
                id: r.get(0)?,
                mailbox: r.get(1)?,
                caller: r.get(2)?,
                ts_ms: r.get(3)?,
                duration_ms: r.get(4)?,
                file: r.get(5)?,
                heard: r.get::<_, i64>(6)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The callback requests in `state` (all when `None`), oldest first.
    ///
    /// # Errors
    /// A failed query.
    pub fn callbacks(&self, state: Option<&str>) -> Result<Vec<CallbackRecord>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, number, queue, requested_ms, state, attempts, done_ms FROM callbacks
             WHERE ?1 IS NULL OR state = ?1 ORDER BY requested_ms, id",
        )?;
        let rows = st.query_map([state], |r| {
            Ok(CallbackRecord {
                id: r.get(0)?,
                number: r.get(1)?,
                queue: r.get(2)?,
                requested_ms: r.get(3)?,
                state: r.get(4)?,
                attempts: r.get::<_, i64>(5)? as u32,
                done_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// How many rows `table` has (for tests and diagnostics).
    ///
    /// # Errors
    /// An unknown table or a failed query.
    pub fn count(&self, table: &str) -> Result<i64, StoreError> {
        const TABLES: &[&str] = &[
            "cdr",
            "queue_events",
            "agent_events",
            "ivr_log",
            "voicemail",
            "callbacks",
            "recordings",
            "faxes",
        ];
        if !TABLES.contains(&table) {
            return Err(StoreError::Sql(rusqlite::Error::InvalidParameterName(table.into())));
        }
        Ok(self.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
    }
}

fn write_one(tx: &rusqlite::Transaction<'_>, r: &Record) -> rusqlite::Result<()> {
    match r {
        Record::Cdr(c) => {
            tx.prepare_cached(
                "INSERT INTO cdr (call_id, started_ms, answered_ms, ended_ms, direction, caller,
                    caller_name, called, dnis, trunk_group, trunk_port, extension, agent, queue,
                    wait_ms, talk_ms, hangup_side, cause, why, recording, ivr_path, transfers, fax)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
            )?
            .execute(params![
                c.call_id as i64,
                c.started_ms,
                c.answered_ms,
                c.ended_ms,
                c.direction,
                c.caller,
                c.caller_name,
                c.called,
                c.dnis,
                c.trunk_group,
                c.trunk_port,
                c.extension,
                c.agent,
                c.queue,
                c.wait_ms,
                c.talk_ms,
                c.hangup_side.map(HangupSide::as_str),
                c.cause,
                c.why,
                c.recording,
                c.ivr_path,
                i64::from(c.transfers),
                c.fax,
            ])?;
        }
        Record::QueueEvent(e) => {
            tx.prepare_cached(
                "INSERT INTO queue_events (ts_ms, queue, call_id, agent, event, wait_ms, position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                e.ts_ms,
                e.queue,
                e.call_id as i64,
                e.agent,
                e.event.as_str(),
                e.wait_ms,
                e.position,
            ])?;
        }
        Record::AgentEvent(e) => {
            tx.prepare_cached(
                "INSERT INTO agent_events (ts_ms, agent, event, reason, call_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                e.ts_ms,
                e.agent,
                e.event.as_str(),
                e.event.reason(),
                e.call_id.map(|c| c as i64),
            ])?;
        }
        Record::IvrStep(s) => {
            tx.prepare_cached(
                "INSERT INTO ivr_log (ts_ms, call_id, node, key, ms_in_node, exit)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.ts_ms,
                s.call_id as i64,
                s.node,
                s.key,
                s.ms_in_node,
                s.exit
            ])?;
        }
        Record::Voicemail(v) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO voicemail (id, mailbox, caller, ts_ms, duration_ms, file,
                    heard) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                v.id,
                v.mailbox,
                v.caller,
                v.ts_ms,
                v.duration_ms,
                v.file,
                v.heard
            ])?;
        }
        Record::VoicemailDeleted(id) => {
            tx.prepare_cached("DELETE FROM voicemail WHERE id = ?1")?.execute([id])?;
        }
        Record::Callback(c) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO callbacks (id, number, queue, requested_ms, state,
                    attempts, done_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                c.id,
                c.number,
                c.queue,
                c.requested_ms,
                c.state,
                i64::from(c.attempts),
                c.done_ms,
            ])?;
        }
        Record::Fax(f) => fax::write(tx, f)?,
        Record::Recording(r) => {
            tx.prepare_cached(
                "INSERT INTO recordings (call_id, agent, caller, called, queue, start_ms,
                    duration_ms, file, channels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                r.call_id as i64,
                r.agent,
                r.caller,
                r.called,
                r.queue,
                r.start_ms,
                r.duration_ms,
                r.file,
                i64::from(r.channels),
            ])?;
        }
    }
    Ok(())
}
