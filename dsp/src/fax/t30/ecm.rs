//! Error correction mode (T.30 Annex A, T.4 Annex A).
//!
//! In ECM the page data goes out on the image modem as HDLC frames instead of a raw T.4 bit
//! stream: FCD frames (`FF 03 06 | frame number | up to 256 octets`) numbered 0 to 255 within
//! a partial page ("block"), then three RCP frames (`FF 13 86`). The image modem carries the
//! bit stream [`block_stream`] builds (flags, zero insertion, FCS), packed into octets first
//! bit in the least significant bit, so the session needs no ECM knowledge: a
//! [`super::T30Tx::Image`] simply holds HDLC bits instead of T.4 bits.
//!
//! After each block the sender sends PPS (post-page message: NULL inside a page, else
//! MPS/EOM/EOP; page counter, block counter, frames - 1). The receiver answers MCF when every
//! frame arrived or PPR with a 256-bit map of the frames to send again (bit `n % 8` of octet
//! `n / 8` for frame `n`). After four PPRs for the same block the sender sends CTC with a
//! (lower) rate in DCS bits 11-14 and, on CTR, goes on at that rate; if no frame got through
//! since the last CTC it gives up with EOR, answered ERR. A receiver that is not ready answers
//! RNR; the sender then polls with RR until it gets MCF/PPR, for at most T5 (60 s).
//!
//! The engine's ECM procedure lives here as a second `impl T30` block.

use std::time::Duration;

use super::super::hdlc::{preamble_flags, HdlcEvent, HdlcRx, HdlcTx};
use super::{
    fcf, frame, get_field, page_is_fine, put_field, rank, t4, BitOrder, Coding, FaxPage, FaxRate,
    FaxStatus, State, T30Event, T30Tx, T4Decoder, Timer, T30,
};

/// Frame size in octets (DCS bit 28 clear).
pub const FRAME_SIZE: usize = 256;
/// Small frame size in octets (DCS bit 28 set).
pub const FRAME_SIZE_SMALL: usize = 64;
/// Frames in a partial page (block).
pub const MAX_FRAMES: usize = 256;
/// PPRs for one block before CTC or EOR.
pub const PPR_LIMIT: u32 = 4;
/// RCP frames closing each block.
pub const RCP_REPEATS: usize = 3;
/// Flags sent after the image modem's training, before the first frame (ms).
pub const PREAMBLE_MS: u32 = 200;
/// Post-page message "NULL" in PPS/EOR: the page goes on in the next block.
pub const NULL: u8 = 0x00;
/// Rows a T.6 page may have (the decoder stops at EOFB).
const MAX_T6_ROWS: usize = 16_384;

/// A 256-bit frame map (PPR): bit set = frame to be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameMap(pub [u8; 32]);

impl FrameMap {
    /// Marks frame `n`.
    pub fn set(&mut self, n: usize) {
        self.0[n / 8] |= 1 << (n % 8);
    }

    /// Whether frame `n` is marked.
    pub fn get(&self, n: usize) -> bool {
        self.0[n / 8] & (1 << (n % 8)) != 0
    }

    /// Marked frames below `limit`.
    pub fn count(&self, limit: usize) -> usize {
        (0..limit.min(MAX_FRAMES)).filter(|&n| self.get(n)).count()
    }

    /// All frames below `n` marked.
    pub fn first(n: usize) -> Self {
        let mut m = FrameMap::default();
        for k in 0..n.min(MAX_FRAMES) {
            m.set(k);
        }
        m
    }

    /// Reads a PPR information field (exactly 32 octets).
    pub fn parse(fif: &[u8]) -> Option<Self> {
        Some(FrameMap(fif.try_into().ok()?))
    }
}

/// A PPS information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pps {
    /// Post-page message with the X bit clear: [`NULL`], MPS, EOM or EOP.
    pub post: u8,
    /// Page counter (mod 256).
    pub page: u8,
    /// Block counter within the page (mod 256).
    pub block: u8,
    /// Frames in the block, 1 to 256.
    pub frames: usize,
}

