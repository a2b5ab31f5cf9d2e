//! The Q.921 data link entity for one SAPI/TEI in multiple-frame operation, sans-IO.
//!
//! Time comes in as `now` (card ticks, ms). Every input first runs the timers that are due at
//! `now`, then handles the input, then sends whatever queued I frames the window allows and an
//! RR if an acknowledgement is still pending. Outputs are drained with
//! [`DataLink::poll_action`].
//!
//! Choices where Q.921 leaves room (documented here once):
//! - **I queue across re-establishment.** When the data link layer re-establishes by itself
//!   (N(R) error, FRMR, DM F=0, N200 exhaustion in timer recovery, peer SABME) the unacknowledged
//!   and the still unsent I frames survive and are sent again, renumbered from 0, once the link
//!   is up. Delivery across such a reset is therefore at least once (a frame the peer got but
//!   whose acknowledgement was lost comes again). The queue is discarded when layer 3 asks for
//!   (re-)establishment or release, when the peer sends DISC, and when establishment fails.
//! - **Enquiry** on T200/T203 expiry is an RR command with P = 1 (never a retransmitted I frame).
//! - **Own receiver busy** is not used: layer 3 takes every I frame at once, we never send RNR.
//! - **Invalid frames** (too short, bad EA bits, another SAPI/TEI, wrong C/R for the frame type)
//!   are discarded and counted ([`LinkSnapshot::discarded`]). Frames with an undefined control
//!   field, a forbidden or oversize information field or a wrong length are reported as MDL
//!   errors L, M, N, O and, in states 7 and 8, cause re-establishment (Q.921 §5.8.5).
//! - **XID** frames are ignored; **UI** frames (on our SAPI, our TEI or TEI 127) are delivered
//!   in every state.
//! - **Sending while not established** queues the message; it goes out after the next
//!   establishment (call [`DataLink::establish`]). Nothing is established implicitly.

use std::collections::VecDeque;

use super::frame::{
    CommandResponse, Frame, FrameKind, LapdError, Role, Supervisory, Unnumbered, DEFAULT_N201,
    MODULUS, TEI_BROADCAST,
};

/// Parameters of one data link (Q.921 §5.9). [`Default`] gives the PRI values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkConfig {
    /// SAPI served (0 = call control).
    pub sapi: u8,
    /// TEI served (0 on PRI).
    pub tei: u8,
    /// T200, retransmission timer, ms (1000).
    pub t200_ms: u64,
    /// T203, idle supervision timer, ms (10000).
    pub t203_ms: u64,
    /// N200, maximum number of retransmissions (3).
    pub n200: u8,
    /// k, maximum number of outstanding I frames (7 on PRI; clamped to 1..=127).
    pub k: u8,
    /// N201, maximum information field length in octets (260).
    pub n201: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            sapi: 0,
            tei: 0,
            t200_ms: 1_000,
            t203_ms: 10_000,
            n200: 3,
            k: 7,
            n201: DEFAULT_N201,
        }
    }
}

/// Data link states of Q.921 Annex B that apply to a fixed TEI, with their numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LinkState {
    /// 4: TEI assigned, link released.
    TeiAssigned = 4,
    /// 5: SABME sent, waiting for UA.
    AwaitingEstablishment = 5,
    /// 6: DISC sent, waiting for UA.
    AwaitingRelease = 6,
    /// 7: multiple frame established, I frames flow.
    MultipleFrameEstablished = 7,
    /// 8: timer recovery, polling the peer after T200/T203 expiry.
    TimerRecovery = 8,
}

impl LinkState {
    /// The Q.921 state number (4..=8).
    pub fn number(self) -> u8 {
        self as u8
    }
}

/// The timers of a data link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkTimer {
    /// T200: on expiry SABME/DISC is retransmitted (up to N200 times), or in states 7/8 the
    /// peer is polled with RR P=1 and after N200 polls the link is re-established.
    T200,
    /// T203: on expiry (no frame exchanged for T203 in state 7) the peer is polled with RR P=1.
    T203,
}

