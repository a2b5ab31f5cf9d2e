//! Q.931 information elements (§4.5): identifiers, typed codeset-0 elements and their codings.
//!
//! Decoding masks spare bits and re-encodes them as zero, so `parse(emit(x)) == x` holds for
//! every value `parse` returns. Anything that cannot be decoded into a typed value is kept as
//! [`Ie::Raw`] by the message parser.

pub use super::cause::{Cause, CauseIe, Location};
pub use super::number::{
    npi, parse_digits, ton, CalledNumber, PartyNumber, Presentation, RedirectingNumber,
};

/// Information element identifiers of codeset 0 (Q.931 Table 4-3).
pub mod id {
    /// Segmented message.
    pub const SEGMENTED_MESSAGE: u8 = 0x00;
    /// Bearer capability.
    pub const BEARER_CAPABILITY: u8 = 0x04;
    /// Cause.
    pub const CAUSE: u8 = 0x08;
    /// Call identity.
    pub const CALL_IDENTITY: u8 = 0x10;
    /// Call state.
    pub const CALL_STATE: u8 = 0x14;
    /// Channel identification.
    pub const CHANNEL_ID: u8 = 0x18;
    /// Facility.
    pub const FACILITY: u8 = 0x1C;
    /// Progress indicator.
    pub const PROGRESS_INDICATOR: u8 = 0x1E;
    /// Network-specific facilities.
    pub const NETWORK_FACILITIES: u8 = 0x20;
    /// Notification indicator.
    pub const NOTIFICATION_INDICATOR: u8 = 0x27;
    /// Display.
    pub const DISPLAY: u8 = 0x28;
    /// Date/time.
    pub const DATE_TIME: u8 = 0x29;
    /// Keypad facility.
    pub const KEYPAD: u8 = 0x2C;
    /// Signal.
    pub const SIGNAL: u8 = 0x34;
    /// Connected number.
    pub const CONNECTED_NUMBER: u8 = 0x4C;
    /// Connected subaddress.
    pub const CONNECTED_SUBADDRESS: u8 = 0x4D;
    /// Calling party number.
    pub const CALLING_NUMBER: u8 = 0x6C;
    /// Calling party subaddress.
    pub const CALLING_SUBADDRESS: u8 = 0x6D;
    /// Called party number.
    pub const CALLED_NUMBER: u8 = 0x70;
    /// Called party subaddress.
    pub const CALLED_SUBADDRESS: u8 = 0x71;
    /// Redirecting number.
    pub const REDIRECTING_NUMBER: u8 = 0x74;
    /// Redirection number.
    pub const REDIRECTION_NUMBER: u8 = 0x76;
    /// Transit network selection.
    pub const TRANSIT_NETWORK: u8 = 0x78;
    /// Restart indicator.
    pub const RESTART_INDICATOR: u8 = 0x79;
    /// Low layer compatibility.
    pub const LLC: u8 = 0x7C;
    /// High layer compatibility.
    pub const HLC: u8 = 0x7D;
    /// User-user.
    pub const USER_USER: u8 = 0x7E;
    /// Escape for extension.
    pub const ESCAPE: u8 = 0x7F;
    /// Single-octet: Sending complete.
    pub const SENDING_COMPLETE: u8 = 0xA1;
    /// Single-octet: More data.
    pub const MORE_DATA: u8 = 0xA0;
}

/// Codeset-0 variable-length identifiers this codec recognises (typed or kept raw).
const KNOWN_VARIABLE: &[u8] = &[
    0x00, 0x04, 0x08, 0x10, 0x14, 0x18, 0x1C, 0x1E, 0x20, 0x27, 0x28, 0x29, 0x2C, 0x34, 0x40, 0x42,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x4A, 0x4C, 0x4D, 0x6C, 0x6D, 0x70, 0x71, 0x74, 0x76, 0x78, 0x79,
    0x7C, 0x7D, 0x7E, 0x7F,
];

/// True when `id` is a codeset-0 variable-length element defined by Q.931.
pub fn is_known_variable(id: u8) -> bool {
    KNOWN_VARIABLE.contains(&id)
}

