//! The IVR engine: walks callers through the `[[ivr]]` menus and digit collection nodes.
//!
//! Sans-IO: the engine never plays audio, reads a clock or writes a log. Call control feeds it
//! inputs — [`IvrEngine::start`], [`IvrEngine::digit`], [`IvrEngine::play_done`],
//! [`IvrEngine::caller_hung_up`] and [`IvrEngine::tick`], each with the current time in
//! milliseconds — and drains [`IvrAction`]s with [`IvrEngine::poll_action`]: play or stop a
//! prompt, pass DTMF digits on, attach call data, leave the IVR for a destination or hang up,
//! and an [`IvrStep`] record for every step so that paths and drop-out points can be analysed.
//!
//! Behaviour:
//! - Entering a node plays its prompt. A key pressed while a prompt plays stops it (barge-in,
//!   [`IvrAction::StopPlay`]) and counts as input.
//! - The `timeout_s` wait starts when the last prompt has played to the end. A timeout or an
//!   invalid key (or collected digits that fail validation) plays `timeout_prompt` /
//!   `invalid_prompt`, then the node's prompt again; after `retries` such replays the call goes
//!   to `on_timeout` / `on_invalid`.
//! - `ivr:NAME` enters another node and remembers this one for `back`; `repeat` replays.
//! - A collection node ends on its terminator key, at `max_digits`, or when the caller pauses
//!   longer than `digit_timeout_s`; the digits are then validated and, if `store_as` is set,
//!   attached to the call ([`IvrAction::SetCallData`]) before the call goes to `next`. The
//!   step log masks collected digits (`xxxx#`) so card numbers never reach it.
//! - One call takes at most [`IvrEngine::max_steps`] steps (default [`DEFAULT_MAX_STEPS`]);
//!   the step that reaches the limit hangs up instead of staying in the IVR, so every call ends
//!   in a destination or a hang-up.
//!
//! Contract with call control: report [`IvrEngine::play_done`] only for a prompt that played to
//! its end (not for one stopped with `StopPlay`), and call [`IvrEngine::tick`] at or after
//! [`IvrEngine::next_deadline`].
//!
//! Example flow (menu `main`: key 1 → `queue:sales`):
//!
//! ```
//! use cardpbx::callcenter::ivr::{IvrAction, IvrEngine, IvrExit};
//! use cardpbx::config::callcenter_routing::{Destination, IvrConfig};
//!
//! let main: IvrConfig = toml::from_str(r#"
//!     name = "main"
//!     prompt = "main.wav"
//!     choices = { 1 = "queue:sales" }
//! "#).unwrap();
//! let mut ivr = IvrEngine::new(&[main]).unwrap();
//! ivr.start(7, "main", 0).unwrap();            // call 7 answered, at t = 0 ms
//! let a: Vec<IvrAction> = ivr.drain_actions().collect();
//! assert!(matches!(a[1], IvrAction::Play { call: 7, .. }));
//! ivr.digit(7, '1', 1200);                      // barge-in 1.2 s into the prompt
//! let a: Vec<IvrAction> = ivr.drain_actions().collect();
//! assert_eq!(a[0], IvrAction::StopPlay { call: 7 });
//! let IvrAction::Log(step) = &a[1] else { panic!() };
//! assert_eq!((step.ms_in_node, step.key.as_deref()), (1200, Some("1")));
//! let sales = Destination::Queue { queue: "sales".into(), priority: 0 };
//! assert_eq!(step.exit, IvrExit::Destination(sales.clone()));
//! assert_eq!(a[2], IvrAction::Goto { call: 7, dest: sales });
//! ```

use crate::config::callcenter_routing::{Destination, DigitCheck, IvrConfig, IvrKind, MenuAction};
use crate::pbx::CallId;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;

/// Steps one call may take in the IVR before it is hung up.
pub const DEFAULT_MAX_STEPS: u32 = 64;

/// Depth of the `back` history kept per call.
const MAX_BACK_DEPTH: usize = 16;

