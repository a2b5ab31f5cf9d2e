//! Data link tests on a virtual clock: single entities fed crafted frames, and a user and a
//! network entity wired back to back through a channel with deterministic faults.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

const T200: u64 = 1_000;
const T203: u64 = 10_000;

/// Everything a link produced, split into transmitted frames and the other actions.
#[derive(Debug, Default)]
struct Out {
    tx: Vec<Vec<u8>>,
    ev: Vec<LinkAction>,
}

fn drain(link: &mut DataLink) -> Out {
    let mut out = Out::default();
    while let Some(a) = link.poll_action() {
        match a {
            LinkAction::Transmit(b) => out.tx.push(b),
            other => out.ev.push(other),
        }
    }
    out
}

fn frame_bytes(from: Role, dir: CommandResponse, kind: FrameKind, info: &[u8]) -> Vec<u8> {
    Frame { sapi: 0, tei: 0, cr: from.cr_for(dir), kind, info }.to_vec()
}

fn s_frame(from: Role, dir: CommandResponse, kind: Supervisory, nr: u8, pf: bool) -> Vec<u8> {
    frame_bytes(from, dir, FrameKind::S { kind, nr, pf }, &[])
}

fn i_frame(from: Role, ns: u8, nr: u8, p: bool, info: &[u8]) -> Vec<u8> {
    frame_bytes(from, CommandResponse::Command, FrameKind::I { ns, nr, p }, info)
}

fn kind_of(bytes: &[u8]) -> FrameKind {
    Frame::parse(bytes).expect("valid frame").kind
}

/// A user entity established with a (simulated) network at time 0; outputs drained.
fn established_user() -> DataLink {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.establish(0);
    assert_eq!(drain(&mut user).tx, vec![vec![0x00, 0x01, 0x7F]]);
    user.receive(0, &[0x00, 0x01, 0x73]);
    assert_eq!(drain(&mut user).ev, vec![LinkAction::Established]);
    assert_eq!(user.state(), LinkState::MultipleFrameEstablished);
    user
}

// ---- establishment and release ---------------------------------------------------------------

#[test]
fn cpe_sabme_and_network_ua_bytes() {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    let mut net = DataLink::new(Role::Network, LinkConfig::default());
    assert_eq!(user.state().number(), 4);
    user.establish(0);
    assert_eq!(user.state().number(), 5);
    let sabme = drain(&mut user).tx;
    assert_eq!(sabme, vec![vec![0x00, 0x01, 0x7F]]);
    net.receive(0, &sabme[0]);
    let out = drain(&mut net);
    assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x73]]);
    assert_eq!(out.ev, vec![LinkAction::Established]);
    user.receive(0, &out.tx[0]);
    assert_eq!(drain(&mut user).ev, vec![LinkAction::Established]);
    assert_eq!(user.state().number(), 7);
    assert_eq!(net.state().number(), 7);
    assert_eq!(user.next_timeout(), Some(T203));
}

#[test]
fn network_sabme_and_user_ua_bytes() {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.receive(5, &[0x02, 0x01, 0x7F]);
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x02, 0x01, 0x73]]);
    assert_eq!(out.ev, vec![LinkAction::Established]);
}

#[test]
fn t200_retransmits_sabme_then_gives_up_after_n200() {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.send(0, b"queued".to_vec()).unwrap();
    user.establish(0);
    assert_eq!(drain(&mut user).tx.len(), 1);
    for n in 1..=3u64 {
        assert_eq!(user.next_timeout(), Some(n * T200));
        user.poll(n * T200 - 1);
        assert!(drain(&mut user).tx.is_empty(), "not before T200");
        user.poll(n * T200);
        let out = drain(&mut user);
        assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x7F]], "retransmission {n}");
        assert_eq!(user.snapshot().rc, n as u8);
    }
    user.poll(4 * T200);
    let out = drain(&mut user);
    assert!(out.tx.is_empty());
    assert_eq!(out.ev, vec![LinkAction::Error(MdlError::G), LinkAction::Released]);
    assert_eq!(user.state(), LinkState::TeiAssigned);
    assert_eq!(user.snapshot().queued, 0, "I queue discarded on failure");
    assert_eq!(user.next_timeout(), None);
}

