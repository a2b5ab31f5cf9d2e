//! Faxes in the store: one row per fax received or sent (after its last attempt), table
//! `faxes` (schema version 2).

use super::{Store, StoreError};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A fax received or sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FaxRecord {
    /// Row id (assigned by the store; 0 in records to write).
    pub id: i64,
    /// `received` or `sent`.
    pub direction: String,
    /// The far end's number (caller ID of a received fax, the number dialled for a sent one).
    pub remote_number: String,
    /// The far end's TSI/CSI, when it sent one.
    pub remote_ident: Option<String>,
    /// Pages received, or confirmed by the far end.
    pub pages: u32,
    /// Rate of the last DCS, bit/s (0 if none).
    pub bit_rate: u32,
    /// `success`, or the reason for failure (T.30 status word, `busy`, `no_answer`, ...).
    pub status: String,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// The document: the received TIFF in the spool, or the file sent.
    pub file: Option<String>,
    /// Calls placed for a sent fax (1 for a received one).
    pub attempts: u32,
    /// The trunk group of the call.
    pub trunk_group: Option<String>,
    /// The daemon's job number (unique while it runs).
    pub job: u64,
    /// When the fax call began (UTC ms).
    pub started_ms: i64,
    /// When it ended (UTC ms).
    pub ended_ms: i64,
}

/// The table (migration 2).
pub(super) const MIGRATION: &str = "
    CREATE TABLE faxes (
        id            INTEGER PRIMARY KEY,
        direction     TEXT NOT NULL,
        remote_number TEXT NOT NULL,
        remote_ident  TEXT,
        pages         INTEGER NOT NULL,
        bit_rate      INTEGER NOT NULL,
        status        TEXT NOT NULL,
        error         TEXT,
        file          TEXT,
        attempts      INTEGER NOT NULL DEFAULT 1,
        trunk_group   TEXT,
        job           INTEGER NOT NULL,
        started_ms    INTEGER NOT NULL,
        ended_ms      INTEGER NOT NULL
    );
    CREATE INDEX faxes_started ON faxes(started_ms);
    ";

/// Insert one fax (its `id` is ignored: the store assigns one).
pub(super) fn write(tx: &rusqlite::Transaction<'_>, f: &FaxRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO faxes (direction, remote_number, remote_ident, pages, bit_rate, status,
            error, file, attempts, trunk_group, job, started_ms, ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        f.direction,
        f.remote_number,
        f.remote_ident,
        f.pages,
        f.bit_rate,
        f.status,
        f.error,
        f.file,
        f.attempts,
        f.trunk_group,
        f.job as i64,
        f.started_ms,
        f.ended_ms,
    ])?;
    Ok(())
}

const COLUMNS: &str = "id, direction, remote_number, remote_ident, pages, bit_rate, status, \
    error, file, attempts, trunk_group, job, started_ms, ended_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FaxRecord> {
    Ok(FaxRecord {
        id: r.get(0)?,
        direction: r.get(1)?,
        remote_number: r.get(2)?,
        remote_ident: r.get(3)?,
        pages: r.get(4)?,
        bit_rate: r.get(5)?,
        status: r.get(6)?,
        error: r.get(7)?,
        file: r.get(8)?,
        attempts: r.get(9)?,
        trunk_group: r.get(10)?,
        job: r.get::<_, i64>(11)? as u64,
        started_ms: r.get(12)?,
        ended_ms: r.get(13)?,
    })
}

impl Store {
    /// The most recent faxes, newest first (at most `limit`).
    ///
    /// # Errors
    /// A failed query.
    pub fn faxes(&self, limit: u32) -> Result<Vec<FaxRecord>, StoreError> {
        let mut st = self.connection().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM faxes ORDER BY started_ms DESC, id DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit], row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One fax by id.
    ///
    /// # Errors
    /// A failed query.
    pub fn fax(&self, id: i64) -> Result<Option<FaxRecord>, StoreError> {
        let mut st = self
            .connection()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM faxes WHERE id = ?1"))?;
        Ok(st.query_row([id], row).optional()?)
    }
}
