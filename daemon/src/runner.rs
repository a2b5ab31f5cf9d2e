//! Running the media engine and call control together, on a virtual or a real clock.
//!
//! One design serves both (DESIGN.md "Determinism and time"): the engine runs ticks, its events
//! go through the SPSC event ring to [`Pbx`], whose commands go back through the command ring.
//!
//! - [`Stepped`] runs both in the caller's thread, one tick at a time: after every tick the
//!   control plane handles everything the tick produced and every timer that fell due, before
//!   time moves on. With the simulator's virtual clock this is exact and repeatable, and an
//!   hour of calls runs in seconds. Tests and `cardpbx bench` use it.
//! - [`Realtime`] runs the engine on its own (SCHED_FIFO when allowed) thread paced by the
//!   card, and call control on a control thread that follows the engine's tick count.

use crate::config::model::Config;
use crate::engine::{Engine, EngineHandle, EngineStats};
use crate::pbx::events::PbxEvent;
use crate::pbx::{Pbx, PbxError};
use crate::store::{CdrRecord, Record, StoreHandle};
use cardpbx_hal::{Card, CardInfo, Tick};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Move events from the engine to call control and commands back, at time `now`.
///
/// Commands the ring has no room for stay queued in the [`Pbx`] for the next round, so nothing
/// is lost when the engine falls behind; the ring counts the overrun.
fn pump(handle: &mut EngineHandle, pbx: &mut Pbx, now: Tick) {
    while let Some(ev) = handle.poll_event() {
        pbx.handle_event(now, ev);
    }
    if pbx.poll_timeout().is_some_and(|t| t <= now) {
        pbx.handle_timeout(now);
    }
    while let Some(cmd) = pbx.pop_command() {
        if let Err(full) = handle.send(cmd) {
            pbx.unpop_command(full.0);
            break;
        }
    }
}

/// Send the records of finished calls to the store (never blocks).
fn drain_cdrs(pbx: &mut Pbx, store: &StoreHandle) {
    while let Some(r) = pbx.pop_cdr() {
        store.send(Record::Cdr(r));
    }
    // Queue events, agent events and IVR steps of the call center.
    while let Some(r) = pbx.pop_record() {
        store.send(r);
    }
}

/// The local time now as seconds since 1970-01-01 00:00 in the local time zone (for the date
/// and time in caller ID), from the system clock and the zone's UTC offset.
fn local_time_s() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now + utc_offset_s(now)
}

/// The time now as microseconds since 1970-01-01 00:00 UTC (for D-channel capture
/// timestamps).
fn utc_time_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The local zone's offset from UTC at `t` (seconds since 1970), 0 when it cannot be read.
#[allow(unsafe_code)]
pub(crate) fn utc_offset_s(t: i64) -> i64 {
    let t: libc::time_t = t as libc::time_t;
    // SAFETY: localtime_r only writes the `tm` we own and reads `t`; both outlive the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        i64::from(tm.tm_gmtoff as i32)
    } else {
        0
    }
}

/// Engine and call control stepped together in one thread.
pub struct Stepped<C: Card> {
    engine: Engine<C>,
    handle: EngineHandle,
    pbx: Pbx,
    /// Where finished calls' records go after each step (`None`: they wait in the Pbx).
    store: Option<StoreHandle>,
    /// The fax worker, run synchronously after every tick.
    fax: crate::faxsvc::FaxWorker,
    fax_done: Vec<crate::faxsvc::FaxDone>,
    /// The recording writer, run synchronously after every tick.
    rec: crate::engine::SteppedRecordingWriter,
}

impl<C: Card> Stepped<C> {
    /// Build the engine around `card` and call control from `cfg` for the card named
    /// `card_name`.
    ///
    /// # Errors
    /// When the configuration does not fit the card (see [`PbxError`]).
    pub fn new(card: C, cfg: &Config, card_name: &str) -> Result<Self, PbxError> {
        let info: CardInfo = card.info().clone();
        let mut pbx = Pbx::new(cfg, card_name, info)?;
        pbx.set_wall_clock(local_time_s());
        pbx.set_utc_base(utc_time_us());
        let (engine, mut handle) = Engine::build(card, pbx.engine_config())?;
        let rings = handle.take_fax_ports().expect("a new engine has its fax ports");
        let fax = crate::faxsvc::FaxWorker::new(rings);
        let rec_rings = handle.take_recordings().expect("a new engine has its recording rings");
        let (rec, rec_handle) = crate::engine::SteppedRecordingWriter::new(rec_rings);
        pbx.set_recorder(rec_handle);
        Ok(Stepped { engine, handle, pbx, store: None, fax, fax_done: Vec::new(), rec })
    }

    /// Run one tick and let call control handle all it produced.
    ///
    /// # Errors
    /// A card error from the tick (the card vanished, say).
    pub fn step(&mut self) -> Result<(), cardpbx_hal::Error> {
        self.engine.tick()?;
        let now = self.engine.now();
        pump(&mut self.handle, &mut self.pbx, now);
        self.rec.service();
        self.pbx.recording_poll();
        crate::faxsvc::step_worker(&mut self.pbx, &mut self.fax, now, &mut self.fax_done);
        if let Some(store) = &self.store {
            drain_cdrs(&mut self.pbx, store);
            crate::faxsvc::drain_records(&mut self.pbx, store);
        }
        Ok(())
    }