#[test]
fn dm_f1_during_establishment_releases() {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.establish(0);
    drain(&mut user);
    user.receive(10, &[0x00, 0x01, 0x1F]);
    assert_eq!(drain(&mut user).ev, vec![LinkAction::Released]);
    assert_eq!(user.state(), LinkState::TeiAssigned);
}

#[test]
fn disc_is_answered_with_ua_and_released() {
    let mut user = established_user();
    user.send(0, b"lost".to_vec()).unwrap();
    drain(&mut user);
    // Network DISC P=1: C/R = 1.
    user.receive(100, &[0x02, 0x01, 0x53]);
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x02, 0x01, 0x73]], "UA F=1 response, C/R=1");
    assert_eq!(out.ev, vec![LinkAction::Released]);
    assert_eq!(user.state(), LinkState::TeiAssigned);
    assert_eq!(user.snapshot().outstanding, 0);
    assert_eq!(user.next_timeout(), None);
}

#[test]
fn dm_reply_when_disc_arrives_in_state_4() {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.receive(0, &[0x02, 0x01, 0x53]);
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x02, 0x01, 0x1F]], "DM F=1");
    assert!(out.ev.is_empty());
    assert_eq!(user.state(), LinkState::TeiAssigned);
}

#[test]
fn release_sends_disc_and_completes_on_ua() {
    let mut user = established_user();
    user.release(50);
    assert_eq!(drain(&mut user).tx, vec![vec![0x00, 0x01, 0x53]]);
    assert_eq!(user.state().number(), 6);
    user.receive(60, &[0x00, 0x01, 0x73]);
    assert_eq!(drain(&mut user).ev, vec![LinkAction::Released]);
    assert_eq!(user.state().number(), 4);
}

#[test]
fn unanswered_disc_gives_error_h() {
    let mut user = established_user();
    user.release(0);
    drain(&mut user);
    for n in 1..=3 {
        user.poll(n * T200);
        assert_eq!(drain(&mut user).tx, vec![vec![0x00, 0x01, 0x53]]);
    }
    user.poll(4 * T200);
    assert_eq!(drain(&mut user).ev, vec![LinkAction::Error(MdlError::H), LinkAction::Released]);
}

#[test]
fn peer_sabme_while_established_resets_and_keeps_queue() {
    let mut user = established_user();
    user.send(0, b"a".to_vec()).unwrap();
    user.send(0, b"b".to_vec()).unwrap();
    assert_eq!(drain(&mut user).tx.len(), 2);
    user.receive(10, &[0x02, 0x01, 0x7F]);
    let out = drain(&mut user);
    assert_eq!(out.ev, vec![LinkAction::Error(MdlError::F), LinkAction::Established]);
    // UA, then both messages again renumbered from 0.
    assert_eq!(out.tx[0], vec![0x02, 0x01, 0x73]);
    assert_eq!(out.tx[1], i_frame(Role::User, 0, 0, false, b"a"));
    assert_eq!(out.tx[2], i_frame(Role::User, 1, 0, false, b"b"));
}

// ---- acknowledged transfer -------------------------------------------------------------------

#[test]
fn i_frames_are_numbered_acked_and_delivered() {
    let mut user = established_user();
    user.send(0, b"setup".to_vec()).unwrap();
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x00, 0x00, b's', b'e', b't', b'u', b'p']]);
    assert_eq!(user.next_timeout(), Some(T200), "T200 replaces T203");
    // The network's I frame acknowledging ours (N(S)=0, N(R)=1).
    user.receive(5, &i_frame(Role::Network, 0, 1, false, b"ok"));
    let out = drain(&mut user);
    assert_eq!(out.ev, vec![LinkAction::Data(b"ok".to_vec())]);
    // Acknowledged with RR response N(R)=1, C/R=1 from the user.
    assert_eq!(out.tx, vec![vec![0x02, 0x01, 0x01, 0x02]]);
    let snap = user.snapshot();
    assert_eq!((snap.vs, snap.va, snap.vr, snap.outstanding), (1, 1, 1, 0));
    assert_eq!(user.next_timeout(), Some(5 + T203));
}

