//! Automatic call distribution: queues of waiting calls, agents who log in to them from any
//! phone, and the choice of which agent's phone rings for which call.
//!
//! [`Acd`] is a sans-IO engine. It never reads a clock, opens a file or touches a channel: call
//! control passes the time in (milliseconds on the daemon's clock, virtual in the simulator) with
//! every input, and drains [`Action`]s that say what to do (ring this extension, connect that
//! call, play an announcement, send the call elsewhere) and what to record (agent state changes
//! and queue events for the store and the CTI stream, one record per transition).
//! It does not place or bridge calls itself, play audio or persist anything.
//!
//! # Flow
//! ```
//! use cardpbx::callcenter::acd::{Acd, Action, Arrival};
//! use cardpbx::config::callcenter::{AgentConfig, QueueConfig};
//!
//! let queues: Vec<QueueConfig> = vec![toml::from_str("number = \"600\"\nname = \"sales\"").unwrap()];
//! let agents: Vec<AgentConfig> = vec![toml::from_str(
//!     "id = \"101\"\npin = \"1234\"\nname = \"Ann\"\nqueues = [\"600\"]",
//! )
//! .unwrap()];
//! // In the daemon: Acd::new(&config.queues, &config.agents).
//! let mut acd = Acd::new(&queues, &agents);
//! let sales = acd.queue_by_number("600").unwrap();
//!
//! // Ann dials the login feature code on extension 2001 and keys 101 + 1234.
//! let ann = acd.login("101", "1234", "2001", 0).unwrap();
//! // A call is routed to the queue.
//! acd.call_arrives(1_000, sales, Arrival::new(7, "13800000001")).unwrap();
//! let actions: Vec<Action> = acd.drain_actions().collect();
//! assert!(actions.iter().any(|a| matches!(a,
//!     Action::RingAgent { call: 7, extension, .. } if extension == "2001")));
//! // Call control rings 2001; Ann picks up.
//! acd.agent_answered(ann, 4_000).unwrap();
//! assert!(acd.drain_actions().any(|a| matches!(a, Action::Connect { call: 7, .. })));
//! // ... talk ... either side clears.
//! acd.call_ended(ann, 60_000).unwrap();
//! // Timers (ring timeouts, wrap-up, announcements, maximum wait) fire from tick().
//! if let Some(at) = acd.poll_timeout() {
//!     acd.tick(at);
//! }
//! ```
//! Call control's side: feed every input with the current time, then drain the actions and
//! carry them out: [`Action::RingAgent`] (ring the extension; report
//! [`Acd::agent_answered`] or [`Acd::agent_no_answer`]), [`Action::StopRinging`],
//! [`Action::Connect`] (bridge the waiting caller to the agent), [`Action::Announce`] (play the
//! position / wait prompts, then resume music on hold from [`Acd::music_on_hold`]),
//! [`Action::Overflow`], [`Action::OfferCallback`] and [`Action::DialOut`] (callbacks),
//! [`Action::Supervise`] (switch matrix), and pass [`Action::AgentState`] and
//! [`Action::QueueEvent`] on to the store and the event stream. Call [`Acd::tick`] when
//! [`Acd::poll_timeout`] is due.
//!
//! Wiring notes: agent feature codes dialled on an extension map to [`Acd::login`],
//! [`Acd::logout`], [`Acd::set_ready`] and [`Acd::set_not_ready`] ([`Acd::agent_at`] finds the
//! agent on an extension). Calls an agent makes or takes outside the ACD are reported with
//! [`Acd::agent_direct_call`]. A transfer of a queue call is [`Acd::call_ended`] for the agent
//! (then, for a transfer into a queue, [`Acd::call_arrives`] with the same call id). An
//! [`Action::Overflow`] to [`OverflowTarget::Callback`] means: run the callback attendant, then
//! [`Acd::request_callback`]. The engine allocates and scans all agents per input; it belongs
//! on the control plane, never on the media tick.

mod supervise;

use crate::config::callcenter::{
    find_queue_in, AgentConfig, OverflowTarget, QueueConfig, QueueStrategy,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

pub use supervise::{SuperviseError, SupervisorAction, SupervisorOp};

/// A call's identity, as call control numbers calls (the same as `pbx::CallId`).
pub type CallId = u64;

/// Milliseconds on the caller's clock (any epoch; only differences matter).
pub type Millis = u64;

/// Handling time assumed for the estimated wait until a queue has answered calls (3 minutes).
pub const DEFAULT_HANDLE_MS: u64 = 180_000;

/// How many recent calls the average handling time is taken over.
pub const HANDLE_WINDOW: usize = 20;

/// Consecutive wrong PINs after which an agent's login is locked.
pub const MAX_PIN_FAILURES: u32 = 5;

/// How long a locked login stays locked, ms.
pub const PIN_LOCK_MS: Millis = 300_000;

/// How often a callback is tried before it is dropped.
pub const MAX_CALLBACK_ATTEMPTS: u32 = 3;

/// A queue, by its index in the configuration's `[[queue]]` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

/// An agent, by index in the configuration's `[[agent]]` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u16);

/// A callback request, numbered in the order the requests were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallbackId(pub u64);

/// Why an agent is not ready (break, lunch, training...): a site-defined code, with a few codes
/// the ACD itself uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(pub u16);

impl ReasonCode {
    /// No reason given.
    pub const UNSPECIFIED: ReasonCode = ReasonCode(0);
    /// Set by the ACD when the agent's phone rang out or could not ring.
    pub const NO_ANSWER: ReasonCode = ReasonCode(900);
    /// Set by the ACD when the agent starts listening, whispering or barging in.
    pub const SUPERVISING: ReasonCode = ReasonCode(901);
}

/// An agent's state, as reported to the store and the CTI stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Not logged in; bound to no extension.
    LoggedOut,
    /// Logged in and waiting for a call.
    Ready,
    /// Logged in, takes no calls.
    NotReady(ReasonCode),
    /// The agent's phone rings for a call or a callback offer.
    Ringing,
    /// On a call (a queue call, an accepted callback or a direct call).
    OnCall,
    /// After-call work; ready again when the queue's wrap-up time is over.
    WrapUp,
}

/// What an agent is ringing for or talking on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    /// A call from a queue.
    Call(CallId),
    /// A callback request (offered, or accepted and dialled out).
    Callback(CallbackId),
    /// A call that did not come through the ACD (dialled by or to the agent directly).
    Direct(CallId),
}

/// A call offered to a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The call.
    pub call: CallId,
    /// The calling number (ANI), matched against the queue's priority rules.
    pub caller: String,
    /// Priority given by routing (VIP list, emergency); the queue's rules may raise it.
    pub priority: u8,
    /// Skills the call needs beyond the queue's own (for example a language chosen in the IVR):
    /// skill name and minimum level.
    pub skills: Vec<(String, u8)>,
    /// The agent to try first (sticky routing to the caller's last agent, or a VIP's own
    /// agent): rung when ready and skilled enough, even if not a member of the queue;
    /// otherwise, or after a ring timeout, the queue's strategy picks.
    pub preferred: Option<AgentId>,
}

impl Arrival {
    /// A call with normal priority and no extra skills.
    pub fn new(call: CallId, caller: &str) -> Arrival {
        Arrival {
            call,
            caller: caller.to_string(),
            priority: 0,
            skills: Vec::new(),
            preferred: None,
        }
    }
}

/// A record of something that happened in a queue, for the queue log and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEvent {
    /// When.
    pub at_ms: Millis,
    /// Which queue.
    pub queue: QueueId,
    /// What.
    pub kind: QueueEventKind,
}

