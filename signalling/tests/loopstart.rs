//! Scenario tests of the analog loop-start line machines on a virtual clock.

use cardpbx_hal::{ChannelId, FxoCommand, FxsCommand, HalEvent, Tick};
use cardpbx_signalling::loopstart::*;

const CH: ChannelId = ChannelId(3);
const OTHER: ChannelId = ChannelId(4);

fn fxs() -> FxsLine {
    FxsLine::new(CH, FxsConfig::default())
}

fn fxo() -> FxoLine {
    FxoLine::new(CH, FxoConfig::default())
}

fn fxs_out(l: &mut FxsLine) -> (Vec<FxsCommand>, Vec<FxsEvent>) {
    (
        std::iter::from_fn(|| l.poll_command()).collect(),
        std::iter::from_fn(|| l.poll_event()).collect(),
    )
}

fn fxo_out(l: &mut FxoLine) -> (Vec<FxoCommand>, Vec<FxoEvent>) {
    (
        std::iter::from_fn(|| l.poll_command()).collect(),
        std::iter::from_fn(|| l.poll_event()).collect(),
    )
}

/// An FXS line whose phone went off-hook at 0 and on-hook at `on_at`, outputs drained.
fn fxs_on_hook_at(on_at: Tick) -> FxsLine {
    let mut l = fxs();
    l.handle_hal(0, &HalEvent::OffHook(CH));
    l.handle_hal(on_at, &HalEvent::OnHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::OffHook]));
    assert_eq!(l.state(), FxsState::OnHookPending);
    l
}

// ---------------------------------------------------------------- FXS: hook, flash, hang-up

#[test]
fn fxs_seizure_reports_off_hook() {
    let mut l = fxs();
    assert_eq!(l.state(), FxsState::Idle);
    assert_eq!(l.poll_timeout(), None);
    l.handle_hal(10, &HalEvent::OffHook(CH));
    assert_eq!(l.state(), FxsState::OffHook);
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::OffHook]));
    // A repeated off-hook is not a second seizure.
    l.handle_hal(20, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
}

#[test]
fn fxs_ignores_other_channels_and_other_events() {
    let mut l = fxs();
    l.handle_hal(10, &HalEvent::OffHook(OTHER));
    l.handle_hal(10, &HalEvent::RingBegin(CH));
    l.handle_hal(10, &HalEvent::PolarityReversal(CH));
    l.handle_hal(10, &HalEvent::CardGone);
    l.handle_hal(10, &HalEvent::OnHook(CH)); // already on-hook
    assert_eq!(l.state(), FxsState::Idle);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    l.handle_hal(20, &HalEvent::OffHook(CH));
    l.handle_hal(30, &HalEvent::OnHook(OTHER));
    assert_eq!(l.state(), FxsState::OffHook);
}

#[test]
fn fxs_break_shorter_than_flash_min_is_bounce() {
    let mut l = fxs_on_hook_at(1000);
    l.handle_hal(1079, &HalEvent::OffHook(CH)); // 79 ms < 80
    assert_eq!(l.state(), FxsState::OffHook);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    assert_eq!(l.poll_timeout(), None, "the hang-up timer is cancelled");
}

#[test]
fn fxs_break_of_exactly_flash_min_is_flash() {
    let mut l = fxs_on_hook_at(1000);
    l.handle_hal(1080, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::Flash]));
    assert_eq!(l.state(), FxsState::OffHook);
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn fxs_break_of_exactly_flash_max_is_flash() {
    let mut l = fxs_on_hook_at(1000);
    assert_eq!(l.poll_timeout(), Some(1601), "hang-up once the on-hook outlasts 600 ms");
    l.handle_timeout(1600);
    assert_eq!(l.state(), FxsState::OnHookPending);
    l.handle_hal(1600, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::Flash]));
}

