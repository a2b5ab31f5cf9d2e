//! The fax worker: one [`FaxSession`] per active fax port, fed from the engine's fax port
//! rings ([`crate::engine::faxport`]) in blocks of [`BLOCK`] samples.
//!
//! [`FaxWorker`] itself owns no thread: [`FaxWorker::service`] does whatever work the rings
//! allow and returns. The virtual-clock runner calls it after every tick, so sessions run in
//! step with the simulated card and every run is the same; the real-time runner gives it a
//! thread ([`FaxWorkerThread`]) that calls it every few milliseconds.

use crate::engine::faxport::{FaxPortRings, WorkerPort, BLOCK, PREFILL_SAMPLES};
use crate::engine::FaxSlot;
use cardpbx_dsp::fax::audio_modem::SoftModem;
use cardpbx_dsp::fax::pdf::write_pdf;
use cardpbx_dsp::fax::session::{FaxSession, ImageModem};
use cardpbx_dsp::fax::t30::{FaxStatus, ModemFamily, Role, T30Config, T30Event, T30};
use cardpbx_dsp::fax::tiff::FaxPage;
use ringbuf::traits::{Consumer, Observer, Producer};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Blocks per second of audio.
const BLOCKS_PER_SEC: u64 = 8000 / BLOCK as u64;
/// Audio exchanged after a session's last signal, so it is heard out before the call ends.
const TAIL_BLOCKS: u64 = 10;
/// Silence a session may run on after its line was cleared, to reach phase E.
const DRAIN_BLOCKS: u64 = 10 * BLOCKS_PER_SEC;
/// Audio exchanged after the time limit so our DCN gets out.
const ABORT_BLOCKS: u64 = 5 * BLOCKS_PER_SEC;
/// Transmit level of V.21 and tones, dBm0.
const LEVEL_DBM0: f32 = -13.0;

/// What a session does.
#[derive(Debug, Clone)]
pub enum FaxRole {
    /// Send these pages as the calling terminal.
    Send {
        /// The document.
        pages: Arc<Vec<FaxPage>>,
    },
    /// Receive as the answering terminal into these files.
    Receive {
        /// TIFF-F file for the pages.
        tiff: PathBuf,
        /// PDF copy, if wanted.
        pdf: Option<PathBuf>,
    },
}

/// Start a session on a port.
#[derive(Debug, Clone)]
pub struct FaxStart {
    /// The port (the control plane attaches the channel to it).
    pub slot: FaxSlot,
    /// The control plane's number for this session.
    pub job: u64,
    /// Send or receive.
    pub role: FaxRole,
    /// Our identity (TSI/CSI).
    pub ident: String,
    /// Image modems offered.
    pub modems: Vec<ModemFamily>,
    /// Give up (DCN) after this much audio.
    pub max_duration: Duration,
}

/// A request to the worker.
#[derive(Debug, Clone)]
pub enum FaxRequest {
    /// Start a session.
    Start(FaxStart),
    /// The line of `job` was cleared: finish its session now.
    Stop {
        /// The port.
        slot: FaxSlot,
        /// The session.
        job: u64,
    },
}

/// A finished session.
#[derive(Debug, Clone, PartialEq)]
pub struct FaxDone {
    /// The port, free again.
    pub slot: FaxSlot,
    /// The session.
    pub job: u64,
    /// Sent and confirmed, or received, completely.
    pub success: bool,
    /// T.30 status word (`success`, `t1_expired`, ...), `dropped` when the line was cleared
    /// before phase E, `timeout` at the time limit, `error` when the files could not be written.
    pub status: String,
    /// Pages confirmed (send) or received.
    pub pages: u32,
    /// Rate of the last DCS, bit/s (0 if none).
    pub bit_rate: u32,
    /// The far end's TSI/CSI.
    pub remote_ident: Option<String>,
    /// Received: the TIFF written (none when no page came).
    pub file: Option<PathBuf>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// Audio exchanged, seconds.
    pub seconds: f64,
    /// Port counters during the session: samples dropped or missing, in ticks.
    pub overruns: u64,
    /// See `overruns`.
    pub underruns: u64,
}