#[test]
fn i_frame_with_poll_gets_rr_final() {
    let mut user = established_user();
    user.receive(5, &i_frame(Role::Network, 0, 0, true, b"x"));
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x02, 0x01, 0x01, 0x03]], "RR F=1, N(R)=1");
}

#[test]
fn window_full_stops_sending_at_k_outstanding() {
    let mut user = established_user();
    for n in 0..10u8 {
        user.send(0, vec![n]).unwrap();
    }
    let out = drain(&mut user);
    assert_eq!(out.tx.len(), 7);
    for (n, tx) in out.tx.iter().enumerate() {
        assert_eq!(*tx, i_frame(Role::User, n as u8, 0, false, &[n as u8]));
    }
    let snap = user.snapshot();
    assert_eq!((snap.outstanding, snap.queued), (7, 3));
    // Acknowledge 0..=2: three more may go.
    user.receive(10, &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rr, 3, false));
    let out = drain(&mut user);
    assert_eq!(out.tx.len(), 3);
    assert_eq!(kind_of(&out.tx[0]), FrameKind::I { ns: 7, nr: 0, p: false });
    assert_eq!(user.snapshot().outstanding, 7);
}

#[test]
fn peer_rnr_stops_sending_until_rr() {
    let mut user = established_user();
    user.receive(0, &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rnr, 0, false));
    assert!(user.snapshot().peer_busy);
    user.send(1, b"held".to_vec()).unwrap();
    assert!(drain(&mut user).tx.is_empty());
    user.receive(2, &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rr, 0, false));
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![i_frame(Role::User, 0, 0, false, b"held")]);
}

#[test]
fn peer_busy_is_polled_on_t200() {
    let mut user = established_user();
    user.receive(0, &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rnr, 0, false));
    user.send(0, b"held".to_vec()).unwrap();
    drain(&mut user);
    user.poll(T200);
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x01, 0x01]], "RR command P=1");
    assert_eq!(user.state(), LinkState::TimerRecovery);
    // Still busy: back to 7, nothing sent.
    user.receive(
        T200 + 1,
        &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rnr, 0, true),
    );
    assert!(drain(&mut user).tx.is_empty());
    assert_eq!(user.state(), LinkState::MultipleFrameEstablished);
    // Ready now.
    user.receive(
        T200 + 2,
        &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rr, 0, false),
    );
    assert_eq!(drain(&mut user).tx, vec![i_frame(Role::User, 0, 0, false, b"held")]);
}

#[test]
fn rej_sent_once_for_a_gap_then_cleared() {
    let mut user = established_user();
    // N(S)=1 arrives while 0 is expected: REJ response N(R)=0.
    user.receive(1, &i_frame(Role::Network, 1, 0, false, b"1"));
    let out = drain(&mut user);
    assert!(out.ev.is_empty(), "out of sequence: not delivered");
    assert_eq!(out.tx, vec![vec![0x02, 0x01, 0x09, 0x00]]);
    assert!(user.snapshot().reject_exception);
    // N(S)=2 also out of sequence: no second REJ.
    user.receive(2, &i_frame(Role::Network, 2, 0, false, b"2"));
    let out = drain(&mut user);
    assert!(out.tx.is_empty() && out.ev.is_empty());
    // Retransmissions arrive in order.
    for (ns, body) in [(0u8, b"0"), (1, b"1"), (2, b"2")] {
        user.receive(3, &i_frame(Role::Network, ns, 0, false, body));
        let out = drain(&mut user);
        assert_eq!(out.ev, vec![LinkAction::Data(body.to_vec())]);
    }
    assert!(!user.snapshot().reject_exception);
    // A new gap gets a new REJ.
    user.receive(4, &i_frame(Role::Network, 5, 0, false, b"5"));
    assert_eq!(drain(&mut user).tx, vec![vec![0x02, 0x01, 0x09, 0x06]]);
}

