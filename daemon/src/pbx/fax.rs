//! Fax calls in call control: incoming trunk calls the daemon itself receives as faxes
//! (`fax_destination = "receive"`, or `incoming = "receive"`), and the outgoing fax jobs of
//! `cardpbx fax send --to`.
//!
//! Call control stays sans-IO: it attaches a call's trunk channel to a fax port of the media
//! engine ([`Source::FaxPort`]) and queues a [`FaxRequest`] for the fax worker
//! ([`crate::faxsvc`]), which the runner passes on ([`Pbx::fax_pop_request`]); the worker's
//! [`FaxDone`] comes back through [`Pbx::fax_finished`]. Finished faxes become store records
//! ([`Pbx::pop_fax_record`]) and CTI events ([`Pbx::pop_fax_event`]).
//!
//! Outgoing faxes go out on PRI, R2 and FXO trunk groups. The job places the call itself (it
//! has no extension leg, so it is not a [`Call`](super::Call)). On PRI it sends SETUP and
//! starts sending on CONNECT; on R2 it registers the number and starts sending on the answer
//! (a group B busy or congestion fails the attempt). On FXO it seizes a free line, dials the number in DTMF and starts
//! sending at once (T.30 plays CNG and waits for the far end's DIS under T1), with the
//! call-progress detector on the line: busy, congestion or special information tone fails the
//! attempt. Every way the job places the call again after a busy signal, no answer, or a
//! failed fax while retries remain.

use super::{CallId, CallState, DialResult, LineKind, Pbx};
use crate::engine::api::{Detectors, FaxSlot, Source};
use crate::faxsvc::{FaxDone, FaxRequest, FaxRole, FaxStart, RECEIVE};
use crate::store::FaxRecord;
use cardpbx_dsp::fax::t30::ModemFamily;
use cardpbx_dsp::fax::tiff::FaxPage;
use cardpbx_dsp::progress::ProgressEvent;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{ChannelId, Tick};
use cardpbx_signalling::loopstart::FxoEvent;
use cardpbx_signalling::q931::call::{CallEvent, CallParams, CallState as Q931State, Side};
use cardpbx_signalling::q931::Cause;
use cardpbx_signalling::r2::{BSignal, ClearReason, R2Event};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Most CTI events kept when nobody drains them.
const MAX_EVENTS: usize = 1000;
/// An outgoing fax call that is not answered in this time is given up (attempt: no answer).
const SEND_ANSWER_TIMEOUT_MS: u64 = 60_000;

/// A request to send a fax (`cardpbx fax send --to`).
#[derive(Debug, Clone)]
pub struct FaxSendRequest {
    /// The number, as a caller on an extension would dial it (a route prefix included), or,
    /// with `group`, as it goes to the network.
    pub number: String,
    /// Trunk group to send through (its name); `None`: the route the number matches.
    pub group: Option<String>,
    /// The document's path (for the record).
    pub file: String,
    /// The pages.
    pub pages: Vec<FaxPage>,
    /// Attempts after the first; `None`: `[fax] retries`.
    pub retries: Option<u32>,
}

/// What happened to a fax, for the CTI tier (there is no CTI server yet: the real-time
/// runner logs these as JSON on the `cardpbx::cti` target).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaxEvent {
    /// The fax job.
    pub job: u64,
    /// `receiving`, `received`, `queued`, `dialing`, `sending`, `retry`, `sent`, `failed`.
    pub event: &'static str,
    /// The far end's number.
    pub number: String,
    /// Tick of the event.
    pub at: Tick,
    /// Details: the reason of a retry or failure, the file of a received fax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Pages, once known.
    pub pages: u32,
}

/// An outgoing fax job as `fax jobs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FaxJobInfo {
    /// The job.
    pub job: u64,
    /// The number sent to the network.
    pub number: String,
    /// The trunk group.
    pub trunk_group: String,
    /// `waiting`, `calling`, `sending`.
    pub state: String,
    /// Calls placed so far.
    pub attempts: u32,
    /// Attempts still allowed after the current one.
    pub retries_left: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendState {
    /// The next attempt is due at this tick.
    Waiting(Tick),
    /// SETUP sent on `chan`, no answer yet (since the tick).
    Calling { chan: ChannelId, call: CallId, since: Tick },
    /// FXO line `chan` seized at the tick; dialling starts [`super::SEIZE_TO_DIAL_MS`] later.
    Seized { chan: ChannelId, call: CallId, since: Tick },
    /// The number goes out in DTMF on FXO line `chan` (the digits left are in the job).
    Dialing { chan: ChannelId, call: CallId },
    /// Answered (PRI) or dialled (FXO): the fax session runs on the port.
    Sending { chan: ChannelId, call: CallId, slot: u16 },
    /// We cleared the call; the attempt failed for the reason kept in the job.
    Clearing { chan: ChannelId, call: CallId },
    /// FXO line released during the session (busy tone, far-end clear) for the reason kept in
    /// the job; the attempt ends when the worker reports the stopped session.
    Ending { chan: ChannelId, call: CallId, slot: u16 },
}

