use super::*;
use proptest::prelude::*;

const MENUS: &str = r#"
[[ivr]]
name = "main"
prompt = "main.wav"
timeout_s = 4
retries = 2
invalid_prompt = "invalid.wav"
timeout_prompt = "noinput.wav"
on_timeout = "queue:operator"
on_invalid = "hangup"
choices = { 1 = "queue:sales:2", 2 = "ivr:billing", 3 = "voicemail:200", 4 = "fax:300", 5 = "callback:sales", 6 = "extension:201", 9 = "repeat", 0 = "hangup", "*" = "back" }

[[ivr]]
name = "billing"
prompt = "billing.wav"
timeout_s = 3
retries = 0
choices = { 1 = "ivr:card", 2 = "ivr:main", "*" = "back" }

[[ivr]]
name = "card"
kind = "collect"
prompt = "card.wav"
invalid_prompt = "card_invalid.wav"
min_digits = 12
max_digits = 19
validate = "luhn"
timeout_s = 5
digit_timeout_s = 3
retries = 1
store_as = "card_number"
next = "queue:cards"
on_invalid = "queue:operator"
"#;

#[derive(serde::Deserialize)]
struct Menus {
    ivr: Vec<IvrConfig>,
}

fn engine() -> IvrEngine {
    let m: Menus = toml::from_str(MENUS).unwrap();
    IvrEngine::new(&m.ivr).unwrap()
}

fn drain(e: &mut IvrEngine) -> Vec<IvrAction> {
    e.drain_actions().collect()
}

fn play(call: CallId, p: &str) -> IvrAction {
    IvrAction::Play { call, prompt: p.into() }
}

