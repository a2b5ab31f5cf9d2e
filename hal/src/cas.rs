//! Channel associated signalling: the ABCD bits of an E1 CAS timeslot.

use serde::Serialize;
use std::fmt;

/// The four CAS signalling bits of one channel, A in bit 3 down to D in bit 0
/// (the layout of DAHDI's `DAHDI_ABIT`..`DAHDI_DBIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Abcd(u8);

impl Abcd {
    /// Bit A.
    pub const A: u8 = 0b1000;
    /// Bit B.
    pub const B: u8 = 0b0100;
    /// Bit C.
    pub const C: u8 = 0b0010;
    /// Bit D.
    pub const D: u8 = 0b0001;

    /// Bits from the low nibble of `bits`; the high nibble is ignored.
    pub fn new(bits: u8) -> Self {
        Abcd(bits & 0x0F)
    }

    /// The four bits in the low nibble.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether bit A is set.
    pub fn a(self) -> bool {
        self.0 & Self::A != 0
    }

    /// Whether bit B is set.
    pub fn b(self) -> bool {
        self.0 & Self::B != 0
    }
}

impl fmt::Display for Abcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04b}", self.0)
    }
}
