//! Call signalling protocols for cardpbx, sans-IO.
//!
//! Each protocol is a plain state machine: `handle_*(now, input)` feeds it, `poll_*` drains
//! what it wants done, `poll_timeout()` says when it next needs `handle_timeout`-style
//! attention. Time is the card's tick count ([`cardpbx_hal::Tick`], milliseconds) passed in by
//! the caller; nothing here reads a clock, does I/O, locks or logs.
#![deny(unsafe_code)]

pub mod lapd;
pub mod loopstart;
pub mod pri;
pub mod q931;
pub mod r2;