impl Pps {
    /// The information field; `x` is the sender's X bit (set on a non-NULL post-page FCF).
    pub fn emit(&self, x: u8) -> [u8; 4] {
        let post = if self.post == NULL { NULL } else { self.post | x };
        [post, self.page, self.block, (self.frames.clamp(1, MAX_FRAMES) - 1) as u8]
    }

    /// Parses a PPS information field (at least 4 octets).
    pub fn parse(fif: &[u8]) -> Option<Pps> {
        if fif.len() < 4 {
            return None;
        }
        Some(Pps { post: fif[0] & 0xFE, page: fif[1], block: fif[2], frames: fif[3] as usize + 1 })
    }
}

/// The CTC information field: DCS octets 1 and 2 with the new rate in bits 11-14.
pub fn ctc_fif(rate: FaxRate) -> Vec<u8> {
    let mut f = vec![0u8; 2];
    put_field(&mut f, 11, 4, rate.dcs_bits());
    f
}

/// The rate in a CTC information field, if it names one.
pub fn parse_ctc(fif: &[u8]) -> Option<FaxRate> {
    if fif.len() < 2 {
        return None;
    }
    FaxRate::from_dcs_bits(get_field(fif, 11, 4))
}

/// Packs the bits of an HDLC transmitter into octets, first bit in the LSB.
struct Packer {
    out: Vec<u8>,
    octet: u8,
    n: u8,
}

impl Packer {
    fn drain(&mut self, tx: &mut HdlcTx) {
        while let Some(b) = tx.next_bit() {
            self.octet |= (b & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.octet);
                self.octet = 0;
                self.n = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            // Idle ones after the closing flags complete the octet.
            self.octet |= 0xFF << self.n;
            self.out.push(self.octet);
        }
        self.out
    }
}

/// The image modem bit stream of one block burst: flags for `PREAMBLE_MS` at `bps`, an FCD
/// frame per `(number, data)`, [`RCP_REPEATS`] RCP frames and closing flags, packed into
/// octets first bit in the LSB.
pub fn block_stream<'a>(frames: impl IntoIterator<Item = (u8, &'a [u8])>, bps: u32) -> Vec<u8> {
    let mut tx = HdlcTx::new();
    let mut p = Packer { out: Vec::new(), octet: 0, n: 0 };
    let _ = tx.push_flags(preamble_flags(PREAMBLE_MS, bps).max(1));
    p.drain(&mut tx);
    let mut body = Vec::with_capacity(4 + FRAME_SIZE);
    for (n, data) in frames {
        body.clear();
        body.extend_from_slice(&[super::ADDRESS, super::CONTROL, fcf::FCD, n]);
        body.extend_from_slice(&data[..data.len().min(FRAME_SIZE)]);
        let _ = tx.push_frame(&body);
        p.drain(&mut tx);
    }
    for _ in 0..RCP_REPEATS {
        let _ = tx.push_frame(&frame(fcf::RCP, &[], true));
        p.drain(&mut tx);
    }
    let _ = tx.push_flags(2);
    p.drain(&mut tx);
    p.finish()
}

/// A page cut into ECM frames.
#[derive(Debug, Clone)]
pub(super) struct EcmTxPage {
    frames: Vec<Vec<u8>>,
    /// Current block.
    pub block: usize,
    /// Frames of the current block still to be sent (or sent again).
    pub to_send: FrameMap,
    /// PPRs received for the current block since the last CTC.
    pub pprs: u32,
    /// Whether a PPR since the last CTC showed progress.
    pub progress: bool,
    /// Post-page message of the last PPS sent.
    pub post: u8,
}

impl EcmTxPage {
    /// `data` (LSB first) cut into frames of `size` octets, the last padded with zeros.
    pub fn new(data: &[u8], size: usize) -> Self {
        let mut frames: Vec<Vec<u8>> = data.chunks(size).map(<[u8]>::to_vec).collect();
        if frames.is_empty() {
            frames.push(Vec::new());
        }
        if let Some(last) = frames.last_mut() {
            last.resize(size, 0);
        }
        let mut p = EcmTxPage {
            frames,
            block: 0,
            to_send: FrameMap::default(),
            pprs: 0,
            progress: false,
            post: NULL,
        };
        p.to_send = FrameMap::first(p.block_len());
        p
    }

