//! Call recording: a pool of preallocated SPSC rings from the media engine to a writer thread
//! that turns them into stereo WAV files.
//!
//! Each slot's ring holds [`RING_SAMPLES`] interleaved 16-bit samples (2 s of 8 kHz stereo):
//! left is what the recorded channel received from its line, right what it transmitted. The
//! engine pushes one chunk per tick and never waits: a full ring drops the chunk and counts an
//! overrun. The writer thread owns the consumer ends and the files.
//!
//! Life of a slot: [`RecordingHandle::open`] (the writer creates the file, or reports why it
//! cannot) → `EngineCommand::RecordStart(chan, slot)` → ... → `EngineCommand::RecordStop(slot)`
//! → the writer drains what is left, finalises the WAV and sends a [`RecordingFinished`]; the
//! slot is then free for the next `open`.

use super::api::RecSlot;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Capacity of each slot's ring in samples: 2 s of 8 kHz stereo.
pub const RING_SAMPLES: usize = 2 * 8000 * 2;

/// How often the writer thread drains the rings.
const DRAIN_PERIOD: Duration = Duration::from_millis(20);

const FREE: u8 = 0;
const OPENING: u8 = 1;
const OPEN: u8 = 2;
const STOPPING: u8 = 3;

/// State of one slot shared by the engine, the writer and the control plane.
#[derive(Debug, Default)]
pub(crate) struct SlotShared {
    state: AtomicU8,
    overruns: AtomicU64,
}

/// The engine's end of one slot.
pub(crate) struct SlotProducer {
    prod: HeapProd<i16>,
    shared: Arc<SlotShared>,
    /// Channel being recorded, or `u32::MAX`.
    pub(crate) chan: u32,
}

impl SlotProducer {
    /// Whether the writer has a file open for the slot (RecordStart is allowed).
    pub(crate) fn is_open(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == OPEN
    }

    /// Push one tick of stereo audio; returns false (and counts it) when the ring is full.
    ///
    /// # Real-time
    /// Never blocks or allocates.
    #[inline]
    pub(crate) fn push(&mut self, frame: &[i16; 16]) -> bool {
        if self.prod.vacant_len() < frame.len() {
            self.shared.overruns.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.prod.push_slice(frame);
        true
    }

    /// Tell the writer that nothing more comes for this recording (after the last push).
    pub(crate) fn stop(&mut self) {
        self.chan = u32::MAX;
        let _ =
            self.shared.state.compare_exchange(OPEN, STOPPING, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The writer's ends of all slots, handed from [`EngineHandle::take_recordings`](super::EngineHandle::take_recordings)
/// to [`RecordingWriter::spawn`].
pub struct RecordingRings {
    slots: Vec<(HeapCons<i16>, Arc<SlotShared>)>,
}

impl std::fmt::Debug for RecordingRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingRings").field("slots", &self.slots.len()).finish()
    }
}

/// Build `n` slots: the engine's producers and the writer's consumers.
pub(crate) fn pool(n: usize) -> (Vec<SlotProducer>, RecordingRings) {
    let mut prods = Vec::with_capacity(n);
    let mut slots = Vec::with_capacity(n);
    for _ in 0..n {
        let (prod, cons) = HeapRb::<i16>::new(RING_SAMPLES).split();
        let shared = Arc::new(SlotShared::default());
        prods.push(SlotProducer { prod, shared: shared.clone(), chan: u32::MAX });
        slots.push((cons, shared));
    }
    (prods, RecordingRings { slots })
}

/// Why a recording could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The slot number is beyond the pool.
    #[error("recording slot {0} does not exist")]
    NoSuchSlot(u16),
    /// The slot is still open or finishing a previous recording.
    #[error("recording slot {0} is busy")]
    Busy(u16),
    /// The WAV file could not be created.
    #[error("cannot create recording {path}: {reason}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The writer thread is gone.
    #[error("the recording writer thread has stopped")]
    WriterGone,
}

/// A recording the writer has finished and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingFinished {
    /// Slot it used (free again now).
    pub slot: RecSlot,
    /// The WAV file.
    pub path: PathBuf,
    /// Stereo frames written (samples per channel).
    pub frames: u64,
    /// Ticks of audio lost to ring overruns during this recording.
    pub overruns: u64,
    /// Error while writing or finalising, if any (the file may be incomplete).
    pub error: Option<String>,
}

