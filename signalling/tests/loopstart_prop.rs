//! Property tests: random inputs at random times never panic and never drive the card into
//! an impossible sequence (ringing a lifted phone, going on-hook twice, ...).

use cardpbx_hal::{ChannelId, FxoCommand, FxsCommand, HalEvent, Tick};
use cardpbx_signalling::loopstart::*;
use proptest::prelude::*;

const CH: ChannelId = ChannelId(0);
const OTHER: ChannelId = ChannelId(1);

#[derive(Debug, Clone)]
enum FxsInput {
    /// A card event, kept small: its constructor and channel.
    Hal(fn(ChannelId) -> HalEvent, ChannelId),
    Ring,
    StopRing,
    Polarity(bool),
    Timeout,
    /// Jump to exactly the next deadline.
    NextTimeout,
}

fn fxs_input() -> impl Strategy<Value = FxsInput> {
    prop_oneof![
        3 => Just(FxsInput::Hal(HalEvent::OffHook, CH)),
        3 => Just(FxsInput::Hal(HalEvent::OnHook, CH)),
        1 => Just(FxsInput::Hal(HalEvent::OffHook, OTHER)),
        1 => Just(FxsInput::Hal(HalEvent::RingBegin, CH)),
        2 => Just(FxsInput::Ring),
        1 => Just(FxsInput::StopRing),
        1 => any::<bool>().prop_map(FxsInput::Polarity),
        2 => Just(FxsInput::Timeout),
        2 => Just(FxsInput::NextTimeout),
    ]
}

#[derive(Debug, Clone)]
enum FxoInput {
    /// A card event, kept small: its constructor and channel.
    Hal(fn(ChannelId) -> HalEvent, ChannelId),
    Answer,
    Seize,
    Release,
    Flash(u16),
    FarEndDisconnect,
    Timeout,
    NextTimeout,
}

fn fxo_input() -> impl Strategy<Value = FxoInput> {
    prop_oneof![
        3 => Just(FxoInput::Hal(HalEvent::RingBegin, CH)),
        3 => Just(FxoInput::Hal(HalEvent::RingEnd, CH)),
        2 => Just(FxoInput::Hal(HalEvent::PolarityReversal, CH)),
        2 => Just(FxoInput::Hal(HalEvent::LoopCurrentLost, CH)),
        1 => Just(FxoInput::Hal(HalEvent::RingBegin, OTHER)),
        2 => Just(FxoInput::Answer),
        2 => Just(FxoInput::Seize),
        2 => Just(FxoInput::Release),
        1 => (0u16..400).prop_map(FxoInput::Flash),
        1 => Just(FxoInput::FarEndDisconnect),
        2 => Just(FxoInput::Timeout),
        2 => Just(FxoInput::NextTimeout),
    ]
}

/// Time steps: mostly small, sometimes around the flash/ring windows, rarely huge or backwards.
fn step_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0i64..150,
        3 => 0i64..1500,
        2 => 0i64..8000,
        1 => 0i64..100_000,
        1 => -50i64..0,
    ]
}

fn fxs_configs() -> impl Strategy<Value = FxsConfig> {
    (0u32..300, 0u32..1500, prop::collection::vec(1u32..3000, 1..=4)).prop_map(
        |(min, max, pairs)| {
            let mut segs = Vec::new();
            for p in pairs {
                segs.push(p);
                segs.push(p / 2 + 1);
            }
            FxsConfig {
                flash_min_ms: min,
                flash_max_ms: max,
                ring_cadence: RingCadence::new(&segs).unwrap(),
            }
        },
    )
}