/// True for a codeset-0 identifier marked "comprehension required" (bits 8-5 = 0000,
/// Q.931 Table 4-3 note): an unrecognised one is handled like a missing mandatory element.
pub fn is_comprehension_required(codeset: u8, id: u8) -> bool {
    codeset == 0 && id & 0xF0 == 0
}

/// Why an information element's contents could not be decoded (Q.931 §5.8.6.2 / §5.8.7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IeError {
    /// The contents are too short (or too long) for this element.
    #[error("element length is wrong")]
    Length,
    /// An extension bit announces an octet that is missing or not allowed (names the octet).
    #[error("extension bit error at octet {0}")]
    Extension(&'static str),
    /// A number digit outside IA5 '0'-'9', '*', '#'.
    #[error("invalid digit {0:#04x}: only IA5 0-9, * and # are allowed")]
    InvalidDigit(u8),
    /// A Display character outside 7-bit IA5.
    #[error("character {0:#04x} is not IA5")]
    NotIa5(u8),
    /// A field holds a reserved or unassigned value.
    #[error("reserved value {value} in {field}")]
    Reserved {
        /// The field name.
        field: &'static str,
        /// The value found.
        value: u8,
    },
    /// A valid coding this codec does not implement (e.g. BRI channel id, slot maps).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

/// Splits off one octet group: octets up to and including the first with bit 8 set.
fn take_group<'a>(c: &'a [u8], octet: &'static str) -> Result<(&'a [u8], &'a [u8]), IeError> {
    match c.iter().position(|o| o & 0x80 != 0) {
        Some(i) => Ok(c.split_at(i + 1)),
        None => Err(IeError::Extension(octet)),
    }
}

/// One user-information layer of the Bearer capability (octet groups 5, 6 or 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// User information layer protocol, 5 bits (layer 1: 2 = G.711 µ-law, 3 = G.711 A-law).
    pub protocol: u8,
    /// Extension octets (5a.., 6a.., 7a..) verbatim: bit 8 clear on all but the last.
    pub extra: Vec<u8>,
}

impl LayerInfo {
    /// Layer-1 protocol: G.711 µ-law.
    pub const ULAW: u8 = 2;
    /// Layer-1 protocol: G.711 A-law.
    pub const ALAW: u8 = 3;

    /// A layer with only its protocol octet.
    pub fn new(protocol: u8) -> Self {
        LayerInfo { protocol, extra: Vec::new() }
    }
}

/// Bearer capability (id 0x04, Q.931 §4.5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerCapability {
    /// Coding standard, 2 bits (0 = ITU-T).
    pub coding_standard: u8,
    /// Information transfer capability, 5 bits (see the `ITC_*` constants).
    pub transfer_capability: u8,
    /// Transfer mode, 2 bits (0 = circuit, 2 = packet).
    pub transfer_mode: u8,
    /// Information transfer rate, 5 bits (0x10 = 64 kbit/s, 0x18 = multirate).
    pub transfer_rate: u8,
    /// Octet 4.1 rate multiplier (7 bits), present exactly when the rate is multirate.
    pub rate_multiplier: Option<u8>,
    /// User information layer 1 (octet group 5).
    pub layer1: Option<LayerInfo>,
    /// User information layer 2 (octet group 6).
    pub layer2: Option<LayerInfo>,
    /// User information layer 3 (octet group 7).
    pub layer3: Option<LayerInfo>,
}

impl BearerCapability {
    /// Transfer capability: speech.
    pub const ITC_SPEECH: u8 = 0x00;
    /// Transfer capability: unrestricted digital information.
    pub const ITC_UNRESTRICTED_DIGITAL: u8 = 0x08;
    /// Transfer capability: restricted digital information.
    pub const ITC_RESTRICTED_DIGITAL: u8 = 0x09;
    /// Transfer capability: 3.1 kHz audio.
    pub const ITC_AUDIO_3K1: u8 = 0x10;
    /// Transfer capability: unrestricted digital with tones/announcements.
    pub const ITC_DIGITAL_WITH_TONES: u8 = 0x11;
    /// Transfer capability: video.
    pub const ITC_VIDEO: u8 = 0x18;
    /// Transfer rate: 64 kbit/s.
    pub const RATE_64K: u8 = 0x10;
    /// Transfer rate: multirate (octet 4.1 follows).
    pub const RATE_MULTIRATE: u8 = 0x18;