impl SendState {
    /// The line and call of the attempt, if one is placed.
    fn line(self) -> Option<(ChannelId, CallId)> {
        match self {
            SendState::Waiting(_) => None,
            SendState::Calling { chan, call, .. }
            | SendState::Seized { chan, call, .. }
            | SendState::Dialing { chan, call }
            | SendState::Sending { chan, call, .. }
            | SendState::Clearing { chan, call }
            | SendState::Ending { chan, call, .. } => Some((chan, call)),
        }
    }
}

struct SendJob {
    number: String,
    group: usize,
    file: String,
    pages: Arc<Vec<FaxPage>>,
    /// DTMF digits still to send on an FXO line.
    outdial: VecDeque<char>,
    retries_left: u32,
    attempts: u32,
    state: SendState,
    started: Tick,
    last_status: String,
    last_error: Option<String>,
    remote_ident: Option<String>,
    pages_sent: u32,
    bit_rate: u32,
}

/// A fax being received on a trunk call.
struct RecvJob {
    call: CallId,
    chan: ChannelId,
    from: String,
    group: Option<String>,
    started: Tick,
}

/// The fax state of call control.
pub(super) struct FaxCtl {
    spool: PathBuf,
    ident: String,
    modems: Vec<ModemFamily>,
    pdf: bool,
    retries: u32,
    retry_delay_ms: u64,
    max_duration: Duration,
    /// The job using each fax port (the port stays taken until the worker reports).
    slots: Vec<Option<u64>>,
    next_slot: usize,
    next_job: u64,
    sends: BTreeMap<u64, SendJob>,
    receives: BTreeMap<u64, RecvJob>,
    requests: VecDeque<FaxRequest>,
    records: VecDeque<FaxRecord>,
    events: VecDeque<FaxEvent>,
}

