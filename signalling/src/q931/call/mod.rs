//! Q.931 basic call control for an E1 primary-rate interface, user side and network side,
//! sans-IO (Q.931 §5, EuroISDN flavour, en-bloc sending only).
//!
//! [`Q931Stack`] consumes whole layer-3 messages (the LAPD I-frame payloads) with
//! [`Q931Stack::receive`], data-link state changes with [`Q931Stack::link_up`] /
//! [`Q931Stack::link_down`], user requests ([`Q931Stack::setup`], [`Q931Stack::connect`], ...)
//! and time with [`Q931Stack::poll`]; it produces [`Q931Action`]s drained with
//! [`Q931Stack::poll_action`]: message bytes to send and [`CallEvent`]s for the application.
//!
//! Behaviour worth knowing:
//! - The stack starts with the data link down; call [`Q931Stack::link_up`] first. With
//!   [`Q931Config::restart_on_link_up`] it then restarts the whole interface (RESTART class
//!   "all interfaces") when no call survives; channels being restarted are not used.
//! - Data link lost (§5.8.9): calls in the Active state keep running under T309 and are
//!   cleared locally when it expires; every other call is cleared locally at once (cause 41).
//!   When the link returns before T309 expires the stack sends STATUS ENQUIRY for them.
//! - A DISCONNECT from the far end is answered at once with RELEASE (no in-band tones in U12).
//! - The network side allocates B-channels (highest free first); the user side requests one
//!   or leaves the choice to the network. Glare on a channel: the network's SETUP wins, the
//!   user's outgoing call loses its reservation and the network rejects it (cause 44) or
//!   assigns another channel.
//! - A second T308 expiry puts the channel into maintenance: it is restarted (RESTART class
//!   "indicated channel") and unavailable until acknowledged.

mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use cardpbx_hal::Tick;

use super::{
    reaction, BearerCapability, CallRef, CalledNumber, Cause, CauseIe, ChannelId, ChannelSelection,
    Direction, Ie, Location, Message, MessageType, PartyNumber, ProgressIndicator, Reaction,
    RestartClass,
};
pub use state::CallState;

/// Which end of the interface this stack plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The user (CPE / TE) side.
    User,
    /// The network (exchange / NT) side.
    Network,
}

/// Timer values (milliseconds), channels and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Q931Config {
    /// T303: SETUP sent, waiting for the first answer (4 s).
    pub t303_ms: u64,
    /// T305: DISCONNECT sent, waiting for RELEASE or DISCONNECT (30 s).
    pub t305_ms: u64,
    /// T308: RELEASE sent, waiting for RELEASE COMPLETE (4 s).
    pub t308_ms: u64,
    /// T310: CALL PROCEEDING received, waiting for ALERTING/CONNECT/DISCONNECT.
    pub t310_ms: u64,
    /// T313: CONNECT sent (user side), waiting for CONNECT ACKNOWLEDGE (4 s).
    pub t313_ms: u64,
    /// T316: RESTART sent, waiting for RESTART ACKNOWLEDGE (2 min).
    pub t316_ms: u64,
    /// T302: overlap receiving, waiting for the next INFORMATION (15 s).
    pub t302_ms: u64,
    /// T304: overlap sending, waiting for an answer after the last INFORMATION (30 s).
    pub t304_ms: u64,
    /// T309: data link lost with active calls, waiting for it to come back.
    pub t309_ms: u64,
    /// B-channel numbers of the interface (E1: timeslots 1-15, 17-31).
    pub channels: Vec<u8>,
    /// Restart the interface when the data link comes up (and no call survives).
    pub restart_on_link_up: bool,
    /// How many times a RESTART is sent before giving up (at least 1).
    pub restart_attempts: u8,
}

impl Default for Q931Config {
    fn default() -> Self {
        Q931Config {
            t303_ms: 4_000,
            t305_ms: 30_000,
            t308_ms: 4_000,
            t310_ms: 30_000,
            t313_ms: 4_000,
            t316_ms: 120_000,
            t302_ms: 15_000,
            t304_ms: 30_000,
            t309_ms: 6_000,
            channels: (1..=15).chain(17..=31).collect(),
            restart_on_link_up: true,
            restart_attempts: 2,
        }
    }
}

/// Identifies one call for the lifetime of the stack (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u32);

/// What an outgoing call asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallParams {
    /// Called party digits.
    pub called: String,
    /// Calling party digits, if any.
    pub calling: Option<String>,
    /// The B-channel wanted; `None` lets the network side pick one.
    pub channel: Option<u8>,
    /// With `channel`: only that channel is acceptable.
    pub exclusive: bool,
    /// Ask the network to withhold the calling number (presentation restricted).
    pub calling_restricted: bool,
    /// Overlap sending: the SETUP carries no Sending complete, and more digits may follow in
    /// INFORMATION messages ([`Q931Stack::information`]) once SETUP ACKNOWLEDGE arrives.
    pub overlap: bool,
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A SETUP arrived and got a channel; answer with proceeding/alerting/connect/disconnect.
    Incoming {
        /// The new call.
        call: CallHandle,
        /// Its B-channel.
        channel: u8,
        /// Called party digits ("" when absent).
        called: String,
        /// Calling party digits.
        calling: Option<String>,
        /// The SETUP carried Sending complete.
        sending_complete: bool,
    },
    /// CALL PROCEEDING received for an outgoing call; the channel is now known.
    Proceeding {
        /// The call.
        call: CallHandle,
        /// Its B-channel.
        channel: u8,
    },
    /// ALERTING received for an outgoing call.
    Alerting {
        /// The call.
        call: CallHandle,
        /// Its B-channel.
        channel: u8,
        /// In-band information (ringback) is available on the channel.
        inband: bool,
    },
    /// PROGRESS received.
    Progress {
        /// The call.
        call: CallHandle,
        /// In-band information is available on the channel.
        inband: bool,
    },
    /// CONNECT received for an outgoing call: answered, the call is active.
    Connected {
        /// The call.
        call: CallHandle,
        /// Its B-channel.
        channel: u8,
    },
    /// CONNECT ACKNOWLEDGE received for an incoming call we answered: the call is active.
    ConnectAck {
        /// The call.
        call: CallHandle,
    },
    /// The far end sent DISCONNECT, or a timer (T304, T310, T313) made this stack clear the
    /// call; either way the stack is releasing it and the application should stop using it.
    Disconnected {
        /// The call.
        call: CallHandle,
        /// The far end's cause (31 when it sent none).
        cause: Cause,
    },
    /// The call is gone (Null state) and its channel is free (or in maintenance).
    Released {
        /// The call.
        call: CallHandle,
        /// Why it ended: the first clearing cause seen or generated.
        cause: Cause,
    },
    /// INFORMATION received with digits (overlap receiving) or Sending complete.
    Information {
        /// The call.
        call: CallHandle,
        /// Called party digits it carried (may be empty).
        digits: String,
        /// It carried Sending complete: no more digits follow.
        complete: bool,
    },
    /// SETUP ACKNOWLEDGE received for an outgoing call: send more digits with
    /// [`Q931Stack::information`].
    SetupAck {
        /// The call.
        call: CallHandle,
        /// Its B-channel.
        channel: u8,
    },
    /// T302 expired in overlap receiving: no more digits came. The application decides:
    /// proceed with the digits it has, or clear (cause 28, invalid number format).
    DigitTimeout {
        /// The call.
        call: CallHandle,
    },
    /// A RESTART we sent finished.
    RestartDone {
        /// The channel restarted, `None` for the whole interface.
        channel: Option<u8>,
        /// False when RESTART ACKNOWLEDGE never came (channels returned to service anyway).
        acknowledged: bool,
    },
    /// The far end restarted channels (their calls were released first).
    RestartReceived {
        /// The channel restarted, `None` for the whole interface.
        channel: Option<u8>,
    },
}