    /// Blocks in the page.
    pub fn blocks(&self) -> usize {
        self.frames.len().div_ceil(MAX_FRAMES)
    }

    /// Frames in the current block.
    pub fn block_len(&self) -> usize {
        (self.frames.len() - self.block * MAX_FRAMES).min(MAX_FRAMES)
    }

    /// Whether the current block is the page's last.
    pub fn last_block(&self) -> bool {
        self.block + 1 >= self.blocks()
    }

    /// Moves to the next block.
    pub fn next_block(&mut self) {
        self.block += 1;
        self.pprs = 0;
        self.progress = false;
        self.to_send = FrameMap::first(self.block_len());
    }

    /// The burst for the frames still to send.
    pub fn stream(&self, bps: u32) -> Vec<u8> {
        let base = self.block * MAX_FRAMES;
        let frames = (0..self.block_len())
            .filter(|&n| self.to_send.get(n))
            .map(|n| (n as u8, self.frames[base + n].as_slice()));
        block_stream(frames, bps)
    }
}

/// The receiving side of one block: frames gathered over one or more bursts.
#[derive(Debug, Clone)]
pub(super) struct EcmRxBlock {
    hdlc: HdlcRx,
    octet_frames: Vec<Option<Vec<u8>>>,
    /// Frames in the block, from the first PPS.
    pub frames: Option<usize>,
    /// Good FCD frames received (including repeats).
    pub received: usize,
}

impl EcmRxBlock {
    /// An empty block.
    pub fn new() -> Self {
        EcmRxBlock {
            hdlc: HdlcRx::new(),
            octet_frames: vec![None; MAX_FRAMES],
            frames: None,
            received: 0,
        }
    }

    /// A new burst starts (image carrier up).
    pub fn start_burst(&mut self) {
        self.hdlc.reset();
    }

    /// Image modem octets (first bit in the LSB).
    pub fn push(&mut self, data: &[u8]) {
        for &octet in data {
            for i in 0..8 {
                if let Some(HdlcEvent::Frame(f)) = self.hdlc.push_bit((octet >> i) & 1) {
                    if f.len() >= 4 && f[0] == super::ADDRESS && f[2] & 0xFE == fcf::FCD {
                        self.octet_frames[f[3] as usize] = Some(f[4..].to_vec());
                        self.received += 1;
                    }
                }
            }
        }
    }

    /// Whether any frame is stored.
    pub fn is_empty(&self) -> bool {
        self.octet_frames.iter().all(Option::is_none)
    }

    /// Frames below `n` still missing.
    pub fn missing(&self, n: usize) -> FrameMap {
        let mut m = FrameMap::default();
        for (k, f) in self.octet_frames.iter().enumerate().take(n.min(MAX_FRAMES)) {
            if f.is_none() {
                m.set(k);
            }
        }
        m
    }

    /// Appends the data of frames below `n` (missing ones skipped) to `out`.
    pub fn take_into(&mut self, n: usize, out: &mut Vec<u8>) {
        for f in self.octet_frames.iter_mut().take(n.min(MAX_FRAMES)) {
            if let Some(d) = f.take() {
                out.extend_from_slice(&d);
            }
        }
    }
}

/// Receiver ECM state.
#[derive(Debug, Clone)]
pub(super) struct EcmRx {
    pub block: EcmRxBlock,
    /// Data of the blocks of the current page confirmed so far.
    pub page_data: Vec<u8>,
    /// A PPS answered RNR, to be answered when the receiver is ready.
    pub pending: Option<Pps>,
}

impl EcmRx {
    /// Nothing received yet.
    pub fn new() -> Self {
        EcmRx { block: EcmRxBlock::new(), page_data: Vec::new(), pending: None }
    }
}

impl T30 {
    // ---- sender -----------------------------------------------------------------------