#[test]
fn fxs_on_hook_longer_than_flash_max_is_hangup() {
    let mut l = fxs_on_hook_at(1000);
    l.handle_timeout(1600);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    l.handle_timeout(1601);
    assert_eq!(l.state(), FxsState::Idle);
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::Hangup]));
    assert_eq!(l.poll_timeout(), None);
    // Lifting the handset again is a new seizure, not a flash.
    l.handle_hal(1700, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::OffHook]));
}

#[test]
fn fxs_late_off_hook_without_timeout_call_is_hangup_then_seizure() {
    let mut l = fxs_on_hook_at(1000);
    l.handle_hal(1601, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::Hangup, FxsEvent::OffHook]));
    assert_eq!(l.state(), FxsState::OffHook);
}

#[test]
fn fxs_custom_flash_window() {
    let cfg = FxsConfig { flash_min_ms: 300, flash_max_ms: 1000, ..FxsConfig::default() };
    let mut l = FxsLine::new(CH, cfg);
    l.handle_hal(0, &HalEvent::OffHook(CH));
    l.handle_hal(100, &HalEvent::OnHook(CH));
    l.handle_hal(399, &HalEvent::OffHook(CH)); // 299 ms: bounce
    l.handle_hal(500, &HalEvent::OnHook(CH));
    l.handle_hal(1500, &HalEvent::OffHook(CH)); // 1000 ms: flash
    l.handle_hal(2000, &HalEvent::OnHook(CH));
    assert_eq!(l.poll_timeout(), Some(3001));
    l.handle_timeout(3001);
    assert_eq!(
        fxs_out(&mut l),
        (vec![], vec![FxsEvent::OffHook, FxsEvent::Flash, FxsEvent::Hangup])
    );
}

#[test]
fn fxs_snapshot_shows_pending_on_hook() {
    let l = fxs_on_hook_at(1000);
    let s = l.snapshot();
    assert_eq!(s.state, FxsState::OnHookPending);
    assert_eq!(s.on_hook_since, Some(1000));
    assert_eq!(s.hangup_at, Some(1601));
    assert_eq!(s.ring, None);
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["state"], "on_hook_pending");
    assert_eq!(json["hangup_at"], 1601);
}

// ---------------------------------------------------------------- FXS: ringing

#[test]
fn fxs_ring_cadence_to_the_millisecond() {
    let mut l = fxs();
    l.ring(100).unwrap();
    assert_eq!(l.state(), FxsState::Ringing);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOn], vec![]));
    assert_eq!(l.poll_timeout(), Some(1100));
    l.handle_timeout(1099);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    l.handle_timeout(1100);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOff], vec![FxsEvent::FirstRingEnded]));
    assert_eq!(l.poll_timeout(), Some(5100));
    let p = l.ring_phase().unwrap();
    assert_eq!((p.voltage_on, p.segment, p.cycle, p.segment_ends_at), (false, 1, 0, 5100));
    assert!(p.first_ring_ended);
    l.handle_timeout(5099);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    l.handle_timeout(5100);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOn], vec![]));
    assert_eq!(l.poll_timeout(), Some(6100));
    l.handle_timeout(6100);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOff], vec![]), "FirstRingEnded only once");
    l.handle_timeout(10_100);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOn], vec![]));
    assert_eq!(l.ring_phase().unwrap().cycle, 2);
}

#[test]
fn fxs_uk_double_ring_first_ring_ends_after_second_burst() {
    let cfg = FxsConfig { ring_cadence: RingCadence::UK, ..FxsConfig::default() };
    let mut l = FxsLine::new(CH, cfg);
    l.ring(0).unwrap();
    assert_eq!(fxs_out(&mut l).0, vec![FxsCommand::RingOn]);
    let mut seen = Vec::new();
    while let Some(t) = l.poll_timeout() {
        if t > 3400 {
            break;
        }
        l.handle_timeout(t);
        let (c, e) = fxs_out(&mut l);
        seen.push((t, c, e));
    }
    use FxsCommand::*;
    assert_eq!(
        seen,
        vec![
            (400, vec![RingOff], vec![]),
            (600, vec![RingOn], vec![]),
            (1000, vec![RingOff], vec![FxsEvent::FirstRingEnded]),
            (3000, vec![RingOn], vec![]),
            (3400, vec![RingOff], vec![]),
        ]
    );
}

