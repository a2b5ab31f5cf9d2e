//! LAPD frame wire format (Q.921 §2–3): address, control and information field of one frame.
//!
//! The format here is a frame as the HDLC layer hands it over: flags, zero-bit stuffing and FCS
//! are already removed. That is also the format of the D-channel SOCK_SEQPACKET socket (one
//! frame per message). Only the modulo-128 (extended) control field is supported, as Q.921
//! requires for multiple-frame operation.
//!
//! [`Frame::parse`] is strict: a frame it accepts re-emits to exactly the same bytes.

use thiserror::Error;

/// Largest information field the parser accepts by default (Q.921 N201 = 260 octets).
pub const DEFAULT_N201: usize = 260;
/// Length of the address field in octets.
pub const ADDRESS_LEN: usize = 2;
/// The broadcast TEI (Q.921 §3.3.4.2).
pub const TEI_BROADCAST: u8 = 127;
/// Largest SAPI value (6 bits).
pub const SAPI_MAX: u8 = 63;
/// Largest TEI value (7 bits).
pub const TEI_MAX: u8 = 127;
/// Sequence numbers N(S)/N(R) count modulo this value.
pub const MODULUS: u8 = 128;

/// Octet offsets and bit masks of the frame header.
mod field {
    /// EA bit (bit 1) of an address octet.
    pub const EA: u8 = 0x01;
    /// C/R bit of address octet 1.
    pub const CR: u8 = 0x02;
    /// Control octet 1: I frame when bit 1 is 0.
    pub const I_MASK: u8 = 0x01;
    /// Control octet 1: S frame when bits 1-2 are `01`, U frame when `11`.
    pub const SU_MASK: u8 = 0x03;
    /// S/U discriminators.
    pub const S_BITS: u8 = 0x01;
    /// Poll/final bit of a U control octet (bit 5).
    pub const U_PF: u8 = 0x10;
    /// Poll/final bit of control octet 2 of an I or S frame (bit 1).
    pub const PF2: u8 = 0x01;
    /// Offset of the first control octet.
    pub const CONTROL: usize = 2;
}

/// Which side of the user-network interface this data link entity is on (Q.921 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// User side (CPE, TE): sends commands with C/R = 0, responses with C/R = 1.
    User,
    /// Network side (NT, exchange): sends commands with C/R = 1, responses with C/R = 0.
    Network,
}

/// Whether a frame is a command or a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandResponse {
    /// A command frame (SABME, DISC, I, UI, or an S frame sent as command).
    Command,
    /// A response frame (UA, DM, FRMR, or an S frame sent as response).
    Response,
}

impl Role {
    /// The role of the entity at the other end of the link.
    pub fn peer(self) -> Role {
        match self {
            Role::User => Role::Network,
            Role::Network => Role::User,
        }
    }

    /// The C/R bit this role puts in a frame it sends as `kind`.
    pub fn cr_for(self, kind: CommandResponse) -> bool {
        matches!(
            (self, kind),
            (Role::Network, CommandResponse::Command) | (Role::User, CommandResponse::Response)
        )
    }

    /// What a received frame with C/R bit `cr` is, when this role is the receiver.
    pub fn classify(self, cr: bool) -> CommandResponse {
        if self.peer().cr_for(CommandResponse::Command) == cr {
            CommandResponse::Command
        } else {
            CommandResponse::Response
        }
    }
}

/// The supervisory functions of Q.921 Table 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Supervisory {
    /// Receive ready (control octet 1 = 0x01).
    Rr,
    /// Receive not ready (0x05).
    Rnr,
    /// Reject (0x09).
    Rej,
}

impl Supervisory {
    fn code(self) -> u8 {
        match self {
            Supervisory::Rr => 0x01,
            Supervisory::Rnr => 0x05,
            Supervisory::Rej => 0x09,
        }
    }

    fn from_code(code: u8) -> Option<Supervisory> {
        match code {
            0x01 => Some(Supervisory::Rr),
            0x05 => Some(Supervisory::Rnr),
            0x09 => Some(Supervisory::Rej),
            _ => None,
        }
    }
}

/// The unnumbered commands and responses LAPD uses (Q.921 Table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unnumbered {
    /// Set asynchronous balanced mode extended (0x6F, P bit 0x10).
    Sabme,
    /// Unnumbered acknowledgement (0x63).
    Ua,
    /// Disconnect (0x43).
    Disc,
    /// Disconnected mode (0x0F).
    Dm,
    /// Unnumbered information (0x03).
    Ui,
    /// Frame reject (0x87).
    Frmr,
    /// Exchange identification (0xAF).
    Xid,
}