/// Output of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Q931Action {
    /// Send this layer-3 message on the data link.
    Send(Vec<u8>),
    /// Tell the application.
    Event(CallEvent),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The data link is down.
    #[error("data link down")]
    LinkDown,
    /// No free B-channel.
    #[error("no channel available")]
    NoChannel,
    /// The requested channel is in use or being restarted.
    #[error("channel busy")]
    ChannelBusy,
    /// The requested channel is not part of this interface.
    #[error("no such channel")]
    NoSuchChannel,
    /// No such call (never existed or already released).
    #[error("unknown call")]
    UnknownCall,
    /// The request does not fit the call's state.
    #[error("request not allowed in call state {0:?}")]
    InvalidState(CallState),
    /// All 32767 call references are in use.
    #[error("no call reference free")]
    NoCallRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    T303,
    T305,
    T308,
    T309,
    T310,
    T313,
    T302,
    T304,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chan {
    Idle,
    Call(CallHandle),
    Restarting,
}

#[derive(Debug, Clone)]
struct Call {
    cr: u16,
    outgoing: bool,
    state: CallState,
    channel: Option<u8>,
    /// The channel is agreed with the far end (cannot be taken by glare any more).
    confirmed: bool,
    exclusive: bool,
    /// Incoming call: the Channel identification has been sent in a first answer.
    channel_sent: bool,
    timer: Option<(Timer, Tick)>,
    expiries: u8,
    cause: Option<Cause>,
    sent_cause: Option<CauseIe>,
    setup: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct RestartJob {
    channel: Option<u8>,
    deadline: Option<Tick>,
    sent: u8,
}

/// One Q.931 interface (one D-channel): all its calls, channels and restarts.
#[derive(Debug, Clone)]
pub struct Q931Stack {
    side: Side,
    cfg: Q931Config,
    link_up: bool,
    calls: BTreeMap<CallHandle, Call>,
    next_handle: u32,
    next_cr: u16,
    channels: BTreeMap<u8, Chan>,
    restart: Option<RestartJob>,
    restart_queue: VecDeque<Option<u8>>,
    actions: VecDeque<Q931Action>,
}

impl Q931Stack {
    /// A stack with no calls, all channels idle and the data link down.
    pub fn new(side: Side, cfg: Q931Config) -> Self {
        let channels = cfg.channels.iter().map(|&c| (c, Chan::Idle)).collect();
        Q931Stack {
            side,
            cfg,
            link_up: false,
            calls: BTreeMap::new(),
            next_handle: 1,
            next_cr: 1,
            channels,
            restart: None,
            restart_queue: VecDeque::new(),
            actions: VecDeque::new(),
        }
    }

    /// Which side this stack plays.
    pub fn side(&self) -> Side {
        self.side
    }

    /// True while the data link is established.
    pub fn is_link_up(&self) -> bool {
        self.link_up
    }

    /// The next output, if any.
    pub fn poll_action(&mut self) -> Option<Q931Action> {
        self.actions.pop_front()
    }

    /// The existing calls.
    pub fn calls(&self) -> impl Iterator<Item = CallHandle> + '_ {
        self.calls.keys().copied()
    }

    /// Number of calls not in the Null state.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// A call's state ([`CallState::Null`] once released or never existing).
    pub fn call_state(&self, h: CallHandle) -> CallState {
        self.calls.get(&h).map_or(CallState::Null, |c| c.state)
    }

    /// A call's B-channel, when it has one.
    pub fn call_channel(&self, h: CallHandle) -> Option<u8> {
        self.calls.get(&h).and_then(|c| c.channel)
    }

    /// The call using a channel.
    pub fn channel_owner(&self, channel: u8) -> Option<CallHandle> {
        match self.channels.get(&channel) {
            Some(Chan::Call(h)) => Some(*h),
            _ => None,
        }
    }

    /// True while a channel is being restarted (unusable).
    pub fn channel_restarting(&self, channel: u8) -> bool {
        self.channels.get(&channel) == Some(&Chan::Restarting)
    }

    /// Checks the internal bookkeeping (every channel owned by at most one call and the
    /// channel table matching the calls); panics when broken. For tests and fuzzing.
    pub fn assert_invariants(&self) {
        for (&ch, st) in &self.channels {
            if let Chan::Call(h) = st {
                let call = self.calls.get(h).expect("channel owned by a released call");
                assert_eq!(call.channel, Some(ch), "channel table and call disagree");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (h, call) in &self.calls {
            assert_ne!(call.state, CallState::Null, "null call kept");
            if let Some(ch) = call.channel {
                assert!(seen.insert(ch), "channel {ch} used by two calls");
                assert_eq!(self.channels.get(&ch), Some(&Chan::Call(*h)));
            }
        }
    }

    /// When [`Q931Stack::poll`] next needs calling.
    pub fn next_timeout(&self) -> Option<Tick> {
        let calls = self.calls.values().filter_map(|c| c.timer.map(|t| t.1));
        let restart = self.restart.and_then(|r| r.deadline);
        calls.chain(restart).min()
    }

    // ----- data link -----

    /// The data link is established (LAPD `Established`).
    pub fn link_up(&mut self, now: Tick) {
        if self.link_up {
            return;
        }
        self.link_up = true;
        let survivors: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.timer, Some((Timer::T309, _))))
            .map(|(h, _)| *h)
            .collect();
        for h in &survivors {
            if let Some(call) = self.calls.get_mut(h) {
                call.timer = None;
            }
            self.send_call(*h, MessageType::StatusEnquiry, None);
        }
        if self.cfg.restart_on_link_up && self.calls.is_empty() {
            self.restart = None;
            self.restart_queue.clear();
            self.request_restart(now, None);
        } else if let Some(job) = self.restart {
            self.send_restart(now, job.channel, job.sent);
        }
    }