fn logs(a: &[IvrAction]) -> Vec<IvrStep> {
    a.iter()
        .filter_map(|a| match a {
            IvrAction::Log(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn step(node: &str, key: Option<&str>, ms: u64, exit: IvrExit) -> IvrStep {
    IvrStep { call: 1, node: node.into(), key: key.map(str::to_string), ms_in_node: ms, exit }
}

fn dest(d: &str) -> IvrExit {
    IvrExit::Destination(d.parse().unwrap())
}

#[test]
fn start_plays_prompt_and_choice_leaves() {
    let mut e = engine();
    e.start(1, "main", 1000).unwrap();
    assert_eq!(
        drain(&mut e),
        vec![
            IvrAction::CollectDigits { call: 1, max_digits: 1, terminator: None },
            play(1, "main.wav"),
        ]
    );
    e.play_done(1, 6000);
    assert_eq!(e.next_deadline(), Some(10_000));
    e.digit(1, '1', 7500);
    let a = drain(&mut e);
    assert_eq!(
        a,
        vec![
            IvrAction::Log(step("main", Some("1"), 6500, dest("queue:sales:2"))),
            IvrAction::Goto { call: 1, dest: "queue:sales:2".parse().unwrap() },
        ]
    );
    assert!(!e.is_active(1));
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn every_destination_kind_from_a_menu() {
    for (key, d) in
        [('3', "voicemail:200"), ('4', "fax:300"), ('5', "callback:sales"), ('6', "extension:201")]
    {
        let mut e = engine();
        e.start(1, "main", 0).unwrap();
        drain(&mut e);
        e.digit(1, key, 100);
        let a = drain(&mut e);
        assert_eq!(a.last(), Some(&IvrAction::Goto { call: 1, dest: d.parse().unwrap() }));
    }
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    drain(&mut e);
    e.digit(1, '0', 100);
    let a = drain(&mut e);
    assert_eq!(a.last(), Some(&IvrAction::Hangup { call: 1 }));
    assert_eq!(logs(&a), vec![step("main", Some("0"), 100, dest("hangup"))]);
}

#[test]
fn barge_in_stops_the_prompt() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    drain(&mut e);
    e.digit(1, '2', 800);
    let a = drain(&mut e);
    assert_eq!(a[0], IvrAction::StopPlay { call: 1 });
    assert_eq!(a[1], IvrAction::Log(step("main", Some("2"), 800, IvrExit::Node("billing".into()))));
    assert_eq!(a[3], play(1, "billing.wav"));
    assert_eq!(e.current_node(1), Some("billing"));
    // A key after the prompt ended: no StopPlay.
    e.play_done(1, 2000);
    e.digit(1, '*', 2500);
    let a = drain(&mut e);
    assert!(!a.contains(&IvrAction::StopPlay { call: 1 }));
}

#[test]
fn timeouts_retry_with_prompt_then_timeout_action() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    drain(&mut e);
    e.play_done(1, 5000);
    // Nothing due before the deadline.
    e.tick(8999);
    assert!(drain(&mut e).is_empty());
    // The tick comes late; the step is timed at the deadline.
    e.tick(9010);
    let a = drain(&mut e);
    assert_eq!(
        a,
        vec![
            IvrAction::Log(step("main", None, 9000, IvrExit::RetryTimeout)),
            play(1, "noinput.wav"),
        ]
    );
    // The no-input prompt is followed by the menu prompt, then the wait starts again.
    e.play_done(1, 11_000);
    assert_eq!(drain(&mut e), vec![play(1, "main.wav")]);
    assert_eq!(e.next_deadline(), None);
    e.play_done(1, 16_000);
    e.tick(20_000);
    let a = drain(&mut e);
    assert_eq!(logs(&a), vec![step("main", None, 11_000, IvrExit::RetryTimeout)]);
    e.play_done(1, 22_000);
    e.play_done(1, 27_000);
    assert_eq!(drain(&mut e), vec![play(1, "main.wav")]);
    e.tick(31_000);
    let a = drain(&mut e);
    assert_eq!(
        a,
        vec![
            IvrAction::Log(step("main", None, 11_000, dest("queue:operator"))),
            IvrAction::Goto { call: 1, dest: "queue:operator".parse().unwrap() },
        ]
    );
    assert!(!e.is_active(1));
}

#[test]
fn invalid_key_retries_then_invalid_action() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    drain(&mut e);
    e.play_done(1, 1000);
    e.digit(1, '7', 1500);
    let a = drain(&mut e);
    assert_eq!(
        a,
        vec![
            IvrAction::Log(step("main", Some("7"), 1500, IvrExit::RetryInvalid)),
            play(1, "invalid.wav"),
        ]
    );
    // Barge-in on the invalid prompt with another invalid key.
    e.digit(1, '#', 1600);
    let a = drain(&mut e);
    assert_eq!(a[0], IvrAction::StopPlay { call: 1 });
    assert_eq!(a[1], IvrAction::Log(step("main", Some("#"), 100, IvrExit::RetryInvalid)));
    e.digit(1, '8', 1700);
    let a = drain(&mut e);
    assert_eq!(
        &a[1..],
        &[
            IvrAction::Log(step("main", Some("8"), 100, dest("hangup"))),
            IvrAction::Hangup { call: 1 },
        ]
    );
}

#[test]
fn repeat_replays_without_using_a_try() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    drain(&mut e);
    // An invalid key uses one of the two retries.
    e.digit(1, '7', 100);
    drain(&mut e);
    for i in 1..=5u64 {
        e.digit(1, '9', 100 + i * 1000);
        let a = drain(&mut e);
        assert_eq!(
            &a[1..],
            &[IvrAction::Log(step("main", Some("9"), 1000, IvrExit::Repeat)), play(1, "main.wav")]
        );
    }
    // Repeats did not use tries: one more invalid key still replays.
    e.digit(1, '7', 6000);
    assert_eq!(logs(&drain(&mut e))[0].exit, IvrExit::RetryInvalid);
    e.digit(1, '7', 6100);
    assert_eq!(drain(&mut e).last(), Some(&IvrAction::Hangup { call: 1 }));
}

#[test]
fn sub_menu_and_back() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    e.digit(1, '2', 100);
    e.digit(1, '*', 300);
    let a = drain(&mut e);
    let l = logs(&a);
    assert_eq!(l[1], step("billing", Some("*"), 200, IvrExit::Node("main".into())));
    assert_eq!(e.current_node(1), Some("main"));
    // Back at the top menu repeats it.
    e.digit(1, '*', 400);
    let a = drain(&mut e);
    assert_eq!(logs(&a), vec![step("main", Some("*"), 100, IvrExit::Repeat)]);
    assert_eq!(a.last(), Some(&play(1, "main.wav")));
    // Into billing, then ivr:main from billing, then back returns to billing.
    e.digit(1, '2', 500);
    e.digit(1, '2', 600);
    e.digit(1, '*', 700);
    assert_eq!(e.current_node(1), Some("billing"));
    // billing has retries = 0 and on_timeout default hangup.
    e.play_done(1, 1000);
    e.tick(4000);
    let a = drain(&mut e);
    assert_eq!(a.last(), Some(&IvrAction::Hangup { call: 1 }));
    assert_eq!(logs(&a).last().unwrap(), &step("billing", None, 3300, dest("hangup")));
}

