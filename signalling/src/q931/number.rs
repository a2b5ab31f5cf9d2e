//! Party numbers (Q.931 §4.5.8, §4.5.10, Connected and Redirecting numbers): type of number,
//! numbering plan, presentation/screening and IA5 digits.

use super::ie::IeError;

/// Presentation and screening indicators (octet 3a of calling/connected/redirecting numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// Presentation indicator, 2 bits: 0 allowed, 1 restricted, 2 not available.
    pub presentation: u8,
    /// Screening indicator, 2 bits: 0 user not screened, 1 user verified and passed,
    /// 2 user verified and failed, 3 network provided.
    pub screening: u8,
}

impl Presentation {
    /// Presentation allowed, user-provided not screened (`0x80`).
    pub const ALLOWED_NOT_SCREENED: Presentation = Presentation { presentation: 0, screening: 0 };
    /// Presentation restricted, network provided (`0xA3`).
    pub const RESTRICTED_NETWORK: Presentation = Presentation { presentation: 1, screening: 3 };

    fn from_octet(o: u8) -> Self {
        Presentation { presentation: (o >> 5) & 3, screening: o & 3 }
    }

    fn octet(self) -> u8 {
        (self.presentation & 3) << 5 | (self.screening & 3)
    }
}

/// Type of number (3 bits) values.
pub mod ton {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// International number.
    pub const INTERNATIONAL: u8 = 1;
    /// National number.
    pub const NATIONAL: u8 = 2;
    /// Network-specific number.
    pub const NETWORK_SPECIFIC: u8 = 3;
    /// Subscriber number.
    pub const SUBSCRIBER: u8 = 4;
    /// Abbreviated number.
    pub const ABBREVIATED: u8 = 6;
}

/// Numbering plan identification (4 bits) values.
pub mod npi {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// ISDN/telephony (E.164).
    pub const E164: u8 = 1;
    /// Data (X.121).
    pub const DATA: u8 = 3;
    /// Telex (F.69).
    pub const TELEX: u8 = 4;
    /// National standard.
    pub const NATIONAL: u8 = 8;
    /// Private.
    pub const PRIVATE: u8 = 9;
}

/// Checks that every octet is an IA5 dialling digit and returns them as a string.
///
/// # Errors
/// [`IeError::InvalidDigit`] naming the first octet outside '0'-'9', '*', '#'.
pub fn parse_digits(d: &[u8]) -> Result<String, IeError> {
    match d.iter().find(|&&b| !(b.is_ascii_digit() || b == b'*' || b == b'#')) {
        Some(&b) => Err(IeError::InvalidDigit(b)),
        None => Ok(d.iter().map(|&b| char::from(b)).collect()),
    }
}

/// A party number with optional presentation: Calling party (0x6C), Connected (0x4C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyNumber {
    /// Type of number, 3 bits (see [`ton`]).
    pub ton: u8,
    /// Numbering plan, 4 bits (see [`npi`]).
    pub npi: u8,
    /// Octet 3a, when present.
    pub presentation: Option<Presentation>,
    /// The digits ('0'-'9', '*', '#'); may be empty.
    pub digits: String,
}

impl PartyNumber {
    /// A number with the given type, plan and digits and no octet 3a.
    pub fn new(ton: u8, npi: u8, digits: &str) -> Self {
        PartyNumber { ton, npi, presentation: None, digits: digits.to_owned() }
    }

    /// Decodes the element contents.
    ///
    /// # Errors
    /// [`IeError`] on a missing octet, bad extension bit or invalid digit.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let (&o3, rest) = c.split_first().ok_or(IeError::Length)?;
        let (presentation, digits) = if o3 & 0x80 == 0 {
            let (&o3a, d) = rest.split_first().ok_or(IeError::Extension("3a"))?;
            if o3a & 0x80 == 0 {
                return Err(IeError::Extension("3a"));
            }
            (Some(Presentation::from_octet(o3a)), d)
        } else {
            (None, rest)
        };
        Ok(PartyNumber {
            ton: (o3 >> 4) & 7,
            npi: o3 & 0x0F,
            presentation,
            digits: parse_digits(digits)?,
        })
    }

    /// Appends the element contents.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let ext = if self.presentation.is_some() { 0 } else { 0x80 };
        out.push(ext | (self.ton & 7) << 4 | (self.npi & 0x0F));
        if let Some(p) = self.presentation {
            out.push(0x80 | p.octet());
        }
        out.extend_from_slice(self.digits.as_bytes());
    }
}

