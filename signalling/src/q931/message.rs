//! Q.931 message framing (§4.1–4.5): protocol discriminator, call reference, message type,
//! information elements with locking/non-locking shifts.

use super::ie::{
    BearerCapability, CalledNumber, CauseIe, ChannelId, Ie, IeError, PartyNumber,
    ProgressIndicator, RedirectingNumber, RestartClass,
};
use super::Q931Error;

/// Q.931 protocol discriminator.
pub const PROTOCOL_DISCRIMINATOR: u8 = 0x08;

/// A call reference (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallRef {
    /// Length of the value in octets: 2 on PRI, 1 on BRI, 0 for the dummy call reference.
    pub len: u8,
    /// The value (15 bits for length 2, 7 bits for length 1, 0 for length 0).
    pub value: u16,
    /// The flag: false when sent by the side that allocated the call reference, true when
    /// sent to it.
    pub flag: bool,
}

impl CallRef {
    /// The PRI global call reference (2 octets, value 0), used by RESTART.
    pub const GLOBAL: CallRef = CallRef { len: 2, value: 0, flag: false };
    /// The dummy call reference (length 0).
    pub const DUMMY: CallRef = CallRef { len: 0, value: 0, flag: false };

    /// A 2-octet (PRI) call reference; `value` is masked to 15 bits.
    pub fn new(value: u16, flag: bool) -> Self {
        CallRef { len: 2, value: value & 0x7FFF, flag }
    }

    /// True for the global call reference (value 0) or the dummy one (length 0).
    pub fn is_global(&self) -> bool {
        self.value == 0
    }

    /// The call reference as the other side writes it (flag inverted).
    pub fn reply(self) -> Self {
        CallRef { flag: !self.flag, ..self }
    }
}

macro_rules! message_types {
    ($( $(#[$doc:meta])* $name:ident = $v:expr, $text:expr; )*) => {
        /// A Q.931 message type; types this codec does not implement are kept as `Unknown`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MessageType {
            $( $(#[$doc])* $name, )*
            /// Any other message type octet.
            Unknown(u8),
        }

        impl MessageType {
            /// Maps the message type octet.
            pub fn from_u8(v: u8) -> Self {
                match v {
                    $( $v => MessageType::$name, )*
                    other => MessageType::Unknown(other),
                }
            }

            /// The message type octet.
            pub fn to_u8(self) -> u8 {
                match self {
                    $( MessageType::$name => $v, )*
                    MessageType::Unknown(v) => v,
                }
            }

            /// The name as written in Q.931, e.g. "RELEASE COMPLETE".
            pub fn name(self) -> &'static str {
                match self {
                    $( MessageType::$name => $text, )*
                    MessageType::Unknown(_) => "UNKNOWN",
                }
            }
        }
    };
}

message_types! {
    /// ALERTING (0x01).
    Alerting = 0x01, "ALERTING";
    /// CALL PROCEEDING (0x02).
    CallProceeding = 0x02, "CALL PROCEEDING";
    /// PROGRESS (0x03).
    Progress = 0x03, "PROGRESS";
    /// SETUP (0x05).
    Setup = 0x05, "SETUP";
    /// CONNECT (0x07).
    Connect = 0x07, "CONNECT";
    /// SETUP ACKNOWLEDGE (0x0D).
    SetupAck = 0x0D, "SETUP ACKNOWLEDGE";
    /// CONNECT ACKNOWLEDGE (0x0F).
    ConnectAck = 0x0F, "CONNECT ACKNOWLEDGE";
    /// USER INFORMATION (0x20).
    UserInformation = 0x20, "USER INFORMATION";
    /// DISCONNECT (0x45).
    Disconnect = 0x45, "DISCONNECT";
    /// RESTART (0x46).
    Restart = 0x46, "RESTART";
    /// RELEASE (0x4D).
    Release = 0x4D, "RELEASE";
    /// RESTART ACKNOWLEDGE (0x4E).
    RestartAck = 0x4E, "RESTART ACKNOWLEDGE";
    /// RELEASE COMPLETE (0x5A).
    ReleaseComplete = 0x5A, "RELEASE COMPLETE";
    /// FACILITY (0x62).
    Facility = 0x62, "FACILITY";
    /// NOTIFY (0x6E).
    Notify = 0x6E, "NOTIFY";
    /// STATUS ENQUIRY (0x75).
    StatusEnquiry = 0x75, "STATUS ENQUIRY";
    /// INFORMATION (0x7B).
    Information = 0x7B, "INFORMATION";
    /// STATUS (0x7D).
    Status = 0x7D, "STATUS";
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageType::Unknown(v) => write!(f, "UNKNOWN({v:#04x})"),
            known => f.write_str(known.name()),
        }
    }
}