#[test]
fn fxs_late_timeout_call_catches_up_with_one_command() {
    let mut l = fxs();
    l.ring(0).unwrap();
    fxs_out(&mut l);
    // 12 345 ms is in cycle 2 (5 s cycles), 2 345 ms in: the silent segment ending at 15 000.
    l.handle_timeout(12_345);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOff], vec![FxsEvent::FirstRingEnded]));
    let p = l.ring_phase().unwrap();
    assert_eq!((p.voltage_on, p.segment, p.cycle, p.segment_ends_at), (false, 1, 2, 15_000));
    // Very late, landing in a ring burst again: voltage was off, so one RingOn.
    l.handle_timeout(1_000_000_500);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOn], vec![]));
    assert_eq!(l.poll_timeout(), Some(1_000_001_000));
}

#[test]
fn fxs_answer_during_ring_on() {
    let mut l = fxs();
    l.ring(0).unwrap();
    fxs_out(&mut l);
    l.handle_hal(500, &HalEvent::OffHook(CH));
    assert_eq!(l.state(), FxsState::OffHook);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOff], vec![FxsEvent::Answered]));
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(l.ring_phase(), None);
}

#[test]
fn fxs_answer_during_ring_off_sends_no_ring_off() {
    let mut l = fxs();
    l.ring(0).unwrap();
    l.handle_timeout(1000);
    fxs_out(&mut l);
    l.handle_hal(3000, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![FxsEvent::Answered]));
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn fxs_answer_at_segment_boundary_sends_one_ring_off() {
    let mut l = fxs();
    l.ring(0).unwrap();
    fxs_out(&mut l);
    l.handle_hal(1000, &HalEvent::OffHook(CH));
    assert_eq!(
        fxs_out(&mut l),
        (vec![FxsCommand::RingOff], vec![FxsEvent::FirstRingEnded, FxsEvent::Answered])
    );
}

#[test]
fn fxs_answered_call_then_hangup() {
    let mut l = fxs();
    l.ring(0).unwrap();
    l.handle_hal(200, &HalEvent::OffHook(CH));
    l.handle_hal(30_000, &HalEvent::OnHook(CH));
    l.handle_timeout(30_601);
    assert_eq!(
        fxs_out(&mut l),
        (vec![FxsCommand::RingOn, FxsCommand::RingOff], vec![FxsEvent::Answered, FxsEvent::Hangup])
    );
    assert_eq!(l.state(), FxsState::Idle);
}

#[test]
fn fxs_on_hook_report_while_ringing_is_ignored() {
    let mut l = fxs();
    l.ring(0).unwrap();
    l.handle_hal(300, &HalEvent::OnHook(CH));
    assert_eq!(l.state(), FxsState::Ringing);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOn], vec![]));
    assert_eq!(l.poll_timeout(), Some(1000));
}

#[test]
fn fxs_stop_ring_during_burst_and_during_silence() {
    let mut l = fxs();
    l.ring(0).unwrap();
    l.stop_ring(400);
    assert_eq!(l.state(), FxsState::Idle);
    assert_eq!(fxs_out(&mut l), (vec![FxsCommand::RingOn, FxsCommand::RingOff], vec![]));
    assert_eq!(l.poll_timeout(), None);

    l.ring(10_000).unwrap();
    l.handle_timeout(11_000);
    fxs_out(&mut l);
    l.stop_ring(12_000);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]), "voltage already off");
    assert_eq!(l.state(), FxsState::Idle);
    // A second stop, or a stop on an idle line, does nothing.
    l.stop_ring(12_001);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    // Ringing can start again and the cadence restarts from its first burst.
    l.ring(20_000).unwrap();
    assert_eq!(l.poll_timeout(), Some(21_000));
}

