//! Analog loop start: the line state machines of FXS and FXO ports, sans-IO.
//!
//! - [`FxsLine`]: our port is the exchange; it rings a phone, tells seizure, answer, hook flash
//!   and hang-up apart, and controls battery polarity.
//! - [`FxoLine`]: our port is a phone on an exchange line; it detects ringing, answers, seizes,
//!   flashes and supervises far-end disconnect (polarity reversal, loop-current loss, or busy
//!   tone reported by the daemon's tone detector).
//!
//! Both take debounced [`HalEvent`](cardpbx_hal::HalEvent)s and the time (`now`, card ticks in
//! ms) from the caller, and hand back HAL commands and call-control events through `poll_*`.
//! They do not read a clock, do I/O, generate or detect tones, or allocate after construction.
//! Every input first runs the timers that are due, so results do not depend on whether the
//! caller ran [`FxsLine::handle_timeout`] before feeding an event at the same tick. Time never
//! runs backwards: an earlier `now` than one already seen is taken as the latest seen.

mod cadence;
mod fxo;
mod fxs;
mod queue;

pub use cadence::{CadenceError, RingCadence, MAX_CADENCE_SEGMENTS};
pub use fxo::{
    DisconnectCause, FxoConfig, FxoError, FxoEvent, FxoLine, FxoSnapshot, FxoState, FxoTimer,
};
pub use fxs::{FxsConfig, FxsError, FxsEvent, FxsLine, FxsSnapshot, FxsState, FxsTimer, RingPhase};
