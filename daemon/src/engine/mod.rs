//! The real-time media engine: one 1 ms tick for every channel of a card.
//!
//! The engine owns the card. Each [`Engine::tick`] waits for the card's tick, applies queued
//! [`EngineCommand`]s, exchanges one chunk per channel with the card, forwards card events,
//! decodes what arrived, runs DTMF detectors, mixes conferences, computes every output from its
//! [`Source`] (the switch matrix), feeds recordings and encodes the next chunk to send.
//!
//! The control plane talks to it only through an [`EngineHandle`]: a preallocated lock-free
//! command ring in, an event ring out, and atomic [`EngineStats`]. Channel state lives in flat
//! arrays indexed by channel; lists of channels that need work keep idle channels free (an
//! idle channel costs nothing per tick: its idle code stays in the transmit buffer).
//!
//! Audio computed in a tick is handed to the card in the next tick's exchange (the card's
//! single `exchange` call both writes and reads), so the engine adds one tick (1 ms) of delay.
//!
//! What the engine does not do: signalling (the control plane drives it with `Hal` commands and
//! reads `Hal` events), logging (the control plane turns events into log lines), file I/O
//! (the [`record`] writer thread does that).

pub mod api;
pub mod fake;
pub mod faxport;
mod list;
pub mod prompt;
pub mod record;
pub mod rt;
pub mod stats;

#[cfg(test)]
mod tests;

pub use api::{
    CidFrame, ConfId, ConfMode, Detectors, EngineCommand, EngineEvent, FaxSlot, FskBurst, PromptId,
    RecSlot, Source, CLAMP_DELAY_SAMPLES, MAX_MIX,
};
pub use faxport::FaxPortRings;
pub use prompt::{PromptError, PromptLibrary, PromptPlayers};
pub use record::{
    Opened, RecordError, RecordingFinished, RecordingHandle, RecordingRings, RecordingWriter,
    SteppedRecordingWriter,
};
pub use stats::{EngineStats, EngineStatsSnapshot};

use cardpbx_dsp::callerid::{CallerIdReceiver, FskStandard, FskTx, MARK_BITS, SEIZURE_BITS};
use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfEvent};
use cardpbx_dsp::echo::{EchoCanceller, EchoConfig, EchoConfigError};
use cardpbx_dsp::faxtone::{FaxToneDetector, FaxToneEvent};
use cardpbx_dsp::g711::Law;
use cardpbx_dsp::mfr2::{MfDetector, MfDetectorConfig, MfDirection};
use cardpbx_dsp::progress::{ProgressDetector, ProgressEvent};
use cardpbx_dsp::tone::{ToneGen, ToneSpec};
use cardpbx_dsp::toneplan::TonePlan;
use cardpbx_hal::{Card, ChannelId, Chunk, ErrorKind, HalCommand, HalEvent, Tick, CHUNK_SAMPLES};
use list::ActiveList;
use record::SlotProducer;
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Most commands applied in one tick; the rest wait for the next tick.
pub const MAX_COMMANDS_PER_TICK: usize = 256;
/// Most card events forwarded in one tick; the rest wait for the next tick.
pub const MAX_CARD_EVENTS_PER_TICK: usize = 256;
/// A [`EngineEvent::Heartbeat`] is sent on every tick that is a multiple of this.
pub const HEARTBEAT_TICKS: Tick = 1000;

const NONE: u32 = u32::MAX;
const NO_CONF: u16 = u16::MAX;

/// Samples of margin muted on each side of a clamped DTMF digit (the onset and end estimates
/// are good to about a millisecond).
const CLAMP_MARGIN_SAMPLES: u64 = 24;

/// Sizes and shared data the engine is built with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Capacity of the command ring (control plane → engine).
    pub cmd_capacity: usize,
    /// Capacity of the event ring (engine → control plane).
    pub event_capacity: usize,
    /// Number of conference bridges ([`ConfId`] `0..conferences`).
    pub conferences: usize,
    /// Number of recording slots ([`RecSlot`] `0..recording_slots`).
    pub recording_slots: usize,
    /// Decoded prompts for [`Source::Prompt`].
    pub prompts: PromptLibrary,
    /// The tone plan the call-progress detectors listen for.
    pub tone_plan: TonePlan,
    /// Channels that get a line echo canceller (analog ports), off until
    /// [`EngineCommand::EchoCancel`].
    pub echo_channels: Vec<ChannelId>,
    /// Settings of those echo cancellers.
    pub echo: EchoConfig,
    /// Number of fax ports ([`FaxSlot`] `0..fax_ports`).
    pub fax_ports: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cmd_capacity: 1024,
            event_capacity: 4096,
            conferences: 64,
            recording_slots: 32,
            prompts: PromptLibrary::empty(),
            tone_plan: TonePlan::china(),
            echo_channels: Vec::new(),
            echo: EchoConfig::default(),
            fax_ports: 8,
        }
    }
}

