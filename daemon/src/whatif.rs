//! What-if simulation for planning: `cardpbx sim busy-hour`.
//!
//! A one-queue call center runs on the simulator's virtual clock through the real daemon code
//! (PRI signalling on simulated E1 spans, inbound routing, the ACD, agents logged in by feature
//! code on simulated phones). Callers arrive as a Poisson process from the exchange side of the
//! spans, wait in the queue with an exponentially distributed patience, and talk to an agent for
//! an exponentially distributed time; the agent hangs up and the queue's wrap-up follows. When
//! all trunks are busy an arrival is blocked (the exchange gets no channel).
//!
//! The driver measures everything from what it sees happen (the tick a caller entered the queue,
//! was offered to an agent, was answered, hung up) and keeps every record call control wrote, so
//! that the store's `report queues` figures can be checked against the driver's own counts.
//! With audio, each answered call's two parties check each other's signature for the whole talk
//! time; without (`--no-audio`) the signatures are not checked.
//!
//! Everything random comes from one seeded generator and the virtual clock, so the same
//! parameters and seed give the same report.

use crate::callcenter::erlang;
use crate::config::Config;
use crate::runner::Stepped;
use crate::store::{AgentEventKind, QueueEventKind, Record, Store};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::Tick;
use cardpbx_sim::{ClockMode, EndpointId, SimCard};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;

/// B-channels per E1 PRI span.
const SPAN_CHANNELS: u32 = 30;
/// The called number the exchange dials; the inbound route sends it to the queue.
const DNIS: &str = "80008000";
/// The queue's number and name.
const QUEUE_NUMBER: &str = "600";
const QUEUE_NAME: &str = "main";
/// UTC at tick 0 (µs): 2026-11-23 09:00 UTC, fixed so that records are repeatable.
const UTC_BASE_US: u64 = 1_795_424_400_000_000;
/// A caller counts as having waited when no agent was offered the call within this time.
const WAIT_THRESHOLD_MS: u64 = 100;
/// The PBX takes an agent's on-hook for a hang-up once it lasted longer than the longest
/// hook flash (`flash_max_ms`, 600 ms by default): part of the agent's time per call.
const HANGUP_RECOGNITION_MS: u32 = 600;
/// An agent puts back a phone that is off-hook without a caller after this long, ms.
const STRAY_MS: u64 = 2000;
/// Batches for the batch-means confidence intervals.
const BATCHES: usize = 20;
/// Student's t, 97.5 % quantile, 19 degrees of freedom (95 % two-sided, 20 batches).
const T_95_19: f64 = 2.093;

/// The parameters of a busy-hour run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusyHour {
    /// Agents logged in to the queue (each on a simulated phone).
    pub agents: u32,
    /// Trunks (B-channels); `ceil(trunks / 30)` E1 spans.
    pub trunks: u32,
    /// Mean arrivals per hour (Poisson).
    pub calls_per_hour: f64,
    /// Mean talk time, s (exponential).
    pub mean_talk_s: f64,
    /// Mean caller patience, s (exponential); `None`: callers wait for ever.
    pub patience_s: Option<f64>,
    /// After-call work per call, s (the queue's `wrapup_s`).
    pub wrapup_s: u32,
    /// Simulated hours of arrivals.
    pub hours: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Check audio signatures on every answered call.
    pub audio: bool,
    /// Agents' phones answer this long after they start ringing, ms.
    pub answer_delay_ms: u32,
    /// Service level threshold, s.
    pub sl_s: u32,
    /// Without audio: jump the clock over ticks where nothing happens (event-driven mode);
    /// `false` steps every tick (the outcomes are the same, only slower).
    pub event_driven: bool,
}

impl Default for BusyHour {
    fn default() -> Self {
        BusyHour {
            agents: 20,
            trunks: 30,
            calls_per_hour: 300.0,
            mean_talk_s: 180.0,
            patience_s: Some(120.0),
            wrapup_s: 0,
            hours: 1.0,
            seed: 1,
            audio: true,
            answer_delay_ms: 1000,
            sl_s: 20,
            event_driven: true,
        }
    }
}

impl BusyHour {
    /// E1 spans needed for the trunks.
    pub fn spans(&self) -> u32 {
        self.trunks.div_ceil(SPAN_CHANNELS)
    }