    /// Codes the current page for ECM (T.6 if agreed, else MR/MH without fill) and sends
    /// its first block.
    pub(super) fn start_ecm_page(&mut self) {
        let dcs = self.dcs.expect("DCS is set before a page is sent");
        let page = &self.pages[self.page_idx];
        let bitmap = if page_is_fine(page) && !dcs.fine {
            super::drop_alternate_rows(&page.bitmap)
        } else {
            page.bitmap.clone()
        };
        let msb = if dcs.t6 {
            t4::encode_t6(&bitmap)
        } else {
            let opts = t4::EncodeOptions::fax(dcs.coding, if dcs.fine { 4 } else { 2 });
            t4::encode_page_with(&bitmap, &opts)
        };
        let size = if dcs.frame_64 { FRAME_SIZE_SMALL } else { FRAME_SIZE };
        self.ecm_tx = Some(EcmTxPage::new(&t4::reverse_bit_order(&msb), size));
        self.send_ecm_block();
    }

    fn send_ecm_block(&mut self) {
        let Some(p) = self.ecm_tx.as_ref() else { return };
        let data = p.stream(self.rate.bps());
        self.tx.push_back(T30Tx::Image { rate: self.rate, data });
        self.state = State::SendingEcmBlock;
        self.timer = None;
    }

    pub(super) fn send_pps(&mut self) {
        let at_end = self.ecm_tx.as_ref().is_some_and(EcmTxPage::last_block);
        let post = if at_end { self.post_page_command() } else { NULL };
        let Some(p) = self.ecm_tx.as_mut() else { return };
        p.post = post;
        let pps =
            Pps { post, page: self.page_idx as u8, block: p.block as u8, frames: p.block_len() };
        let x = self.x();
        let frames = vec![frame(fcf::PPS | x, &pps.emit(x), true)];
        self.last_cmd = frames.clone();
        self.send_frames(frames);
        self.repeats = 0;
        self.state = State::SendingPps;
    }

    fn send_ecm_command(&mut self, fcf_code: u8, fif: &[u8], state: State) {
        let x = self.x();
        let frames = vec![frame(fcf_code | x, fif, true)];
        self.last_cmd = frames.clone();
        self.send_frames(frames);
        self.repeats = 0;
        self.state = state;
        self.timer = None;
    }

    /// A response to PPS, RR, CTC or EOR.
    pub(super) fn on_ecm_response(&mut self, now: Duration, code: u8, fif: &[u8]) {
        match (self.state, code) {
            (State::WaitPpsResp | State::WaitRrResp, fcf::MCF) => {
                self.t5 = None;
                self.repeats = 0;
                let Some(p) = self.ecm_tx.as_mut() else { return };
                if p.last_block() {
                    self.post_cmd = p.post;
                    self.ecm_tx = None;
                    self.next_after_accepted_page(now, false);
                } else {
                    p.next_block();
                    self.send_ecm_block();
                }
            }
            (State::WaitPpsResp | State::WaitRrResp, fcf::PPR) => {
                self.t5 = None;
                self.repeats = 0;
                let Some(map) = FrameMap::parse(fif) else {
                    return self.disconnect(now, FaxStatus::ProtocolError);
                };
                let lower = self.common_rates().into_iter().find(|r| rank(*r) < rank(self.rate));
                let Some(p) = self.ecm_tx.as_mut() else { return };
                let n = p.block_len();
                let mut again = FrameMap::default();
                for k in (0..n).filter(|&k| map.get(k)) {
                    again.set(k);
                }
                if again.count(n) < p.to_send.count(n) {
                    p.progress = true;
                }
                p.to_send = again;
                p.pprs += 1;
                if again.count(n) == 0 {
                    // A PPR that names no frame of the block makes no sense.
                    return self.disconnect(now, FaxStatus::ProtocolError);
                }
                if p.pprs >= PPR_LIMIT {
                    p.pprs = 0;
                    if p.progress || lower.is_some() {
                        p.progress = false;
                        let rate = lower.unwrap_or(self.rate);
                        self.ctc_rate = Some(rate);
                        return self.send_ecm_command(fcf::CTC, &ctc_fif(rate), State::SendingCtc);
                    }
                    let post = if p.last_block() { p.post } else { NULL };
                    let x = self.x();
                    let fif = [if post == NULL { NULL } else { post | x }];
                    return self.send_ecm_command(fcf::EOR, &fif, State::SendingEor);
                }
                self.send_ecm_block();
            }
            (State::WaitPpsResp | State::WaitRrResp, fcf::RNR) => {
                if self.t5.is_none() {
                    self.t5 = Some(now + self.cfg.timers.t5);
                }
                self.send_ecm_command(fcf::RR, &[], State::SendingRr);
            }
            (State::WaitCtr, fcf::CTR) => {
                if let Some(rate) = self.ctc_rate.take() {
                    self.rate = rate;
                    if let Some(d) = self.dcs.as_mut() {
                        d.rate = rate;
                        let d = *d;
                        self.events.push_back(T30Event::Negotiated(d));
                    }
                }
                self.repeats = 0;
                self.send_ecm_block();
            }
            (State::WaitErr, fcf::ERR) => self.disconnect(now, FaxStatus::PageRejected),
            (_, fcf::PIP | fcf::PIN) => self.disconnect(now, FaxStatus::ProtocolError),
            _ => {}
        }
    }