#[test]
fn rej_received_goes_back_n() {
    let mut user = established_user();
    for n in 0..4u8 {
        user.send(0, vec![n]).unwrap();
    }
    assert_eq!(drain(&mut user).tx.len(), 4);
    user.receive(
        10,
        &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rej, 1, false),
    );
    let out = drain(&mut user);
    let expect: Vec<_> = (1..4u8).map(|n| i_frame(Role::User, n, 0, false, &[n])).collect();
    assert_eq!(out.tx, expect);
    assert_eq!(user.snapshot().outstanding, 3);
}

// ---- timers ----------------------------------------------------------------------------------

#[test]
fn t200_in_established_enters_timer_recovery_with_rr_poll() {
    let mut user = established_user();
    user.send(0, b"lost".to_vec()).unwrap();
    drain(&mut user);
    user.poll(T200);
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x01, 0x01]], "RR command P=1 N(R)=0");
    assert_eq!(user.state().number(), 8);
    // Network answers RR response F=1 N(R)=0 (C/R = 0): retransmit from 0, back to 7.
    user.receive(T200 + 5, &[0x00, 0x01, 0x01, 0x01]);
    let out = drain(&mut user);
    assert_eq!(out.tx, vec![i_frame(Role::User, 0, 0, false, b"lost")]);
    assert_eq!(user.state().number(), 7);
}

#[test]
fn t203_expiry_polls_and_reply_returns_to_established() {
    let mut user = established_user();
    user.poll(T203 - 1);
    assert!(drain(&mut user).tx.is_empty());
    user.poll(T203);
    assert_eq!(drain(&mut user).tx, vec![vec![0x00, 0x01, 0x01, 0x01]]);
    assert_eq!(user.state(), LinkState::TimerRecovery);
    assert_eq!(user.deadline(LinkTimer::T200), Some(T203 + T200));
    assert_eq!(user.deadline(LinkTimer::T203), None);
    user.receive(T203 + 3, &[0x00, 0x01, 0x01, 0x01]);
    assert_eq!(user.state(), LinkState::MultipleFrameEstablished);
    assert_eq!(user.next_timeout(), Some(2 * T203 + 3));
    // The peer's side of T203: a network poll (RR command P=1, C/R=1) gets RR F=1 (C/R=1).
    user.receive(T203 + 4, &[0x02, 0x01, 0x01, 0x01]);
    assert_eq!(drain(&mut user).tx, vec![vec![0x02, 0x01, 0x01, 0x01]]);
}

#[test]
fn n200_exhaustion_in_timer_recovery_reestablishes() {
    let mut user = established_user();
    user.send(0, b"kept".to_vec()).unwrap();
    drain(&mut user);
    for n in 1..=3 {
        user.poll(n * T200);
        assert_eq!(drain(&mut user).tx, vec![vec![0x00, 0x01, 0x01, 0x01]], "poll {n}");
        assert_eq!(user.state(), LinkState::TimerRecovery);
    }
    user.poll(4 * T200);
    let out = drain(&mut user);
    assert_eq!(out.ev, vec![LinkAction::Error(MdlError::I)]);
    assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x7F]]);
    assert_eq!(user.state(), LinkState::AwaitingEstablishment);
    // The peer answers: the kept message goes out as N(S)=0.
    user.receive(4 * T200 + 1, &[0x00, 0x01, 0x73]);
    let out = drain(&mut user);
    assert_eq!(out.ev, vec![LinkAction::Established]);
    assert_eq!(out.tx, vec![i_frame(Role::User, 0, 0, false, b"kept")]);
}

// ---- errors ----------------------------------------------------------------------------------

