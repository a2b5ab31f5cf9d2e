//! Configuration: the TOML model, loading with the include directory, and validation whose
//! errors name the file, line, key and what is allowed.
//!
//! This module does not apply a configuration to a running daemon; it only produces a checked
//! [`Config`] value.

pub mod callback;
pub mod callcenter;
pub mod callcenter_routing;
mod check;
pub mod conference;
pub mod edit;
pub mod fax;
mod load;
pub mod model;
pub mod recording;
pub mod voicemail;

pub use check::{MAX_NUMBER_LEN, MAX_PORTS, TONE_PLANS};
pub use load::{ConfigError, ConfigErrors};
pub use model::*;

#[cfg(test)]
mod tests;