/// Why an engine cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineBuildError {
    /// The echo canceller settings are refused.
    #[error("echo canceller: {0}")]
    Echo(#[from] EchoConfigError),
    /// An echo channel is not an audio channel of the card.
    #[error("echo canceller on {0}: not an audio channel of the card")]
    EchoChannel(ChannelId),
}

/// The command ring was full; the command is handed back.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("media engine command ring is full")]
pub struct Full(pub EngineCommand);

/// The control plane's end of an engine: send commands, read events, read statistics.
pub struct EngineHandle {
    cmd: HeapProd<EngineCommand>,
    ev: HeapCons<EngineEvent>,
    stats: Arc<EngineStats>,
    recordings: Option<RecordingRings>,
    fax_ports: Option<FaxPortRings>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").field("stats", &self.stats.snapshot()).finish()
    }
}

impl EngineHandle {
    /// Queue a command for the next tick.
    ///
    /// # Errors
    /// [`Full`] when the ring is full (counted in [`EngineStats::command_overruns`]).
    // The command is handed back by value: boxing it would allocate on every refusal.
    #[allow(clippy::result_large_err)]
    pub fn send(&mut self, cmd: EngineCommand) -> Result<(), Full> {
        self.cmd.try_push(cmd).map_err(|c| {
            self.stats.command_overruns.fetch_add(1, Ordering::Relaxed);
            Full(c)
        })
    }

    /// Whether commands wait in the ring for the engine's next tick.
    pub fn commands_pending(&self) -> bool {
        !ringbuf::traits::Observer::is_empty(&self.cmd)
    }

    /// The next event from the engine, if any.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.ev.try_pop()
    }

    /// The engine's live counters.
    pub fn stats(&self) -> Arc<EngineStats> {
        self.stats.clone()
    }

    /// The writer's ends of the recording rings, for [`RecordingWriter::spawn`] (once).
    pub fn take_recordings(&mut self) -> Option<RecordingRings> {
        self.recordings.take()
    }

    /// The fax worker's ends of the fax ports (once).
    pub fn take_fax_ports(&mut self) -> Option<FaxPortRings> {
        self.fax_ports.take()
    }
}

/// What an output computes each tick: [`Source`] compiled to indices.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Silence,
    /// Same law: copy the G.711 bytes (bit-transparent).
    Copy(u32),
    /// Different laws: decode, re-encode.
    Transcode(u32),
    Mix([u32; MAX_MIX], u8),
    Conf(u16),
    Tone,
    Prompt {
        id: u16,
        repeat: bool,
    },
    Fsk,
    /// Fax port `slot` attached to channel `chan` (the output's own channel).
    Fax {
        slot: u16,
        chan: u32,
    },
}

/// DTMF clamping state of one channel: a delay line for its received G.711 codes and the
/// window of detector sample positions to replace with silence.
#[derive(Clone)]
struct Clamp {
    delay: [u8; CLAMP_DELAY_SAMPLES],
    pos: usize,
    /// Muted sample positions `[from, to)` in the DTMF detector's count (`to` is `u64::MAX`
    /// while the digit sounds).
    from: u64,
    to: u64,
}

/// The media engine of one card. See the module docs.
pub struct Engine<C: Card> {
    card: C,
    n: usize,
    now: Tick,
    law: Vec<Law>,
    audio: Vec<bool>,
    rx: Vec<Chunk>,
    tx: Vec<Chunk>,
    rx_lin: Vec<[i16; CHUNK_SAMPLES]>,
    route: Vec<Route>,
    /// How many consumers need a channel's decoded receive audio.
    rx_refs: Vec<u32>,
    rx_active: ActiveList,
    out_active: ActiveList,
    tone: Vec<ToneGen>,
    prompt_pos: Vec<u32>,
    prompts: PromptLibrary,
    conf_of: Vec<u16>,
    conf_talks: Vec<bool>,
    talkers: ActiveList,
    conf_mix: Vec<[i32; CHUNK_SAMPLES]>,
    conf_talkers: Vec<u32>,
    dtmf: Vec<DtmfDetector>,
    /// Ticks at which each channel's DTMF, progress, fax and MF R2 detectors were last reset.
    det_base: Vec<[Tick; 4]>,
    det: Vec<Detectors>,
    det_active: ActiveList,
    progress: Vec<ProgressDetector>,
    fax: Vec<FaxToneDetector>,
    mfr2: Vec<MfDetector>,
    cid: Vec<CallerIdReceiver>,
    clamp: Vec<Clamp>,
    fsk: Vec<FskTx>,
    echo: Vec<Option<Box<EchoCanceller>>>,
    echo_active: ActiveList,
    rec: Vec<SlotProducer>,
    rec_active: ActiveList,
    fax_ports: Vec<faxport::EnginePort>,
    cmd: HeapCons<EngineCommand>,
    ev: HeapProd<EngineEvent>,
    stats: Arc<EngineStats>,
}

impl<C: Card> std::fmt::Debug for Engine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("channels", &self.n)
            .field("now", &self.now)
            .field("active_outputs", &self.out_active.len())
            .finish()
    }
}

