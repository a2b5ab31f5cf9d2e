//! The seeded traffic generator: it drives the simulated phones and CO lines like callers do,
//! and counts which calls worked end to end (signalling and both audio directions).
//!
//! Three kinds of calls, chosen by weight:
//! - internal: phone A lifts, waits for dial tone, dials B's number; B answers after a random
//!   delay; both expect each other's signature; after a random hold one side hangs up;
//! - inbound: a CO line rings in; the PBX is expected to ring a phone of
//!   [`TrafficConfig::inbound_target_ports`], which answers; the caller and the phone expect each
//!   other's signature;
//! - outbound: a phone dials [`TrafficConfig::outgoing_prefix`], waits for the CO's dial tone,
//!   dials [`TrafficConfig::external_number`]; the CO answers; signatures are checked;
//! - PRI inbound: the simulated exchange of one of [`TrafficConfig::pri_spans`] calls
//!   [`TrafficConfig::pri_inbound_number`]; a phone of the inbound targets rings and answers;
//!   the phone and the bearer's remote party expect each other's signature;
//! - PRI outbound: a phone dials [`TrafficConfig::pri_outgoing_prefix`] and the external number
//!   in one go; the exchange answers; signatures are checked on the bearer.
//!
//! Since ringing says nothing about who is calling, calls whose ringing could be confused
//! (trunk calls, and internal calls that touch the hunt group) are set up one at a time; once
//! set up, any number of calls talk at once. The generator acts at 20 ms steps.

use crate::coline::{CoState, SimCoLine};
use crate::e1::{RemoteDirection, SpanFar};
use crate::phone::{PhoneState, SimPhone};
use crate::signature::{AudioCheck, EndpointId, BLOCK_TICKS};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{HookState, Tick};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Relative weights of the kinds of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallMix {
    /// Extension to extension.
    pub internal: u32,
    /// From a CO line to the hunt group.
    pub inbound: u32,
    /// From an extension out through a CO line.
    pub outbound: u32,
    /// From a PRI span's exchange to the inbound targets.
    pub pri_inbound: u32,
    /// From an extension out on a PRI span.
    pub pri_outbound: u32,
}

impl Default for CallMix {
    fn default() -> Self {
        CallMix { internal: 1, inbound: 1, outbound: 1, pri_inbound: 0, pri_outbound: 0 }
    }
}

/// What traffic to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficConfig {
    /// Extensions: FXS port and the number that rings it.
    pub extensions: Vec<(u32, String)>,
    /// FXO ports on which inbound calls arrive.
    pub inbound_fxo_ports: Vec<u32>,
    /// FXS ports the PBX's inbound route rings (a hunt group); they answer inbound calls.
    pub inbound_target_ports: Vec<u32>,
    /// Access code for an outside line (`Some("9")`; `Some("")` to dial the number directly);
    /// `None` disables outbound calls.
    pub outgoing_prefix: Option<String>,
    /// The number outbound calls dial after the prefix.
    pub external_number: String,
    /// E1 spans (from 1) whose simulated exchange takes part in PRI calls.
    pub pri_spans: Vec<u32>,
    /// The number the exchange calls for PRI inbound calls (it rings the inbound targets).
    pub pri_inbound_number: String,
    /// Digits that route a call out on the PRI spans (`None` disables PRI outbound calls).
    pub pri_outgoing_prefix: Option<String>,
    /// Mean time between call arrivals (exponential), ms.
    pub mean_interarrival_ms: u32,
    /// Mean talk time (exponential), ms.
    pub mean_hold_ms: u32,
    /// Phones answer after a uniformly drawn delay in this range (ms, inclusive).
    pub answer_delay_ms: (u32, u32),
    /// Weights of the kinds of calls.
    pub mix: CallMix,
    /// A call that does not ring, or is not answered by the PBX, within this time fails (ms).
    pub setup_timeout_ms: u32,
    /// Stop after this many attempts (`None`: never).
    pub max_calls: Option<u64>,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            extensions: Vec::new(),
            inbound_fxo_ports: Vec::new(),
            inbound_target_ports: Vec::new(),
            outgoing_prefix: None,
            external_number: "12345678".into(),
            pri_spans: Vec::new(),
            pri_inbound_number: String::new(),
            pri_outgoing_prefix: None,
            mean_interarrival_ms: 20_000,
            mean_hold_ms: 30_000,
            answer_delay_ms: (1000, 6000),
            mix: CallMix::default(),
            setup_timeout_ms: 10_000,
            max_calls: None,
        }
    }
}

