//! R2 line signalling: the ABCD bits of an E1 CAS timeslot, per channel, both directions.
//!
//! Only bits A and B carry meaning; C and D are sent fixed ([`super::R2Config::cd_bits`],
//! `11` for China) and ignored on receipt. The meanings (OpenR2, China No.1):
//!
//! | state | forward AB (caller) | backward AB (called) |
//! |---|---|---|
//! | idle | 10 | 10 |
//! | seize | 00 | 10 |
//! | seize acknowledge | 00 | 11 |
//! | answer | 00 | 01 |
//! | clear back | 00 | 11 |
//! | clear forward | 10 | 01 or 11 |
//! | release guard / idle | 10 | 10 |
//! | blocked | 10 | 11 |
//! | forced release | — | 00 |
//!
//! [`R2Line`] keeps the debounced received AB, the sent AB and the line state. It does not
//! know about MF registers or call control: [`R2Line::on_rx`] and the request methods return a
//! [`LineOutcome`] that the channel ([`super::R2Channel`]) acts on.

use cardpbx_hal::{Abcd, Tick};
use serde::Serialize;

/// AB = 10: idle, clear forward, release guard.
pub const AB_IDLE: u8 = 0b10;
/// AB = 00: seize (forward), forced release (backward).
pub const AB_SEIZE: u8 = 0b00;
/// AB = 11: seize acknowledge, clear back, blocked (backward).
pub const AB_ACK: u8 = 0b11;
/// AB = 01: answer (backward).
pub const AB_ANSWER: u8 = 0b01;

/// The AB pair (A in bit 1, B in bit 0) of a received ABCD nibble.
pub fn ab_of(abcd: Abcd) -> u8 {
    abcd.bits() >> 2
}

/// The ABCD nibble carrying `ab` (A in bit 1, B in bit 0) and the fixed `cd` bits.
pub fn abcd_of(ab: u8, cd: u8) -> Abcd {
    Abcd::new(((ab & 0b11) << 2) | (cd & 0b11))
}

/// Where the line of a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// Both ends idle (we send 10).
    Idle,
    /// We block the circuit (we send 11 while the far end is idle).
    Blocked,
    /// The far end blocks the circuit (it sends 11); we may not seize.
    RemoteBlocked,
    /// Outgoing: we sent seize (00) and wait for the seize acknowledge.
    SeizeSent,
    /// Outgoing: seize acknowledged; register signalling, then waiting for answer.
    OutSeized,
    /// Outgoing: the far end answered.
    OutAnswered,
    /// Outgoing: we sent clear forward (10) and wait for the far end to return to idle.
    OutClearing,
    /// Incoming: seized, we acknowledged (we send 11); register signalling and alerting.
    InSeized,
    /// Incoming: we answered (we send 01).
    InAnswered,
    /// Incoming: we sent clear back (11) after answer and wait for clear forward.
    InClearBack,
    /// Incoming: we sent forced release (00) and wait for clear forward.
    InForcedRelease,
    /// Incoming: clear forward seen, we send idle (10) for the release-guard time.
    ReleaseGuard,
}

impl LineState {
    /// Whether the channel carries (or is setting up or tearing down) a call.
    pub fn in_call(self) -> bool {
        !matches!(self, LineState::Idle | LineState::Blocked | LineState::RemoteBlocked)
    }

    /// The AB pair we send in this state (A in bit 1, B in bit 0).
    pub fn tx_ab(self) -> u8 {
        match self {
            LineState::Idle
            | LineState::RemoteBlocked
            | LineState::OutClearing
            | LineState::ReleaseGuard => AB_IDLE,
            LineState::SeizeSent
            | LineState::OutSeized
            | LineState::OutAnswered
            | LineState::InForcedRelease => AB_SEIZE,
            LineState::Blocked | LineState::InSeized | LineState::InClearBack => AB_ACK,
            LineState::InAnswered => AB_ANSWER,
        }
    }
}

