//! Analog loop-start ports: hook state and the commands an FXS or FXO port takes.

use serde::Serialize;

/// Hook state of a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookState {
    /// Loop open, no current.
    OnHook,
    /// Loop closed, current flows.
    OffHook,
}

/// Commands for an FXS port (the card is the exchange; a phone hangs on the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxsCommand {
    /// Apply ringing voltage (one burst of the cadence; the caller times the cadence).
    RingOn,
    /// Remove ringing voltage.
    RingOff,
    /// Feed battery with normal (false) or reversed (true) polarity.
    SetPolarity(bool),
    /// Remove battery for the given milliseconds (open-loop disconnect / CPC).
    OpenLoop(u16),
}

/// Commands for an FXO port (the card is a phone towards a central office line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxoCommand {
    /// Close the loop: seize the line or answer a ringing line.
    OffHook,
    /// Open the loop: release the line.
    OnHook,
    /// Open the loop for the given milliseconds, then close it again (hook flash / recall).
    Flash(u16),
}