/// Why a caller left a queue other than by being answered or hanging up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowReason {
    /// The queue's `max_length` calls were already waiting.
    QueueFull,
    /// The caller waited the queue's `max_wait_s`.
    MaxWait,
}

/// The kinds of [`QueueEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEventKind {
    /// The call joined the queue at `position` (1 = next to be served).
    Enter {
        /// The call.
        call: CallId,
        /// Its place in the queue.
        position: u32,
        /// Its priority (0 normal).
        priority: u8,
    },
    /// An agent's phone rang for the call without being answered (ring timeout, or the phone
    /// could not ring).
    RingNoAnswer {
        /// The call.
        call: CallId,
        /// The agent.
        agent: AgentId,
    },
    /// An agent answered.
    Answer {
        /// The call.
        call: CallId,
        /// The agent.
        agent: AgentId,
        /// Time from entering the queue.
        wait_ms: u64,
    },
    /// The caller hung up while waiting.
    Abandon {
        /// The call.
        call: CallId,
        /// Its place when it left.
        position: u32,
        /// Time from entering the queue.
        wait_ms: u64,
    },
    /// The caller waited the maximum time and was sent to the overflow target.
    Timeout {
        /// The call.
        call: CallId,
        /// Time from entering the queue.
        wait_ms: u64,
        /// Where it went.
        target: OverflowTarget,
    },
    /// The queue was full; the call was sent to the overflow target without entering.
    Overflow {
        /// The call.
        call: CallId,
        /// Where it went.
        target: OverflowTarget,
    },
    /// A caller asked to be called back.
    CallbackRequested {
        /// The request.
        callback: CallbackId,
        /// The number to call.
        number: String,
    },
    /// An agent accepted a callback; the number is being dialled.
    CallbackAccepted {
        /// The request.
        callback: CallbackId,
        /// The agent.
        agent: AgentId,
        /// Time since the request.
        wait_ms: u64,
    },
    /// The callback reached the customer and the call is over.
    CallbackDone {
        /// The request.
        callback: CallbackId,
        /// The agent.
        agent: AgentId,
    },
    /// The customer could not be reached; the request goes back in line (`dropped` false) or
    /// is given up after [`MAX_CALLBACK_ATTEMPTS`] (`dropped` true).
    CallbackUnreached {
        /// The request.
        callback: CallbackId,
        /// Attempts so far.
        attempts: u32,
        /// Whether the request was given up.
        dropped: bool,
    },
}

/// What call control must do, or record, after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ring the agent's extension for a waiting call.
    RingAgent {
        /// The waiting call.
        call: CallId,
        /// Its queue.
        queue: QueueId,
        /// The agent.
        agent: AgentId,
        /// The extension the agent is logged in on.
        extension: String,
    },
    /// Ring the agent's extension to offer a callback; when the agent answers, tell them the
    /// customer's data is ready and report [`Acd::agent_answered`] (accept) or
    /// [`Acd::agent_no_answer`] (decline).
    OfferCallback {
        /// The request.
        callback: CallbackId,
        /// Its queue.
        queue: QueueId,
        /// The agent.
        agent: AgentId,
        /// The agent's extension.
        extension: String,
        /// The number to call.
        number: String,
    },
    /// Stop ringing the agent's extension (someone else answered, the caller left, timeout).
    StopRinging {
        /// The agent.
        agent: AgentId,
        /// The extension.
        extension: String,
        /// What it rang for.
        work: Work,
    },
    /// Bridge the waiting call to the agent who answered.
    Connect {
        /// The call.
        call: CallId,
        /// The agent.
        agent: AgentId,
        /// The agent's extension.
        extension: String,
    },
    /// Dial the callback number on a trunk and connect it to the agent, who is off hook.
    /// Report [`Acd::call_ended`] when done or [`Acd::callback_unreached`] if nobody answered.
    DialOut {
        /// The request.
        callback: CallbackId,
        /// The agent.
        agent: AgentId,
        /// The agent's extension.
        extension: String,
        /// The number to call.
        number: String,
    },
    /// Play the queue announcement to a waiting caller, then resume music on hold.
    Announce {
        /// The call.
        call: CallId,
        /// Its queue.
        queue: QueueId,
        /// Its position, if the queue announces positions.
        position: Option<u32>,
        /// Estimated wait in seconds, if the queue announces it and an agent is staffed.
        ewt_s: Option<u32>,
    },
    /// The call left the queue unanswered: send it to `target`. For
    /// [`OverflowTarget::Queue`] the ACD has already moved it (an `Enter` event follows) and
    /// only the music may change; [`OverflowTarget::Voicemail`]`(None)` means `queue`'s mailbox.
    Overflow {
        /// The call.
        call: CallId,
        /// The queue it left.
        queue: QueueId,
        /// Where to.
        target: OverflowTarget,
    },
    /// An agent's state changed.
    AgentState {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
        /// The extension the agent is logged in on (`None` when logged out); a login that
        /// moves a ready agent to another phone is reported with the same state.
        extension: Option<String>,
        /// When.
        at_ms: Millis,
    },
    /// Something happened in a queue.
    QueueEvent(QueueEvent),
    /// Configure the switch matrix for a supervisor.
    Supervise(SupervisorAction),
}

/// An input the engine refuses: it does not fit the engine's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    /// No such queue.
    #[error("no such queue")]
    UnknownQueue,
    /// No such agent.
    #[error("no such agent")]
    UnknownAgent,
    /// The call is neither waiting nor connected to an agent.
    #[error("call {0} is not in the ACD")]
    UnknownCall(CallId),
    /// The call is already in the ACD.
    #[error("call {0} is already in the ACD")]
    DuplicateCall(CallId),
    /// The agent is not logged in.
    #[error("agent is not logged in")]
    NotLoggedIn,
    /// The agent's phone is not ringing.
    #[error("agent's phone is not ringing")]
    NotRinging,
    /// The agent is not on a call (or not on a callback, for callback reports).
    #[error("agent is not on a call")]
    NotOnCall,
    /// The agent is on a call or ringing.
    #[error("agent is busy")]
    Busy,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// No agent has this number.
    #[error("unknown agent number")]
    UnknownAgent,
    /// The PIN is wrong; `failures` consecutive wrong PINs so far.
    #[error("wrong PIN ({failures} in a row)")]
    WrongPin {
        /// Consecutive failures.
        failures: u32,
    },
    /// Too many wrong PINs; login is locked until the given time.
    #[error("login locked after too many wrong PINs")]
    Locked {
        /// When the lock ends.
        until_ms: Millis,
    },
    /// Another agent is logged in on this extension.
    #[error("another agent is logged in on this extension")]
    ExtensionTaken(AgentId),
    /// The agent is on a call or ringing elsewhere and cannot move now.
    #[error("the agent is busy on another extension")]
    Busy,
}

/// A snapshot of one agent, for `show` commands and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// The agent number.
    pub number: String,
    /// The name.
    pub name: String,
    /// The state.
    pub state: AgentState,
    /// The extension the agent is logged in on.
    pub extension: Option<String>,
    /// What the agent is ringing for or talking on.
    pub work: Option<Work>,
    /// Queue calls and callbacks answered since logging in.
    pub calls_answered: u32,
    /// Talk time since logging in, ms.
    pub talk_ms: u64,
    /// Wrong PINs entered, in total.
    pub pin_failures: u32,
}