fn to_dsp_law(l: cardpbx_hal::Law) -> Law {
    match l {
        cardpbx_hal::Law::Alaw => Law::Alaw,
        cardpbx_hal::Law::Ulaw => Law::Ulaw,
    }
}

/// Push an event; a full ring counts an overrun instead of blocking.
#[inline]
fn emit(ev: &mut HeapProd<EngineEvent>, stats: &EngineStats, e: EngineEvent) {
    if ev.try_push(e).is_err() {
        stats.event_overruns.fetch_add(1, Ordering::Relaxed);
    }
}

/// Put a tick's received codes of a clamped channel through its delay line, replacing those
/// inside the muted window with the idle code, and decode the result for the listeners. `end`
/// is the DTMF detector's sample count after this tick's samples.
fn clamp_chunk(
    c: &mut Clamp,
    law: Law,
    end: u64,
    rx: &mut Chunk,
    rx_lin: &mut [i16; CHUNK_SAMPLES],
) {
    // Detector count of the first code leaving the delay line now.
    let first = end.checked_sub((CLAMP_DELAY_SAMPLES + CHUNK_SAMPLES) as u64);
    for (i, code) in rx.iter_mut().enumerate() {
        let out = c.delay[c.pos];
        c.delay[c.pos] = *code;
        c.pos = (c.pos + 1) % CLAMP_DELAY_SAMPLES;
        let muted = first.is_some_and(|f| {
            let p = f + i as u64;
            p >= c.from && p < c.to
        });
        *code = if muted { law.silence() } else { out };
    }
    law.decode_block(rx, rx_lin);
}