/// Management error indications, Q.921 Table II (MDL-ERROR-INDICATION codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MdlError {
    /// A: unsolicited supervisory response with F = 1.
    A,
    /// B: unsolicited DM response with F = 1.
    B,
    /// C: unsolicited UA response with F = 1.
    C,
    /// D: unsolicited UA response with F = 0.
    D,
    /// E: DM response with F = 0 received (peer lost the link): re-establishing.
    E,
    /// F: peer initiated re-establishment (SABME while established).
    F,
    /// G: SABME unanswered after N200 retransmissions.
    G,
    /// H: DISC unanswered after N200 retransmissions.
    H,
    /// I: status enquiry unanswered after N200 polls in timer recovery.
    I,
    /// J: N(R) sequence error.
    J,
    /// K: FRMR response received.
    K,
    /// L: frame with an undefined control field received.
    L,
    /// M: information field on a frame type that must not carry one.
    M,
    /// N: frame of wrong size received.
    N,
    /// O: information field longer than N201.
    O,
}

impl MdlError {
    /// The Q.921 code letter.
    pub fn code(self) -> char {
        match self {
            MdlError::A => 'A',
            MdlError::B => 'B',
            MdlError::C => 'C',
            MdlError::D => 'D',
            MdlError::E => 'E',
            MdlError::F => 'F',
            MdlError::G => 'G',
            MdlError::H => 'H',
            MdlError::I => 'I',
            MdlError::J => 'J',
            MdlError::K => 'K',
            MdlError::L => 'L',
            MdlError::M => 'M',
            MdlError::N => 'N',
            MdlError::O => 'O',
        }
    }

    /// What the error means, in Q.921 Table II words.
    pub fn description(self) -> &'static str {
        match self {
            MdlError::A => "unsolicited supervisory response (F=1)",
            MdlError::B => "unsolicited DM response (F=1)",
            MdlError::C => "unsolicited UA response (F=1)",
            MdlError::D => "unsolicited UA response (F=0)",
            MdlError::E => "receipt of DM response (F=0)",
            MdlError::F => "peer initiated re-establishment (SABME)",
            MdlError::G => "unsuccessful retransmission of SABME (N200)",
            MdlError::H => "unsuccessful retransmission of DISC (N200)",
            MdlError::I => "status enquiry unsuccessful (N200)",
            MdlError::J => "N(R) error",
            MdlError::K => "receipt of FRMR response",
            MdlError::L => "receipt of frame with undefined control field",
            MdlError::M => "receipt of I field not permitted",
            MdlError::N => "receipt of frame with wrong size",
            MdlError::O => "N201 error (I field too long)",
        }
    }

    /// The MDL error a parse failure reports, if any (address-level defects report none).
    pub fn from_parse_error(err: LapdError) -> Option<MdlError> {
        match err {
            LapdError::TooShort { .. } | LapdError::BadAddressExtension(..) => None,
            LapdError::UndefinedControl(_) => Some(MdlError::L),
            LapdError::InfoNotPermitted => Some(MdlError::M),
            LapdError::WrongLength(_) => Some(MdlError::N),
            LapdError::InfoTooLong { .. } => Some(MdlError::O),
        }
    }
}

impl core::fmt::Display for MdlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MDL-ERROR {}: {}", self.code(), self.description())
    }
}

/// Something the data link wants done or reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Send these frame octets (address + control + info; the HDLC layer adds flags and FCS).
    Transmit(Vec<u8>),
    /// The link is in multiple-frame operation (DL-ESTABLISH confirm or indication, also after
    /// a reset by either side; layer 3 may want to check its calls).
    Established,
    /// The link is released (DL-RELEASE confirm or indication); the I queue is discarded.
    Released,
    /// An I frame's information field for layer 3 (DL-DATA-INDICATION), in order.
    Data(Vec<u8>),
    /// A UI frame's information field (DL-UNIT-DATA-INDICATION).
    UiData(Vec<u8>),
    /// A management error indication for the operator / statistics.
    Error(MdlError),
}

/// A plain copy of the data link's state, for `show` commands and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSnapshot {
    /// Current state.
    pub state: LinkState,
    /// V(S), next send sequence number.
    pub vs: u8,
    /// V(A), oldest unacknowledged sequence number.
    pub va: u8,
    /// V(R), next expected receive sequence number.
    pub vr: u8,
    /// Retransmission counter RC.
    pub rc: u8,
    /// The peer sent RNR and has not cleared it.
    pub peer_busy: bool,
    /// A REJ was sent and the expected I frame has not arrived yet.
    pub reject_exception: bool,
    /// I frames sent and not yet acknowledged.
    pub outstanding: usize,
    /// I frames waiting to be sent.
    pub queued: usize,
    /// Frames discarded as invalid or not addressed to us.
    pub discarded: u64,
    /// T200 deadline, if running.
    pub t200: Option<u64>,
    /// T203 deadline, if running.
    pub t203: Option<u64>,
}