/// What a line change means for the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineOutcome {
    /// Nothing of interest.
    None,
    /// Outgoing: the far end acknowledged our seizure; start the outgoing register.
    SeizeAcked,
    /// Incoming: the far end seized the circuit; we acknowledged; start the incoming register.
    Seized,
    /// Glare: both ends seized and we have priority; we keep waiting for the acknowledge.
    GlareWon,
    /// Glare: both ends seized and the far end has priority: our outgoing attempt is dropped
    /// and the circuit is now incoming (seize acknowledge sent).
    GlareLost,
    /// Outgoing: the far end answered.
    Answered,
    /// Outgoing: the far end cleared back (called party hung up); we sent clear forward.
    ClearBack,
    /// Outgoing: the far end forced release (00); we sent clear forward.
    ForcedRelease,
    /// Incoming: the far end cleared forward (caller hung up); release guard started.
    ClearForward,
    /// The call is over on the line: idle (outgoing) or release guard (incoming) reached.
    Released,
    /// The far end started blocking the circuit.
    RemoteBlocked,
    /// The far end stopped blocking the circuit.
    RemoteUnblocked,
    /// An AB pattern that makes no sense in this state. `cleared` says whether the recovery
    /// was to clear the call (otherwise the pattern is ignored).
    Unexpected {
        /// The received AB pair.
        ab: u8,
        /// The state it arrived in.
        state: LineState,
        /// Whether the call was cleared as recovery.
        cleared: bool,
    },
}

/// The ABCD persistence check: a received pattern counts only once it has stayed unchanged
/// for the debounce time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbcdDebouncer {
    stable: u8,
    pending: Option<(u8, Tick)>,
    persist_ms: u32,
}

impl AbcdDebouncer {
    /// A debouncer that takes `initial` (AB) as the current pattern.
    pub fn new(initial: u8, persist_ms: u32) -> Self {
        AbcdDebouncer { stable: initial, pending: None, persist_ms }
    }

    /// The debounced AB pair.
    pub fn stable(&self) -> u8 {
        self.stable
    }

    /// Feed a received AB pair at `now`; returns the new stable AB if it changed right away
    /// (persistence 0).
    pub fn input(&mut self, now: Tick, ab: u8) -> Option<u8> {
        if ab == self.stable {
            self.pending = None;
            return None;
        }
        match self.pending {
            Some((p, _)) if p == ab => {}
            _ => self.pending = Some((ab, now.saturating_add(u64::from(self.persist_ms)))),
        }
        self.poll(now)
    }

    /// The new stable AB pair if a pending pattern has persisted long enough by `now`.
    pub fn poll(&mut self, now: Tick) -> Option<u8> {
        match self.pending {
            Some((ab, at)) if at <= now => {
                self.pending = None;
                self.stable = ab;
                Some(ab)
            }
            _ => None,
        }
    }

    /// When a pending pattern becomes stable.
    pub fn deadline(&self) -> Option<Tick> {
        self.pending.map(|(_, at)| at)
    }
}

/// The line state machine of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2Line {
    state: LineState,
    /// The far end's debounced AB.
    rx: AbcdDebouncer,
    /// Whether we have glare priority on this circuit.
    glare_priority: bool,
    /// Block the circuit as soon as it is idle.
    block_requested: bool,
    /// After a forced return to idle: ignore the far end until it shows idle (10), so that two
    /// ends that gave up on each other do not take each other's stale bits as a new seizure.
    await_idle: bool,
}