    /// Check the parameters.
    ///
    /// # Errors
    /// A message naming the bad option.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=600).contains(&self.agents) {
            return Err(format!("--agents must be 1..=600, got {}", self.agents));
        }
        if !(1..=600).contains(&self.trunks) {
            return Err(format!("--trunks must be 1..=600, got {}", self.trunks));
        }
        let endpoints = self.agents as usize + 30 * self.spans() as usize;
        if endpoints > cardpbx_sim::signature::MAX_ENDPOINTS {
            return Err(format!(
                "{} agents and {} trunks need {endpoints} audio signatures, more than the \
                 simulator's {}",
                self.agents,
                self.trunks,
                cardpbx_sim::signature::MAX_ENDPOINTS
            ));
        }
        let pos = |v: f64| v.is_finite() && v > 0.0;
        if !pos(self.calls_per_hour) || self.calls_per_hour > 1e6 {
            return Err(format!("--calls-per-hour must be > 0, got {}", self.calls_per_hour));
        }
        if !pos(self.mean_talk_s) || self.mean_talk_s > 86_400.0 {
            return Err(format!("--mean-talk must be > 0 s, got {}", self.mean_talk_s));
        }
        if let Some(p) = self.patience_s {
            if !pos(p) || p > 86_400.0 {
                return Err(format!("--patience must be > 0 s, got {p}"));
            }
        }
        if self.wrapup_s > 3600 {
            return Err(format!("--wrap-up must be at most 3600 s, got {}", self.wrapup_s));
        }
        if !pos(self.hours) || self.hours > 10_000.0 {
            return Err(format!("--hours must be > 0 and at most 10000, got {}", self.hours));
        }
        Ok(())
    }

    /// Offered load in erlangs: arrivals per second times the agent's time per call (ringing
    /// until the auto-answer, talk, wrap-up).
    pub fn offered_erlangs(&self) -> f64 {
        self.calls_per_hour / 3600.0 * self.handle_s()
    }

    /// Mean time an agent spends per call, s: ringing, talk, the PBX recognising the agent's
    /// hang-up, wrap-up.
    pub fn handle_s(&self) -> f64 {
        f64::from(self.answer_delay_ms + HANGUP_RECOGNITION_MS) / 1000.0
            + self.mean_talk_s
            + f64::from(self.wrapup_s)
    }

    /// The daemon configuration of the scenario (TOML): one simulated card with a phone per
    /// agent and the spans, one PRI trunk group, one queue, the inbound route, the agents.
    pub fn config_toml(&self) -> String {
        use std::fmt::Write;
        let spans = self.spans();
        let mut t = String::new();
        let _ = write!(
            t,
            "[system]\nname = \"busy-hour\"\n\n[[card]]\nname = \"sim0\"\ndriver = \"sim\"\n\
             fxs_ports = {}\nfxo_ports = 0\ne1_spans = {spans}\n  [card.sim]\n  seed = {}\n  \
             clock = \"virtual\"\n\n",
            self.agents, self.seed
        );
        for i in 1..=self.agents {
            let _ = write!(
                t,
                "[[extension]]\nnumber = \"{}\"\nport = \"sim0/fxs{i}\"\n\n",
                extension_of(i)
            );
        }
        let ports: Vec<String> = (1..=spans).map(|s| format!("\"sim0/span{s}\"")).collect();
        let _ = write!(
            t,
            "[[trunk_group]]\nname = \"pstn\"\nsignalling = \"pri_cpe\"\nports = [{}]\n\n",
            ports.join(", ")
        );
        let _ = write!(
            t,
            "[[queue]]\nnumber = \"{QUEUE_NUMBER}\"\nname = \"{QUEUE_NAME}\"\nwrapup_s = {}\n\n\
             [[inbound]]\ndnis = [\"{DNIS}\"]\ndestination = \"queue:{QUEUE_NAME}\"\n\n",
            self.wrapup_s
        );
        for i in 1..=self.agents {
            let _ = write!(
                t,
                "[[agent]]\nid = \"{}\"\npin = \"{}\"\nname = \"Agent {i}\"\nqueues = \
                 [\"{QUEUE_NUMBER}\"]\n\n",
                agent_of(i),
                pin_of(i)
            );
        }
        t
    }
}

/// Agent `i`'s (from 1) extension number.
fn extension_of(i: u32) -> String {
    format!("{}", 2000 + i)
}

/// Agent `i`'s agent number.
fn agent_of(i: u32) -> String {
    format!("{}", 1000 + i)
}

/// Agent `i`'s PIN.
fn pin_of(i: u32) -> String {
    format!("{:04}", 1000 + (i * 7919) % 9000)
}

/// The agent index (from 1) of an agent number.
fn agent_index(agent: &str) -> Option<u32> {
    agent.parse::<u32>().ok().and_then(|n| n.checked_sub(1000)).filter(|&i| i >= 1)
}

/// Caller `k`'s (from 0) calling number.
fn ani_of(k: usize) -> String {
    format!("139{k:08}")
}

fn caller_of_ani(ani: &str) -> Option<usize> {
    ani.strip_prefix("139").and_then(|s| s.parse().ok())
}

/// SplitMix64, seeded: the same numbers everywhere.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Exponential with mean `mean_ms`, in whole ms (at least 1).
    fn exp_ms(&mut self, mean_ms: f64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-mean_ms * (1.0 - u).ln()).round() as u64).max(1)
    }
}

/// What the driver does at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// The next caller arrives.
    Arrival,
    /// Caller `k` runs out of patience (hangs up unless answered).
    Patience(usize),
    /// Start checking the audio of caller `k`'s answered call.
    CheckAudio(usize),
    /// The agent talking to caller `k` hangs up.
    AgentHangUp(usize),
}