#[inline]
fn saturate(acc: &[i32; CHUNK_SAMPLES]) -> [i16; CHUNK_SAMPLES] {
    std::array::from_fn(|i| acc[i].clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
}

#[inline]
fn encode(law: Law, lin: &[i16; CHUNK_SAMPLES], out: &mut Chunk) {
    law.encode_block(lin, out);
}

impl<C: Card> Engine<C> {
    /// Build an engine for `card`, with every buffer allocated now.
    ///
    /// # Panics
    /// When `cfg.conferences` or `cfg.recording_slots` exceed 65535, or the echo canceller
    /// settings are refused (see [`Engine::build`] to get an error instead).
    pub fn new(card: C, cfg: EngineConfig) -> (Engine<C>, EngineHandle) {
        match Self::build(card, cfg) {
            Ok(e) => e,
            Err(e) => panic!("cannot build the media engine: {e}"),
        }
    }

    /// Build an engine for `card`, with every buffer allocated now.
    ///
    /// # Errors
    /// Refused echo canceller settings or echo channels.
    ///
    /// # Panics
    /// When `cfg.conferences` or `cfg.recording_slots` exceed 65535.
    pub fn build(
        card: C,
        cfg: EngineConfig,
    ) -> Result<(Engine<C>, EngineHandle), EngineBuildError> {
        assert!(cfg.conferences <= usize::from(NO_CONF), "at most 65535 conferences");
        assert!(cfg.recording_slots <= usize::from(u16::MAX), "at most 65535 recording slots");
        assert!(cfg.fax_ports <= usize::from(u16::MAX), "at most 65535 fax ports");
        cardpbx_dsp::tone::init();
        let n = card.channel_count();
        let info = card.info();
        let law: Vec<Law> =
            (0..n).map(|i| info.channels.get(i).map_or(Law::Alaw, |c| to_dsp_law(c.law))).collect();
        let audio: Vec<bool> =
            (0..n).map(|i| info.channels.get(i).is_some_and(|c| c.sig.carries_audio())).collect();
        let idle: Vec<Chunk> = law.iter().map(|l| [l.silence(); CHUNK_SAMPLES]).collect();
        let silent_tone = ToneSpec::new(&[cardpbx_dsp::tone::Segment::silence(0)], true)
            .expect("a continuous silence is a valid tone");
        let (cmd_prod, cmd_cons) = HeapRb::new(cfg.cmd_capacity.max(1)).split();
        let (ev_prod, ev_cons) = HeapRb::new(cfg.event_capacity.max(1)).split();
        let (rec, rings) = record::pool(cfg.recording_slots);
        let (fax_ports, fax_rings) = faxport::pool(cfg.fax_ports);
        let stats = Arc::new(EngineStats::default());
        let dtmf_proto = DtmfDetector::new(DtmfConfig::default());
        let mut echo: Vec<Option<Box<EchoCanceller>>> = (0..n).map(|_| None).collect();
        for &c in &cfg.echo_channels {
            if !audio.get(c.index()).copied().unwrap_or(false) {
                return Err(EngineBuildError::EchoChannel(c));
            }
            echo[c.index()] = Some(Box::new(EchoCanceller::new(cfg.echo)?));
        }
        let clamp = Clamp { delay: [0; CLAMP_DELAY_SAMPLES], pos: 0, from: 0, to: 0 };
        let clamp: Vec<Clamp> = law
            .iter()
            .map(|l| Clamp { delay: [l.silence(); CLAMP_DELAY_SAMPLES], ..clamp.clone() })
            .collect();
        let engine = Engine {
            card,
            n,
            now: 0,
            law,
            audio,
            rx: idle.clone(),
            tx: idle,
            rx_lin: vec![[0; CHUNK_SAMPLES]; n],
            route: vec![Route::Silence; n],
            rx_refs: vec![0; n],
            rx_active: ActiveList::new(n),
            out_active: ActiveList::new(n),
            tone: vec![ToneGen::new(silent_tone); n],
            prompt_pos: vec![0; n],
            prompts: cfg.prompts,
            conf_of: vec![NO_CONF; n],
            conf_talks: vec![false; n],
            talkers: ActiveList::new(n),
            conf_mix: vec![[0; CHUNK_SAMPLES]; cfg.conferences],
            conf_talkers: vec![0; cfg.conferences],
            dtmf: vec![dtmf_proto; n],
            det_base: vec![[0; 4]; n],
            det: vec![Detectors::NONE; n],
            det_active: ActiveList::new(n),
            progress: vec![ProgressDetector::new(&cfg.tone_plan); n],
            fax: vec![FaxToneDetector::new(); n],
            mfr2: vec![MfDetector::new(MfDirection::Forward, MfDetectorConfig::default()); n],
            cid: vec![CallerIdReceiver::new(FskStandard::Bell202); n],
            clamp,
            fsk: vec![FskTx::new(FskStandard::Bell202, -13.0, SEIZURE_BITS, MARK_BITS); n],
            echo,
            echo_active: ActiveList::new(n),
            rec_active: ActiveList::new(cfg.recording_slots),
            rec,
            fax_ports,
            cmd: cmd_cons,
            ev: ev_prod,
            stats: stats.clone(),
        };
        let handle = EngineHandle {
            cmd: cmd_prod,
            ev: ev_cons,
            stats,
            recordings: Some(rings),
            fax_ports: Some(fax_rings),
        };
        Ok((engine, handle))
    }

    /// The card.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// The card, mutably (the virtual-clock runner and tests reach the simulated card here).
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// The number of the last tick run (0 before the first).
    pub fn now(&self) -> Tick {
        self.now
    }

    /// Number of channels.
    pub fn channel_count(&self) -> usize {
        self.n
    }

    /// The live counters (same as [`EngineHandle::stats`]).
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Run ticks until `stop` is set or the card fails; meant as the body of the real-time
    /// thread (call [`rt::enter_realtime`] first).
    ///
    /// # Errors
    /// The card error that ended the loop (after a [`HalEvent::CardGone`] event when the card
    /// vanished). Overruns are counted and do not end it.
    pub fn run_until_stopped(mut self, stop: Arc<AtomicBool>) -> Result<(), cardpbx_hal::Error> {
        while !stop.load(Ordering::Acquire) {
            if let Err(e) = self.tick() {
                if e.kind() == ErrorKind::Gone {
                    emit(&mut self.ev, &self.stats, EngineEvent::Hal(self.now, HalEvent::CardGone));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Run one tick (see the module docs for the steps).
    ///
    /// # Real-time
    /// No allocation, lock or blocking call besides the card's own `wait_tick`/`exchange`.
    /// Bounded work: at most [`MAX_COMMANDS_PER_TICK`] commands and
    /// [`MAX_CARD_EVENTS_PER_TICK`] card events, then a constant amount per channel that has a
    /// non-silent source, a detector, a recording or listeners, per conference and per slot.
    ///
    /// # Errors
    /// A card error other than [`ErrorKind::Overrun`] (overruns are counted as late ticks and
    /// card errors, and the tick goes on).
    pub fn tick(&mut self) -> Result<(), cardpbx_hal::Error> {
        let t = match self.card.wait_tick() {
            Ok(t) => t,
            Err(e) => {
                self.stats.card_errors.fetch_add(1, Ordering::Relaxed);
                if e.kind() != ErrorKind::Overrun {
                    return Err(e);
                }
                self.stats.late_ticks.fetch_add(1, Ordering::Relaxed);
                self.card.now()
            }
        };
        let start = Instant::now();
        if self.now != 0 && t > self.now + 1 {
            // The card skipped ticks: we were late.
            self.stats.late_ticks.fetch_add(1, Ordering::Relaxed);
        }
        self.now = t;

        for _ in 0..MAX_COMMANDS_PER_TICK {
            match self.cmd.try_pop() {
                Some(c) => self.apply(c),
                None => break,
            }
        }

        if let Err(e) = self.card.exchange(&self.tx, &mut self.rx) {
            self.stats.card_errors.fetch_add(1, Ordering::Relaxed);
            if e.kind() != ErrorKind::Overrun {
                self.stats.record_work(start.elapsed().as_nanos() as u64);
                return Err(e);
            }
            self.stats.late_ticks.fetch_add(1, Ordering::Relaxed);
        }

        for _ in 0..MAX_CARD_EVENTS_PER_TICK {
            match self.card.poll_event() {
                Some(e) => emit(&mut self.ev, &self.stats, EngineEvent::Hal(t, e)),
                None => break,
            }
        }

        self.decode_rx();
        self.cancel_echo();
        self.run_detectors();
        self.mix_conferences();
        self.compute_outputs();
        self.feed_recordings();

        if t % HEARTBEAT_TICKS == 0 {
            emit(&mut self.ev, &self.stats, EngineEvent::Heartbeat(t));
        }
        if t % stats::SPAN_POLL_TICKS == 0 {
            self.stats.publish_spans(&self.card);
        }
        self.stats.record_work(start.elapsed().as_nanos() as u64);
        Ok(())
    }

    fn decode_rx(&mut self) {
        for &ch in self.rx_active.as_slice() {
            let ch = ch as usize;
            self.law[ch].decode_block(&self.rx[ch], &mut self.rx_lin[ch]);
        }
    }

    /// Remove the echo of what each echo-cancelled channel sent from what it received; what
    /// routes copy (the G.711 codes) is re-encoded from the result.
    fn cancel_echo(&mut self) {
        for &ch in self.echo_active.as_slice() {
            let ch = ch as usize;
            let Some(ec) = self.echo[ch].as_deref_mut() else { continue };
            let law = self.law[ch];
            let mut far = [0i16; CHUNK_SAMPLES];
            law.decode_block(&self.tx[ch], &mut far);
            let near = self.rx_lin[ch];
            ec.process_block(&far, &near, &mut self.rx_lin[ch]);
            law.encode_block(&self.rx_lin[ch], &mut self.rx[ch]);
        }
    }

    fn run_detectors(&mut self) {
        let ev = &mut self.ev;
        let stats = &*self.stats;
        for &ch in self.det_active.as_slice() {
            let ch = ch as usize;
            let chan = ChannelId(ch as u32);
            let det = self.det[ch];
            let [dtmf_base, progress_base, fax_base, mf_base] = self.det_base[ch];
            let tick_of = |base: Tick, at_sample: u64| base + at_sample / CHUNK_SAMPLES as u64;
            let samples = &self.rx_lin[ch];
            if det.progress {
                self.progress[ch].process(samples, |e| {
                    let at = match e {
                        ProgressEvent::Detected { at_sample, .. }
                        | ProgressEvent::ToneStopped { at_sample, .. }
                        | ProgressEvent::VoiceDetected { at_sample } => at_sample,
                    };
                    emit(ev, stats, EngineEvent::Progress(chan, e, tick_of(progress_base, at)));
                });
            }
            if det.fax {
                self.fax[ch].process(samples, |e| {
                    let at = match e {
                        FaxToneEvent::Cng { at_sample } | FaxToneEvent::Ced { at_sample, .. } => {
                            at_sample
                        }
                    };
                    emit(ev, stats, EngineEvent::FaxTone(chan, e, tick_of(fax_base, at)));
                });
            }
            if det.mfr2.is_some() {
                self.mfr2[ch].process(samples, |e| {
                    emit(ev, stats, EngineEvent::Mf(chan, e.signal, tick_of(mf_base, e.at_sample)));
                });
            }
            if det.callerid.is_some() {
                let now = self.now;
                self.cid[ch].process_frames(samples, |r| {
                    let r = r.map(|bytes| CidFrame::new(bytes).expect("receiver frames fit"));
                    emit(ev, stats, EngineEvent::CallerId(chan, r, now));
                });
            }
            if det.dtmf || det.clamp_dtmf {
                let clamp = &mut self.clamp[ch];
                let clamping = det.clamp_dtmf;
                // Detector count of the next code to leave the delay line.
                let next_out =
                    self.dtmf[ch].samples_processed().saturating_sub(CLAMP_DELAY_SAMPLES as u64);
                self.dtmf[ch].process(&self.rx_lin[ch], |e| match e {
                    DtmfEvent::Start { digit, at_sample } => {
                        let at = tick_of(dtmf_base, at_sample);
                        emit(ev, stats, EngineEvent::Digit { chan, digit, at });
                        if clamping {
                            let from = at_sample.saturating_sub(CLAMP_MARGIN_SAMPLES);
                            // The last window is still on its way out: stretch it instead.
                            if next_out >= clamp.to {
                                clamp.from = from;
                            }
                            clamp.to = u64::MAX;
                        }
                    }
                    DtmfEvent::End { at_sample, .. } => {
                        if clamping {
                            clamp.to = at_sample + CLAMP_MARGIN_SAMPLES;
                        }
                    }
                });
                if clamping {
                    let end = self.dtmf[ch].samples_processed();
                    clamp_chunk(clamp, self.law[ch], end, &mut self.rx[ch], &mut self.rx_lin[ch]);
                }
            }
        }
    }

    fn mix_conferences(&mut self) {
        for (mix, &talkers) in self.conf_mix.iter_mut().zip(&self.conf_talkers) {
            if talkers > 0 {
                *mix = [0; CHUNK_SAMPLES];
            }
        }
        for &ch in self.talkers.as_slice() {
            let ch = ch as usize;
            let mix = &mut self.conf_mix[usize::from(self.conf_of[ch])];
            let rx = &self.rx_lin[ch];
            for i in 0..CHUNK_SAMPLES {
                mix[i] += i32::from(rx[i]);
            }
        }
    }

    fn compute_outputs(&mut self) {
        let mut k = 0;
        while k < self.out_active.len() {
            let ch = self.out_active.get(k);
            let law = self.law[ch];
            match self.route[ch] {
                Route::Silence => {
                    self.tx[ch] = [law.silence(); CHUNK_SAMPLES];
                    self.out_active.remove(ch);
                    // The last member moved into position k: look at it next.
                    continue;
                }
                Route::Copy(src) => self.tx[ch] = self.rx[src as usize],
                Route::Transcode(src) => encode(law, &self.rx_lin[src as usize], &mut self.tx[ch]),
                Route::Mix(members, count) => {
                    let mut acc = [0i32; CHUNK_SAMPLES];
                    for &m in &members[..usize::from(count)] {
                        let rx = &self.rx_lin[m as usize];
                        for i in 0..CHUNK_SAMPLES {
                            acc[i] += i32::from(rx[i]);
                        }
                    }
                    encode(law, &saturate(&acc), &mut self.tx[ch]);
                }
                Route::Conf(c) => {
                    let mut acc = self.conf_mix[usize::from(c)];
                    if self.conf_of[ch] == c && self.conf_talks[ch] {
                        let own = &self.rx_lin[ch];
                        for i in 0..CHUNK_SAMPLES {
                            acc[i] -= i32::from(own[i]);
                        }
                    }
                    encode(law, &saturate(&acc), &mut self.tx[ch]);
                }
                Route::Tone => {
                    let mut buf = [0i16; CHUNK_SAMPLES];
                    self.tone[ch].fill(&mut buf);
                    encode(law, &buf, &mut self.tx[ch]);
                    if self.tone[ch].is_done() {
                        self.play_done(ch);
                    }
                }
                Route::Fsk => {
                    let mut buf = [0i16; CHUNK_SAMPLES];
                    let more = self.fsk[ch].fill(&mut buf);
                    encode(law, &buf, &mut self.tx[ch]);
                    if !more {
                        self.play_done(ch);
                    }
                }
                Route::Fax { slot, .. } => {
                    let mut buf = [0i16; CHUNK_SAMPLES];
                    self.fax_ports[usize::from(slot)].exchange(&self.rx_lin[ch], &mut buf);
                    encode(law, &buf, &mut self.tx[ch]);
                }
                Route::Prompt { id, repeat } => {
                    let mut buf = [0i16; CHUNK_SAMPLES];
                    let pos = self.prompt_pos[ch] as usize;
                    let (pos, done) = self.prompts.fill(api::PromptId(id), pos, repeat, &mut buf);
                    self.prompt_pos[ch] = pos as u32;
                    encode(law, &buf, &mut self.tx[ch]);
                    if done {
                        self.play_done(ch);
                    }
                }
            }
            k += 1;
        }
    }

    /// A non-repeating tone or prompt ended: report it; the source becomes silence (the idle
    /// code goes out from the next tick, after this tick's last samples).
    fn play_done(&mut self, ch: usize) {
        emit(&mut self.ev, &self.stats, EngineEvent::PlayDone(ChannelId(ch as u32), self.now));
        self.set_route(ch, Route::Silence);
    }

    fn feed_recordings(&mut self) {
        for &s in self.rec_active.as_slice() {
            let slot = &mut self.rec[s as usize];
            let ch = slot.chan as usize;
            let law = self.law[ch];
            let mut frame = [0i16; 2 * CHUNK_SAMPLES];
            for i in 0..CHUNK_SAMPLES {
                frame[2 * i] = self.rx_lin[ch][i];
                frame[2 * i + 1] = law.decode(self.tx[ch][i]);
            }
            if !slot.push(&frame) {
                self.stats.recording_overruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    // ----- commands -----

    fn reject(&mut self, chan: ChannelId) {
        self.stats.rejected_commands.fetch_add(1, Ordering::Relaxed);
        emit(&mut self.ev, &self.stats, EngineEvent::CommandFailed(chan, self.now));
    }

    fn is_audio(&self, ch: ChannelId) -> bool {
        self.audio.get(ch.index()).copied().unwrap_or(false)
    }

    fn add_ref(&mut self, ch: usize) {
        self.rx_refs[ch] += 1;
        if self.rx_refs[ch] == 1 {
            self.rx_active.insert(ch);
        }
    }

    fn del_ref(&mut self, ch: usize) {
        debug_assert!(self.rx_refs[ch] > 0);
        self.rx_refs[ch] = self.rx_refs[ch].saturating_sub(1);
        if self.rx_refs[ch] == 0 {
            self.rx_active.remove(ch);
            // Listeners that come later must not hear stale audio before the next decode.
            self.rx_lin[ch] = [0; CHUNK_SAMPLES];
        }
    }

    fn route_refs(&mut self, r: Route, add: bool) {
        let f = |e: &mut Self, ch: u32| {
            if add {
                e.add_ref(ch as usize)
            } else {
                e.del_ref(ch as usize)
            }
        };
        match r {
            Route::Transcode(src) => f(self, src),
            Route::Mix(m, n) => {
                for &c in &m[..usize::from(n)] {
                    f(self, c);
                }
            }
            // The port hears the channel's own received audio.
            Route::Fax { chan, .. } => f(self, chan),
            _ => {}
        }
    }

    fn set_route(&mut self, ch: usize, r: Route) {
        let old = self.route[ch];
        if let Route::Fax { slot, .. } = old {
            self.fax_ports[usize::from(slot)].detach();
        }
        if let Route::Fax { slot, chan } = r {
            self.fax_ports[usize::from(slot)].attach(chan);
        }
        self.route_refs(old, false);
        self.route[ch] = r;
        self.route_refs(r, true);
        self.out_active.insert(ch);
    }

    /// Compile a source for output `ch`; `None` when it names something that does not exist.
    fn compile(&self, ch: usize, src: &Source) -> Option<Route> {
        Some(match *src {
            Source::Silence => Route::Silence,
            Source::Channel(s) => {
                if !self.is_audio(s) {
                    return None;
                }
                if self.law[s.index()] == self.law[ch] {
                    Route::Copy(s.0)
                } else {
                    Route::Transcode(s.0)
                }
            }
            Source::Mix(list) => {
                let mut m = [0u32; MAX_MIX];
                let mut n = 0u8;
                for c in list.into_iter().flatten() {
                    if !self.is_audio(c) {
                        return None;
                    }
                    m[usize::from(n)] = c.0;
                    n += 1;
                }
                Route::Mix(m, n)
            }
            Source::Conference(c) => {
                if usize::from(c.0) >= self.conf_mix.len() {
                    return None;
                }
                Route::Conf(c.0)
            }
            Source::Tone(_) => Route::Tone,
            Source::Fsk(_) => Route::Fsk,
            Source::Prompt { prompt, repeat } => {
                if !self.prompts.contains(prompt) {
                    return None;
                }
                Route::Prompt { id: prompt.0, repeat }
            }
            Source::FaxPort(slot) => {
                let port = self.fax_ports.get(usize::from(slot.0))?;
                // One channel per port.
                if port.chan != u32::MAX && port.chan != ch as u32 {
                    return None;
                }
                Route::Fax { slot: slot.0, chan: ch as u32 }
            }
        })
    }

    fn leave_conference(&mut self, ch: usize) {
        let c = self.conf_of[ch];
        if c == NO_CONF {
            return;
        }
        if self.conf_talks[ch] {
            self.talkers.remove(ch);
            self.conf_talkers[usize::from(c)] -= 1;
            if self.conf_talkers[usize::from(c)] == 0 {
                // Listeners left in a room nobody talks in hear silence, not the last chunk.
                self.conf_mix[usize::from(c)] = [0; CHUNK_SAMPLES];
            }
            self.conf_talks[ch] = false;
            self.del_ref(ch);
        }
        self.conf_of[ch] = NO_CONF;
        if self.route[ch] == Route::Conf(c) {
            self.set_route(ch, Route::Silence);
        }
    }

    fn apply(&mut self, cmd: EngineCommand) {
        match cmd {
            EngineCommand::SetSource(chan, src) => {
                if !self.is_audio(chan) {
                    return self.reject(chan);
                }
                let ch = chan.index();
                let Some(route) = self.compile(ch, &src) else {
                    return self.reject(chan);
                };
                match src {
                    Source::Tone(spec) => self.tone[ch].set(spec),
                    Source::Fsk(b) => {
                        let mut tx = FskTx::new(b.standard, b.level_dbm0, SEIZURE_BITS, MARK_BITS);
                        if tx.send(b.frame.as_bytes()).is_err() {
                            return self.reject(chan);
                        }
                        self.fsk[ch] = tx;
                    }
                    Source::Prompt { .. } => self.prompt_pos[ch] = 0,
                    _ => {}
                }
                self.set_route(ch, route);
            }
            EngineCommand::ConfJoin(conf, chan, mode) => {
                if !self.is_audio(chan) || usize::from(conf.0) >= self.conf_mix.len() {
                    return self.reject(chan);
                }
                let ch = chan.index();
                self.leave_conference(ch);
                self.conf_of[ch] = conf.0;
                if mode != ConfMode::ListenOnly {
                    self.conf_talks[ch] = true;
                    self.talkers.insert(ch);
                    self.conf_talkers[usize::from(conf.0)] += 1;
                    self.add_ref(ch);
                }
                if mode != ConfMode::TalkOnly {
                    self.set_route(ch, Route::Conf(conf.0));
                }
            }
            EngineCommand::ConfLeave(conf, chan) => {
                if !self.is_audio(chan) || usize::from(conf.0) >= self.conf_mix.len() {
                    return self.reject(chan);
                }
                let ch = chan.index();
                if self.conf_of[ch] == conf.0 {
                    self.leave_conference(ch);
                } else if self.route[ch] == Route::Conf(conf.0) {
                    self.set_route(ch, Route::Silence);
                }
            }
            EngineCommand::Detect(chan, want) => {
                if !self.is_audio(chan) {
                    return self.reject(chan);
                }
                self.set_detectors(chan.index(), want);
            }
            EngineCommand::EchoCancel(chan, on) => {
                let ch = chan.index();
                if !self.is_audio(chan) || self.echo[ch].is_none() {
                    return self.reject(chan);
                }
                if on && !self.echo_active.contains(ch) {
                    if let Some(ec) = self.echo[ch].as_deref_mut() {
                        ec.reset();
                    }
                    self.echo_active.insert(ch);
                    self.add_ref(ch);
                } else if !on && self.echo_active.contains(ch) {
                    self.echo_active.remove(ch);
                    self.del_ref(ch);
                }
            }
            EngineCommand::RecordStart(chan, slot) => {
                let s = usize::from(slot.0);
                if !self.is_audio(chan) || s >= self.rec.len() || !self.rec[s].is_open() {
                    return self.reject(chan);
                }
                let old = self.rec[s].chan;
                if old != NONE {
                    self.del_ref(old as usize);
                }
                self.rec[s].chan = chan.0;
                self.add_ref(chan.index());
                self.rec_active.insert(s);
            }
            EngineCommand::RecordStop(slot) => {
                let s = usize::from(slot.0);
                if s >= self.rec.len() {
                    return self.reject(ChannelId(NONE));
                }
                let old = self.rec[s].chan;
                if old != NONE {
                    self.del_ref(old as usize);
                }
                self.rec_active.remove(s);
                self.rec[s].stop();
            }
            EngineCommand::Hal(hc) => {
                if self.card.command(hc).is_err() {
                    self.stats.card_errors.fetch_add(1, Ordering::Relaxed);
                    let chan = self.hal_command_channel(&hc);
                    emit(&mut self.ev, &self.stats, EngineEvent::CommandFailed(chan, self.now));
                }
            }
        }
    }

    /// Switch a channel's detectors; each one switched on starts afresh.
    fn set_detectors(&mut self, ch: usize, want: Detectors) {
        let old = self.det[ch];
        let now = self.now;
        let dtmf = want.dtmf || want.clamp_dtmf;
        if dtmf && !(old.dtmf || old.clamp_dtmf) {
            self.dtmf[ch].reset();
            self.det_base[ch][0] = now;
        }
        if want.clamp_dtmf && !old.clamp_dtmf {
            let c = &mut self.clamp[ch];
            c.delay = [self.law[ch].silence(); CLAMP_DELAY_SAMPLES];
            c.pos = 0;
            c.from = 0;
            c.to = 0;
            if old.dtmf {
                // The window is counted in the running detector's samples.
                let p = self.dtmf[ch].samples_processed();
                c.from = p;
                c.to = p;
            }
        }
        if want.progress && !old.progress {
            self.progress[ch].reset();
            self.det_base[ch][1] = now;
        }
        if want.fax && !old.fax {
            self.fax[ch].reset();
            self.det_base[ch][2] = now;
        }
        if let Some(dir) = want.mfr2.filter(|_| want.mfr2 != old.mfr2) {
            // Construction is a few table computations, no allocation.
            self.mfr2[ch] = MfDetector::new(dir, MfDetectorConfig::default());
            self.det_base[ch][3] = now;
        }
        if want.callerid != old.callerid {
            if let Some(std) = want.callerid {
                self.cid[ch] = CallerIdReceiver::new(std);
            }
        }
        self.det[ch] = want;
        match (old.any(), want.any()) {
            (false, true) => {
                self.det_active.insert(ch);
                self.add_ref(ch);
            }
            (true, false) => {
                self.det_active.remove(ch);
                self.del_ref(ch);
            }
            _ => {}
        }
    }

    /// The channel a card command concerns; for a span command, the span's first channel
    /// (or `ChannelId(u32::MAX)` when the card lists none).
    fn hal_command_channel(&self, hc: &HalCommand) -> ChannelId {
        match *hc {
            HalCommand::Fxs(c, _)
            | HalCommand::Fxo(c, _)
            | HalCommand::SetCas(c, _)
            | HalCommand::SendHdlc(c, _) => c,
            HalCommand::ConfigureSpan(span, _) => self
                .card
                .info()
                .channels
                .iter()
                .find(|c| c.span == Some(span))
                .map_or(ChannelId(NONE), |c| c.id),
        }
    }
}