#[test]
fn fxs_ring_refused_unless_idle() {
    let mut l = fxs();
    l.ring(0).unwrap();
    assert_eq!(l.ring(1), Err(FxsError::NotIdle(FxsState::Ringing)));
    l.handle_hal(2, &HalEvent::OffHook(CH));
    assert_eq!(l.ring(3), Err(FxsError::NotIdle(FxsState::OffHook)));
    l.handle_hal(4, &HalEvent::OnHook(CH));
    assert_eq!(l.ring(5), Err(FxsError::NotIdle(FxsState::OnHookPending)));
    assert_eq!(l.ring(605), Ok(()), "after the hang-up is confirmed");
    let (cmds, evs) = fxs_out(&mut l);
    assert_eq!(cmds, vec![FxsCommand::RingOn, FxsCommand::RingOff, FxsCommand::RingOn]);
    assert_eq!(evs, vec![FxsEvent::Answered, FxsEvent::Hangup]);
}

#[test]
fn fxs_polarity_commands_only_on_change() {
    let mut l = fxs();
    l.reverse_polarity(0, false);
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    l.reverse_polarity(1, true);
    l.reverse_polarity(2, true);
    assert!(l.snapshot().polarity_reversed);
    l.reverse_polarity(3, false);
    assert_eq!(
        fxs_out(&mut l),
        (vec![FxsCommand::SetPolarity(true), FxsCommand::SetPolarity(false)], vec![])
    );
}

#[test]
fn fxs_time_running_backwards_is_clamped() {
    let mut l = fxs_on_hook_at(1000);
    // An event stamped before the on-hook counts as at 1000: a 0 ms break is a bounce.
    l.handle_hal(900, &HalEvent::OffHook(CH));
    assert_eq!(fxs_out(&mut l), (vec![], vec![]));
    assert_eq!(l.state(), FxsState::OffHook);
}

#[test]
fn fxs_config_from_json() {
    let cfg: FxsConfig =
        serde_json::from_str(r#"{"flash_max_ms": 1000, "ring_cadence": [2000, 4000]}"#).unwrap();
    assert_eq!(cfg.flash_min_ms, 80);
    assert_eq!(cfg.flash_max_ms, 1000);
    assert_eq!(cfg.ring_cadence, RingCadence::US);
    assert!(serde_json::from_str::<FxsConfig>(r#"{"ring_cadence": [2000]}"#).is_err());
    assert!(serde_json::from_str::<FxsConfig>(r#"{"ring_cadence": [0, 10]}"#).is_err());
    assert!(serde_json::from_str::<FxsConfig>(r#"{"flash_ms": 10}"#).is_err());
    let back: FxsConfig = serde_json::from_value(serde_json::to_value(cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

// ---------------------------------------------------------------- FXO: ringing

/// An FXO line that rang with one valid burst 0..1000, outputs drained.
fn fxo_rung_once() -> FxoLine {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    l.handle_hal(1000, &HalEvent::RingEnd(CH));
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::Ringing, FxoEvent::RingEndedFirst]));
    l
}

#[test]
fn fxo_burst_shorter_than_ring_min_is_ignored() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    assert_eq!(l.poll_timeout(), Some(100));
    l.handle_timeout(99);
    l.handle_hal(99, &HalEvent::RingEnd(CH));
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn fxo_burst_of_exactly_ring_min_is_a_ring() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    l.handle_hal(100, &HalEvent::RingEnd(CH)); // no handle_timeout call in between
    assert_eq!(l.state(), FxoState::Ringing);
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::Ringing, FxoEvent::RingEndedFirst]));
    assert_eq!(l.poll_timeout(), Some(6100));
}

#[test]
fn fxo_ringing_reported_once_burst_is_valid_not_at_its_end() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    l.handle_timeout(100);
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::Ringing]));
    assert_eq!(l.poll_timeout(), None, "no gap timer while ring voltage is present");
    assert_eq!(l.snapshot().ring_burst_since, Some(0));
}