struct Active {
    job: u64,
    session: FaxSession<SoftModem>,
    role: FaxRole,
    audio_started: bool,
    blocks: u64,
    finished_for: u64,
    aborted_at: Option<u64>,
    received: Vec<FaxPage>,
    pages_sent: u32,
    bit_rate: u32,
    remote_ident: Option<String>,
    max_blocks: u64,
    overruns_at_start: u64,
    underruns_at_start: u64,
}

impl Active {
    fn events(&mut self) {
        while let Some(e) = self.session.poll_event() {
            match e {
                T30Event::Negotiated(d) => self.bit_rate = d.rate.bps(),
                T30Event::PageSent { accepted: true, .. } => self.pages_sent += 1,
                T30Event::PageReceived(p) => self.received.push(p),
                T30Event::RemoteIdent(id) => {
                    let id = id.trim().to_string();
                    self.remote_ident = (!id.is_empty()).then_some(id);
                }
                _ => {}
            }
        }
    }
}

/// The sessions of all fax ports. See the module docs.
pub struct FaxWorker {
    ports: Vec<WorkerPort>,
    active: Vec<Option<Active>>,
}

impl std::fmt::Debug for FaxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaxWorker")
            .field("ports", &self.ports.len())
            .field("active", &self.active_sessions())
            .finish()
    }
}

impl FaxWorker {
    /// A worker on the rings taken from the engine handle.
    pub fn new(rings: FaxPortRings) -> Self {
        let active = rings.ports.iter().map(|_| None).collect();
        FaxWorker { ports: rings.ports, active }
    }

    /// Sessions running.
    pub fn active_sessions(&self) -> usize {
        self.active.iter().filter(|a| a.is_some()).count()
    }

    /// Act on a request; a stopped session (or a refused start) is reported in `done`.
    pub fn request(&mut self, r: FaxRequest, done: &mut Vec<FaxDone>) {
        match r {
            FaxRequest::Start(s) => self.start(s, done),
            FaxRequest::Stop { slot, job } => {
                let i = usize::from(slot.0);
                if self.active.get(i).and_then(Option::as_ref).is_some_and(|a| a.job == job) {
                    let mut a = self.active[i].take().expect("checked");
                    drain(&mut a);
                    done.push(self.finish(i, a));
                }
            }
        }
    }

    fn start(&mut self, s: FaxStart, done: &mut Vec<FaxDone>) {
        let i = usize::from(s.slot.0);
        let refuse = |why: &str| FaxDone {
            slot: s.slot,
            job: s.job,
            success: false,
            status: "error".into(),
            pages: 0,
            bit_rate: 0,
            remote_ident: None,
            file: None,
            error: Some(why.to_string()),
            seconds: 0.0,
            overruns: 0,
            underruns: 0,
        };
        if i >= self.ports.len() {
            return done.push(refuse("no such fax port"));
        }
        if let Some(old) = self.active[i].take() {
            // The control plane reuses a port only after its session was reported finished.
            tracing::warn!(
                slot = i,
                job = old.job,
                "fax port reused while busy: old session dropped"
            );
            done.push(self.finish(i, old));
        }
        let (role, pages) = match &s.role {
            FaxRole::Send { pages } => (Role::Calling, pages.as_ref().clone()),
            FaxRole::Receive { .. } => (Role::Called, Vec::new()),
        };
        if role == Role::Calling && pages.is_empty() {
            return done.push(refuse("the document has no pages"));
        }
        let modem = SoftModem::with_families(&s.modems);
        let cfg =
            T30Config { ident: s.ident.clone(), rates: modem.rates(), ..T30Config::default() };
        let session = FaxSession::new(T30::new(role, pages, cfg), modem, LEVEL_DBM0);
        let port = &mut self.ports[i];
        // Audio left from the port's previous use is not this call's.
        port.from_engine.clear();
        self.active[i] = Some(Active {
            job: s.job,
            session,
            role: s.role,
            audio_started: false,
            blocks: 0,
            finished_for: 0,
            aborted_at: None,
            received: Vec::new(),
            pages_sent: 0,
            bit_rate: 0,
            remote_ident: None,
            max_blocks: (s.max_duration.as_millis() as u64 / 20).max(1),
            overruns_at_start: port.counters.overruns.load(Ordering::Relaxed),
            underruns_at_start: port.counters.underruns.load(Ordering::Relaxed),
        });
    }