/// How a step left its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrExit {
    /// Went to another IVR node (sub-menu, `back`, a collection node).
    Node(String),
    /// The caller asked for the menu again (`repeat`, or `back` at the top menu).
    Repeat,
    /// Invalid key, or collected digits that failed validation: the node plays again.
    RetryInvalid,
    /// No input in time: the node plays again.
    RetryTimeout,
    /// Left the IVR for a destination (including `hangup`).
    Destination(Destination),
    /// The caller hung up in this node (a drop-out).
    CallerHangup,
}

impl fmt::Display for IvrExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IvrExit::Node(n) => write!(f, "ivr:{n}"),
            IvrExit::Repeat => f.write_str("repeat"),
            IvrExit::RetryInvalid => f.write_str("retry_invalid"),
            IvrExit::RetryTimeout => f.write_str("retry_timeout"),
            IvrExit::Destination(d) => d.fmt(f),
            IvrExit::CallerHangup => f.write_str("caller_hangup"),
        }
    }
}

/// One logged IVR step (a row of the store's `ivr_log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrStep {
    /// The call.
    pub call: CallId,
    /// The node's name.
    pub node: String,
    /// The key pressed (menus), the masked digits (collection, `xxxx#`), or `None` for a
    /// timeout or hang-up.
    pub key: Option<String>,
    /// Milliseconds from entering (or replaying) the node to this step.
    pub ms_in_node: u64,
    /// Where the step went.
    pub exit: IvrExit,
}

/// What call control must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Play a prompt to the caller; report [`IvrEngine::play_done`] when it ends.
    Play {
        /// The call.
        call: CallId,
        /// The prompt file, as written in the configuration.
        prompt: PathBuf,
    },
    /// Stop the prompt playing (barge-in); no `play_done` follows for it.
    StopPlay {
        /// The call.
        call: CallId,
    },
    /// Pass this call's DTMF digits to [`IvrEngine::digit`] (sent on entering each node).
    CollectDigits {
        /// The call.
        call: CallId,
        /// Most digits the node takes (1 for a menu).
        max_digits: u32,
        /// The key that ends the input, if any.
        terminator: Option<char>,
    },
    /// Attach collected digits to the call under a key (call data, kept across transfers).
    SetCallData {
        /// The call.
        call: CallId,
        /// The `store_as` key.
        key: String,
        /// The digits.
        value: String,
    },
    /// The call leaves the IVR for this destination (never `Hangup`, never `Ivr`).
    Goto {
        /// The call.
        call: CallId,
        /// Where it goes.
        dest: Destination,
    },
    /// Clear the call; the call has left the IVR.
    Hangup {
        /// The call.
        call: CallId,
    },
    /// Record this step.
    Log(IvrStep),
}

/// Why the engine could not be built or a call could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IvrError {
    /// A destination or `start` names a node that does not exist.
    #[error("unknown IVR menu {0:?}")]
    UnknownMenu(String),
    /// Two nodes have the same name.
    #[error("IVR menu {0:?} is defined twice")]
    Duplicate(String),
    /// `start` for a call that is already in the IVR.
    #[error("call {0} is already in the IVR")]
    AlreadyActive(CallId),
}

/// Where an action leads, with `ivr:` names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Node(usize),
    Dest(Destination),
}

#[derive(Debug, Clone)]
enum Choice {
    Go(Target),
    Repeat,
    Back,
}

#[derive(Debug, Clone)]
struct Node {
    cfg: IvrConfig,
    choices: HashMap<char, Choice>,
    on_timeout: Target,
    on_invalid: Target,
    next: Target,
}

#[derive(Debug, Clone)]
struct Session {
    node: usize,
    back: Vec<usize>,
    tries: u32,
    steps: u32,
    /// Start of the current step (node entry or last replay), ms.
    step_start: u64,
    playing: bool,
    queued: VecDeque<PathBuf>,
    deadline: Option<u64>,
    digits: String,
}

/// What ended a step, before the node's rules decide the exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Invalid,
    Timeout,
}

/// The IVR engine for all calls in the IVR.
#[derive(Debug, Clone)]
pub struct IvrEngine {
    nodes: Vec<Node>,
    by_name: HashMap<String, usize>,
    calls: BTreeMap<CallId, Session>,
    actions: VecDeque<IvrAction>,
    max_steps: u32,
}