/// A snapshot of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    /// The queue number.
    pub number: String,
    /// The name.
    pub name: String,
    /// Calls waiting (including those ringing an agent).
    pub waiting: u32,
    /// How long the longest-waiting call has waited, ms.
    pub longest_wait_ms: u64,
    /// Members logged in and not in not-ready.
    pub staffed: u32,
    /// Members ready for a call.
    pub ready: u32,
    /// Callback requests not yet accepted.
    pub callbacks: u32,
    /// Average handling time (talk + wrap-up) over recent calls, ms, if any were handled.
    pub avg_handle_ms: Option<u64>,
}

/// A skill requirement: skill index and minimum level.
type Need = (usize, u8);

struct Queue {
    cfg: QueueConfig,
    required: Vec<Need>,
    overflow_queue: Option<QueueId>,
    members: Vec<AgentId>,
    /// Waiting calls, best first: priority descending, then arrival.
    waiting: Vec<CallId>,
    rr_last: Option<AgentId>,
    handle_ms: VecDeque<u64>,
}

struct Agent {
    number: String,
    pin: String,
    name: String,
    levels: Vec<u8>,
    queues: Vec<QueueId>,
    supervisor_of: Vec<QueueId>,
    extension: Option<String>,
    state: AgentState,
    work: Option<Work>,
    work_queue: Option<QueueId>,
    idle_since: Millis,
    wrap_until: Millis,
    answered_at: Millis,
    pending: Option<ReasonCode>,
    calls: u32,
    talk_ms: u64,
    pin_failures: u32,
    consecutive_failures: u32,
    locked_until: Millis,
}

impl Agent {
    fn level(&self, skill: usize) -> u8 {
        self.levels.get(skill).copied().unwrap_or(0)
    }
    fn has(&self, needs: &[Need]) -> bool {
        needs.iter().all(|&(s, l)| self.level(s) >= l)
    }
}

struct Waiting {
    queue: QueueId,
    caller: String,
    priority: u8,
    extra: Vec<Need>,
    needs: Vec<Need>,
    arrived: Millis,
    seq: u64,
    ringing: Vec<AgentId>,
    ring_deadline: Millis,
    next_announce: Option<Millis>,
    hops: usize,
    preferred: Option<AgentId>,
}

struct Callback {
    queue: QueueId,
    number: String,
    requested: Millis,
    order: u64,
    attempts: u32,
    agent: Option<AgentId>,
    accepted: bool,
    ring_deadline: Millis,
}

/// The ACD engine. See the module documentation for the flow.
pub struct Acd {
    queues: Vec<Queue>,
    agents: Vec<Agent>,
    skills: Vec<String>,
    calls: BTreeMap<CallId, Waiting>,
    callbacks: BTreeMap<CallbackId, Callback>,
    next_seq: u64,
    next_callback: u64,
    actions: VecDeque<Action>,
}

fn intern(skills: &mut Vec<String>, name: &str) -> usize {
    match skills.iter().position(|s| s == name) {
        Some(i) => i,
        None => {
            skills.push(name.to_string());
            skills.len() - 1
        }
    }
}

/// Merge requirements, keeping the higher level for a skill named twice.
fn merge(a: &[Need], b: &[Need]) -> Vec<Need> {
    let mut out = a.to_vec();
    for &(s, l) in b {
        match out.iter_mut().find(|(t, _)| *t == s) {
            Some(n) => n.1 = n.1.max(l),
            None => out.push((s, l)),
        }
    }
    out
}

impl Acd {
    /// An engine for these queues and agents (a checked configuration's `queues` and
    /// `agents`; references to unknown queues are ignored). All agents start logged out.
    pub fn new(queues: &[QueueConfig], agents: &[AgentConfig]) -> Acd {
        let mut skills = Vec::new();
        let find_q = |n: &str| find_queue_in(queues, n).map(|i| QueueId(i as u16));
        let mut qs: Vec<Queue> = queues
            .iter()
            .map(|q| Queue {
                required: q.skills.iter().map(|(s, &l)| (intern(&mut skills, s), l)).collect(),
                overflow_queue: match &q.overflow {
                    OverflowTarget::Queue(n) => find_q(n),
                    _ => None,
                },
                cfg: q.clone(),
                members: Vec::new(),
                waiting: Vec::new(),
                rr_last: None,
                handle_ms: VecDeque::with_capacity(HANDLE_WINDOW),
            })
            .collect();
        let mut ags = Vec::with_capacity(agents.len());
        for (i, a) in agents.iter().enumerate() {
            let id = AgentId(i as u16);
            let mut levels = Vec::new();
            for (s, &l) in &a.skills {
                let k = intern(&mut skills, s);
                if levels.len() <= k {
                    levels.resize(k + 1, 0);
                }
                levels[k] = l;
            }
            let member_of: Vec<QueueId> = a.queues.iter().filter_map(|n| find_q(n)).collect();
            for q in &member_of {
                qs[usize::from(q.0)].members.push(id);
            }
            ags.push(Agent {
                number: a.id.clone(),
                pin: a.pin.clone(),
                name: a.name.clone(),
                levels,
                queues: member_of,
                supervisor_of: a.supervisor_of.iter().filter_map(|n| find_q(n)).collect(),
                extension: None,
                state: AgentState::LoggedOut,
                work: None,
                work_queue: None,
                idle_since: 0,
                wrap_until: 0,
                answered_at: 0,
                pending: None,
                calls: 0,
                talk_ms: 0,
                pin_failures: 0,
                consecutive_failures: 0,
                locked_until: 0,
            });
        }
        Acd {
            queues: qs,
            agents: ags,
            skills,
            calls: BTreeMap::new(),
            callbacks: BTreeMap::new(),
            next_seq: 0,
            next_callback: 1,
            actions: VecDeque::new(),
        }
    }

    // ----- lookups and snapshots -----

    /// The queue with this number (or, failing that, this name).
    pub fn queue_by_number(&self, number: &str) -> Option<QueueId> {
        let by = |f: &dyn Fn(&Queue) -> bool| self.queues.iter().position(f);
        by(&|q| q.cfg.number == number)
            .or_else(|| by(&|q| q.cfg.name == number))
            .map(|i| QueueId(i as u16))
    }

    /// The agent with this agent number.
    pub fn agent_by_number(&self, number: &str) -> Option<AgentId> {
        self.agents.iter().position(|a| a.number == number).map(|i| AgentId(i as u16))
    }

    /// The agent logged in on this extension.
    pub fn agent_at(&self, extension: &str) -> Option<AgentId> {
        self.agents
            .iter()
            .position(|a| a.extension.as_deref() == Some(extension))
            .map(|i| AgentId(i as u16))
    }

    /// The queue's configuration.
    pub fn queue_config(&self, q: QueueId) -> Option<&QueueConfig> {
        self.queues.get(usize::from(q.0)).map(|q| &q.cfg)
    }

    /// The music on hold file for the queue's waiting callers, if it has one.
    pub fn music_on_hold(&self, q: QueueId) -> Option<&Path> {
        self.queue_config(q).and_then(|c| c.music_on_hold.as_deref())
    }

    /// A snapshot of the agent.
    pub fn agent(&self, id: AgentId) -> Option<AgentStatus> {
        self.agents.get(usize::from(id.0)).map(|a| AgentStatus {
            number: a.number.clone(),
            name: a.name.clone(),
            state: a.state,
            extension: a.extension.clone(),
            work: a.work,
            calls_answered: a.calls,
            talk_ms: a.talk_ms,
            pin_failures: a.pin_failures,
        })
    }

