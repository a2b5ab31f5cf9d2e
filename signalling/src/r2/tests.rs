//! Back-to-back tests of two R2 channels (A calls B unless said otherwise), virtual time only.

use super::fuzz::{End, Wire};
use super::*;
use proptest::prelude::*;

fn cfg() -> R2Config {
    R2Config::default()
}

fn wire() -> Wire {
    Wire::new(R2Config { glare_priority: true, ..cfg() }, cfg())
}

fn offered(ev: &[R2Event]) -> Option<(String, String, u8)> {
    ev.iter().find_map(|e| match e {
        R2Event::Offered { dnis, ani, category, .. } => {
            Some((dnis.to_string(), ani.to_string(), *category))
        }
        _ => None,
    })
}

fn cleared(ev: &[R2Event]) -> Vec<ClearReason> {
    ev.iter()
        .filter_map(|e| match e {
            R2Event::Cleared { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn both_idle(w: &Wire) {
    w.check();
    assert_eq!(w.a.state(), LineState::Idle);
    assert_eq!(w.b.state(), LineState::Idle);
    assert_eq!(w.a.tx_abcd().bits(), 0b1011, "China idle is 1011");
    assert_eq!(w.b.tx_abcd().bits(), 0b1011);
    assert_eq!(w.a.mf_tone(), None);
    assert_eq!(w.b.mf_tone(), None);
    assert!(w.events_a.ends_with(&[R2Event::Idle]), "{:?}", w.events_a);
    assert!(w.events_b.ends_with(&[R2Event::Idle]), "{:?}", w.events_b);
}

/// Place a call A→B and run until B has it offered.
fn call_to_offer(w: &mut Wire, dnis: &str, ani: &str) -> (String, String, u8) {
    w.a.make_call(w.now, dnis, ani, 1).unwrap();
    w.run(2000);
    w.check();
    offered(&w.events_b).expect("call offered")
}

fn answered_call(w: &mut Wire) {
    let got = call_to_offer(w, "12345678", "13800138000");
    assert_eq!(got, ("1234".into(), "13800138000".into(), 1), "max_dnis 4 by default");
    w.b.accept(w.now, BSignal::FreeCharge).unwrap();
    w.run(500);
    assert!(w.events_a.contains(&R2Event::Accepted { b: BSignal::FreeCharge }));
    w.b.answer(w.now).unwrap();
    w.run(500);
    assert_eq!(w.events_a.last(), Some(&R2Event::Answered));
    assert_eq!(w.a.state(), LineState::OutAnswered);
    assert_eq!(w.b.state(), LineState::InAnswered);
    assert_eq!(w.a.tx_abcd().bits(), 0b0011);
    assert_eq!(w.b.tx_abcd().bits(), 0b0111);
    w.check();
}

#[test]
fn full_call_cleared_by_caller() {
    let mut w = wire();
    answered_call(&mut w);
    w.a.hangup(w.now);
    w.run(1000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::LocalHangup]);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::RemoteHangup]);
    both_idle(&w);
    // The circuit is reusable.
    w.events_b.clear();
    assert!(call_to_offer(&mut w, "4321", "").0 == "4321");
}

#[test]
fn full_call_cleared_by_called() {
    let mut w = wire();
    answered_call(&mut w);
    w.b.hangup(w.now);
    // B sends clear back (11) and waits for clear forward.
    w.pump();
    assert_eq!(w.b.state(), LineState::InClearBack);
    w.run(1000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::RemoteHangup]);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::LocalHangup]);
    both_idle(&w);
}

#[test]
fn ani_first_dnis_first_and_dnis_timeout() {
    for ani_first in [true, false] {
        for max_dnis in [0u8, 3, 8] {
            let b = R2Config { get_ani_first: ani_first, max_dnis, ..cfg() };
            let mut w = Wire::new(cfg(), b);
            w.mf_delay = 40;
            w.a.make_call(0, "10086123", "075512345678", 2).unwrap();
            w.run(20_000);
            let want_dnis = if max_dnis == 3 { "100" } else { "10086123" };
            assert_eq!(
                offered(&w.events_b),
                Some((want_dnis.into(), "075512345678".into(), 2)),
                "ani_first {ani_first} max_dnis {max_dnis}"
            );
            w.b.accept(w.now, BSignal::FreeNoCharge).unwrap();
            w.run(1000);
            assert!(w.events_a.contains(&R2Event::Accepted { b: BSignal::FreeNoCharge }));
            w.a.hangup(w.now);
            w.run(1000);
            both_idle(&w);
        }
    }
}