    /// Speech, circuit mode, 64 kbit/s, G.711 A-law: `04 03 80 90 A3`.
    pub fn speech_alaw() -> Self {
        Self::circuit(Self::ITC_SPEECH, Some(LayerInfo::ALAW))
    }

    /// 3.1 kHz audio, circuit mode, 64 kbit/s, G.711 A-law: `04 03 90 90 A3`.
    pub fn audio_alaw() -> Self {
        Self::circuit(Self::ITC_AUDIO_3K1, Some(LayerInfo::ALAW))
    }

    /// Unrestricted digital information, circuit mode, 64 kbit/s, no layer 1: `04 02 88 90`.
    pub fn unrestricted_digital() -> Self {
        Self::circuit(Self::ITC_UNRESTRICTED_DIGITAL, None)
    }

    fn circuit(itc: u8, l1: Option<u8>) -> Self {
        BearerCapability {
            coding_standard: 0,
            transfer_capability: itc,
            transfer_mode: 0,
            transfer_rate: Self::RATE_64K,
            rate_multiplier: None,
            layer1: l1.map(LayerInfo::new),
            layer2: None,
            layer3: None,
        }
    }

    /// True for speech or 3.1 kHz audio, the calls a voice PBX can carry.
    pub fn is_voice(&self) -> bool {
        matches!(self.transfer_capability, Self::ITC_SPEECH | Self::ITC_AUDIO_3K1)
    }

    /// Decodes the element contents.
    ///
    /// # Errors
    /// [`IeError`] on a missing octet 4, bad extension bits, layer groups out of order or
    /// the obsolete octets 4a/4b.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let [o3, o4, rest @ ..] = c else {
            return Err(IeError::Length);
        };
        if o3 & 0x80 == 0 {
            return Err(IeError::Extension("3"));
        }
        if o4 & 0x80 == 0 {
            return Err(IeError::Unsupported("bearer capability octets 4a/4b"));
        }
        let rate = o4 & 0x1F;
        let mut rest = rest;
        let mut rate_multiplier = None;
        if rate == Self::RATE_MULTIRATE {
            let (&o41, r) = rest.split_first().ok_or(IeError::Length)?;
            if o41 & 0x80 == 0 {
                return Err(IeError::Extension("4.1"));
            }
            rate_multiplier = Some(o41 & 0x7F);
            rest = r;
        }
        let mut layers: [Option<LayerInfo>; 3] = [None, None, None];
        let mut last = 0;
        while !rest.is_empty() {
            let (group, r) = take_group(rest, "5/6/7")?;
            rest = r;
            let layer = (group[0] >> 5) & 3;
            if layer == 0 || layer <= last {
                return Err(IeError::Reserved { field: "layer identification", value: layer });
            }
            last = layer;
            layers[usize::from(layer - 1)] =
                Some(LayerInfo { protocol: group[0] & 0x1F, extra: group[1..].to_vec() });
        }
        let [layer1, layer2, layer3] = layers;
        Ok(BearerCapability {
            coding_standard: (o3 >> 5) & 3,
            transfer_capability: o3 & 0x1F,
            transfer_mode: (o4 >> 5) & 3,
            transfer_rate: rate,
            rate_multiplier,
            layer1,
            layer2,
            layer3,
        })
    }

    /// Appends the element contents.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(0x80 | (self.coding_standard & 3) << 5 | (self.transfer_capability & 0x1F));
        out.push(0x80 | (self.transfer_mode & 3) << 5 | (self.transfer_rate & 0x1F));
        if let Some(m) = self.rate_multiplier {
            out.push(0x80 | (m & 0x7F));
        }
        for (n, layer) in [(1u8, &self.layer1), (2, &self.layer2), (3, &self.layer3)] {
            if let Some(l) = layer {
                let ext = if l.extra.is_empty() { 0x80 } else { 0 };
                out.push(ext | n << 5 | (l.protocol & 0x1F));
                out.extend_from_slice(&l.extra);
            }
        }
    }
}