/// One caller, as the driver saw it.
#[derive(Debug, Clone, Default)]
struct Caller {
    /// The span of its call (0: blocked, it got no trunk).
    span: u32,
    handle: u32,
    call_id: Option<u64>,
    /// Ticks the call entered the queue, was offered to an agent, was answered.
    entered: Option<Tick>,
    offered: Option<Tick>,
    answered: Option<Tick>,
    /// The agent (index from 1) who answered.
    agent: Option<u32>,
    /// The caller hung up for want of patience (before an answer).
    abandoned: bool,
    /// The exchange's bearer timeslot, once answered.
    ts: Option<u8>,
    /// Audio counters when the check started: (phone, caller).
    audio_base: Option<(cardpbx_sim::AudioCheck, cardpbx_sim::AudioCheck)>,
}

/// Progress of a run, for a display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Simulated seconds since arrivals started.
    pub sim_s: f64,
    /// Simulated seconds of arrivals in all.
    pub total_s: f64,
    /// Arrivals so far (blocked included).
    pub arrivals: u64,
    /// Answered so far.
    pub answered: u64,
    /// Abandoned so far.
    pub abandoned: u64,
    /// Blocked so far.
    pub blocked: u64,
}

/// Audio check summary of a run with audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AudioSummary {
    /// Answered calls whose audio was checked both ways.
    pub calls_checked: u64,
    /// Of those, calls with at least one erroneous 20 ms block on either side.
    pub calls_with_errors: u64,
    /// 20 ms blocks that carried the expected signature (both sides summed).
    pub ok_blocks: u64,
    /// Erroneous blocks (missing or wrong signature).
    pub error_blocks: u64,
}

/// A mean with the half-width of its 95 % confidence interval (batch means).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The mean.
    pub mean: f64,
    /// Half-width of the 95 % confidence interval (`None` with too few calls).
    pub ci95: Option<f64>,
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusyHourReport {
    /// The parameters.
    pub params: BusyHour,
    /// E1 spans simulated.
    pub spans: u32,
    /// Offered load, erlangs (arrival rate × (answer delay + talk + wrap-up)).
    pub offered_erlangs: f64,
    /// Simulated seconds from the first possible arrival until the last record (the last call
    /// or wrap-up ended).
    pub simulated_s: f64,
    /// Arrivals (blocked ones included).
    pub arrivals: u64,
    /// Arrivals that found all trunks busy.
    pub blocked: u64,
    /// Callers that entered the queue.
    pub offered: u64,
    /// Answered by an agent.
    pub answered: u64,
    /// Answered within the service-level threshold (from entering the queue).
    pub answered_in_sl: u64,
    /// Hung up while waiting.
    pub abandoned: u64,
    /// Queued callers neither answered nor gone 4 simulated hours after the last arrival
    /// (an overloaded center with patient callers).
    pub unfinished: u64,
    /// Calls that got a trunk but never reached the queue (should be 0).
    pub failed: u64,
    /// Rings an agent's phone did not answer in time (the ACD then made the agent not ready;
    /// should be 0).
    pub no_answers: u64,
    /// answered_in_sl / offered.
    pub service_level: Option<f64>,
    /// Average speed of answer (queue entry to answer, ringing included), s.
    pub asa_s: Option<f64>,
    /// abandoned / offered.
    pub abandon_rate: Option<f64>,
    /// blocked / arrivals.
    pub blocking_rate: Option<f64>,
    /// Share of the agents' logged-in time spent ringing, talking or in wrap-up.
    pub occupancy: Option<f64>,
    /// Probability that a caller waited for an agent (offered to none within 100 ms).
    pub p_wait: Option<Estimate>,
    /// Mean wait until an agent was offered the call (the Erlang C wait), s.
    pub wait_to_agent_s: Option<Estimate>,
    /// Erlang C P(wait) for the agents and offered load (valid with infinite patience).
    pub erlang_c_p_wait: f64,
    /// Erlang C mean wait, s.
    pub erlang_c_asa_s: f64,
    /// Audio check results (`None` with `--no-audio`).
    pub audio: Option<AudioSummary>,
    /// Records call control wrote (queue events, agent events, CDRs).
    #[serde(skip)]
    pub records: Vec<Record>,
}