/// The Q.921 data link entity for one SAPI/TEI, either side of the interface.
#[derive(Debug, Clone)]
pub struct DataLink {
    role: Role,
    cfg: LinkConfig,
    state: LinkState,
    vs: u8,
    va: u8,
    vr: u8,
    rc: u8,
    peer_busy: bool,
    reject_exception: bool,
    ack_pending: bool,
    t200: Option<u64>,
    t203: Option<u64>,
    now: u64,
    /// Information fields of I frames V(A)..V(S)-1, oldest first.
    unacked: VecDeque<Vec<u8>>,
    /// Information fields not sent yet.
    pending: VecDeque<Vec<u8>>,
    actions: VecDeque<LinkAction>,
    discarded: u64,
}

fn seq_add(a: u8, b: u8) -> u8 {
    (a.wrapping_add(b)) % MODULUS
}

fn seq_sub(a: u8, b: u8) -> u8 {
    (a.wrapping_sub(b)) % MODULUS
}

impl DataLink {
    /// A released data link (state 4) for `role`. `k` is clamped to 1..=127 and the timers to
    /// at least 1 ms.
    pub fn new(role: Role, cfg: LinkConfig) -> DataLink {
        let cfg = LinkConfig {
            k: cfg.k.clamp(1, MODULUS - 1),
            t200_ms: cfg.t200_ms.max(1),
            t203_ms: cfg.t203_ms.max(1),
            ..cfg
        };
        DataLink {
            role,
            cfg,
            state: LinkState::TeiAssigned,
            vs: 0,
            va: 0,
            vr: 0,
            rc: 0,
            peer_busy: false,
            reject_exception: false,
            ack_pending: false,
            t200: None,
            t203: None,
            now: 0,
            unacked: VecDeque::new(),
            pending: VecDeque::new(),
            actions: VecDeque::new(),
            discarded: 0,
        }
    }

    /// Which side this entity is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Current Q.921 state.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// A copy of the sequence variables, flags, queues and timers.
    pub fn snapshot(&self) -> LinkSnapshot {
        LinkSnapshot {
            state: self.state,
            vs: self.vs,
            va: self.va,
            vr: self.vr,
            rc: self.rc,
            peer_busy: self.peer_busy,
            reject_exception: self.reject_exception,
            outstanding: self.unacked.len(),
            queued: self.pending.len(),
            discarded: self.discarded,
            t200: self.t200,
            t203: self.t203,
        }
    }