    /// The agent's state (`LoggedOut` for an unknown agent).
    pub fn agent_state(&self, id: AgentId) -> AgentState {
        self.agents.get(usize::from(id.0)).map_or(AgentState::LoggedOut, |a| a.state)
    }

    /// A snapshot of the queue at time `now`.
    pub fn queue(&self, id: QueueId, now: Millis) -> Option<QueueStatus> {
        let q = self.queues.get(usize::from(id.0))?;
        let longest = q.waiting.iter().map(|c| now.saturating_sub(self.calls[c].arrived)).max();
        Some(QueueStatus {
            number: q.cfg.number.clone(),
            name: q.cfg.name.clone(),
            waiting: q.waiting.len() as u32,
            longest_wait_ms: longest.unwrap_or(0),
            staffed: self.staffed(id),
            ready: q.members.iter().filter(|a| self.ag(**a).state == AgentState::Ready).count()
                as u32,
            callbacks: self.callbacks.values().filter(|c| c.queue == id && !c.accepted).count()
                as u32,
            avg_handle_ms: Self::avg(&q.handle_ms),
        })
    }

    /// Where a waiting call is: its queue and position (1 = next).
    pub fn position(&self, call: CallId) -> Option<(QueueId, u32)> {
        let w = self.calls.get(&call)?;
        let q = &self.queues[usize::from(w.queue.0)];
        let pos = q.waiting.iter().position(|c| *c == call)?;
        Some((w.queue, pos as u32 + 1))
    }