    /// Send finished calls' records to `store` after every step from now on.
    pub fn set_store(&mut self, store: StoreHandle) {
        self.store = Some(store);
    }

    /// The records of calls finished since the last call (when no store is set).
    pub fn take_cdrs(&mut self) -> Vec<CdrRecord> {
        self.pbx.take_cdrs().collect()
    }

    /// Run `ms` ticks.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn run_ms(&mut self, ms: u64) -> Result<(), cardpbx_hal::Error> {
        for _ in 0..ms {
            self.step()?;
        }
        Ok(())
    }

    /// Run until `done` says so, at most `max_ms` ticks; whether it did.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn run_until(
        &mut self,
        max_ms: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, cardpbx_hal::Error> {
        for _ in 0..max_ms {
            if done(self) {
                return Ok(true);
            }
            self.step()?;
        }
        Ok(done(self))
    }

    /// The current tick.
    pub fn now(&self) -> Tick {
        self.engine.now()
    }

    /// The card (the simulator, in tests).
    pub fn card(&self) -> &C {
        self.engine.card()
    }

    /// The card, mutable: tests drive simulated phones and lines through it.
    pub fn card_mut(&mut self) -> &mut C {
        self.engine.card_mut()
    }

    /// Call control.
    pub fn pbx(&self) -> &Pbx {
        &self.pbx
    }

    /// Call control, mutable (to reconfigure it between ticks, as a reload does).
    pub fn pbx_mut(&mut self) -> &mut Pbx {
        &mut self.pbx
    }

    /// The engine's statistics.
    pub fn engine_stats(&self) -> Arc<EngineStats> {
        self.handle.stats()
    }
}

impl Stepped<cardpbx_sim::SimCard> {
    /// Event-driven stepping on the simulator's virtual clock: run one tick, then, when
    /// nothing is pending (no engine event or command in flight, no call-control command
    /// queued), jump the clock to just before the earliest of call control's next timer, the
    /// card's next due action ([`SimCard::next_due`](cardpbx_sim::SimCard::next_due)) and
    /// `limit`, so that the next [`step`](Self::step) runs that tick. Tick numbers stay exact:
    /// every timer fires at the tick it is due; only the audio of the skipped ticks is
    /// missing, so use it only when no one checks audio (and no prompt or tone detector
    /// matters). The engine counts each jump as a late tick in its statistics. Returns the
    /// ticks skipped.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn step_skipping(&mut self, limit: Tick) -> Result<u64, cardpbx_hal::Error> {
        self.step()?;
        let now = self.now();
        if self.handle.commands_pending() {
            return Ok(0);
        }
        if let Some(cmd) = self.pbx.pop_command() {
            self.pbx.unpop_command(cmd);
            return Ok(0);
        }
        let due = [self.pbx.poll_timeout(), self.engine.card().next_due(), Some(limit)];
        let next = due.into_iter().flatten().min().unwrap_or(limit);
        if next > now + 1 {
            self.engine.card_mut().advance_to(next);
            return Ok(next - now - 1);
        }
        Ok(0)
    }
}

/// A request the control thread serves between rounds (from the control socket, the demo).
pub type ControlRequest = Box<dyn FnOnce(&mut Pbx, &EngineStats) + Send>;

/// A consumer of the event stream on the control thread: called with every event in order;
/// it returns `false` to unsubscribe (its client went away). It must not block.
pub type EventSubscriber = Box<dyn FnMut(&PbxEvent) -> bool + Send>;

/// The engine on a real-time thread and call control on a control thread.
pub struct Realtime {
    stop: Arc<AtomicBool>,
    engine_thread: Option<JoinHandle<Result<(), cardpbx_hal::Error>>>,
    control_thread: Option<JoinHandle<()>>,
    /// The recording writer thread (finalises open files when stopped).
    rec_writer: Option<crate::engine::RecordingWriter>,
    requests: crossbeam_channel::Sender<ControlRequest>,
    subscribe: crossbeam_channel::Sender<EventSubscriber>,
    stats: Arc<EngineStats>,
    realtime: String,
}