/// Which channel(s) a Channel identification element names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelSelection {
    /// No channel (with the D-channel indicator set: the D-channel).
    NoChannel,
    /// Any channel.
    Any,
    /// B-channels by number (on E1, the timeslot 1-15, 17-31); never empty.
    Channels(Vec<u8>),
}

/// Channel identification (id 0x18, Q.931 §4.5.13), primary-rate interface type only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelId {
    /// Exclusive (only this channel is acceptable) rather than preferred.
    pub exclusive: bool,
    /// D-channel indicator.
    pub d_channel: bool,
    /// Explicit interface identifier (octet 3.1, single octet, 7 bits), for NFAS.
    pub interface_id: Option<u8>,
    /// The channel(s).
    pub selection: ChannelSelection,
}

impl ChannelId {
    /// Exclusive use of one B-channel: channel 1 is `18 03 A9 83 81`.
    pub fn exclusive(channel: u8) -> Self {
        ChannelId {
            exclusive: true,
            d_channel: false,
            interface_id: None,
            selection: ChannelSelection::Channels(vec![channel]),
        }
    }

    /// Preferred B-channel: channel 1 is `18 03 A1 83 81`.
    pub fn preferred(channel: u8) -> Self {
        ChannelId { exclusive: false, ..Self::exclusive(channel) }
    }

    /// "Any channel".
    pub fn any() -> Self {
        ChannelId {
            exclusive: false,
            d_channel: false,
            interface_id: None,
            selection: ChannelSelection::Any,
        }
    }

    /// The first named channel number, if any.
    pub fn channel(&self) -> Option<u8> {
        match &self.selection {
            ChannelSelection::Channels(v) => v.first().copied(),
            _ => None,
        }
    }

    /// Decodes the element contents.
    ///
    /// # Errors
    /// [`IeError::Unsupported`] for a basic-rate interface type, a multi-octet interface
    /// identifier, a slot map, non-ITU coding or H-channels; [`IeError`] for other faults.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let (&o3, mut rest) = c.split_first().ok_or(IeError::Length)?;
        if o3 & 0x80 == 0 {
            return Err(IeError::Extension("3"));
        }
        if o3 & 0x20 == 0 {
            return Err(IeError::Unsupported("basic-rate interface type"));
        }
        let mut interface_id = None;
        if o3 & 0x40 != 0 {
            let (group, r) = take_group(rest, "3.1")?;
            if group.len() != 1 {
                return Err(IeError::Unsupported("multi-octet interface identifier"));
            }
            interface_id = Some(group[0] & 0x7F);
            rest = r;
        }
        let selection = match o3 & 3 {
            0 => ChannelSelection::NoChannel,
            3 => ChannelSelection::Any,
            2 => {
                return Err(IeError::Reserved { field: "information channel selection", value: 2 })
            }
            _ => {
                let (&o32, nums) = rest.split_first().ok_or(IeError::Length)?;
                if o32 & 0x80 == 0 {
                    return Err(IeError::Extension("3.2"));
                }
                if o32 & 0x60 != 0 {
                    return Err(IeError::Unsupported("non-ITU channel coding standard"));
                }
                if o32 & 0x10 != 0 {
                    return Err(IeError::Unsupported("channel slot map"));
                }
                if o32 & 0x0F != 3 {
                    return Err(IeError::Unsupported("channel type other than B-channel"));
                }
                if nums.is_empty() {
                    return Err(IeError::Length);
                }
                ChannelSelection::Channels(nums.iter().map(|n| n & 0x7F).collect())
            }
        };
        Ok(ChannelId {
            exclusive: o3 & 0x08 != 0,
            d_channel: o3 & 0x04 != 0,
            interface_id,
            selection,
        })
    }

    /// Appends the element contents.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let sel = match self.selection {
            ChannelSelection::NoChannel => 0,
            ChannelSelection::Channels(_) => 1,
            ChannelSelection::Any => 3,
        };
        let mut o3 = 0xA0 | sel;
        o3 |= if self.interface_id.is_some() { 0x40 } else { 0 };
        o3 |= if self.exclusive { 0x08 } else { 0 };
        o3 |= if self.d_channel { 0x04 } else { 0 };
        out.push(o3);
        if let Some(i) = self.interface_id {
            out.push(0x80 | (i & 0x7F));
        }
        if let ChannelSelection::Channels(nums) = &self.selection {
            out.push(0x83);
            for (k, n) in nums.iter().enumerate() {
                let ext = if k + 1 == nums.len() { 0x80 } else { 0 };
                out.push(ext | (n & 0x7F));
            }
        }
    }
}