#[test]
fn fxo_ringing_stopped_after_gap_timeout() {
    let mut l = fxo_rung_once();
    // Second burst 5000..6000 renews the call; only the first end opens the CID window.
    l.handle_hal(5000, &HalEvent::RingBegin(CH));
    l.handle_hal(6000, &HalEvent::RingEnd(CH));
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    assert_eq!(l.snapshot().ring_bursts, 2);
    assert_eq!(l.poll_timeout(), Some(12_000));
    l.handle_timeout(11_999);
    assert_eq!(l.state(), FxoState::Ringing);
    l.handle_timeout(12_000);
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::RingingStopped]));
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(l.snapshot().ring_bursts, 0);
}

#[test]
fn fxo_noise_burst_does_not_renew_ringing() {
    let mut l = fxo_rung_once();
    l.handle_hal(3000, &HalEvent::RingBegin(CH));
    l.handle_hal(3050, &HalEvent::RingEnd(CH));
    assert_eq!(l.poll_timeout(), Some(7000));
    l.handle_timeout(7000);
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::RingingStopped]));
}

#[test]
fn fxo_burst_starting_before_gap_end_keeps_the_call() {
    let mut l = fxo_rung_once();
    l.handle_hal(6990, &HalEvent::RingBegin(CH));
    l.handle_timeout(7000); // gap deadline passes while the burst is unproven
    assert_eq!(l.state(), FxoState::Ringing);
    l.handle_timeout(7090);
    l.handle_hal(8000, &HalEvent::RingEnd(CH));
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    assert_eq!(l.poll_timeout(), Some(14_000));
}

#[test]
fn fxo_noise_burst_across_gap_end_stops_ringing_at_its_end() {
    let mut l = fxo_rung_once();
    l.handle_hal(6990, &HalEvent::RingBegin(CH));
    l.handle_timeout(7000);
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    l.handle_hal(7010, &HalEvent::RingEnd(CH));
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::RingingStopped]));
}

#[test]
fn fxo_ignores_other_channels() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(OTHER));
    l.handle_hal(0, &HalEvent::OffHook(CH));
    l.handle_hal(500, &HalEvent::RingEnd(OTHER));
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    assert_eq!(l.poll_timeout(), None);
}

// ---------------------------------------------------------------- FXO: answer, seize, release

#[test]
fn fxo_answer_between_bursts() {
    let mut l = fxo_rung_once();
    l.answer(2000).unwrap();
    assert_eq!(l.state(), FxoState::OffHookIn);
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![]));
    assert_eq!(l.poll_timeout(), None, "ring gap timer cancelled");
    let s = l.snapshot();
    assert_eq!((s.off_hook_since, s.far_end_answered), (Some(2000), true));
}

#[test]
fn fxo_answer_during_burst_then_ring_end_ignored() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    l.handle_timeout(100);
    l.answer(300).unwrap();
    l.handle_hal(320, &HalEvent::RingEnd(CH)); // the exchange trips ringing
    assert_eq!(l.state(), FxoState::OffHookIn);
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![FxoEvent::Ringing]));
}

#[test]
fn fxo_answer_refused_unless_ringing() {
    let mut l = fxo();
    assert_eq!(l.answer(0), Err(FxoError::NotRinging(FxoState::Idle)));
    let mut l = fxo_rung_once();
    assert_eq!(l.answer(7000), Err(FxoError::NotRinging(FxoState::Idle)), "caller gave up");
    l.seize(7001).unwrap();
    assert_eq!(l.answer(7002), Err(FxoError::NotRinging(FxoState::OffHookOut)));
}

