//! A fax call on 8 kHz audio: the [`T30`] engine joined to the V.21 control channel
//! ([`V21Tx`]/[`V21Rx`] with [`HdlcTx`]/[`HdlcRx`]), CNG/CED tones ([`crate::tone`]) and an
//! image modem supplied through the [`ImageModem`] trait (V.27 ter / V.29 / V.17 live
//! elsewhere; tests plug in a perfect bit pipe).
//!
//! [`FaxSession::process`] takes a block of received samples and fills a block of samples to
//! send; time is the count of samples processed, so the session runs on a virtual clock.
//! Every transmission starts after 75 ms of silence (T.30 §5.3.2.4 asks for 75 ± 20 ms
//! between signals). Received image bits are packed into bytes LSB first.
//!
//! The session allocates when a page is coded or decoded and when a modem is created (at
//! phase changes, not per sample); see [`super::t30`].

use std::collections::VecDeque;
use std::time::Duration;

use super::hdlc::{preamble_flags, HdlcEvent, HdlcRx, HdlcTx};
use super::t30::{FaxRate, FaxStatus, RxMode, T30Event, T30Tx, T30};
use super::v21::{V21Rx, V21Tx, BIT_RATE};
use crate::tone::{Segment, ToneGen, ToneSpec};

/// Samples per second.
pub const SAMPLE_RATE: u32 = 8000;
/// Silence before each transmission (ms).
pub const TURNAROUND_MS: u32 = 75;
/// Flags sent after the last frame of a burst.
pub const CLOSING_FLAGS: usize = 2;

/// An image modem transmitter (the same shape as the fax-modem crate's `ModemTx`).
pub trait ImageTx {
    /// Queues data bytes, sent LSB first after the modem's training sequence.
    fn push_bytes(&mut self, data: &[u8]);
    /// No more data: send what is queued, then stop the carrier.
    fn finish(&mut self);
    /// Fills `out` with samples; returns how many were written, fewer than `out.len()` only
    /// once the transmission has ended.
    fn fill(&mut self, out: &mut [i16]) -> usize;
}

/// An image modem receiver (the same shape as the fax-modem crate's `ModemRx`).
pub trait ImageRx {
    /// Demodulates samples, calling `on_bit` for each data bit after training.
    fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8));
    /// Whether a trained carrier is present.
    fn carrier(&self) -> bool;
}

/// A factory of image modem transmitters and receivers.
pub trait ImageModem {
    /// Transmitter type.
    type Tx: ImageTx;
    /// Receiver type.
    type Rx: ImageRx;
    /// Rates this modem implements.
    fn rates(&self) -> Vec<FaxRate>;
    /// A transmitter at `rate`.
    fn make_tx(&mut self, rate: FaxRate) -> Self::Tx;
    /// A receiver at `rate`.
    fn make_rx(&mut self, rate: FaxRate) -> Self::Rx;
}

enum Source<T> {
    Idle,
    /// Silence, then the request.
    Gap {
        left: usize,
        then: T30Tx,
    },
    /// A tone: `left` samples, or until the next request when `None` (CNG).
    Tone {
        gen: Box<ToneGen>,
        left: Option<usize>,
    },
    V21,
    Image(T),
}

/// A fax call on audio.
pub struct FaxSession<M: ImageModem> {
    t30: T30,
    modem: M,
    level_dbm0: f32,
    v21_tx: V21Tx,
    hdlc_tx: HdlcTx,
    pending_frames: VecDeque<Vec<u8>>,
    v21_rx: V21Rx,
    hdlc_rx: HdlcRx,
    v21_carrier: bool,
    img_rx: Option<(FaxRate, M::Rx)>,
    img_carrier: bool,
    rx_octet: u8,
    rx_bits: u8,
    rx_bytes: Vec<u8>,
    source: Source<M::Tx>,
    requests: VecDeque<T30Tx>,
    samples: u64,
    started: bool,
}