impl FaxCtl {
    pub(super) fn new(cfg: &crate::config::model::Config) -> FaxCtl {
        let f = &cfg.fax;
        let modems = crate::faxcli::parse_modems(&f.modems.join(","))
            .unwrap_or_else(|_| vec![ModemFamily::V27ter, ModemFamily::V29]);
        FaxCtl {
            spool: f.spool_dir(&cfg.system),
            ident: f.station_id.clone(),
            modems,
            pdf: f.pdf,
            retries: f.retries,
            retry_delay_ms: u64::from(f.retry_delay_s) * 1000,
            max_duration: Duration::from_secs(u64::from(f.max_duration_s)),
            slots: vec![None; f.ports as usize],
            next_slot: 0,
            next_job: 1,
            sends: BTreeMap::new(),
            receives: BTreeMap::new(),
            requests: VecDeque::new(),
            records: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Fax ports the engine needs.
    pub(super) fn ports(&self) -> usize {
        self.slots.len()
    }

    /// A free port, taking turns so that a port just freed is used last.
    fn take_slot(&mut self, job: u64) -> Option<u16> {
        let n = self.slots.len();
        for k in 0..n {
            let i = (self.next_slot + k) % n;
            if self.slots[i].is_none() {
                self.slots[i] = Some(job);
                self.next_slot = (i + 1) % n;
                return Some(i as u16);
            }
        }
        None
    }

    fn job(&mut self) -> u64 {
        let j = self.next_job;
        self.next_job += 1;
        j
    }

    fn event(&mut self, e: FaxEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn start(&mut self, slot: u16, job: u64, role: FaxRole) {
        self.requests.push_back(FaxRequest::Start(FaxStart {
            slot: FaxSlot(slot),
            job,
            role,
            ident: self.ident.clone(),
            modems: self.modems.clone(),
            max_duration: self.max_duration,
        }));
    }
}

/// `YYYYmmdd-HHMMSS` of UTC milliseconds since 1970.
fn stamp(ms: i64) -> String {
    crate::store::time::format_datetime(ms, 0).replace(['-', ':'], "").replace(' ', "-")
}

impl Pbx {
    /// The trunk group a trunk channel (FXO line, PRI bearer, R2 timeslot) belongs to.
    pub(super) fn trunk_group_of(&self, chan: ChannelId) -> Option<usize> {
        match self.lines.get(chan.index())?.kind {
            LineKind::Fxo { group, .. } => Some(group),
            LineKind::Bchan { pri, .. } => self.pri.get(pri).map(|p| p.group),
            LineKind::R2 { .. } => self.trunk_groups.iter().position(|g| g.lines.contains(&chan)),
            LineKind::Fxs { .. } | LineKind::None => None,
        }
    }

    /// An incoming PRI call `id` is about to be routed to `target`: when its trunk group has a
    /// fax destination, answer it now and listen for fax calling tone (as FXO lines do).
    pub(super) fn pri_fax_listen(&mut self, id: CallId, target: &str) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        let Some(g) = self.trunk_group_of(a) else { return };
        if self.trunk_groups[g].fax_destination.is_none() || target == RECEIVE {
            return;
        }
        if !self.pri_answer(a) {
            tracing::warn!(call = id, chan = %a, "could not answer the PRI call to listen for fax");
            return;
        }
        let now = self.now;
        if let Some(c) = self.calls.get_mut(&id) {
            c.fax_until = Some(Tick::MAX);
            c.answered = Some(now);
        }
        self.update_detectors(a);
    }

    /// Whether the dialplan target `digits` is the fax service; if so call `id` is taken.
    pub(super) fn fax_dial(&mut self, id: CallId, digits: &str, complete: bool) -> bool {
        if !complete || digits != RECEIVE {
            return false;
        }
        self.fax_receive(id);
        true
    }

    /// Receive incoming trunk call `id` as a fax: answer the trunk if needed, attach it to a
    /// fax port and have the worker start an answering session.
    fn fax_receive(&mut self, id: CallId) {
        let Some(c) = self.calls.get(&id) else { return };
        let a = c.a;
        let from = c.from.clone();
        let moved = c.fax;
        let now = self.now;
        let answered = match &mut self.lines[a.index()].kind {
            LineKind::Fxo { line, .. } => line.state().is_off_hook() || line.answer(now).is_ok(),
            LineKind::Bchan { pri, .. } => {
                let pri = *pri;
                let active = self.lines[a.index()].q931.is_some_and(|h| {
                    matches!(
                        self.pri[pri].ep.q931().call_state(h),
                        Q931State::Active | Q931State::ConnectRequest
                    )
                });
                active || self.pri_answer(a)
            }
            _ => {
                self.set_to(id, RECEIVE);
                self.fail(id, ProgressTone::Congestion, "fax reception needs a trunk call");
                return;
            }
        };
        if !answered {
            tracing::warn!(call = id, chan = %a, "could not answer the trunk for fax reception");
            self.leg_gone(a);
            return;
        }
        let job = self.fax.job();
        let Some(slot) = self.fax.take_slot(job) else {
            tracing::warn!(call = id, "every fax port is busy: fax call not received");
            self.set_to(id, RECEIVE);
            self.cdr.note(id, "no free fax port");
            self.leg_gone(a);
            return;
        };
        let ms = self.utc_ms(now);
        let base = self.fax.spool.join(format!("{}-{job}", stamp(ms)));
        let tiff = base.with_extension("tif");
        let pdf = self.fax.pdf.then(|| base.with_extension("pdf"));
        let group = self.trunk_group_of(a).map(|g| self.trunk_groups[g].name.clone());
        tracing::info!(call = id, job, %from, slot, file = %tiff.display(), "receiving a fax");
        if let Some(c) = self.calls.get_mut(&id) {
            c.fax = true;
            c.fax_until = None;
            c.set_state(CallState::Connected);
            c.answered.get_or_insert(now);
            c.timer = None;
            c.to = RECEIVE.to_string();
        }
        self.fax
            .receives
            .insert(job, RecvJob { call: id, chan: a, from: from.clone(), group, started: now });
        self.fax.start(slot, job, FaxRole::Receive { tiff, pdf });
        self.echo(a, false);
        self.detect(a, Detectors::NONE);
        self.set_source(a, Source::FaxPort(FaxSlot(slot)));
        if !moved {
            self.counters.fax_calls += 1;
        }
        self.fax.event(FaxEvent {
            job,
            event: "receiving",
            number: from,
            at: now,
            detail: None,
            pages: 0,
        });
    }

    /// A channel's source changes from fax port `slot` to something else (the call was
    /// cleared): stop the port's session.
    pub(super) fn fax_detached(&mut self, slot: FaxSlot) {
        if let Some(Some(job)) = self.fax.slots.get(usize::from(slot.0)) {
            let job = *job;
            self.fax.requests.push_back(FaxRequest::Stop { slot, job });
        }
    }

    /// The next request for the fax worker.
    pub fn fax_pop_request(&mut self) -> Option<FaxRequest> {
        self.fax.requests.pop_front()
    }

    /// The next finished fax for the store.
    pub fn pop_fax_record(&mut self) -> Option<FaxRecord> {
        self.fax.records.pop_front()
    }

    /// The next fax event for the CTI tier.
    pub fn pop_fax_event(&mut self) -> Option<FaxEvent> {
        self.fax.events.pop_front()
    }

    /// Fax sessions running or starting.
    pub fn fax_sessions(&self) -> usize {
        self.fax.slots.iter().filter(|s| s.is_some()).count()
    }

    /// The outgoing fax jobs not finished yet.
    pub fn fax_jobs(&self) -> Vec<FaxJobInfo> {
        self.fax
            .sends
            .iter()
            .map(|(&job, j)| FaxJobInfo {
                job,
                number: j.number.clone(),
                trunk_group: self.trunk_groups[j.group].name.clone(),
                state: match j.state {
                    SendState::Waiting(_) => "waiting",
                    SendState::Calling { .. }
                    | SendState::Seized { .. }
                    | SendState::Dialing { .. } => "calling",
                    SendState::Sending { .. } => "sending",
                    SendState::Clearing { .. } | SendState::Ending { .. } => "clearing",
                }
                .into(),
                attempts: j.attempts,
                retries_left: j.retries_left,
                last_error: j.last_error.clone(),
            })
            .collect()
    }

    /// Queue a fax to send; returns its job number.
    ///
    /// # Errors
    /// An unknown trunk group, a number no route takes, or a document without pages.
    pub fn fax_send(&mut self, req: FaxSendRequest) -> Result<u64, String> {
        if req.pages.is_empty() {
            return Err("the document has no pages".into());
        }
        if req.number.is_empty() || !req.number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{:?} is not a number (digits only)", req.number));
        }
        let (group, number) = match &req.group {
            Some(name) => {
                let g = self
                    .trunk_groups
                    .iter()
                    .position(|t| &t.name == name)
                    .ok_or_else(|| format!("no trunk group {name:?}"))?;
                (g, req.number.clone())
            }
            None => match super::dial::analyse(self, &req.number, true) {
                DialResult::Route { route, number } => (self.routes[route].group, number),
                DialResult::Extension(_) | DialResult::HuntGroup(_) => {
                    return Err(format!(
                        "{} is an internal number: faxes go out through a trunk group",
                        req.number
                    ))
                }
                _ => {
                    return Err(format!(
                        "no route takes {} (give --group, or dial the route's prefix)",
                        req.number
                    ))
                }
            },
        };
        let now = self.now;
        let job = self.fax.job();
        let retries = req.retries.unwrap_or(self.fax.retries);
        tracing::info!(job, %number, group = %self.trunk_groups[group].name, retries, "fax queued");
        self.fax.sends.insert(
            job,
            SendJob {
                number: number.clone(),
                group,
                file: req.file,
                pages: Arc::new(req.pages),
                outdial: VecDeque::new(),
                retries_left: retries,
                attempts: 0,
                state: SendState::Waiting(now),
                started: now,
                last_status: "queued".into(),
                last_error: None,
                remote_ident: None,
                pages_sent: 0,
                bit_rate: 0,
            },
        );
        self.fax.event(FaxEvent { job, event: "queued", number, at: now, detail: None, pages: 0 });
        Ok(job)
    }

    /// The earliest tick at which fax jobs have work (an attempt due, an answer overdue).
    pub(super) fn fax_timeout(&self) -> Option<Tick> {
        self.fax
            .sends
            .values()
            .filter_map(|j| match j.state {
                SendState::Waiting(t) => Some(t),
                SendState::Calling { since, .. } => Some(since + SEND_ANSWER_TIMEOUT_MS),
                SendState::Seized { since, .. } => Some(since + super::SEIZE_TO_DIAL_MS),
                _ => None,
            })
            .min()
    }

    /// Run the fax jobs' timers.
    pub(super) fn fax_poll(&mut self, now: Tick) {
        let due: Vec<(u64, SendState)> = self
            .fax
            .sends
            .iter()
            .filter(|(_, j)| match j.state {
                SendState::Waiting(t) => t <= now,
                SendState::Calling { since, .. } => since + SEND_ANSWER_TIMEOUT_MS <= now,
                SendState::Seized { since, .. } => since + super::SEIZE_TO_DIAL_MS <= now,
                _ => false,
            })
            .map(|(&id, j)| (id, j.state))
            .collect();
        for (job, state) in due {
            match state {
                SendState::Waiting(_) => self.fax_place_call(job),
                SendState::Calling { chan, call, .. } => {
                    tracing::debug!(job, "fax call not answered in time");
                    self.fax_clear(job, chan, call, "no_answer", "the far end did not answer");
                }
                SendState::Seized { .. } => self.fax_next_digits(job),
                _ => {}
            }
        }
    }

    /// Place the next attempt of `job` on a free bearer of its PRI trunk group, a free
    /// channel of its R2 trunk group, or a free line of its FXO trunk group.
    fn fax_place_call(&mut self, job: u64) {
        let now = self.now;
        let Some(j) = self.fax.sends.get_mut(&job) else { return };
        j.attempts += 1;
        let (g, number, attempt) = (j.group, j.number.clone(), j.attempts);
        if self.r2_group(g) {
            self.fax_place_r2(job, g, number, attempt);
            return;
        }
        if !self.trunk_groups[g].pri {
            self.fax_seize_fxo(job, g, number, attempt);
            return;
        }
        let restricted = self.trunk_groups[g].restricted;
        let mut placed = None;
        for chan in self.hunt_order(g) {
            let l = &self.lines[chan.index()];
            let LineKind::Bchan { pri, ts } = l.kind else { continue };
            if l.call.is_some() || l.q931.is_some() {
                continue;
            }
            let p = &mut self.pri[pri];
            if !p.ep.link_is_up()
                || p.ep.q931().channel_owner(ts).is_some()
                || p.ep.q931().channel_restarting(ts)
            {
                continue;
            }
            let params = CallParams {
                called: number.clone(),
                calling: None,
                channel: Some(ts),
                exclusive: p.ep.side() == Side::Network,
                calling_restricted: restricted,
                overlap: false,
            };
            if let Ok(h) = p.ep.call(now, |q, t| q.setup(t, params)) {
                placed = Some((chan, pri, h));
                break;
            }
        }
        let Some((chan, pri, h)) = placed else {
            self.fax_attempt_failed(job, "congestion", "no free channel in the trunk group");
            return;
        };
        let call = self.next_call;
        self.next_call += 1;
        self.pri[pri].calls.insert(h, call);
        self.lines[chan.index()].q931 = Some(h);
        self.lines[chan.index()].call = Some(call);
        if let Some(pos) = self.trunk_groups[g].lines.iter().position(|c| *c == chan) {
            self.trunk_groups[g].next = pos + 1;
        }
        self.fax_dialing(job, attempt, number, SendState::Calling { chan, call, since: now });
        self.pri_drain(pri);
    }

    fn fax_job_of_call(&self, call: CallId) -> Option<u64> {
        self.fax
            .sends
            .iter()
            .find_map(|(&id, j)| j.state.line().filter(|(_, c)| *c == call).map(|_| id))
    }

    /// A Q.931 event on PRI span `i`: act on it if it concerns an outgoing fax call (the
    /// general handling that follows ignores calls it does not know).
    pub(super) fn fax_pri_event(&mut self, i: usize, e: &CallEvent) {
        let (h, cleared) = match e {
            CallEvent::Connected { call, .. } => (*call, None),
            CallEvent::Disconnected { call, cause } => (*call, Some((*cause, false))),
            CallEvent::Released { call, cause } => (*call, Some((*cause, true))),
            _ => return,
        };
        let Some(&call) = self.pri[i].calls.get(&h) else { return };
        if self.calls.contains_key(&call) {
            return;
        }
        let Some(chan) =
            self.pri[i].bchans.values().copied().find(|c| self.lines[c.index()].q931 == Some(h))
        else {
            return;
        };
        let job = self.fax_job_of_call(call);
        let state = job.and_then(|j| self.fax.sends.get(&j)).map(|j| j.state);
        match cleared {
            None => {
                if let (Some(job), Some(SendState::Calling { .. })) = (job, state) {
                    self.fax_connected(job, chan, call);
                }
            }
            Some((cause, released)) => {
                if released {
                    if self.lines[chan.index()].call == Some(call) {
                        self.lines[chan.index()].call = None;
                    }
                } else {
                    // Answer the DISCONNECT (refused when the stack is clearing already).
                    self.fax_hang_up(chan);
                }
                if let (Some(job), Some(state)) = (job, state) {
                    self.fax_far_cleared(job, state, cause, released);
                }
            }
        }
    }

    /// The fax call was answered: send.
    fn fax_connected(&mut self, job: u64, chan: ChannelId, call: CallId) {
        let now = self.now;
        let Some(slot) = self.fax.take_slot(job) else {
            self.fax_clear(job, chan, call, "no_fax_port", "every fax port is busy");
            return;
        };
        let Some(j) = self.fax.sends.get_mut(&job) else { return };
        j.state = SendState::Sending { chan, call, slot };
        let (pages, number) = (j.pages.clone(), j.number.clone());
        let npages = pages.len() as u32;
        tracing::info!(job, %chan, slot, "fax call answered or dialled: sending");
        self.fax.start(slot, job, FaxRole::Send { pages });
        self.echo(chan, false);
        // On an FXO line only tones tell a busy number or a far-end clear.
        let fxo = matches!(self.lines[chan.index()].kind, LineKind::Fxo { .. });
        let f = self.features;
        let progress = fxo && (f.call_progress || f.hangup_on_busy_tone);
        self.detect(chan, Detectors { progress, ..Detectors::NONE });
        self.set_source(chan, Source::FaxPort(FaxSlot(slot)));
        self.fax.event(FaxEvent {
            job,
            event: "sending",
            number,
            at: now,
            detail: None,
            pages: npages,
        });
    }

    /// We clear the fax call of `job` (no answer, no port): the attempt failed with `status`.
    fn fax_clear(&mut self, job: u64, chan: ChannelId, call: CallId, status: &str, why: &str) {
        if let Some(j) = self.fax.sends.get_mut(&job) {
            j.state = SendState::Clearing { chan, call };
            j.last_status = status.into();
            j.last_error = Some(why.into());
        }
        self.fax_hang_up(chan);
        if !matches!(self.lines[chan.index()].kind, LineKind::Bchan { .. }) {
            // FXO and R2 lines are free at once: no RELEASE to wait for.
            self.fax_attempt_over(job);
        }
    }

    /// Disconnect the PRI call on `chan` (if any), clear the R2 call on `chan`, or release
    /// FXO line `chan`, and silence the channel.
    fn fax_hang_up(&mut self, chan: ChannelId) {
        if matches!(self.sources.get(chan.index()).map(|s| s.0), Some(Source::FaxPort(_))) {
            self.set_source(chan, Source::Silence);
        }
        if matches!(self.lines[chan.index()].kind, LineKind::R2 { .. }) {
            // The line leaves the job first: the clearing's events are no longer the job's.
            self.lines[chan.index()].call = None;
            self.r2_hangup(chan);
            return;
        }
        let now = self.now;
        if let LineKind::Fxo { line, .. } = &mut self.lines[chan.index()].kind {
            if line.state().is_off_hook() {
                line.release(now);
            }
            self.lines[chan.index()].call = None;
            if matches!(self.sources.get(chan.index()).map(|s| s.0), Some(Source::Tone(_))) {
                self.set_source(chan, Source::Silence);
            }
            let idle = self.idle_detectors(chan);
            self.detect(chan, idle);
            return;
        }
        self.pri_clear(chan, Cause::NORMAL_CLEARING);
    }

    /// Register the number of `job` on a free channel of R2 trunk group `g` (attempt
    /// `attempt`); the session starts when the far end answers.
    fn fax_place_r2(&mut self, job: u64, g: usize, number: String, attempt: u32) {
        let now = self.now;
        let call = self.next_call;
        self.next_call += 1;
        let Some(chan) = self.r2_fax_place(g, &number, call) else {
            self.fax_attempt_failed(job, "congestion", "no free channel in the trunk group");
            return;
        };
        self.fax_dialing(job, attempt, number, SendState::Calling { chan, call, since: now });
    }

    /// An event of R2 channel `chan`: act on it if the channel sends a fax.
    pub(super) fn fax_r2_event(&mut self, chan: ChannelId, e: &R2Event) -> bool {
        let Some((job, state)) = self.fax_job_on_line(chan) else { return false };
        match (e, state) {
            (R2Event::Answered, SendState::Calling { call, .. }) => {
                self.fax_connected(job, chan, call);
            }
            (R2Event::Cleared { reason }, SendState::Calling { .. }) => {
                let (status, why) = match reason {
                    ClearReason::Rejected(BSignal::Busy) => {
                        ("busy", "the far end is busy".to_string())
                    }
                    ClearReason::NoAnswer => ("no_answer", "the far end did not answer".into()),
                    ClearReason::Congestion | ClearReason::Rejected(BSignal::Congestion) => {
                        ("congestion", "the network is congested".into())
                    }
                    r => ("failed", format!("the R2 call failed: {r:?}")),
                };
                tracing::info!(job, %chan, status, "fax call not connected (R2)");
                self.fax_hang_up(chan);
                self.fax_attempt_failed(job, status, &why);
            }
            (R2Event::Cleared { .. }, SendState::Sending { call, slot, .. }) => {
                // The far end hung up during the fax: the session stops; the attempt ends when
                // the worker reports it.
                if let Some(j) = self.fax.sends.get_mut(&job) {
                    j.state = SendState::Ending { chan, call, slot };
                    j.last_status = "failed".into();
                    j.last_error = Some("the far end hung up".into());
                }
                self.fax_hang_up(chan);
            }
            _ => {}
        }
        true
    }

    /// Seize a free line of FXO trunk group `g` for attempt `attempt` of `job`; dialling
    /// starts after the exchange had time to give dial tone.
    fn fax_seize_fxo(&mut self, job: u64, g: usize, number: String, attempt: u32) {
        let now = self.now;
        let Some(chan) = self.seize_fxo_line(g) else {
            self.fax_attempt_failed(job, "congestion", "no free line in the trunk group");
            return;
        };
        let call = self.next_call;
        self.next_call += 1;
        self.lines[chan.index()].call = Some(call);
        self.lines[chan.index()].cid_digits.clear();
        if let Some(pos) = self.trunk_groups[g].lines.iter().position(|c| *c == chan) {
            self.trunk_groups[g].next = pos + 1;
        }
        self.detect(chan, Detectors::NONE);
        self.echo(chan, false);
        if let Some(j) = self.fax.sends.get_mut(&job) {
            j.outdial = number.chars().collect();
        }
        self.fax_dialing(job, attempt, number, SendState::Seized { chan, call, since: now });
    }

    /// Attempt `attempt` of `job` is on its way in `state` (a call placed or a line seized):
    /// record it and tell the CTI tier.
    fn fax_dialing(&mut self, job: u64, attempt: u32, number: String, state: SendState) {
        if let Some(j) = self.fax.sends.get_mut(&job) {
            j.state = state;
        }
        tracing::info!(job, attempt, %number, ?state, "fax attempt placed");
        self.fax.event(FaxEvent {
            job,
            event: "dialing",
            number,
            at: self.now,
            detail: Some(format!("attempt {attempt}")),
            pages: 0,
        });
    }

    /// Send the next DTMF digits of `job` (up to four per tone) on its FXO line; once all
    /// are sent, start the fax session.
    fn fax_next_digits(&mut self, job: u64) {
        let Some(j) = self.fax.sends.get_mut(&job) else { return };
        let (SendState::Seized { chan, call, .. } | SendState::Dialing { chan, call }) = j.state
        else {
            return;
        };
        let burst = super::trunk::dtmf_burst(
            &mut j.outdial,
            super::OUTDIAL_ON_MS,
            super::OUTDIAL_OFF_MS,
            super::OUTDIAL_LEVEL_DBM0,
        );
        let Some(spec) = burst else {
            tracing::debug!(job, %chan, "fax number dialled: sending");
            self.fax_connected(job, chan, call);
            return;
        };
        j.state = SendState::Dialing { chan, call };
        self.set_source(chan, Source::Tone(spec));
    }

    /// The tone on `chan` ended: if it is a fax job's DTMF, go on dialling.
    pub(super) fn fax_play_done(&mut self, chan: ChannelId) -> bool {
        let job = self.fax.sends.iter().find_map(|(&id, j)| match j.state {
            SendState::Dialing { chan: c, .. } if c == chan => Some(id),
            _ => None,
        });
        let Some(job) = job else { return false };
        self.fax_next_digits(job);
        true
    }

    /// The fax job and attempt state on FXO line `chan`, if the line is in one.
    fn fax_job_on_line(&self, chan: ChannelId) -> Option<(u64, SendState)> {
        let call = self.lines.get(chan.index())?.call?;
        if self.calls.contains_key(&call) {
            return None;
        }
        let job = self.fax_job_of_call(call)?;
        Some((job, self.fax.sends.get(&job)?.state))
    }

    /// The call-progress detector of a line reported: act on it if the line sends a fax.
    pub(super) fn fax_progress(&mut self, chan: ChannelId, e: ProgressEvent) -> bool {
        let Some((job, _)) = self.fax_job_on_line(chan) else { return false };
        let (status, why) = match e {
            ProgressEvent::Detected { tone: ProgressTone::Busy, .. } => {
                ("busy", "the far end is busy")
            }
            ProgressEvent::Detected { tone: ProgressTone::Congestion, .. } => {
                ("congestion", "congestion tone on the line")
            }
            ProgressEvent::Detected { tone: ProgressTone::Sit, .. } => {
                ("failed", "special information tone: number unobtainable")
            }
            _ => return true,
        };
        tracing::info!(job, %chan, status, "fax line: call progress tone");
        self.fax_line_failed(job, status, why);
        true
    }

    /// A loop-start event on `chan`: act on it if the line sends a fax.
    pub(super) fn fax_fxo_event(&mut self, chan: ChannelId, e: &FxoEvent) -> bool {
        let Some((job, _)) = self.fax_job_on_line(chan) else { return false };
        match e {
            FxoEvent::FarEndDisconnect { cause } => {
                tracing::info!(job, %chan, ?cause, "fax line: far end disconnected");
                self.fax_line_failed(job, "failed", "the far end hung up");
            }
            FxoEvent::FarEndAnswer => tracing::debug!(job, %chan, "fax line: far end answered"),
            _ => {}
        }
        true
    }

    /// The FXO line of `job` failed (a tone, a far-end clear): release it; the attempt fails
    /// now, or once the worker reports the session stopped.
    fn fax_line_failed(&mut self, job: u64, status: &str, why: &str) {
        let Some(j) = self.fax.sends.get_mut(&job) else { return };
        let state = j.state;
        match state {
            SendState::Sending { chan, call, slot } => {
                j.state = SendState::Ending { chan, call, slot };
                j.last_status = status.into();
                j.last_error = Some(why.into());
                self.fax_hang_up(chan);
            }
            SendState::Seized { chan, .. } | SendState::Dialing { chan, .. } => {
                self.fax_hang_up(chan);
                self.fax_attempt_failed(job, status, why);
            }
            _ => {}
        }
    }

    /// The network cleared the fax call of `job` (DISCONNECT, or RELEASE when `released`).
    fn fax_far_cleared(&mut self, job: u64, state: SendState, cause: Cause, released: bool) {
        match state {
            SendState::Calling { chan, call, .. } => {
                let (status, why) = match cause {
                    Cause::USER_BUSY => ("busy", "the far end is busy".to_string()),
                    Cause::NO_ANSWER => ("no_answer", "the far end did not answer".to_string()),
                    c => ("failed", format!("the network cleared the call: cause {}", c.0)),
                };
                tracing::info!(job, status, "fax call not connected");
                if let Some(j) = self.fax.sends.get_mut(&job) {
                    j.state = SendState::Clearing { chan, call };
                    j.last_status = status.into();
                    j.last_error = Some(why);
                }
                if released {
                    self.fax_attempt_over(job);
                }
            }
            SendState::Clearing { .. } => {
                if released {
                    self.fax_attempt_over(job);
                }
            }
            SendState::Seized { .. } | SendState::Dialing { .. } | SendState::Ending { .. } => {}
            // The far end hung up during the fax: stop the session; its end comes from the
            // worker.
            SendState::Sending { chan, .. } => {
                if matches!(self.sources.get(chan.index()).map(|s| s.0), Some(Source::FaxPort(_))) {
                    self.set_source(chan, Source::Silence);
                }
            }
            SendState::Waiting(_) => {}
        }
    }

    /// The attempt in `Clearing` is over: retry or finish the job.
    fn fax_attempt_over(&mut self, job: u64) {
        let (status, why) = match self.fax.sends.get(&job) {
            Some(j) => (j.last_status.clone(), j.last_error.clone().unwrap_or_default()),
            None => return,
        };
        self.fax_attempt_failed(job, &status, &why);
    }

    /// An attempt of `job` failed: try again after the retry delay, or record the failure.
    fn fax_attempt_failed(&mut self, job: u64, status: &str, why: &str) {
        let now = self.now;
        let delay = self.fax.retry_delay_ms;
        let Some(j) = self.fax.sends.get_mut(&job) else { return };
        j.last_status = status.into();
        j.last_error = Some(why.into());
        if j.retries_left > 0 {
            j.retries_left -= 1;
            j.state = SendState::Waiting(now + delay);
            let number = j.number.clone();
            tracing::info!(job, status, why, retry_in_ms = delay, "fax attempt failed: retrying");
            self.fax.event(FaxEvent {
                job,
                event: "retry",
                number,
                at: now,
                detail: Some(format!("{status}: {why}")),
                pages: 0,
            });
        } else {
            self.fax_send_done(job, false);
        }
    }

    /// `job` is over: record it.
    fn fax_send_done(&mut self, job: u64, success: bool) {
        let now = self.now;
        let Some(j) = self.fax.sends.remove(&job) else { return };
        let rec = FaxRecord {
            id: 0,
            direction: "sent".into(),
            remote_number: j.number.clone(),
            remote_ident: j.remote_ident.clone(),
            pages: j.pages_sent,
            bit_rate: j.bit_rate,
            status: if success { "success".into() } else { j.last_status.clone() },
            error: if success { None } else { j.last_error.clone() },
            file: Some(j.file.clone()),
            attempts: j.attempts,
            trunk_group: Some(self.trunk_groups[j.group].name.clone()),
            job,
            started_ms: self.utc_ms(j.started),
            ended_ms: self.utc_ms(now),
        };
        tracing::info!(job, success, status = %rec.status, pages = rec.pages, attempts = rec.attempts, "fax job finished");
        self.fax.event(FaxEvent {
            job,
            event: if success { "sent" } else { "failed" },
            number: j.number,
            at: now,
            detail: rec.error.clone(),
            pages: rec.pages,
        });
        self.fax.records.push_back(rec);
    }

    /// The fax worker finished a session.
    pub fn fax_finished(&mut self, now: Tick, d: FaxDone) {
        self.advance(now);
        let i = usize::from(d.slot.0);
        if self.fax.slots.get(i).copied().flatten() == Some(d.job) {
            self.fax.slots[i] = None;
        }
        if d.overruns > 0 || d.underruns > 0 {
            tracing::warn!(
                job = d.job,
                overruns = d.overruns,
                underruns = d.underruns,
                "fax port lost audio"
            );
        }
        if let Some(r) = self.fax.receives.remove(&d.job) {
            self.fax_received(r, d);
        } else {
            self.fax_send_finished(&d);
        }
        self.collect();
    }

    /// The worker finished the session of an outgoing fax job.
    fn fax_send_finished(&mut self, d: &FaxDone) {
        let Some(j) = self.fax.sends.get_mut(&d.job) else { return };
        let (chan, call, slot, ending) = match j.state {
            SendState::Sending { chan, call, slot } => (chan, call, slot, false),
            SendState::Ending { chan, call, slot } => (chan, call, slot, true),
            _ => return,
        };
        if slot != d.slot.0 {
            // A session of an earlier attempt.
            return;
        }
        j.remote_ident = d.remote_ident.clone().or(j.remote_ident.take());
        j.bit_rate = d.bit_rate;
        j.pages_sent = d.pages;
        if d.success {
            self.fax_hang_up(chan);
            if self.lines[chan.index()].q931.is_none()
                && self.lines[chan.index()].call == Some(call)
            {
                self.lines[chan.index()].call = None;
            }
            // The call's RELEASE frees a PRI line (see `fax_pri_event`).
            self.fax_send_done(d.job, true);
        } else if ending {
            // The FXO line was released for the reason kept in the job.
            self.fax_attempt_over(d.job);
        } else {
            let why = d.error.clone().unwrap_or_else(|| d.status.clone());
            let pri_up = self.lines[chan.index()].q931.is_some();
            j.state = SendState::Clearing { chan, call };
            j.last_status = d.status.clone();
            j.last_error = Some(why);
            self.fax_hang_up(chan);
            if !pri_up {
                // A PRI attempt ends when the network confirms the clearing; an FXO line is
                // released at once.
                self.fax_attempt_over(d.job);
            }
        }
    }

    /// A received fax is complete (or failed): record it and clear the call.
    fn fax_received(&mut self, r: RecvJob, d: FaxDone) {
        let now = self.now;
        let rec = FaxRecord {
            id: 0,
            direction: "received".into(),
            remote_number: r.from.clone(),
            remote_ident: d.remote_ident.clone(),
            pages: d.pages,
            bit_rate: d.bit_rate,
            status: d.status.clone(),
            error: d.error.clone(),
            file: d.file.as_ref().map(|f| f.display().to_string()),
            attempts: 1,
            trunk_group: r.group.clone(),
            job: d.job,
            started_ms: self.utc_ms(r.started),
            ended_ms: self.utc_ms(now),
        };
        tracing::info!(job = d.job, call = r.call, from = %r.from, pages = d.pages, status = %d.status, "fax received");
        self.fax.event(FaxEvent {
            job: d.job,
            event: if d.success { "received" } else { "failed" },
            number: r.from,
            at: now,
            detail: rec.file.clone().or(rec.error.clone()),
            pages: d.pages,
        });
        self.fax.records.push_back(rec);
        if self.lines[r.chan.index()].call == Some(r.call) && self.calls.contains_key(&r.call) {
            self.leg_gone(r.chan);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[test]
    fn spool_file_stamps() {
        assert_eq!(stamp(0), "19700101-000000");
        // 2026-11-23 07:16:43 UTC.
        assert_eq!(stamp(1_795_418_203_000), "20261123-071643");
        assert_eq!(stamp(951_782_400_000), "20000229-000000");
    }
}