    /// Run every session on the audio its port has received; finished ones go to `done`.
    pub fn service(&mut self, done: &mut Vec<FaxDone>) {
        for i in 0..self.ports.len() {
            let Some(a) = self.active[i].as_mut() else { continue };
            let port = &mut self.ports[i];
            let mut over = false;
            while port.from_engine.occupied_len() >= BLOCK {
                if !a.audio_started {
                    // The channel is attached: put the jitter margin ahead of our audio.
                    a.audio_started = true;
                    port.to_engine.push_slice(&[0i16; PREFILL_SAMPLES]);
                }
                if port.to_engine.vacant_len() < BLOCK {
                    break;
                }
                let mut rx = [0i16; BLOCK];
                port.from_engine.pop_slice(&mut rx);
                let mut tx = [0i16; BLOCK];
                a.session.process(&rx, &mut tx);
                port.to_engine.push_slice(&tx);
                a.events();
                a.blocks += 1;
                if a.session.is_finished() {
                    a.finished_for += 1;
                    if a.finished_for >= TAIL_BLOCKS {
                        over = true;
                        break;
                    }
                }
                if a.blocks >= a.max_blocks && a.aborted_at.is_none() {
                    a.session.abort();
                    a.aborted_at = Some(a.blocks);
                }
                if a.aborted_at.is_some_and(|t| a.blocks >= t + ABORT_BLOCKS) {
                    over = true;
                    break;
                }
            }
            if over {
                let a = self.active[i].take().expect("active");
                done.push(self.finish(i, a));
            }
        }
    }

    fn finish(&mut self, i: usize, mut a: Active) -> FaxDone {
        a.events();
        let c = &self.ports[i].counters;
        let status = a.session.status();
        let mut status_word = match status {
            Some(s) => crate::faxcli::status_name(s),
            None if a.aborted_at.is_some() => "timeout".to_string(),
            None => "dropped".to_string(),
        };
        let mut error = match status {
            Some(FaxStatus::Success) => None,
            Some(s) => Some(format!("T.30 ended with {s:?}")),
            None if a.aborted_at.is_some() => Some("time limit reached".to_string()),
            None => Some("the line was cleared before the end of the fax".to_string()),
        };
        let mut success = status == Some(FaxStatus::Success);
        let (pages, file) = match &a.role {
            FaxRole::Send { .. } => (a.pages_sent, None),
            FaxRole::Receive { tiff, pdf } => {
                success &= !a.received.is_empty();
                let mut file = None;
                if !a.received.is_empty() {
                    match write_received(tiff, pdf.as_ref(), &a.received) {
                        Ok(()) => file = Some(tiff.clone()),
                        Err(e) => {
                            success = false;
                            status_word = "error".into();
                            error = Some(format!("{e:#}"));
                        }
                    }
                } else if error.is_none() {
                    error = Some("no page received".into());
                }
                (a.received.len() as u32, file)
            }
        };
        FaxDone {
            slot: FaxSlot(i as u16),
            job: a.job,
            success,
            status: status_word,
            pages,
            bit_rate: a.bit_rate,
            remote_ident: a.remote_ident,
            file,
            error,
            seconds: a.blocks as f64 / BLOCKS_PER_SEC as f64,
            overruns: c.overruns.load(Ordering::Relaxed) - a.overruns_at_start,
            underruns: c.underruns.load(Ordering::Relaxed) - a.underruns_at_start,
        }
    }
}