#[test]
fn busy_and_vacant() {
    for (b, reason) in [
        (BSignal::Busy, ClearReason::Rejected(BSignal::Busy)),
        (BSignal::Unallocated, ClearReason::Rejected(BSignal::Unallocated)),
        (BSignal::Congestion, ClearReason::Rejected(BSignal::Congestion)),
    ] {
        let mut w = wire();
        call_to_offer(&mut w, "5555", "1");
        w.b.accept(w.now, b).unwrap();
        assert_eq!(w.b.answer(w.now), Err(R2Error::NotAnswerable));
        w.run(1000);
        assert_eq!(cleared(&w.events_a), vec![reason]);
        assert_eq!(cleared(&w.events_b), vec![ClearReason::RemoteHangup]);
        both_idle(&w);
    }
}

#[test]
fn seize_ack_timeout() {
    let mut w = wire();
    w.cut_abcd[End::A as usize] = true; // B never hears the seizure
    w.a.make_call(0, "1234", "", 1).unwrap();
    w.run(7999);
    assert_eq!(w.a.state(), LineState::SeizeSent);
    w.run(1);
    assert!(w
        .events_a
        .contains(&R2Event::ProtocolError { error: R2ProtocolError::SeizeAckTimeout }));
    assert_eq!(cleared(&w.events_a), vec![ClearReason::SeizeAckTimeout]);
    assert_eq!(w.a.state(), LineState::Idle);
    assert_eq!(w.a.tx_abcd().bits(), 0b1011);
    w.check();
}

#[test]
fn mf_timeout_forward_side() {
    // B's back-cycle timer is made longer than A's forward safety so that A's fires first.
    let mut w = Wire::new(cfg(), R2Config { mf_back_cycle_ms: 60_000, ..cfg() });
    w.cut_mf[End::B as usize] = true; // A never hears backward tones
    w.a.make_call(0, "1234", "99", 1).unwrap();
    w.run(29_000);
    assert!(cleared(&w.events_a).is_empty());
    assert_eq!(w.a.mf_tone(), Some(1), "first digit still on");
    w.run(2000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::MfTimeout]);
    w.run(1000);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::RemoteHangup]);
    both_idle(&w);
}

#[test]
fn mf_timeout_backward_side() {
    let mut w = wire();
    w.cut_mf[End::A as usize] = true; // B never hears forward tones
    w.a.make_call(0, "1234", "99", 1).unwrap();
    w.run(4000);
    assert!(cleared(&w.events_b).is_empty());
    w.run(2000);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::MfTimeout]);
    assert!(w.events_b.contains(&R2Event::ProtocolError { error: R2ProtocolError::MfTimeout }));
    w.run(1000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::ForcedRelease]);
    both_idle(&w);
}

#[test]
fn no_answer_timeout() {
    let mut w = wire();
    call_to_offer(&mut w, "1234", "");
    w.b.accept(w.now, BSignal::FreeCharge).unwrap();
    w.run(59_000);
    assert!(cleared(&w.events_a).is_empty());
    w.run(2000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::NoAnswer]);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::RemoteHangup]);
    both_idle(&w);
}

#[test]
fn blocking_both_ways() {
    let mut w = wire();
    w.b.block(0);
    w.run(100);
    assert_eq!(w.b.state(), LineState::Blocked);
    assert_eq!(w.b.tx_abcd().bits(), 0b1111);
    assert_eq!(w.events_a, vec![R2Event::RemoteBlocked]);
    assert_eq!(w.a.make_call(w.now, "1", "", 1), Err(R2Error::NotIdle(LineState::RemoteBlocked)));
    assert!(matches!(w.b.make_call(w.now, "1", "", 1), Err(R2Error::NotIdle(_))));
    // A seizure against the block is reported and ignored.
    w.b.abcd_received(w.now, Abcd::new(0b0011));
    w.run(100);
    assert!(w
        .events_b
        .contains(&R2Event::ProtocolError { error: R2ProtocolError::SeizedWhileBlocked }));
    assert_eq!(w.b.state(), LineState::Blocked);
    w.b.abcd_received(w.now, Abcd::new(0b1011));
    w.b.unblock(w.now);
    w.run(100);
    assert_eq!(w.events_a.last(), Some(&R2Event::RemoteUnblocked));
    assert_eq!(w.a.state(), LineState::Idle);
    // Blocking during a call takes effect after it.
    answered_call(&mut w);
    w.a.block(w.now);
    assert_eq!(w.a.state(), LineState::OutAnswered);
    w.a.hangup(w.now);
    w.run(1000);
    assert_eq!(w.a.state(), LineState::Blocked);
    assert_eq!(w.b.state(), LineState::RemoteBlocked);
    w.check();
}