    /// The data link was lost (LAPD `Released`): active calls start T309, the others are
    /// cleared locally with cause 41.
    pub fn link_down(&mut self, now: Tick) {
        if !self.link_up {
            return;
        }
        self.link_up = false;
        if let Some(job) = self.restart.as_mut() {
            job.deadline = None;
        }
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        for h in handles {
            let t309 = now + self.cfg.t309_ms;
            let call = self.calls.get_mut(&h).expect("listed");
            if call.state == CallState::Active {
                call.timer = Some((Timer::T309, t309));
            } else {
                self.set_cause(h, Cause::TEMPORARY_FAILURE);
                self.release_call(h, false);
            }
        }
    }

    // ----- requests -----

    /// Starts an outgoing call: sends SETUP and starts T303.
    ///
    /// # Errors
    /// [`CallError::LinkDown`], [`CallError::NoChannel`], [`CallError::ChannelBusy`],
    /// [`CallError::NoSuchChannel`], [`CallError::NoCallRef`].
    pub fn setup(&mut self, now: Tick, params: CallParams) -> Result<CallHandle, CallError> {
        if !self.link_up {
            return Err(CallError::LinkDown);
        }
        let channel = match params.channel {
            Some(c) => match self.channels.get(&c) {
                None => return Err(CallError::NoSuchChannel),
                Some(Chan::Idle) => Some(c),
                Some(_) => return Err(CallError::ChannelBusy),
            },
            None if self.side == Side::Network => {
                Some(self.pick_free().ok_or(CallError::NoChannel)?)
            }
            None => None,
        };
        let exclusive = params.exclusive || params.channel.is_none();
        let cr = self.alloc_cr().ok_or(CallError::NoCallRef)?;
        let h = self.new_handle();
        let cid =
            channel.map(
                |c| {
                    if exclusive {
                        ChannelId::exclusive(c)
                    } else {
                        ChannelId::preferred(c)
                    }
                },
            );
        let calling = params.calling.as_deref().map(|d| {
            let mut n = PartyNumber::new(0, 1, d);
            // Octet 3a: presentation allowed or restricted, user-provided, not screened.
            n.presentation = Some(super::number::Presentation {
                presentation: u8::from(params.calling_restricted),
                screening: 0,
            });
            n
        });
        let called = CalledNumber::new(0, 1, &params.called);
        let msg = Message::setup(
            CallRef::new(cr, false),
            BearerCapability::speech_alaw(),
            cid,
            calling,
            called,
        );
        let msg = if params.overlap { msg } else { msg.with(Ie::SendingComplete) };
        let bytes = msg.to_bytes();
        self.actions.push_back(Q931Action::Send(bytes.clone()));
        let call = Call {
            cr,
            outgoing: true,
            state: CallState::CallInitiated,
            channel,
            confirmed: self.side == Side::Network,
            exclusive,
            channel_sent: true,
            timer: Some((Timer::T303, now + self.cfg.t303_ms)),
            expiries: 0,
            cause: None,
            sent_cause: None,
            setup: bytes,
        };
        if let Some(c) = channel {
            self.channels.insert(c, Chan::Call(h));
        }
        self.calls.insert(h, call);
        Ok(h)
    }

    /// Sends CALL PROCEEDING for an incoming call (U6 → U9 / N1 → N3).
    ///
    /// # Errors
    /// [`CallError::UnknownCall`], [`CallError::InvalidState`].
    pub fn proceeding(&mut self, _now: Tick, h: CallHandle) -> Result<(), CallError> {
        let from = [CallState::CallPresent, CallState::OverlapReceiving];
        self.answer(h, MessageType::CallProceeding, &from)?;
        self.set_state(h, CallState::IncomingProceeding);
        self.stop_timer(h);
        Ok(())
    }

    /// Sends SETUP ACKNOWLEDGE for an incoming call whose number is not complete yet
    /// (U6 → U25 / N1 → N2) and starts T302; the digits then arrive as
    /// [`CallEvent::Information`], and T302 expiring gives [`CallEvent::DigitTimeout`].
    ///
    /// # Errors
    /// [`CallError::UnknownCall`], [`CallError::InvalidState`].
    pub fn setup_ack(&mut self, now: Tick, h: CallHandle) -> Result<(), CallError> {
        self.answer(h, MessageType::SetupAck, &[CallState::CallPresent])?;
        self.set_state(h, CallState::OverlapReceiving);
        self.set_timer(h, Timer::T302, now);
        Ok(())
    }

    /// Overlap sending: sends more called-party digits in INFORMATION (with Sending complete
    /// when `complete`) and restarts T304.
    ///
    /// # Errors
    /// [`CallError::UnknownCall`]; [`CallError::InvalidState`] unless the call is outgoing in
    /// overlap sending (SETUP ACKNOWLEDGE received).
    pub fn information(
        &mut self,
        now: Tick,
        h: CallHandle,
        digits: &str,
        complete: bool,
    ) -> Result<(), CallError> {
        let state = self.calls.get(&h).ok_or(CallError::UnknownCall)?.state;
        if state != CallState::OverlapSending {
            return Err(CallError::InvalidState(state));
        }
        let mut m = Message::new(self.call_ref(h), MessageType::Information);
        if complete {
            m.ies.push(Ie::SendingComplete);
        }
        if !digits.is_empty() {
            m.ies.push(Ie::CalledNumber(CalledNumber::new(0, 1, digits)));
        }
        self.send(m);
        self.set_timer(h, Timer::T304, now);
        Ok(())
    }