#[test]
fn invalid_nr_is_error_j_and_reestablishes() {
    let mut user = established_user();
    user.receive(1, &s_frame(Role::Network, CommandResponse::Response, Supervisory::Rr, 5, false));
    let out = drain(&mut user);
    assert_eq!(out.ev, vec![LinkAction::Error(MdlError::J)]);
    assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x7F]]);
    assert_eq!(user.state(), LinkState::AwaitingEstablishment);
    // An I frame with a bad N(R) is not delivered.
    let mut user = established_user();
    user.receive(1, &i_frame(Role::Network, 0, 9, false, b"x"));
    let out = drain(&mut user);
    assert_eq!(out.ev, vec![LinkAction::Error(MdlError::J)]);
}

#[test]
fn wrong_cr_frames_are_discarded() {
    let mut user = established_user();
    // SABME marked as a response (C/R=0 from the network) and UA marked as a command.
    user.receive(1, &[0x00, 0x01, 0x7F]);
    user.receive(1, &[0x02, 0x01, 0x73]);
    // I frame marked as a response.
    user.receive(1, &i_frame(Role::User, 0, 0, false, b"x"));
    let out = drain(&mut user);
    assert!(out.tx.is_empty() && out.ev.is_empty());
    assert_eq!(user.snapshot().discarded, 3);
    assert_eq!(user.state(), LinkState::MultipleFrameEstablished);
}

#[test]
fn unsolicited_responses_report_errors() {
    let mut user = established_user();
    user.receive(1, &[0x00, 0x01, 0x73]);
    user.receive(1, &[0x00, 0x01, 0x63]);
    user.receive(1, &[0x00, 0x01, 0x01, 0x01]);
    user.receive(1, &[0x00, 0x01, 0x1F]);
    assert_eq!(
        drain(&mut user).ev,
        vec![
            LinkAction::Error(MdlError::C),
            LinkAction::Error(MdlError::D),
            LinkAction::Error(MdlError::A),
            LinkAction::Error(MdlError::B),
        ]
    );
    assert_eq!(user.state(), LinkState::MultipleFrameEstablished);
}

#[test]
fn dm_f0_and_frmr_reestablish() {
    for (bytes, err) in [
        (vec![0x00, 0x01, 0x0F], MdlError::E),
        (vec![0x00, 0x01, 0x87, 1, 2, 3, 4, 5], MdlError::K),
        (vec![0x02, 0x01, 0xE3], MdlError::L),
        (vec![0x02, 0x01, 0x7F, 0x00], MdlError::M),
        (vec![0x02, 0x01, 0x01, 0x00, 0x00], MdlError::N),
    ] {
        let mut user = established_user();
        user.receive(1, &bytes);
        let out = drain(&mut user);
        assert_eq!(out.ev, vec![LinkAction::Error(err)], "{bytes:02x?}");
        assert_eq!(out.tx, vec![vec![0x00, 0x01, 0x7F]]);
        assert_eq!(user.state(), LinkState::AwaitingEstablishment);
    }
    let mut long = i_frame(Role::Network, 0, 0, false, &[0; 261]);
    let mut user = established_user();
    user.receive(1, &long);
    assert_eq!(drain(&mut user).ev, vec![LinkAction::Error(MdlError::O)]);
    // Outside states 7/8 such frames are just discarded.
    long.truncate(3);
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.receive(1, &[0x02, 0x01, 0xE3]);
    assert!(drain(&mut user).ev.is_empty());
    assert_eq!(user.snapshot().discarded, 1);
}

#[test]
fn other_sapi_tei_and_garbage_are_ignored() {
    let mut user = established_user();
    user.receive(1, &[0x04, 0x01, 0x7F]); // SAPI 1
    user.receive(1, &[0x02, 0x03, 0x53]); // TEI 1
    user.receive(1, &[0xFC, 0xFF, 0x7F]); // SAPI 63 TEI 127
    user.receive(1, &[0x03, 0x01, 0x7F]); // EA wrong
    user.receive(1, &[0x02]);
    user.receive(1, &[]);
    let out = drain(&mut user);
    assert!(out.tx.is_empty() && out.ev.is_empty());
    assert_eq!(user.snapshot().discarded, 6);
    assert_eq!(user.state(), LinkState::MultipleFrameEstablished);
}