impl BusyHourReport {
    /// Whether the run was clean: no call failed and (with audio) no audio error.
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.no_answers == 0 && self.audio.is_none_or(|a| a.error_blocks == 0)
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let p = &self.params;
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", 100.0 * v));
        let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} s"));
        let est = |e: Option<Estimate>, scale: f64, unit: &str| {
            e.map_or("-".to_string(), |e| match e.ci95 {
                Some(c) => format!("{:.2}{unit} ± {:.2}{unit}", e.mean * scale, c * scale),
                None => format!("{:.2}{unit}", e.mean * scale),
            })
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "busy hour: {} agents, {} trunks ({} E1), {} calls/h, talk {} s, patience {}, \
             wrap-up {} s, {} h, seed {}, audio {}",
            p.agents,
            p.trunks,
            self.spans,
            p.calls_per_hour,
            p.mean_talk_s,
            p.patience_s.map_or("infinite".into(), |v| format!("{v} s")),
            p.wrapup_s,
            p.hours,
            p.seed,
            if p.audio { "checked" } else { "off" }
        );
        let _ = writeln!(
            s,
            "offered load {:.2} erlangs (handle time {:.1} s), simulated {:.0} s",
            self.offered_erlangs,
            p.handle_s(),
            self.simulated_s
        );
        let _ = writeln!(
            s,
            "arrivals {}  blocked {} ({})  queued {}  answered {}  abandoned {}  failed {}  \
             unanswered rings {}  unfinished {}",
            self.arrivals,
            self.blocked,
            pct(self.blocking_rate),
            self.offered,
            self.answered,
            self.abandoned,
            self.failed,
            self.no_answers,
            self.unfinished
        );
        let _ = writeln!(s, "service level ({} s)   {}", p.sl_s, pct(self.service_level));
        let _ = writeln!(s, "average speed of answer {}", secs(self.asa_s));
        let _ = writeln!(s, "abandonment rate        {}", pct(self.abandon_rate));
        let _ = writeln!(s, "agent occupancy         {}", pct(self.occupancy));
        let _ = writeln!(
            s,
            "P(wait)                 {}   (Erlang C {:.2} %)",
            est(self.p_wait, 100.0, " %"),
            100.0 * self.erlang_c_p_wait
        );
        let _ = writeln!(
            s,
            "mean wait for an agent  {}   (Erlang C {:.2} s)",
            est(self.wait_to_agent_s, 1.0, " s"),
            self.erlang_c_asa_s
        );
        match self.audio {
            Some(a) if a.error_blocks > 0 => {
                let _ = writeln!(
                    s,
                    "AUDIO ERRORS: {} of {} calls checked had errors ({} bad blocks, {} good)",
                    a.calls_with_errors, a.calls_checked, a.error_blocks, a.ok_blocks
                );
            }
            Some(a) => {
                let _ = writeln!(
                    s,
                    "audio: {} calls checked both ways, {} blocks, no errors",
                    a.calls_checked, a.ok_blocks
                );
            }
            None => {
                let _ = writeln!(s, "audio: not simulated (--no-audio)");
            }
        }
        if p.patience_s.is_some() || p.wrapup_s > 0 || self.blocked > 0 {
            let _ = writeln!(
                s,
                "(Erlang C assumes infinite patience, no wrap-up and no blocking: compare only \
                 as a bound)"
            );
        }
        s
    }

    /// Write the run's records into `store`.
    ///
    /// # Errors
    /// A store error.
    pub fn write_records(&self, store: &mut Store) -> Result<(), crate::store::StoreError> {
        for chunk in self.records.chunks(1000) {
            store.write(chunk)?;
        }
        Ok(())
    }
}