/// Progress indicator (id 0x1E, Q.931 §4.5.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressIndicator {
    /// Coding standard, 2 bits.
    pub coding_standard: u8,
    /// Where the progress was signalled.
    pub location: Location,
    /// Progress description, 7 bits (see the constants).
    pub description: u8,
}

impl ProgressIndicator {
    /// 1: call is not end-to-end ISDN; in-band information may follow.
    pub const NOT_END_TO_END_ISDN: u8 = 1;
    /// 2: destination address is non-ISDN.
    pub const DESTINATION_NON_ISDN: u8 = 2;
    /// 3: origination address is non-ISDN.
    pub const ORIGINATION_NON_ISDN: u8 = 3;
    /// 4: call has returned to the ISDN.
    pub const RETURNED_TO_ISDN: u8 = 4;
    /// 8: in-band information or an appropriate pattern is now available.
    pub const INBAND_AVAILABLE: u8 = 8;

    /// An ITU-T coded progress indicator.
    pub fn new(location: Location, description: u8) -> Self {
        ProgressIndicator { coding_standard: 0, location, description }
    }

    /// Decodes the element contents (octets beyond 4 are ignored).
    ///
    /// # Errors
    /// [`IeError::Length`] when shorter than 2 octets.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let [o3, o4, ..] = c else {
            return Err(IeError::Length);
        };
        Ok(ProgressIndicator {
            coding_standard: (o3 >> 5) & 3,
            location: Location(o3 & 0x0F),
            description: o4 & 0x7F,
        })
    }

    /// Appends the element contents.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(0x80 | (self.coding_standard & 3) << 5 | (self.location.0 & 0x0F));
        out.push(0x80 | (self.description & 0x7F));
    }
}

/// Restart indicator class (id 0x79, Q.931 §4.5.25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartClass {
    /// 0: the channels named in the Channel identification element.
    Indicated,
    /// 6: the single interface.
    SingleInterface,
    /// 7: all interfaces.
    AllInterfaces,
}

impl RestartClass {
    /// Decodes the element contents.
    ///
    /// # Errors
    /// [`IeError::Length`] when empty, [`IeError::Reserved`] for classes other than 0, 6, 7.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let &o3 = c.first().ok_or(IeError::Length)?;
        match o3 & 7 {
            0 => Ok(RestartClass::Indicated),
            6 => Ok(RestartClass::SingleInterface),
            7 => Ok(RestartClass::AllInterfaces),
            value => Err(IeError::Reserved { field: "restart class", value }),
        }
    }

    /// The 3-bit class value.
    pub fn value(self) -> u8 {
        match self {
            RestartClass::Indicated => 0,
            RestartClass::SingleInterface => 6,
            RestartClass::AllInterfaces => 7,
        }
    }
}