#[test]
fn glare_priority_end_keeps_its_call() {
    let mut w = wire(); // A has priority
    w.a.make_call(0, "1111", "7", 1).unwrap();
    w.b.make_call(0, "2222", "8", 1).unwrap();
    w.run(3000);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::GlareLost]);
    assert_eq!(offered(&w.events_b), Some(("1111".into(), "7".into(), 1)));
    assert!(cleared(&w.events_a).is_empty());
    w.b.accept(w.now, BSignal::FreeCharge).unwrap();
    w.b.answer(w.now).unwrap();
    w.run(500);
    assert!(w.events_a.contains(&R2Event::Answered));
    w.b.hangup(w.now);
    w.run(1000);
    both_idle(&w);
}

#[test]
fn unexpected_abcd() {
    // Outgoing, seized and acknowledged, then the far end shows idle: clear and recover.
    let mut c = R2Channel::new(3, cfg());
    c.make_call(0, "12", "", 1).unwrap();
    c.abcd_received(10, Abcd::new(0b1111));
    c.poll(40);
    assert_eq!(c.state(), LineState::OutSeized);
    assert_eq!(c.mf_tone(), Some(1));
    c.abcd_received(50, Abcd::new(0b1011));
    c.poll(80);
    let ev: Vec<_> = std::iter::from_fn(|| c.poll_action())
        .filter_map(|a| match a {
            R2Action::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(ev.contains(&R2Event::ProtocolError {
        error: R2ProtocolError::UnexpectedAbcd {
            ab: 0b10,
            state: LineState::OutSeized,
            cleared: true
        }
    }));
    assert!(ev.contains(&R2Event::Cleared { reason: ClearReason::ProtocolError }));
    assert_eq!(ev.last(), Some(&R2Event::Idle));
    assert_eq!(c.state(), LineState::Idle);
    assert_eq!(c.mf_tone(), None);
    c.check_invariants().unwrap();

    // Incoming: a forward pattern with B set is ignored.
    let mut c = R2Channel::new(4, cfg());
    c.abcd_received(0, Abcd::new(0b0011));
    c.poll(20);
    assert_eq!(c.state(), LineState::InSeized);
    c.abcd_received(30, Abcd::new(0b0111));
    c.poll(60);
    assert_eq!(c.state(), LineState::InSeized);
    let errs = std::iter::from_fn(|| c.poll_action())
        .filter(|a| matches!(a, R2Action::Event(R2Event::ProtocolError { .. })))
        .count();
    assert_eq!(errs, 1);
    c.check_invariants().unwrap();
}

#[test]
fn abcd_glitch_is_debounced() {
    let mut c = R2Channel::new(5, cfg());
    c.abcd_received(0, Abcd::new(0b0011));
    c.abcd_received(15, Abcd::new(0b1011));
    c.poll(100);
    assert_eq!(c.state(), LineState::Idle);
    assert_eq!(c.poll_action(), None);
    c.abcd_received(200, Abcd::new(0b0011));
    assert_eq!(c.next_timeout(), Some(220));
    c.poll(220);
    assert_eq!(c.state(), LineState::InSeized);
    assert_eq!(c.poll_action(), Some(R2Action::MfListen(Some(MfDirection::Forward))));
    assert_eq!(c.poll_action(), Some(R2Action::SetAbcd(Abcd::new(0b1111))));
}

#[test]
fn api_errors() {
    let mut c = R2Channel::new(6, cfg());
    assert_eq!(c.make_call(0, "", "1", 1), Err(R2Error::BadNumber));
    assert_eq!(c.make_call(0, "12a", "1", 1), Err(R2Error::BadNumber));
    assert_eq!(c.make_call(0, "12", "1", 0), Err(R2Error::BadCategory(0)));
    assert_eq!(c.accept(0, BSignal::FreeCharge), Err(R2Error::NotOffered));
    assert_eq!(c.answer(0), Err(R2Error::NotAnswerable));
    c.hangup(0);
    assert_eq!(c.poll_action(), None);
    c.make_call(0, "1", "", 1).unwrap();
    assert!(matches!(c.make_call(0, "1", "", 1), Err(R2Error::NotIdle(LineState::SeizeSent))));
}

#[test]
fn fuzz_seeds_do_not_panic() {
    fuzz_check(&[]);
    fuzz_check(&[0x45, 2, 0x1d, 0, 50, 3, 0, 4, 0, 0, 50, 5, 0]);
    fuzz_check(&[0, 0x82, 3, 2, 1, 0, 200, 0x85, 0, 8, 0x03, 0x88, 0x0b, 0, 255]);
}

#[test]
fn fuzz_corpus_seeds_reach_their_targets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/r2");
    let seed = |name: &str| super::fuzz::run_script(&std::fs::read(dir.join(name)).unwrap());
    let w = seed("call-caller-clears");
    assert!(w.events_a.contains(&R2Event::Answered));
    assert_eq!(cleared(&w.events_b), vec![ClearReason::RemoteHangup]);
    let w = seed("call-called-clears");
    assert_eq!(cleared(&w.events_a), vec![ClearReason::RemoteHangup]);
    let w = seed("busy-b2");
    assert_eq!(cleared(&w.events_a), vec![ClearReason::Rejected(BSignal::Busy)]);
    let w = seed("vacant-b5");
    assert_eq!(cleared(&w.events_a), vec![ClearReason::Rejected(BSignal::Unallocated)]);
    let w = seed("glare");
    assert_eq!(cleared(&w.events_b)[0], ClearReason::GlareLost);
    assert!(w.events_a.contains(&R2Event::Answered));
    let w = seed("seize-ack-timeout");
    assert_eq!(cleared(&w.events_a), vec![ClearReason::SeizeAckTimeout]);
    let w = seed("mf-timeout");
    assert_eq!(cleared(&w.events_b), vec![ClearReason::MfTimeout]);
    let w = seed("blocking");
    assert!(w.events_a.contains(&R2Event::RemoteBlocked));
    assert!(offered(&w.events_b).is_some());
    let w = seed("dnis-timeout-dnis-first");
    assert_eq!(offered(&w.events_b).map(|o| o.0), Some("13800138000".to_string()));
    assert!(w.events_a.contains(&R2Event::Answered));
    let w = seed("injected-garbage");
    assert!(w
        .events_a
        .iter()
        .chain(&w.events_b)
        .any(|e| matches!(e, R2Event::ProtocolError { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_numbers_arrive_intact(
        dnis in "[0-9]{1,12}",
        ani in "[0-9]{0,16}",
        ani_first in any::<bool>(),
        exact in any::<bool>(),
        delay in 0u64..60,
    ) {
        let max_dnis = if exact { dnis.len() as u8 } else { 0 };
        let b = R2Config { get_ani_first: ani_first, max_dnis, ..cfg() };
        let mut w = Wire::new(cfg(), b);
        w.mf_delay = delay;
        w.a.make_call(0, &dnis, &ani, 1).unwrap();
        w.run(30_000);
        w.check();
        prop_assert_eq!(offered(&w.events_b), Some((dnis.clone(), ani.clone(), 1)));
        w.b.accept(w.now, BSignal::FreeCharge).unwrap();
        w.b.answer(w.now).unwrap();
        w.run(1000);
        prop_assert!(w.events_a.contains(&R2Event::Answered));
        w.b.hangup(w.now);
        w.run(1000);
        both_idle(&w);
    }

    #[test]
    fn fuzz_check_random(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_check(&data);
    }
}

#[test]
fn called_side_hangs_up_while_offered() {
    let mut w = wire();
    call_to_offer(&mut w, "1234", "5");
    w.b.hangup(w.now);
    w.pump();
    assert_eq!(w.b.state(), LineState::InForcedRelease);
    assert_eq!(w.b.tx_abcd().bits(), 0b0011, "forced release 00");
    w.run(1000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::ForcedRelease]);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::LocalHangup]);
    both_idle(&w);
}

#[test]
fn caller_hangs_up_during_register_signalling() {
    let mut w = wire();
    w.mf_delay = 40;
    w.a.make_call(0, "1234", "87654321", 1).unwrap();
    w.run(300);
    assert!(w.a.mf_tone().is_some() || w.b.mf_tone().is_some(), "MF in progress");
    w.a.hangup(w.now);
    w.run(1000);
    assert_eq!(cleared(&w.events_a), vec![ClearReason::LocalHangup]);
    assert_eq!(cleared(&w.events_b), vec![ClearReason::RemoteHangup]);
    assert!(offered(&w.events_b).is_none());
    both_idle(&w);
}

#[test]
fn events_serialize() {
    let e = R2Event::Offered {
        dnis: Digits::parse("1234").unwrap(),
        ani: Digits::parse("99").unwrap(),
        ani_restricted: false,
        category: 1,
    };
    let j = serde_json::to_string(&e).unwrap();
    assert_eq!(
        j,
        r#"{"event":"offered","dnis":"1234","ani":"99","ani_restricted":false,"category":1}"#
    );
    let c =
        serde_json::to_string(&R2Event::Cleared { reason: ClearReason::Rejected(BSignal::Busy) })
            .unwrap();
    assert_eq!(c, r#"{"event":"cleared","reason":{"rejected":"busy"}}"#);
    let cfg: R2Config = serde_json::from_str(r#"{"max_dnis": 8, "get_ani_first": false}"#).unwrap();
    assert_eq!((cfg.max_dnis, cfg.get_ani_first, cfg.cd_bits), (8, false, 0b11));
}