fn enter_card(e: &mut IvrEngine, t0: u64) {
    e.start(1, "main", t0).unwrap();
    e.digit(1, '2', t0 + 100);
    e.digit(1, '1', t0 + 200);
    drain(e);
    assert_eq!(e.current_node(1), Some("card"));
}

#[test]
fn collect_with_terminator_luhn_and_call_data() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    e.digit(1, '2', 100);
    e.digit(1, '1', 200);
    let a = drain(&mut e);
    assert!(a.contains(&IvrAction::CollectDigits {
        call: 1,
        max_digits: 19,
        terminator: Some('#')
    }));
    assert_eq!(a.last(), Some(&play(1, "card.wav")));
    let mut t = 1000;
    for d in "4111111111111111#".chars() {
        e.digit(1, d, t);
        t += 200;
    }
    let a = drain(&mut e);
    assert_eq!(a[0], IvrAction::StopPlay { call: 1 });
    assert_eq!(
        &a[1..],
        &[
            IvrAction::SetCallData {
                call: 1,
                key: "card_number".into(),
                value: "4111111111111111".into()
            },
            IvrAction::Log(step("card", Some("xxxxxxxxxxxxxxxx#"), 4000, dest("queue:cards"))),
            IvrAction::Goto { call: 1, dest: "queue:cards".parse().unwrap() },
        ]
    );
}

#[test]
fn collect_validation_failure_retries_then_gives_up() {
    let mut e = engine();
    enter_card(&mut e, 0);
    e.play_done(1, 2000);
    // Bad check digit.
    for (i, d) in "4111111111111112#".chars().enumerate() {
        e.digit(1, d, 3000 + i as u64);
    }
    let a = drain(&mut e);
    assert_eq!(
        a,
        vec![
            IvrAction::Log(step("card", Some("xxxxxxxxxxxxxxxx#"), 2816, IvrExit::RetryInvalid)),
            play(1, "card_invalid.wav"),
        ]
    );
    assert!(!a.iter().any(|a| matches!(a, IvrAction::SetCallData { .. })));
    e.play_done(1, 5000);
    assert_eq!(drain(&mut e), vec![play(1, "card.wav")]);
    // Too few digits (barging in), then a pause longer than digit_timeout_s: collection
    // ends, invalid, retries (1) used up: on_invalid. The step counts from the replay.
    e.digit(1, '1', 6000);
    e.digit(1, '2', 6500);
    assert_eq!(e.next_deadline(), Some(9500));
    e.tick(9500);
    let a = drain(&mut e);
    assert_eq!(
        &a[1..],
        &[
            IvrAction::Log(step("card", Some("xx"), 9500 - 3016, dest("queue:operator"))),
            IvrAction::Goto { call: 1, dest: "queue:operator".parse().unwrap() },
        ]
    );
}