    /// Sends ALERTING for an incoming call (→ U7 / N4).
    ///
    /// # Errors
    /// [`CallError::UnknownCall`], [`CallError::InvalidState`].
    pub fn alerting(&mut self, _now: Tick, h: CallHandle) -> Result<(), CallError> {
        let from =
            [CallState::CallPresent, CallState::OverlapReceiving, CallState::IncomingProceeding];
        self.answer(h, MessageType::Alerting, &from)?;
        self.set_state(h, CallState::CallReceived);
        self.stop_timer(h);
        Ok(())
    }

    /// Answers an incoming call with CONNECT: the user side waits for CONNECT ACKNOWLEDGE
    /// under T313 (U8), the network side is active at once (N10).
    ///
    /// # Errors
    /// [`CallError::UnknownCall`], [`CallError::InvalidState`].
    pub fn connect(&mut self, now: Tick, h: CallHandle) -> Result<(), CallError> {
        let from = [
            CallState::CallPresent,
            CallState::OverlapReceiving,
            CallState::IncomingProceeding,
            CallState::CallReceived,
        ];
        self.answer(h, MessageType::Connect, &from)?;
        self.stop_timer(h);
        if self.side == Side::User {
            self.set_state(h, CallState::ConnectRequest);
            self.set_timer(h, Timer::T313, now);
        } else {
            self.set_state(h, CallState::Active);
        }
        Ok(())
    }

    /// Sends PROGRESS "in-band information now available" on an incoming call being set up.
    ///
    /// # Errors
    /// [`CallError::UnknownCall`], [`CallError::InvalidState`].
    pub fn progress(&mut self, _now: Tick, h: CallHandle) -> Result<(), CallError> {
        let from = [CallState::CallPresent, CallState::IncomingProceeding, CallState::CallReceived];
        let pi = ProgressIndicator::new(self.location(), ProgressIndicator::INBAND_AVAILABLE);
        let state = self.call_state(h);
        if !self.calls.contains_key(&h) {
            return Err(CallError::UnknownCall);
        }
        if !from.contains(&state) {
            return Err(CallError::InvalidState(state));
        }
        self.send_call(h, MessageType::Progress, Some(Ie::Progress(pi)));
        Ok(())
    }

    /// Clears a call with `cause`: DISCONNECT (T305), or RELEASE COMPLETE when rejecting a
    /// call still in Call Present; with the data link down the call is released locally.
    ///
    /// # Errors
    /// [`CallError::UnknownCall`], [`CallError::InvalidState`] when already clearing.
    pub fn disconnect(&mut self, now: Tick, h: CallHandle, cause: Cause) -> Result<(), CallError> {
        let state = self.calls.get(&h).ok_or(CallError::UnknownCall)?.state;
        if state.is_clearing() {
            return Err(CallError::InvalidState(state));
        }
        self.set_cause(h, cause);
        if !self.link_up {
            self.release_call(h, false);
        } else if state == CallState::CallPresent {
            let ie = self.cause_ie(cause);
            self.send_call(h, MessageType::ReleaseComplete, Some(Ie::Cause(ie)));
            self.release_call(h, false);
        } else {
            let ie = self.cause_ie(cause);
            self.start_clear(now, h, ie);
        }
        Ok(())
    }

    /// Sends STATUS ENQUIRY for a call.
    ///
    /// # Errors
    /// [`CallError::UnknownCall`].
    pub fn status_enquiry(&mut self, _now: Tick, h: CallHandle) -> Result<(), CallError> {
        if !self.calls.contains_key(&h) {
            return Err(CallError::UnknownCall);
        }
        self.send_call(h, MessageType::StatusEnquiry, None);
        Ok(())
    }

    /// Restarts one channel (`Some`) or the whole interface (`None`): calls on it are
    /// released locally (cause 41), the channels are unusable until RESTART ACKNOWLEDGE or
    /// until T316 ran out [`Q931Config::restart_attempts`] times.
    ///
    /// # Errors
    /// [`CallError::LinkDown`], [`CallError::NoSuchChannel`].
    pub fn restart(&mut self, now: Tick, channel: Option<u8>) -> Result<(), CallError> {
        if !self.link_up {
            return Err(CallError::LinkDown);
        }
        if channel.is_some_and(|c| !self.channels.contains_key(&c)) {
            return Err(CallError::NoSuchChannel);
        }
        self.request_restart(now, channel);
        Ok(())
    }

    // ----- time -----

    /// Runs the timers that expired at `now`.
    pub fn poll(&mut self, now: Tick) {
        let due: Vec<(CallHandle, Timer)> = self
            .calls
            .iter()
            .filter_map(|(h, c)| match c.timer {
                Some((t, d)) if d <= now => Some((*h, t)),
                _ => None,
            })
            .collect();
        for (h, t) in due {
            if let Some(call) = self.calls.get_mut(&h) {
                call.timer = None;
                self.on_timer(now, h, t);
            }
        }
        if let Some(job) = self.restart {
            if job.deadline.is_some_and(|d| d <= now) {
                if job.sent < self.cfg.restart_attempts.max(1) {
                    self.send_restart(now, job.channel, job.sent + 1);
                } else {
                    self.finish_restart(now, job.channel, false);
                }
            }
        }
    }