#[test]
fn ui_frames_in_any_state() {
    let mut user = DataLink::new(Role::User, LinkConfig::default());
    user.receive(0, &[0x02, 0x01, 0x03, 0xAA]);
    user.receive(0, &[0x02, 0xFF, 0x03, 0xBB]); // broadcast TEI
    assert_eq!(
        drain(&mut user).ev,
        vec![LinkAction::UiData(vec![0xAA]), LinkAction::UiData(vec![0xBB])]
    );
    user.send_unit_data(0, &[1, 2]).unwrap();
    assert_eq!(drain(&mut user).tx, vec![vec![0x00, 0x01, 0x03, 1, 2]]);
}

#[test]
fn oversize_send_is_refused() {
    let mut user = established_user();
    assert_eq!(user.send(0, vec![0; 261]), Err(LapdError::InfoTooLong { len: 261, max: 260 }));
    assert!(user.send(0, vec![0; 260]).is_ok());
}

#[test]
fn mdl_error_letters() {
    assert_eq!(MdlError::A.code(), 'A');
    assert_eq!(MdlError::O.code(), 'O');
    assert!(MdlError::J.to_string().contains("N(R)"));
}

// ---- back to back ----------------------------------------------------------------------------

/// Fault plan of the test channel.
#[derive(Debug, Clone, Copy)]
struct Faults {
    seed: u64,
    /// Chance in percent that a frame is dropped, when a fault is allowed.
    drop_pct: u64,
    /// Chance in percent that an I or S frame is delivered twice.
    dup_pct: u64,
    /// Chance in percent that a frame is held back behind the next one in its direction.
    reorder_pct: u64,
    /// No fault within this many ms after the previous one (so recovery always completes).
    gap_ms: u64,
    /// No faults from this time on.
    until_ms: u64,
}

struct Pair {
    user: DataLink,
    net: DataLink,
    now: u64,
    faults: Faults,
    rng: u64,
    last_fault: Option<u64>,
    /// Faults injected: dropped, duplicated, held back.
    injected: [u32; 3],
    /// Frames in flight: (to_network, bytes).
    wire: VecDeque<(bool, Vec<u8>)>,
    held: [Option<Vec<u8>>; 2],
    user_got: Vec<Vec<u8>>,
    net_got: Vec<Vec<u8>>,
    user_events: Vec<LinkAction>,
    net_events: Vec<LinkAction>,
}

impl Pair {
    fn new(faults: Faults) -> Pair {
        Pair {
            user: DataLink::new(Role::User, LinkConfig::default()),
            net: DataLink::new(Role::Network, LinkConfig::default()),
            now: 0,
            faults,
            rng: faults.seed | 1,
            last_fault: None,
            injected: [0; 3],
            wire: VecDeque::new(),
            held: [None, None],
            user_got: Vec::new(),
            net_got: Vec::new(),
            user_events: Vec::new(),
            net_events: Vec::new(),
        }
    }

    fn roll(&mut self, pct: u64) -> bool {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100 < pct
    }

    fn fault_allowed(&self) -> bool {
        self.now < self.faults.until_ms
            && self.last_fault.is_none_or(|t| self.now >= t + self.faults.gap_ms)
    }