enum Request {
    Open {
        slot: usize,
        path: PathBuf,
        reply: Sender<Result<(), RecordError>>,
    },
    /// Open without waiting: the result comes on [`RecordingHandle::opened`].
    OpenNoWait {
        slot: usize,
        path: PathBuf,
        mono: bool,
    },
    /// Write silence (`true`) instead of the audio from now on, or the audio again.
    Pause {
        slot: usize,
        on: bool,
    },
}

/// The result of [`RecordingHandle::open_nowait`].
pub type Opened = (RecSlot, Result<(), RecordError>);

/// The control plane's side of the recording writer.
#[derive(Debug, Clone)]
pub struct RecordingHandle {
    req: Sender<Request>,
    shared: Arc<[Arc<SlotShared>]>,
    finished: Receiver<RecordingFinished>,
    opened: Receiver<Opened>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Open { slot, path, .. } => write!(f, "Open({slot}, {})", path.display()),
            Request::OpenNoWait { slot, path, mono } => {
                write!(f, "OpenNoWait({slot}, {}, mono {mono})", path.display())
            }
            Request::Pause { slot, on } => write!(f, "Pause({slot}, {on})"),
        }
    }
}

impl RecordingHandle {
    /// Have the writer create `path` for `slot`; afterwards send `RecordStart(chan, slot)`.
    ///
    /// # Errors
    /// Unknown or busy slot, an unwritable path, or a stopped writer.
    pub fn open(&self, slot: RecSlot, path: impl AsRef<Path>) -> Result<(), RecordError> {
        let i = usize::from(slot.0);
        let sh = self.shared.get(i).ok_or(RecordError::NoSuchSlot(slot.0))?;
        sh.state
            .compare_exchange(FREE, OPENING, Ordering::AcqRel, Ordering::Relaxed)
            .map_err(|_| RecordError::Busy(slot.0))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let req = Request::Open { slot: i, path: path.as_ref().to_path_buf(), reply: tx };
        if self.req.send(req).is_err() {
            sh.state.store(FREE, Ordering::Release);
            return Err(RecordError::WriterGone);
        }
        rx.recv().map_err(|_| RecordError::WriterGone)?
    }

    /// Have the writer create `path` (and its missing directories) for `slot` without waiting
    /// for it: the result comes on [`opened`](Self::opened); after `Ok`, send
    /// `RecordStart(chan, slot)`. `mono` mixes both directions into one channel.
    ///
    /// # Errors
    /// Unknown or busy slot, or a stopped writer (file errors come on `opened`).
    pub fn open_nowait(
        &self,
        slot: RecSlot,
        path: impl AsRef<Path>,
        mono: bool,
    ) -> Result<(), RecordError> {
        let i = usize::from(slot.0);
        let sh = self.shared.get(i).ok_or(RecordError::NoSuchSlot(slot.0))?;
        sh.state
            .compare_exchange(FREE, OPENING, Ordering::AcqRel, Ordering::Relaxed)
            .map_err(|_| RecordError::Busy(slot.0))?;
        let req = Request::OpenNoWait { slot: i, path: path.as_ref().to_path_buf(), mono };
        if self.req.send(req).is_err() {
            sh.state.store(FREE, Ordering::Release);
            return Err(RecordError::WriterGone);
        }
        Ok(())
    }

    /// Results of [`open_nowait`](Self::open_nowait), in request order.
    pub fn opened(&self) -> &Receiver<Opened> {
        &self.opened
    }

    /// Pause (`on`) or resume an open recording: while paused the file gets silence. Audio
    /// already in the ring when the writer takes the request is written as it was.
    pub fn pause(&self, slot: RecSlot, on: bool) {
        let _ = self.req.send(Request::Pause { slot: usize::from(slot.0), on });
    }

    /// Whether the slot is free for [`open`](Self::open).
    pub fn is_free(&self, slot: RecSlot) -> bool {
        self.shared
            .get(usize::from(slot.0))
            .is_some_and(|s| s.state.load(Ordering::Acquire) == FREE)
    }