/// One information element of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ie {
    /// Sending complete (single octet 0xA1).
    SendingComplete,
    /// Congestion level (single octet 0xBx), 4-bit level.
    CongestionLevel(u8),
    /// Repeat indicator (single octet 0xDx), 4-bit value; applies to the element after it.
    RepeatIndicator(u8),
    /// Bearer capability (0x04).
    BearerCapability(BearerCapability),
    /// Cause (0x08).
    Cause(CauseIe),
    /// Call state (0x14): 6-bit state value (Q.931 U/N state number).
    CallState(u8),
    /// Channel identification (0x18).
    ChannelId(ChannelId),
    /// Facility (0x1C), contents verbatim.
    Facility(Vec<u8>),
    /// Progress indicator (0x1E).
    Progress(ProgressIndicator),
    /// Notification indicator (0x27): 7-bit notification description.
    Notification(u8),
    /// Display (0x28), IA5 text.
    Display(String),
    /// Connected number (0x4C).
    ConnectedNumber(PartyNumber),
    /// Calling party number (0x6C).
    CallingNumber(PartyNumber),
    /// Called party number (0x70).
    CalledNumber(CalledNumber),
    /// Redirecting number (0x74).
    RedirectingNumber(RedirectingNumber),
    /// Restart indicator (0x79).
    RestartIndicator(RestartClass),
    /// User-user (0x7E), contents verbatim (protocol discriminator first).
    UserUser(Vec<u8>),
    /// A variable-length element kept verbatim: another codeset, an id without a typed
    /// decoder, or a typed id whose contents failed to decode.
    Raw {
        /// Codeset 0-7 it was found in.
        codeset: u8,
        /// Element identifier (bit 8 clear).
        id: u8,
        /// Contents after the length octet.
        bytes: Vec<u8>,
    },
    /// A single-octet element without a typed variant (e.g. More data, other codesets).
    RawSingle {
        /// Codeset 0-7 it was found in.
        codeset: u8,
        /// The octet (bit 8 set, not a Shift).
        octet: u8,
    },
}

impl Ie {
    /// The codeset this element belongs to (typed elements are codeset 0).
    pub fn codeset(&self) -> u8 {
        match self {
            Ie::Raw { codeset, .. } | Ie::RawSingle { codeset, .. } => *codeset & 7,
            _ => 0,
        }
    }

    /// The identifier: for variable elements the id octet, for single-octet ones the octet
    /// with its value bits cleared for type-1 elements (0xB0, 0xD0) or whole (0xA1).
    pub fn id(&self) -> u8 {
        match self {
            Ie::SendingComplete => id::SENDING_COMPLETE,
            Ie::CongestionLevel(_) => 0xB0,
            Ie::RepeatIndicator(_) => 0xD0,
            Ie::BearerCapability(_) => id::BEARER_CAPABILITY,
            Ie::Cause(_) => id::CAUSE,
            Ie::CallState(_) => id::CALL_STATE,
            Ie::ChannelId(_) => id::CHANNEL_ID,
            Ie::Facility(_) => id::FACILITY,
            Ie::Progress(_) => id::PROGRESS_INDICATOR,
            Ie::Notification(_) => id::NOTIFICATION_INDICATOR,
            Ie::Display(_) => id::DISPLAY,
            Ie::ConnectedNumber(_) => id::CONNECTED_NUMBER,
            Ie::CallingNumber(_) => id::CALLING_NUMBER,
            Ie::CalledNumber(_) => id::CALLED_NUMBER,
            Ie::RedirectingNumber(_) => id::REDIRECTING_NUMBER,
            Ie::RestartIndicator(_) => id::RESTART_INDICATOR,
            Ie::UserUser(_) => id::USER_USER,
            Ie::Raw { id, .. } => *id & 0x7F,
            Ie::RawSingle { octet, .. } => *octet | 0x80,
        }
    }

    /// True for single-octet elements (bit 8 of the identifier set).
    pub fn is_single_octet(&self) -> bool {
        self.id() & 0x80 != 0
    }

    /// Decodes a codeset-0 single-octet element (not a Shift).
    pub fn parse_single(octet: u8) -> Ie {
        match octet & 0xF0 {
            0xB0 => Ie::CongestionLevel(octet & 0x0F),
            0xD0 => Ie::RepeatIndicator(octet & 0x0F),
            _ if octet == id::SENDING_COMPLETE => Ie::SendingComplete,
            _ => Ie::RawSingle { codeset: 0, octet },
        }
    }