/// Whether `digits` pass the Luhn (mod 10) check.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl IvrEngine {
    /// Build the engine from the `[[ivr]]` nodes.
    ///
    /// # Errors
    /// A duplicate name or a reference to an unknown node (a checked configuration has none).
    pub fn new(nodes: &[IvrConfig]) -> Result<IvrEngine, IvrError> {
        let mut by_name = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            if by_name.insert(n.name.clone(), i).is_some() {
                return Err(IvrError::Duplicate(n.name.clone()));
            }
        }
        let resolve = |d: &Destination| -> Result<Target, IvrError> {
            match d {
                Destination::Ivr(n) => by_name
                    .get(n)
                    .map(|&i| Target::Node(i))
                    .ok_or_else(|| IvrError::UnknownMenu(n.clone())),
                d => Ok(Target::Dest(d.clone())),
            }
        };
        let mut compiled = Vec::with_capacity(nodes.len());
        for n in nodes {
            let mut choices = HashMap::new();
            if n.kind == IvrKind::Menu {
                for (key, action) in &n.choices {
                    let Some(k) = key.chars().next() else { continue };
                    let c = match action {
                        MenuAction::Go(d) => Choice::Go(resolve(d)?),
                        MenuAction::Repeat => Choice::Repeat,
                        MenuAction::Back => Choice::Back,
                    };
                    choices.insert(k, c);
                }
            }
            compiled.push(Node {
                cfg: n.clone(),
                choices,
                on_timeout: resolve(&n.on_timeout)?,
                on_invalid: resolve(&n.on_invalid)?,
                next: resolve(n.next.as_ref().unwrap_or(&Destination::Hangup))?,
            });
        }
        Ok(IvrEngine {
            nodes: compiled,
            by_name,
            calls: BTreeMap::new(),
            actions: VecDeque::new(),
            max_steps: DEFAULT_MAX_STEPS,
        })
    }

    /// The step limit per call.
    pub fn max_steps(&self) -> u32 {
        self.max_steps
    }

    /// Change the step limit per call (at least 1).
    pub fn set_max_steps(&mut self, steps: u32) {
        self.max_steps = steps.max(1);
    }

    /// Put `call` into node `menu` at time `now` (ms).
    ///
    /// # Errors
    /// An unknown node, or a call already in the IVR.
    pub fn start(&mut self, call: CallId, menu: &str, now: u64) -> Result<(), IvrError> {
        let &node = self.by_name.get(menu).ok_or_else(|| IvrError::UnknownMenu(menu.into()))?;
        if self.calls.contains_key(&call) {
            return Err(IvrError::AlreadyActive(call));
        }
        self.calls.insert(
            call,
            Session {
                node,
                back: Vec::new(),
                tries: 0,
                steps: 0,
                step_start: now,
                playing: false,
                queued: VecDeque::new(),
                deadline: None,
                digits: String::new(),
            },
        );
        self.enter(call, node, now);
        Ok(())
    }

    /// A DTMF key from the caller. Ignored for calls not in the IVR.
    pub fn digit(&mut self, call: CallId, d: char, now: u64) {
        let Some(s) = self.calls.get_mut(&call) else { return };
        if s.playing {
            s.playing = false;
            s.queued.clear();
            self.actions.push_back(IvrAction::StopPlay { call });
        }
        let node = &self.nodes[s.node];
        match node.cfg.kind {
            IvrKind::Menu => {
                s.deadline = None;
                let key = Some(d.to_string());
                match node.choices.get(&d).cloned() {
                    None => self.fail(call, key, Failure::Invalid, now),
                    Some(Choice::Repeat) => self.replay(call, key, IvrExit::Repeat, None, now),
                    Some(Choice::Back) => {
                        match self.calls.get_mut(&call).and_then(|s| s.back.pop()) {
                            Some(prev) => self.leave(call, key, Target::Node(prev), false, now),
                            None => self.replay(call, key, IvrExit::Repeat, None, now),
                        }
                    }
                    Some(Choice::Go(t)) => self.leave(call, key, t, true, now),
                }
            }
            IvrKind::Collect => {
                if node.cfg.terminator_key() == Some(d) {
                    s.digits.push(d);
                    self.complete(call, now);
                } else {
                    s.digits.push(d);
                    let max = node.cfg.max_digits as usize;
                    let wait = node.cfg.digit_timeout_s.unwrap_or(node.cfg.timeout_s);
                    if s.digits.chars().count() >= max {
                        s.deadline = None;
                        self.complete(call, now);
                    } else {
                        s.deadline = Some(now + u64::from(wait) * 1000);
                    }
                }
            }
        }
    }

    /// The prompt last played to `call` has ended. Ignored when nothing was playing.
    pub fn play_done(&mut self, call: CallId, now: u64) {
        let Some(s) = self.calls.get_mut(&call) else { return };
        if !s.playing {
            return;
        }
        if let Some(next) = s.queued.pop_front() {
            self.actions.push_back(IvrAction::Play { call, prompt: next });
        } else {
            s.playing = false;
            let wait = if s.digits.is_empty() {
                self.nodes[s.node].cfg.timeout_s
            } else {
                let c = &self.nodes[s.node].cfg;
                c.digit_timeout_s.unwrap_or(c.timeout_s)
            };
            s.deadline = Some(now + u64::from(wait) * 1000);
        }
    }

    /// The caller hung up: the drop-out is logged and the call leaves the IVR.
    pub fn caller_hung_up(&mut self, call: CallId, now: u64) {
        let Some(s) = self.calls.remove(&call) else { return };
        self.actions.push_back(IvrAction::Log(IvrStep {
            call,
            node: self.nodes[s.node].cfg.name.clone(),
            key: None,
            ms_in_node: now.saturating_sub(s.step_start),
            exit: IvrExit::CallerHangup,
        }));
    }

    /// Handle the timers due at `now` (in call order; each expiry is timed at its deadline).
    pub fn tick(&mut self, now: u64) {
        let due: Vec<(CallId, u64)> = self
            .calls
            .iter()
            .filter_map(|(&c, s)| s.deadline.filter(|&d| d <= now).map(|d| (c, d)))
            .collect();
        for (call, at) in due {
            let Some(s) = self.calls.get_mut(&call) else { continue };
            s.deadline = None;
            if self.nodes[s.node].cfg.kind == IvrKind::Collect && !s.digits.is_empty() {
                self.complete(call, at);
            } else {
                self.fail(call, None, Failure::Timeout, at);
            }
        }
    }

    /// The earliest pending timer, ms.
    pub fn next_deadline(&self) -> Option<u64> {
        self.calls.values().filter_map(|s| s.deadline).min()
    }

    /// The next action for call control.
    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    /// All pending actions, in order.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = IvrAction> + '_ {
        self.actions.drain(..)
    }

    /// Whether `call` is in the IVR.
    pub fn is_active(&self, call: CallId) -> bool {
        self.calls.contains_key(&call)
    }

    /// The node `call` is in.
    pub fn current_node(&self, call: CallId) -> Option<&str> {
        self.calls.get(&call).map(|s| self.nodes[s.node].cfg.name.as_str())
    }

    /// Number of calls in the IVR.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    fn enter(&mut self, call: CallId, node: usize, now: u64) {
        let Some(s) = self.calls.get_mut(&call) else { return };
        s.node = node;
        s.tries = 0;
        s.digits.clear();
        s.deadline = None;
        s.step_start = now;
        let cfg = &self.nodes[node].cfg;
        let (max_digits, terminator) = match cfg.kind {
            IvrKind::Menu => (1, None),
            IvrKind::Collect => (cfg.max_digits, cfg.terminator_key()),
        };
        self.actions.push_back(IvrAction::CollectDigits { call, max_digits, terminator });
        self.actions.push_back(IvrAction::Play { call, prompt: cfg.prompt.clone() });
        s.playing = true;
        s.queued.clear();
    }

    /// Log a step; `false` (and a hang-up done) when the step limit is reached.
    fn log(&mut self, call: CallId, key: Option<String>, exit: IvrExit, now: u64) -> bool {
        let Some(s) = self.calls.get_mut(&call) else { return false };
        s.steps += 1;
        let stays = !matches!(exit, IvrExit::Destination(_));
        let over = stays && s.steps >= self.max_steps;
        let exit = if over { IvrExit::Destination(Destination::Hangup) } else { exit };
        self.actions.push_back(IvrAction::Log(IvrStep {
            call,
            node: self.nodes[s.node].cfg.name.clone(),
            key,
            ms_in_node: now.saturating_sub(s.step_start),
            exit,
        }));
        s.step_start = now;
        if over {
            self.calls.remove(&call);
            self.actions.push_back(IvrAction::Hangup { call });
        }
        !over
    }

    /// Play the node again, after an optional extra prompt.
    fn replay(
        &mut self,
        call: CallId,
        key: Option<String>,
        exit: IvrExit,
        first: Option<PathBuf>,
        now: u64,
    ) {
        if !self.log(call, key, exit, now) {
            return;
        }
        let Some(s) = self.calls.get_mut(&call) else { return };
        s.digits.clear();
        s.deadline = None;
        let prompt = self.nodes[s.node].cfg.prompt.clone();
        s.playing = true;
        s.queued.clear();
        let first = match first {
            Some(f) => {
                s.queued.push_back(prompt);
                f
            }
            None => prompt,
        };
        self.actions.push_back(IvrAction::Play { call, prompt: first });
    }

    /// Leave the current node for `target`; `remember` keeps it for `back`.
    fn leave(
        &mut self,
        call: CallId,
        key: Option<String>,
        target: Target,
        remember: bool,
        now: u64,
    ) {
        let exit = match &target {
            Target::Node(i) => IvrExit::Node(self.nodes[*i].cfg.name.clone()),
            Target::Dest(d) => IvrExit::Destination(d.clone()),
        };
        if !self.log(call, key, exit, now) {
            return;
        }
        match target {
            Target::Node(i) => {
                if let Some(s) = self.calls.get_mut(&call) {
                    if remember {
                        if s.back.len() == MAX_BACK_DEPTH {
                            s.back.remove(0);
                        }
                        s.back.push(s.node);
                    }
                }
                self.enter(call, i, now);
            }
            Target::Dest(d) => {
                self.calls.remove(&call);
                self.actions.push_back(match d {
                    Destination::Hangup => IvrAction::Hangup { call },
                    dest => IvrAction::Goto { call, dest },
                });
            }
        }
    }

    /// A timeout or invalid input: replay with the matching prompt, or give up.
    fn fail(&mut self, call: CallId, key: Option<String>, why: Failure, now: u64) {
        let Some(s) = self.calls.get_mut(&call) else { return };
        s.tries += 1;
        let node = &self.nodes[s.node];
        if s.tries > node.cfg.retries {
            let t = match why {
                Failure::Invalid => node.on_invalid.clone(),
                Failure::Timeout => node.on_timeout.clone(),
            };
            self.leave(call, key, t, false, now);
        } else {
            let (exit, prompt) = match why {
                Failure::Invalid => (IvrExit::RetryInvalid, node.cfg.invalid_prompt.clone()),
                Failure::Timeout => (IvrExit::RetryTimeout, node.cfg.timeout_prompt.clone()),
            };
            self.replay(call, key, exit, prompt, now);
        }
    }

    /// A collection node's input is complete: validate and move on.
    fn complete(&mut self, call: CallId, now: u64) {
        let Some(s) = self.calls.get_mut(&call) else { return };
        let cfg = &self.nodes[s.node].cfg;
        let mut digits = std::mem::take(&mut s.digits);
        let masked: String =
            digits.chars().map(|c| if c.is_ascii_digit() { 'x' } else { c }).collect();
        if cfg.terminator_key().is_some_and(|t| digits.ends_with(t)) {
            digits.pop();
        }
        let n = digits.chars().count() as u32;
        let ok = n >= cfg.min_digits
            && n <= cfg.max_digits
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (cfg.validate != DigitCheck::Luhn || luhn_valid(&digits));
        if !ok {
            self.fail(call, Some(masked), Failure::Invalid, now);
            return;
        }
        if let Some(key) = cfg.store_as.clone() {
            self.actions.push_back(IvrAction::SetCallData { call, key, value: digits });
        }
        let next = self.nodes[s.node].next.clone();
        self.leave(call, Some(masked), next, true, now);
    }
}

#[cfg(test)]
#[path = "ivr_tests.rs"]
mod tests;