    /// Put a frame on the wire through the fault plan.
    fn put(&mut self, to_net: bool, bytes: Vec<u8>) {
        let dir = usize::from(to_net);
        let dupable = matches!(
            Frame::parse(&bytes).map(|f| f.kind),
            Ok(FrameKind::I { .. } | FrameKind::S { .. })
        );
        if self.fault_allowed() {
            let f = self.faults;
            if self.roll(f.drop_pct) {
                self.injected[0] += 1;
                self.last_fault = Some(self.now);
                return;
            }
            if dupable && self.roll(f.dup_pct) {
                self.injected[1] += 1;
                self.last_fault = Some(self.now);
                self.wire.push_back((to_net, bytes.clone()));
            } else if self.held[dir].is_none() && self.roll(f.reorder_pct) {
                self.injected[2] += 1;
                self.last_fault = Some(self.now);
                self.held[dir] = Some(bytes);
                return;
            }
        }
        self.wire.push_back((to_net, bytes));
        if let Some(h) = self.held[dir].take() {
            self.wire.push_back((to_net, h));
        }
    }

    fn collect(&mut self) {
        while let Some(a) = self.user.poll_action() {
            match a {
                LinkAction::Transmit(b) => self.put(true, b),
                LinkAction::Data(d) => self.user_got.push(d),
                other => self.user_events.push(other),
            }
        }
        while let Some(a) = self.net.poll_action() {
            match a {
                LinkAction::Transmit(b) => self.put(false, b),
                LinkAction::Data(d) => self.net_got.push(d),
                other => self.net_events.push(other),
            }
        }
    }

    /// Deliver everything in flight at the current instant.
    fn settle(&mut self) {
        self.collect();
        while let Some((to_net, bytes)) = self.wire.pop_front() {
            if to_net {
                self.net.receive(self.now, &bytes);
            } else {
                self.user.receive(self.now, &bytes);
            }
            self.collect();
        }
    }

