//! The call center wired into call control: inbound routing ([`Router`]), IVR menus
//! ([`IvrEngine`]) and ACD queues ([`Acd`]) driven by the trunk calls of [`Pbx`].
//!
//! - An incoming trunk call (FXO, PRI, R2) asks the router when any `[[inbound]]` rule exists,
//!   with its called number (DNIS; FXO lines carry none and use the trunk group's `incoming`
//!   number) and calling number (ANI) at the local time of [`Pbx::set_wall_clock`]. Without a
//!   matching rule the call goes where it always went (DID, the trunk group's `incoming`).
//! - Destinations: `ivr:` answers the trunk and runs the menu on it (prompts from the engine's
//!   prompt library, DTMF detection on the trunk leg with barge-in); `queue:` answers, puts the
//!   call in the ACD and plays the queue's music on hold (the tone plan's ringback when it has
//!   none); `agent:` queues with that agent preferred; `extension:` rings as a DID would;
//!   `busy` rejects; `message:` answers, plays the prompt and clears; `hangup` clears;
//!   `fax:` moves the call to the fax destination; `callback:` registers a callback for the
//!   ANI and clears; `voicemail:` leaves a message in the mailbox (`voicemail.rs`).
//! - ACD actions become calls: ringing the agent's logged-in extension (when the phone is busy
//!   the ring waits for it until the ACD's ring timeout), bridging caller and agent,
//!   overflow, callback offers and dial-outs on the number's normal route.
//! - Queue, agent and IVR records are published on the event stream (`events.rs`); CDRs of
//!   queue calls carry the queue, agent, queue wait and IVR path.
//!
//! Position and wait announcements need prompt files for numbers, which the configuration has
//! no place for yet: the ACD's announcements are therefore not played (the caller keeps
//! hearing music on hold).

use super::{CallId, CallState, Direction, LineKind, Pbx, PbxError};
use crate::callcenter::acd::{
    Acd, Action, AgentId, AgentState, Arrival, CallbackId, QueueEventKind, QueueId, Work,
};
use crate::callcenter::ivr::{IvrAction, IvrEngine};
use crate::callcenter::routing::{InboundCall, LocalTime, Router};
use crate::config::callcenter::{AgentConfig, OverflowTarget};
use crate::config::callcenter_routing::Destination;
use crate::config::model::Config;
use crate::engine::api::{Detectors, PromptId, Source};
use crate::engine::PromptLibrary;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{ChannelId, Tick};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a call-center call is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    /// In an IVR menu.
    Ivr,
    /// Waiting in an ACD queue (possibly ringing an agent).
    Queued,
    /// Talking to an agent.
    Agent(AgentId),
    /// Hearing a message before the call is cleared.
    Message,
    /// Hearing a greeting before going to the destination.
    Greeting(Destination),
    /// A callback offer ringing an agent's phone.
    Offer(CallbackId),
    /// Talking to the callback attendant (`cc_callback.rs`).
    Attendant,
    /// A callback dial-out from an agent's phone.
    DialOut(AgentId, CallbackId),
    /// Somewhere else (an extension, a rejected call).
    Other,
}

/// Call-center state of one call.
#[derive(Debug, Clone)]
pub(super) struct CcCall {
    pub(super) mode: Mode,
    /// The trunk leg's prompt is playing (IVR, message, greeting).
    pub(super) playing: bool,
    /// DTMF is collected from the trunk leg.
    pub(super) dtmf: bool,
    /// The queue the call is (or was last) in, and its name for records.
    pub(super) queue: Option<QueueId>,
    pub(super) queue_name: Option<String>,
    /// The agent who took the call.
    pub(super) agent: Option<AgentId>,
    /// When the call first entered a queue, and when an agent answered.
    pub(super) entered_queue: Option<Tick>,
    pub(super) agent_answered: Option<Tick>,
    /// When the call left its last queue unanswered (overflow to a destination outside the
    /// ACD).
    pub(super) left_queue: Option<Tick>,
    /// IVR nodes passed through.
    pub(super) ivr_path: Vec<String>,
    /// Digits collected in the IVR (`store_as` key, value).
    pub(super) data: Vec<(String, String)>,
    /// A queue announcement is playing: the prompts still to come (music on hold follows).
    pub(super) announce: Option<std::collections::VecDeque<PromptId>>,
}

impl CcCall {
    fn new(mode: Mode) -> CcCall {
        CcCall {
            mode,
            playing: false,
            dtmf: false,
            queue: None,
            queue_name: None,
            agent: None,
            entered_queue: None,
            agent_answered: None,
            left_queue: None,
            ivr_path: Vec::new(),
            data: Vec::new(),
            announce: None,
        }
    }
}

/// What the call center made of an incoming trunk call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CcRouted {
    /// No rule: route as without a call center.
    Default,
    /// Ring this extension or hunt group number as a DID would.
    Target(String),
    /// The call center took the call.
    Handled,
}