    /// When [`DataLink::poll`] next needs calling (earliest running timer), if ever.
    pub fn next_timeout(&self) -> Option<u64> {
        match (self.t200, self.t203) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When `timer` expires, if it is running.
    pub fn deadline(&self, timer: LinkTimer) -> Option<u64> {
        match timer {
            LinkTimer::T200 => self.t200,
            LinkTimer::T203 => self.t203,
        }
    }

    /// The next output, oldest first.
    pub fn poll_action(&mut self) -> Option<LinkAction> {
        self.actions.pop_front()
    }

    /// DL-ESTABLISH-REQUEST: bring the link up (or reset it, discarding the I queue, if it is up).
    pub fn establish(&mut self, now: u64) {
        self.advance(now);
        match self.state {
            LinkState::TeiAssigned | LinkState::AwaitingRelease => {
                self.establish_data_link();
                self.state = LinkState::AwaitingEstablishment;
            }
            LinkState::AwaitingEstablishment => {}
            LinkState::MultipleFrameEstablished | LinkState::TimerRecovery => {
                self.discard_queue();
                self.establish_data_link();
                self.state = LinkState::AwaitingEstablishment;
            }
        }
        self.flush();
    }

    /// DL-RELEASE-REQUEST: take the link down with DISC (the I queue is discarded).
    pub fn release(&mut self, now: u64) {
        self.advance(now);
        match self.state {
            LinkState::TeiAssigned => {
                self.discard_queue();
                self.actions.push_back(LinkAction::Released);
            }
            LinkState::AwaitingRelease => {}
            LinkState::AwaitingEstablishment
            | LinkState::MultipleFrameEstablished
            | LinkState::TimerRecovery => {
                self.discard_queue();
                self.rc = 0;
                self.send_u(Unnumbered::Disc, true);
                self.t203 = None;
                self.start_t200();
                self.state = LinkState::AwaitingRelease;
            }
        }
        self.flush();
    }

    /// DL-DATA-REQUEST: queue `info` for acknowledged transfer. It is sent as soon as the link
    /// is established and the window (k) and the peer (RNR) allow.
    ///
    /// # Errors
    /// [`LapdError::InfoTooLong`] when `info` is longer than N201; nothing is queued.
    pub fn send(&mut self, now: u64, info: Vec<u8>) -> Result<(), LapdError> {
        if info.len() > self.cfg.n201 {
            return Err(LapdError::InfoTooLong { len: info.len(), max: self.cfg.n201 });
        }
        self.advance(now);
        self.pending.push_back(info);
        self.flush();
        Ok(())
    }

    /// DL-UNIT-DATA-REQUEST: send `info` at once in a UI command frame, in any state.
    ///
    /// # Errors
    /// [`LapdError::InfoTooLong`] when `info` is longer than N201; nothing is sent.
    pub fn send_unit_data(&mut self, now: u64, info: &[u8]) -> Result<(), LapdError> {
        if info.len() > self.cfg.n201 {
            return Err(LapdError::InfoTooLong { len: info.len(), max: self.cfg.n201 });
        }
        self.advance(now);
        self.transmit(
            CommandResponse::Command,
            FrameKind::U { kind: Unnumbered::Ui, pf: false },
            info,
        );
        self.flush();
        Ok(())
    }

    /// Run the timers due at `now` (call at [`DataLink::next_timeout`]).
    pub fn poll(&mut self, now: u64) {
        self.advance(now);
        self.flush();
    }

    /// Handle one received frame (address + control + info, no flags/FCS).
    pub fn receive(&mut self, now: u64, bytes: &[u8]) {
        self.advance(now);
        self.receive_frame(bytes);
        self.flush();
    }

    // ---- internals -------------------------------------------------------------------------

    fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
        // Each expiry restarts timers relative to `self.now` (> deadline) or stops them, so
        // this loop ends; the bound is a belt for the braces.
        for _ in 0..8 {
            let due_t200 = self.t200.filter(|&t| t <= self.now);
            let due_t203 = self.t203.filter(|&t| t <= self.now);
            match (due_t200, due_t203) {
                (Some(a), Some(b)) if b < a => self.t203_expiry(),
                (Some(_), _) => self.t200_expiry(),
                (None, Some(_)) => self.t203_expiry(),
                (None, None) => break,
            }
        }
    }

    fn start_t200(&mut self) {
        self.t200 = Some(self.now + self.cfg.t200_ms);
    }

    fn start_t203(&mut self) {
        self.t203 = Some(self.now + self.cfg.t203_ms);
    }

    fn t200_expiry(&mut self) {
        self.t200 = None;
        match self.state {
            LinkState::TeiAssigned => {}
            LinkState::AwaitingEstablishment => {
                if self.rc >= self.cfg.n200 {
                    self.discard_queue();
                    self.actions.push_back(LinkAction::Error(MdlError::G));
                    self.actions.push_back(LinkAction::Released);
                    self.state = LinkState::TeiAssigned;
                } else {
                    self.rc += 1;
                    self.send_u(Unnumbered::Sabme, true);
                    self.start_t200();
                }
            }
            LinkState::AwaitingRelease => {
                if self.rc >= self.cfg.n200 {
                    self.actions.push_back(LinkAction::Error(MdlError::H));
                    self.actions.push_back(LinkAction::Released);
                    self.state = LinkState::TeiAssigned;
                } else {
                    self.rc += 1;
                    self.send_u(Unnumbered::Disc, true);
                    self.start_t200();
                }
            }
            LinkState::MultipleFrameEstablished => {
                self.rc = 0;
                self.transmit_enquiry();
                self.rc += 1;
                self.state = LinkState::TimerRecovery;
            }
            LinkState::TimerRecovery => {
                if self.rc >= self.cfg.n200 {
                    self.actions.push_back(LinkAction::Error(MdlError::I));
                    self.reestablish();
                } else {
                    self.transmit_enquiry();
                    self.rc += 1;
                }
            }
        }
    }

