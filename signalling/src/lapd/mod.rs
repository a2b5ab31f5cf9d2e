//! LAPD, the ISDN D-channel data link layer (ITU-T Q.921), for E1 PRI, sans-IO.
//!
//! - [`frame`]: the wire format of one frame (address, control, information field), as the
//!   HDLC layer or the D-channel SOCK_SEQPACKET socket delivers it: no flags, no FCS.
//! - [`link`]: the data link entity of one SAPI/TEI (PRI: SAPI 0, TEI 0) for either side of the
//!   interface: establishment, acknowledged transfer with window k, timers T200/T203,
//!   timer recovery, REJ, RNR, release and the MDL error indications.
//! - [`fuzz`]: invariant checks used by the cargo-fuzz target and the corpus replay test.
//!
//! It does not do HDLC framing, TEI management (not needed on PRI: the TEI is fixed at 0) or
//! XID parameter negotiation, and it never reads a clock: time is the caller's `now` in ms.

pub mod frame;
pub mod fuzz;
pub mod link;

#[cfg(test)]
mod tests;

pub use frame::{
    Address, CommandResponse, Frame, FrameKind, LapdError, Role, Supervisory, Unnumbered,
    DEFAULT_N201,
};
pub use fuzz::fuzz_check;
pub use link::{DataLink, LinkAction, LinkConfig, LinkSnapshot, LinkState, LinkTimer, MdlError};