impl<M: ImageModem> FaxSession<M> {
    /// A session around `t30` (its configured rates should match `modem.rates()`), sending
    /// V.21 and tones at `level_dbm0`.
    pub fn new(t30: T30, modem: M, level_dbm0: f32) -> Self {
        FaxSession {
            t30,
            modem,
            level_dbm0,
            v21_tx: V21Tx::new(level_dbm0),
            hdlc_tx: HdlcTx::new(),
            pending_frames: VecDeque::new(),
            v21_rx: V21Rx::new(),
            hdlc_rx: HdlcRx::new(),
            v21_carrier: false,
            img_rx: None,
            img_carrier: false,
            rx_octet: 0,
            rx_bits: 0,
            rx_bytes: Vec::with_capacity(64),
            source: Source::Idle,
            requests: VecDeque::new(),
            samples: 0,
            started: false,
        }
    }

    /// The T.30 engine (for status and the DCS in force).
    pub fn t30(&self) -> &T30 {
        &self.t30
    }

    /// The next T.30 event.
    pub fn poll_event(&mut self) -> Option<T30Event> {
        self.t30.poll_event()
    }

    /// The final status, once the call is over.
    pub fn status(&self) -> Option<FaxStatus> {
        self.t30.status()
    }

    /// Whether the call is over (DCN sent or received) and nothing is left to send.
    pub fn is_finished(&self) -> bool {
        self.t30.is_finished() && matches!(self.source, Source::Idle) && self.requests.is_empty()
    }

