//! The control socket: the line-delimited JSON protocol, the server the daemon runs, the client
//! the CLI uses, and the CLI's argument definitions and renderers.
//!
//! The server does not know the daemon's internals: it forwards each request on a channel and
//! writes back whatever answer the daemon's control loop sends.

pub mod cli;
pub mod client;
pub mod conference;
pub mod proto;
pub mod server;
pub mod span;
pub mod trunk;

pub use client::{ClientError, CtlClient};
pub use proto::{
    CallData, CardData, ChannelData, ConfigFileData, CtlData, CtlRequest, CtlResponse,
    EngineSummary, PingData, PortData, ReloadData, SpanData, StatusData,
};
pub use server::{CtlEnvelope, CtlRequests, CtlServer, ServerError};

#[cfg(test)]
mod tests;