/// Mean and batch-means 95 % CI of `xs` (in order).
fn estimate(xs: &[f64]) -> Option<Estimate> {
    if xs.is_empty() {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    if xs.len() < BATCHES * 5 {
        return Some(Estimate { mean, ci95: None });
    }
    let per = xs.len() / BATCHES;
    let means: Vec<f64> = (0..BATCHES)
        .map(|b| {
            let end = if b + 1 == BATCHES { xs.len() } else { (b + 1) * per };
            let s = &xs[b * per..end];
            s.iter().sum::<f64>() / s.len() as f64
        })
        .collect();
    let m = means.iter().sum::<f64>() / BATCHES as f64;
    let var = means.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (BATCHES - 1) as f64;
    Some(Estimate { mean, ci95: Some(T_95_19 * (var / BATCHES as f64).sqrt()) })
}

/// The driver state.
struct Driver {
    p: Stepped<SimCard>,
    params: BusyHour,
    rng: Rng,
    heap: BinaryHeap<Reverse<(Tick, u64, Action)>>,
    seq: u64,
    callers: Vec<Caller>,
    by_call_id: HashMap<u64, usize>,
    records: Vec<Record>,
    blocked: u64,
    /// Arrivals stop at this tick.
    arrivals_end: Tick,
    start: Tick,
    /// Per agent (index from 1): busy since (ringing, talking or in wrap-up).
    busy_since: Vec<Option<Tick>>,
    busy_ms: u64,
    /// Per agent (index from 1): the caller it talks to, and since when its phone has been
    /// off-hook without a caller (a phone that answered a ring the caller had given up).
    talking: Vec<Option<usize>>,
    stray_since: Vec<Option<Tick>>,
    /// Rings no agent answered (the ACD makes the agent not ready).
    no_answers: u64,
    audio: AudioSummary,
    answered: u64,
    abandoned: u64,
}

impl Driver {
    fn schedule(&mut self, at: Tick, a: Action) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, a)));
    }

    /// Run one tick (and, in event-driven mode, skip the idle ticks up to `limit` or the
    /// next thing that can happen), then act on what it produced and what fell due.
    fn step(&mut self, limit: Tick) -> anyhow::Result<()> {
        if !self.params.audio && self.params.event_driven {
            let next = self.heap.peek().map_or(limit, |Reverse((t, _, _))| (*t).min(limit));
            let next = self.stray_due().map_or(next, |t| t.min(next));
            self.p.step_skipping(next)?;
        } else {
            self.p.step()?;
        }
        self.drain();
        let now = self.p.now();
        self.tidy_phones(now);
        while let Some(Reverse((t, _, a))) = self.heap.peek().copied() {
            if t > now {
                break;
            }
            self.heap.pop();
            self.act(now, a);
        }
        Ok(())
    }

    /// Take the records call control wrote this tick and follow the callers with them.
    fn drain(&mut self) {
        let now = self.p.now();
        while let Some(r) = self.p.pbx_mut().pop_record() {
            self.follow(now, &r);
            self.records.push(r);
        }
        while let Some(c) = self.p.pbx_mut().pop_cdr() {
            self.records.push(Record::Cdr(c));
        }
    }

    fn caller_of_call(&mut self, call_id: u64) -> Option<usize> {
        if let Some(&k) = self.by_call_id.get(&call_id) {
            return Some(k);
        }
        let info = self.p.pbx().calls().into_iter().find(|c| c.id == call_id)?;
        let k = caller_of_ani(&info.from).filter(|&k| k < self.callers.len())?;
        self.by_call_id.insert(call_id, k);
        self.callers[k].call_id = Some(call_id);
        Some(k)
    }

    fn follow(&mut self, now: Tick, r: &Record) {
        match r {
            Record::QueueEvent(e) => {
                let Some(k) = self.caller_of_call(e.call_id) else { return };
                match e.event {
                    QueueEventKind::Enter => self.callers[k].entered = Some(now),
                    QueueEventKind::Answer => {
                        let agent = e.agent.as_deref().and_then(agent_index);
                        let c = &mut self.callers[k];
                        c.answered = Some(now);
                        c.agent = agent;
                        if let Some(i) = agent {
                            if let Some(t) = self.talking.get_mut(i as usize) {
                                *t = Some(k);
                            }
                        }
                        self.answered += 1;
                        let talk = self.rng.exp_ms(self.params.mean_talk_s * 1000.0);
                        if self.params.audio && talk > 400 {
                            self.schedule(now + 200, Action::CheckAudio(k));
                        }
                        self.schedule(now + talk, Action::AgentHangUp(k));
                    }
                    _ => {}
                }
            }
            Record::AgentEvent(e) => {
                let Some(i) = agent_index(&e.agent) else { return };
                let i = i as usize;
                if i >= self.busy_since.len() {
                    return;
                }
                match e.event {
                    AgentEventKind::Ringing => {
                        if let Some(k) = e.call_id.and_then(|c| self.caller_of_call(c)) {
                            self.callers[k].offered.get_or_insert(now);
                        }
                        self.busy_since[i].get_or_insert(now);
                    }
                    AgentEventKind::TalkStart => {
                        self.busy_since[i].get_or_insert(now);
                    }
                    AgentEventKind::TalkEnd if self.params.wrapup_s == 0 => self.agent_free(i, now),
                    AgentEventKind::TalkEnd | AgentEventKind::WrapupStart => {}
                    AgentEventKind::NoAnswer => {
                        self.no_answers += 1;
                        self.agent_free(i, now);
                    }
                    _ => self.agent_free(i, now),
                }
            }
            _ => {}
        }
    }

    fn agent_free(&mut self, i: usize, now: Tick) {
        if let Some(t) = self.busy_since[i].take() {
            self.busy_ms += self.clip(now) - self.clip(t);
        }
    }

    /// `t` limited to the measured period (arrivals start to arrivals end).
    fn clip(&self, t: Tick) -> Tick {
        t.clamp(self.start, self.arrivals_end)
    }

    fn act(&mut self, now: Tick, a: Action) {
        match a {
            Action::Arrival => {
                if now < self.arrivals_end {
                    self.arrive(now);
                    let gap = self.rng.exp_ms(3_600_000.0 / self.params.calls_per_hour);
                    self.schedule(now + gap, Action::Arrival);
                }
            }
            Action::Patience(k) => {
                let c = &self.callers[k];
                if c.answered.is_none() && !c.abandoned {
                    let (span, h) = (c.span, c.handle);
                    self.callers[k].abandoned = true;
                    self.abandoned += 1;
                    self.p.card_mut().pri_hang_up(span, h);
                }
            }
            Action::CheckAudio(k) => {
                let (span, agent) = (self.callers[k].span, self.callers[k].agent);
                let Some(agent) = agent else { return };
                let h = self.callers[k].handle;
                let Some(ts) = self.p.card().pri_call_channel(span, h) else { return };
                let card = self.p.card_mut();
                let bearer = EndpointId::Bearer { span, ts };
                card.pri_expect_peer(span, ts, Some(EndpointId::Phone(agent)));
                let Some(ph) = card.phone_mut(agent) else { return };
                ph.expect_peer(Some(bearer));
                let base_phone = ph.audio_check();
                let base_caller = card.pri_audio_check(span, ts).unwrap_or_default();
                self.callers[k].ts = Some(ts);
                self.callers[k].audio_base = Some((base_phone, base_caller));
            }
            Action::AgentHangUp(k) => {
                let Some(agent) = self.callers[k].agent else { return };
                let card = self.p.card_mut();
                if let (Some((bp, bc)), Some(ts)) =
                    (self.callers[k].audio_base.take(), self.callers[k].ts)
                {
                    let span = self.callers[k].span;
                    let dp = card.phone(agent).map(|p| p.audio_check().since(&bp));
                    let dc = card.pri_audio_check(span, ts).map(|c| c.since(&bc));
                    card.pri_expect_peer(span, ts, None);
                    if let Some(ph) = card.phone_mut(agent) {
                        ph.expect_peer(None);
                    }
                    let (dp, dc) = (dp.unwrap_or_default(), dc.unwrap_or_default());
                    self.audio.calls_checked += 1;
                    self.audio.ok_blocks += dp.ok_blocks + dc.ok_blocks;
                    let err = dp.error_blocks + dc.error_blocks;
                    self.audio.error_blocks += err;
                    if err > 0 {
                        self.audio.calls_with_errors += 1;
                    }
                }
                if let Some(ph) = self.p.card_mut().phone_mut(agent) {
                    ph.on_hook();
                }
                self.talking[agent as usize] = None;
            }
        }
    }

    /// When the next phone without a caller is to be put back.
    fn stray_due(&self) -> Option<Tick> {
        self.stray_since.iter().flatten().map(|t| t + STRAY_MS).min()
    }

    /// An agent puts back a phone that is off-hook without a caller (it answered a ring the
    /// caller had just given up) after two seconds, as a person would.
    fn tidy_phones(&mut self, now: Tick) {
        for i in 1..=self.params.agents {
            let iu = i as usize;
            let off =
                self.p.card().phone(i).is_some_and(|p| p.hook() == cardpbx_hal::HookState::OffHook);
            if !off || self.talking[iu].is_some() {
                self.stray_since[iu] = None;
                continue;
            }
            let since = *self.stray_since[iu].get_or_insert(now);
            if now - since >= STRAY_MS {
                if let Some(ph) = self.p.card_mut().phone_mut(i) {
                    ph.on_hook();
                }
                self.stray_since[iu] = None;
            }
        }
    }

    fn arrive(&mut self, now: Tick) {
        let k = self.callers.len();
        let spans = self.params.spans();
        // Trunks in use: the exchange's calls not yet cleared, on every span.
        let per_span: Vec<u32> =
            (1..=spans).map(|s| self.p.card().pri_active_calls(s) as u32).collect();
        let busy: u32 = per_span.iter().sum();
        let mut caller = Caller::default();
        let span = (0..spans as usize)
            .filter(|&i| per_span[i] < SPAN_CHANNELS)
            .min_by_key(|&i| per_span[i])
            .map(|i| i as u32 + 1);
        let placed = match span {
            Some(s) if busy < self.params.trunks => {
                self.p.card_mut().pri_call_in(s, Some(&ani_of(k)), DNIS).ok().map(|h| (s, h))
            }
            _ => None,
        };
        match placed {
            Some((s, h)) => {
                caller.span = s;
                caller.handle = h;
                self.callers.push(caller);
                if let Some(pat) = self.params.patience_s {
                    let wait = self.rng.exp_ms(pat * 1000.0);
                    self.schedule(now + wait, Action::Patience(k));
                }
            }
            None => {
                // Span 0: blocked. The caller keeps its place (caller numbers stay unique).
                self.blocked += 1;
                self.callers.push(caller);
            }
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            sim_s: (self.p.now().saturating_sub(self.start)) as f64 / 1000.0,
            total_s: (self.arrivals_end - self.start) as f64 / 1000.0,
            arrivals: self.callers.len() as u64,
            answered: self.answered,
            abandoned: self.abandoned,
            blocked: self.blocked,
        }
    }

    /// Every placed caller has finished (answered and hung up, or abandoned) and every agent
    /// is free.
    fn settled(&self) -> bool {
        let acd = self.p.pbx().acd();
        self.heap
            .iter()
            .all(|Reverse((_, _, a))| matches!(a, Action::Arrival | Action::Patience(_)))
            && (1..=self.params.agents).all(|i| {
                acd.agent_by_number(&agent_of(i)).is_some_and(|a| {
                    acd.agent_state(a) == crate::callcenter::acd::AgentState::Ready
                })
            })
            && self.p.pbx().active_calls() == 0
    }
}