/// A non-fatal fault found while parsing elements; the message is still usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IeProblem {
    /// A typed element's contents were invalid; it is kept as [`Ie::Raw`].
    InvalidContent {
        /// Codeset (always 0: only codeset 0 is decoded).
        codeset: u8,
        /// Element identifier.
        id: u8,
        /// What was wrong.
        error: IeError,
    },
    /// The last element's length ran past the end of the message; it was dropped.
    Truncated {
        /// Codeset of the element.
        codeset: u8,
        /// Element identifier.
        id: u8,
    },
    /// A variable element came after one with a higher id in the same codeset (§5.8.5.1);
    /// accepted.
    OutOfSequence {
        /// Codeset of the element.
        codeset: u8,
        /// Element identifier.
        id: u8,
    },
    /// A locking shift to codeset 0 (ignored) or to a lower codeset (applied anyway).
    BadShift {
        /// The shift octet.
        octet: u8,
    },
}

/// A parsed message plus the element problems found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The message (elements in normalised order, see [`Message::normalize`]).
    pub message: Message,
    /// Element problems, in the order found.
    pub problems: Vec<IeProblem>,
}

/// A Q.931 message: call reference, type and information elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The call reference.
    pub call_ref: CallRef,
    /// The message type.
    pub msg_type: MessageType,
    /// Information elements, all codesets, in order.
    pub ies: Vec<Ie>,
}

impl Message {
    /// An empty message of type `msg_type`.
    pub fn new(call_ref: CallRef, msg_type: MessageType) -> Self {
        Message { call_ref, msg_type, ies: Vec::new() }
    }

    /// Adds an element (builder style).
    pub fn with(mut self, ie: Ie) -> Self {
        self.ies.push(ie);
        self
    }

    /// Parses a message, leniently; element problems are dropped (see [`Message::decode`]).
    ///
    /// # Errors
    /// The errors of [`Message::decode`]; all mean "ignore this message" (§5.8.1–5.8.3).
    pub fn parse(bytes: &[u8]) -> Result<Message, Q931Error> {
        Message::decode(bytes).map(|d| d.message)
    }

    /// Parses a message and reports element problems. Variable elements in codeset 0 with a
    /// typed decoder become typed variants; every other element is kept raw.
    ///
    /// # Errors
    /// [`Q931Error::TooShort`], [`Q931Error::ProtocolDiscriminator`],
    /// [`Q931Error::CallRefLength`]: the message must be ignored.
    pub fn decode(bytes: &[u8]) -> Result<Decoded, Q931Error> {
        let [pd, crl, rest @ ..] = bytes else {
            return Err(Q931Error::TooShort(bytes.len()));
        };
        if *pd != PROTOCOL_DISCRIMINATOR {
            return Err(Q931Error::ProtocolDiscriminator(*pd));
        }
        if crl & 0xF0 != 0 || crl & 0x0F > 2 {
            return Err(Q931Error::CallRefLength(*crl));
        }
        let len = usize::from(crl & 0x0F);
        if rest.len() < len + 1 {
            return Err(Q931Error::TooShort(bytes.len()));
        }
        let (cr, rest) = rest.split_at(len);
        let call_ref = match cr {
            [] => CallRef::DUMMY,
            [a] => CallRef { len: 1, value: u16::from(a & 0x7F), flag: a & 0x80 != 0 },
            [a, b, ..] => CallRef {
                len: 2,
                value: u16::from(a & 0x7F) << 8 | u16::from(*b),
                flag: a & 0x80 != 0,
            },
        };
        let msg_type = MessageType::from_u8(rest[0]);
        let (ies, problems) = parse_ies(&rest[1..]);
        let mut message = Message { call_ref, msg_type, ies };
        message.normalize();
        Ok(Decoded { message, problems })
    }

    /// Puts the elements in the order `emit` writes them: by codeset, then ascending id
    /// within a codeset (stable, so repeated elements keep their order). Single-octet
    /// elements go first in their codeset, except a Repeat indicator, which stays in front
    /// of the element that follows it.
    pub fn normalize(&mut self) {
        let n = self.ies.len();
        let mut keys = vec![(0u8, 0u16); n];
        for i in (0..n).rev() {
            let ie = &self.ies[i];
            let cs = ie.codeset();
            let key = match ie {
                Ie::RepeatIndicator(_) => match self.ies.get(i + 1) {
                    Some(next) if next.codeset() == cs => keys[i + 1].1,
                    _ => 0x100,
                },
                _ if ie.is_single_octet() => 0,
                _ => u16::from(ie.id()),
            };
            keys[i] = (cs, key);
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| keys[i]);
        if order.iter().enumerate().all(|(k, &i)| k == i) {
            return;
        }
        let mut old: Vec<Option<Ie>> = self.ies.drain(..).map(Some).collect();
        self.ies = order.iter().filter_map(|&i| old[i].take()).collect();
    }

