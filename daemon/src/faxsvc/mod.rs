//! The daemon's fax service: received faxes land in the spool directory with a store record
//! and a CTI event; `cardpbx fax send --to` places fax calls through a trunk group with
//! retries. Call control (`crate::pbx`) decides which calls are faxes and attaches their
//! channels to fax ports of the media engine ([`crate::engine::faxport`]); the [`worker`]
//! runs the T.30 sessions on those ports off the real-time thread.

pub mod cli;
pub mod worker;

pub use worker::{FaxDone, FaxRequest, FaxRole, FaxStart, FaxWorker, FaxWorkerThread};

/// The `fax_destination` (or `incoming`) of a trunk group that has the daemon itself receive
/// the call as a fax.
pub const RECEIVE: &str = "receive";

use crate::pbx::Pbx;
use crate::store::{Record, StoreHandle};
use cardpbx_hal::Tick;

/// Virtual clock: hand call control's fax requests to `worker`, run it on what the last tick
/// brought, and report finished sessions back, all in the caller's thread (deterministic).
pub fn step_worker(pbx: &mut Pbx, worker: &mut FaxWorker, now: Tick, done: &mut Vec<FaxDone>) {
    while let Some(r) = pbx.fax_pop_request() {
        worker.request(r, done);
    }
    worker.service(done);
    for d in done.drain(..) {
        pbx.fax_finished(now, d);
    }
}

/// Real-time clock: pass requests to the worker thread and report what it finished.
pub fn pump_thread(pbx: &mut Pbx, worker: &FaxWorkerThread, now: Tick) {
    while let Some(r) = pbx.fax_pop_request() {
        worker.send(r);
    }
    while let Some(d) = worker.try_done() {
        pbx.fax_finished(now, d);
    }
}

/// Send finished faxes to the store (never blocks).
pub fn drain_records(pbx: &mut Pbx, store: &StoreHandle) {
    while let Some(r) = pbx.pop_fax_record() {
        store.send(Record::Fax(r));
    }
}

/// Log the fax events for the CTI tier (one JSON object per line on the `cardpbx::cti`
/// target, until a CTI server takes them).
pub fn log_events(pbx: &mut Pbx) {
    while let Some(e) = pbx.pop_fax_event() {
        let json = serde_json::to_string(&e).unwrap_or_default();
        tracing::info!(target: "cardpbx::cti", "fax {json}");
    }
}