impl R2Line {
    /// An idle line.
    pub fn new(debounce_ms: u32, glare_priority: bool) -> Self {
        R2Line {
            state: LineState::Idle,
            rx: AbcdDebouncer::new(AB_IDLE, debounce_ms),
            glare_priority,
            block_requested: false,
            await_idle: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> LineState {
        self.state
    }

    /// The far end's debounced AB pair.
    pub fn rx_ab(&self) -> u8 {
        self.rx.stable()
    }

    /// When the debouncer next needs a poll.
    pub fn deadline(&self) -> Option<Tick> {
        self.rx.deadline()
    }

    /// Whether local blocking is requested (in force when idle).
    pub fn block_requested(&self) -> bool {
        self.block_requested
    }

    /// Feed a raw received AB pair; returns the new debounced AB, if it changed.
    pub fn input(&mut self, now: Tick, ab: u8) -> Option<u8> {
        self.rx.input(now, ab)
    }

    /// Run the debouncer; returns the new debounced AB, if it changed.
    pub fn poll_rx(&mut self, now: Tick) -> Option<u8> {
        self.rx.poll(now)
    }

    fn unexpected(&mut self, ab: u8, clear_to: Option<LineState>) -> LineOutcome {
        let state = self.state;
        if let Some(s) = clear_to {
            self.state = s;
        }
        LineOutcome::Unexpected { ab, state, cleared: clear_to.is_some() }
    }

    /// React to a change of the debounced received AB pair (or re-evaluate it after leaving a
    /// state that ignored it).
    pub fn on_rx(&mut self) -> LineOutcome {
        let ab = self.rx.stable();
        use LineState as S;
        if self.await_idle {
            if ab != AB_IDLE && !self.state.in_call() {
                return LineOutcome::None;
            }
            self.await_idle = false;
        }
        match (self.state, ab) {
            (S::Idle | S::RemoteBlocked, AB_SEIZE) => {
                self.state = S::InSeized;
                LineOutcome::Seized
            }
            (S::Idle, AB_ACK) => {
                self.state = S::RemoteBlocked;
                LineOutcome::RemoteBlocked
            }
            (S::RemoteBlocked, AB_IDLE) => {
                self.state = S::Idle;
                LineOutcome::RemoteUnblocked
            }
            (S::Idle | S::RemoteBlocked, AB_IDLE | AB_ACK) => LineOutcome::None,
            (S::Blocked, AB_IDLE | AB_ACK) => LineOutcome::None,
            (S::Idle | S::RemoteBlocked | S::Blocked, _) => self.unexpected(ab, None),

            (S::SeizeSent, AB_ACK) => {
                self.state = S::OutSeized;
                LineOutcome::SeizeAcked
            }
            (S::SeizeSent, AB_SEIZE) => {
                if self.glare_priority {
                    LineOutcome::GlareWon
                } else {
                    self.state = S::InSeized;
                    LineOutcome::GlareLost
                }
            }
            (S::SeizeSent, AB_IDLE) => LineOutcome::None,
            (S::SeizeSent, _) => self.unexpected(ab, Some(S::OutClearing)),

            (S::OutSeized, AB_ANSWER) => {
                self.state = S::OutAnswered;
                LineOutcome::Answered
            }
            (S::OutSeized, AB_ACK) | (S::OutAnswered, AB_ANSWER) => LineOutcome::None,
            (S::OutAnswered, AB_ACK) => {
                self.state = S::OutClearing;
                LineOutcome::ClearBack
            }
            (S::OutSeized | S::OutAnswered, AB_SEIZE) => {
                self.state = S::OutClearing;
                LineOutcome::ForcedRelease
            }
            (S::OutSeized | S::OutAnswered, _) => self.unexpected(ab, Some(S::OutClearing)),

            (S::OutClearing, AB_IDLE) => {
                self.state = S::Idle;
                LineOutcome::Released
            }
            (S::OutClearing, _) => LineOutcome::None,

            (S::InSeized | S::InAnswered, AB_IDLE) => {
                self.state = S::ReleaseGuard;
                LineOutcome::ClearForward
            }
            (S::InClearBack | S::InForcedRelease, AB_IDLE) => {
                self.state = S::ReleaseGuard;
                LineOutcome::Released
            }
            (S::InSeized | S::InAnswered | S::InClearBack | S::InForcedRelease, AB_SEIZE) => {
                LineOutcome::None
            }
            (S::InSeized | S::InAnswered | S::InClearBack | S::InForcedRelease, _) => {
                self.unexpected(ab, None)
            }

            (S::ReleaseGuard, _) => LineOutcome::None,
        }
    }

    /// Outgoing seizure. Returns false (and does nothing) unless the line is idle with the far
    /// end idle.
    pub fn seize(&mut self) -> bool {
        if self.state == LineState::Idle && self.rx.stable() == AB_IDLE && !self.block_requested {
            self.state = LineState::SeizeSent;
            true
        } else {
            false
        }
    }

    /// Incoming answer. Returns false unless the line is incoming and seized.
    pub fn answer(&mut self) -> bool {
        if self.state == LineState::InSeized {
            self.state = LineState::InAnswered;
            true
        } else {
            false
        }
    }

    /// Local hang-up: clear forward (outgoing), clear back (incoming, answered) or forced
    /// release (incoming, not answered). Returns whether the state changed.
    pub fn clear(&mut self) -> bool {
        use LineState as S;
        let next = match self.state {
            S::SeizeSent | S::OutSeized | S::OutAnswered => S::OutClearing,
            S::InAnswered => S::InClearBack,
            S::InSeized => S::InForcedRelease,
            _ => return false,
        };
        self.state = next;
        true
    }

    /// Drop a clearing call back to idle after the release timer ran out; the far end is
    /// then ignored until it shows idle.
    pub fn force_idle(&mut self) {
        self.state = LineState::Idle;
        self.await_idle = true;
    }

    /// End the release guard: idle (or blocked, if requested).
    pub fn guard_over(&mut self) {
        if self.state == LineState::ReleaseGuard {
            self.state = LineState::Idle;
        }
    }

    /// Request local blocking; it takes effect when the line is idle.
    pub fn block(&mut self) {
        self.block_requested = true;
        if matches!(self.state, LineState::Idle | LineState::RemoteBlocked) {
            self.state = LineState::Blocked;
        }
    }

    /// Lift local blocking.
    pub fn unblock(&mut self) {
        self.block_requested = false;
        if self.state == LineState::Blocked {
            self.state = LineState::Idle;
        }
    }

    /// Apply a pending block once the line has gone idle.
    pub fn settle(&mut self) {
        if self.block_requested && matches!(self.state, LineState::Idle | LineState::RemoteBlocked)
        {
            self.state = LineState::Blocked;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abcd_packing_uses_cd() {
        assert_eq!(abcd_of(AB_IDLE, 0b11).bits(), 0b1011);
        assert_eq!(abcd_of(AB_SEIZE, 0b01).bits(), 0b0001);
        assert_eq!(ab_of(Abcd::new(0b0111)), AB_ANSWER);
    }

    #[test]
    fn debouncer_needs_persistence() {
        let mut d = AbcdDebouncer::new(AB_IDLE, 20);
        assert_eq!(d.input(100, AB_SEIZE), None);
        assert_eq!(d.deadline(), Some(120));
        assert_eq!(d.poll(119), None);
        // A glitch back to the stable value cancels.
        assert_eq!(d.input(110, AB_IDLE), None);
        assert_eq!(d.poll(130), None);
        assert_eq!(d.input(200, AB_SEIZE), None);
        assert_eq!(d.input(210, AB_SEIZE), None, "same pattern keeps its start");
        assert_eq!(d.poll(220), Some(AB_SEIZE));
        let mut z = AbcdDebouncer::new(AB_IDLE, 0);
        assert_eq!(z.input(5, AB_ACK), Some(AB_ACK));
    }

    #[test]
    fn tx_patterns_follow_the_table() {
        assert_eq!(LineState::Idle.tx_ab(), AB_IDLE);
        assert_eq!(LineState::SeizeSent.tx_ab(), AB_SEIZE);
        assert_eq!(LineState::InSeized.tx_ab(), AB_ACK);
        assert_eq!(LineState::InAnswered.tx_ab(), AB_ANSWER);
        assert_eq!(LineState::Blocked.tx_ab(), AB_ACK);
        assert_eq!(LineState::InForcedRelease.tx_ab(), AB_SEIZE);
    }
}