/// The line is gone: let T.30 run out on silence (a receiver waiting for DCN after the last
/// MCF reaches phase E by its timer).
fn drain(a: &mut Active) {
    let silence = [0i16; BLOCK];
    for _ in 0..DRAIN_BLOCKS {
        if a.session.is_finished() {
            break;
        }
        let mut tx = [0i16; BLOCK];
        a.session.process(&silence, &mut tx);
        a.events();
    }
}

fn write_received(
    tiff: &std::path::Path,
    pdf: Option<&PathBuf>,
    pages: &[FaxPage],
) -> anyhow::Result<()> {
    if let Some(dir) = tiff.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::faxcli::save_tiff(tiff, pages)?;
    if let Some(pdf) = pdf {
        std::fs::write(pdf, write_pdf(pages))?;
    }
    Ok(())
}

/// A [`FaxWorker`] on its own thread (the real-time runner's).
#[derive(Debug)]
pub struct FaxWorkerThread {
    thread: Option<std::thread::JoinHandle<()>>,
    requests: Option<crossbeam_channel::Sender<FaxRequest>>,
    done: crossbeam_channel::Receiver<FaxDone>,
}

/// How often the worker thread looks at the rings.
const SERVICE_PERIOD: Duration = Duration::from_millis(5);

impl FaxWorkerThread {
    /// Start the thread.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn spawn(mut worker: FaxWorker) -> std::io::Result<FaxWorkerThread> {
        let (req_tx, req_rx) = crossbeam_channel::unbounded::<FaxRequest>();
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new().name("cardpbx-fax".into()).spawn(move || {
            let mut done = Vec::new();
            loop {
                match req_rx.recv_timeout(SERVICE_PERIOD) {
                    Ok(r) => worker.request(r, &mut done),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
                while let Ok(r) = req_rx.try_recv() {
                    worker.request(r, &mut done);
                }
                worker.service(&mut done);
                for d in done.drain(..) {
                    if done_tx.send(d).is_err() {
                        return;
                    }
                }
            }
        })?;
        Ok(FaxWorkerThread { thread: Some(thread), requests: Some(req_tx), done: done_rx })
    }