#[test]
fn collect_ends_at_max_digits_and_on_pause() {
    let mut e = engine();
    enter_card(&mut e, 0);
    // 19 digits valid by Luhn: ends without terminator.
    let n = "4111111111111111110";
    assert!(luhn_valid(n));
    for (i, d) in n.chars().enumerate() {
        e.digit(1, d, 1000 + i as u64 * 10);
    }
    let a = drain(&mut e);
    assert!(a.contains(&IvrAction::SetCallData {
        call: 1,
        key: "card_number".into(),
        value: n.into()
    }));
    assert!(!e.is_active(1));

    // A 16-digit number followed by a pause.
    let mut e = engine();
    enter_card(&mut e, 0);
    for (i, d) in "4111111111111111".chars().enumerate() {
        e.digit(1, d, 1000 + i as u64 * 100);
    }
    e.tick(1000 + 1500 + 2999);
    assert!(e.is_active(1));
    e.tick(1000 + 1500 + 3000);
    let a = drain(&mut e);
    assert_eq!(
        logs(&a).last().unwrap(),
        &step("card", Some("xxxxxxxxxxxxxxxx"), 5300, dest("queue:cards"))
    );
}

#[test]
fn collect_timeout_without_digits() {
    let mut e = engine();
    enter_card(&mut e, 0);
    e.play_done(1, 1000);
    assert_eq!(e.next_deadline(), Some(6000));
    e.tick(6000);
    let a = drain(&mut e);
    assert_eq!(logs(&a), vec![step("card", None, 5800, IvrExit::RetryTimeout)]);
    // No timeout prompt configured: straight to the node prompt.
    assert_eq!(a.last(), Some(&play(1, "card.wav")));
    e.play_done(1, 7000);
    e.tick(12_000);
    let a = drain(&mut e);
    assert_eq!(a.last(), Some(&IvrAction::Hangup { call: 1 }), "on_timeout defaults to hangup");
}

#[test]
fn caller_hang_up_logs_the_drop_out_node() {
    let mut e = engine();
    e.start(1, "main", 0).unwrap();
    e.start(2, "main", 50).unwrap();
    e.digit(1, '2', 1000);
    drain(&mut e);
    e.caller_hung_up(1, 3500);
    assert_eq!(
        drain(&mut e),
        vec![IvrAction::Log(step("billing", None, 2500, IvrExit::CallerHangup))]
    );
    assert!(!e.is_active(1));
    assert!(e.is_active(2));
    // Inputs for a call no longer in the IVR are ignored.
    e.digit(1, '1', 4000);
    e.play_done(1, 4000);
    e.caller_hung_up(1, 4000);
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.active_calls(), 1);
}

#[test]
fn start_errors() {
    let mut e = engine();
    assert_eq!(e.start(1, "nope", 0), Err(IvrError::UnknownMenu("nope".into())));
    e.start(1, "main", 0).unwrap();
    assert_eq!(e.start(1, "main", 0), Err(IvrError::AlreadyActive(1)));
    let m: Menus =
        toml::from_str("[[ivr]]\nname = \"a\"\nprompt = \"a.wav\"\nchoices = { 1 = \"ivr:b\" }\n")
            .unwrap();
    assert_eq!(IvrEngine::new(&m.ivr).unwrap_err(), IvrError::UnknownMenu("b".into()));
}

#[test]
fn step_limit_hangs_up_a_looping_caller() {
    let mut e = engine();
    e.set_max_steps(5);
    e.start(1, "main", 0).unwrap();
    for i in 0..4 {
        e.digit(1, '9', i * 10 + 10);
    }
    assert!(e.is_active(1));
    e.digit(1, '9', 100);
    let a = drain(&mut e);
    assert_eq!(logs(&a).len(), 5);
    assert_eq!(logs(&a)[4].exit, dest("hangup"));
    assert_eq!(a.last(), Some(&IvrAction::Hangup { call: 1 }));
    assert!(!e.is_active(1));
}