fn fxo_configs() -> impl Strategy<Value = FxoConfig> {
    (0u32..300, 0u32..9000, any::<bool>(), any::<bool>(), 0u32..1000, 0u32..1000, 0u32..400)
        .prop_map(|(rmin, gap, aop, hop, pg, sg, fs)| FxoConfig {
            ring_min_ms: rmin,
            ring_gap_timeout_ms: gap,
            answer_on_polarity: aop,
            hangup_on_polarity: hop,
            polarity_guard_ms: pg,
            seize_guard_ms: sg,
            flash_settle_ms: fs,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fxs_never_misdrives_the_card(
        cfg in fxs_configs(),
        inputs in prop::collection::vec((step_ms(), fxs_input()), 1..120),
    ) {
        let mut l = FxsLine::new(CH, cfg);
        let mut now: Tick = 0;
        let mut latest: Tick = 0;
        let mut voltage = false;
        let mut polarity = false;
        let mut seized = false;
        for (dt, input) in inputs {
            now = now.saturating_add_signed(dt);
            let mut t = now;
            match input {
                FxsInput::Hal(ev, ch) => l.handle_hal(now, &ev(ch)),
                FxsInput::Ring => {
                    let idle = l.state() == FxsState::Idle && l.poll_timeout().is_none_or(|d| d > now.max(latest));
                    let r = l.ring(now);
                    if idle { prop_assert!(r.is_ok()); }
                    if r.is_err() { prop_assert!(l.state() != FxsState::Idle); }
                }
                FxsInput::StopRing => {
                    l.stop_ring(now);
                    prop_assert!(l.state() != FxsState::Ringing);
                }
                FxsInput::Polarity(p) => l.reverse_polarity(now, p),
                FxsInput::Timeout => l.handle_timeout(now),
                FxsInput::NextTimeout => {
                    // The machine sees no time at all when nothing is pending.
                    t = latest;
                    if let Some(d) = l.poll_timeout() {
                        t = d;
                        now = d.max(now);
                        l.handle_timeout(d);
                    }
                }
            }
            latest = latest.max(t);
            while let Some(c) = l.poll_command() {
                match c {
                    FxsCommand::RingOn => { prop_assert!(!voltage, "RingOn while ringing"); voltage = true; }
                    FxsCommand::RingOff => { prop_assert!(voltage, "RingOff while silent"); voltage = false; }
                    FxsCommand::SetPolarity(p) => { prop_assert_ne!(p, polarity); polarity = p; }
                    FxsCommand::OpenLoop(_) => prop_assert!(false, "no OpenLoop expected"),
                }
            }
            while let Some(e) = l.poll_event() {
                match e {
                    FxsEvent::OffHook | FxsEvent::Answered => { prop_assert!(!seized); seized = true; }
                    FxsEvent::Flash => prop_assert!(seized),
                    FxsEvent::Hangup => { prop_assert!(seized); seized = false; }
                    FxsEvent::FirstRingEnded => prop_assert!(!seized),
                }
            }
            let state = l.state();
            prop_assert_eq!(l.snapshot().state, state);
            prop_assert_eq!(voltage, state == FxsState::Ringing && l.ring_phase().unwrap().voltage_on);
            prop_assert_eq!(seized, matches!(state, FxsState::OffHook | FxsState::OnHookPending));
            prop_assert_eq!(l.snapshot().polarity_reversed, polarity);
            prop_assert_eq!(l.snapshot().dropped, 0);
            if let Some(d) = l.poll_timeout() {
                prop_assert!(d > latest, "deadline {} not after now {}", d, latest);
            }
            if state == FxsState::Idle || state == FxsState::OffHook {
                prop_assert_eq!(l.poll_timeout(), None);
            }
        }
    }

    #[test]
    fn fxo_never_misdrives_the_card(
        cfg in fxo_configs(),
        inputs in prop::collection::vec((step_ms(), fxo_input()), 1..120),
    ) {
        let mut l = FxoLine::new(CH, cfg);
        let mut now: Tick = 0;
        let mut latest: Tick = 0;
        let mut off_hook = false;
        let mut ringing = false;
        for (dt, input) in inputs {
            now = now.saturating_add_signed(dt);
            let mut t = now;
            let before = l.state();
            match input {
                FxoInput::Hal(ev, ch) => l.handle_hal(now, &ev(ch)),
                FxoInput::Answer => {
                    let r = l.answer(now);
                    prop_assert_eq!(r.is_ok(), l.state() == FxoState::OffHookIn && !before.is_off_hook());
                }
                FxoInput::Seize => {
                    let r = l.seize(now);
                    if r.is_ok() { prop_assert_eq!(l.state(), FxoState::OffHookOut); }
                    if before.is_off_hook() { prop_assert_eq!(r, Err(FxoError::AlreadyOffHook)); }
                }
                FxoInput::Release => l.release(now),
                FxoInput::Flash(ms) => {
                    let r = l.flash(now, ms);
                    if ms == 0 && r.is_ok() { prop_assert!(false, "0 ms flash accepted"); }
                }
                FxoInput::FarEndDisconnect => l.far_end_disconnect(now),
                FxoInput::Timeout => l.handle_timeout(now),
                FxoInput::NextTimeout => {
                    // The machine sees no time at all when nothing is pending.
                    t = latest;
                    if let Some(d) = l.poll_timeout() {
                        t = d;
                        now = d.max(now);
                        l.handle_timeout(d);
                    }
                }
            }
            latest = latest.max(t);
            let mut on_hooks = 0;
            while let Some(c) = l.poll_command() {
                match c {
                    FxoCommand::OffHook => { prop_assert!(!off_hook, "OffHook while off-hook"); off_hook = true; }
                    FxoCommand::OnHook => { prop_assert!(off_hook, "OnHook while on-hook"); off_hook = false; on_hooks += 1; }
                    FxoCommand::Flash(ms) => { prop_assert!(off_hook, "Flash while on-hook"); prop_assert!(ms > 0); }
                }
            }
            let mut disconnects = 0;
            while let Some(e) = l.poll_event() {
                match e {
                    FxoEvent::Ringing => { prop_assert!(!ringing); ringing = true; }
                    FxoEvent::RingEndedFirst => prop_assert!(ringing),
                    FxoEvent::RingingStopped => { prop_assert!(ringing); ringing = false; }
                    FxoEvent::FarEndAnswer => {
                        prop_assert!(cfg.answer_on_polarity);
                        prop_assert_eq!(l.state(), FxoState::OffHookOut);
                    }
                    FxoEvent::FarEndDisconnect { .. } => disconnects += 1,
                    FxoEvent::PolarityReversalOnHook => {}
                }
            }
            prop_assert!(disconnects <= on_hooks, "every far-end disconnect releases the line");
            let state = l.state();
            if state.is_off_hook() { ringing = false; }
            prop_assert_eq!(off_hook, state.is_off_hook());
            prop_assert_eq!(ringing, state == FxoState::Ringing);
            prop_assert_eq!(l.snapshot().state, state);
            prop_assert_eq!(l.snapshot().dropped, 0);
            if let Some(d) = l.poll_timeout() {
                prop_assert!(d > latest, "deadline {} not after now {}", d, latest);
            }
            if state == FxoState::Guard { prop_assert!(l.poll_timeout().is_some()); }
        }
    }
}
