//! Back-to-back tests: a user stack and a network stack exchanging messages directly, in
//! virtual time.

use proptest::prelude::*;

use super::*;

/// A user and a network stack with a configurable wire between them.
struct Pair {
    u: Q931Stack,
    n: Q931Stack,
    now: Tick,
    /// Events seen by the user side / the network side.
    ue: Vec<CallEvent>,
    ne: Vec<CallEvent>,
    /// Messages sent by the user side / the network side (delivered or not).
    us: Vec<Message>,
    ns: Vec<Message>,
    /// Deliver user → network / network → user messages.
    u2n: bool,
    n2u: bool,
}

fn cfg() -> Q931Config {
    Q931Config { restart_on_link_up: false, ..Q931Config::default() }
}

fn params(called: &str, channel: Option<u8>, exclusive: bool) -> CallParams {
    CallParams {
        called: called.into(),
        calling: Some("1000".into()),
        channel,
        exclusive,
        calling_restricted: false,
        overlap: false,
    }
}

impl Pair {
    fn new() -> Self {
        Self::with(cfg())
    }

    fn with(cfg: Q931Config) -> Self {
        let mut p = Pair {
            u: Q931Stack::new(Side::User, cfg.clone()),
            n: Q931Stack::new(Side::Network, cfg),
            now: 0,
            ue: Vec::new(),
            ne: Vec::new(),
            us: Vec::new(),
            ns: Vec::new(),
            u2n: true,
            n2u: true,
        };
        p.u.link_up(0);
        p.n.link_up(0);
        p.pump();
        p
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(a) = self.u.poll_action() {
                match a {
                    Q931Action::Send(b) => {
                        moved = true;
                        self.us.push(Message::parse(&b).unwrap());
                        if self.u2n {
                            self.n.receive(self.now, &b);
                        }
                    }
                    Q931Action::Event(e) => self.ue.push(e),
                }
            }
            while let Some(a) = self.n.poll_action() {
                match a {
                    Q931Action::Send(b) => {
                        moved = true;
                        self.ns.push(Message::parse(&b).unwrap());
                        if self.n2u {
                            self.u.receive(self.now, &b);
                        }
                    }
                    Q931Action::Event(e) => self.ne.push(e),
                }
            }
            self.u.assert_invariants();
            self.n.assert_invariants();
            if !moved {
                break;
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now + ms;
        loop {
            let next = [self.u.next_timeout(), self.n.next_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.u.poll(self.now);
                    self.n.poll(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    fn incoming_n(&self) -> CallHandle {
        incoming(&self.ne)
    }

    fn incoming_u(&self) -> CallHandle {
        incoming(&self.ue)
    }
}

fn incoming(ev: &[CallEvent]) -> CallHandle {
    ev.iter()
        .rev()
        .find_map(|e| match e {
            CallEvent::Incoming { call, .. } => Some(*call),
            _ => None,
        })
        .expect("no incoming call")
}

fn types(msgs: &[Message]) -> Vec<MessageType> {
    msgs.iter().map(|m| m.msg_type).collect()
}

fn released(ev: &[CallEvent], h: CallHandle) -> Option<Cause> {
    ev.iter().find_map(|e| match e {
        CallEvent::Released { call, cause } if *call == h => Some(*cause),
        _ => None,
    })
}

fn last_cause(msgs: &[Message], t: MessageType) -> Option<Cause> {
    msgs.iter().rev().find(|m| m.msg_type == t).and_then(|m| m.cause().map(|c| c.cause))
}

#[test]
fn outgoing_call_from_user_cleared_by_user() {
    use MessageType as M;
    let mut p = Pair::new();
    let h = p.u.setup(0, params("5678", None, false)).unwrap();
    p.pump();
    let nh = p.incoming_n();
    let ch = p.n.call_channel(nh).unwrap();
    assert_eq!(ch, 31, "network hunts from the top");
    assert_eq!(p.u.call_state(h), CallState::CallInitiated);
    assert_eq!(
        p.ne[0],
        CallEvent::Incoming {
            call: nh,
            channel: 31,
            called: "5678".into(),
            calling: Some("1000".into()),
            sending_complete: true
        }
    );
    p.n.proceeding(0, nh).unwrap();
    p.pump();
    assert_eq!(p.u.call_state(h), CallState::OutgoingProceeding);
    assert_eq!(p.u.call_channel(h), Some(31));
    p.n.alerting(0, nh).unwrap();
    p.pump();
    assert_eq!(p.u.call_state(h), CallState::CallDelivered);
    p.n.connect(0, nh).unwrap();
    p.pump();
    assert_eq!(p.u.call_state(h), CallState::Active);
    assert_eq!(p.n.call_state(nh), CallState::Active);
    assert!(p.ue.contains(&CallEvent::Connected { call: h, channel: 31 }));
    p.u.disconnect(0, h, Cause::NORMAL_CLEARING).unwrap();
    p.pump();
    assert_eq!(types(&p.us), [M::Setup, M::ConnectAck, M::Disconnect, M::ReleaseComplete]);
    assert_eq!(types(&p.ns), [M::CallProceeding, M::Alerting, M::Connect, M::Release]);
    assert!(p.ns[0].channel_id().is_some(), "first answer carries the channel");
    assert!(p.ns[1].channel_id().is_none());
    assert_eq!(released(&p.ue, h), Some(Cause::NORMAL_CLEARING));
    assert_eq!(released(&p.ne, nh), Some(Cause::NORMAL_CLEARING));
    assert!(p.ne.contains(&CallEvent::Disconnected { call: nh, cause: Cause::NORMAL_CLEARING }));
    assert_eq!(p.u.call_count() + p.n.call_count(), 0);
    assert_eq!(p.n.channel_owner(31), None);
    assert_eq!(p.u.next_timeout(), None);
}

#[test]
fn outgoing_call_from_network_cleared_by_network() {
    use MessageType as M;
    let mut p = Pair::new();
    let nh = p.n.setup(0, params("200", Some(7), true)).unwrap();
    p.pump();
    let uh = p.incoming_u();
    assert_eq!(p.u.call_channel(uh), Some(7));
    assert_eq!(p.u.call_state(uh), CallState::CallPresent);
    assert_eq!(CallState::CallPresent.q931_value(Side::User), 6);
    p.u.proceeding(0, uh).unwrap();
    p.u.alerting(0, uh).unwrap();
    p.u.connect(0, uh).unwrap();
    assert_eq!(p.u.call_state(uh), CallState::ConnectRequest);
    p.pump();
    assert_eq!(p.u.call_state(uh), CallState::Active);
    assert!(p.ue.contains(&CallEvent::ConnectAck { call: uh }));
    assert!(p.ne.contains(&CallEvent::Connected { call: nh, channel: 7 }));
    p.n.disconnect(0, nh, Cause::NORMAL_CLEARING).unwrap();
    p.pump();
    assert_eq!(types(&p.ns), [M::Setup, M::ConnectAck, M::Disconnect, M::ReleaseComplete]);
    assert_eq!(types(&p.us), [M::CallProceeding, M::Alerting, M::Connect, M::Release]);
    assert_eq!(released(&p.ue, uh), Some(Cause::NORMAL_CLEARING));
    assert_eq!(released(&p.ne, nh), Some(Cause::NORMAL_CLEARING));
    assert_eq!(p.u.call_count() + p.n.call_count(), 0);
}

#[test]
fn incoming_call_rejected_and_cleared_by_callee() {
    let mut p = Pair::new();
    let nh = p.n.setup(0, params("200", None, false)).unwrap();
    p.pump();
    let uh = p.incoming_u();
    p.u.disconnect(0, uh, Cause::USER_BUSY).unwrap();
    p.pump();
    assert_eq!(last_cause(&p.us, MessageType::ReleaseComplete), Some(Cause::USER_BUSY));
    assert_eq!(released(&p.ne, nh), Some(Cause::USER_BUSY));
    // Callee clears an active call.
    let nh = p.n.setup(0, params("200", None, false)).unwrap();
    p.pump();
    let uh = p.incoming_u();
    p.u.connect(0, uh).unwrap();
    p.pump();
    p.u.disconnect(0, uh, Cause::NORMAL_CLEARING).unwrap();
    p.pump();
    assert_eq!(released(&p.ne, nh), Some(Cause::NORMAL_CLEARING));
    assert_eq!(p.u.call_count() + p.n.call_count(), 0);
}

#[test]
fn t303_resends_setup_then_clears_102() {
    let mut p = Pair::new();
    p.u2n = false;
    let h = p.u.setup(0, params("1", None, false)).unwrap();
    p.pump();
    p.advance(3_999);
    assert_eq!(types(&p.us), [MessageType::Setup]);
    p.advance(1);
    assert_eq!(types(&p.us), [MessageType::Setup, MessageType::Setup]);
    assert_eq!(p.us[0], p.us[1]);
    p.advance(4_000);
    assert_eq!(last_cause(&p.us, MessageType::ReleaseComplete), Some(Cause(102)));
    assert_eq!(released(&p.ue, h), Some(Cause::RECOVERY_ON_TIMER_EXPIRY));
    assert_eq!(p.u.call_count(), 0);
}

#[test]
fn t310_disconnects_with_102() {
    let mut p = Pair::new();
    let h = p.u.setup(0, params("1", None, false)).unwrap();
    p.pump();
    let nh = p.incoming_n();
    p.n.proceeding(0, nh).unwrap();
    p.pump();
    p.advance(29_999);
    assert_eq!(p.u.call_state(h), CallState::OutgoingProceeding);
    p.advance(1);
    assert_eq!(last_cause(&p.us, MessageType::Disconnect), Some(Cause(102)));
    assert_eq!(released(&p.ue, h), Some(Cause(102)));
    assert_eq!(released(&p.ne, nh), Some(Cause(102)));
}

#[test]
fn t313_disconnects_when_connect_ack_missing() {
    let mut p = Pair::new();
    p.n.setup(0, params("1", None, false)).unwrap();
    p.pump();
    let uh = p.incoming_u();
    p.n2u = false;
    p.u.connect(0, uh).unwrap();
    p.pump();
    p.advance(4_000);
    assert_eq!(last_cause(&p.us, MessageType::Disconnect), Some(Cause(102)));
    assert_eq!(p.u.call_state(uh), CallState::DisconnectRequest);
}

#[test]
fn t305_then_t308_twice_puts_channel_in_maintenance() {
    use MessageType as M;
    let mut p = Pair::new();
    let h = p.u.setup(0, params("1", None, false)).unwrap();
    p.pump();
    let nh = p.incoming_n();
    p.n.connect(0, nh).unwrap();
    p.pump();
    let ch = p.u.call_channel(h).unwrap();
    p.u2n = false;
    p.n2u = false;
    p.u.disconnect(0, h, Cause::NORMAL_CLEARING).unwrap();
    p.pump();
    p.advance(29_999);
    assert_eq!(types(&p.us).last(), Some(&M::Disconnect));
    p.advance(1);
    assert_eq!(types(&p.us).last(), Some(&M::Release));
    assert_eq!(last_cause(&p.us, M::Release), Some(Cause::NORMAL_CLEARING));
    assert_eq!(p.u.call_state(h), CallState::ReleaseRequest);
    p.advance(4_000);
    assert_eq!(types(&p.us)[p.us.len() - 2..], [M::Release, M::Release]);
    assert_eq!(p.u.call_state(h), CallState::ReleaseRequest);
    p.advance(4_000);
    assert_eq!(p.u.call_state(h), CallState::Null);
    assert_eq!(released(&p.ue, h), Some(Cause::NORMAL_CLEARING));
    assert!(p.u.channel_restarting(ch));
    let restart = p.us.last().unwrap();
    assert_eq!(restart.msg_type, M::Restart);
    assert_eq!(restart.restart_class(), Some(RestartClass::Indicated));
    assert_eq!(restart.channel_id().and_then(ChannelId::channel), Some(ch));
    // The wire comes back; the network acknowledges and the channel returns to service.
    p.u2n = true;
    p.n2u = true;
    p.advance(120_000);
    assert!(!p.u.channel_restarting(ch));
    assert!(p.ue.contains(&CallEvent::RestartDone { channel: Some(ch), acknowledged: true }));
    assert_eq!(released(&p.ne, nh), Some(Cause::TEMPORARY_FAILURE));
}

#[test]
fn t316_resends_restart_then_gives_up() {
    let mut p = Pair::new();
    p.n2u = false;
    p.u2n = false;
    p.n.restart(0, None).unwrap();
    p.pump();
    assert!(p.n.channel_restarting(1));
    assert_eq!(p.n.setup(0, params("1", None, false)), Err(CallError::NoChannel));
    p.advance(120_000);
    assert_eq!(types(&p.ns), [MessageType::Restart, MessageType::Restart]);
    p.advance(120_000);
    assert!(p.ne.contains(&CallEvent::RestartDone { channel: None, acknowledged: false }));
    assert!(!p.n.channel_restarting(1));
    assert_eq!(p.n.next_timeout(), None);
}

fn active_call(p: &mut Pair) -> (CallHandle, CallHandle) {
    let h = p.u.setup(p.now, params("1", None, false)).unwrap();
    p.pump();
    let nh = p.incoming_n();
    p.n.connect(p.now, nh).unwrap();
    p.pump();
    assert_eq!(p.u.call_state(h), CallState::Active);
    (h, nh)
}

#[test]
fn t309_clears_active_calls_after_link_loss() {
    let mut p = Pair::new();
    let (h, nh) = active_call(&mut p);
    let pending = p.u.setup(0, params("2", None, false)).unwrap();
    p.pump();
    p.u.link_down(0);
    p.n.link_down(0);
    p.pump();
    assert_eq!(released(&p.ue, pending), Some(Cause::TEMPORARY_FAILURE));
    assert_eq!(p.u.call_state(h), CallState::Active);
    assert_eq!(p.u.setup(0, params("3", None, false)), Err(CallError::LinkDown));
    p.advance(5_999);
    assert_eq!(p.u.call_state(h), CallState::Active);
    p.advance(1);
    assert_eq!(released(&p.ue, h), Some(Cause::TEMPORARY_FAILURE));
    assert_eq!(released(&p.ne, nh), Some(Cause::TEMPORARY_FAILURE));
    assert_eq!(p.u.call_count() + p.n.call_count(), 0);
}

#[test]
fn link_back_before_t309_keeps_call_and_enquires() {
    let mut p = Pair::new();
    let (h, nh) = active_call(&mut p);
    p.u.link_down(0);
    p.n.link_down(0);
    p.advance(3_000);
    p.n.link_up(p.now);
    p.u.link_up(p.now);
    p.pump();
    assert!(types(&p.us).contains(&MessageType::StatusEnquiry));
    assert_eq!(p.ns.last().unwrap().msg_type, MessageType::Status);
    assert_eq!(p.ns.last().unwrap().call_state(), Some(10));
    p.advance(100_000);
    assert_eq!(p.u.call_state(h), CallState::Active);
    assert_eq!(p.n.call_state(nh), CallState::Active);
}

#[test]
fn glare_on_the_same_channel_network_wins() {
    let mut p = Pair::new();
    p.u2n = false;
    p.n2u = false;
    let uh = p.u.setup(0, params("1", Some(5), true)).unwrap();
    let nh = p.n.setup(0, params("2", Some(5), true)).unwrap();
    p.pump();
    // Messages cross on the wire.
    let (us, ns) = (p.us.clone(), p.ns.clone());
    p.u2n = true;
    p.n2u = true;
    p.n.receive(0, &us[0].to_bytes());
    p.u.receive(0, &ns[0].to_bytes());
    p.pump();
    assert_eq!(released(&p.ue, uh), Some(Cause::REQUESTED_CHANNEL_NOT_AVAILABLE));
    let incoming = p.incoming_u();
    assert_eq!(p.u.channel_owner(5), Some(incoming));
    p.u.alerting(0, incoming).unwrap();
    p.pump();
    assert_eq!(p.n.call_state(nh), CallState::CallDelivered);
    assert_eq!(p.u.call_count(), 1);
    // Glare on a preferred request: the user's call moves to the channel the network picks.
    p.u2n = false;
    p.n2u = false;
    p.n.setup(0, params("4", Some(6), true)).unwrap();
    let uh2 = p.u.setup(0, params("3", Some(6), false)).unwrap();
    p.pump();
    let (us, ns) = (p.us.last().unwrap().to_bytes(), p.ns.last().unwrap().to_bytes());
    p.u2n = true;
    p.n2u = true;
    p.n.receive(0, &us);
    p.u.receive(0, &ns);
    p.pump();
    let at_n = p.incoming_n();
    let at_u = p.incoming_u();
    assert_eq!(p.u.channel_owner(6), Some(at_u));
    let other = p.n.call_channel(at_n).unwrap();
    assert_ne!(other, 6);
    p.n.proceeding(0, at_n).unwrap();
    p.pump();
    assert_eq!(p.u.call_state(uh2), CallState::OutgoingProceeding);
    assert_eq!(p.u.call_channel(uh2), Some(other));
    assert_eq!(p.u.call_count(), 3);
}

#[test]
fn preferred_channel_busy_gets_another() {
    let mut p = Pair::new();
    let nh = p.n.setup(0, params("1", Some(9), true)).unwrap();
    p.pump();
    let _ = nh;
    // The user side asks preferred 9 although it is busy there too: refused locally.
    assert_eq!(p.u.setup(0, params("2", Some(9), false)), Err(CallError::ChannelBusy));
    // Inject a user SETUP preferring 9 directly at the network.
    let setup = Message::setup(
        CallRef::new(500, false),
        BearerCapability::speech_alaw(),
        Some(ChannelId::preferred(9)),
        None,
        CalledNumber::new(0, 1, "9"),
    );
    p.n.receive(0, &setup.to_bytes());
    p.pump();
    let other = p.incoming_n();
    assert_ne!(p.n.call_channel(other), Some(9));
    assert!(p.n.call_channel(other).is_some());
}

#[test]
fn restart_both_directions() {
    let mut p = Pair::new();
    let (h, nh) = active_call(&mut p);
    p.u.restart(0, None).unwrap();
    p.pump();
    assert_eq!(released(&p.ue, h), Some(Cause::TEMPORARY_FAILURE));
    assert_eq!(released(&p.ne, nh), Some(Cause::TEMPORARY_FAILURE));
    assert!(p.ne.contains(&CallEvent::RestartReceived { channel: None }));
    assert!(p.ue.contains(&CallEvent::RestartDone { channel: None, acknowledged: true }));
    assert_eq!(p.ns.last().unwrap().msg_type, MessageType::RestartAck);
    assert_eq!(p.u.next_timeout(), None);
    // Network restarts one channel.
    let (h, nh) = active_call(&mut p);
    let ch = p.n.call_channel(nh).unwrap();
    p.n.restart(0, Some(ch)).unwrap();
    assert!(p.n.channel_restarting(ch));
    p.pump();
    assert!(p.ue.contains(&CallEvent::RestartReceived { channel: Some(ch) }));
    assert!(p.ne.contains(&CallEvent::RestartDone { channel: Some(ch), acknowledged: true }));
    assert_eq!(p.u.call_state(h), CallState::Null);
    assert!(!p.n.channel_restarting(ch));
    assert_eq!(p.n.restart(0, Some(16)), Err(CallError::NoSuchChannel));
}

#[test]
fn restart_on_link_up_blocks_channels_until_ack() {
    let cfg = Q931Config { restart_on_link_up: true, ..cfg() };
    let mut u = Q931Stack::new(Side::User, cfg.clone());
    u.link_up(0);
    let Some(Q931Action::Send(b)) = u.poll_action() else { panic!("no RESTART") };
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.msg_type, MessageType::Restart);
    assert_eq!(m.restart_class(), Some(RestartClass::AllInterfaces));
    assert_eq!(u.setup(0, params("1", Some(1), true)), Err(CallError::ChannelBusy));
    let mut n = Q931Stack::new(Side::Network, cfg);
    n.link_up(0);
    n.receive(0, &b);
    let mut acked = false;
    while let Some(a) = n.poll_action() {
        if let Q931Action::Send(ack) = a {
            if Message::parse(&ack).unwrap().msg_type == MessageType::RestartAck {
                u.receive(0, &ack);
                acked = true;
            }
        }
    }
    assert!(acked);
    assert!(u.setup(0, params("1", Some(1), true)).is_ok());
}

#[test]
fn status_enquiry_and_status_handling() {
    let mut p = Pair::new();
    let (h, nh) = active_call(&mut p);
    p.u.status_enquiry(0, h).unwrap();
    p.pump();
    let st = p.ns.last().unwrap();
    assert_eq!(st.msg_type, MessageType::Status);
    assert_eq!(st.call_state(), Some(10));
    assert_eq!(st.cause().unwrap().cause, Cause::RESPONSE_TO_STATUS_ENQUIRY);
    assert_eq!(p.u.call_state(h), CallState::Active);
    // STATUS saying the peer is in an incompatible state (N6 for a user-originated call).
    let cr = CallRef::new(p.us[0].call_ref.value, true);
    let bad = Message::status(cr, CauseIe::new(Location::PRIVATE_LOCAL, Cause(30)), 6);
    p.u.receive(0, &bad.to_bytes());
    p.pump();
    assert_eq!(last_cause(&p.us, MessageType::Release), Some(Cause::WRONG_CALL_STATE));
    assert_eq!(released(&p.ue, h), Some(Cause::WRONG_CALL_STATE));
    assert_eq!(released(&p.ne, nh), Some(Cause::WRONG_CALL_STATE));
    // STATUS saying the peer is in Null: released locally, nothing sent.
    let (h, _nh) = active_call(&mut p);
    let sent = p.us.len();
    let cr = p.ns.iter().rev().find(|m| m.msg_type == MessageType::Connect).unwrap().call_ref;
    let null = Message::status(cr, CauseIe::new(Location::PRIVATE_LOCAL, Cause(81)), 0);
    p.u.receive(0, &null.to_bytes());
    p.pump();
    assert_eq!(released(&p.ue, h), Some(Cause(81)));
    assert_eq!(p.us.len(), sent);
}

#[test]
fn unknown_call_reference() {
    let mut p = Pair::new();
    let cr = CallRef::new(77, false);
    let ie = CauseIe::new(Location::USER, Cause::NORMAL_CLEARING);
    p.n.receive(0, &Message::clearing(cr, MessageType::Disconnect, ie.clone()).to_bytes());
    p.pump();
    let m = p.ns.last().unwrap();
    assert_eq!(m.msg_type, MessageType::ReleaseComplete);
    assert_eq!(m.call_ref, cr.reply());
    assert_eq!(m.cause().unwrap().cause, Cause::INVALID_CALL_REFERENCE);
    let before = p.ns.len();
    p.n.receive(0, &Message::clearing(cr, MessageType::ReleaseComplete, ie).to_bytes());
    p.pump();
    assert_eq!(p.ns.len(), before, "no answer to RELEASE COMPLETE");
    p.n.receive(0, &Message::new(cr, MessageType::StatusEnquiry).to_bytes());
    p.pump();
    assert_eq!(p.ns.last().unwrap().call_state(), Some(0));
    assert_eq!(p.n.call_count(), 0);
}

#[test]
fn malformed_and_unexpected_messages() {
    let mut p = Pair::new();
    // SETUP with a bearer capability of invalid contents: RELEASE COMPLETE cause 100.
    let mut setup = Message::new(CallRef::new(9, false), MessageType::Setup);
    setup.ies.push(Ie::Raw { codeset: 0, id: 0x04, bytes: vec![0x80] });
    let mut bytes = setup.to_bytes();
    p.n.receive(0, &bytes);
    p.pump();
    assert_eq!(last_cause(&p.ns, MessageType::ReleaseComplete), Some(Cause(100)));
    // SETUP without bearer capability: cause 96.
    bytes.truncate(5);
    p.n.receive(0, &bytes);
    p.pump();
    assert_eq!(last_cause(&p.ns, MessageType::ReleaseComplete), Some(Cause(96)));
    // SETUP to the user side without Channel identification: cause 96.
    let s = Message::setup(
        CallRef::new(3, false),
        BearerCapability::speech_alaw(),
        None,
        None,
        CalledNumber::new(0, 1, "1"),
    );
    p.u.receive(0, &s.to_bytes());
    p.pump();
    assert_eq!(last_cause(&p.us, MessageType::ReleaseComplete), Some(Cause(96)));
    assert_eq!(p.u.call_count() + p.n.call_count(), 0);
    // Unexpected CONNECT ACKNOWLEDGE in Call Present: STATUS cause 101 with our state.
    let h = p.u.setup(0, params("1", None, false)).unwrap();
    p.pump();
    let nh = p.incoming_n();
    let cr = p.us.last().unwrap().call_ref;
    p.n.receive(0, &Message::new(cr, MessageType::ConnectAck).to_bytes());
    p.pump();
    let st = p.ns.last().unwrap();
    assert_eq!((st.msg_type, st.call_state()), (MessageType::Status, Some(1)));
    assert_eq!(st.cause().unwrap().cause, Cause::WRONG_CALL_STATE);
    // Unknown message type: STATUS cause 97.
    p.n.receive(0, &Message::new(cr, MessageType::Unknown(0x33)).to_bytes());
    p.pump();
    assert_eq!(last_cause(&p.ns, MessageType::Status), Some(Cause(97)));
    // DISCONNECT without cause: acted on, cause 96 reported in RELEASE.
    p.u.receive(0, &Message::new(cr.reply(), MessageType::Disconnect).to_bytes());
    p.pump();
    assert_eq!(last_cause(&p.us, MessageType::Release), Some(Cause(96)));
    assert_eq!(p.u.call_state(h), CallState::Null);
    assert_eq!(p.n.call_state(nh), CallState::Null);
    // Garbage is ignored.
    p.n.receive(0, &[0x09, 0x02, 0, 1, 5]);
    p.n.receive(0, &[]);
    p.pump();
    assert_eq!(p.n.call_count(), 0);
}

#[test]
fn thirty_simultaneous_calls() {
    let mut p = Pair::new();
    let handles: Vec<CallHandle> =
        (0..30).map(|i| p.u.setup(0, params(&i.to_string(), None, false)).unwrap()).collect();
    p.pump();
    let incoming: Vec<CallHandle> =
        p.ne.iter()
            .filter_map(|e| match e {
                CallEvent::Incoming { call, .. } => Some(*call),
                _ => None,
            })
            .collect();
    assert_eq!(incoming.len(), 30);
    for &nh in &incoming {
        p.n.connect(0, nh).unwrap();
    }
    p.pump();
    let mut chans: Vec<u8> = handles.iter().map(|&h| p.u.call_channel(h).unwrap()).collect();
    chans.sort_unstable();
    assert_eq!(chans, cfg().channels);
    assert!(handles.iter().all(|&h| p.u.call_state(h) == CallState::Active));
    let extra = p.u.setup(0, params("x", None, false)).unwrap();
    p.pump();
    assert_eq!(released(&p.ue, extra), Some(Cause::NO_CIRCUIT_AVAILABLE));
    for &h in &handles {
        p.u.disconnect(0, h, Cause::NORMAL_CLEARING).unwrap();
    }
    p.pump();
    assert_eq!(p.u.call_count() + p.n.call_count(), 0);
}

#[test]
fn fuzz_entry_point_smoke() {
    call_fuzz_check(&[]);
    call_fuzz_check(&[2, 0, 8, 0, 3, 0, 16, 200, 16, 200, 16, 200]);
    let setup = Message::setup(
        CallRef::new(1, false),
        BearerCapability::speech_alaw(),
        Some(ChannelId::exclusive(1)),
        None,
        CalledNumber::new(0, 1, "1"),
    )
    .to_bytes();
    let mut script = vec![0u8, setup.len() as u8];
    script.extend(&setup);
    script.extend([3, 0, 9, 0, 1, 0, 18, 0, 16, 100, 19, 0]);
    call_fuzz_check(&script);
}

#[derive(Debug, Clone)]
enum Op {
    Setup(bool, Option<u8>, bool),
    OverlapSetup(bool),
    SetupAck(bool, usize),
    Info(bool, usize, bool),
    Proceed(bool, usize),
    Alert(bool, usize),
    Connect(bool, usize),
    Disconnect(bool, usize),
    Enquiry(bool, usize),
    Restart(bool, Option<u8>),
    Advance(u64),
    Cut(bool, bool),
    Deliver,
}

fn st(p: &mut Pair, user: bool) -> &mut Q931Stack {
    if user {
        &mut p.u
    } else {
        &mut p.n
    }
}

fn op() -> impl Strategy<Value = Op> {
    let side = any::<bool>();
    let idx = 0usize..8;
    let ch = proptest::option::of(1u8..=5);
    prop_oneof![
        4 => (side, ch.clone(), any::<bool>()).prop_map(|(s, c, e)| Op::Setup(s, c, e)),
        1 => side.prop_map(Op::OverlapSetup),
        1 => (side, idx.clone()).prop_map(|(s, i)| Op::SetupAck(s, i)),
        2 => (side, idx.clone(), any::<bool>()).prop_map(|(s, i, c)| Op::Info(s, i, c)),
        2 => (side, idx.clone()).prop_map(|(s, i)| Op::Proceed(s, i)),
        2 => (side, idx.clone()).prop_map(|(s, i)| Op::Alert(s, i)),
        3 => (side, idx.clone()).prop_map(|(s, i)| Op::Connect(s, i)),
        3 => (side, idx.clone()).prop_map(|(s, i)| Op::Disconnect(s, i)),
        1 => (side, idx).prop_map(|(s, i)| Op::Enquiry(s, i)),
        1 => (side, ch).prop_map(|(s, c)| Op::Restart(s, c)),
        2 => (0u64..40_000).prop_map(Op::Advance),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Cut(a, b)),
        3 => Just(Op::Deliver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_interleavings_keep_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut p = Pair::with(Q931Config { channels: vec![1, 2, 3, 4, 5], ..cfg() });
        // Messages are queued on the wire and delivered in batches, so requests on both
        // sides interleave with messages in flight.
        let mut wire: Vec<(bool, Vec<u8>)> = Vec::new();
        for op in ops {
            let now = p.now;
            let pick = |s: &Q931Stack, i: usize| {
                let v: Vec<CallHandle> = s.calls().collect();
                v.get(i % v.len().max(1)).copied().unwrap_or(CallHandle(0))
            };
            match op {
                Op::Setup(u, c, e) => drop(st(&mut p, u).setup(now, params("1", c, e))),
                Op::OverlapSetup(u) => drop(st(&mut p, u).setup(now, overlap_params("1"))),
                Op::SetupAck(u, i) => { let s = st(&mut p, u); let h = pick(s, i); { let _ = s.setup_ack(now, h); } }
                Op::Info(u, i, c) => { let s = st(&mut p, u); let h = pick(s, i); { let _ = s.information(now, h, "7", c); } }
                Op::Proceed(u, i) => { let s = st(&mut p, u); let h = pick(s, i); { let _ = s.proceeding(now, h); } }
                Op::Alert(u, i) => { let s = st(&mut p, u); let h = pick(s, i); { let _ = s.alerting(now, h); } }
                Op::Connect(u, i) => { let s = st(&mut p, u); let h = pick(s, i); { let _ = s.connect(now, h); } }
                Op::Disconnect(u, i) => {
                    let s = st(&mut p, u);
                    let h = pick(s, i);
                    let _ = s.disconnect(now, h, Cause::NORMAL_CLEARING);
                }
                Op::Enquiry(u, i) => { let s = st(&mut p, u); let h = pick(s, i); { let _ = s.status_enquiry(now, h); } }
                Op::Restart(u, c) => drop(st(&mut p, u).restart(now, c)),
                Op::Advance(ms) => {
                    let target = p.now + ms;
                    while let Some(t) = [p.u.next_timeout(), p.n.next_timeout()].into_iter().flatten().min() {
                        if t > target { break; }
                        p.now = p.now.max(t);
                        p.u.poll(p.now);
                        p.n.poll(p.now);
                    }
                    p.now = target;
                }
                Op::Cut(a, b) => { p.u2n = a; p.n2u = b; }
                Op::Deliver => {
                    for (to_user, b) in wire.drain(..) {
                        if to_user { p.u.receive(p.now, &b) } else { p.n.receive(p.now, &b) }
                    }
                }
            }
            while let Some(a) = p.u.poll_action() {
                if let Q931Action::Send(b) = a { if p.u2n { wire.push((false, b)) } }
            }
            while let Some(a) = p.n.poll_action() {
                if let Q931Action::Send(b) = a { if p.n2u { wire.push((true, b)) } }
            }
            p.u.assert_invariants();
            p.n.assert_invariants();
        }
        // Heal the wire, clear every call from both sides, let the timers run out.
        p.u2n = true;
        p.n2u = true;
        for (to_user, b) in wire.drain(..) {
            if to_user { p.u.receive(p.now, &b) } else { p.n.receive(p.now, &b) }
        }
        p.pump();
        for _ in 0..3 {
            for h in p.u.calls().collect::<Vec<_>>() { let _ = p.u.disconnect(p.now, h, Cause::NORMAL_CLEARING); }
            for h in p.n.calls().collect::<Vec<_>>() { let _ = p.n.disconnect(p.now, h, Cause::NORMAL_CLEARING); }
            p.pump();
            p.advance(400_000);
        }
        prop_assert_eq!(p.u.call_count(), 0);
        prop_assert_eq!(p.n.call_count(), 0);
        prop_assert_eq!(p.u.next_timeout(), None);
        prop_assert_eq!(p.n.next_timeout(), None);
        for ch in 1..=5 {
            prop_assert!(!p.u.channel_restarting(ch) && !p.n.channel_restarting(ch));
        }
    }

    #[test]
    fn fuzz_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        call_fuzz_check(&data);
    }
}

#[test]
fn progress_stops_t310_and_information_is_reported() {
    let mut p = Pair::new();
    let h = p.u.setup(0, params("1", None, false)).unwrap();
    p.pump();
    let nh = p.incoming_n();
    p.n.proceeding(0, nh).unwrap();
    p.n.progress(0, nh).unwrap();
    p.pump();
    assert!(p.ue.contains(&CallEvent::Progress { call: h, inband: true }));
    p.advance(100_000);
    assert_eq!(p.u.call_state(h), CallState::OutgoingProceeding, "T310 stopped");
    let cr = p.us[0].call_ref;
    let info = Message::new(cr, MessageType::Information)
        .with(Ie::CalledNumber(CalledNumber::new(0, 1, "42")));
    p.n.receive(0, &info.to_bytes());
    p.pump();
    assert!(p.ne.contains(&CallEvent::Information {
        call: nh,
        digits: "42".into(),
        complete: false
    }));
    assert_eq!(p.u.alerting(0, h), Err(CallError::InvalidState(CallState::OutgoingProceeding)));
    assert_eq!(p.u.connect(0, CallHandle(999)), Err(CallError::UnknownCall));
    // A STATUS with a non-null state for an unknown call reference: RELEASE COMPLETE 81.
    let st = Message::status(CallRef::new(300, true), CauseIe::new(Location::USER, Cause(30)), 10);
    p.n.receive(0, &st.to_bytes());
    p.pump();
    assert_eq!(last_cause(&p.ns, MessageType::ReleaseComplete), Some(Cause(81)));
}

#[test]
fn setup_carries_the_calling_number_presentation() {
    for (restricted, octet3a) in [(false, 0x80u8), (true, 0xA0)] {
        let mut q = Q931Stack::new(Side::User, cfg());
        q.link_up(0);
        let p = CallParams { calling_restricted: restricted, ..params("123", None, false) };
        q.setup(0, p).unwrap();
        let Some(Q931Action::Send(bytes)) = q.poll_action() else { panic!("SETUP sent") };
        let msg = Message::parse(&bytes).unwrap();
        let n = msg.calling_number().expect("calling number");
        let pres = n.presentation.expect("octet 3a");
        assert_eq!(pres.presentation, u8::from(restricted));
        let raw = msg.to_bytes();
        // Calling party number IE (0x6C): length, octet 3 (ton/npi, no ext), octet 3a.
        let at = raw.iter().position(|b| *b == 0x6C).unwrap();
        assert_eq!(raw[at + 3], octet3a);
    }
}

/// Interop regression (libpri network side): a first answer whose Channel identification
/// names no channel ("any") clears the call with cause 100 and the element's identifier as
/// diagnostic; an answer with no Channel identification at all gets cause 96.
#[test]
fn first_answer_without_a_channel_is_refused_with_the_right_cause() {
    for (cid, cause) in [(Some(ChannelId::any()), 100u8), (None, 96)] {
        let mut q = Q931Stack::new(Side::User, cfg());
        q.link_up(0);
        let h = q.setup(0, params("123", None, false)).unwrap();
        while q.poll_action().is_some() {}
        let mut cp = Message::new(CallRef::new(1, true), MessageType::CallProceeding);
        if let Some(c) = cid {
            cp = cp.with(Ie::ChannelId(c));
        }
        q.receive(0, &cp.to_bytes());
        let sent: Vec<Message> = std::iter::from_fn(|| q.poll_action())
            .filter_map(|a| match a {
                Q931Action::Send(b) => Some(Message::parse(&b).unwrap()),
                Q931Action::Event(_) => None,
            })
            .collect();
        let rel = sent.iter().find(|m| m.msg_type == MessageType::Release).expect("RELEASE");
        let c = rel.cause().expect("cause");
        assert_eq!(c.cause, Cause(cause));
        assert_eq!(c.diagnostics, vec![0x18]);
        assert_eq!(q.call_state(h), CallState::ReleaseRequest);
    }
}

fn overlap_params(called: &str) -> CallParams {
    CallParams { overlap: true, ..params(called, None, false) }
}

#[test]
fn overlap_sending_collects_digits_until_sending_complete() {
    let mut p = Pair::new();
    let h = p.u.setup(0, overlap_params("12")).unwrap();
    p.pump();
    assert!(!p.us[0].sending_complete(), "an overlap SETUP has no Sending complete");
    let nh = p.incoming_n();
    assert!(matches!(
        p.ne.last(),
        Some(CallEvent::Incoming { sending_complete: false, called, .. }) if called == "12"
    ));
    p.n.setup_ack(0, nh).unwrap();
    p.pump();
    assert_eq!(types(&p.ns), vec![MessageType::SetupAck]);
    assert_eq!(p.n.call_state(nh), CallState::OverlapReceiving);
    assert_eq!(p.n.call_state(nh).q931_value(Side::Network), 2);
    assert_eq!(p.u.call_state(h), CallState::OverlapSending);
    assert_eq!(p.u.call_state(h).q931_value(Side::User), 2);
    let ch = p.n.call_channel(nh).unwrap();
    assert!(p.ue.contains(&CallEvent::SetupAck { call: h, channel: ch }));
    p.u.information(0, h, "34", false).unwrap();
    p.u.information(0, h, "5", true).unwrap();
    p.pump();
    assert!(p.ne.contains(&CallEvent::Information {
        call: nh,
        digits: "34".into(),
        complete: false
    }));
    assert!(p.ne.contains(&CallEvent::Information {
        call: nh,
        digits: "5".into(),
        complete: true
    }));
    p.n.proceeding(0, nh).unwrap();
    p.n.connect(0, nh).unwrap();
    p.pump();
    assert_eq!(p.u.call_state(h), CallState::Active);
    assert_eq!(p.n.call_state(nh), CallState::Active);
    // No timer left from the overlap phase.
    p.advance(60_000);
    assert_eq!(p.u.call_state(h), CallState::Active);
}

#[test]
fn t302_expiry_reports_a_digit_timeout_and_is_restarted_by_each_information() {
    let mut p = Pair::new();
    let h = p.u.setup(0, overlap_params("1")).unwrap();
    p.pump();
    let nh = p.incoming_n();
    p.n.setup_ack(0, nh).unwrap();
    p.pump();
    p.advance(10_000);
    p.u.information(p.now, h, "2", false).unwrap();
    p.pump();
    p.advance(10_000);
    assert!(!p.ne.contains(&CallEvent::DigitTimeout { call: nh }), "T302 restarted by INFORMATION");
    p.advance(5_001);
    assert!(p.ne.contains(&CallEvent::DigitTimeout { call: nh }));
    // The application decides: here the number is incomplete, cause 28.
    p.n.disconnect(p.now, nh, Cause(28)).unwrap();
    p.pump();
    assert_eq!(released(&p.ue, h), Some(Cause(28)));
}

#[test]
fn t304_expiry_clears_the_overlap_call_with_cause_102() {
    let mut p = Pair::new();
    p.u.setup(0, overlap_params("1")).unwrap();
    p.pump();
    let nh = p.incoming_n();
    p.n.setup_ack(0, nh).unwrap();
    p.pump();
    // The network goes quiet (keeps collecting); T304 (30 s) runs out first on the user side
    // when T302 is longer.
    p.n2u = false;
    p.u2n = false;
    p.advance(30_001);
    assert!(types(&p.us).contains(&MessageType::Disconnect));
    let d = p.us.iter().find(|m| m.msg_type == MessageType::Disconnect).unwrap();
    assert_eq!(d.cause().unwrap().cause, Cause::RECOVERY_ON_TIMER_EXPIRY);
}

#[test]
fn information_is_refused_outside_overlap_sending() {
    let mut p = Pair::new();
    let h = p.u.setup(0, params("123", None, false)).unwrap();
    p.pump();
    assert_eq!(
        p.u.information(0, h, "4", true),
        Err(CallError::InvalidState(CallState::CallInitiated))
    );
    let nh = p.incoming_n();
    p.n.proceeding(0, nh).unwrap();
    assert_eq!(p.n.setup_ack(0, nh), Err(CallError::InvalidState(CallState::IncomingProceeding)));
}