impl Unnumbered {
    /// Control octet with the P/F bit clear.
    fn code(self) -> u8 {
        match self {
            Unnumbered::Sabme => 0x6F,
            Unnumbered::Ua => 0x63,
            Unnumbered::Disc => 0x43,
            Unnumbered::Dm => 0x0F,
            Unnumbered::Ui => 0x03,
            Unnumbered::Frmr => 0x87,
            Unnumbered::Xid => 0xAF,
        }
    }

    fn from_code(code: u8) -> Option<Unnumbered> {
        Some(match code {
            0x6F => Unnumbered::Sabme,
            0x63 => Unnumbered::Ua,
            0x43 => Unnumbered::Disc,
            0x0F => Unnumbered::Dm,
            0x03 => Unnumbered::Ui,
            0x87 => Unnumbered::Frmr,
            0xAF => Unnumbered::Xid,
            _ => return None,
        })
    }

    /// Whether this frame type may carry an information field.
    pub fn may_carry_info(self) -> bool {
        matches!(self, Unnumbered::Ui | Unnumbered::Frmr | Unnumbered::Xid)
    }

    /// Whether Q.921 fixes this frame as a command or a response (`None`: either, XID).
    pub fn direction(self) -> Option<CommandResponse> {
        match self {
            Unnumbered::Sabme | Unnumbered::Disc | Unnumbered::Ui => Some(CommandResponse::Command),
            Unnumbered::Ua | Unnumbered::Dm | Unnumbered::Frmr => Some(CommandResponse::Response),
            Unnumbered::Xid => None,
        }
    }
}

/// Format and control-field contents of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Information frame: send sequence `ns`, receive sequence `nr` (0..=127), poll bit `p`.
    I {
        /// N(S), send sequence number.
        ns: u8,
        /// N(R), receive sequence number (next expected from the peer).
        nr: u8,
        /// Poll bit.
        p: bool,
    },
    /// Supervisory frame.
    S {
        /// RR, RNR or REJ.
        kind: Supervisory,
        /// N(R), receive sequence number.
        nr: u8,
        /// Poll (command) or final (response) bit.
        pf: bool,
    },
    /// Unnumbered frame.
    U {
        /// Which unnumbered command/response.
        kind: Unnumbered,
        /// Poll (command) or final (response) bit.
        pf: bool,
    },
}

impl FrameKind {
    /// Length of the control field: 2 octets for I and S frames, 1 for U frames.
    pub fn control_len(&self) -> usize {
        match self {
            FrameKind::U { .. } => 1,
            _ => 2,
        }
    }

    /// Whether Q.921 fixes this frame as a command or a response (`None`: either).
    pub fn direction(&self) -> Option<CommandResponse> {
        match self {
            FrameKind::I { .. } => Some(CommandResponse::Command),
            FrameKind::S { .. } => None,
            FrameKind::U { kind, .. } => kind.direction(),
        }
    }

    /// The poll/final bit.
    pub fn pf(&self) -> bool {
        match *self {
            FrameKind::I { p, .. } => p,
            FrameKind::S { pf, .. } | FrameKind::U { pf, .. } => pf,
        }
    }
}

/// Why a byte string is not a valid LAPD frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum LapdError {
    /// Fewer octets than the address plus the control field of the frame type need.
    #[error("frame too short: {got} octets, need {needed}")]
    TooShort {
        /// Octets present.
        got: usize,
        /// Octets the frame type needs at least.
        needed: usize,
    },
    /// Address octet 1 has EA = 1 or octet 2 has EA = 0 (LAPD uses a 2-octet address).
    #[error("address extension bits wrong: {0:#04x} {1:#04x}")]
    BadAddressExtension(u8, u8),
    /// The control field is not one LAPD defines (MDL-ERROR L).
    #[error("undefined control field {0:#04x}")]
    UndefinedControl(u8),
    /// An information field on a frame type that must not carry one (MDL-ERROR M).
    #[error("information field not permitted on this frame type")]
    InfoNotPermitted,
    /// A supervisory frame longer than its 4 octets (MDL-ERROR N).
    #[error("supervisory frame has wrong length {0}")]
    WrongLength(usize),
    /// An information field longer than N201 (MDL-ERROR O).
    #[error("information field of {len} octets exceeds N201 = {max}")]
    InfoTooLong {
        /// Length of the information field.
        len: usize,
        /// The N201 limit in force.
        max: usize,
    },
}