    /// Pass a request to the thread.
    pub fn send(&self, r: FaxRequest) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(r);
        }
    }

    /// The next finished session, if any.
    pub fn try_done(&self) -> Option<FaxDone> {
        self.done.try_recv().ok()
    }

    fn stop(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FaxWorkerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::faxport::{pool, EnginePort};
    use cardpbx_dsp::fax::t4::Bitmap;
    use cardpbx_dsp::fax::tiff::read_tiff;
    use cardpbx_hal::CHUNK_SAMPLES;

    fn pages() -> Vec<FaxPage> {
        (0..2)
            .map(|n| {
                let mut b = Bitmap::new(1728, 60);
                for y in 0..b.height {
                    for x in (n * 40..b.width).step_by(97) {
                        b.set(x, y, true);
                    }
                }
                FaxPage::new(b, false)
            })
            .collect()
    }

    fn start(slot: u16, job: u64, role: FaxRole) -> FaxRequest {
        FaxRequest::Start(FaxStart {
            slot: FaxSlot(slot),
            job,
            role,
            ident: format!("station {job}"),
            modems: vec![ModemFamily::V27ter, ModemFamily::V29],
            max_duration: Duration::from_secs(300),
        })
    }

    /// Play the engine for ports 0 and 1 wired to each other, one tick at a time.
    fn run(
        w: &mut FaxWorker,
        e: &mut [EnginePort],
        ticks: usize,
        mut stop_at: Option<(usize, FaxRequest)>,
    ) -> Vec<FaxDone> {
        let mut done = Vec::new();
        let (mut a_out, mut b_out) = ([0i16; CHUNK_SAMPLES], [0i16; CHUNK_SAMPLES]);
        for t in 0..ticks {
            let (a_heard, b_heard) = (b_out, a_out);
            e[0].exchange(&a_heard, &mut a_out);
            e[1].exchange(&b_heard, &mut b_out);
            w.service(&mut done);
            if stop_at.as_ref().is_some_and(|(at, _)| *at == t) {
                let (_, r) = stop_at.take().expect("checked");
                w.request(r, &mut done);
            }
            if done.len() == 2 {
                break;
            }
        }
        done
    }

    #[test]
    fn two_ports_fax_each_other_through_the_rings() {
        let dir = tempfile::tempdir().unwrap();
        let tiff = dir.path().join("in/rx.tif");
        let pdf = dir.path().join("in/rx.pdf");
        let (mut e, rings) = pool(2);
        let mut w = FaxWorker::new(rings);
        let mut done = Vec::new();
        let doc = pages();
        w.request(start(0, 1, FaxRole::Send { pages: Arc::new(doc.clone()) }), &mut done);
        w.request(
            start(1, 2, FaxRole::Receive { tiff: tiff.clone(), pdf: Some(pdf.clone()) }),
            &mut done,
        );
        assert!(done.is_empty());
        e[0].attach(0);
        e[1].attach(1);
        let mut done = run(&mut w, &mut e, 120_000, None);
        done.sort_by_key(|d| d.job);
        assert_eq!(done.len(), 2, "{done:?}");
        let (s, r) = (&done[0], &done[1]);
        assert!(s.success && r.success, "{done:?}");
        assert_eq!((s.pages, r.pages), (2, 2));
        assert_eq!(s.remote_ident.as_deref(), Some("station 2"));
        assert_eq!(r.remote_ident.as_deref(), Some("station 1"));
        assert_eq!(r.bit_rate, 9600);
        assert_eq!((s.underruns, s.overruns, r.underruns, r.overruns), (0, 0, 0, 0));
        assert_eq!(r.file.as_deref(), Some(tiff.as_path()));
        let got = read_tiff(&std::fs::read(&tiff).unwrap()).unwrap();
        assert_eq!(got.len(), 2);
        for (g, w) in got.iter().zip(&doc) {
            assert_eq!(g.bitmap.bits, w.bitmap.bits);
        }
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
        assert_eq!(w.active_sessions(), 0);
    }

    #[test]
    fn a_cleared_line_ends_the_session_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let tiff = dir.path().join("rx.tif");
        let (mut e, rings) = pool(2);
        let mut w = FaxWorker::new(rings);
        let mut done = Vec::new();
        w.request(start(0, 1, FaxRole::Send { pages: Arc::new(pages()) }), &mut done);
        w.request(start(1, 2, FaxRole::Receive { tiff: tiff.clone(), pdf: None }), &mut done);
        e[0].attach(0);
        e[1].attach(1);
        // Two seconds in (CNG, DIS going out), the receiving line is cleared.
        let stop = FaxRequest::Stop { slot: FaxSlot(1), job: 2 };
        let done = run(&mut w, &mut e, 2000, Some((2000 - 1, stop)));
        assert_eq!(done.len(), 1, "{done:?}");
        let r = &done[0];
        assert_eq!(r.job, 2);
        assert!(!r.success);
        assert_eq!(r.pages, 0);
        assert_eq!(r.file, None);
        assert!(r.error.is_some(), "{r:?}");
        assert!(!tiff.exists(), "no file without pages");
        assert_eq!(w.active_sessions(), 1, "the sender goes on");
        // A stale stop (another job) changes nothing; a start on a busy port replaces it.
        let mut more = Vec::new();
        w.request(FaxRequest::Stop { slot: FaxSlot(0), job: 9 }, &mut more);
        assert!(more.is_empty());
        w.request(start(0, 3, FaxRole::Send { pages: Arc::new(Vec::new()) }), &mut more);
        assert_eq!(more.len(), 2, "{more:?}");
        assert_eq!((more[0].job, more[1].job), (1, 3));
        assert_eq!(more[1].error.as_deref(), Some("the document has no pages"));
    }
}