    fn t203_expiry(&mut self) {
        self.t203 = None;
        if self.state == LinkState::MultipleFrameEstablished {
            self.transmit_enquiry();
            self.rc = 0;
            self.state = LinkState::TimerRecovery;
        }
    }

    fn transmit(&mut self, cr: CommandResponse, kind: FrameKind, info: &[u8]) {
        let frame =
            Frame { sapi: self.cfg.sapi, tei: self.cfg.tei, cr: self.role.cr_for(cr), kind, info };
        self.actions.push_back(LinkAction::Transmit(frame.to_vec()));
    }

    fn send_u(&mut self, kind: Unnumbered, pf: bool) {
        let cr = kind.direction().unwrap_or(CommandResponse::Command);
        self.transmit(cr, FrameKind::U { kind, pf }, &[]);
    }

    fn send_s(&mut self, cr: CommandResponse, kind: Supervisory, pf: bool) {
        let nr = self.vr;
        self.transmit(cr, FrameKind::S { kind, nr, pf }, &[]);
        self.ack_pending = false;
    }

    /// RR command P=1 and T200 (re)started.
    fn transmit_enquiry(&mut self) {
        self.send_s(CommandResponse::Command, Supervisory::Rr, true);
        self.start_t200();
    }

    /// RR response F=1 (answer to a poll).
    fn enquiry_response(&mut self) {
        self.send_s(CommandResponse::Response, Supervisory::Rr, true);
    }

    fn clear_exceptions(&mut self) {
        self.peer_busy = false;
        self.reject_exception = false;
        self.ack_pending = false;
    }

    /// Q.921 "establish data link": SABME P=1, T200 running, T203 stopped.
    fn establish_data_link(&mut self) {
        self.clear_exceptions();
        self.rc = 0;
        self.send_u(Unnumbered::Sabme, true);
        self.start_t200();
        self.t203 = None;
    }

    /// Data-link initiated re-establishment (keeps the I queue, see the module doc).
    fn reestablish(&mut self) {
        self.requeue_unacked();
        self.establish_data_link();
        self.state = LinkState::AwaitingEstablishment;
    }

    fn nr_error_recovery(&mut self) {
        self.actions.push_back(LinkAction::Error(MdlError::J));
        self.reestablish();
    }

    /// Move the unacknowledged frames back in front of the unsent ones; V(S) = V(A).
    fn requeue_unacked(&mut self) {
        while let Some(info) = self.unacked.pop_back() {
            self.pending.push_front(info);
        }
        self.vs = self.va;
    }

    fn discard_queue(&mut self) {
        self.unacked.clear();
        self.pending.clear();
        self.vs = self.va;
    }

    /// Enter state 7 with all sequence variables zero and T203 running.
    fn enter_established(&mut self) {
        self.requeue_unacked();
        self.clear_exceptions();
        self.vs = 0;
        self.va = 0;
        self.vr = 0;
        self.rc = 0;
        self.t200 = None;
        self.start_t203();
        self.state = LinkState::MultipleFrameEstablished;
        self.actions.push_back(LinkAction::Established);
    }

    fn nr_valid(&self, nr: u8) -> bool {
        nr < MODULUS && seq_sub(nr, self.va) <= seq_sub(self.vs, self.va)
    }

    /// Acknowledge I frames up to `nr` (already validated).
    fn set_va(&mut self, nr: u8) {
        let acked = seq_sub(nr, self.va) as usize;
        for _ in 0..acked.min(self.unacked.len()) {
            self.unacked.pop_front();
        }
        self.va = nr;
    }

    /// N(R) handling of state 7 for I, RR and (implicitly) RNR frames.
    fn ack_in_established(&mut self, nr: u8) {
        if self.peer_busy {
            self.set_va(nr);
        } else if nr == self.vs {
            self.set_va(nr);
            self.t200 = None;
            self.start_t203();
        } else if nr != self.va {
            self.set_va(nr);
            self.start_t200();
        }
    }

