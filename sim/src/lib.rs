//! The cardpbx software card.
//!
//! [`SimCard`] implements the HAL traits exactly like a hardware card and simulates what hangs
//! on its lines: a [`SimPhone`] on every FXS port, a central office with a remote party
//! ([`SimCoLine`]) on every FXO port, and E1 spans whose far end is a simulated ISDN exchange
//! ([`e1`]) or an external peer program. Every simulated endpoint
//! speaks a distinct audio signature and checks what it hears ([`signature`]), a seeded
//! [`traffic`] generator places calls, and faults can be injected (span alarms, unplug).
//!
//! Time is the card's tick: on the virtual clock a simulated hour runs in seconds and every run
//! from the same seed is identical; on the real-time clock ticks are paced at 1 ms.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bearer;
pub mod card;
pub mod clock;
pub mod coline;
pub mod config;
pub mod dsock;
pub mod e1;
mod events;
pub mod extaudio;
pub mod faxpeer;
pub mod hybrid;
pub mod phone;
pub mod r2far;
pub mod signature;
pub mod traffic;

pub use card::SimCard;
pub use clock::ClockStats;
pub use coline::{CoCounters, CoState, SimCoLine};
pub use config::{ClockMode, CoCallerId, CoLineConfig, DisconnectSignal, PhoneConfig, SimConfig};
pub use e1::{ExchangeConfig, ExchangeCounters, RemoteCall, RemoteDirection, SpanFarEnd};
pub use extaudio::ExtAudioStats;
pub use faxpeer::SimFax;
pub use hybrid::{EchoPath, Hybrid};
pub use phone::{PhoneCounters, PhoneState, SimPhone};
pub use r2far::{R2Counters, R2RemoteCall};
pub use signature::{AudioCheck, BlockClass, EndpointId, Heard};
pub use traffic::{CallMix, TrafficConfig, TrafficSnapshot, TrafficStats};