/// Traffic counters, updated by the tick and readable from any thread.
#[derive(Debug, Default)]
pub struct TrafficStats {
    /// Calls started.
    pub attempted: AtomicU64,
    /// Calls that reached talk and where both ends heard each other without error.
    pub completed: AtomicU64,
    /// Calls that failed for any reason below (busy is not a failure).
    pub failed: AtomicU64,
    /// Calls that met busy tone.
    pub busy: AtomicU64,
    /// Failed: no dial tone within 5 s.
    pub no_dial_tone: AtomicU64,
    /// Failed: nothing rang within the setup timeout.
    pub no_ring: AtomicU64,
    /// Failed: the PBX did not connect the answered call (trunk not answered or seized).
    pub no_answer: AtomicU64,
    /// Failed: the outside number the CO received was not the one dialed.
    pub wrong_number: AtomicU64,
    /// Failed: audio errors (missing or wrong signature) on a call that talked.
    pub audio_path_errors: AtomicU64,
    /// Erroneous 20 ms blocks summed over all calls.
    pub audio_error_blocks: AtomicU64,
    /// Calls in progress.
    pub in_progress: AtomicU64,
    /// Of the calls started, those over a PRI span (either direction).
    pub pri_attempted: AtomicU64,
}

/// A plain copy of [`TrafficStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TrafficSnapshot {
    /// Calls started.
    pub attempted: u64,
    /// Calls completed with audio checked both ways.
    pub completed: u64,
    /// Calls failed.
    pub failed: u64,
    /// Calls that met busy tone.
    pub busy: u64,
    /// Failed for want of dial tone.
    pub no_dial_tone: u64,
    /// Failed for want of ringing.
    pub no_ring: u64,
    /// Failed for want of a connection after answer.
    pub no_answer: u64,
    /// Failed: wrong outside number.
    pub wrong_number: u64,
    /// Failed with audio errors.
    pub audio_path_errors: u64,
    /// Erroneous blocks.
    pub audio_error_blocks: u64,
    /// Calls in progress.
    pub in_progress: u64,
    /// Of the calls started, those over a PRI span.
    pub pri_attempted: u64,
}

impl TrafficStats {
    /// Read every counter (each one atomically; the set is not a single snapshot).
    pub fn snapshot(&self) -> TrafficSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrafficSnapshot {
            attempted: r(&self.attempted),
            completed: r(&self.completed),
            failed: r(&self.failed),
            busy: r(&self.busy),
            no_dial_tone: r(&self.no_dial_tone),
            no_ring: r(&self.no_ring),
            no_answer: r(&self.no_answer),
            wrong_number: r(&self.wrong_number),
            audio_path_errors: r(&self.audio_path_errors),
            audio_error_blocks: r(&self.audio_error_blocks),
            in_progress: r(&self.in_progress),
            pri_attempted: r(&self.pri_attempted),
        }
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// SplitMix64: small, fast, and the same everywhere.
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

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    /// Exponential with the given mean, at least 1.
    fn exp(&mut self, mean: u32) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-f64::from(mean) * (1.0 - u).ln()) as u64).max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Internal,
    Inbound,
    Outbound,
    PriInbound,
    PriOutbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A is off-hook, waiting for the PBX's dial tone.
    DialTone,
    /// Outbound: the prefix was dialed; waiting for the CO's dial tone.
    OutsideDialTone,
    /// Waiting for the called phone to ring (or busy tone).
    Ring,
    /// The called phone rings; it answers at `t`.
    Answer,
    /// Waiting for the CO line to be connected.
    Connect,
    /// Talking until `t`.
    Talk,
    /// One side hung up; the other hangs up at `t`.
    Release,
}

/// A call the generator drives. Phones and lines are indices into the card's arrays.
#[derive(Debug, Clone, Copy)]
struct Call {
    kind: Kind,
    phase: Phase,
    /// Internal/outbound: the calling phone; inbound: the answering phone.
    a: Option<usize>,
    /// Internal: the called phone.
    b: Option<usize>,
    line: Option<usize>,
    /// PRI calls: the span (index from 0), the exchange's call handle once known, and the
    /// bearer timeslot once the call talks.
    pri: Option<(usize, Option<u32>, u8)>,
    /// Deadline of the current phase, or the time of the next action.
    t: Tick,
    hold: u64,
    base_a: AudioCheck,
    base_b: AudioCheck,
    exclusive: bool,
    /// The second party to hang up in `Release`: phone index, or `None` for nothing to do.
    last: Option<usize>,
    /// The call's outcome has been counted (completed or failed) and it no longer counts as
    /// in progress, though it may still be releasing.
    settled: bool,
}