    // ---- receiver ---------------------------------------------------------------------

    /// PPS, RR, CTC or EOR from the sender.
    pub(super) fn on_ecm_command(&mut self, now: Duration, code: u8, fif: &[u8]) {
        self.rx_mode = super::RxMode::V21;
        self.timer = None;
        let rx = self.ecm_rx.get_or_insert_with(EcmRx::new);
        match code {
            fcf::PPS => {
                let Some(pps) = Pps::parse(fif) else {
                    return self.disconnect(now, FaxStatus::ProtocolError);
                };
                // A repeat of the PPS we last answered (our response was lost).
                if rx.block.is_empty()
                    && self.last_ecm_pps.is_some_and(|l| (l.page, l.block) == (pps.page, pps.block))
                {
                    return self.resend_last_response(now);
                }
                if rx.block.frames.is_none() {
                    rx.block.frames = Some(pps.frames);
                }
                if self.receiver_busy {
                    rx.pending = Some(pps);
                    return self.send_ecm_response(fcf::RNR, &[], State::WaitPostPageCmd);
                }
                self.answer_pps(now, pps);
            }
            fcf::RR => {
                if self.receiver_busy {
                    return self.send_ecm_response(fcf::RNR, &[], State::WaitPostPageCmd);
                }
                match rx.pending.take() {
                    Some(pps) => self.answer_pps(now, pps),
                    None => self.resend_last_response(now),
                }
            }
            fcf::CTC => {
                if let (Some(rate), Some(d)) = (parse_ctc(fif), self.dcs.as_mut()) {
                    if self.cfg.rates.contains(&rate) {
                        d.rate = rate;
                        let d = *d;
                        self.events.push_back(T30Event::Negotiated(d));
                    }
                }
                self.send_ecm_response(fcf::CTR, &[], State::WaitImage);
            }
            fcf::EOR => {
                let post = fif.first().map_or(NULL, |p| p & 0xFE);
                let n = rx.block.frames.unwrap_or(MAX_FRAMES);
                let mut data = std::mem::take(&mut rx.page_data);
                rx.block.take_into(n, &mut data);
                rx.block = EcmRxBlock::new();
                let after = self.after_ecm_page(post, data);
                self.send_ecm_response(fcf::ERR, &[], after);
            }
            _ => {}
        }
    }

    fn answer_pps(&mut self, _now: Duration, pps: Pps) {
        let rx = self.ecm_rx.get_or_insert_with(EcmRx::new);
        let n = rx.block.frames.unwrap_or(pps.frames);
        let missing = rx.block.missing(n);
        if missing.count(n) > 0 {
            return self.send_ecm_response(fcf::PPR, &missing.0, State::WaitImage);
        }
        let mut data = std::mem::take(&mut rx.page_data);
        rx.block.take_into(n, &mut data);
        rx.block = EcmRxBlock::new();
        self.last_ecm_pps = Some(pps);
        let after = self.after_ecm_page(pps.post, data);
        self.send_ecm_response(fcf::MCF, &[], after);
    }