    fn receive_frame(&mut self, bytes: &[u8]) {
        let addr = match super::frame::Address::parse(bytes) {
            Ok(a) => a,
            Err(_) => {
                self.discarded += 1;
                return;
            }
        };
        let ours =
            addr.sapi == self.cfg.sapi && (addr.tei == self.cfg.tei || addr.tei == TEI_BROADCAST);
        if !ours {
            self.discarded += 1;
            return;
        }
        let frame = match Frame::parse_with_n201(bytes, self.cfg.n201) {
            Ok(f) => f,
            Err(e) => {
                match MdlError::from_parse_error(e) {
                    Some(err) if addr.tei == self.cfg.tei => self.frame_rejection(err),
                    _ => self.discarded += 1,
                }
                return;
            }
        };
        let cr = self.role.classify(frame.cr);
        if frame.kind.direction().is_some_and(|d| d != cr) {
            self.discarded += 1;
            return;
        }
        if addr.tei == TEI_BROADCAST && addr.tei != self.cfg.tei {
            // Only unit data is meaningful on the broadcast TEI for this entity.
            if let FrameKind::U { kind: Unnumbered::Ui, .. } = frame.kind {
                self.actions.push_back(LinkAction::UiData(frame.info.to_vec()));
            } else {
                self.discarded += 1;
            }
            return;
        }
        match frame.kind {
            FrameKind::U { kind, pf } => self.receive_u(kind, pf, frame.info),
            FrameKind::S { kind, nr, pf } => self.receive_s(cr, kind, nr, pf),
            FrameKind::I { ns, nr, p } => self.receive_i(ns, nr, p, frame.info),
        }
    }

    /// Q.921 §5.8.5 frame rejection condition.
    fn frame_rejection(&mut self, err: MdlError) {
        match self.state {
            LinkState::MultipleFrameEstablished | LinkState::TimerRecovery => {
                self.actions.push_back(LinkAction::Error(err));
                self.reestablish();
            }
            _ => self.discarded += 1,
        }
    }

    fn receive_u(&mut self, kind: Unnumbered, pf: bool, info: &[u8]) {
        use LinkState::*;
        match (kind, self.state) {
            (Unnumbered::Ui, _) => self.actions.push_back(LinkAction::UiData(info.to_vec())),
            (Unnumbered::Xid, _) => {}
            (Unnumbered::Sabme, TeiAssigned) => {
                self.send_u(Unnumbered::Ua, pf);
                self.enter_established();
            }
            (Unnumbered::Sabme, AwaitingEstablishment) => self.send_u(Unnumbered::Ua, pf),
            (Unnumbered::Sabme, AwaitingRelease) => self.send_u(Unnumbered::Dm, pf),
            (Unnumbered::Sabme, MultipleFrameEstablished | TimerRecovery) => {
                self.send_u(Unnumbered::Ua, pf);
                self.actions.push_back(LinkAction::Error(MdlError::F));
                self.enter_established();
            }
            (Unnumbered::Disc, TeiAssigned | AwaitingEstablishment) => {
                self.send_u(Unnumbered::Dm, pf)
            }
            (Unnumbered::Disc, AwaitingRelease) => self.send_u(Unnumbered::Ua, pf),
            (Unnumbered::Disc, MultipleFrameEstablished | TimerRecovery) => {
                self.discard_queue();
                self.send_u(Unnumbered::Ua, pf);
                self.enter_released();
            }
            (Unnumbered::Ua, AwaitingEstablishment) if pf => self.enter_established(),
            (Unnumbered::Ua, AwaitingRelease) if pf => self.enter_released(),
            (Unnumbered::Ua, _) => {
                let err = if pf { MdlError::C } else { MdlError::D };
                self.actions.push_back(LinkAction::Error(err));
            }
            (Unnumbered::Dm, AwaitingEstablishment) if pf => {
                self.discard_queue();
                self.enter_released();
            }
            (Unnumbered::Dm, AwaitingRelease) if pf => self.enter_released(),
            (Unnumbered::Dm, MultipleFrameEstablished) if pf => {
                self.actions.push_back(LinkAction::Error(MdlError::B));
            }
            (Unnumbered::Dm, MultipleFrameEstablished | TimerRecovery) => {
                let err = if pf { MdlError::B } else { MdlError::E };
                self.actions.push_back(LinkAction::Error(err));
                self.reestablish();
            }
            (Unnumbered::Frmr, MultipleFrameEstablished | TimerRecovery) => {
                self.actions.push_back(LinkAction::Error(MdlError::K));
                self.reestablish();
            }
            (Unnumbered::Dm | Unnumbered::Frmr, _) => {}
        }
    }