#[test]
fn fxo_seize_and_refusals() {
    let mut l = fxo_rung_once();
    assert_eq!(l.seize(2000), Err(FxoError::Ringing));
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    assert_eq!(l.seize(50), Err(FxoError::Ringing), "unproven burst: avoid glare");
    l.handle_hal(60, &HalEvent::RingEnd(CH));
    l.seize(70).unwrap();
    assert_eq!(l.state(), FxoState::OffHookOut);
    assert_eq!(l.seize(80), Err(FxoError::AlreadyOffHook));
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![]));
    assert!(!l.snapshot().far_end_answered);
}

#[test]
fn fxo_release_starts_guard_time() {
    let mut l = fxo();
    l.seize(0).unwrap();
    l.release(1000);
    assert_eq!(l.state(), FxoState::Guard);
    assert_eq!(l.poll_timeout(), Some(1500));
    assert_eq!(l.seize(1499), Err(FxoError::Guard { until: 1500 }));
    l.release(1499); // already on-hook: nothing
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook, FxoCommand::OnHook], vec![]));
    l.seize(1500).unwrap(); // the guard expires first
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![]));
}

#[test]
fn fxo_guard_expiry_by_timeout_and_zero_guard() {
    let mut l = fxo();
    l.seize(0).unwrap();
    l.release(10);
    l.handle_timeout(509);
    assert_eq!(l.state(), FxoState::Guard);
    l.handle_timeout(510);
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(l.poll_timeout(), None);

    let mut l = FxoLine::new(CH, FxoConfig { seize_guard_ms: 0, ..FxoConfig::default() });
    l.seize(0).unwrap();
    l.release(10);
    assert_eq!(l.state(), FxoState::Idle);
    l.seize(10).unwrap();
}

#[test]
fn fxo_ringing_during_guard_is_an_incoming_call() {
    let mut l = fxo();
    l.seize(0).unwrap();
    l.release(100);
    l.handle_hal(200, &HalEvent::RingBegin(CH));
    assert_eq!(l.seize(250), Err(FxoError::Guard { until: 600 }));
    l.handle_timeout(300);
    assert_eq!(l.state(), FxoState::Ringing);
    assert_eq!(l.snapshot().guard_until, None);
    l.answer(400).unwrap();
    assert_eq!(
        fxo_out(&mut l),
        (
            vec![FxoCommand::OffHook, FxoCommand::OnHook, FxoCommand::OffHook],
            vec![FxoEvent::Ringing]
        )
    );
}

#[test]
fn fxo_ring_events_while_off_hook_are_ignored() {
    let mut l = fxo();
    l.seize(0).unwrap();
    l.handle_hal(10, &HalEvent::RingBegin(CH));
    l.handle_hal(500, &HalEvent::RingEnd(CH));
    assert_eq!(l.state(), FxoState::OffHookOut);
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![]));
    assert_eq!(l.poll_timeout(), None);
}

// ---------------------------------------------------------------- FXO: flash

#[test]
fn fxo_flash_and_refusals() {
    let mut l = fxo();
    assert_eq!(l.flash(0, 100), Err(FxoError::NotOffHook(FxoState::Idle)));
    l.seize(0).unwrap();
    assert_eq!(l.flash(10, 0), Err(FxoError::ZeroFlash));
    l.flash(1000, 100).unwrap();
    assert_eq!(l.poll_timeout(), Some(1300), "100 ms flash + 200 ms settle");
    assert_eq!(l.flash(1100, 100), Err(FxoError::Flashing));
    assert_eq!(l.snapshot().flash_until, Some(1300));
    l.flash(1300, 90).unwrap();
    assert_eq!(
        fxo_out(&mut l),
        (vec![FxoCommand::OffHook, FxoCommand::Flash(100), FxoCommand::Flash(90)], vec![])
    );
}