    /// The page is complete: decode it, report it and say where to go after the response.
    fn after_ecm_page(&mut self, post: u8, data: Vec<u8>) -> State {
        if post == NULL {
            if let Some(rx) = self.ecm_rx.as_mut() {
                rx.page_data = data;
            }
            return State::WaitImage;
        }
        if let Some(page) = self.decode_ecm_page(&data) {
            self.events.push_back(T30Event::PageReceived(page));
        }
        match post {
            fcf::MPS => State::WaitImage,
            fcf::EOM => State::SendingDis,
            _ => {
                self.end_of_procedure = true;
                State::WaitDcn
            }
        }
    }

    fn decode_ecm_page(&self, data: &[u8]) -> Option<FaxPage> {
        let dcs = self.dcs?;
        let width = dcs.width.pels();
        let decoded = if dcs.t6 {
            let mut d = t4::decode_t6(&t4::reverse_bit_order(data), width, MAX_T6_ROWS).ok()?;
            if d.bad_rows > 0 {
                // Lines after a T.6 error are copies: keep the good ones only.
                let good = d.bitmap.height - d.bad_rows;
                let mut b = t4::Bitmap::new(width, 0);
                for y in 0..good {
                    b.push_row(d.bitmap.row(y));
                }
                d.bitmap = b;
            }
            d
        } else {
            let mut d = T4Decoder::new(width, dcs.coding, BitOrder::LsbFirst).ok()?;
            d.push(data);
            d.finish().ok()?
        };
        if decoded.bitmap.height == 0 {
            return None;
        }
        let mut page = FaxPage::new(decoded.bitmap, dcs.fine);
        page.bad_rows = decoded.bad_rows;
        page.consecutive_bad_rows = decoded.max_consecutive_bad_rows;
        page.coding = if dcs.t6 { Coding::Mr } else { dcs.coding };
        Some(page)
    }

    fn send_ecm_response(&mut self, code: u8, fif: &[u8], after: State) {
        let x = self.x();
        let f = frame(code | x, fif, true);
        self.last_response = Some(f.clone());
        self.send_frames(vec![f]);
        self.after_response = after;
        self.state = State::SendingResponse;
        self.timer = None;
        self.rx_mode = super::RxMode::V21;
    }

    fn resend_last_response(&mut self, now: Duration) {
        if let Some(r) = self.last_response.clone() {
            self.events.push_back(T30Event::FrameSent(r[2]));
            self.tx.push_back(T30Tx::Frames(vec![r]));
            self.state = State::SendingResponse;
            self.timer = None;
        } else {
            // Nothing to repeat: keep waiting for a command.
            self.state = State::WaitPostPageCmd;
            self.start_timer(Timer::T2, now);
        }
    }

    /// Starts receiving an ECM burst (image carrier up).
    pub(super) fn start_ecm_burst(&mut self) {
        self.ecm_rx.get_or_insert_with(EcmRx::new).block.start_burst();
        self.state = State::ReceivingEcm;
        self.timer = None;
    }

    /// T5 has expired: the receiver stayed busy.
    pub(super) fn t5_expired(&mut self, now: Duration) {
        self.t5 = None;
        self.disconnect(now, FaxStatus::T5Expired);
    }

    /// Timer T4 kinds for ECM waits.
    pub(super) fn ecm_wait_state(&self) -> bool {
        matches!(
            self.state,
            State::WaitPpsResp | State::WaitRrResp | State::WaitCtr | State::WaitErr
        )
    }

    /// The state a repeated ECM command returns to.
    pub(super) fn ecm_resend_state(&self) -> Option<State> {
        Some(match self.state {
            State::WaitPpsResp => State::SendingPps,
            State::WaitRrResp => State::SendingRr,
            State::WaitCtr => State::SendingCtc,
            State::WaitErr => State::SendingEor,
            _ => return None,
        })
    }

    /// The wait after an ECM command has gone out.
    pub(super) fn ecm_after_command(&mut self, now: Duration) -> bool {
        let next = match self.state {
            State::SendingEcmBlock => {
                self.send_pps();
                return true;
            }
            State::SendingPps => State::WaitPpsResp,
            State::SendingRr => State::WaitRrResp,
            State::SendingCtc => State::WaitCtr,
            State::SendingEor => State::WaitErr,
            _ => return false,
        };
        self.state = next;
        self.start_timer(Timer::T4, now);
        true
    }
}