/// The call center's engines and per-call state.
pub(super) struct CallCenter {
    pub(super) router: Option<Router>,
    pub(super) ivr: IvrEngine,
    pub(super) acd: Acd,
    agents: Vec<AgentConfig>,
    prompts: HashMap<PathBuf, PromptId>,
    library: PromptLibrary,
    pub(super) calls: HashMap<CallId, CcCall>,
    /// Agent rings waiting for the agent's phone to be free: (agent, call, extension).
    pending_rings: Vec<(AgentId, CallId, ChannelId)>,
    /// Callback offers waiting for the agent's phone to be free: (callback, agent,
    /// extension, number to call).
    pending_offers: Vec<(CallbackId, AgentId, String, String)>,
    /// Agents whose call is over, waiting for their phone to go on-hook: (agent, phone,
    /// callback reached?). `None` for a queue call, `Some(reached)` for a callback.
    ending: Vec<(AgentId, ChannelId, Option<bool>)>,
    /// Callback offer calls.
    offers: HashMap<CallbackId, CallId>,
    /// Each agent's last reported state and call.
    pub(super) last_state: Vec<(AgentState, Option<CallId>)>,
    /// Sticky routing: (ANI, queue name) → (agent number, UTC ms of the call's end); seeded
    /// from the store's CDRs at start ([`Pbx::seed_last_agents`]).
    last_agent: HashMap<(String, String), (String, i64)>,
    /// Callback requests as last recorded, to record their progress.
    pub(super) callbacks: HashMap<CallbackId, crate::store::CallbackRecord>,
    /// Supervisors listening to, whispering to or barged in on agents' calls.
    pub(super) monitors: Vec<super::cc_supervise::Monitor>,
    /// Callers talking to the callback attendant.
    pub(super) attendants: super::cc_callback::Attendants,
    /// The longest `sticky_days` of the inbound rules.
    sticky_days: u32,
}

/// Every prompt file the configuration names (IVR nodes, messages, greetings, music on hold).
fn prompt_paths(cfg: &Config) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    let dest = |d: &Destination, v: &mut Vec<PathBuf>| {
        if let Destination::Message(p) = d {
            v.push(p.clone());
        }
    };
    for n in &cfg.ivr {
        v.extend(n.prompts().into_iter().map(|(_, p)| p.to_path_buf()));
        for a in n.choices.values() {
            if let crate::config::callcenter_routing::MenuAction::Go(d) = a {
                dest(d, &mut v);
            }
        }
        dest(&n.on_timeout, &mut v);
        dest(&n.on_invalid, &mut v);
        if let Some(d) = &n.next {
            dest(d, &mut v);
        }
    }
    for r in &cfg.inbound {
        for d in [Some(&r.destination), r.after_hours.as_ref(), r.weekend.as_ref()]
            .into_iter()
            .chain([r.holiday.as_ref()])
            .flatten()
        {
            dest(d, &mut v);
        }
    }
    v.extend(cfg.holidays.iter().filter_map(|h| h.greeting.clone()));
    v.extend(cfg.queues.iter().filter_map(|q| q.music_on_hold.clone()));
    v.extend(cfg.queues.iter().flat_map(crate::config::callcenter::announce_files));
    v.extend(cfg.callback.prompt_files());
    v.extend(crate::config::conference::prompt_files(cfg));
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

impl CallCenter {
    /// The engines for `cfg`; prompt files that cannot be loaded are logged and skipped (the
    /// configuration check reports them).
    pub(super) fn new(cfg: &Config) -> Result<CallCenter, PbxError> {
        let router = if cfg.inbound.is_empty() {
            None
        } else {
            Some(Router::new(cfg).map_err(|e| PbxError::Analog(format!("inbound routing: {e}")))?)
        };
        let ivr =
            IvrEngine::new(&cfg.ivr).map_err(|e| PbxError::Analog(format!("IVR menus: {e}")))?;
        let acd = Acd::new(&cfg.queues, &cfg.agents);
        let mut prompts = HashMap::new();
        let mut decoded = Vec::new();
        for p in prompt_paths(cfg) {
            match crate::engine::prompt::load_wav(&p) {
                Ok(samples) => {
                    prompts.insert(p.clone(), PromptId(decoded.len() as u16));
                    decoded.push((p.display().to_string(), samples));
                }
                Err(e) => tracing::warn!("call center: {e}; it is not played"),
            }
            if decoded.len() >= usize::from(u16::MAX) {
                break;
            }
        }
        let library = PromptLibrary::from_samples(decoded)
            .map_err(|e| PbxError::Analog(format!("prompts: {e}")))?;
        Ok(CallCenter {
            router,
            ivr,
            acd,
            agents: cfg.agents.clone(),
            library,
            calls: HashMap::new(),
            pending_rings: Vec::new(),
            pending_offers: Vec::new(),
            ending: Vec::new(),
            offers: HashMap::new(),
            last_state: vec![(AgentState::LoggedOut, None); cfg.agents.len()],
            last_agent: HashMap::new(),
            callbacks: HashMap::new(),
            monitors: Vec::new(),
            sticky_days: cfg.inbound.iter().filter_map(|r| r.sticky_days).max().unwrap_or(0),
            attendants: super::cc_callback::Attendants::new(&cfg.callback, |p| {
                prompts.get(p).copied()
            }),
            prompts,
        })
    }

    /// The decoded prompts, for the media engine.
    pub(super) fn library(&self) -> PromptLibrary {
        self.library.clone()
    }

    pub(super) fn prompt(&self, p: &Path) -> Option<PromptId> {
        self.prompts.get(p).copied()
    }

    /// Whether agents are configured (feature codes are active).
    pub(super) fn has_agents(&self) -> bool {
        !self.agents.is_empty()
    }
}

impl Pbx {
    /// The ACD engine (agent and queue state, for `show` commands and tests).
    pub fn acd(&self) -> &Acd {
        &self.cc.acd
    }