/// Called party number (id 0x70): type, plan, digits (no octet 3a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledNumber {
    /// Type of number, 3 bits (see [`ton`]).
    pub ton: u8,
    /// Numbering plan, 4 bits (see [`npi`]).
    pub npi: u8,
    /// The digits ('0'-'9', '*', '#'); may be empty.
    pub digits: String,
}

impl CalledNumber {
    /// A called number: `CalledNumber::new(ton::NATIONAL, npi::E164, "5678")` is `70 05 A1 35 36 37 38`.
    pub fn new(ton: u8, npi: u8, digits: &str) -> Self {
        CalledNumber { ton, npi, digits: digits.to_owned() }
    }

    /// Decodes the element contents.
    ///
    /// # Errors
    /// [`IeError`] on an empty element, octet 3 without its extension bit, or a bad digit.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let (&o3, d) = c.split_first().ok_or(IeError::Length)?;
        if o3 & 0x80 == 0 {
            return Err(IeError::Extension("3"));
        }
        Ok(CalledNumber { ton: (o3 >> 4) & 7, npi: o3 & 0x0F, digits: parse_digits(d)? })
    }

    /// Appends the element contents.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(0x80 | (self.ton & 7) << 4 | (self.npi & 0x0F));
        out.extend_from_slice(self.digits.as_bytes());
    }
}

/// Redirecting number (id 0x74): a party number plus the optional reason (octet 3b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectingNumber {
    /// Type of number, 3 bits.
    pub ton: u8,
    /// Numbering plan, 4 bits.
    pub npi: u8,
    /// Octet 3a, when present (required when `reason` is present).
    pub presentation: Option<Presentation>,
    /// Reason for redirection, 4 bits (1 busy, 2 no reply, 15 unconditional, ...).
    pub reason: Option<u8>,
    /// The digits.
    pub digits: String,
}

impl RedirectingNumber {
    /// Decodes the element contents.
    ///
    /// # Errors
    /// [`IeError`] on a missing octet, bad extension bit or invalid digit.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let (&o3, mut rest) = c.split_first().ok_or(IeError::Length)?;
        let (mut presentation, mut reason) = (None, None);
        if o3 & 0x80 == 0 {
            let (&o3a, r) = rest.split_first().ok_or(IeError::Extension("3a"))?;
            presentation = Some(Presentation::from_octet(o3a));
            rest = r;
            if o3a & 0x80 == 0 {
                let (&o3b, r) = rest.split_first().ok_or(IeError::Extension("3b"))?;
                if o3b & 0x80 == 0 {
                    return Err(IeError::Extension("3b"));
                }
                reason = Some(o3b & 0x0F);
                rest = r;
            }
        }
        Ok(RedirectingNumber {
            ton: (o3 >> 4) & 7,
            npi: o3 & 0x0F,
            presentation,
            reason,
            digits: parse_digits(rest)?,
        })
    }

    /// Appends the element contents (a `reason` without `presentation` gets 3a = allowed).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let has_3a = self.presentation.is_some() || self.reason.is_some();
        out.push(if has_3a { 0 } else { 0x80 } | (self.ton & 7) << 4 | (self.npi & 0x0F));
        if has_3a {
            let p = self.presentation.unwrap_or(Presentation::ALLOWED_NOT_SCREENED);
            out.push(if self.reason.is_some() { 0 } else { 0x80 } | p.octet());
        }
        if let Some(r) = self.reason {
            out.push(0x80 | (r & 0x0F));
        }
        out.extend_from_slice(self.digits.as_bytes());
    }
}
