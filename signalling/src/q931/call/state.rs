//! Call states and their Q.931 numbering on each side (Q.931 §2, user U0–U25, network N0–N25).

use super::Side;

/// The state of one call, from this stack's point of view.
///
/// "Outgoing" states belong to calls this stack originated (it sent SETUP), "incoming" ones to
/// calls it received. [`CallState::q931_value`] gives the number Q.931 uses on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    /// No call (U0/N0). Calls in this state are removed, so this is only reported for them.
    Null,
    /// We sent SETUP, no answer yet (U1 / N6), T303 running.
    CallInitiated,
    /// CALL PROCEEDING received (U3 / N9), T310 running.
    OutgoingProceeding,
    /// ALERTING received (U4 / N7).
    CallDelivered,
    /// SETUP received, nothing sent yet (U6 / N1).
    CallPresent,
    /// Outgoing call in overlap sending: SETUP ACKNOWLEDGE received, more digits go in
    /// INFORMATION messages (U2 / N25), T304 running.
    OverlapSending,
    /// Incoming call in overlap receiving: we sent SETUP ACKNOWLEDGE and collect INFORMATION
    /// digits (U25 / N2), T302 running.
    OverlapReceiving,
    /// We sent CALL PROCEEDING (U9 / N3).
    IncomingProceeding,
    /// We sent ALERTING (U7 / N4).
    CallReceived,
    /// User side: we sent CONNECT and wait for CONNECT ACKNOWLEDGE (U8), T313 running.
    ConnectRequest,
    /// Active (U10 / N10). T309 runs here while the data link is down.
    Active,
    /// We sent DISCONNECT (U11 / N12), T305 running.
    DisconnectRequest,
    /// We sent RELEASE (U19 / N19), T308 running.
    ReleaseRequest,
}

impl CallState {
    /// The Q.931 call state value this stack reports in STATUS (Call state IE).
    pub fn q931_value(self, side: Side) -> u8 {
        use CallState as S;
        match (side, self) {
            (_, S::Null) => 0,
            (Side::User, S::CallInitiated) => 1,
            (Side::User, S::OverlapSending) => 2,
            (Side::User, S::OverlapReceiving) => 25,
            (Side::Network, S::OverlapSending) => 25,
            (Side::Network, S::OverlapReceiving) => 2,
            (Side::User, S::OutgoingProceeding) => 3,
            (Side::User, S::CallDelivered) => 4,
            (Side::User, S::CallPresent) => 6,
            (Side::User, S::IncomingProceeding) => 9,
            (Side::User, S::CallReceived) => 7,
            (Side::User, S::ConnectRequest) => 8,
            (Side::User, S::DisconnectRequest) => 11,
            (Side::Network, S::CallInitiated) => 6,
            (Side::Network, S::OutgoingProceeding) => 9,
            (Side::Network, S::CallDelivered) => 7,
            (Side::Network, S::CallPresent) => 1,
            (Side::Network, S::IncomingProceeding) => 3,
            (Side::Network, S::CallReceived) => 4,
            (Side::Network, S::ConnectRequest | S::Active) => 10,
            (Side::Network, S::DisconnectRequest) => 12,
            (Side::User, S::Active) => 10,
            (_, S::ReleaseRequest) => 19,
        }
    }

    /// True while the call is being cleared (DISCONNECT or RELEASE sent).
    pub fn is_clearing(self) -> bool {
        matches!(self, CallState::DisconnectRequest | CallState::ReleaseRequest)
    }
}

/// Q.931 states (either side) of a call originated by the user side, before it is active.
const USER_ORIGINATED: &[u8] = &[1, 2, 3, 4];
/// Q.931 states (either side) of a call originated by the network side, before it is active.
const NETWORK_ORIGINATED: &[u8] = &[6, 7, 8, 9, 25];

/// Q.931 §5.8.11: whether the peer's reported state `peer` can coexist with our `ours` for a
/// call originated by the user side (`user_originated`) or by the network side. States
/// differing only by messages in flight are compatible; a null peer is handled by the caller.
pub(crate) fn compatible(ours: CallState, peer: u8, user_originated: bool) -> bool {
    if ours == CallState::ReleaseRequest {
        return true;
    }
    let own_set = if user_originated { USER_ORIGINATED } else { NETWORK_ORIGINATED };
    match peer {
        10 => true,
        11 | 12 | 19 => true,
        p if own_set.contains(&p) => !matches!(ours, CallState::Active) || p != 1 && p != 6,
        _ => false,
    }
}
