//! Q.850 cause values and the Q.931 Cause information element (§4.5.12).

use super::ie::IeError;

/// A Q.850 cause value (7 bits). Unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cause(pub u8);

/// One row of the cause table: value, constant name, Q.850 meaning.
macro_rules! causes {
    ($( $(#[$doc:meta])* $name:ident = $v:expr, $text:expr; )*) => {
        impl Cause {
            $( $(#[$doc])* pub const $name: Cause = Cause($v); )*

            /// The Q.850 meaning of this cause, or `None` for a value Q.850 does not define.
            pub fn description(self) -> Option<&'static str> {
                match self.0 {
                    $( $v => Some($text), )*
                    _ => None,
                }
            }

            /// Every cause value this table knows, in ascending order.
            pub const ALL: &'static [Cause] = &[ $( Cause($v), )* ];
        }
    };
}

causes! {
    /// 1: unallocated (unassigned) number.
    UNALLOCATED_NUMBER = 1, "unallocated (unassigned) number";
    /// 2: no route to specified transit network.
    NO_ROUTE_TRANSIT_NET = 2, "no route to specified transit network";
    /// 3: no route to destination.
    NO_ROUTE_DESTINATION = 3, "no route to destination";
    /// 6: channel unacceptable.
    CHANNEL_UNACCEPTABLE = 6, "channel unacceptable";
    /// 7: call awarded and being delivered in an established channel.
    CALL_AWARDED_DELIVERED = 7, "call awarded and being delivered in an established channel";
    /// 16: normal call clearing.
    NORMAL_CLEARING = 16, "normal call clearing";
    /// 17: user busy.
    USER_BUSY = 17, "user busy";
    /// 18: no user responding (no ALERTING/CONNECT in time).
    NO_USER_RESPONSE = 18, "no user responding";
    /// 19: no answer from user (user alerted).
    NO_ANSWER = 19, "no answer from user (user alerted)";
    /// 21: call rejected.
    CALL_REJECTED = 21, "call rejected";
    /// 22: number changed.
    NUMBER_CHANGED = 22, "number changed";
    /// 26: non-selected user clearing.
    NONSELECTED_USER_CLEARING = 26, "non-selected user clearing";
    /// 27: destination out of order.
    DESTINATION_OUT_OF_ORDER = 27, "destination out of order";
    /// 28: invalid number format (address incomplete).
    INVALID_NUMBER_FORMAT = 28, "invalid number format (address incomplete)";
    /// 29: facility rejected.
    FACILITY_REJECTED = 29, "facility rejected";
    /// 30: response to STATUS ENQUIRY.
    RESPONSE_TO_STATUS_ENQUIRY = 30, "response to STATUS ENQUIRY";
    /// 31: normal, unspecified.
    NORMAL_UNSPECIFIED = 31, "normal, unspecified";
    /// 34: no circuit/channel available.
    NO_CIRCUIT_AVAILABLE = 34, "no circuit/channel available";
    /// 38: network out of order.
    NETWORK_OUT_OF_ORDER = 38, "network out of order";
    /// 41: temporary failure.
    TEMPORARY_FAILURE = 41, "temporary failure";
    /// 42: switching equipment congestion.
    SWITCH_CONGESTION = 42, "switching equipment congestion";
    /// 43: access information discarded.
    ACCESS_INFO_DISCARDED = 43, "access information discarded";
    /// 44: requested circuit/channel not available.
    REQUESTED_CHANNEL_NOT_AVAILABLE = 44, "requested circuit/channel not available";
    /// 47: resource unavailable, unspecified.
    RESOURCE_UNAVAILABLE = 47, "resource unavailable, unspecified";
    /// 49: quality of service not available.
    QOS_NOT_AVAILABLE = 49, "quality of service not available";
    /// 50: requested facility not subscribed.
    FACILITY_NOT_SUBSCRIBED = 50, "requested facility not subscribed";
    /// 57: bearer capability not authorized.
    BEARER_NOT_AUTHORIZED = 57, "bearer capability not authorized";
    /// 58: bearer capability not presently available.
    BEARER_NOT_AVAILABLE = 58, "bearer capability not presently available";
    /// 63: service or option not available, unspecified.
    SERVICE_NOT_AVAILABLE = 63, "service or option not available, unspecified";
    /// 65: bearer capability not implemented.
    BEARER_NOT_IMPLEMENTED = 65, "bearer capability not implemented";
    /// 66: channel type not implemented.
    CHANNEL_TYPE_NOT_IMPLEMENTED = 66, "channel type not implemented";
    /// 69: requested facility not implemented.
    FACILITY_NOT_IMPLEMENTED = 69, "requested facility not implemented";
    /// 79: service or option not implemented, unspecified.
    SERVICE_NOT_IMPLEMENTED = 79, "service or option not implemented, unspecified";
    /// 81: invalid call reference value.
    INVALID_CALL_REFERENCE = 81, "invalid call reference value";
    /// 82: identified channel does not exist.
    CHANNEL_DOES_NOT_EXIST = 82, "identified channel does not exist";
    /// 88: incompatible destination.
    INCOMPATIBLE_DESTINATION = 88, "incompatible destination";
    /// 95: invalid message, unspecified.
    INVALID_MESSAGE = 95, "invalid message, unspecified";
    /// 96: mandatory information element is missing.
    MANDATORY_IE_MISSING = 96, "mandatory information element is missing";
    /// 97: message type non-existent or not implemented.
    MESSAGE_TYPE_NONEXISTENT = 97, "message type non-existent or not implemented";
    /// 98: message not compatible with call state or message type non-existent.
    MESSAGE_NOT_COMPATIBLE = 98, "message not compatible with call state or message type non-existent or not implemented";
    /// 99: information element non-existent or not implemented.
    IE_NONEXISTENT = 99, "information element/parameter non-existent or not implemented";
    /// 100: invalid information element contents.
    INVALID_IE_CONTENTS = 100, "invalid information element contents";
    /// 101: message not compatible with call state.
    WRONG_CALL_STATE = 101, "message not compatible with call state";
    /// 102: recovery on timer expiry.
    RECOVERY_ON_TIMER_EXPIRY = 102, "recovery on timer expiry";
    /// 111: protocol error, unspecified.
    PROTOCOL_ERROR = 111, "protocol error, unspecified";
    /// 127: interworking, unspecified.
    INTERWORKING = 127, "interworking, unspecified";
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.description() {
            Some(text) => write!(f, "cause {} ({text})", self.0),
            None => write!(f, "cause {}", self.0),
        }
    }
}

/// Location field of the Cause and Progress indicator elements (4 bits, Q.931 §4.5.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location(pub u8);

impl Location {
    /// 0: user.
    pub const USER: Location = Location(0);
    /// 1: private network serving the local user.
    pub const PRIVATE_LOCAL: Location = Location(1);
    /// 2: public network serving the local user.
    pub const PUBLIC_LOCAL: Location = Location(2);
    /// 3: transit network.
    pub const TRANSIT: Location = Location(3);
    /// 4: public network serving the remote user.
    pub const PUBLIC_REMOTE: Location = Location(4);
    /// 5: private network serving the remote user.
    pub const PRIVATE_REMOTE: Location = Location(5);
    /// 7: international network.
    pub const INTERNATIONAL: Location = Location(7);
    /// 10: network beyond interworking point.
    pub const BEYOND_INTERWORKING: Location = Location(10);
}

/// The Cause information element (id 0x08): coding standard, location, cause, diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseIe {
    /// Coding standard, 2 bits: 0 = ITU-T, 2 = national, 3 = specific to location.
    pub coding_standard: u8,
    /// Where the cause was generated.
    pub location: Location,
    /// Octet 3a "recommendation" (7 bits), rarely present.
    pub recommendation: Option<u8>,
    /// The cause value.
    pub cause: Cause,
    /// Diagnostic octets (e.g. the offending IE identifiers for causes 96, 99, 100).
    pub diagnostics: Vec<u8>,
}

impl CauseIe {
    /// An ITU-T coded cause with no diagnostics.
    pub fn new(location: Location, cause: Cause) -> Self {
        CauseIe {
            coding_standard: 0,
            location,
            recommendation: None,
            cause,
            diagnostics: Vec::new(),
        }
    }

    /// The same cause with `diagnostics` attached.
    pub fn with_diagnostics(mut self, diagnostics: Vec<u8>) -> Self {
        self.diagnostics = diagnostics;
        self
    }

    /// Decodes the element contents (after id and length).
    ///
    /// # Errors
    /// [`IeError::Length`] when fewer than 2 octets, [`IeError::Extension`] when octet 3a
    /// is announced but octet 4 is missing.
    pub fn parse(c: &[u8]) -> Result<Self, IeError> {
        let (&o3, rest) = c.split_first().ok_or(IeError::Length)?;
        let (recommendation, rest) = if o3 & 0x80 == 0 {
            let (&o3a, rest) = rest.split_first().ok_or(IeError::Extension("3a"))?;
            (Some(o3a & 0x7F), rest)
        } else {
            (None, rest)
        };
        let (&o4, diag) = rest.split_first().ok_or(IeError::Length)?;
        Ok(CauseIe {
            coding_standard: (o3 >> 5) & 3,
            location: Location(o3 & 0x0F),
            recommendation,
            cause: Cause(o4 & 0x7F),
            diagnostics: diag.to_vec(),
        })
    }

    /// Appends the element contents (after id and length).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let ext = if self.recommendation.is_some() { 0 } else { 0x80 };
        out.push(ext | (self.coding_standard & 3) << 5 | (self.location.0 & 0x0F));
        if let Some(r) = self.recommendation {
            out.push(0x80 | (r & 0x7F));
        }
        out.push(0x80 | (self.cause.0 & 0x7F));
        out.extend_from_slice(&self.diagnostics);
    }
}