    /// Overruns counted on a slot since start.
    pub fn overruns(&self, slot: RecSlot) -> u64 {
        self.shared.get(usize::from(slot.0)).map_or(0, |s| s.overruns.load(Ordering::Relaxed))
    }

    /// Finished recordings, as the writer closes them.
    pub fn finished(&self) -> &Receiver<RecordingFinished> {
        &self.finished
    }
}

/// The recording writer thread.
#[derive(Debug)]
pub struct RecordingWriter {
    thread: Option<JoinHandle<()>>,
    stop: Sender<()>,
}

struct OpenFile {
    path: PathBuf,
    wav: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    frames: u64,
    overruns_at_open: u64,
    error: Option<String>,
    /// Mix both directions into one channel.
    mono: bool,
    /// Write silence instead of the audio.
    paused: bool,
}

fn channels(rings: RecordingRings) -> (Core, Receiver<Request>, RecordingHandle) {
    let (req_tx, req_rx) = crossbeam_channel::unbounded();
    let (fin_tx, fin_rx) = crossbeam_channel::unbounded();
    let (open_tx, open_rx) = crossbeam_channel::unbounded();
    let shared: Arc<[Arc<SlotShared>]> = rings.slots.iter().map(|(_, s)| s.clone()).collect();
    let files = rings.slots.iter().map(|_| None).collect();
    let core = Core { rings, files, scratch: vec![0i16; 4096], fin: fin_tx, opened: open_tx };
    (core, req_rx, RecordingHandle { req: req_tx, shared, finished: fin_rx, opened: open_rx })
}

impl RecordingWriter {
    /// Start the writer thread on the rings taken from the engine handle.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn spawn(rings: RecordingRings) -> std::io::Result<(RecordingWriter, RecordingHandle)> {
        let (core, req_rx, handle) = channels(rings);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("rec-writer".into())
            .spawn(move || writer_loop(core, req_rx, stop_rx))?;
        Ok((RecordingWriter { thread: Some(thread), stop: stop_tx }, handle))
    }

    /// Finalise every open file and stop the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RecordingWriter {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The recording writer run in the caller's thread (the stepped runner calls
/// [`service`](Self::service) after every tick, so that no ring ever overruns however fast
/// virtual time goes). Only [`RecordingHandle::open_nowait`] may open files with it: the
/// blocking [`RecordingHandle::open`] would wait for a service call that cannot come.
pub struct SteppedRecordingWriter {
    core: Core,
    req: Receiver<Request>,
}

impl std::fmt::Debug for SteppedRecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteppedRecordingWriter").finish_non_exhaustive()
    }
}

impl SteppedRecordingWriter {
    /// A writer over the rings taken from the engine handle, and the control plane's handle.
    pub fn new(rings: RecordingRings) -> (SteppedRecordingWriter, RecordingHandle) {
        let (core, req, handle) = channels(rings);
        (SteppedRecordingWriter { core, req }, handle)
    }

    /// Take the waiting requests and drain every ring; finish stopped recordings.
    pub fn service(&mut self) {
        while let Ok(r) = self.req.try_recv() {
            self.core.request(r);
        }
        self.core.drain_all(false);
    }
}

impl Drop for SteppedRecordingWriter {
    fn drop(&mut self) {
        self.core.drain_all(true);
    }
}

const WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 2,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// The writer's state: the consumer ends and the open files.
struct Core {
    rings: RecordingRings,
    files: Vec<Option<OpenFile>>,
    scratch: Vec<i16>,
    fin: Sender<RecordingFinished>,
    opened: Sender<Opened>,
}