    /// Run timers and traffic until `t`.
    fn run_until(&mut self, t: u64) {
        self.settle();
        loop {
            let next =
                [self.user.next_timeout(), self.net.next_timeout()].into_iter().flatten().min();
            match next {
                Some(n) if n <= t => {
                    self.now = self.now.max(n);
                    self.user.poll(self.now);
                    self.net.poll(self.now);
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        // Anything held for reordering is released when time moves on.
        for dir in 0..2 {
            if let Some(h) = self.held[dir].take() {
                self.wire.push_back((dir == 1, h));
            }
        }
        self.settle();
    }
}

fn message(dir: u8, n: usize) -> Vec<u8> {
    let mut m = vec![dir, (n >> 8) as u8, n as u8];
    m.extend(std::iter::repeat_n(0x5A, n % 40));
    m
}

/// Send `count` messages each way, one pair every `spacing_ms`, then run until quiet.
fn exchange(faults: Faults, count: usize, spacing_ms: u64) -> Pair {
    let mut pair = Pair::new(faults);
    pair.user.establish(0);
    pair.run_until(0);
    for n in 0..count {
        let t = n as u64 * spacing_ms;
        pair.run_until(t);
        pair.user.send(t, message(0, n)).unwrap();
        pair.net.send(t, message(1, n)).unwrap();
        pair.settle();
    }
    let end = count as u64 * spacing_ms + faults.until_ms.min(100_000) + 60_000;
    pair.run_until(end);
    pair
}

#[test]
fn back_to_back_clean_exchange() {
    let faults =
        Faults { seed: 1, drop_pct: 0, dup_pct: 0, reorder_pct: 0, gap_ms: 0, until_ms: 0 };
    let pair = exchange(faults, 50, 0);
    let want_u: Vec<_> = (0..50).map(|n| message(0, n)).collect();
    let want_n: Vec<_> = (0..50).map(|n| message(1, n)).collect();
    assert_eq!(pair.net_got, want_u);
    assert_eq!(pair.user_got, want_n);
    assert_eq!(pair.user_events, vec![LinkAction::Established]);
    assert_eq!(pair.net_events, vec![LinkAction::Established]);
}

#[test]
fn back_to_back_release_from_network() {
    let faults =
        Faults { seed: 1, drop_pct: 0, dup_pct: 0, reorder_pct: 0, gap_ms: 0, until_ms: 0 };
    let mut pair = exchange(faults, 3, 100);
    pair.net.release(pair.now);
    pair.settle();
    assert_eq!(pair.user.state(), LinkState::TeiAssigned);
    assert_eq!(pair.net.state(), LinkState::TeiAssigned);
    assert_eq!(pair.user_events.last(), Some(&LinkAction::Released));
    assert_eq!(pair.net_events.last(), Some(&LinkAction::Released));
}

#[test]
fn back_to_back_reorder_recovers() {
    // Reordering breaks LAPD's in-order assumption (N(R) errors, resets). After the faults
    // stop, the link must be up again and every message delivered at least once, first
    // deliveries in order.
    for seed in 1..40u64 {
        let faults = Faults {
            seed,
            drop_pct: 10,
            dup_pct: 10,
            reorder_pct: 30,
            gap_ms: 1_500,
            until_ms: 20_000,
        };
        let pair = exchange(faults, 40, 250);
        assert!(pair.injected[2] > 0, "seed {seed}: no reordering happened");
        assert_eq!(pair.user.state(), LinkState::MultipleFrameEstablished, "seed {seed}");
        assert_eq!(pair.net.state(), LinkState::MultipleFrameEstablished, "seed {seed}");
        for (got, dir) in [(&pair.net_got, 0u8), (&pair.user_got, 1u8)] {
            let mut firsts: Vec<Vec<u8>> = Vec::new();
            for m in got {
                if !firsts.contains(m) {
                    firsts.push(m.clone());
                }
            }
            let want: Vec<_> = (0..40).map(|n| message(dir, n)).collect();
            assert_eq!(firsts, want, "seed {seed} dir {dir}");
        }
    }
}

#[test]
fn back_to_back_heavy_loss_fixed_seed() {
    let faults = Faults {
        seed: 7,
        drop_pct: 50,
        dup_pct: 20,
        reorder_pct: 0,
        gap_ms: 1_500,
        until_ms: u64::MAX,
    };
    let pair = exchange(faults, 60, 300);
    assert!(pair.injected[0] >= 5 && pair.injected[1] >= 2, "{:?}", pair.injected);
    let want_u: Vec<_> = (0..60).map(|n| message(0, n)).collect();
    let want_n: Vec<_> = (0..60).map(|n| message(1, n)).collect();
    assert_eq!(pair.net_got, want_u);
    assert_eq!(pair.user_got, want_n);
    assert_eq!(pair.user.state(), LinkState::MultipleFrameEstablished);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every message is delivered exactly once and in order, both ways, despite loss and
    /// duplication bounded so that no recovery needs more than N200 attempts.
    #[test]
    fn exactly_once_in_order_despite_loss(
        seed in any::<u64>(),
        drop_pct in 0u64..60,
        dup_pct in 0u64..30,
        count in 1usize..60,
        spacing in 0u64..700,
    ) {
        let faults = Faults { seed, drop_pct, dup_pct, reorder_pct: 0, gap_ms: 1_500, until_ms: u64::MAX };
        let pair = exchange(faults, count, spacing);
        let want_u: Vec<_> = (0..count).map(|n| message(0, n)).collect();
        let want_n: Vec<_> = (0..count).map(|n| message(1, n)).collect();
        prop_assert_eq!(&pair.net_got, &want_u);
        prop_assert_eq!(&pair.user_got, &want_n);
        prop_assert!(!pair.user_events.contains(&LinkAction::Released));
        prop_assert!(!pair.net_events.contains(&LinkAction::Released));
        prop_assert_eq!(pair.user.snapshot().outstanding, 0);
        prop_assert_eq!(pair.net.snapshot().outstanding, 0);
    }
}

// ---- fuzz corpus replay ----------------------------------------------------------------------

#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/lapd");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus {} too small", dir.display());
    for path in files {
        let data = std::fs::read(&path).expect("read corpus input");
        fuzz_check(&data);
    }
}

proptest! {
    #[test]
    fn fuzz_check_holds_on_arbitrary_input(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzz_check(&data);
    }
}