    /// The estimated wait, seconds, of a caller at `position` in the queue: position × average
    /// handling time (of the last [`HANDLE_WINDOW`] calls, [`DEFAULT_HANDLE_MS`] before any) /
    /// agents staffed. `None` when no member is staffed.
    pub fn ewt_s(&self, q: QueueId, position: u32) -> Option<u32> {
        let staffed = u64::from(self.staffed(q));
        if staffed == 0 {
            return None;
        }
        let aht = Self::avg(&self.queues[usize::from(q.0)].handle_ms).unwrap_or(DEFAULT_HANDLE_MS);
        let ms = u64::from(position) * aht / staffed;
        Some(u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX))
    }

    fn avg(v: &VecDeque<u64>) -> Option<u64> {
        (!v.is_empty()).then(|| v.iter().sum::<u64>() / v.len() as u64)
    }

    fn staffed(&self, q: QueueId) -> u32 {
        self.queues[usize::from(q.0)]
            .members
            .iter()
            .filter(|a| {
                !matches!(self.ag(**a).state, AgentState::LoggedOut | AgentState::NotReady(_))
            })
            .count() as u32
    }

    fn ag(&self, a: AgentId) -> &Agent {
        &self.agents[usize::from(a.0)]
    }

    fn ag_mut(&mut self, a: AgentId) -> &mut Agent {
        &mut self.agents[usize::from(a.0)]
    }

    fn check_agent(&self, a: AgentId) -> Result<(), AcdError> {
        if usize::from(a.0) < self.agents.len() {
            Ok(())
        } else {
            Err(AcdError::UnknownAgent)
        }
    }

    // ----- outputs and time -----

    /// The next action to carry out, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// All pending actions, oldest first.
    pub fn drain_actions(&mut self) -> std::collections::vec_deque::Drain<'_, Action> {
        self.actions.drain(..)
    }

    /// The earliest time [`Acd::tick`] has work to do: a ring timeout, the end of a wrap-up, an
    /// announcement or a maximum wait.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let mut t: Option<Millis> = None;
        let mut at = |x: Millis| t = Some(t.map_or(x, |t| t.min(x)));
        for w in self.calls.values() {
            if !w.ringing.is_empty() {
                at(w.ring_deadline);
            }
            if let Some(n) = w.next_announce {
                at(n);
            }
            if let Some(m) = self.max_wait_ms(w.queue) {
                at(w.arrived + m);
            }
        }
        for c in self.callbacks.values() {
            if c.agent.is_some() && !c.accepted {
                at(c.ring_deadline);
            }
        }
        for a in &self.agents {
            if a.state == AgentState::WrapUp {
                at(a.wrap_until);
            }
        }
        t
    }

    fn max_wait_ms(&self, q: QueueId) -> Option<u64> {
        let s = self.queues[usize::from(q.0)].cfg.max_wait_s;
        (s > 0).then(|| u64::from(s) * 1000)
    }

    /// Handle every timer due at `now`: ring timeouts (the call moves on, the agent becomes
    /// not ready with [`ReasonCode::NO_ANSWER`]), callback offers that rang out, ends of
    /// wrap-up, maximum waits (overflow) and announcements; then offer waiting work to ready
    /// agents.
    pub fn tick(&mut self, now: Millis) {
        let rung_out: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, w)| !w.ringing.is_empty() && w.ring_deadline <= now)
            .map(|(c, _)| *c)
            .collect();
        for c in rung_out {
            let agents = std::mem::take(&mut self.calls.get_mut(&c).expect("listed").ringing);
            for a in agents {
                self.ring_failed(a, now);
            }
        }
        let offers: Vec<(CallbackId, AgentId)> = self
            .callbacks
            .iter()
            .filter(|(_, c)| !c.accepted && c.ring_deadline <= now)
            .filter_map(|(id, c)| c.agent.map(|a| (*id, a)))
            .collect();
        for (_, a) in offers {
            self.ring_failed(a, now);
        }
        for i in 0..self.agents.len() {
            let a = &self.agents[i];
            if a.state == AgentState::WrapUp && a.wrap_until <= now {
                self.finish_work(AgentId(i as u16), now);
            }
        }
        let expired: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, w)| self.max_wait_ms(w.queue).is_some_and(|m| w.arrived + m <= now))
            .map(|(c, _)| *c)
            .collect();
        for c in expired {
            let w = self.leave_queue(c, now);
            let q = w.queue;
            let target = self.overflow_target(&w);
            self.event(
                now,
                q,
                QueueEventKind::Timeout {
                    call: c,
                    wait_ms: now - w.arrived,
                    target: target.clone(),
                },
            );
            self.overflow(now, c, w, target);
        }
        self.settle(now);
    }

    // ----- calls -----

    /// A call is routed to queue `q`. It waits (ordered by priority, then arrival), overflows
    /// at once if the queue is full, or rings an agent.
    ///
    /// # Errors
    /// [`AcdError::UnknownQueue`], or [`AcdError::DuplicateCall`] if the call is already
    /// waiting or connected to an agent.
    pub fn call_arrives(
        &mut self,
        now: Millis,
        q: QueueId,
        arrival: Arrival,
    ) -> Result<(), AcdError> {
        if usize::from(q.0) >= self.queues.len() {
            return Err(AcdError::UnknownQueue);
        }
        if self.calls.contains_key(&arrival.call) || self.agent_on(arrival.call).is_some() {
            return Err(AcdError::DuplicateCall(arrival.call));
        }
        let extra: Vec<Need> =
            arrival.skills.iter().map(|(s, l)| (intern(&mut self.skills, s), *l)).collect();
        let w = Waiting {
            queue: q,
            caller: arrival.caller,
            priority: arrival.priority,
            needs: Vec::new(),
            extra,
            arrived: now,
            seq: 0,
            ringing: Vec::new(),
            ring_deadline: 0,
            next_announce: None,
            hops: 0,
            preferred: arrival.preferred.filter(|a| usize::from(a.0) < self.agents.len()),
        };
        self.enqueue(now, arrival.call, w);
        self.settle(now);
        Ok(())
    }

    /// The caller hung up: a waiting call leaves the queue (abandon); a call connected to an
    /// agent ends as with [`Acd::call_ended`].
    ///
    /// # Errors
    /// [`AcdError::UnknownCall`] if the ACD does not hold the call.
    pub fn call_abandoned(&mut self, call: CallId, now: Millis) -> Result<(), AcdError> {
        if let Some((q, position)) = self.position(call) {
            let w = self.leave_queue(call, now);
            self.event(
                now,
                q,
                QueueEventKind::Abandon { call, position, wait_ms: now - w.arrived },
            );
        } else if let Some(a) = self.agent_on(call) {
            self.end_call(a, now);
        } else {
            return Err(AcdError::UnknownCall(call));
        }
        self.settle(now);
        Ok(())
    }

    /// The agent's call ended (either side cleared, or it was transferred away): the agent
    /// goes to wrap-up for the call's queue (ready at once for direct calls or without
    /// wrap-up).
    ///
    /// # Errors
    /// [`AcdError::NotOnCall`] if the agent is not on a call.
    pub fn call_ended(&mut self, agent: AgentId, now: Millis) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        if self.ag(agent).state != AgentState::OnCall {
            return Err(AcdError::NotOnCall);
        }
        self.end_call(agent, now);
        self.settle(now);
        Ok(())
    }

    /// The agent answered the ringing phone: a waiting call is connected (other phones stop
    /// ringing); a callback offer is accepted and the number dialled.
    ///
    /// # Errors
    /// [`AcdError::NotRinging`] if the agent's phone is not ringing.
    pub fn agent_answered(&mut self, agent: AgentId, now: Millis) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        let a = self.ag(agent);
        if a.state != AgentState::Ringing {
            return Err(AcdError::NotRinging);
        }
        let extension = a.extension.clone().unwrap_or_default();
        match a.work {
            Some(Work::Call(call)) => {
                let mut w = self.calls.remove(&call).expect("ringing call is waiting");
                let q = w.queue;
                self.queues[usize::from(q.0)].waiting.retain(|c| *c != call);
                for other in std::mem::take(&mut w.ringing) {
                    if other != agent {
                        self.stop_ringing(other, now);
                    }
                }
                self.start_call(agent, Work::Call(call), Some(q), now);
                self.actions.push_back(Action::Connect { call, agent, extension });
                self.event(
                    now,
                    q,
                    QueueEventKind::Answer { call, agent, wait_ms: now - w.arrived },
                );
            }
            Some(Work::Callback(cb)) => {
                let c = self.callbacks.get_mut(&cb).expect("offered callback exists");
                c.accepted = true;
                let (q, number, wait_ms) = (c.queue, c.number.clone(), now - c.requested);
                self.start_call(agent, Work::Callback(cb), Some(q), now);
                self.actions.push_back(Action::DialOut { callback: cb, agent, extension, number });
                self.event(
                    now,
                    q,
                    QueueEventKind::CallbackAccepted { callback: cb, agent, wait_ms },
                );
            }
            _ => unreachable!("a ringing agent rings for a call or a callback"),
        }
        self.settle(now);
        Ok(())
    }

    /// The agent's phone was not answered or could not ring (busy, line fault), or the agent
    /// declined a callback offer: the call or offer moves to another agent and this agent
    /// becomes not ready with [`ReasonCode::NO_ANSWER`].
    ///
    /// # Errors
    /// [`AcdError::NotRinging`] if the agent's phone is not ringing.
    pub fn agent_no_answer(&mut self, agent: AgentId, now: Millis) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        if self.ag(agent).state != AgentState::Ringing {
            return Err(AcdError::NotRinging);
        }
        if let Some(Work::Call(c)) = self.ag(agent).work {
            self.calls.get_mut(&c).expect("ringing call").ringing.retain(|a| *a != agent);
        }
        self.ring_failed(agent, now);
        self.settle(now);
        Ok(())
    }

    /// The agent made or took a call outside the ACD: they are on a call and get no queue
    /// calls until [`Acd::call_ended`] (no wrap-up; back to ready, or to not ready if they were).
    ///
    /// # Errors
    /// [`AcdError::NotLoggedIn`], [`AcdError::Busy`] if already on a call,
    /// [`AcdError::DuplicateCall`] if the call is in the ACD.
    pub fn agent_direct_call(
        &mut self,
        agent: AgentId,
        call: CallId,
        now: Millis,
    ) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        if self.calls.contains_key(&call) || self.agent_on(call).is_some() {
            return Err(AcdError::DuplicateCall(call));
        }
        match self.ag(agent).state {
            AgentState::LoggedOut => return Err(AcdError::NotLoggedIn),
            AgentState::OnCall => return Err(AcdError::Busy),
            AgentState::Ringing => self.cancel_ring(agent, AgentState::OnCall, now),
            AgentState::WrapUp => self.record_handle(agent, now),
            AgentState::NotReady(r) => self.ag_mut(agent).pending = Some(r),
            AgentState::Ready => {}
        }
        let a = self.ag_mut(agent);
        a.work = Some(Work::Direct(call));
        a.work_queue = None;
        a.answered_at = now;
        self.set_state(agent, AgentState::OnCall, now);
        self.settle(now);
        Ok(())
    }

    // ----- callbacks -----

    /// A caller asked to be called back on `number` (from the overflow attendant or the IVR).
    /// Requests are offered, oldest first, to agents of the queue who are ready when no waiting
    /// call needs them.
    ///
    /// # Errors
    /// [`AcdError::UnknownQueue`].
    pub fn request_callback(
        &mut self,
        q: QueueId,
        number: &str,
        now: Millis,
    ) -> Result<CallbackId, AcdError> {
        if usize::from(q.0) >= self.queues.len() {
            return Err(AcdError::UnknownQueue);
        }
        let id = CallbackId(self.next_callback);
        self.next_callback += 1;
        let order = self.next_seq;
        self.next_seq += 1;
        self.callbacks.insert(
            id,
            Callback {
                queue: q,
                number: number.to_string(),
                requested: now,
                order,
                attempts: 0,
                agent: None,
                accepted: false,
                ring_deadline: 0,
            },
        );
        self.event(
            now,
            q,
            QueueEventKind::CallbackRequested { callback: id, number: number.into() },
        );
        self.settle(now);
        Ok(id)
    }

    /// The agent's callback dial-out found nobody (no answer, busy): the request goes back in
    /// line, or is dropped after [`MAX_CALLBACK_ATTEMPTS`]; the agent is ready again.
    ///
    /// # Errors
    /// [`AcdError::NotOnCall`] if the agent is not on a callback.
    pub fn callback_unreached(&mut self, agent: AgentId, now: Millis) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        let a = self.ag(agent);
        let (AgentState::OnCall, Some(Work::Callback(cb))) = (a.state, a.work) else {
            return Err(AcdError::NotOnCall);
        };
        let c = self.callbacks.get_mut(&cb).expect("accepted callback exists");
        c.attempts += 1;
        let (q, attempts) = (c.queue, c.attempts);
        let dropped = attempts >= MAX_CALLBACK_ATTEMPTS;
        if dropped {
            self.callbacks.remove(&cb);
        } else {
            c.agent = None;
            c.accepted = false;
            c.order = self.next_seq;
            self.next_seq += 1;
        }
        self.event(now, q, QueueEventKind::CallbackUnreached { callback: cb, attempts, dropped });
        let a = self.ag_mut(agent);
        a.work = None;
        a.work_queue = None;
        let next = a.pending.take().map_or(AgentState::Ready, AgentState::NotReady);
        self.become_idle(agent, next, now);
        self.settle(now);
        Ok(())
    }

    // ----- agent commands -----

    /// Log agent `number` in on `extension` with `pin` (free seating: the agent's calls ring
    /// that extension from now on). An agent logged in elsewhere and not busy moves here. The
    /// agent starts ready.
    ///
    /// # Errors
    /// See [`LoginError`]. Wrong PINs are counted; after [`MAX_PIN_FAILURES`] in a row the
    /// agent's login is locked for [`PIN_LOCK_MS`].
    pub fn login(
        &mut self,
        number: &str,
        pin: &str,
        extension: &str,
        now: Millis,
    ) -> Result<AgentId, LoginError> {
        let id = self.agent_by_number(number).ok_or(LoginError::UnknownAgent)?;
        let a = self.ag_mut(id);
        if now < a.locked_until {
            return Err(LoginError::Locked { until_ms: a.locked_until });
        }
        if a.pin != pin {
            a.pin_failures += 1;
            a.consecutive_failures += 1;
            let failures = a.consecutive_failures;
            if failures >= MAX_PIN_FAILURES {
                a.consecutive_failures = 0;
                a.locked_until = now + PIN_LOCK_MS;
            }
            return Err(LoginError::WrongPin { failures });
        }
        a.consecutive_failures = 0;
        if let Some(other) = self.agent_at(extension) {
            if other != id {
                return Err(LoginError::ExtensionTaken(other));
            }
        }
        match self.ag(id).state {
            AgentState::Ringing | AgentState::OnCall => return Err(LoginError::Busy),
            AgentState::WrapUp => self.record_handle(id, now),
            _ => {}
        }
        let a = self.ag_mut(id);
        let was_out = a.state == AgentState::LoggedOut;
        let moved = a.extension.as_deref() != Some(extension);
        a.extension = Some(extension.to_string());
        if was_out {
            a.calls = 0;
            a.talk_ms = 0;
        }
        a.pending = None;
        a.work_queue = None;
        if self.ag(id).state == AgentState::Ready {
            if moved {
                // Moved seats while ready: report it so that the store sees the new extension.
                let state = AgentState::Ready;
                let extension = Some(extension.to_string());
                self.actions.push_back(Action::AgentState {
                    agent: id,
                    state,
                    extension,
                    at_ms: now,
                });
            }
        } else {
            self.become_idle(id, AgentState::Ready, now);
        }
        self.settle(now);
        Ok(id)
    }

    /// Log the agent out (their extension is free again). A ringing call moves on.
    ///
    /// # Errors
    /// [`AcdError::Busy`] while on a call; [`AcdError::NotLoggedIn`].
    pub fn logout(&mut self, agent: AgentId, now: Millis) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        match self.ag(agent).state {
            AgentState::LoggedOut => return Err(AcdError::NotLoggedIn),
            AgentState::OnCall => return Err(AcdError::Busy),
            AgentState::Ringing => self.cancel_ring(agent, AgentState::LoggedOut, now),
            AgentState::WrapUp => self.record_handle(agent, now),
            _ => {}
        }
        let a = self.ag_mut(agent);
        a.extension = None;
        a.pending = None;
        a.work = None;
        a.work_queue = None;
        self.set_state(agent, AgentState::LoggedOut, now);
        self.settle(now);
        Ok(())
    }

    /// The agent is ready for calls (ends wrap-up early; on a call, cancels a pending
    /// not-ready).
    ///
    /// # Errors
    /// [`AcdError::NotLoggedIn`]; [`AcdError::Busy`] while ringing.
    pub fn set_ready(&mut self, agent: AgentId, now: Millis) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        match self.ag(agent).state {
            AgentState::LoggedOut => return Err(AcdError::NotLoggedIn),
            AgentState::Ringing => return Err(AcdError::Busy),
            AgentState::OnCall => self.ag_mut(agent).pending = None,
            AgentState::WrapUp => {
                self.ag_mut(agent).pending = None;
                self.finish_work(agent, now);
            }
            AgentState::NotReady(_) => self.become_idle(agent, AgentState::Ready, now),
            AgentState::Ready => {}
        }
        self.settle(now);
        Ok(())
    }

    /// The agent is not ready, for `reason`. A ringing call moves on; on a call, the agent
    /// becomes not ready when the call (and its wrap-up) ends.
    ///
    /// # Errors
    /// [`AcdError::NotLoggedIn`].
    pub fn set_not_ready(
        &mut self,
        agent: AgentId,
        reason: ReasonCode,
        now: Millis,
    ) -> Result<(), AcdError> {
        self.check_agent(agent)?;
        match self.ag(agent).state {
            AgentState::LoggedOut => return Err(AcdError::NotLoggedIn),
            AgentState::OnCall | AgentState::WrapUp => self.ag_mut(agent).pending = Some(reason),
            AgentState::Ringing => self.cancel_ring(agent, AgentState::NotReady(reason), now),
            AgentState::Ready | AgentState::NotReady(_) => {
                self.set_state(agent, AgentState::NotReady(reason), now)
            }
        }
        self.settle(now);
        Ok(())
    }

    // ----- internals -----

    fn event(&mut self, at_ms: Millis, queue: QueueId, kind: QueueEventKind) {
        self.actions.push_back(Action::QueueEvent(QueueEvent { at_ms, queue, kind }));
    }

    fn set_state(&mut self, agent: AgentId, state: AgentState, now: Millis) {
        let a = self.ag_mut(agent);
        if a.state != state {
            a.state = state;
            let extension = if state == AgentState::LoggedOut { None } else { a.extension.clone() };
            self.actions.push_back(Action::AgentState { agent, state, extension, at_ms: now });
        }
    }

    /// The agent becomes ready or not ready with nothing to do.
    fn become_idle(&mut self, agent: AgentId, state: AgentState, now: Millis) {
        let a = self.ag_mut(agent);
        a.work = None;
        if state == AgentState::Ready && a.state != AgentState::Ready {
            a.idle_since = now;
        }
        self.set_state(agent, state, now);
    }

    /// The call or callback an agent is on, if the agent is on `call`.
    fn agent_on(&self, call: CallId) -> Option<AgentId> {
        self.agents
            .iter()
            .position(|a| {
                a.state == AgentState::OnCall
                    && matches!(a.work, Some(Work::Call(c) | Work::Direct(c)) if c == call)
            })
            .map(|i| AgentId(i as u16))
    }

    fn start_call(&mut self, agent: AgentId, work: Work, q: Option<QueueId>, now: Millis) {
        let a = self.ag_mut(agent);
        a.work = Some(work);
        a.work_queue = q;
        a.answered_at = now;
        a.calls += 1;
        self.set_state(agent, AgentState::OnCall, now);
    }

    fn end_call(&mut self, agent: AgentId, now: Millis) {
        let a = self.ag_mut(agent);
        let talk = now.saturating_sub(a.answered_at);
        a.talk_ms += talk;
        let work = a.work.take();
        let q = a.work_queue;
        if let Some(Work::Callback(cb)) = work {
            self.callbacks.remove(&cb);
            if let Some(q) = q {
                self.event(now, q, QueueEventKind::CallbackDone { callback: cb, agent });
            }
        }
        let wrap = q.map_or(0, |q| u64::from(self.queues[usize::from(q.0)].cfg.wrapup_s) * 1000);
        if wrap > 0 {
            self.ag_mut(agent).wrap_until = now + wrap;
            self.set_state(agent, AgentState::WrapUp, now);
        } else {
            self.finish_work(agent, now);
        }
    }

    /// Wrap-up (or a call without wrap-up) is over: record the handling time, become ready (or
    /// not ready if the agent asked for it during the call).
    fn finish_work(&mut self, agent: AgentId, now: Millis) {
        self.record_handle(agent, now);
        let next =
            self.ag_mut(agent).pending.take().map_or(AgentState::Ready, AgentState::NotReady);
        self.become_idle(agent, next, now);
    }

    fn record_handle(&mut self, agent: AgentId, now: Millis) {
        let a = self.ag_mut(agent);
        let (q, since) = (a.work_queue.take(), a.answered_at);
        if let Some(q) = q {
            let h = &mut self.queues[usize::from(q.0)].handle_ms;
            if h.len() == HANDLE_WINDOW {
                h.pop_front();
            }
            h.push_back(now.saturating_sub(since));
        }
    }

    /// Stop an agent's phone; the agent is ready again (not penalised).
    fn stop_ringing(&mut self, agent: AgentId, now: Millis) {
        self.withdraw(agent, AgentState::Ready, now);
    }

    /// Stop an agent's phone and put the agent in state `next` (one state change).
    fn withdraw(&mut self, agent: AgentId, next: AgentState, now: Millis) {
        let a = self.ag(agent);
        let work = a.work.expect("ringing agent has work");
        let extension = a.extension.clone().unwrap_or_default();
        self.actions.push_back(Action::StopRinging { agent, extension, work });
        self.ag_mut(agent).work = None;
        self.set_state(agent, next, now);
    }

    /// Withdraw whatever the agent's phone rings for, without penalty, and put the agent in
    /// state `next`.
    fn cancel_ring(&mut self, agent: AgentId, next: AgentState, now: Millis) {
        match self.ag(agent).work {
            Some(Work::Call(c)) => {
                self.calls.get_mut(&c).expect("ringing call").ringing.retain(|a| *a != agent)
            }
            Some(Work::Callback(cb)) => {
                self.callbacks.get_mut(&cb).expect("offered callback").agent = None
            }
            _ => {}
        }
        self.withdraw(agent, next, now);
    }

    /// The agent's phone rang out or could not ring: withdraw, penalise with not-ready.
    /// The caller has already removed the agent from the call's ringing list.
    fn ring_failed(&mut self, agent: AgentId, now: Millis) {
        match self.ag(agent).work.expect("ringing agent has work") {
            Work::Call(call) => {
                let q = self.calls[&call].queue;
                self.event(now, q, QueueEventKind::RingNoAnswer { call, agent });
            }
            Work::Callback(cb) => {
                self.callbacks.get_mut(&cb).expect("offered callback").agent = None;
            }
            Work::Direct(_) => {}
        }
        self.withdraw(agent, AgentState::NotReady(ReasonCode::NO_ANSWER), now);
    }

    /// Take a waiting call out of its queue, stopping any phones ringing for it.
    fn leave_queue(&mut self, call: CallId, now: Millis) -> Waiting {
        let mut w = self.calls.remove(&call).expect("waiting call");
        self.queues[usize::from(w.queue.0)].waiting.retain(|c| *c != call);
        for a in std::mem::take(&mut w.ringing) {
            self.stop_ringing(a, now);
        }
        w
    }

    /// Put a call in a queue (or overflow it if the queue is full).
    fn enqueue(&mut self, now: Millis, call: CallId, mut w: Waiting) {
        let qi = usize::from(w.queue.0);
        let q = &self.queues[qi];
        let rule = q
            .cfg
            .priority
            .iter()
            .filter(|r| {
                r.callers.contains(&w.caller)
                    || r.prefixes.iter().any(|p| w.caller.starts_with(p.as_str()))
            })
            .map(|r| r.priority)
            .max()
            .unwrap_or(0);
        w.priority = w.priority.max(rule);
        let max_len = q.cfg.max_length as usize;
        if max_len > 0 && q.waiting.len() >= max_len {
            let target = self.overflow_target(&w);
            self.event(now, w.queue, QueueEventKind::Overflow { call, target: target.clone() });
            self.overflow(now, call, w, target);
            return;
        }
        w.needs = merge(&q.required, &w.extra);
        w.seq = self.next_seq;
        w.arrived = now;
        w.ringing.clear();
        let announces = q.cfg.announce_position || q.cfg.announce_wait;
        w.next_announce = announces.then_some(now);
        let key = (Reverse(w.priority), w.seq);
        let pos = q
            .waiting
            .iter()
            .position(|c| {
                let o = &self.calls[c];
                (Reverse(o.priority), o.seq) > key
            })
            .unwrap_or(q.waiting.len());
        let (queue, priority) = (w.queue, w.priority);
        self.next_seq += 1;
        self.queues[qi].waiting.insert(pos, call);
        self.calls.insert(call, w);
        self.event(now, queue, QueueEventKind::Enter { call, position: pos as u32 + 1, priority });
    }

    /// Send a call that left queue `w.queue` to `target`; a queue target takes it in.
    /// Where a call leaving `w.queue` unanswered goes: the queue's overflow target, or
    /// hang-up where a queue target cannot take it (unknown queue, or a loop in a
    /// configuration that was not checked).
    fn overflow_target(&self, w: &Waiting) -> OverflowTarget {
        let q = &self.queues[usize::from(w.queue.0)];
        match (&q.cfg.overflow, q.overflow_queue) {
            (OverflowTarget::Queue(_), None) => OverflowTarget::Hangup,
            (OverflowTarget::Queue(_), Some(_)) if w.hops >= self.queues.len() => {
                OverflowTarget::Hangup
            }
            (t, _) => t.clone(),
        }
    }

    /// Send a call that left queue `w.queue` to `target` (from [`Acd::overflow_target`]); a
    /// queue target takes it in.
    fn overflow(&mut self, now: Millis, call: CallId, mut w: Waiting, target: OverflowTarget) {
        let from = w.queue;
        let next = self.queues[usize::from(from.0)].overflow_queue;
        let moves = matches!(target, OverflowTarget::Queue(_));
        self.actions.push_back(Action::Overflow { call, queue: from, target });
        if let (true, Some(next)) = (moves, next) {
            w.hops += 1;
            w.queue = next;
            self.enqueue(now, call, w);
        }
    }

    /// Offer waiting work to ready agents, then play due announcements.
    fn settle(&mut self, now: Millis) {
        self.dispatch(now);
        self.announce(now);
    }

    fn eligible(&self, q: QueueId, needs: &[Need]) -> Vec<AgentId> {
        self.queues[usize::from(q.0)]
            .members
            .iter()
            .copied()
            .filter(|&a| {
                let a = self.ag(a);
                a.state == AgentState::Ready && a.has(needs)
            })
            .collect()
    }

    /// The agent the queue's strategy picks among `cands` (not empty, in member order).
    fn pick(&self, q: QueueId, cands: &[AgentId], needs: &[Need]) -> AgentId {
        let queue = &self.queues[usize::from(q.0)];
        let idle = |a: &AgentId| (self.ag(*a).idle_since, *a);
        let by = |f: &dyn Fn(&Agent) -> u64| {
            *cands.iter().min_by_key(|a| (f(self.ag(**a)), idle(a))).expect("candidates")
        };
        match queue.cfg.strategy {
            QueueStrategy::LongestIdle | QueueStrategy::RingAll => by(&|_| 0),
            QueueStrategy::FewestCalls => by(&|a| u64::from(a.calls)),
            QueueStrategy::LeastTalkTime => by(&|a| a.talk_ms),
            QueueStrategy::Skills => {
                let score =
                    |a: &Agent| needs.iter().map(|&(s, _)| u64::from(a.level(s))).sum::<u64>();
                by(&|a| u64::MAX - score(a))
            }
            QueueStrategy::RoundRobin => {
                let m = &queue.members;
                let start =
                    queue.rr_last.and_then(|l| m.iter().position(|x| *x == l)).map_or(0, |i| i + 1);
                (0..m.len())
                    .map(|k| m[(start + k) % m.len()])
                    .find(|a| cands.contains(a))
                    .expect("candidates are members")
            }
        }
    }

    fn dispatch(&mut self, now: Millis) {
        let mut order: Vec<(Reverse<u8>, u64, CallId)> = self
            .calls
            .iter()
            .filter(|(_, w)| w.ringing.is_empty())
            .map(|(c, w)| (Reverse(w.priority), w.seq, *c))
            .collect();
        order.sort_unstable();
        for (_, _, call) in order {
            let w = &self.calls[&call];
            let q = w.queue;
            let preferred = w.preferred.filter(|&p| {
                let a = self.ag(p);
                a.state == AgentState::Ready && a.has(&w.needs)
            });
            let cands = self.eligible(q, &w.needs);
            if cands.is_empty() && preferred.is_none() {
                continue;
            }
            let chosen = if let Some(p) = preferred {
                vec![p]
            } else if self.queues[usize::from(q.0)].cfg.strategy == QueueStrategy::RingAll {
                cands
            } else {
                vec![self.pick(q, &cands, &w.needs)]
            };
            let deadline = now + u64::from(self.queues[usize::from(q.0)].cfg.ring_timeout_s) * 1000;
            let w = self.calls.get_mut(&call).expect("listed");
            w.ringing = chosen.clone();
            w.ring_deadline = deadline;
            for agent in chosen {
                self.queues[usize::from(q.0)].rr_last = Some(agent);
                self.ag_mut(agent).work = Some(Work::Call(call));
                self.set_state(agent, AgentState::Ringing, now);
                let extension = self.ag(agent).extension.clone().unwrap_or_default();
                self.actions.push_back(Action::RingAgent { call, queue: q, agent, extension });
            }
        }
        let mut pending: Vec<(u64, CallbackId)> = self
            .callbacks
            .iter()
            .filter(|(_, c)| c.agent.is_none())
            .map(|(id, c)| (c.order, *id))
            .collect();
        pending.sort_unstable();
        for (_, cb) in pending {
            let q = self.callbacks[&cb].queue;
            let needs = self.queues[usize::from(q.0)].required.clone();
            let cands = self.eligible(q, &needs);
            if cands.is_empty() {
                continue;
            }
            let agent = self.pick(q, &cands, &needs);
            let ring = u64::from(self.queues[usize::from(q.0)].cfg.ring_timeout_s) * 1000;
            let c = self.callbacks.get_mut(&cb).expect("listed");
            c.agent = Some(agent);
            c.ring_deadline = now + ring;
            let number = c.number.clone();
            self.queues[usize::from(q.0)].rr_last = Some(agent);
            self.ag_mut(agent).work = Some(Work::Callback(cb));
            self.set_state(agent, AgentState::Ringing, now);
            let extension = self.ag(agent).extension.clone().unwrap_or_default();
            self.actions.push_back(Action::OfferCallback {
                callback: cb,
                queue: q,
                agent,
                extension,
                number,
            });
        }
    }

    fn announce(&mut self, now: Millis) {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, w)| w.next_announce.is_some_and(|t| t <= now))
            .map(|(c, _)| *c)
            .collect();
        for call in due {
            let (q, position) = self.position(call).expect("waiting call");
            let cfg = &self.queues[usize::from(q.0)].cfg;
            let interval = u64::from(cfg.announce_interval_s.max(1)) * 1000;
            let (say_pos, say_wait) = (cfg.announce_position, cfg.announce_wait);
            let w = self.calls.get_mut(&call).expect("due");
            let ringing = !w.ringing.is_empty();
            w.next_announce = Some(now + interval);
            if ringing {
                // An agent's phone is ringing: the caller is about to be answered.
                continue;
            }
            let ewt_s = if say_wait { self.ewt_s(q, position) } else { None };
            self.actions.push_back(Action::Announce {
                call,
                queue: q,
                position: say_pos.then_some(position),
                ewt_s,
            });
        }
    }
}