    /// Time since the session started (samples processed / 8 kHz).
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.samples * 125_000)
    }

    /// Stops the call: DCN, then [`FaxStatus::LocalAbort`].
    pub fn abort(&mut self) {
        let now = self.now();
        self.t30.abort(now);
    }

    /// Processes one block: `rx` is the audio received, `tx` is filled with audio to send.
    /// Time advances by `max(rx.len(), tx.len())` samples.
    pub fn process(&mut self, rx: &[i16], tx: &mut [i16]) {
        let now = self.now();
        if !self.started {
            self.started = true;
            self.t30.start(now);
        }
        self.receive_v21(rx, now);
        self.sync_rx_mode();
        self.receive_image(rx, now);
        if self.t30.poll_timeout().is_some_and(|t| t <= now) {
            self.t30.handle_timeout(now);
        }
        self.sync_rx_mode();
        self.transmit(tx, now);
        self.samples += rx.len().max(tx.len()) as u64;
    }

    fn receive_v21(&mut self, rx: &[i16], now: Duration) {
        let t30 = &mut self.t30;
        let hdlc = &mut self.hdlc_rx;
        self.v21_rx.process(rx, &mut |b| match hdlc.push_bit(b) {
            Some(HdlcEvent::Frame(f)) => t30.handle_frame(now, f),
            Some(HdlcEvent::BadFrame { .. }) => t30.handle_bad_frame(now),
            _ => {}
        });
        let c = self.v21_rx.carrier();
        if c != self.v21_carrier {
            self.v21_carrier = c;
            if !c {
                self.hdlc_rx.reset();
            }
            self.t30.handle_v21_carrier(now, c);
        }
    }

    fn sync_rx_mode(&mut self) {
        match self.t30.rx_mode() {
            RxMode::Image(rate) => {
                if self.img_rx.as_ref().is_none_or(|(r, _)| *r != rate) {
                    self.img_rx = Some((rate, self.modem.make_rx(rate)));
                    self.img_carrier = false;
                }
            }
            RxMode::V21 => {
                self.img_rx = None;
                self.img_carrier = false;
            }
        }
    }

    fn receive_image(&mut self, rx: &[i16], now: Duration) {
        let Some((_, modem)) = self.img_rx.as_mut() else { return };
        self.rx_bytes.clear();
        let (octet, nbits, bytes) = (&mut self.rx_octet, &mut self.rx_bits, &mut self.rx_bytes);
        modem.process(rx, &mut |b| {
            *octet |= (b & 1) << *nbits;
            *nbits += 1;
            if *nbits == 8 {
                bytes.push(*octet);
                *octet = 0;
                *nbits = 0;
            }
        });
        let c = modem.carrier();
        if c && !self.img_carrier {
            self.img_carrier = true;
            self.t30.handle_image_carrier(now, true);
        }
        if !self.rx_bytes.is_empty() {
            self.t30.handle_image_data(now, &self.rx_bytes);
        }
        if !c && self.img_carrier {
            self.img_carrier = false;
            self.rx_octet = 0;
            self.rx_bits = 0;
            self.t30.handle_image_carrier(now, false);
        }
    }

    fn transmit(&mut self, tx: &mut [i16], start: Duration) {
        let mut pos = 0;
        while pos < tx.len() {
            while let Some(r) = self.t30.poll_transmit() {
                self.requests.push_back(r);
            }
            let out = &mut tx[pos..];
            match &mut self.source {
                Source::Idle => match self.requests.pop_front() {
                    Some(r) => {
                        let left = (TURNAROUND_MS * SAMPLE_RATE / 1000) as usize;
                        self.source = Source::Gap { left, then: r };
                    }
                    None => {
                        out.fill(0);
                        pos = tx.len();
                    }
                },
                Source::Gap { left, .. } => {
                    let n = (*left).min(out.len());
                    out[..n].fill(0);
                    *left -= n;
                    pos += n;
                    if *left == 0 {
                        let Source::Gap { then, .. } =
                            std::mem::replace(&mut self.source, Source::Idle)
                        else {
                            unreachable!()
                        };
                        self.begin(then);
                    }
                }
                Source::Tone { gen, left } => {
                    if left.is_none() && !self.requests.is_empty() {
                        // CNG gives way to the next request.
                        self.source = Source::Idle;
                        continue;
                    }
                    let n = left.map_or(out.len(), |l| l.min(out.len()));
                    gen.fill(&mut out[..n]);
                    pos += n;
                    if let Some(l) = left {
                        *l -= n;
                        if *l == 0 {
                            self.source = Source::Idle;
                            self.tx_done(start, pos);
                        }
                    }
                }
                Source::V21 => {
                    let hdlc = &mut self.hdlc_tx;
                    let pending = &mut self.pending_frames;
                    let n = self.v21_tx.fill(out, &mut || {
                        hdlc.next_bit().or_else(|| {
                            let f = pending.pop_front()?;
                            hdlc.push_frame(&f).ok()?;
                            hdlc.push_flags(CLOSING_FLAGS).ok()?;
                            hdlc.next_bit()
                        })
                    });
                    pos += n;
                    if n < out.len() {
                        self.source = Source::Idle;
                        self.tx_done(start, pos);
                    }
                }
                Source::Image(m) => {
                    let n = m.fill(out);
                    pos += n;
                    if n < out.len() {
                        self.source = Source::Idle;
                        self.tx_done(start, pos);
                    }
                }
            }
        }
    }

    fn tx_done(&mut self, start: Duration, pos: usize) {
        let at = start + Duration::from_nanos(pos as u64 * 125_000);
        self.t30.handle_tx_done(at);
        self.sync_rx_mode();
    }

    fn begin(&mut self, req: T30Tx) {
        self.source = match req {
            T30Tx::Cng => {
                let spec = ToneSpec::cadenced([1100.0, 0.0], self.level_dbm0, &[500, 3000])
                    .expect("CNG is a valid tone");
                Source::Tone { gen: Box::new(ToneGen::new(spec)), left: None }
            }
            T30Tx::Ced { ms } => {
                let seg = Segment { ms, freqs: [2100.0, 0.0], level_dbm0: self.level_dbm0 };
                let spec = ToneSpec::new(&[seg], false).expect("CED is a valid tone");
                let left = (ms * SAMPLE_RATE / 1000) as usize;
                Source::Tone { gen: Box::new(ToneGen::new(spec)), left: Some(left) }
            }
            T30Tx::Frames(frames) => {
                self.hdlc_tx.clear();
                self.pending_frames.clear();
                let _ = self.hdlc_tx.push_flags(preamble_flags(1000, BIT_RATE));
                for f in frames {
                    if self.hdlc_tx.push_frame(&f).is_err() {
                        self.pending_frames.push_back(f);
                    }
                }
                let _ = self.hdlc_tx.push_flags(CLOSING_FLAGS);
                Source::V21
            }
            T30Tx::Tcf { rate, ms } => {
                let mut m = self.modem.make_tx(rate);
                let bytes = (u64::from(rate.bps()) * u64::from(ms) / 8000) as usize;
                m.push_bytes(&vec![0u8; bytes]);
                m.finish();
                Source::Image(m)
            }
            T30Tx::Image { rate, data } => {
                let mut m = self.modem.make_tx(rate);
                m.push_bytes(&data);
                m.finish();
                Source::Image(m)
            }
        };
    }
}