#[test]
fn fxo_loop_current_loss_during_own_flash_is_ignored() {
    let mut l = fxo();
    l.seize(0).unwrap();
    l.flash(1000, 100).unwrap();
    l.handle_hal(1050, &HalEvent::LoopCurrentLost(CH));
    l.handle_hal(1299, &HalEvent::LoopCurrentLost(CH));
    l.handle_hal(1299, &HalEvent::PolarityReversal(CH));
    assert_eq!(l.state(), FxoState::OffHookOut);
    l.handle_hal(1300, &HalEvent::LoopCurrentLost(CH));
    assert_eq!(
        fxo_out(&mut l),
        (
            vec![FxoCommand::OffHook, FxoCommand::Flash(100), FxoCommand::OnHook],
            vec![FxoEvent::FarEndDisconnect { cause: DisconnectCause::LoopCurrent }]
        )
    );
}

#[test]
fn fxo_release_during_flash() {
    let mut l = fxo();
    l.seize(0).unwrap();
    l.flash(1000, 500).unwrap();
    l.release(1100);
    assert_eq!(l.state(), FxoState::Guard);
    assert_eq!(l.snapshot().flash_until, None);
    assert_eq!(l.poll_timeout(), Some(1600));
}

// ---------------------------------------------------------------- FXO: far-end supervision

#[test]
fn fxo_polarity_disconnect_after_guard() {
    let mut l = fxo_rung_once();
    l.answer(2000).unwrap();
    l.handle_hal(2599, &HalEvent::PolarityReversal(CH)); // within 600 ms of answer
    assert_eq!(l.state(), FxoState::OffHookIn);
    l.handle_hal(2600, &HalEvent::PolarityReversal(CH));
    assert_eq!(l.state(), FxoState::Guard);
    assert_eq!(
        fxo_out(&mut l),
        (
            vec![FxoCommand::OffHook, FxoCommand::OnHook],
            vec![FxoEvent::FarEndDisconnect { cause: DisconnectCause::Polarity }]
        )
    );
    assert_eq!(l.poll_timeout(), Some(3100));
}

#[test]
fn fxo_polarity_ignored_without_hangup_on_polarity() {
    let cfg = FxoConfig { hangup_on_polarity: false, ..FxoConfig::default() };
    let mut l = FxoLine::new(CH, cfg);
    l.seize(0).unwrap();
    l.handle_hal(5000, &HalEvent::PolarityReversal(CH));
    l.handle_hal(9000, &HalEvent::PolarityReversal(CH));
    assert_eq!(l.state(), FxoState::OffHookOut);
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![]));
}

#[test]
fn fxo_answer_on_polarity_then_disconnect_on_next_reversal() {
    let cfg = FxoConfig { answer_on_polarity: true, ..FxoConfig::default() };
    let mut l = FxoLine::new(CH, cfg);
    l.seize(0).unwrap();
    l.handle_hal(8000, &HalEvent::PolarityReversal(CH));
    assert_eq!(fxo_out(&mut l), (vec![FxoCommand::OffHook], vec![FxoEvent::FarEndAnswer]));
    assert!(l.snapshot().far_end_answered);
    assert!(l.snapshot().polarity_reversed);
    l.handle_hal(8599, &HalEvent::PolarityReversal(CH)); // within the guard after answer
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    l.handle_hal(8600, &HalEvent::PolarityReversal(CH));
    assert_eq!(
        fxo_out(&mut l),
        (
            vec![FxoCommand::OnHook],
            vec![FxoEvent::FarEndDisconnect { cause: DisconnectCause::Polarity }]
        )
    );
}

#[test]
fn fxo_answer_on_polarity_applies_to_outgoing_calls_only() {
    let cfg = FxoConfig { answer_on_polarity: true, ..FxoConfig::default() };
    let mut l = FxoLine::new(CH, cfg);
    l.handle_hal(0, &HalEvent::RingBegin(CH));
    l.handle_hal(1000, &HalEvent::RingEnd(CH));
    l.answer(1500).unwrap();
    fxo_out(&mut l);
    l.handle_hal(5000, &HalEvent::PolarityReversal(CH));
    assert_eq!(
        fxo_out(&mut l).1,
        vec![FxoEvent::FarEndDisconnect { cause: DisconnectCause::Polarity }]
    );
}