    /// The call-center destination mode of call `id`, for tests and `show`: `ivr`, `queued`,
    /// `agent`, `message`, `greeting`, `offer`, `dial_out`, `callback_attendant`, `other`.
    pub fn cc_mode(&self, id: CallId) -> Option<&'static str> {
        self.cc.calls.get(&id).map(|c| match c.mode {
            Mode::Ivr => "ivr",
            Mode::Queued => "queued",
            Mode::Agent(_) => "agent",
            Mode::Message => "message",
            Mode::Greeting(_) => "greeting",
            Mode::Offer(_) => "offer",
            Mode::DialOut(..) => "dial_out",
            Mode::Attendant => "callback_attendant",
            Mode::Other => "other",
        })
    }

    /// Sticky routing: who served whom, from the store's CDRs, as
    /// `(caller, queue name, agent, ended UTC ms)`; a later call in this run overrides them.
    pub fn seed_last_agents(&mut self, rows: Vec<(String, String, String, i64)>) {
        for (caller, queue, agent, ended_ms) in rows {
            let e = self.cc.last_agent.entry((caller, queue)).or_insert((agent.clone(), ended_ms));
            if e.1 < ended_ms {
                *e = (agent, ended_ms);
            }
        }
    }

    /// The agent who last served `caller` from queue `queue` (by name), and when the call
    /// ended (UTC ms), as sticky routing knows it.
    pub fn last_agent(&self, caller: &str, queue: &str) -> Option<(String, i64)> {
        self.cc.last_agent.get(&(caller.to_string(), queue.to_string())).cloned()
    }

    /// The longest `sticky_days` of the inbound rules, in days (0: no rule is sticky).
    pub fn sticky_days(&self) -> u32 {
        self.cc.sticky_days
    }

    /// The call-center call ids in progress (ascending).
    pub fn cc_calls(&self) -> Vec<CallId> {
        let mut v: Vec<CallId> = self.cc.calls.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Earliest IVR or ACD timer.
    pub(super) fn cc_timeout(&self) -> Option<Tick> {
        let ivr = self.cc.ivr.next_deadline();
        ivr.into_iter().chain(self.cc.acd.poll_timeout()).chain(self.cc.attendants.next_due()).min()
    }

    /// Run the IVR and ACD timers due at `now`.
    pub(super) fn cc_tick(&mut self, now: Tick) {
        if self.cc.ivr.next_deadline().is_some_and(|t| t <= now) {
            self.cc.ivr.tick(now);
        }
        if self.cc.acd.poll_timeout().is_some_and(|t| t <= now) {
            self.cc.acd.tick(now);
        }
        if self.cc.attendants.next_due().is_some_and(|t| t <= now) {
            self.cba_tick(now);
        }
    }

    /// Route an incoming trunk call `id` by the inbound rules.
    pub(super) fn cc_route(&mut self, id: CallId, dnis: &str) -> CcRouted {
        let Some(router) = &self.cc.router else { return CcRouted::Default };
        let Some(c) = self.calls.get(&id) else { return CcRouted::Handled };
        let ani = c.from.clone();
        let ani_ok = super::dialable(&ani);
        let call = InboundCall { dnis, ani: ani_ok.then_some(ani.as_str()) };
        let now = LocalTime::new(self.wall_base_s + (self.now / 1000) as i64);
        let (acd, last, now_ms) = (&self.cc.acd, &self.cc.last_agent, self.utc_ms(self.now));
        let lookup = |ani: &str, queue: &str, max_age_s: u64| -> Option<String> {
            let q = acd.queue_by_number(queue)?;
            let name = acd.queue_config(q)?.name.clone();
            let (agent, at) = last.get(&(ani.to_string(), name))?;
            let age_ms = now_ms.saturating_sub(*at).max(0) as u64;
            (age_ms <= max_age_s.saturating_mul(1000)).then(|| agent.clone())
        };
        let Some(d) = router.route(&call, now, &lookup) else { return CcRouted::Default };
        tracing::info!(call = id, %dnis, ani = %ani, "inbound: {}", d.reason());
        if let Destination::Extension(n) = &d.dest {
            if d.greeting.is_none() {
                return CcRouted::Target(n.clone());
            }
        }
        self.cc.calls.insert(id, CcCall::new(Mode::Other));
        match d.greeting {
            Some(g) if self.cc.prompt(&g).is_some() => {
                if self.cc_answer_trunk(id) {
                    if let Some(cc) = self.cc.calls.get_mut(&id) {
                        cc.mode = Mode::Greeting(d.dest);
                    }
                    self.cc_play(id, &g);
                }
            }
            _ => self.cc_goto(id, d.dest),
        }
        CcRouted::Handled
    }

    /// Answer the trunk leg of incoming call `id` (once); false (and the call cleared) when
    /// the trunk refuses.
    pub(super) fn cc_answer_trunk(&mut self, id: CallId) -> bool {
        let now = self.now;
        let Some(c) = self.calls.get(&id) else { return false };
        if c.answered.is_some() {
            return true;
        }
        let a = c.a;
        let ok = match &mut self.lines[a.index()].kind {
            LineKind::Fxo { line, .. } => line.state().is_off_hook() || line.answer(now).is_ok(),
            LineKind::Bchan { .. } => self.pri_answer(a),
            LineKind::R2 { .. } => self.r2_accept(a) && self.r2_answer(a),
            LineKind::Fxs { .. } => true,
            LineKind::None => false,
        };
        if !ok {
            tracing::warn!(call = id, chan = %a, "could not answer the trunk for the call center");
            self.cdr.note(id, "could not answer the trunk");
            self.leg_gone(a);
            return false;
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.answered = Some(now);
            c.set_state(CallState::Connected);
            c.timer = None;
        }
        self.update_detectors(a);
        true
    }

    /// Play prompt `p` once to the trunk leg of call `id` (a prompt not loaded counts as
    /// played at once).
    fn cc_play(&mut self, id: CallId, p: &Path) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        match self.cc.prompt(p) {
            Some(prompt) => {
                if let Some(cc) = self.cc.calls.get_mut(&id) {
                    cc.playing = true;
                }
                self.set_source(a, Source::Prompt { prompt, repeat: false });
            }
            None => {
                tracing::debug!(call = id, prompt = %p.display(), "prompt not loaded; skipped");
                self.set_source(a, Source::Silence);
                self.cc_prompt_over(id);
            }
        }
    }

    /// Collect DTMF from call `id`'s trunk leg (`on`) or stop.
    pub(super) fn cc_dtmf(&mut self, id: CallId, on: bool) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.dtmf = on;
        }
        match self.lines[a.index()].kind {
            LineKind::Fxo { .. } => self.update_detectors(a),
            _ => self.detect(a, if on { Detectors::DTMF } else { Detectors::NONE }),
        }
    }

    /// Whether the trunk leg `chan` collects DTMF for the call center.
    pub(super) fn cc_wants_dtmf(&self, chan: ChannelId) -> bool {
        self.lines[chan.index()]
            .call
            .and_then(|id| self.cc.calls.get(&id).map(|cc| (id, cc)))
            .is_some_and(|(id, cc)| cc.dtmf && self.calls.get(&id).is_some_and(|c| c.a == chan))
    }

    /// A DTMF digit: the call center's when the channel is a trunk leg in the IVR.
    pub(super) fn cc_digit(&mut self, chan: ChannelId, digit: char) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        let Some(cc) = self.cc.calls.get(&id) else { return false };
        if !matches!(cc.mode, Mode::Ivr | Mode::Attendant)
            || self.calls.get(&id).is_none_or(|c| c.a != chan)
        {
            return false;
        }
        if cc.mode == Mode::Attendant {
            self.cba_digit(id, digit);
            return true;
        }
        self.cc.ivr.digit(id, digit, self.now);
        true
    }

    /// A prompt ended on `chan`: the call center's when it played one there.
    pub(super) fn cc_play_done(&mut self, chan: ChannelId) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        if self.cc.attendants.calls.contains_key(&id) {
            return self.cba_play_done(id);
        }
        let Some(cc) = self.cc.calls.get_mut(&id) else { return false };
        if let Some(rest) = cc.announce.as_mut() {
            match rest.pop_front() {
                Some(prompt) => self.set_source(chan, Source::Prompt { prompt, repeat: false }),
                None => {
                    cc.announce = None;
                    if let Some(q) = cc.queue {
                        self.cc_hold_music(id, q);
                    }
                }
            }
            return true;
        }
        if !cc.playing || self.calls.get(&id).is_none_or(|c| c.a != chan) {
            return false;
        }
        cc.playing = false;
        self.cc_prompt_over(id);
        true
    }

    fn cc_prompt_over(&mut self, id: CallId) {
        let Some(cc) = self.cc.calls.get_mut(&id) else { return };
        cc.playing = false;
        match cc.mode.clone() {
            Mode::Ivr => self.cc.ivr.play_done(id, self.now),
            Mode::Message => self.cc_clear(id, "message played"),
            Mode::Greeting(d) => {
                cc.mode = Mode::Other;
                self.cc_goto(id, d);
            }
            _ => {}
        }
    }

    /// Clear call `id` from our side, noting `why` for its record.
    pub(super) fn cc_clear(&mut self, id: CallId, why: &str) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        self.cdr.note(id, why);
        self.leg_gone(a);
    }

    /// Tell waiting call `id` its position and estimated wait, from the queue's recorded
    /// words (numbers digit by digit, the wait in whole minutes, at least 1); music on hold
    /// resumes afterwards. Without `announce_prompts` nothing is said.
    fn cc_announce(&mut self, id: CallId, q: QueueId, position: Option<u32>, ewt_s: Option<u32>) {
        let Some(dir) = self.cc.acd.queue_config(q).and_then(|c| c.announce_prompts.clone()) else {
            tracing::trace!(call = id, "queue announcement skipped (no announce_prompts)");
            return;
        };
        let word = |name: &str| self.cc.prompt(&dir.join(name));
        let number = |n: u32| -> Vec<Option<PromptId>> {
            n.to_string().chars().map(|d| word(&format!("{d}.wav"))).collect()
        };
        let mut list: Vec<Option<PromptId>> = Vec::new();
        if let Some(p) = position {
            list.push(word("position.wav"));
            list.extend(number(p));
        }
        if let Some(s) = ewt_s {
            list.push(word("wait.wav"));
            list.extend(number(s.div_ceil(60).max(1)));
            list.push(word("minutes.wav"));
        }
        // A prompt the engine could not load leaves the whole announcement out.
        let Some(mut prompts) = list.into_iter().collect::<Option<std::collections::VecDeque<_>>>()
        else {
            tracing::debug!(call = id, "queue announcement skipped (a prompt is not loaded)");
            return;
        };
        let Some(first) = prompts.pop_front() else { return };
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.announce = Some(prompts);
        }
        self.set_source(a, Source::Prompt { prompt: first, repeat: false });
    }

    /// Play music on hold of queue `q` to the waiting call `id`.
    fn cc_hold_music(&mut self, id: CallId, q: QueueId) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        let moh = self.cc.acd.music_on_hold(q).and_then(|p| self.cc.prompt(p));
        match moh {
            Some(prompt) => self.set_source(a, Source::Prompt { prompt, repeat: true }),
            None => self.tone(a, ProgressTone::Ringback),
        }
    }

    /// Send call `id` to `dest` (the trunk may or may not be answered yet).
    pub(super) fn cc_goto(&mut self, id: CallId, dest: Destination) {
        if !self.calls.contains_key(&id) {
            return;
        }
        let text = dest.to_string();
        self.cc.calls.entry(id).or_insert_with(|| CcCall::new(Mode::Other));
        match dest {
            Destination::Ivr(menu) => {
                if !self.cc_answer_trunk(id) {
                    return;
                }
                self.set_to(id, &text);
                if let Some(cc) = self.cc.calls.get_mut(&id) {
                    cc.mode = Mode::Ivr;
                }
                if let Err(e) = self.cc.ivr.start(id, &menu, self.now) {
                    tracing::warn!(call = id, "IVR: {e}");
                    self.cc_clear(id, "unknown IVR menu");
                }
            }
            Destination::Queue { queue, priority } => {
                self.cc_queue(id, &queue, priority, None);
            }
            Destination::Agent { agent, queue, priority } => {
                let aid = self.cc.acd.agent_by_number(&agent);
                let q = queue.or_else(|| {
                    self.cc
                        .agents
                        .iter()
                        .find(|a| a.id == agent)
                        .and_then(|a| a.queues.first())
                        .cloned()
                });
                match (aid, q) {
                    (Some(aid), Some(q)) => self.cc_queue(id, &q, priority, Some(aid)),
                    (Some(aid), None) => {
                        let ext = self.cc.acd.agent(aid).and_then(|s| s.extension);
                        match ext {
                            Some(ext) => self.cc_extension(id, &ext),
                            None => self.cc_clear(id, "agent not logged in"),
                        }
                    }
                    (None, _) => self.cc_clear(id, "unknown agent"),
                }
            }
            Destination::Extension(n) => self.cc_extension(id, &n),
            Destination::Voicemail(mailbox) => self.vm_leave(id, &mailbox),
            Destination::Fax(n) => {
                if let Some(cc) = self.cc.calls.get_mut(&id) {
                    cc.mode = Mode::Other;
                }
                self.cc_dtmf(id, false);
                self.move_to_fax(id, &n);
            }
            Destination::Callback(queue) => {
                self.set_to(id, &text);
                match self.cc.acd.queue_by_number(&queue) {
                    Some(q) => self.cba_start(id, q),
                    None => self.cc_clear(id, "no callback: unknown queue"),
                }
            }
            Destination::Busy => {
                self.set_to(id, &text);
                self.counters.calls_busy += 1;
                self.fail(id, ProgressTone::Busy, "rejected: busy");
            }
            Destination::Message(p) => {
                self.set_to(id, &text);
                if self.cc.prompt(&p).is_none() {
                    self.cc_clear(id, "message prompt not loaded");
                    return;
                }
                if !self.cc_answer_trunk(id) {
                    return;
                }
                if let Some(cc) = self.cc.calls.get_mut(&id) {
                    cc.mode = Mode::Message;
                }
                self.cc_play(id, &p);
            }
            Destination::Hangup => {
                self.set_to(id, &text);
                self.cc_clear(id, "routed to hangup");
            }
            Destination::Conference(room) => self.conf_goto(id, &room),
        }
    }

    /// Ring extension (or hunt group) `n` for call `id`, whose trunk may be answered already.
    fn cc_extension(&mut self, id: CallId, n: &str) {
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.mode = Mode::Other;
        }
        self.cc_dtmf(id, false);
        self.set_to(id, n);
        let answered = self.calls.get(&id).is_some_and(|c| c.answered.is_some());
        if answered {
            // `answered()` treats the call as new: let it ring like an incoming call.
            if let Some(c) = self.calls.get_mut(&id) {
                c.set_state(CallState::Dialing);
            }
        }
        self.dial(id, n, true);
        if let Some(c) = self.calls.get(&id) {
            if answered && c.state == CallState::Ringing {
                let a = c.a;
                self.tone(a, ProgressTone::Ringback);
            }
        }
    }

    /// Put call `id` in queue `queue` (number or name) with `priority`, preferring `agent`.
    fn cc_queue(&mut self, id: CallId, queue: &str, priority: u8, agent: Option<AgentId>) {
        let Some(q) = self.cc.acd.queue_by_number(queue) else {
            tracing::warn!(call = id, queue, "unknown queue");
            self.cc_clear(id, "unknown queue");
            return;
        };
        let busy = self.cc.acd.queue_config(q).and_then(|c| c.callback_trunk_busy_percent);
        if busy.is_some_and(|pct| self.cba_trunks_busy(id, pct)) {
            tracing::info!(call = id, queue, "trunks busy: the callback attendant takes the call");
            self.cba_start(id, q);
            return;
        }
        if !self.cc_answer_trunk(id) {
            return;
        }
        let name = self.cc.acd.queue_config(q).map(|c| c.name.clone()).unwrap_or_default();
        self.set_to(id, &format!("queue:{name}"));
        self.cc_dtmf(id, false);
        let now = self.now;
        let from = self.calls.get(&id).map(|c| c.from.clone()).unwrap_or_default();
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.mode = Mode::Queued;
            cc.queue = Some(q);
            cc.queue_name = Some(name);
            cc.entered_queue.get_or_insert(now);
        }
        self.cc_hold_music(id, q);
        let mut arrival = Arrival::new(id, &from);
        arrival.priority = priority;
        arrival.preferred = agent;
        if let Err(e) = self.cc.acd.call_arrives(now, q, arrival) {
            tracing::warn!(call = id, "ACD refused the call: {e}");
            self.cc_clear(id, "queue refused the call");
        }
    }

    /// An extension went off-hook while ringing: the call center's when it rang for an ACD
    /// call or callback offer.
    pub(super) fn cc_agent_answered(&mut self, chan: ChannelId) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        let Some(cc) = self.cc.calls.get(&id) else { return false };
        let LineKind::Fxs { number, .. } = &self.lines[chan.index()].kind else { return false };
        let Some(agent) = self.cc.acd.agent_at(number) else { return false };
        let work = self.cc.acd.agent(agent).and_then(|s| s.work);
        let ours = match (&cc.mode, work) {
            (Mode::Queued, Some(Work::Call(c))) => c == id,
            (Mode::Offer(cb), Some(Work::Callback(w))) => *cb == w,
            _ => false,
        };
        if !ours {
            return false;
        }
        if let Err(e) = self.cc.acd.agent_answered(agent, self.now) {
            tracing::warn!(call = id, "ACD: agent answer refused: {e}");
            return false;
        }
        true
    }

    /// A call ends (leg `chan` went away): tell the engines.
    pub(super) fn cc_call_gone(&mut self, c: &super::Call, chan: ChannelId) {
        let (id, a) = (c.id, c.a);
        self.cc_supervise_gone(id);
        self.cba_gone(id);
        let Some(cc) = self.cc.calls.remove(&id) else { return };
        let now = self.now;
        match cc.mode {
            Mode::Ivr => self.cc.ivr.caller_hung_up(id, now),
            Mode::Queued => {
                let _ = self.cc.acd.call_abandoned(id, now);
            }
            Mode::Agent(agent) => {
                let phone = self.agent_phone(agent);
                if let (Some(name), Some(status)) = (&cc.queue_name, self.cc.acd.agent(agent)) {
                    if !c.from.is_empty() {
                        let key = (c.from.clone(), name.clone());
                        let ended_ms = self.utc_ms(now);
                        self.cc.last_agent.insert(key, (status.number, ended_ms));
                    }
                }
                match phone {
                    Some(p) if p != chan => self.cc.ending.push((agent, p, None)),
                    _ => {
                        let _ = self.cc.acd.call_ended(agent, now);
                    }
                }
            }
            Mode::DialOut(agent, _) => {
                let reached = c.answered.is_some();
                if a == chan {
                    self.cc_dial_out_over(agent, reached);
                } else {
                    self.cc.ending.push((agent, a, Some(reached)));
                }
            }
            Mode::Offer(cb) => {
                self.cc.offers.remove(&cb);
            }
            Mode::Message | Mode::Greeting(_) | Mode::Attendant | Mode::Other => {}
        }
    }

    fn cc_dial_out_over(&mut self, agent: AgentId, reached: bool) {
        let now = self.now;
        let r = if reached {
            self.cc.acd.call_ended(agent, now)
        } else {
            self.cc.acd.callback_unreached(agent, now)
        };
        if let Err(e) = r {
            tracing::debug!(?agent, "ACD: end of callback refused: {e}");
        }
    }

    /// The phone channel an agent is logged in on.
    fn agent_phone(&self, agent: AgentId) -> Option<ChannelId> {
        let ext = self.cc.acd.agent(agent)?.extension?;
        self.extensions.get(&ext).copied()
    }

    /// Carry out everything the IVR and the ACD want done, and the waiting rings and
    /// call ends, until nothing is left.
    pub(super) fn cc_pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            while let Some(a) = self.cc.ivr.poll_action() {
                progressed = true;
                self.cc_ivr_action(a);
            }
            while let Some(a) = self.cc.acd.poll_action() {
                progressed = true;
                self.cc_acd_action(a);
            }
            progressed |= self.cc_settle_phones();
            if !progressed {
                break;
            }
            self.collect();
        }
    }

    /// Rings waiting for a phone that became free; ends of calls whose agent hung up.
    fn cc_settle_phones(&mut self) -> bool {
        let mut progressed = false;
        let now = self.now;
        let ending = std::mem::take(&mut self.cc.ending);
        for (agent, phone, callback) in ending {
            if self.extension_free(phone) {
                progressed = true;
                match callback {
                    None => {
                        if let Err(e) = self.cc.acd.call_ended(agent, now) {
                            tracing::debug!(?agent, "ACD: call end refused: {e}");
                        }
                    }
                    Some(reached) => self.cc_dial_out_over(agent, reached),
                }
            } else if self.lines[phone.index()].call.is_some()
                && !self.lines[phone.index()].orphaned
            {
                // The phone went on to another call without hanging up: the ACD call is over.
                progressed = true;
                match callback {
                    None => {
                        let _ = self.cc.acd.call_ended(agent, now);
                    }
                    Some(reached) => self.cc_dial_out_over(agent, reached),
                }
            } else {
                self.cc.ending.push((agent, phone, callback));
            }
        }
        let offers = std::mem::take(&mut self.cc.pending_offers);
        for (cb, agent, ext, number) in offers {
            let free = self.extensions.get(&ext).is_some_and(|p| self.extension_free(*p));
            if free {
                progressed = true;
                self.cc_offer(cb, agent, &ext, &number);
            } else {
                self.cc.pending_offers.push((cb, agent, ext, number));
            }
        }
        let pending = std::mem::take(&mut self.cc.pending_rings);
        for (agent, call, phone) in pending {
            if self.extension_free(phone) {
                progressed = true;
                self.cc_ring(agent, call, phone);
            } else {
                self.cc.pending_rings.push((agent, call, phone));
            }
        }
        progressed
    }

    /// Ring agent `agent`'s phone `phone` for call `id`; the caller keeps hearing music.
    fn cc_ring(&mut self, agent: AgentId, id: CallId, phone: ChannelId) {
        let Some(c) = self.calls.get(&id) else { return };
        let (state, timer, a) = (c.state, c.timer, c.a);
        let source = self.sources[a.index()].0;
        // No call-control timer: the ACD's ring timeout decides.
        self.start_ringing(id, &[phone], (Tick::MAX, super::CallTimer::RingNoAnswer));
        if let Some(c) = self.calls.get_mut(&id) {
            c.state = state;
            c.timer = timer;
        }
        if self.sources[a.index()].0 != source {
            self.set_source(a, source);
        }
        if !self.calls.get(&id).is_some_and(|c| c.ringing.contains(&phone)) {
            tracing::debug!(call = id, %phone, "agent phone could not ring");
            let _ = self.cc.acd.agent_no_answer(agent, self.now);
        }
    }

    fn cc_ivr_action(&mut self, a: IvrAction) {
        match a {
            IvrAction::Play { call, prompt } => self.cc_play(call, &prompt),
            IvrAction::StopPlay { call } => {
                if let Some(cc) = self.cc.calls.get_mut(&call) {
                    cc.playing = false;
                }
                if let Some(a) = self.calls.get(&call).map(|c| c.a) {
                    self.set_source(a, Source::Silence);
                }
            }
            IvrAction::CollectDigits { call, .. } => self.cc_dtmf(call, true),
            IvrAction::SetCallData { call, key, value } => {
                if let Some(cc) = self.cc.calls.get_mut(&call) {
                    cc.data.retain(|(k, _)| *k != key);
                    cc.data.push((key, value));
                }
            }
            IvrAction::Goto { call, dest } => {
                if let Some(cc) = self.cc.calls.get_mut(&call) {
                    cc.mode = Mode::Other;
                    cc.playing = false;
                }
                self.cc_dtmf(call, false);
                if let Some(a) = self.calls.get(&call).map(|c| c.a) {
                    self.set_source(a, Source::Silence);
                }
                self.cc_goto(call, dest);
            }
            IvrAction::Hangup { call } => {
                if let Some(cc) = self.cc.calls.get_mut(&call) {
                    cc.mode = Mode::Other;
                }
                self.cc_clear(call, "IVR hung up");
            }
            IvrAction::Log(step) => {
                if let Some(cc) = self.cc.calls.get_mut(&step.call) {
                    cc.ivr_path.push(step.node.clone());
                }
                self.cc_ivr_record(step);
            }
        }
    }

    fn cc_acd_action(&mut self, a: Action) {
        let now = self.now;
        match a {
            Action::RingAgent { call, agent, extension, .. } => {
                let phone = self.extensions.get(&extension).copied();
                match phone {
                    Some(p) if self.calls.contains_key(&call) => {
                        if self.extension_free(p) {
                            self.cc_ring(agent, call, p);
                        } else {
                            self.cc.pending_rings.push((agent, call, p));
                        }
                    }
                    _ => {
                        let _ = self.cc.acd.agent_no_answer(agent, now);
                    }
                }
            }
            Action::StopRinging { agent, extension, work } => {
                self.cc.pending_rings.retain(|(a, _, _)| *a != agent);
                self.cc.pending_offers.retain(|(_, a, _, _)| *a != agent);
                let Some(phone) = self.extensions.get(&extension).copied() else { return };
                match work {
                    Work::Call(call) => self.cc_stop_ring(call, phone),
                    Work::Callback(cb) => {
                        if let Some(offer) = self.cc.offers.remove(&cb) {
                            self.cc_drop_offer(offer, phone);
                        }
                    }
                    Work::Direct(_) => {}
                }
            }
            Action::Connect { call, agent, extension } => {
                let Some(phone) = self.extensions.get(&extension).copied() else { return };
                let Some(c) = self.calls.get_mut(&call) else { return };
                c.ringing.retain(|r| *r != phone);
                c.b = Some(phone);
                c.set_state(CallState::Connected);
                c.timer = None;
                let a = c.a;
                self.lines[phone.index()].call = Some(call);
                if let Some(cc) = self.cc.calls.get_mut(&call) {
                    cc.mode = Mode::Agent(agent);
                    cc.agent = Some(agent);
                    cc.agent_answered = Some(now);
                    cc.announce = None;
                }
                self.bridge(a, phone);
            }
            Action::OfferCallback { callback, agent, extension, number, .. } => {
                self.cc_offer(callback, agent, &extension, &number);
            }
            Action::DialOut { callback, agent, extension, number } => {
                self.cc_dial_out(callback, agent, &extension, &number);
            }
            Action::Announce { call, queue, position, ewt_s } => {
                self.cc_announce(call, queue, position, ewt_s)
            }
            Action::Overflow { call, queue, target } => self.cc_overflow(call, queue, target),
            Action::AgentState { agent, state, at_ms, .. } => {
                self.cc_agent_record(agent, state, at_ms)
            }
            Action::QueueEvent(e) => {
                if let QueueEventKind::Enter { call, .. } = &e.kind {
                    // A queue overflow moved the call: it waits in (and hears) the new queue.
                    let (call, q) = (*call, e.queue);
                    let name = self.cc.acd.queue_config(q).map(|c| c.name.clone());
                    if let Some(cc) = self.cc.calls.get_mut(&call) {
                        if cc.queue != Some(q) {
                            cc.queue = Some(q);
                            cc.queue_name = name;
                            self.cc_hold_music(call, q);
                        }
                    }
                }
                self.cc_queue_record(e);
            }
            Action::Supervise(s) => self.cc_supervise_action(s),
        }
    }

    /// Stop ringing `phone` for call `call`.
    fn cc_stop_ring(&mut self, call: CallId, phone: ChannelId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if !c.ringing.contains(&phone) {
            return;
        }
        c.ringing.retain(|r| *r != phone);
        self.stop_ringing(&[phone]);
        if self.lines[phone.index()].call == Some(call) {
            self.lines[phone.index()].call = None;
        }
    }

    /// A call left queue `queue` unanswered: send it on.
    fn cc_overflow(&mut self, call: CallId, queue: QueueId, target: OverflowTarget) {
        tracing::info!(call, ?queue, %target, "queue overflow");
        if let Some(cc) = self.cc.calls.get_mut(&call) {
            if matches!(target, OverflowTarget::Queue(_)) {
                return;
            }
            cc.mode = Mode::Other;
            cc.left_queue = Some(self.now);
        } else {
            return;
        }
        match target {
            OverflowTarget::Queue(_) => {}
            OverflowTarget::Extension(n) => self.cc_extension(call, &n),
            OverflowTarget::Voicemail(b) => {
                let own = self.cc.acd.queue_config(queue).map(|c| c.number.clone());
                self.cc_goto(call, Destination::Voicemail(b.or(own).unwrap_or_default()));
            }
            OverflowTarget::Callback => self.cba_start(call, queue),
            OverflowTarget::Hangup => self.cc_clear(call, "queue overflow"),
        }
    }

    /// Ring agent `agent`'s phone to offer callback `cb`.
    fn cc_offer(&mut self, cb: CallbackId, agent: AgentId, extension: &str, number: &str) {
        let now = self.now;
        let Some(phone) = self.extensions.get(extension).copied() else {
            let _ = self.cc.acd.agent_no_answer(agent, now);
            return;
        };
        if !self.extension_free(phone) {
            // Rung once the phone is free (until the ACD's ring timeout).
            self.cc.pending_offers.push((cb, agent, extension.to_string(), number.to_string()));
            return;
        }
        let id = self.new_call(Direction::Outbound, phone, extension.to_string());
        self.lines[phone.index()].call = None;
        self.set_to(id, number);
        self.cc.calls.insert(id, CcCall::new(Mode::Offer(cb)));
        self.cc.offers.insert(cb, id);
        let rung = match &mut self.lines[phone.index()].kind {
            LineKind::Fxs { line, .. } => line.ring(now).is_ok(),
            _ => false,
        };
        self.lines[phone.index()].call = Some(id);
        if let Some(c) = self.calls.get_mut(&id) {
            c.set_state(CallState::Ringing);
            c.ringing = vec![phone];
        }
        if !rung {
            self.cc.offers.remove(&cb);
            self.cc_drop_offer(id, phone);
            let _ = self.cc.acd.agent_no_answer(agent, now);
        }
    }

    /// Forget callback offer call `id` ringing `phone` (no record: it was only an offer).
    fn cc_drop_offer(&mut self, id: CallId, phone: ChannelId) {
        self.cc.calls.remove(&id);
        if self.calls.remove(&id).is_some() {
            self.counters.calls_total = self.counters.calls_total.saturating_sub(1);
        }
        self.stop_ringing(&[phone]);
        if self.lines[phone.index()].call == Some(id) {
            self.lines[phone.index()].call = None;
        }
    }

    /// The agent accepted callback `cb`: dial the number on its normal route from the
    /// agent's phone.
    fn cc_dial_out(&mut self, cb: CallbackId, agent: AgentId, extension: &str, number: &str) {
        let Some(id) = self.cc.offers.remove(&cb) else {
            let _ = self.cc.acd.callback_unreached(agent, self.now);
            return;
        };
        tracing::info!(call = id, %extension, %number, "callback: dialling out");
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.mode = Mode::DialOut(agent, cb);
            cc.agent = Some(agent);
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.ringing.clear();
            c.set_state(CallState::Dialing);
            c.direction = Direction::Internal;
        }
        self.set_to(id, number);
        self.dial(id, number, true);
    }

    /// The queue (name) and agent (number) of call `id`, for recordings.
    pub(super) fn cc_queue_and_agent(&self, id: CallId) -> (Option<String>, Option<String>) {
        let Some(cc) = self.cc.calls.get(&id) else { return (None, None) };
        let agent = cc.agent.and_then(|a| self.cc.acd.agent(a)).map(|a| a.number);
        (cc.queue_name.clone(), agent)
    }

    /// Fill call-center fields of call `id`'s CDR.
    pub(super) fn cc_fill_cdr(&self, id: CallId, rec: &mut crate::store::CdrRecord) {
        let Some(cc) = self.cc.calls.get(&id) else { return };
        if !cc.ivr_path.is_empty() {
            rec.ivr_path = Some(cc.ivr_path.join(">"));
        }
        rec.queue = cc.queue_name.clone();
        if let Some(a) = cc.agent.and_then(|a| self.cc.acd.agent(a)) {
            rec.agent = Some(a.number);
        }
        if let Some(entered) = cc.entered_queue {
            let until = cc.agent_answered.or(cc.left_queue).unwrap_or(self.now);
            rec.wait_ms = until.saturating_sub(entered) as i64;
        }
        if let Some(t) = cc.agent_answered {
            rec.talk_ms = self.now.saturating_sub(t) as i64;
        }
    }
}