#[test]
fn luhn() {
    assert!(luhn_valid("79927398713"));
    assert!(!luhn_valid("79927398710"));
    assert!(luhn_valid("0"));
    assert!(!luhn_valid(""));
    assert!(!luhn_valid("12a4"));
}

#[derive(Debug, Clone)]
enum Input {
    Digit(char),
    PlayDone,
    Wait(u64),
    HangUp,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => prop::sample::select(vec!['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'])
            .prop_map(Input::Digit),
        4 => Just(Input::PlayDone),
        3 => (0u64..8000).prop_map(Input::Wait),
        1 => Just(Input::HangUp),
    ]
}

proptest! {
    /// Whatever the caller does, every call ends in a destination or a hang-up within the step
    /// limit, each step is logged exactly once with non-negative time that adds up to the time
    /// spent, and no action follows the call's end.
    #[test]
    fn random_callers_always_finish(
        inputs in prop::collection::vec(input(), 0..300),
        calls in 1u64..4,
    ) {
        let mut e = engine();
        e.set_max_steps(40);
        let mut now = 0u64;
        let mut started = vec![0u64; calls as usize];
        for c in 0..calls {
            e.start(c, "main", now).unwrap();
        }
        let mut ended = vec![false; calls as usize];
        let mut steps = vec![0u64; calls as usize];
        let mut logged_ms = vec![0u64; calls as usize];
        let mut last_step_at = started.clone();
        let check = |e: &mut IvrEngine, ended: &mut Vec<bool>, steps: &mut Vec<u64>,
                     logged_ms: &mut Vec<u64>, last: &mut Vec<u64>, now: u64|
         -> Result<(), TestCaseError> {
            for a in e.drain_actions() {
                let call = match &a {
                    IvrAction::Play { call, .. } | IvrAction::StopPlay { call }
                    | IvrAction::CollectDigits { call, .. } | IvrAction::SetCallData { call, .. }
                    | IvrAction::Goto { call, .. } | IvrAction::Hangup { call } => *call,
                    IvrAction::Log(s) => s.call,
                } as usize;
                prop_assert!(!ended[call], "action after the end: {a:?}");
                match a {
                    IvrAction::Log(s) => {
                        steps[call] += 1;
                        logged_ms[call] += s.ms_in_node;
                        prop_assert!(last[call] + s.ms_in_node <= now);
                        last[call] += s.ms_in_node;
                        if s.exit == IvrExit::CallerHangup { ended[call] = true; }
                    }
                    IvrAction::Goto { dest, .. } => {
                        prop_assert!(!matches!(dest, Destination::Ivr(_) | Destination::Hangup));
                        ended[call] = true;
                    }
                    IvrAction::Hangup { .. } => ended[call] = true,
                    _ => {}
                }
            }
            Ok(())
        };
        for (i, inp) in inputs.iter().enumerate() {
            let call = i as u64 % calls;
            match inp {
                Input::Digit(d) => e.digit(call, *d, now),
                Input::PlayDone => e.play_done(call, now),
                Input::Wait(ms) => { now += ms; e.tick(now); }
                Input::HangUp => e.caller_hung_up(call, now),
            }
            check(&mut e, &mut ended, &mut steps, &mut logged_ms, &mut last_step_at, now)?;
            now += 1;
        }
        // Then the callers go silent: prompts end and timers run out.
        for _ in 0..200 {
            if e.active_calls() == 0 { break; }
            for c in 0..calls { e.play_done(c, now); }
            now = e.next_deadline().unwrap_or(now).max(now);
            e.tick(now);
            check(&mut e, &mut ended, &mut steps, &mut logged_ms, &mut last_step_at, now)?;
        }
        prop_assert_eq!(e.active_calls(), 0);
        for c in 0..calls as usize {
            prop_assert!(ended[c]);
            prop_assert!(steps[c] >= 1 && steps[c] <= 40, "steps {}", steps[c]);
            prop_assert!(logged_ms[c] <= now - started[c]);
        }
        started.clear();
    }
}