#[test]
fn fxo_loop_current_disconnect() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::LoopCurrentLost(CH)); // on-hook: nothing to disconnect
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    l.seize(10).unwrap();
    l.handle_hal(20, &HalEvent::LoopCurrentLost(CH));
    assert_eq!(l.state(), FxoState::Guard);
    assert_eq!(
        fxo_out(&mut l),
        (
            vec![FxoCommand::OffHook, FxoCommand::OnHook],
            vec![FxoEvent::FarEndDisconnect { cause: DisconnectCause::LoopCurrent }]
        )
    );
    l.handle_hal(30, &HalEvent::LoopCurrentLost(CH)); // already released
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
}

#[test]
fn fxo_tone_disconnect_follows_the_same_path() {
    let mut l = fxo();
    l.far_end_disconnect(0); // on-hook: nothing
    assert_eq!(fxo_out(&mut l), (vec![], vec![]));
    l.seize(0).unwrap();
    l.far_end_disconnect(9000);
    assert_eq!(l.state(), FxoState::Guard);
    assert_eq!(l.poll_timeout(), Some(9500));
    assert_eq!(
        fxo_out(&mut l),
        (
            vec![FxoCommand::OffHook, FxoCommand::OnHook],
            vec![FxoEvent::FarEndDisconnect { cause: DisconnectCause::Tone }]
        )
    );
}

#[test]
fn fxo_polarity_reversal_on_hook_is_reported() {
    let mut l = fxo();
    l.handle_hal(0, &HalEvent::PolarityReversal(CH));
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(fxo_out(&mut l), (vec![], vec![FxoEvent::PolarityReversalOnHook]));
}

#[test]
fn fxo_full_incoming_call_events_in_order() {
    let mut l = fxo();
    let mut events = Vec::new();
    let mut cmds = Vec::new();
    let mut step = |l: &mut FxoLine| {
        let (c, e) = fxo_out(l);
        cmds.extend(c);
        events.extend(e);
    };
    l.handle_hal(0, &HalEvent::PolarityReversal(CH)); // ETSI wake-up
    step(&mut l);
    l.handle_hal(500, &HalEvent::RingBegin(CH));
    l.handle_hal(520, &HalEvent::RingEnd(CH)); // noise
    l.handle_hal(1000, &HalEvent::RingBegin(CH));
    l.handle_timeout(1100);
    step(&mut l);
    l.handle_hal(2000, &HalEvent::RingEnd(CH));
    step(&mut l);
    l.handle_hal(6000, &HalEvent::RingBegin(CH));
    l.answer(6400).unwrap();
    step(&mut l);
    l.handle_hal(60_000, &HalEvent::PolarityReversal(CH));
    step(&mut l);
    l.handle_timeout(60_500);
    assert_eq!(l.state(), FxoState::Idle);
    assert_eq!(
        events,
        vec![
            FxoEvent::PolarityReversalOnHook,
            FxoEvent::Ringing,
            FxoEvent::RingEndedFirst,
            FxoEvent::FarEndDisconnect { cause: DisconnectCause::Polarity },
        ]
    );
    assert_eq!(cmds, vec![FxoCommand::OffHook, FxoCommand::OnHook]);
}

#[test]
fn fxo_snapshot_and_config_serialize() {
    let l = fxo_rung_once();
    let json = serde_json::to_value(l.snapshot()).unwrap();
    assert_eq!(json["state"], "ringing");
    assert_eq!(json["ring_gap_until"], 7000);
    assert_eq!(json["ring_bursts"], 1);
    let cfg: FxoConfig = serde_json::from_str(r#"{"answer_on_polarity": true}"#).unwrap();
    assert!(cfg.answer_on_polarity && cfg.hangup_on_polarity);
    assert_eq!(cfg.ring_min_ms, 100);
    assert_eq!(cfg.ring_gap_timeout_ms, 6000);
    assert_eq!(cfg.seize_guard_ms, 500);
}
