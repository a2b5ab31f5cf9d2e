//! Sample-level signal processing for cardpbx, sans-IO.
//!
//! Everything here is a pure function or a small state struct fed with samples and returning
//! results: no threads, no clocks, no files. Per-sample and per-chunk functions do not allocate,
//! so the media engine can call them on its real-time tick.
#![deny(unsafe_code)]

pub mod callerid;
pub mod dtmf;
pub mod echo;
pub mod fax;
pub mod faxtone;
pub mod g711;
pub mod goertzel;
pub mod mfr2;
pub mod progress;
pub mod tone;
pub mod toneplan;