    fn on_timer(&mut self, now: Tick, h: CallHandle, t: Timer) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        match t {
            Timer::T303 if call.expiries == 0 => {
                call.expiries = 1;
                let bytes = call.setup.clone();
                self.actions.push_back(Q931Action::Send(bytes));
                self.set_timer(h, Timer::T303, now);
            }
            Timer::T303 => {
                self.set_cause(h, Cause::RECOVERY_ON_TIMER_EXPIRY);
                let ie = self.cause_ie(Cause::RECOVERY_ON_TIMER_EXPIRY);
                self.send_call(h, MessageType::ReleaseComplete, Some(Ie::Cause(ie)));
                self.release_call(h, false);
            }
            Timer::T302 => self.event(CallEvent::DigitTimeout { call: h }),
            Timer::T310 | Timer::T313 | Timer::T304 => {
                self.set_cause(h, Cause::RECOVERY_ON_TIMER_EXPIRY);
                let ie = self.cause_ie(Cause::RECOVERY_ON_TIMER_EXPIRY);
                self.start_clear(now, h, ie);
                // The application must stop using the call now, not when RELEASE comes back.
                self.event(CallEvent::Disconnected {
                    call: h,
                    cause: Cause::RECOVERY_ON_TIMER_EXPIRY,
                });
            }
            Timer::T305 => {
                let ie = call
                    .sent_cause
                    .clone()
                    .unwrap_or_else(|| self.cause_ie(Cause::RECOVERY_ON_TIMER_EXPIRY));
                self.send_release(now, h, ie);
            }
            Timer::T308 if call.expiries == 0 => {
                call.expiries = 1;
                let ie = call.sent_cause.clone();
                self.send_call(h, MessageType::Release, ie.map(Ie::Cause));
                self.set_timer(h, Timer::T308, now);
            }
            Timer::T308 => {
                self.set_cause(h, Cause::RECOVERY_ON_TIMER_EXPIRY);
                self.release_call(h, true);
                let ch = self.restart_queue.back().copied().flatten();
                if self.link_up && ch.is_some() && self.restart.is_none() {
                    let job = self.restart_queue.pop_back().expect("checked");
                    self.send_restart(now, job, 1);
                }
            }
            Timer::T309 => {
                self.set_cause(h, Cause::TEMPORARY_FAILURE);
                self.release_call(h, false);
            }
        }
    }

    // ----- receiving -----

    /// Handles one received layer-3 message. Frames that are not Q.931, or carry a call
    /// reference that is not 2 octets long, are ignored (§5.8.1–5.8.3.1).
    pub fn receive(&mut self, now: Tick, bytes: &[u8]) {
        let Ok(decoded) = Message::decode(bytes) else {
            return;
        };
        if decoded.message.call_ref.len != 2 {
            return;
        }
        let dir = match self.side {
            Side::User => Direction::NetworkToUser,
            Side::Network => Direction::UserToNetwork,
        };
        let reaction = reaction(&decoded, dir);
        let msg = decoded.message;
        if msg.call_ref.is_global() {
            self.receive_global(now, &msg, reaction);
            return;
        }
        let outgoing = msg.call_ref.flag;
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.cr == msg.call_ref.value && c.outgoing == outgoing)
            .map(|(h, _)| *h);
        match found {
            Some(h) => self.receive_call(now, h, &msg, reaction),
            None => self.receive_unknown(now, &msg, reaction),
        }
    }

    fn receive_global(&mut self, now: Tick, msg: &Message, reaction: Reaction) {
        let reply = msg.call_ref.reply();
        if let Reaction::Reject(c) = reaction {
            if msg.msg_type != MessageType::Status {
                self.send(Message::status(reply, c, 0));
            }
            return;
        }
        let class = msg.restart_class().unwrap_or(RestartClass::AllInterfaces);
        let channel = match class {
            RestartClass::Indicated => msg.channel_id().and_then(ChannelId::channel),
            _ => None,
        };
        match msg.msg_type {
            MessageType::Restart => {
                if channel.is_some_and(|c| !self.channels.contains_key(&c)) {
                    let ie = self.cause_ie(Cause::CHANNEL_DOES_NOT_EXIST);
                    self.send(Message::status(reply, ie, 0));
                    return;
                }
                self.clear_channels(channel);
                for (&ch, st) in self.channels.iter_mut() {
                    let ours = self.restart.is_some_and(|j| j.channel.is_none_or(|c| c == ch))
                        || self.restart_queue.iter().any(|q| q.is_none_or(|c| c == ch));
                    if channel.is_none_or(|c| c == ch) && !ours {
                        *st = Chan::Idle;
                    }
                }
                self.send(Message::restart(class, channel.map(ChannelId::exclusive), true));
                self.event(CallEvent::RestartReceived { channel });
            }
            MessageType::RestartAck if self.restart.is_some_and(|j| j.channel == channel) => {
                self.finish_restart(now, channel, true);
            }
            _ => {}
        }
    }

    fn receive_unknown(&mut self, now: Tick, msg: &Message, reaction: Reaction) {
        let reply = msg.call_ref.reply();
        let rel_comp = |s: &Self, c: Cause| {
            Message::clearing(reply, MessageType::ReleaseComplete, s.cause_ie(c))
        };
        match msg.msg_type {
            MessageType::Setup if !msg.call_ref.flag => self.incoming(now, msg, reaction),
            MessageType::Setup | MessageType::ReleaseComplete => {}
            MessageType::Status if msg.call_state().unwrap_or(0) == 0 => {}
            MessageType::StatusEnquiry => {
                let ie = self.cause_ie(Cause::RESPONSE_TO_STATUS_ENQUIRY);
                self.send(Message::status(reply, ie, 0));
            }
            _ => {
                let m = rel_comp(self, Cause::INVALID_CALL_REFERENCE);
                self.send(m);
            }
        }
    }

    fn incoming(&mut self, _now: Tick, msg: &Message, reaction: Reaction) {
        let reply = msg.call_ref.reply();
        if let Reaction::Reject(c) = reaction {
            self.send(Message::clearing(reply, MessageType::ReleaseComplete, c));
            return;
        }
        let channel = match self.select_incoming(msg.channel_id()) {
            Ok(c) => c,
            Err(cause) => {
                let ie = self.cause_ie(cause);
                self.send(Message::clearing(reply, MessageType::ReleaseComplete, ie));
                return;
            }
        };
        let h = self.new_handle();
        self.calls.insert(
            h,
            Call {
                cr: msg.call_ref.value,
                outgoing: false,
                state: CallState::CallPresent,
                channel: Some(channel),
                confirmed: true,
                exclusive: true,
                channel_sent: false,
                timer: None,
                expiries: 0,
                cause: None,
                sent_cause: None,
                setup: Vec::new(),
            },
        );
        self.channels.insert(channel, Chan::Call(h));
        self.event(CallEvent::Incoming {
            call: h,
            channel,
            called: msg.called_number().map(|n| n.digits.clone()).unwrap_or_default(),
            calling: msg.calling_number().map(|n| n.digits.clone()),
            sending_complete: msg.sending_complete(),
        });
        if let Reaction::ProceedAndReport(c) = reaction {
            self.send(Message::status(reply, c, self.q931_state(h)));
        }
    }

    /// Picks the channel for a received SETUP (§5.1.2 / §5.2.3), or the cause to reject it.
    fn select_incoming(&mut self, cid: Option<&ChannelId>) -> Result<u8, Cause> {
        let any = |s: &Self| s.pick_free().ok_or(Cause::NO_CIRCUIT_AVAILABLE);
        let Some(cid) = cid else {
            return any(self);
        };
        let wanted = match &cid.selection {
            ChannelSelection::Any => return any(self),
            ChannelSelection::NoChannel => return Err(Cause::NO_CIRCUIT_AVAILABLE),
            ChannelSelection::Channels(v) => v[0],
        };
        match self.channels.get(&wanted).copied() {
            Some(Chan::Idle) => Ok(wanted),
            Some(Chan::Call(other)) if self.side == Side::User && cid.exclusive => {
                // Glare: the network's choice wins over our unconfirmed request.
                let call = self.calls.get_mut(&other).expect("channel owner exists");
                if call.confirmed {
                    return Err(Cause::REQUESTED_CHANNEL_NOT_AVAILABLE);
                }
                call.channel = None;
                self.channels.insert(wanted, Chan::Idle);
                Ok(wanted)
            }
            None if cid.exclusive => Err(Cause::CHANNEL_DOES_NOT_EXIST),
            _ if cid.exclusive => Err(Cause::REQUESTED_CHANNEL_NOT_AVAILABLE),
            _ => any(self),
        }
    }

    fn receive_call(&mut self, now: Tick, h: CallHandle, msg: &Message, reaction: Reaction) {
        use CallState as S;
        use MessageType as M;
        let state = self.call_state(h);
        let report = match reaction {
            Reaction::Reject(c) => {
                if msg.msg_type != M::Setup {
                    self.send_status(h, c);
                }
                return;
            }
            Reaction::ProceedAndReport(c) => Some(c),
            Reaction::Proceed => None,
        };
        let peer_cause = msg.cause().map_or(Cause::NORMAL_UNSPECIFIED, |c| c.cause);
        let mut reported = false;
        match msg.msg_type {
            M::Setup => {}
            M::SetupAck if state == S::CallInitiated => {
                if let Some(channel) = self.confirm_channel(now, h, msg) {
                    self.set_state(h, S::OverlapSending);
                    self.set_timer(h, Timer::T304, now);
                    self.event(CallEvent::SetupAck { call: h, channel });
                }
            }
            M::CallProceeding if matches!(state, S::CallInitiated | S::OverlapSending) => {
                if let Some(channel) = self.confirm_channel(now, h, msg) {
                    self.set_state(h, S::OutgoingProceeding);
                    self.set_timer(h, Timer::T310, now);
                    self.event(CallEvent::Proceeding { call: h, channel });
                }
            }
            M::Alerting
                if matches!(
                    state,
                    S::CallInitiated | S::OverlapSending | S::OutgoingProceeding
                ) =>
            {
                if let Some(channel) = self.confirm_channel(now, h, msg) {
                    self.set_state(h, S::CallDelivered);
                    self.stop_timer(h);
                    let inband = msg.inband_available();
                    self.event(CallEvent::Alerting { call: h, channel, inband });
                }
            }
            M::Connect
                if matches!(
                    state,
                    S::CallInitiated | S::OverlapSending | S::OutgoingProceeding | S::CallDelivered
                ) =>
            {
                if let Some(channel) = self.confirm_channel(now, h, msg) {
                    self.set_state(h, S::Active);
                    self.stop_timer(h);
                    self.send_call(h, M::ConnectAck, None);
                    self.event(CallEvent::Connected { call: h, channel });
                }
            }
            M::ConnectAck if state == S::ConnectRequest => {
                self.set_state(h, S::Active);
                self.stop_timer(h);
                self.event(CallEvent::ConnectAck { call: h });
            }
            M::ConnectAck if state == S::Active => {}
            M::Progress if !state.is_clearing() => {
                let inband = msg.inband_available();
                if inband && state == S::OutgoingProceeding {
                    self.stop_timer(h);
                }
                self.event(CallEvent::Progress { call: h, inband });
            }
            M::Disconnect if state == S::ReleaseRequest => {}
            M::Disconnect => {
                self.set_cause(h, peer_cause);
                self.event(CallEvent::Disconnected { call: h, cause: peer_cause });
                let ie = match report.clone() {
                    Some(c) => c,
                    None => self.cause_ie(Cause::NORMAL_CLEARING),
                };
                reported = true;
                self.send_release(now, h, ie);
            }
            M::Release if state == S::ReleaseRequest => {
                self.set_cause(h, peer_cause);
                self.release_call(h, false);
            }
            M::Release => {
                self.set_cause(h, peer_cause);
                reported = true;
                self.send_call(h, M::ReleaseComplete, report.clone().map(Ie::Cause));
                self.release_call(h, false);
            }
            M::ReleaseComplete => {
                self.set_cause(h, peer_cause);
                self.release_call(h, false);
            }
            M::Status => {
                reported = true;
                self.receive_status(now, h, msg);
            }
            M::StatusEnquiry => {
                let ie = self.cause_ie(Cause::RESPONSE_TO_STATUS_ENQUIRY);
                self.send_status(h, ie);
            }
            M::Information => {
                let complete = msg.sending_complete();
                if state == S::OverlapReceiving {
                    self.set_timer(h, Timer::T302, now);
                }
                let digits = msg.called_number().map(|n| n.digits.clone()).unwrap_or_default();
                if !digits.is_empty() || complete {
                    self.event(CallEvent::Information { call: h, digits, complete });
                }
            }
            M::Notify | M::Facility | M::UserInformation => {}
            _ if state == S::ReleaseRequest => {}
            _ => {
                reported = true;
                let ie = self.cause_ie(Cause::WRONG_CALL_STATE);
                self.send_status(h, ie);
            }
        }
        if let Some(c) = report.filter(|_| !reported && self.calls.contains_key(&h)) {
            self.send_status(h, c);
        }
    }

    /// §5.8.11: a STATUS for a known call.
    fn receive_status(&mut self, now: Tick, h: CallHandle, msg: &Message) {
        let peer = msg.call_state().unwrap_or(0);
        let Some(call) = self.calls.get(&h) else {
            return;
        };
        let user_originated = call.outgoing == (self.side == Side::User);
        if peer == 0 {
            let cause = msg.cause().map_or(Cause::WRONG_CALL_STATE, |c| c.cause);
            self.set_cause(h, cause);
            self.release_call(h, false);
        } else if !state::compatible(call.state, peer, user_originated) {
            self.set_cause(h, Cause::WRONG_CALL_STATE);
            let ie = self.cause_ie(Cause::WRONG_CALL_STATE);
            self.send_release(now, h, ie);
        }
    }

    /// The first answer to our SETUP fixes the channel (§5.1.2, §5.2.3); on a conflict the
    /// call is released with cause 6 (or 96 when no channel is known at all).
    fn confirm_channel(&mut self, now: Tick, h: CallHandle, msg: &Message) -> Option<u8> {
        let call = self.calls.get(&h)?;
        let current = call.channel;
        if call.confirmed {
            return current;
        }
        let offered = msg.channel_id().and_then(ChannelId::channel);
        let result = match (offered, current) {
            (Some(y), Some(c)) if y == c => Ok(c),
            (Some(_), Some(_)) if call.exclusive => Err(Cause::CHANNEL_UNACCEPTABLE),
            (Some(y), _) if self.channels.get(&y) == Some(&Chan::Idle) => Ok(y),
            (Some(_), _) => Err(Cause::CHANNEL_UNACCEPTABLE),
            (None, Some(c)) => Ok(c),
            // An element naming no B-channel ("any", as libpri answers a SETUP without one)
            // is a content error (§5.8.6.2), an absent one a missing element (§5.8.6.1).
            (None, None) if msg.channel_id().is_some() => Err(Cause::INVALID_IE_CONTENTS),
            (None, None) => Err(Cause::MANDATORY_IE_MISSING),
        };
        match result {
            Ok(ch) => {
                if let Some(old) = current.filter(|&o| o != ch) {
                    self.channels.insert(old, Chan::Idle);
                }
                self.channels.insert(ch, Chan::Call(h));
                let call = self.calls.get_mut(&h).expect("present");
                call.channel = Some(ch);
                call.confirmed = true;
                Some(ch)
            }
            Err(cause) => {
                self.set_cause(h, cause);
                let mut ie = self.cause_ie(cause);
                if matches!(cause, Cause::INVALID_IE_CONTENTS | Cause::MANDATORY_IE_MISSING) {
                    // Q.850: the diagnostic names the element, Channel identification.
                    ie = ie.with_diagnostics(vec![0x18]);
                }
                self.send_release(now, h, ie);
                None
            }
        }
    }

    // ----- helpers -----

    fn location(&self) -> Location {
        match self.side {
            Side::User => Location::USER,
            Side::Network => Location::PRIVATE_LOCAL,
        }
    }

    fn cause_ie(&self, cause: Cause) -> CauseIe {
        CauseIe::new(self.location(), cause)
    }

    fn q931_state(&self, h: CallHandle) -> u8 {
        self.call_state(h).q931_value(self.side)
    }

    fn new_handle(&mut self) -> CallHandle {
        let h = CallHandle(self.next_handle);
        self.next_handle += 1;
        h
    }

    fn alloc_cr(&mut self) -> Option<u16> {
        for _ in 0..0x7FFF {
            let cr = self.next_cr;
            self.next_cr = if cr >= 0x7FFF { 1 } else { cr + 1 };
            if !self.calls.values().any(|c| c.outgoing && c.cr == cr) {
                return Some(cr);
            }
        }
        None
    }

    /// A free channel: the network hunts from the top, the user side from the bottom, which
    /// keeps glare rare.
    fn pick_free(&self) -> Option<u8> {
        let mut free = self.channels.iter().filter(|(_, s)| **s == Chan::Idle).map(|(c, _)| *c);
        match self.side {
            Side::Network => free.next_back(),
            Side::User => free.next(),
        }
    }

    fn send(&mut self, msg: Message) {
        self.actions.push_back(Q931Action::Send(msg.to_bytes()));
    }

    fn event(&mut self, e: CallEvent) {
        self.actions.push_back(Q931Action::Event(e));
    }

    fn call_ref(&self, h: CallHandle) -> CallRef {
        let call = &self.calls[&h];
        CallRef::new(call.cr, !call.outgoing)
    }

    fn send_call(&mut self, h: CallHandle, t: MessageType, ie: Option<Ie>) {
        let mut m = Message::new(self.call_ref(h), t);
        m.ies.extend(ie);
        self.send(m);
    }

    fn send_status(&mut self, h: CallHandle, cause: CauseIe) {
        let m = Message::status(self.call_ref(h), cause, self.q931_state(h));
        self.send(m);
    }

    fn answer(
        &mut self,
        h: CallHandle,
        t: MessageType,
        from: &[CallState],
    ) -> Result<(), CallError> {
        let cr = self.call_ref(h_checked(&self.calls, h)?);
        let call = self.calls.get_mut(&h).expect("checked");
        if !from.contains(&call.state) {
            return Err(CallError::InvalidState(call.state));
        }
        let mut m = Message::new(cr, t);
        if !call.channel_sent {
            call.channel_sent = true;
            m.ies.extend(call.channel.map(|c| Ie::ChannelId(ChannelId::exclusive(c))));
        }
        self.send(m);
        Ok(())
    }

    fn set_state(&mut self, h: CallHandle, s: CallState) {
        if let Some(c) = self.calls.get_mut(&h) {
            c.state = s;
        }
    }

    fn set_timer(&mut self, h: CallHandle, t: Timer, now: Tick) {
        let ms = match t {
            Timer::T303 => self.cfg.t303_ms,
            Timer::T305 => self.cfg.t305_ms,
            Timer::T308 => self.cfg.t308_ms,
            Timer::T309 => self.cfg.t309_ms,
            Timer::T310 => self.cfg.t310_ms,
            Timer::T313 => self.cfg.t313_ms,
            Timer::T302 => self.cfg.t302_ms,
            Timer::T304 => self.cfg.t304_ms,
        };
        if let Some(c) = self.calls.get_mut(&h) {
            c.timer = Some((t, now + ms));
        }
    }

    fn stop_timer(&mut self, h: CallHandle) {
        if let Some(c) = self.calls.get_mut(&h) {
            c.timer = None;
        }
    }

    /// Records the clearing cause unless one is already known.
    fn set_cause(&mut self, h: CallHandle, cause: Cause) {
        if let Some(c) = self.calls.get_mut(&h) {
            c.cause.get_or_insert(cause);
        }
    }

    /// Sends DISCONNECT and starts T305 (U11 / N12).
    fn start_clear(&mut self, now: Tick, h: CallHandle, cause: CauseIe) {
        self.set_cause(h, cause.cause);
        self.send_call(h, MessageType::Disconnect, Some(Ie::Cause(cause.clone())));
        if let Some(c) = self.calls.get_mut(&h) {
            c.sent_cause = Some(cause);
            c.expiries = 0;
        }
        self.set_state(h, CallState::DisconnectRequest);
        self.set_timer(h, Timer::T305, now);
    }

    /// Sends RELEASE and starts T308 (U19 / N19).
    fn send_release(&mut self, now: Tick, h: CallHandle, cause: CauseIe) {
        self.set_cause(h, cause.cause);
        self.send_call(h, MessageType::Release, Some(Ie::Cause(cause.clone())));
        if let Some(c) = self.calls.get_mut(&h) {
            c.sent_cause = Some(cause);
            c.expiries = 0;
        }
        self.set_state(h, CallState::ReleaseRequest);
        self.set_timer(h, Timer::T308, now);
    }

    /// Removes a call (Null), frees its channel, or queues the channel for a maintenance
    /// restart with `maintenance`, and reports [`CallEvent::Released`].
    fn release_call(&mut self, h: CallHandle, maintenance: bool) {
        let Some(call) = self.calls.remove(&h) else {
            return;
        };
        if let Some(ch) = call.channel {
            if maintenance {
                self.channels.insert(ch, Chan::Restarting);
                self.restart_queue.push_back(Some(ch));
            } else {
                self.channels.insert(ch, Chan::Idle);
            }
        }
        let cause = call.cause.unwrap_or(Cause::NORMAL_UNSPECIFIED);
        self.event(CallEvent::Released { call: h, cause });
    }

    /// Releases locally every call on `channel` (all calls with a channel for `None`).
    fn clear_channels(&mut self, channel: Option<u8>) {
        let victims: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, c)| c.channel.is_some() && (channel.is_none() || c.channel == channel))
            .map(|(h, _)| *h)
            .collect();
        for h in victims {
            self.set_cause(h, Cause::TEMPORARY_FAILURE);
            self.release_call(h, false);
        }
    }

    fn request_restart(&mut self, now: Tick, channel: Option<u8>) {
        self.clear_channels(channel);
        for (&ch, st) in self.channels.iter_mut() {
            if channel.is_none_or(|c| c == ch) {
                *st = Chan::Restarting;
            }
        }
        if self.restart.is_some() {
            self.restart_queue.push_back(channel);
        } else {
            self.send_restart(now, channel, 1);
        }
    }

    fn send_restart(&mut self, now: Tick, channel: Option<u8>, sent: u8) {
        let class =
            if channel.is_some() { RestartClass::Indicated } else { RestartClass::AllInterfaces };
        self.send(Message::restart(class, channel.map(ChannelId::exclusive), false));
        self.restart = Some(RestartJob { channel, deadline: Some(now + self.cfg.t316_ms), sent });
    }

    fn finish_restart(&mut self, now: Tick, channel: Option<u8>, acknowledged: bool) {
        self.restart = None;
        let queued = self.restart_queue.clone();
        for (&ch, st) in self.channels.iter_mut() {
            let still = queued.iter().any(|q| q.is_none_or(|c| c == ch));
            if *st == Chan::Restarting && channel.is_none_or(|c| c == ch) && !still {
                *st = Chan::Idle;
            }
        }
        self.event(CallEvent::RestartDone { channel, acknowledged });
        if self.link_up {
            if let Some(next) = self.restart_queue.pop_front() {
                self.send_restart(now, next, 1);
            }
        }
    }
}