impl Realtime {
    /// Start the engine thread around `card` and the control thread with call control from
    /// `cfg`. `rt_priority` is the SCHED_FIFO priority to ask for (`None`: do not try).
    ///
    /// # Errors
    /// When the configuration does not fit the card, or a thread cannot be started.
    pub fn start<C: Card + 'static>(
        card: C,
        cfg: &Config,
        card_name: &str,
        rt_priority: Option<i32>,
    ) -> anyhow::Result<Self> {
        Realtime::start_with_store(card, cfg, card_name, rt_priority, None)
    }

    /// As [`start`](Self::start), with the records of finished calls sent to `store` after
    /// every control round.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_store<C: Card + 'static>(
        card: C,
        cfg: &Config,
        card_name: &str,
        rt_priority: Option<i32>,
        store: Option<StoreHandle>,
    ) -> anyhow::Result<Self> {
        let info = card.info().clone();
        let mut pbx = Pbx::new(cfg, card_name, info)?;
        pbx.set_wall_clock(local_time_s());
        pbx.set_utc_base(utc_time_us());
        let (engine, mut handle) = Engine::build(card, pbx.engine_config())?;
        let stats = handle.stats();
        let fax_rings = handle.take_fax_ports().expect("a new engine has its fax ports");
        let fax = crate::faxsvc::FaxWorkerThread::spawn(crate::faxsvc::FaxWorker::new(fax_rings))?;
        let rec_rings = handle.take_recordings().expect("a new engine has its recording rings");
        let (rec_writer, rec_handle) = crate::engine::RecordingWriter::spawn(rec_rings)?;
        pbx.set_recorder(rec_handle);
        let stop = Arc::new(AtomicBool::new(false));
        let engine_stop = stop.clone();
        let (rt_tx, rt_rx) = crossbeam_channel::bounded(1);
        let engine_thread =
            std::thread::Builder::new().name("cardpbx-media".into()).spawn(move || {
                let summary = match rt_priority {
                    Some(prio) => {
                        let report = crate::engine::rt::enter_realtime(prio);
                        if report.all_ok() {
                            tracing::info!("media thread: {}", report.summary());
                        } else {
                            tracing::warn!(
                                "media thread runs without real-time guarantees: {}",
                                report.summary()
                            );
                        }
                        report.summary()
                    }
                    None => {
                        "real-time scheduling not requested (system.realtime = false)".to_string()
                    }
                };
                let _ = rt_tx.send(summary.replace('\n', "; "));
                engine.run_until_stopped(engine_stop)
            })?;
        let realtime = rt_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| "unknown (media thread did not report)".to_string());
        let (tx, rx) = crossbeam_channel::unbounded::<ControlRequest>();
        let (sub_tx, sub_rx) = crossbeam_channel::unbounded::<EventSubscriber>();
        let mut subscribers: Vec<EventSubscriber> = Vec::new();
        let control_stop = stop.clone();
        let control_stats = stats.clone();
        let control_thread =
            std::thread::Builder::new().name("cardpbx-control".into()).spawn(move || {
                while !control_stop.load(Ordering::Relaxed) {
                    let now = control_stats.ticks.load(Ordering::Acquire);
                    pump(&mut handle, &mut pbx, now);
                    pbx.recording_poll();
                    crate::faxsvc::pump_thread(&mut pbx, &fax, now);
                    crate::faxsvc::log_events(&mut pbx);
                    if let Some(store) = &store {
                        drain_cdrs(&mut pbx, store);
                        crate::faxsvc::drain_records(&mut pbx, store);
                    }
                    while let Ok(req) = rx.try_recv() {
                        req(&mut pbx, &control_stats);
                    }
                    subscribers.extend(sub_rx.try_iter());
                    while let Some(ev) = pbx.pop_event() {
                        subscribers.retain_mut(|s| s(&ev));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })?;
        Ok(Realtime {
            stop,
            engine_thread: Some(engine_thread),
            control_thread: Some(control_thread),
            rec_writer: Some(rec_writer),
            requests: tx,
            subscribe: sub_tx,
            stats,
            realtime,
        })
    }

    /// Add a consumer of the event stream; it sees every event published from its next
    /// control round on.
    pub fn subscribe(&self, s: EventSubscriber) {
        let _ = self.subscribe.send(s);
    }

    /// Run `f` on the control thread with call control and the engine statistics, and return
    /// its result; `None` when the control thread has stopped.
    pub fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Pbx, &EngineStats) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let req: ControlRequest = Box::new(move |pbx, stats| {
            let _ = tx.send(f(pbx, stats));
        });
        self.requests.send(req).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// As [`query`](Self::query), with call control mutable (a reload reconfigures it); the
    /// commands it queues go to the engine in the control thread's next round.
    pub fn query_mut<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Pbx, &EngineStats) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let req: ControlRequest = Box::new(move |pbx, stats| {
            let _ = tx.send(f(pbx, stats));
        });
        self.requests.send(req).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// The engine's statistics.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// How the media thread runs: the real-time report, or why it has none.
    pub fn realtime(&self) -> &str {
        &self.realtime
    }

    /// Whether the engine thread is still running.
    pub fn is_running(&self) -> bool {
        self.engine_thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stop both threads and wait for them.
    ///
    /// # Errors
    /// The card error that stopped the engine, if one did.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.control_thread.take() {
            let _ = t.join();
        }
        if let Some(w) = self.rec_writer.take() {
            // Call control has stopped: close every open recording as a complete file.
            w.shutdown();
        }
        if let Some(t) = self.engine_thread.take() {
            match t.join() {
                Ok(r) => r?,
                Err(_) => anyhow::bail!("the media engine thread panicked"),
            }
        }
        Ok(())
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