/// The generator state (inside [`SimCard`](crate::SimCard)).
#[derive(Debug)]
pub(crate) struct TrafficGen {
    cfg: TrafficConfig,
    rng: Rng,
    stats: Arc<TrafficStats>,
    /// Phone index of each extension, parallel to `cfg.extensions`.
    ext_phone: Vec<usize>,
    in_lines: Vec<usize>,
    hunt: Vec<usize>,
    in_hunt: Vec<bool>,
    phone_taken: Vec<bool>,
    line_taken: Vec<bool>,
    /// A phone or line whose call ended is left alone until this tick, so that hanging up and
    /// lifting again is never mistaken by the PBX for a hook flash (or meets its seize guard).
    phone_free_at: Vec<Tick>,
    line_free_at: Vec<Tick>,
    /// The tick of the current step.
    now: Tick,
    callers: Vec<String>,
    calls: Vec<Call>,
    next_arrival: Option<Tick>,
    pending: Option<Kind>,
    attempts: u64,
}

const DIAL_TONE_WAIT_MS: u64 = 5000;
/// The second party hangs up this long after the first.
const RELEASE_MS: u64 = 500;
/// How long a phone or line rests after its call before the generator uses it again: longer
/// than any hook-flash window (a PBX takes a shorter on-hook for a flash) and seize guard.
const HANGUP_GUARD_MS: u64 = 1500;

impl TrafficGen {
    pub(crate) fn new(
        cfg: TrafficConfig,
        seed: u64,
        phones: usize,
        lines: usize,
        stats: Arc<TrafficStats>,
    ) -> Result<Self, String> {
        let phone_idx = |p: u32| -> Result<usize, String> {
            if p >= 1 && (p as usize) <= phones {
                Ok(p as usize - 1)
            } else {
                Err(format!("traffic: no FXS port {p} (the card has {phones})"))
            }
        };
        let line_idx = |p: u32| -> Result<usize, String> {
            if p >= 1 && (p as usize) <= lines {
                Ok(p as usize - 1)
            } else {
                Err(format!("traffic: no FXO port {p} (the card has {lines})"))
            }
        };
        let dtmf_ok = |s: &str| s.chars().all(|c| cardpbx_dsp::dtmf::key_position(c).is_some());
        let mut ext_phone = Vec::new();
        for (p, num) in &cfg.extensions {
            if num.is_empty() || !dtmf_ok(num) {
                return Err(format!("traffic: extension number {num:?} is not DTMF digits"));
            }
            ext_phone.push(phone_idx(*p)?);
        }
        let in_lines =
            cfg.inbound_fxo_ports.iter().map(|&p| line_idx(p)).collect::<Result<Vec<_>, _>>()?;
        let hunt = cfg
            .inbound_target_ports
            .iter()
            .map(|&p| phone_idx(p))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(pre) = &cfg.outgoing_prefix {
            if !dtmf_ok(pre) || cfg.external_number.is_empty() || !dtmf_ok(&cfg.external_number) {
                return Err(
                    "traffic: outgoing prefix and external number must be DTMF digits".into()
                );
            }
        }
        let mut in_hunt = vec![false; phones];
        hunt.iter().for_each(|&h| in_hunt[h] = true);
        let callers = (1..=lines).map(|p| format!("5550{p:03}")).collect();
        Ok(TrafficGen {
            rng: Rng(seed ^ 0x5EED_CA11_7EA5_0001),
            stats,
            ext_phone,
            in_lines,
            hunt,
            in_hunt,
            phone_taken: vec![false; phones],
            line_taken: vec![false; lines],
            phone_free_at: vec![0; phones],
            line_free_at: vec![0; lines],
            now: 0,
            callers,
            calls: Vec::with_capacity(phones + lines + 1),
            next_arrival: None,
            pending: None,
            attempts: 0,
            cfg,
        })
    }