/// The address field alone, readable before the rest of the frame is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// Service access point identifier (0..=63).
    pub sapi: u8,
    /// Terminal endpoint identifier (0..=127).
    pub tei: u8,
    /// Command/response bit.
    pub cr: bool,
}

impl Address {
    /// Decode the two address octets at the start of `bytes`.
    ///
    /// # Errors
    /// [`LapdError::TooShort`] below 2 octets, [`LapdError::BadAddressExtension`] when the EA
    /// bits are not 0 then 1.
    pub fn parse(bytes: &[u8]) -> Result<Address, LapdError> {
        let [a1, a2, ..] = *bytes else {
            return Err(LapdError::TooShort { got: bytes.len(), needed: ADDRESS_LEN });
        };
        if a1 & field::EA != 0 || a2 & field::EA != 1 {
            return Err(LapdError::BadAddressExtension(a1, a2));
        }
        Ok(Address { sapi: a1 >> 2, tei: a2 >> 1, cr: a1 & field::CR != 0 })
    }

    /// The two address octets (out-of-range SAPI/TEI values are truncated to their field width).
    pub fn to_bytes(self) -> [u8; 2] {
        [
            ((self.sapi & SAPI_MAX) << 2) | if self.cr { field::CR } else { 0 },
            ((self.tei & TEI_MAX) << 1) | field::EA,
        ]
    }
}