    /// Decodes a codeset-0 variable element's contents; ids without a typed decoder come
    /// back as [`Ie::Raw`].
    ///
    /// # Errors
    /// [`IeError`] when a typed element's contents are invalid.
    pub fn parse_variable(ie_id: u8, c: &[u8]) -> Result<Ie, IeError> {
        let first = || c.first().copied().ok_or(IeError::Length);
        Ok(match ie_id {
            id::BEARER_CAPABILITY => Ie::BearerCapability(BearerCapability::parse(c)?),
            id::CAUSE => Ie::Cause(CauseIe::parse(c)?),
            id::CALL_STATE => Ie::CallState(first()? & 0x3F),
            id::CHANNEL_ID => Ie::ChannelId(ChannelId::parse(c)?),
            id::FACILITY => Ie::Facility(c.to_vec()),
            id::PROGRESS_INDICATOR => Ie::Progress(ProgressIndicator::parse(c)?),
            id::NOTIFICATION_INDICATOR => Ie::Notification(first()? & 0x7F),
            id::DISPLAY => match c.iter().find(|b| !b.is_ascii()) {
                Some(&b) => return Err(IeError::NotIa5(b)),
                None => Ie::Display(c.iter().map(|&b| char::from(b)).collect()),
            },
            id::CONNECTED_NUMBER => Ie::ConnectedNumber(PartyNumber::parse(c)?),
            id::CALLING_NUMBER => Ie::CallingNumber(PartyNumber::parse(c)?),
            id::CALLED_NUMBER => Ie::CalledNumber(CalledNumber::parse(c)?),
            id::REDIRECTING_NUMBER => Ie::RedirectingNumber(RedirectingNumber::parse(c)?),
            id::RESTART_INDICATOR => Ie::RestartIndicator(RestartClass::parse(c)?),
            id::USER_USER if c.is_empty() => return Err(IeError::Length),
            id::USER_USER => Ie::UserUser(c.to_vec()),
            _ => Ie::Raw { codeset: 0, id: ie_id, bytes: c.to_vec() },
        })
    }

    /// Appends the element: the single octet, or id, length and contents (contents longer
    /// than 255 octets are cut to 255). Shifts are the message's business.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Ie::SendingComplete => return out.push(id::SENDING_COMPLETE),
            Ie::CongestionLevel(v) => return out.push(0xB0 | (v & 0x0F)),
            Ie::RepeatIndicator(v) => return out.push(0xD0 | (v & 0x0F)),
            Ie::RawSingle { octet, .. } => return out.push(octet | 0x80),
            _ => {}
        }
        out.push(self.id());
        let len_at = out.len();
        out.push(0);
        match self {
            Ie::BearerCapability(b) => b.emit(out),
            Ie::Cause(c) => c.emit(out),
            Ie::CallState(s) => out.push(s & 0x3F),
            Ie::ChannelId(c) => c.emit(out),
            Ie::Progress(p) => p.emit(out),
            Ie::Notification(n) => out.push(0x80 | (n & 0x7F)),
            Ie::Display(s) => {
                out.extend(s.chars().map(|ch| if ch.is_ascii() { ch as u8 } else { b'?' }))
            }
            Ie::ConnectedNumber(n) | Ie::CallingNumber(n) => n.emit(out),
            Ie::CalledNumber(n) => n.emit(out),
            Ie::RedirectingNumber(n) => n.emit(out),
            Ie::RestartIndicator(r) => out.push(0x80 | r.value()),
            Ie::Facility(b) | Ie::UserUser(b) | Ie::Raw { bytes: b, .. } => {
                out.extend_from_slice(b)
            }
            _ => {}
        }
        let len = (out.len() - len_at - 1).min(255);
        out.truncate(len_at + 1 + len);
        out[len_at] = len as u8;
    }
}
