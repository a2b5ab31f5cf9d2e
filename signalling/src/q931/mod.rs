//! Q.931 (ISDN PRI, EuroISDN/ETSI flavour) message and information-element codec, sans-IO.
//!
//! [`Message::decode`] turns a layer-3 frame (the LAPD I-frame payload) into a [`Message`]
//! of typed elements plus a list of element problems; [`Message::emit`] writes it back in
//! canonical order. [`check`] / [`reaction`] classify what Q.931 §5.8 says to do with a
//! received message. This module does no call control and keeps no state: the call state
//! machine and its timers live elsewhere and use this codec.
#![deny(unsafe_code)]

pub mod call;
mod cause;
mod check;
pub mod ie;
mod message;
mod number;

pub use cause::{Cause, CauseIe, Location};
pub use check::{check, mandatory_ies, reaction, Direction, Problem, ProblemKind, Reaction};
pub use ie::{
    BearerCapability, CalledNumber, ChannelId, ChannelSelection, Ie, IeError, LayerInfo,
    PartyNumber, Presentation, ProgressIndicator, RedirectingNumber, RestartClass,
};
pub use message::{CallRef, Decoded, IeProblem, Message, MessageType, PROTOCOL_DISCRIMINATOR};

/// Why a frame is not a usable Q.931 message. Q.931 §5.8.1–5.8.3.1: ignore it, send nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Q931Error {
    /// Fewer octets than discriminator, call reference and message type need.
    #[error("message too short ({0} octets)")]
    TooShort(usize),
    /// The protocol discriminator is not 0x08.
    #[error("protocol discriminator {0:#04x} is not Q.931 (0x08)")]
    ProtocolDiscriminator(u8),
    /// The call reference length octet has bits 8-5 set or announces more than 2 octets.
    #[error("call reference length octet {0:#04x} not supported")]
    CallRefLength(u8),
}

/// Fuzzing entry point: parse; if accepted, emit, re-parse and require the same message
/// and canonical bytes; run the checks both ways. Panics on any broken invariant.
pub fn fuzz_check(data: &[u8]) {
    let Ok(first) = Message::decode(data) else {
        return;
    };
    let bytes = first.message.to_bytes();
    let second = Message::decode(&bytes).expect("re-emitted message must parse");
    assert_eq!(first.message, second.message, "emit/parse round trip changed the message");
    assert_eq!(second.message.to_bytes(), bytes, "emit is not canonical");
    for dir in [Direction::NetworkToUser, Direction::UserToNetwork] {
        let problems = check(&first, dir);
        if problems.is_empty() {
            assert_eq!(reaction(&first, dir), Reaction::Proceed);
        }
        let _ = reaction(&second, dir);
    }
}