/// One LAPD frame, borrowing its information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame<'a> {
    /// Service access point identifier (0 = call control, 63 = management).
    pub sapi: u8,
    /// Terminal endpoint identifier (0 on PRI).
    pub tei: u8,
    /// Command/response bit as on the wire; see [`Role::classify`].
    pub cr: bool,
    /// Frame type and control field.
    pub kind: FrameKind,
    /// Information field (empty for frames that carry none).
    pub info: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parse one frame (no flags, no FCS) with the default N201 of 260 octets.
    ///
    /// # Errors
    /// See [`Frame::parse_with_n201`].
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, LapdError> {
        Frame::parse_with_n201(bytes, DEFAULT_N201)
    }

    /// Parse one frame, rejecting information fields longer than `n201`.
    ///
    /// # Errors
    /// A [`LapdError`] naming the first defect found: address, then control field, then length.
    pub fn parse_with_n201(bytes: &'a [u8], n201: usize) -> Result<Frame<'a>, LapdError> {
        let addr = Address::parse(bytes)?;
        let Some(&c1) = bytes.get(field::CONTROL) else {
            return Err(LapdError::TooShort { got: bytes.len(), needed: 3 });
        };
        let (kind, info) = if c1 & field::I_MASK == 0 {
            let Some(&c2) = bytes.get(field::CONTROL + 1) else {
                return Err(LapdError::TooShort { got: bytes.len(), needed: 4 });
            };
            let kind = FrameKind::I { ns: c1 >> 1, nr: c2 >> 1, p: c2 & field::PF2 != 0 };
            (kind, &bytes[4..])
        } else if c1 & field::SU_MASK == field::S_BITS {
            let kind = Supervisory::from_code(c1).ok_or(LapdError::UndefinedControl(c1))?;
            let Some(&c2) = bytes.get(field::CONTROL + 1) else {
                return Err(LapdError::TooShort { got: bytes.len(), needed: 4 });
            };
            if bytes.len() != 4 {
                return Err(LapdError::WrongLength(bytes.len()));
            }
            let kind = FrameKind::S { kind, nr: c2 >> 1, pf: c2 & field::PF2 != 0 };
            (kind, &bytes[4..])
        } else {
            let kind =
                Unnumbered::from_code(c1 & !field::U_PF).ok_or(LapdError::UndefinedControl(c1))?;
            let info = &bytes[3..];
            if !info.is_empty() && !kind.may_carry_info() {
                return Err(LapdError::InfoNotPermitted);
            }
            let kind = FrameKind::U { kind, pf: c1 & field::U_PF != 0 };
            (kind, info)
        };
        if info.len() > n201 {
            return Err(LapdError::InfoTooLong { len: info.len(), max: n201 });
        }
        Ok(Frame { sapi: addr.sapi, tei: addr.tei, cr: addr.cr, kind, info })
    }

    /// The address field of this frame.
    pub fn address(&self) -> Address {
        Address { sapi: self.sapi, tei: self.tei, cr: self.cr }
    }

    /// Octets [`Frame::emit`] appends.
    pub fn buffer_len(&self) -> usize {
        ADDRESS_LEN + self.kind.control_len() + self.info.len()
    }

    /// Append the frame's octets to `out`.
    ///
    /// Values wider than their field (SAPI > 63, TEI > 127, N(S)/N(R) > 127) are truncated to
    /// the field width; the information field is written as is, whatever the frame type.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.reserve(self.buffer_len());
        out.extend_from_slice(&self.address().to_bytes());
        match self.kind {
            FrameKind::I { ns, nr, p } => {
                out.push((ns & 0x7F) << 1);
                out.push(((nr & 0x7F) << 1) | u8::from(p));
            }
            FrameKind::S { kind, nr, pf } => {
                out.push(kind.code());
                out.push(((nr & 0x7F) << 1) | u8::from(pf));
            }
            FrameKind::U { kind, pf } => {
                out.push(kind.code() | if pf { field::U_PF } else { 0 });
            }
        }
        out.extend_from_slice(self.info);
    }

    /// The frame's octets in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(kind: Unnumbered, pf: bool, cr: bool) -> Frame<'static> {
        Frame { sapi: 0, tei: 0, cr, kind: FrameKind::U { kind, pf }, info: &[] }
    }

    #[test]
    fn cr_bits_per_role() {
        assert!(!Role::User.cr_for(CommandResponse::Command));
        assert!(Role::User.cr_for(CommandResponse::Response));
        assert!(Role::Network.cr_for(CommandResponse::Command));
        assert!(!Role::Network.cr_for(CommandResponse::Response));
        // The network receiving C/R = 0 from the user: a command.
        assert_eq!(Role::Network.classify(false), CommandResponse::Command);
        assert_eq!(Role::Network.classify(true), CommandResponse::Response);
        assert_eq!(Role::User.classify(true), CommandResponse::Command);
        assert_eq!(Role::User.classify(false), CommandResponse::Response);
    }

    #[test]
    fn fixture_cpe_sabme_and_network_ua() {
        // Construct.
        let sabme = u(Unnumbered::Sabme, true, Role::User.cr_for(CommandResponse::Command));
        assert_eq!(sabme.to_vec(), [0x00, 0x01, 0x7F]);
        let ua = u(Unnumbered::Ua, true, Role::Network.cr_for(CommandResponse::Response));
        assert_eq!(ua.to_vec(), [0x00, 0x01, 0x73]);
        // Deconstruct.
        assert_eq!(Frame::parse(&[0x00, 0x01, 0x7F]), Ok(sabme));
        assert_eq!(Frame::parse(&[0x00, 0x01, 0x73]), Ok(ua));
        // Network SABME has C/R = 1.
        let net = u(Unnumbered::Sabme, true, true);
        assert_eq!(net.to_vec(), [0x02, 0x01, 0x7F]);
    }

    #[test]
    fn fixture_i_and_s_frames() {
        let bytes = [0x02, 0x01, 0x0A, 0x07, 0x08, 0x02, 0x00, 0x01, 0x05];
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!((f.sapi, f.tei, f.cr), (0, 0, true));
        assert_eq!(f.kind, FrameKind::I { ns: 5, nr: 3, p: true });
        assert_eq!(f.info, &bytes[4..]);
        assert_eq!(f.to_vec(), bytes);

        let rr = Frame::parse(&[0x00, 0x01, 0x01, 0xFF]).unwrap();
        assert_eq!(rr.kind, FrameKind::S { kind: Supervisory::Rr, nr: 127, pf: true });
        let rej = Frame::parse(&[0xFC, 0xFF, 0x09, 0x02]).unwrap();
        assert_eq!((rej.sapi, rej.tei), (63, 127));
        assert_eq!(rej.kind, FrameKind::S { kind: Supervisory::Rej, nr: 1, pf: false });
    }

    #[test]
    fn u_codes_match_table() {
        let table = [
            (Unnumbered::Sabme, 0x6F, 0x7F),
            (Unnumbered::Ua, 0x63, 0x73),
            (Unnumbered::Disc, 0x43, 0x53),
            (Unnumbered::Dm, 0x0F, 0x1F),
            (Unnumbered::Frmr, 0x87, 0x97),
            (Unnumbered::Ui, 0x03, 0x13),
            (Unnumbered::Xid, 0xAF, 0xBF),
        ];
        for (kind, off, on) in table {
            assert_eq!(u(kind, false, false).to_vec()[2], off);
            assert_eq!(u(kind, true, false).to_vec()[2], on);
        }
    }

    #[test]
    fn errors() {
        use LapdError::*;
        assert_eq!(Frame::parse(&[0x00]), Err(TooShort { got: 1, needed: 2 }));
        assert_eq!(Frame::parse(&[0x00, 0x01]), Err(TooShort { got: 2, needed: 3 }));
        assert_eq!(Frame::parse(&[0x00, 0x01, 0x00]), Err(TooShort { got: 3, needed: 4 }));
        assert_eq!(Frame::parse(&[0x01, 0x01, 0x7F]), Err(BadAddressExtension(0x01, 0x01)));
        assert_eq!(Frame::parse(&[0x00, 0x00, 0x7F]), Err(BadAddressExtension(0x00, 0x00)));
        assert_eq!(Frame::parse(&[0x00, 0x01, 0x0D, 0x00]), Err(UndefinedControl(0x0D)));
        assert_eq!(Frame::parse(&[0x00, 0x01, 0xE3]), Err(UndefinedControl(0xE3)));
        assert_eq!(Frame::parse(&[0x00, 0x01, 0x7F, 0x00]), Err(InfoNotPermitted));
        assert_eq!(Frame::parse(&[0x00, 0x01, 0x01, 0x00, 0x00]), Err(WrongLength(5)));
        let mut long = vec![0x00, 0x01, 0x00, 0x00];
        long.resize(4 + 261, 0x55);
        assert_eq!(Frame::parse(&long), Err(InfoTooLong { len: 261, max: 260 }));
        long.truncate(4 + 260);
        assert!(Frame::parse(&long).is_ok());
        assert!(Frame::parse_with_n201(&long, 100).is_err());
    }

    fn any_frame() -> impl Strategy<Value = (u8, u8, bool, FrameKind, Vec<u8>)> {
        let sup =
            prop_oneof![Just(Supervisory::Rr), Just(Supervisory::Rnr), Just(Supervisory::Rej)];
        let un = prop_oneof![
            Just(Unnumbered::Sabme),
            Just(Unnumbered::Ua),
            Just(Unnumbered::Disc),
            Just(Unnumbered::Dm),
            Just(Unnumbered::Ui),
            Just(Unnumbered::Frmr),
            Just(Unnumbered::Xid)
        ];
        let kind = prop_oneof![
            (0u8..128, 0u8..128, any::<bool>()).prop_map(|(ns, nr, p)| FrameKind::I { ns, nr, p }),
            (sup, 0u8..128, any::<bool>()).prop_map(|(kind, nr, pf)| FrameKind::S { kind, nr, pf }),
            (un, any::<bool>()).prop_map(|(kind, pf)| FrameKind::U { kind, pf }),
        ];
        (
            0u8..64,
            0u8..128,
            any::<bool>(),
            kind,
            proptest::collection::vec(any::<u8>(), 0..=DEFAULT_N201),
        )
            .prop_map(|(sapi, tei, cr, kind, mut info)| {
                let carries = match kind {
                    FrameKind::I { .. } => true,
                    FrameKind::S { .. } => false,
                    FrameKind::U { kind, .. } => kind.may_carry_info(),
                };
                if !carries {
                    info.clear();
                }
                (sapi, tei, cr, kind, info)
            })
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips((sapi, tei, cr, kind, info) in any_frame()) {
            let frame = Frame { sapi, tei, cr, kind, info: &info };
            let bytes = frame.to_vec();
            prop_assert_eq!(bytes.len(), frame.buffer_len());
            prop_assert_eq!(Frame::parse(&bytes), Ok(frame));
        }

        #[test]
        fn parse_arbitrary_never_panics_and_reemits(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(frame) = Frame::parse(&bytes) {
                prop_assert_eq!(frame.to_vec(), bytes);
            }
        }

        #[test]
        fn parse_short_arbitrary_reemits(bytes in proptest::collection::vec(any::<u8>(), 0..6)) {
            if let Ok(frame) = Frame::parse(&bytes) {
                prop_assert_eq!(frame.to_vec(), bytes);
            }
        }
    }
}
