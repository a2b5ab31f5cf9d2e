//! The dialplan: what the digits collected so far mean.

use super::Pbx;
use cardpbx_hal::ChannelId;

/// The meaning of a dialled digit string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialResult {
    /// An extension's number: ring its phone.
    Extension(ChannelId),
    /// A hunt group's number (index into the configured hunt groups).
    HuntGroup(usize),
    /// An outgoing route matched: send `number` (the digits after stripping) on its trunk group.
    Route {
        /// Index of the route.
        route: usize,
        /// The digits to send to the exchange.
        number: String,
    },
    /// More digits may follow.
    Incomplete,
    /// Nothing can match.
    Unknown,
}

/// What `digits` mean. `complete` says no more digits will come (inter-digit timeout, or an
/// incoming trunk call's fixed target), which turns a long-enough route number into a call.
///
/// Exact extension and hunt group numbers win at once. A route matches when its prefix starts
/// the digits and at least `min_digits` follow it; since numbers on the public network vary in
/// length, a route number is complete only when the caller stops dialling.
pub(super) fn analyse(pbx: &Pbx, digits: &str, complete: bool) -> DialResult {
    if let Some(&chan) = pbx.extensions.get(digits) {
        return DialResult::Extension(chan);
    }
    if let Some(g) = pbx.hunt_groups.iter().position(|h| h.number == digits) {
        return DialResult::HuntGroup(g);
    }
    for (i, r) in pbx.routes.iter().enumerate() {
        if let Some(rest) = digits.strip_prefix(r.prefix.as_str()) {
            if rest.len() >= r.min_digits {
                if complete {
                    let strip = r.strip.min(digits.len());
                    return DialResult::Route { route: i, number: digits[strip..].to_string() };
                }
                return DialResult::Incomplete;
            }
            return if complete { DialResult::Unknown } else { DialResult::Incomplete };
        }
    }
    if complete {
        return DialResult::Unknown;
    }
    let is_prefix_of_something = pbx.extensions.keys().any(|n| n.starts_with(digits))
        || pbx.hunt_groups.iter().any(|h| h.number.starts_with(digits))
        || pbx.routes.iter().any(|r| r.prefix.starts_with(digits));
    if is_prefix_of_something {
        DialResult::Incomplete
    } else {
        DialResult::Unknown
    }
}