#[cfg(test)]
impl Acd {
    /// Check the engine's consistency; the error says what is broken.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut ringing_for: BTreeMap<AgentId, Work> = BTreeMap::new();
        for (c, w) in &self.calls {
            let q = &self.queues[usize::from(w.queue.0)];
            if q.waiting.iter().filter(|x| *x == c).count() != 1 {
                return Err(format!("call {c} is not exactly once in its queue"));
            }
            if self.queues.iter().filter(|q| q.waiting.contains(c)).count() != 1 {
                return Err(format!("call {c} is in two queues"));
            }
            if self.agent_on(*c).is_some() {
                return Err(format!("call {c} is both waiting and connected"));
            }
            for a in &w.ringing {
                if ringing_for.insert(*a, Work::Call(*c)).is_some() {
                    return Err(format!("agent {a:?} rings for two calls"));
                }
            }
        }
        for (id, c) in &self.callbacks {
            if let (Some(a), false) = (c.agent, c.accepted) {
                if ringing_for.insert(a, Work::Callback(*id)).is_some() {
                    return Err(format!("agent {a:?} rings for two things"));
                }
            }
        }
        let total: usize = self.queues.iter().map(|q| q.waiting.len()).sum();
        if total != self.calls.len() {
            return Err("queues hold calls the engine does not know".into());
        }
        for q in &self.queues {
            let keys: Vec<_> = q
                .waiting
                .iter()
                .map(|c| (Reverse(self.calls[c].priority), self.calls[c].seq))
                .collect();
            if keys.windows(2).any(|k| k[0] > k[1]) {
                return Err("a queue is out of order".into());
            }
        }
        let mut extensions = std::collections::HashSet::new();
        let mut on_call = std::collections::HashSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let id = AgentId(i as u16);
            match (a.state, &a.extension) {
                (AgentState::LoggedOut, Some(_)) => {
                    return Err(format!("{id:?} logged out with an extension"))
                }
                (AgentState::LoggedOut, None) => {}
                (_, None) => return Err(format!("{id:?} logged in without an extension")),
                (_, Some(e)) => {
                    if !extensions.insert(e.clone()) {
                        return Err(format!("two agents on extension {e}"));
                    }
                }
            }
            match a.state {
                AgentState::Ringing => {
                    if ringing_for.get(&id) != a.work.as_ref() || a.work.is_none() {
                        return Err(format!("{id:?} rings but no call rings it"));
                    }
                }
                AgentState::OnCall => {
                    let Some(w) = a.work else {
                        return Err(format!("{id:?} on call without work"));
                    };
                    if !on_call.insert(w) {
                        return Err(format!("{w:?} is on two agents"));
                    }
                    if let Work::Callback(cb) = w {
                        if !self
                            .callbacks
                            .get(&cb)
                            .is_some_and(|c| c.accepted && c.agent == Some(id))
                        {
                            return Err(format!(
                                "{id:?} on a callback that is not accepted by them"
                            ));
                        }
                    }
                }
                _ => {
                    if a.work.is_some() {
                        return Err(format!("{id:?} is {:?} with work {:?}", a.state, a.work));
                    }
                }
            }
            if a.state != AgentState::Ringing && ringing_for.contains_key(&id) {
                return Err(format!("{id:?} is listed as ringing but is {:?}", a.state));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