impl Core {
    fn open(&mut self, slot: usize, path: PathBuf, mono: bool) -> Result<(), RecordError> {
        let shared = self.rings.slots[slot].1.clone();
        let spec = hound::WavSpec { channels: if mono { 1 } else { 2 }, ..WAV_SPEC };
        match hound::WavWriter::create(&path, spec) {
            Ok(wav) => {
                // Leftovers of an earlier use of the slot cannot exist (drained before
                // it became free), but clear anyway so a file never starts with them.
                self.rings.slots[slot].0.clear();
                self.files[slot] = Some(OpenFile {
                    path,
                    wav,
                    frames: 0,
                    overruns_at_open: shared.overruns.load(Ordering::Relaxed),
                    error: None,
                    mono,
                    paused: false,
                });
                shared.state.store(OPEN, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                shared.state.store(FREE, Ordering::Release);
                Err(RecordError::Create { path, reason: e.to_string() })
            }
        }
    }

    fn request(&mut self, r: Request) {
        match r {
            Request::Open { slot, path, reply } => {
                let res = self.open(slot, path, false);
                let _ = reply.send(res);
            }
            Request::OpenNoWait { slot, path, mono } => {
                let res = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(dir) => std::fs::create_dir_all(dir).map_err(|e| RecordError::Create {
                        path: path.clone(),
                        reason: e.to_string(),
                    }),
                    None => Ok(()),
                };
                let res = match res {
                    Ok(()) => self.open(slot, path, mono),
                    Err(e) => {
                        self.rings.slots[slot].1.state.store(FREE, Ordering::Release);
                        Err(e)
                    }
                };
                let _ = self.opened.send((RecSlot(slot as u16), res));
            }
            Request::Pause { slot, on } => {
                if slot < self.files.len() {
                    // What is in the ring now was recorded before the request.
                    self.drain(slot, false);
                    if let Some(f) = self.files[slot].as_mut() {
                        f.paused = on;
                    }
                }
            }
        }
    }

    fn drain_all(&mut self, stopping: bool) {
        for i in 0..self.files.len() {
            self.drain(i, stopping);
        }
    }

    /// Write what slot `i`'s ring holds; finish the file when the slot is stopped (or
    /// `stopping`).
    fn drain(&mut self, i: usize, stopping: bool) {
        let (cons, shared) = &mut self.rings.slots[i];
        let Some(f) = self.files[i].as_mut() else { return };
        // Read the state before draining: everything the engine pushed before it marked
        // the slot stopped is then visible to the drain below.
        let stopped = shared.state.load(Ordering::Acquire) == STOPPING;
        loop {
            let n = cons.pop_slice(&mut self.scratch);
            if n == 0 {
                break;
            }
            let mut res = Ok(());
            for pair in self.scratch[..n].chunks_exact(2) {
                let (l, r) = if f.paused { (0, 0) } else { (pair[0], pair[1]) };
                res = res.and(if f.mono {
                    let m = (i32::from(l) + i32::from(r)).clamp(-32768, 32767) as i16;
                    f.wav.write_sample(m)
                } else {
                    f.wav.write_sample(l).and_then(|()| f.wav.write_sample(r))
                });
            }
            if let Err(e) = res {
                f.error.get_or_insert_with(|| e.to_string());
            }
            f.frames += (n / 2) as u64;
        }
        if stopped || stopping {
            let f = self.files[i].take().expect("checked above");
            let overruns = shared.overruns.load(Ordering::Relaxed) - f.overruns_at_open;
            let mut error = f.error;
            if let Err(e) = f.wav.finalize() {
                error.get_or_insert_with(|| e.to_string());
            }
            shared.state.store(FREE, Ordering::Release);
            let _ = self.fin.send(RecordingFinished {
                slot: RecSlot(i as u16),
                path: f.path,
                frames: f.frames,
                overruns,
                error,
            });
        }
    }
}

fn writer_loop(mut core: Core, req: Receiver<Request>, stop: Receiver<()>) {
    let mut requests_open = true;
    loop {
        let stopping =
            matches!(stop.try_recv(), Ok(()) | Err(crossbeam_channel::TryRecvError::Disconnected));
        let r = if requests_open && !stopping {
            req.recv_timeout(DRAIN_PERIOD)
        } else {
            if !stopping {
                std::thread::sleep(DRAIN_PERIOD);
            }
            Err(RecvTimeoutError::Timeout)
        };
        match r {
            Ok(r) => core.request(r),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => requests_open = false,
        }
        core.drain_all(stopping);
        if stopping {
            return;
        }
    }
}
