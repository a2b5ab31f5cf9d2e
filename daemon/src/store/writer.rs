//! The writer thread: records in through a bounded channel, out to SQLite in batches.

use super::{Record, Store, StoreError};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records the channel holds before [`StoreHandle::send`] starts dropping.
pub const DEFAULT_CAPACITY: usize = 8192;
/// Most records written in one transaction.
const MAX_BATCH: usize = 1000;

#[allow(clippy::large_enum_variant)]
enum Msg {
    Rec(Record),
    /// Answer once everything sent before has been written.
    Flush(Sender<()>),
}

/// Counters shared by the handles and the writer.
#[derive(Debug)]
struct Shared {
    /// Records refused because the channel was full.
    dropped: AtomicU64,
    /// Records the writer could not write (the batch failed twice).
    failed: AtomicU64,
    /// Records written.
    written: AtomicU64,
    /// Transactions committed.
    batches: AtomicU64,
    /// Milliseconds since `epoch` of the last "records dropped" log line (+1; 0 = never).
    last_drop_log_ms: AtomicU64,
    epoch: Instant,
}

/// What the writer did, returned by its thread when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct WriterStats {
    /// Records written.
    pub written: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Records refused because the channel was full.
    pub dropped: u64,
    /// Records lost because writing them failed.
    pub failed: u64,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Rec(r) => write!(f, "Rec({r:?})"),
            Msg::Flush(_) => write!(f, "Flush"),
        }
    }
}

impl StoreHandle {
    /// Queue `record` for writing. Never blocks: when the writer has fallen too far behind the
    /// record is dropped and counted (and a warning logged at most once a second). Whether it
    /// was queued.
    pub fn send(&self, record: Record) -> bool {
        match self.tx.try_send(Msg::Rec(record)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = self.shared.epoch.elapsed().as_millis() as u64 + 1;
                let last = self.shared.last_drop_log_ms.load(Ordering::Relaxed);
                if (last == 0 || now >= last + 1000)
                    && self
                        .shared
                        .last_drop_log_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(dropped = n, "store writer behind: records dropped");
                }
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Wait until everything sent so far is written (at most `timeout`); whether it was.
    /// Blocks: not for the control thread's hot path (tests, shutdown, reports).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.tx.send_timeout(Msg::Flush(tx), timeout).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    /// Records queued and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        self.shared.snapshot()
    }
}

impl Shared {
    fn snapshot(&self) -> WriterStats {
        WriterStats {
            written: self.written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Starts the writer thread.
pub struct StoreWriter;

impl StoreWriter {
    /// Open the store at `path` (see [`Store::open`]) and start its writer thread. The thread
    /// ends, after writing everything queued, when the last [`StoreHandle`] is dropped.
    ///
    /// # Errors
    /// The store cannot be opened, or the thread cannot start.
    pub fn spawn(path: &Path) -> Result<(StoreHandle, JoinHandle<WriterStats>), StoreError> {
        let store = Store::open(path)?;
        StoreWriter::spawn_store(store, DEFAULT_CAPACITY)
    }

    /// Start a writer thread for an open `store`, with room for `capacity` queued records.
    ///
    /// # Errors
    /// The thread cannot start.
    pub fn spawn_store(
        store: Store,
        capacity: usize,
    ) -> Result<(StoreHandle, JoinHandle<WriterStats>), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            last_drop_log_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let handle = StoreHandle { tx, shared: shared.clone() };
        let path = store.path().to_path_buf();
        let join = std::thread::Builder::new()
            .name("cardpbx-store".into())
            .spawn(move || run(store, rx, shared))
            .map_err(|source| StoreError::Io { path, source })?;
        Ok((handle, join))
    }
}

fn run(mut store: Store, rx: Receiver<Msg>, shared: Arc<Shared>) -> WriterStats {
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
    let mut waiting: Vec<Sender<()>> = Vec::new();
    // Block for the first message, then take whatever else is queued, up to a batch.
    while let Ok(first) = rx.recv() {
        let mut msg = Some(first);
        while let Some(m) = msg.take() {
            match m {
                Msg::Rec(r) => batch.push(r),
                Msg::Flush(done) => waiting.push(done),
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            msg = rx.try_recv().ok();
        }
        write_batch(&mut store, &mut batch, &shared);
        for w in waiting.drain(..) {
            let _ = w.send(());
        }
    }
    write_batch(&mut store, &mut batch, &shared);
    let stats = shared.snapshot();
    tracing::debug!(?stats, "store writer stopped");
    stats
}

fn write_batch(store: &mut Store, batch: &mut Vec<Record>, shared: &Shared) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    let mut result = store.write(batch);
    if let Err(e) = &result {
        tracing::warn!(error = %e, records = n, "store write failed; retrying once");
        std::thread::sleep(Duration::from_millis(200));
        result = store.write(batch);
    }
    match result {
        Ok(()) => {
            shared.written.fetch_add(n, Ordering::Relaxed);
            shared.batches.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::error!(error = %e, records = n, "store write failed: records lost");
            shared.failed.fetch_add(n, Ordering::Relaxed);
        }
    }
    batch.clear();
}

/// The daemon's store: the writer thread and a handle to it.
#[derive(Debug)]
pub struct DaemonStore {
    handle: StoreHandle,
    join: Option<JoinHandle<WriterStats>>,
    path: std::path::PathBuf,
}

impl DaemonStore {
    /// Open the store at `path` and start its writer.
    ///
    /// # Errors
    /// The store cannot be opened (see [`Store::open`]), or the thread cannot start.
    pub fn open(path: &Path) -> anyhow::Result<DaemonStore> {
        let (handle, join) = StoreWriter::spawn(path)?;
        tracing::info!(path = %path.display(), "database open");
        Ok(DaemonStore { handle, join: Some(join), path: path.to_path_buf() })
    }

    /// A handle to send records with.
    pub fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// Wait for everything queued to be written and stop the writer (once every other handle
    /// is gone too); its counters.
    pub fn close(mut self) -> WriterStats {
        let stats = self.handle.stats();
        let join = self.join.take();
        drop(self);
        let stats = match join.map(JoinHandle::join) {
            Some(Ok(s)) => s,
            _ => stats,
        };
        if stats.dropped > 0 || stats.failed > 0 {
            tracing::warn!(?stats, "database closed; records were lost");
        } else {
            tracing::info!(written = stats.written, "database closed");
        }
        stats
    }
}

impl Drop for DaemonStore {
    fn drop(&mut self) {
        if self.join.is_some() {
            // Not closed: the writer still finishes on its own when the last handle goes.
            tracing::debug!(path = %self.path.display(), "database handle dropped");
        }
    }
}