fn h_checked(calls: &BTreeMap<CallHandle, Call>, h: CallHandle) -> Result<CallHandle, CallError> {
    if calls.contains_key(&h) {
        Ok(h)
    } else {
        Err(CallError::UnknownCall)
    }
}

/// Fuzzing entry point: interprets `data` as a script of messages (arbitrary bytes) and
/// requests fed to a user stack and a network stack wired back to back, checking the
/// bookkeeping invariants after every step. Panics on a broken invariant.
pub fn call_fuzz_check(data: &[u8]) {
    let cfg = Q931Config { channels: vec![1, 2, 3, 16, 17], ..Q931Config::default() };
    let mut stacks = [Q931Stack::new(Side::User, cfg.clone()), Q931Stack::new(Side::Network, cfg)];
    let mut now: Tick = 0;
    for s in &mut stacks {
        s.link_up(now);
    }
    let mut i = 0;
    while i < data.len() {
        let op = data[i];
        let side = usize::from(op & 1);
        let arg = data.get(i + 1).copied().unwrap_or(0);
        i += 2;
        let handles: Vec<CallHandle> = stacks[side].calls().collect();
        let h = handles.get(usize::from(arg) % handles.len().max(1)).copied();
        let h = h.unwrap_or(CallHandle(u32::from(arg)));
        let s = &mut stacks[side];
        match op >> 1 & 0x0F {
            0 => {
                let len = usize::from(arg).min(data.len() - i.min(data.len()));
                let end = (i + len).min(data.len());
                s.receive(now, &data[i.min(data.len())..end]);
                i = end;
            }
            1 => {
                let channel = (arg & 0x80 != 0).then_some(arg & 0x1F);
                let params = CallParams {
                    called: "123".into(),
                    calling: None,
                    channel,
                    exclusive: arg & 0x40 != 0,
                    calling_restricted: arg & 0x20 != 0,
                    overlap: arg & 0x10 != 0,
                };
                let _ = s.setup(now, params);
            }
            2 => drop(s.proceeding(now, h)),
            3 => drop(s.alerting(now, h)),
            4 => drop(s.connect(now, h)),
            5 => drop(s.disconnect(now, h, Cause(arg & 0x7F))),
            6 => drop(s.restart(now, (arg & 0x80 != 0).then_some(arg & 0x1F))),
            7 => drop(s.status_enquiry(now, h)),
            8 => now += u64::from(arg) * 500,
            9 => s.link_down(now),
            10 => s.link_up(now),
            11 => drop(s.progress(now, h)),
            12 => drop(s.setup_ack(now, h)),
            13 => drop(s.information(now, h, "5", arg & 1 != 0)),
            _ => {}
        }
        // Deliver everything produced so far, dropping messages when op bit 5 is set.
        let lossy = op & 0x20 != 0;
        for _ in 0..64 {
            for s in &mut stacks {
                s.poll(now);
            }
            let mut moved = false;
            for from in 0..2 {
                while let Some(a) = stacks[from].poll_action() {
                    if let Q931Action::Send(b) = a {
                        moved = true;
                        if !lossy && stacks[1 - from].is_link_up() {
                            stacks[1 - from].receive(now, &b);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for s in &stacks {
            s.assert_invariants();
        }
    }
}