/// Run the scenario; `progress` is called about once per simulated minute.
///
/// # Errors
/// Bad parameters, a configuration the daemon refuses, a simulator error, or agents that
/// could not log in.
pub fn run(
    params: &BusyHour,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<BusyHourReport> {
    params.validate().map_err(|e| anyhow::anyhow!(e))?;
    let text = params.config_toml();
    let cfg = Config::parse_str(&text, "busy-hour.toml")
        .map_err(|e| anyhow::anyhow!("busy-hour scenario configuration: {e}"))?;
    let mut sc = crate::service::sim_config(&cfg, &cfg.cards[0], Some(ClockMode::Virtual));
    sc.phone.auto_answer_ms = Some(params.answer_delay_ms);
    let card = SimCard::new(sc)?;
    let mut p = Stepped::new(card, &cfg, "sim0")?;
    // Fixed clocks: the records' times do not depend on when the run happens.
    p.pbx_mut().set_wall_clock(UTC_BASE_US as i64 / 1_000_000);
    p.pbx_mut().set_utc_base(UTC_BASE_US);
    let spans = params.spans();
    let up = p.run_until(10_000, |s| (1..=spans).all(|n| s.card().pri_link_up(n)))?;
    anyhow::ensure!(up, "the simulated D-channels did not come up");
    p.run_ms(200)?;
    let mut d = Driver {
        p,
        params: params.clone(),
        rng: Rng(params.seed ^ 0xB05E_4A11_C0DE_0001),
        heap: BinaryHeap::new(),
        seq: 0,
        callers: Vec::new(),
        by_call_id: HashMap::new(),
        records: Vec::new(),
        blocked: 0,
        arrivals_end: 0,
        start: 0,
        busy_since: vec![None; params.agents as usize + 1],
        busy_ms: 0,
        talking: vec![None; params.agents as usize + 1],
        stray_since: vec![None; params.agents as usize + 1],
        no_answers: 0,
        audio: AudioSummary::default(),
        answered: 0,
        abandoned: 0,
    };
    login_all(&mut d)?;
    d.start = d.p.now();
    d.arrivals_end = d.start + (params.hours * 3_600_000.0).round() as Tick;
    let first = d.rng.exp_ms(3_600_000.0 / params.calls_per_hour);
    d.schedule(d.start + first, Action::Arrival);
    let mut next_progress = d.start;
    // Arrivals, then until every call has ended (at most 4 simulated hours more).
    let limit = d.arrivals_end + 4 * 3_600_000;
    while d.p.now() < limit {
        let now = d.p.now();
        if now >= next_progress {
            progress(&d.progress());
            next_progress = now + 60_000;
        }
        if now >= d.arrivals_end && d.settled() {
            break;
        }
        d.step(next_progress.min(limit))?;
    }
    // Let the last records (wrap-up end, CDRs) through.
    let end = d.p.now() + 100;
    while d.p.now() < end {
        d.step(end)?;
    }
    progress(&d.progress());
    let end = d.p.now();
    for i in 1..d.busy_since.len() {
        d.agent_free(i, end);
    }
    Ok(report(d))
}

/// Log every agent in from its phone with the feature code, all at once.
fn login_all(d: &mut Driver) -> anyhow::Result<()> {
    let n = d.params.agents;
    let card = d.p.card_mut();
    for i in 1..=n {
        card.phone_mut(i).expect("a phone per agent").off_hook();
    }
    let ok = d.p.run_until(5000, |s| {
        (1..=n)
            .all(|i| s.card().phone(i).is_some_and(|p| p.hears().tone == Some(ProgressTone::Dial)))
    })?;
    anyhow::ensure!(ok, "agents' phones got no dial tone");
    for i in 1..=n {
        let code = format!("*21{}*{}#", agent_of(i), pin_of(i));
        d.p.card_mut().phone_mut(i).expect("phone").dial(&code)?;
    }
    d.p.run_ms(2500)?;
    for i in 1..=n {
        d.p.card_mut().phone_mut(i).expect("phone").on_hook();
    }
    d.p.run_ms(1500)?;
    d.drain();
    let acd = d.p.pbx().acd();
    for i in 1..=n {
        let a = acd.agent_by_number(&agent_of(i)).expect("configured agent");
        let st = acd.agent_state(a);
        anyhow::ensure!(
            st == crate::callcenter::acd::AgentState::Ready,
            "agent {} did not log in (state {st:?})",
            agent_of(i)
        );
    }
    Ok(())
}

/// The record time (UTC ms) of tick `t`.
fn utc_ms(t: Tick) -> i64 {
    (UTC_BASE_US / 1000 + t) as i64
}

/// The time of the last thing that happened (the last record), UTC ms.
fn last_record_ms(records: &[Record]) -> Option<i64> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Cdr(c) => Some(c.ended_ms),
            Record::QueueEvent(e) => Some(e.ts_ms),
            Record::AgentEvent(e) => Some(e.ts_ms),
            _ => None,
        })
        .max()
}