    /// Appends the encoded message. Elements are written in normalised order; codesets other
    /// than 0 follow a locking shift (or a non-locking one for a lone element).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(PROTOCOL_DISCRIMINATOR);
        out.push(self.call_ref.len.min(2));
        let flag = if self.call_ref.flag { 0x80 } else { 0 };
        match self.call_ref.len {
            0 => {}
            1 => out.push(flag | (self.call_ref.value & 0x7F) as u8),
            _ => {
                out.push(flag | (self.call_ref.value >> 8 & 0x7F) as u8);
                out.push((self.call_ref.value & 0xFF) as u8);
            }
        }
        out.push(self.msg_type.to_u8());
        let mut sorted;
        let mut ies = &self.ies;
        if !self.is_normalized() {
            sorted = self.clone();
            sorted.normalize();
            ies = &sorted.ies;
        }
        let mut i = 0;
        while i < ies.len() {
            let cs = ies[i].codeset();
            let end = i + ies[i..].iter().take_while(|ie| ie.codeset() == cs).count();
            match (cs, end - i) {
                (0, _) => {}
                (_, 1) => out.push(0x98 | cs),
                _ => out.push(0x90 | cs),
            }
            ies[i..end].iter().for_each(|ie| ie.emit(out));
            i = end;
        }
    }

    fn is_normalized(&self) -> bool {
        let mut copy = self.clone();
        copy.normalize();
        copy.ies == self.ies
    }

    /// The encoded message as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.emit(&mut out);
        out
    }

    /// The first codeset-0 element matching `f`.
    fn find<'a, T>(&'a self, f: impl Fn(&'a Ie) -> Option<T>) -> Option<T> {
        self.ies.iter().find_map(f)
    }

    /// The first valid Cause element.
    pub fn cause(&self) -> Option<&CauseIe> {
        self.find(|ie| match ie {
            Ie::Cause(c) => Some(c),
            _ => None,
        })
    }

    /// The first valid Channel identification.
    pub fn channel_id(&self) -> Option<&ChannelId> {
        self.find(|ie| match ie {
            Ie::ChannelId(c) => Some(c),
            _ => None,
        })
    }

    /// The first valid Bearer capability.
    pub fn bearer_capability(&self) -> Option<&BearerCapability> {
        self.find(|ie| match ie {
            Ie::BearerCapability(b) => Some(b),
            _ => None,
        })
    }

    /// The Called party number.
    pub fn called_number(&self) -> Option<&CalledNumber> {
        self.find(|ie| match ie {
            Ie::CalledNumber(n) => Some(n),
            _ => None,
        })
    }

    /// The Calling party number.
    pub fn calling_number(&self) -> Option<&PartyNumber> {
        self.find(|ie| match ie {
            Ie::CallingNumber(n) => Some(n),
            _ => None,
        })
    }

    /// The Connected number.
    pub fn connected_number(&self) -> Option<&PartyNumber> {
        self.find(|ie| match ie {
            Ie::ConnectedNumber(n) => Some(n),
            _ => None,
        })
    }

    /// The Redirecting number.
    pub fn redirecting_number(&self) -> Option<&RedirectingNumber> {
        self.find(|ie| match ie {
            Ie::RedirectingNumber(n) => Some(n),
            _ => None,
        })
    }

    /// All valid Progress indicators, in order.
    pub fn progress_indicators(&self) -> impl Iterator<Item = &ProgressIndicator> {
        self.ies.iter().filter_map(|ie| match ie {
            Ie::Progress(p) => Some(p),
            _ => None,
        })
    }

    /// True when a Progress indicator says in-band information is available (description 1
    /// or 8): the caller should connect the B-channel audio.
    pub fn inband_available(&self) -> bool {
        self.progress_indicators().any(|p| {
            p.description == ProgressIndicator::INBAND_AVAILABLE
                || p.description == ProgressIndicator::NOT_END_TO_END_ISDN
        })
    }

    /// The Call state value.
    pub fn call_state(&self) -> Option<u8> {
        self.find(|ie| match ie {
            Ie::CallState(s) => Some(*s),
            _ => None,
        })
    }

    /// The Restart indicator class.
    pub fn restart_class(&self) -> Option<RestartClass> {
        self.find(|ie| match ie {
            Ie::RestartIndicator(r) => Some(*r),
            _ => None,
        })
    }

    /// The Display text.
    pub fn display(&self) -> Option<&str> {
        self.find(|ie| match ie {
            Ie::Display(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The Notification indicator description.
    pub fn notification(&self) -> Option<u8> {
        self.find(|ie| match ie {
            Ie::Notification(n) => Some(*n),
            _ => None,
        })
    }

    /// True when Sending complete is present.
    pub fn sending_complete(&self) -> bool {
        self.ies.iter().any(|ie| matches!(ie, Ie::SendingComplete))
    }

    /// SETUP with bearer capability, optional channel, calling and called numbers.
    pub fn setup(
        call_ref: CallRef,
        bearer: BearerCapability,
        channel: Option<ChannelId>,
        calling: Option<PartyNumber>,
        called: CalledNumber,
    ) -> Self {
        let mut m = Message::new(call_ref, MessageType::Setup).with(Ie::BearerCapability(bearer));
        m.ies.extend(channel.map(Ie::ChannelId));
        m.ies.extend(calling.map(Ie::CallingNumber));
        m.with(Ie::CalledNumber(called))
    }

    /// A message carrying only a Channel identification (CALL PROCEEDING, ALERTING, ...).
    pub fn with_channel(call_ref: CallRef, msg_type: MessageType, channel: ChannelId) -> Self {
        Message::new(call_ref, msg_type).with(Ie::ChannelId(channel))
    }

    /// A clearing message (DISCONNECT, RELEASE, RELEASE COMPLETE) with a cause.
    pub fn clearing(call_ref: CallRef, msg_type: MessageType, cause: CauseIe) -> Self {
        Message::new(call_ref, msg_type).with(Ie::Cause(cause))
    }

    /// STATUS with a cause and our call state.
    pub fn status(call_ref: CallRef, cause: CauseIe, call_state: u8) -> Self {
        Message::new(call_ref, MessageType::Status)
            .with(Ie::Cause(cause))
            .with(Ie::CallState(call_state))
    }

    /// RESTART (or RESTART ACKNOWLEDGE with `ack`) on the global call reference; pass the
    /// channel for class [`RestartClass::Indicated`].
    pub fn restart(class: RestartClass, channel: Option<ChannelId>, ack: bool) -> Self {
        let t = if ack { MessageType::RestartAck } else { MessageType::Restart };
        let mut m = Message::new(CallRef { flag: ack, ..CallRef::GLOBAL }, t);
        m.ies.extend(channel.map(Ie::ChannelId));
        m.with(Ie::RestartIndicator(class))
    }
}

/// Walks the element part of a message, applying shifts.
fn parse_ies(mut b: &[u8]) -> (Vec<Ie>, Vec<IeProblem>) {
    let mut ies = Vec::new();
    let mut problems = Vec::new();
    let mut active = 0u8;
    let mut temporary: Option<u8> = None;
    let mut last_id = [0u8; 8];
    while let Some((&o, rest)) = b.split_first() {
        if o & 0xF0 == 0x90 {
            let cs = o & 7;
            if o & 0x08 != 0 {
                temporary = Some(cs);
            } else {
                temporary = None;
                if cs == 0 || cs < active {
                    problems.push(IeProblem::BadShift { octet: o });
                }
                if cs != 0 {
                    active = cs;
                }
            }
            b = rest;
            continue;
        }
        let cs = temporary.take().unwrap_or(active);
        if o & 0x80 != 0 {
            ies.push(if cs == 0 {
                Ie::parse_single(o)
            } else {
                Ie::RawSingle { codeset: cs, octet: o }
            });
            b = rest;
            continue;
        }
        let Some((&len, rest)) = rest.split_first() else {
            problems.push(IeProblem::Truncated { codeset: cs, id: o });
            break;
        };
        let len = usize::from(len);
        if rest.len() < len {
            problems.push(IeProblem::Truncated { codeset: cs, id: o });
            break;
        }
        let (content, rest) = rest.split_at(len);
        b = rest;
        if o < last_id[usize::from(cs)] {
            problems.push(IeProblem::OutOfSequence { codeset: cs, id: o });
        }
        last_id[usize::from(cs)] = o;
        let raw = || Ie::Raw { codeset: cs, id: o, bytes: content.to_vec() };
        if cs != 0 {
            ies.push(raw());
            continue;
        }
        match Ie::parse_variable(o, content) {
            Ok(ie) => ies.push(ie),
            Err(error) => {
                problems.push(IeProblem::InvalidContent { codeset: 0, id: o, error });
                ies.push(raw());
            }
        }
    }
    (ies, problems)
}