    fn enter_released(&mut self) {
        self.t200 = None;
        self.t203 = None;
        self.clear_exceptions();
        self.state = LinkState::TeiAssigned;
        self.actions.push_back(LinkAction::Released);
    }

    fn receive_s(&mut self, cr: CommandResponse, kind: Supervisory, nr: u8, pf: bool) {
        match self.state {
            LinkState::TeiAssigned => {
                if cr == CommandResponse::Command && pf {
                    self.send_u(Unnumbered::Dm, true);
                }
                return;
            }
            LinkState::AwaitingEstablishment | LinkState::AwaitingRelease => return,
            LinkState::MultipleFrameEstablished | LinkState::TimerRecovery => {}
        }
        match kind {
            Supervisory::Rr | Supervisory::Rej => self.peer_busy = false,
            Supervisory::Rnr => self.peer_busy = true,
        }
        let poll = cr == CommandResponse::Command && pf;
        let final_bit = cr == CommandResponse::Response && pf;
        if !self.nr_valid(nr) {
            self.nr_error_recovery();
            return;
        }
        if poll {
            self.enquiry_response();
        }
        if self.state == LinkState::TimerRecovery {
            self.set_va(nr);
            if final_bit {
                // The answer to our poll: leave timer recovery, go back to N(R).
                self.t200 = None;
                self.requeue_unacked();
                if self.peer_busy {
                    self.start_t200();
                } else {
                    self.start_t203();
                }
                self.state = LinkState::MultipleFrameEstablished;
            } else if kind == Supervisory::Rej {
                self.requeue_unacked();
            }
            return;
        }
        if final_bit {
            self.actions.push_back(LinkAction::Error(MdlError::A));
        }
        match kind {
            Supervisory::Rr => self.ack_in_established(nr),
            Supervisory::Rnr => {
                self.set_va(nr);
                self.t203 = None;
                self.start_t200();
            }
            Supervisory::Rej => {
                self.set_va(nr);
                self.t200 = None;
                self.start_t203();
                self.requeue_unacked();
            }
        }
    }

    fn receive_i(&mut self, ns: u8, nr: u8, p: bool, info: &[u8]) {
        match self.state {
            LinkState::TeiAssigned => {
                if p {
                    self.send_u(Unnumbered::Dm, true);
                }
                return;
            }
            LinkState::AwaitingEstablishment | LinkState::AwaitingRelease => return,
            LinkState::MultipleFrameEstablished | LinkState::TimerRecovery => {}
        }
        // N(R) is checked first: a frame with an impossible N(R) has no other effect.
        if !self.nr_valid(nr) {
            self.nr_error_recovery();
            return;
        }
        if ns == self.vr {
            self.vr = seq_add(self.vr, 1);
            self.reject_exception = false;
            self.actions.push_back(LinkAction::Data(info.to_vec()));
            if p {
                self.enquiry_response();
            } else {
                self.ack_pending = true;
            }
        } else if self.reject_exception {
            if p {
                self.enquiry_response();
            }
        } else {
            self.reject_exception = true;
            self.send_s(CommandResponse::Response, Supervisory::Rej, p);
        }
        if self.state == LinkState::TimerRecovery {
            self.set_va(nr);
        } else {
            self.ack_in_established(nr);
        }
    }

    /// Send queued I frames the window allows, then a pending acknowledgement.
    fn flush(&mut self) {
        if self.state == LinkState::MultipleFrameEstablished && !self.peer_busy {
            while self.unacked.len() < usize::from(self.cfg.k) {
                let Some(info) = self.pending.pop_front() else {
                    break;
                };
                let kind = FrameKind::I { ns: self.vs, nr: self.vr, p: false };
                self.transmit(CommandResponse::Command, kind, &info);
                self.unacked.push_back(info);
                self.vs = seq_add(self.vs, 1);
                self.ack_pending = false;
                if self.t200.is_none() {
                    self.t203 = None;
                    self.start_t200();
                }
            }
        }
        if self.ack_pending
            && matches!(self.state, LinkState::MultipleFrameEstablished | LinkState::TimerRecovery)
        {
            self.send_s(CommandResponse::Response, Supervisory::Rr, false);
        }
        self.ack_pending = false;
    }
}