fn report(d: Driver) -> BusyHourReport {
    let params = d.params.clone();
    let sl_ms = u64::from(params.sl_s) * 1000;
    let placed: Vec<&Caller> = d.callers.iter().filter(|c| c.span > 0).collect();
    let queued: Vec<&Caller> = placed.iter().copied().filter(|c| c.entered.is_some()).collect();
    let answered: Vec<&Caller> = queued.iter().copied().filter(|c| c.answered.is_some()).collect();
    let abandoned = queued.iter().filter(|c| c.abandoned).count() as u64;
    let wait = |c: &Caller| c.answered.unwrap_or(0).saturating_sub(c.entered.unwrap_or(0));
    let answered_in_sl = answered.iter().filter(|c| wait(c) <= sl_ms).count() as u64;
    let n_q = queued.len() as u64;
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let asa_s = (!answered.is_empty()).then(|| {
        answered.iter().map(|c| wait(c) as f64).sum::<f64>() / answered.len() as f64 / 1000.0
    });
    // Waits to an agent, for the Erlang comparison: callers that reached an agent.
    let reached: Vec<&Caller> = queued.iter().copied().filter(|c| c.offered.is_some()).collect();
    let to_agent: Vec<f64> = reached
        .iter()
        .map(|c| c.offered.unwrap_or(0).saturating_sub(c.entered.unwrap_or(0)) as f64 / 1000.0)
        .collect();
    let waited: Vec<f64> = to_agent
        .iter()
        .map(|&w| if w * 1000.0 > WAIT_THRESHOLD_MS as f64 { 1.0 } else { 0.0 })
        .collect();
    let measured_ms = d.arrivals_end - d.start;
    let a = params.offered_erlangs();
    BusyHourReport {
        spans: params.spans(),
        offered_erlangs: a,
        simulated_s: last_record_ms(&d.records)
            .map_or(0.0, |t| (t - utc_ms(d.start)).max(0) as f64 / 1000.0),
        arrivals: d.callers.len() as u64,
        blocked: d.blocked,
        offered: n_q,
        answered: answered.len() as u64,
        answered_in_sl,
        abandoned,
        failed: (placed.len() - queued.len()) as u64,
        unfinished: n_q - answered.len() as u64 - abandoned,
        no_answers: d.no_answers,
        service_level: ratio(answered_in_sl, n_q),
        asa_s,
        abandon_rate: ratio(abandoned, n_q),
        blocking_rate: ratio(d.blocked, d.callers.len() as u64),
        occupancy: (measured_ms > 0)
            .then(|| d.busy_ms as f64 / (measured_ms as f64 * f64::from(params.agents))),
        p_wait: estimate(&waited),
        wait_to_agent_s: estimate(&to_agent),
        erlang_c_p_wait: erlang::erlang_c(params.agents, a),
        erlang_c_asa_s: erlang::asa(params.agents, a, params.handle_s()),
        audio: params.audio.then_some(d.audio),
        records: d.records,
        params,
    }
}