    /// One generator step; acts every 20 ticks.
    ///
    /// # Real-time
    /// Work bounded by the number of calls, extensions, hunt-group phones and CO lines; no
    /// allocation (the call table is preallocated).
    pub(crate) fn step(
        &mut self,
        now: Tick,
        phones: &mut [SimPhone],
        lines: &mut [SimCoLine],
        fars: &mut [SpanFar],
    ) {
        if now.rem_euclid(BLOCK_TICKS) > 0 {
            return;
        }
        self.now = now;
        let next = *self
            .next_arrival
            .get_or_insert_with(|| now + self.rng.exp(self.cfg.mean_interarrival_ms));
        if self.pending.is_none()
            && now >= next
            && self.cfg.max_calls.is_none_or(|m| self.attempts < m)
        {
            self.pending = self.pick_kind();
            self.next_arrival = Some(now + self.rng.exp(self.cfg.mean_interarrival_ms));
        }
        if let Some(kind) = self.pending {
            if self.try_start(kind, now, phones, lines, fars) {
                self.pending = None;
            }
        }
        let mut i = 0;
        while i < self.calls.len() {
            let mut c = self.calls[i];
            let done = self.advance(&mut c, now, phones, lines, fars);
            if done {
                if let Some(a) = c.a {
                    self.phone_taken[a] = false;
                    self.phone_free_at[a] = now + HANGUP_GUARD_MS;
                }
                if let Some(b) = c.b {
                    self.phone_taken[b] = false;
                    self.phone_free_at[b] = now + HANGUP_GUARD_MS;
                }
                if let Some(l) = c.line {
                    self.line_taken[l] = false;
                    self.line_free_at[l] = now + HANGUP_GUARD_MS;
                }
                self.calls.swap_remove(i);
                if !c.settled {
                    self.stats.in_progress.fetch_sub(1, Ordering::Relaxed);
                }
            } else {
                self.calls[i] = c;
                i += 1;
            }
        }
    }

    fn pick_kind(&mut self) -> Option<Kind> {
        let m = self.cfg.mix;
        let inbound = if self.in_lines.is_empty() || self.hunt.is_empty() { 0 } else { m.inbound };
        let outbound = if self.cfg.outgoing_prefix.is_none() || self.ext_phone.is_empty() {
            0
        } else {
            m.outbound
        };
        let internal = if self.ext_phone.len() < 2 { 0 } else { m.internal };
        let pri = !self.cfg.pri_spans.is_empty();
        let pri_inbound = if pri && !self.hunt.is_empty() && !self.cfg.pri_inbound_number.is_empty()
        {
            m.pri_inbound
        } else {
            0
        };
        let pri_outbound =
            if pri && self.cfg.pri_outgoing_prefix.is_some() && !self.ext_phone.is_empty() {
                m.pri_outbound
            } else {
                0
            };
        let weights = [
            (Kind::Internal, internal),
            (Kind::Inbound, inbound),
            (Kind::Outbound, outbound),
            (Kind::PriInbound, pri_inbound),
            (Kind::PriOutbound, pri_outbound),
        ];
        let total: u64 = weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut r = self.rng.below(total);
        for (kind, w) in weights {
            if r < u64::from(w) {
                return Some(kind);
            }
            r -= u64::from(w);
        }
        None
    }

    /// The extension number of phone index `p`, if it has one.
    fn number_of(&self, p: usize) -> Option<&str> {
        self.ext_phone.iter().position(|&q| q == p).map(|e| self.cfg.extensions[e].1.as_str())
    }

    fn exclusive_setup_running(&self) -> bool {
        self.calls.iter().any(|c| {
            c.exclusive
                && matches!(
                    c.phase,
                    Phase::DialTone
                        | Phase::OutsideDialTone
                        | Phase::Ring
                        | Phase::Answer
                        | Phase::Connect
                )
        })
    }

    fn phone_free(&self, p: usize, phones: &[SimPhone]) -> bool {
        !self.phone_taken[p]
            && phones[p].state() == PhoneState::Idle
            && self.now >= self.phone_free_at[p]
    }

