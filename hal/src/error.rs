//! The HAL error type shared by every backend.

use std::fmt;

/// What went wrong, in terms the daemon can react to without knowing the backend.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The card, span or channel does not exist (wrong number in the configuration).
    NotFound,
    /// The device exists but the process may not open it (permissions, udev rules).
    PermissionDenied,
    /// The card disappeared (hot-unplug, driver unloaded).
    Gone,
    /// The operation does not apply to this channel's signalling kind (ringing an FXO port).
    WrongSignalling,
    /// A parameter is out of range (framing the card does not support, frame too long).
    InvalidArgument,
    /// The tick came late: the card's buffers over- or under-ran.
    Overrun,
    /// Any other failure of the operating system or the device.
    Io,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Gone => "device gone",
            ErrorKind::WrongSignalling => "wrong signalling kind for this channel",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Overrun => "overrun",
            ErrorKind::Io => "I/O error",
        };
        f.write_str(s)
    }
}

/// A HAL error: a generic [`ErrorKind`] plus the backend's own description.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` with a message that names the card, span or channel involved.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    /// A new error that wraps an underlying cause (an `io::Error`, an errno).
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error { kind, message: message.into(), source: Some(Box::new(source)) }
    }

    /// The generic kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend's description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Result type of every HAL operation.
pub type Result<T> = std::result::Result<T, Error>;