/// `cardpbx sim ...`
#[derive(Debug, Clone, PartialEq, clap::Subcommand)]
pub enum SimCmd {
    /// What-if: a one-queue call center's busy hour on the virtual clock through the real
    /// daemon code; prints service level, ASA, P(wait), abandonment, occupancy, blocking.
    BusyHour(BusyHourArgs),
}

/// `cardpbx sim busy-hour` options.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct BusyHourArgs {
    /// Agents logged in to the queue.
    #[arg(long, value_name = "N")]
    pub agents: u32,
    /// Trunks (PRI B-channels; 30 per E1 span).
    #[arg(long, value_name = "T")]
    pub trunks: u32,
    /// Mean arrivals per hour (Poisson).
    #[arg(long, value_name = "C")]
    pub calls_per_hour: f64,
    /// Mean talk time in seconds (exponential).
    #[arg(long, value_name = "SECONDS")]
    pub mean_talk: f64,
    /// Mean caller patience in seconds (exponential; default: callers never hang up).
    #[arg(long, value_name = "SECONDS")]
    pub patience: Option<f64>,
    /// After-call work per call, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wrap_up: u32,
    /// Simulated hours of arrivals.
    #[arg(long, value_name = "H", default_value_t = 1.0)]
    pub hours: f64,
    /// Seed of everything random.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Skip the media path's checks (signalling, call control and ACD only).
    #[arg(long)]
    pub no_audio: bool,
    /// Write the run's records (queue and agent events, CDRs) into this store file.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `cardpbx sim ...`; the exit code.
///
/// # Errors
/// Bad options, a failed run, or a store that cannot be written.
pub fn run_cli(cmd: &SimCmd) -> anyhow::Result<i32> {
    let SimCmd::BusyHour(a) = cmd;
    let params = BusyHour {
        agents: a.agents,
        trunks: a.trunks,
        calls_per_hour: a.calls_per_hour,
        mean_talk_s: a.mean_talk,
        patience_s: a.patience,
        wrapup_s: a.wrap_up,
        hours: a.hours,
        seed: a.seed,
        audio: !a.no_audio,
        ..BusyHour::default()
    };
    params.validate().map_err(|e| anyhow::anyhow!(e))?;
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let wall = std::time::Instant::now();
    let mut last_pct = -1i64;
    let mut show = |p: &Progress| {
        let frac = if p.total_s > 0.0 { (p.sim_s / p.total_s).min(1.0) } else { 1.0 };
        let line = format!(
            "simulated {:.1} of {:.1} h: {} arrivals, {} answered, {} abandoned, {} blocked",
            p.sim_s / 3600.0,
            p.total_s / 3600.0,
            p.arrivals,
            p.answered,
            p.abandoned,
            p.blocked
        );
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            // Not a terminal: one line per tenth of the run.
            let pct = (frac * 10.0).floor() as i64;
            if pct > last_pct {
                last_pct = pct;
                eprintln!("{line}");
            }
        }
    };
    let report = run(&params, &mut show)?;
    if tty {
        eprintln!();
    }
    let secs = wall.elapsed().as_secs_f64();
    eprintln!(
        "wall time {secs:.1} s ({:.3} simulated hours per second, {:.0} times real time)",
        report.simulated_s / 3600.0 / secs.max(1e-9),
        report.simulated_s / secs.max(1e-9)
    );
    if let Some(path) = &a.store {
        let mut store = Store::open(path)?;
        report.write_records(&mut store)?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.is_clean() { 0 } else { crate::ctl::cli::EXIT_FAILED })
}