    /// A random free extension's index in `ext_phone`, other than `not`.
    fn free_extension(&mut self, phones: &[SimPhone], not: Option<usize>) -> Option<usize> {
        let n = self.ext_phone.len();
        let start = self.rng.below(n as u64) as usize;
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&e| Some(self.ext_phone[e]) != not && self.phone_free(self.ext_phone[e], phones))
    }

    fn new_call(&self, kind: Kind, phase: Phase, t: Tick, exclusive: bool) -> Call {
        Call {
            kind,
            phase,
            a: None,
            b: None,
            line: None,
            pri: None,
            t,
            hold: 0,
            base_a: AudioCheck::default(),
            base_b: AudioCheck::default(),
            exclusive,
            last: None,
            settled: false,
        }
    }

    fn begin(&mut self, c: Call) {
        self.attempts += 1;
        inc(&self.stats.attempted);
        inc(&self.stats.in_progress);
        if c.pri.is_some() {
            inc(&self.stats.pri_attempted);
        }
        self.calls.push(c);
    }

    fn try_start(
        &mut self,
        kind: Kind,
        now: Tick,
        phones: &mut [SimPhone],
        lines: &mut [SimCoLine],
        fars: &mut [SpanFar],
    ) -> bool {
        let excl_busy = self.exclusive_setup_running();
        match kind {
            Kind::Internal => {
                let Some(ea) = self.free_extension(phones, None) else {
                    return false;
                };
                let a = self.ext_phone[ea];
                // Only free callees: ringing does not tell who calls, so a call to a phone
                // that may free up meanwhile could be answered by the wrong caller's script.
                let Some(eb) = self.free_extension(phones, Some(a)) else { return false };
                let b = self.ext_phone[eb];
                let exclusive = self.in_hunt[a] || self.in_hunt[b];
                if exclusive && excl_busy {
                    return false;
                }
                let mut c =
                    self.new_call(kind, Phase::DialTone, now + DIAL_TONE_WAIT_MS, exclusive);
                c.a = Some(a);
                self.phone_taken[a] = true;
                if self.phone_free(b, phones) {
                    c.b = Some(b);
                    self.phone_taken[b] = true;
                }
                // The number is dialed once dial tone is heard; remember which.
                c.last = Some(eb);
                phones[a].off_hook();
                self.begin(c);
                true
            }
            Kind::Inbound => {
                // Like a caller of a free extension: ring in only when some phone the PBX's
                // inbound route rings is free, or nobody would answer.
                if excl_busy || !self.hunt.iter().any(|&p| self.phone_free(p, phones)) {
                    return false;
                }
                let n = self.in_lines.len();
                let start = self.rng.below(n as u64) as usize;
                let Some(l) = (0..n).map(|k| self.in_lines[(start + k) % n]).find(|&l| {
                    !self.line_taken[l]
                        && self.now >= self.line_free_at[l]
                        && lines[l].state() == CoState::Idle
                        && lines[l].our_hook() == HookState::OnHook
                }) else {
                    return false;
                };
                let mut c = self.new_call(
                    kind,
                    Phase::Ring,
                    now + u64::from(self.cfg.setup_timeout_ms),
                    true,
                );
                c.line = Some(l);
                self.line_taken[l] = true;
                lines[l].ring_in(Some(&self.callers[l]));
                self.begin(c);
                true
            }
            Kind::Outbound | Kind::PriOutbound => {
                if excl_busy {
                    return false;
                }
                let Some(ea) = self.free_extension(phones, None) else {
                    return false;
                };
                let a = self.ext_phone[ea];
                let mut c = self.new_call(kind, Phase::DialTone, now + DIAL_TONE_WAIT_MS, true);
                c.a = Some(a);
                if kind == Kind::PriOutbound {
                    c.pri = Some((usize::MAX, None, 0));
                }
                self.phone_taken[a] = true;
                phones[a].off_hook();
                self.begin(c);
                true
            }
            Kind::PriInbound => {
                if excl_busy || !self.hunt.iter().any(|&p| self.phone_free(p, phones)) {
                    return false;
                }
                let n = self.cfg.pri_spans.len();
                let start = self.rng.below(n as u64) as usize;
                let spans: Vec<usize> =
                    (0..n).map(|k| self.cfg.pri_spans[(start + k) % n] as usize - 1).collect();
                let caller = format!("1390000{:04}", self.attempts % 10_000);
                for idx in spans {
                    let Some(x) = fars.get_mut(idx).and_then(|f| f.exchange.as_deref_mut()) else {
                        continue;
                    };
                    if !x.link_is_up() {
                        continue;
                    }
                    if let Ok(h) =
                        x.call_in(now, Some(&caller), &self.cfg.pri_inbound_number, false)
                    {
                        let t = now + u64::from(self.cfg.setup_timeout_ms);
                        let mut c = self.new_call(kind, Phase::Ring, t, true);
                        c.pri = Some((idx, Some(h), 0));
                        self.begin(c);
                        return true;
                    }
                }
                false
            }
        }
    }

    fn fail(&self, counter: &AtomicU64) {
        inc(&self.stats.failed);
        inc(counter);
    }

    /// Hang up everything the call holds at once (after a failure).
    fn abort(c: &Call, phones: &mut [SimPhone], lines: &mut [SimCoLine], fars: &mut [SpanFar]) {
        for p in [c.a, c.b].into_iter().flatten() {
            phones[p].expect_peer(None);
            phones[p].on_hook();
        }
        if let Some(l) = c.line {
            lines[l].expect_peer(None);
            lines[l].hang_up();
        }
        if let Some((idx, Some(h), ts)) = c.pri {
            if let Some(x) = fars.get_mut(idx).and_then(|f| f.exchange.as_deref_mut()) {
                x.expect_peer(ts, None);
                x.hang_up(x.now(), h);
            }
        }
    }

    /// Move a call on; returns true when it is over.
    fn advance(
        &mut self,
        c: &mut Call,
        now: Tick,
        phones: &mut [SimPhone],
        lines: &mut [SimCoLine],
        fars: &mut [SpanFar],
    ) -> bool {
        match c.phase {
            Phase::DialTone => {
                let a = c.a.expect("caller");
                if phones[a].hears().tone == Some(ProgressTone::Dial) {
                    let digits = match c.kind {
                        Kind::Internal => self.cfg.extensions[c.last.expect("callee")].1.as_str(),
                        _ => self.cfg.outgoing_prefix.as_deref().unwrap_or(""),
                    };
                    if c.kind == Kind::PriOutbound {
                        // The whole number at once; the PBX sends it en bloc after the
                        // inter-digit timeout.
                        let prefix = self.cfg.pri_outgoing_prefix.as_deref().unwrap_or("");
                        let _ = phones[a].dial(&format!("{prefix}{}", self.cfg.external_number));
                        c.phase = Phase::Connect;
                        c.t = now + 30_000;
                    } else if c.kind == Kind::Outbound && digits.is_empty() {
                        let _ = phones[a].dial(&self.cfg.external_number);
                        c.phase = Phase::Connect;
                        c.t = now + 30_000;
                    } else {
                        let _ = phones[a].dial(digits);
                        if c.kind == Kind::Outbound {
                            c.phase = Phase::OutsideDialTone;
                            c.t = now + DIAL_TONE_WAIT_MS + 1000;
                        } else {
                            c.phase = Phase::Ring;
                            c.t = now + u64::from(self.cfg.setup_timeout_ms) + 2000;
                        }
                    }
                } else if now >= c.t {
                    self.fail(&self.stats.no_dial_tone);
                    Self::abort(c, phones, lines, fars);
                    return true;
                }
            }
            Phase::OutsideDialTone => {
                let a = c.a.expect("caller");
                if !phones[a].is_dialing() && phones[a].hears().tone == Some(ProgressTone::Dial) {
                    let _ = phones[a].dial(&self.cfg.external_number);
                    c.phase = Phase::Connect;
                    c.t = now + 30_000;
                } else if now >= c.t {
                    self.fail(&self.stats.no_dial_tone);
                    Self::abort(c, phones, lines, fars);
                    return true;
                }
            }
            Phase::Ring => match c.kind {
                Kind::Internal => {
                    let a = c.a.expect("caller");
                    let tone = phones[a].hears().tone;
                    if let Some(b) = c.b.filter(|&b| phones[b].is_ringing()) {
                        c.phase = Phase::Answer;
                        c.t = phones[b].ring_started() + u64::from(self.answer_delay());
                    } else if matches!(tone, Some(ProgressTone::Busy | ProgressTone::Congestion)) {
                        if tone == Some(ProgressTone::Busy) {
                            inc(&self.stats.busy);
                        } else {
                            self.fail(&self.stats.no_ring);
                        }
                        Self::abort(c, phones, lines, fars);
                        return true;
                    } else if now >= c.t {
                        self.fail(&self.stats.no_ring);
                        Self::abort(c, phones, lines, fars);
                        return true;
                    }
                }
                Kind::Inbound | Kind::PriInbound => {
                    if let Some(p) = self
                        .hunt
                        .iter()
                        .copied()
                        .find(|&p| !self.phone_taken[p] && phones[p].is_ringing())
                    {
                        self.phone_taken[p] = true;
                        c.a = Some(p);
                        c.phase = Phase::Answer;
                        c.t = phones[p].ring_started() + u64::from(self.answer_delay());
                    } else if now >= c.t {
                        self.fail(&self.stats.no_ring);
                        Self::abort(c, phones, lines, fars);
                        return true;
                    }
                }
                Kind::Outbound | Kind::PriOutbound => {
                    unreachable!("outbound calls skip the ring phase")
                }
            },
            Phase::Answer => {
                if now >= c.t {
                    let p = if c.kind == Kind::Internal { c.b } else { c.a }.expect("called phone");
                    if !phones[p].answer() {
                        // Ringing stopped before the answer: the caller gave up or the PBX
                        // rang someone else.
                        self.fail(&self.stats.no_answer);
                        Self::abort(c, phones, lines, fars);
                        return true;
                    }
                    if c.kind == Kind::Internal {
                        self.talk(c, now, phones, lines, fars);
                    } else {
                        c.phase = Phase::Connect;
                        c.t = now + 2000;
                    }
                }
            }
            Phase::Connect if c.pri.is_some() => {
                let a = c.a.expect("phone");
                if c.kind == Kind::PriOutbound
                    && matches!(
                        phones[a].hears().tone,
                        Some(ProgressTone::Busy | ProgressTone::Congestion)
                    )
                    && !phones[a].is_dialing()
                {
                    if phones[a].hears().tone == Some(ProgressTone::Busy) {
                        inc(&self.stats.busy);
                    } else {
                        self.fail(&self.stats.no_answer);
                    }
                    Self::abort(c, phones, lines, fars);
                    return true;
                }
                if let Some(found) = self.pri_answered(c, a, fars) {
                    c.pri = Some(found);
                    self.talk(c, now, phones, lines, fars);
                } else if now >= c.t {
                    self.fail(&self.stats.no_answer);
                    Self::abort(c, phones, lines, fars);
                    return true;
                }
            }
            Phase::Connect => {
                if c.kind == Kind::Outbound && c.line.is_none() {
                    // The line the PBX seized for this call: off-hook, taking or having taken
                    // a number, and not one whose previous call is still being released.
                    c.line = (0..lines.len()).find(|&l| {
                        !self.line_taken[l]
                            && now >= self.line_free_at[l]
                            && lines[l].our_hook() == HookState::OffHook
                            && matches!(
                                lines[l].state(),
                                CoState::DialTone
                                    | CoState::Dialing
                                    | CoState::Ringback
                                    | CoState::Connected
                            )
                    });
                    if let Some(l) = c.line {
                        self.line_taken[l] = true;
                    }
                }
                let a = c.a.expect("phone");
                if c.kind == Kind::Outbound
                    && matches!(
                        phones[a].hears().tone,
                        Some(ProgressTone::Busy | ProgressTone::Congestion)
                    )
                    && !phones[a].is_dialing()
                {
                    if phones[a].hears().tone == Some(ProgressTone::Busy) {
                        inc(&self.stats.busy);
                    } else {
                        self.fail(&self.stats.no_answer);
                    }
                    Self::abort(c, phones, lines, fars);
                    return true;
                }
                if let Some(l) = c.line.filter(|&l| lines[l].state() == CoState::Connected) {
                    if c.kind == Kind::Outbound
                        && !lines[l].dialed_matches(&self.cfg.external_number)
                    {
                        self.fail(&self.stats.wrong_number);
                        Self::abort(c, phones, lines, fars);
                        return true;
                    }
                    self.talk(c, now, phones, lines, fars);
                } else if now >= c.t {
                    self.fail(&self.stats.no_answer);
                    Self::abort(c, phones, lines, fars);
                    return true;
                }
            }
            Phase::Talk => {
                if now >= c.t {
                    self.finish_talk(c, now, phones, lines, fars);
                }
            }
            Phase::Release => {
                if now >= c.t {
                    if let Some(p) = c.last {
                        phones[p].on_hook();
                    }
                    return true;
                }
            }
        }
        false
    }

    fn answer_delay(&mut self) -> u32 {
        let (lo, hi) = self.cfg.answer_delay_ms;
        self.rng.range(lo, hi)
    }

    /// A PRI call's exchange side once it is answered: (span index, handle, timeslot).
    fn pri_answered(
        &self,
        c: &Call,
        a: usize,
        fars: &[SpanFar],
    ) -> Option<(usize, Option<u32>, u8)> {
        let (idx, handle, _) = c.pri?;
        if let Some(h) = handle {
            let x = fars.get(idx)?.exchange.as_deref()?;
            let rc = x.calls().into_iter().find(|r| r.handle == h)?;
            return (rc.answered && rc.cause.is_none()).then_some((idx, Some(h), rc.ts?));
        }
        // Outbound: the exchange call from this phone's number that nobody else has taken.
        let number = self.number_of(a)?;
        for &span in &self.cfg.pri_spans {
            let idx = span as usize - 1;
            let Some(x) = fars.get(idx).and_then(|f| f.exchange.as_deref()) else { continue };
            let found = x.calls().into_iter().find(|r| {
                r.direction == RemoteDirection::FromPbx
                    && r.answered
                    && r.cause.is_none()
                    && r.calling.as_deref() == Some(number)
                    && !self
                        .calls
                        .iter()
                        .any(|o| o.pri.is_some_and(|p| p.0 == idx && p.1 == Some(r.handle)))
            });
            if let Some(r) = found {
                return Some((idx, Some(r.handle), r.ts?));
            }
        }
        None
    }

    fn talk(
        &mut self,
        c: &mut Call,
        now: Tick,
        phones: &mut [SimPhone],
        lines: &mut [SimCoLine],
        fars: &mut [SpanFar],
    ) {
        let a = c.a.expect("phone");
        if let Some((idx, _, ts)) = c.pri {
            let x = fars[idx].exchange.as_deref_mut().expect("a PRI call's span has an exchange");
            phones[a].expect_peer(Some(EndpointId::Bearer { span: idx as u32 + 1, ts }));
            x.expect_peer(ts, Some(phones[a].id()));
            c.base_b = x.audio_check(ts).unwrap_or_default();
            c.base_a = phones[a].audio_check();
            c.phase = Phase::Talk;
            c.hold = self.rng.exp(self.cfg.mean_hold_ms).max(1000);
            c.t = now + c.hold;
            return;
        }
        match (c.b, c.line) {
            (Some(b), _) => {
                phones[a].expect_peer(Some(phones[b].id()));
                phones[b].expect_peer(Some(phones[a].id()));
                c.base_b = phones[b].audio_check();
            }
            (None, Some(l)) => {
                phones[a].expect_peer(Some(lines[l].id()));
                lines[l].expect_peer(Some(phones[a].id()));
                c.base_b = lines[l].audio_check();
            }
            (None, None) => unreachable!("a talking call has two ends"),
        }
        c.base_a = phones[a].audio_check();
        c.phase = Phase::Talk;
        c.hold = self.rng.exp(self.cfg.mean_hold_ms).max(1000);
        c.t = now + c.hold;
    }

    fn finish_talk(
        &mut self,
        c: &mut Call,
        now: Tick,
        phones: &mut [SimPhone],
        lines: &mut [SimCoLine],
        fars: &mut [SpanFar],
    ) {
        let a = c.a.expect("phone");
        let ca = phones[a].audio_check().since(&c.base_a);
        let cb = match (c.b, c.line, c.pri) {
            (_, _, Some((idx, _, ts))) => fars[idx]
                .exchange
                .as_deref()
                .and_then(|x| x.audio_check(ts))
                .unwrap_or_default()
                .since(&c.base_b),
            (Some(b), _, _) => phones[b].audio_check().since(&c.base_b),
            (None, Some(l), _) => lines[l].audio_check().since(&c.base_b),
            (None, None, None) => AudioCheck::default(),
        };
        let errors = ca.error_blocks + cb.error_blocks;
        if errors == 0 && ca.ok_blocks > 0 && cb.ok_blocks > 0 {
            inc(&self.stats.completed);
        } else {
            self.fail(&self.stats.audio_path_errors);
            self.stats.audio_error_blocks.fetch_add(errors.max(1), Ordering::Relaxed);
        }
        c.settled = true;
        self.stats.in_progress.fetch_sub(1, Ordering::Relaxed);
        phones[a].expect_peer(None);
        let a_first = self.rng.below(2) == 0;
        if let Some((idx, Some(h), ts)) = c.pri {
            if let Some(x) = fars[idx].exchange.as_deref_mut() {
                x.expect_peer(ts, None);
                if a_first {
                    phones[a].on_hook();
                    c.last = None;
                } else {
                    x.hang_up(now, h);
                    c.last = Some(a);
                }
            }
            c.phase = Phase::Release;
            c.t = now + RELEASE_MS;
            return;
        }
        match (c.b, c.line) {
            (Some(b), _) => {
                phones[b].expect_peer(None);
                let (first, second) = if a_first { (a, b) } else { (b, a) };
                phones[first].on_hook();
                c.last = Some(second);
            }
            (None, Some(l)) => {
                lines[l].expect_peer(None);
                if a_first {
                    phones[a].on_hook();
                    c.last = None;
                } else {
                    lines[l].hang_up();
                    c.last = Some(a);
                }
            }
            (None, None) => {}
        }
        c.phase = Phase::Release;
        c.t = now + RELEASE_MS;
    }
}
