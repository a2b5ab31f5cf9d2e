//! ISDN PRI tools of the daemon: D-channel captures ([`pcap`]) and the `cardpbx pri probe`
//! link tester ([`probe`]). See `docs/pri.md`.

pub mod pcap;
pub mod probe;

use cardpbx_signalling::q931::call::Side;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `cardpbx pri ...`
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum PriCmd {
    /// Run our LAPD/Q.931 stack alone over an external D-channel socket (one LAPD frame per
    /// SOCK_SEQPACKET message): answer calls, place calls, print every message and event, and
    /// end with `summary: placed=N answered=N completed=N failed=N` (exit 0 only if all
    /// completed).
    Probe(ProbeArgs),
}

/// Which side of the interface the probe plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// User side (CPE, TE).
    User,
    /// Network side (exchange, NT).
    Network,
}

/// Arguments of `cardpbx pri probe`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ProbeArgs {
    /// The D-channel socket (Unix SOCK_SEQPACKET).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Our side of the interface.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Listen on the socket (accept one peer) instead of connecting to it.
    #[arg(long)]
    pub listen: bool,
    /// Place calls to NUMBER once the interface is up.
    #[arg(long, value_name = "NUMBER")]
    pub call: Option<String>,
    /// How many simultaneous calls to place (1-30).
    #[arg(long, default_value_t = 1, value_name = "N", requires = "call",
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub calls: u32,
    /// Clear each call this many seconds after it was answered (default: wait for the far end).
    #[arg(long, value_name = "SECONDS")]
    pub hold: Option<f64>,
    /// Restart the whole interface whenever the data link comes up (RESTART "all
    /// interfaces"), and place calls only once it is acknowledged.
    #[arg(long)]
    pub restart: bool,
    /// Write every D-channel frame to this pcap file (link type 177, LINUX_LAPD).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Seconds to linger after the last call cleared.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub exit_after: f64,
    /// Give up after this many seconds without a Q.931 message or event.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub idle: f64,
}

fn seconds_ms(name: &str, s: f64) -> anyhow::Result<u64> {
    if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) {
        anyhow::bail!("--{name} must be between 0 and 86400 seconds, got {s}");
    }
    Ok((s * 1000.0).round() as u64)
}

impl ProbeArgs {
    /// The probe options these arguments ask for.
    ///
    /// # Errors
    /// A time is negative, not a number or longer than a day.
    pub fn options(&self) -> anyhow::Result<probe::ProbeOptions> {
        Ok(probe::ProbeOptions {
            socket: self.socket.clone(),
            side: match self.role {
                RoleArg::User => Side::User,
                RoleArg::Network => Side::Network,
            },
            listen: self.listen,
            call: self.call.clone(),
            calls: self.calls,
            hold_ms: self.hold.map(|h| seconds_ms("hold", h)).transpose()?,
            restart: self.restart,
            pcap: self.pcap.clone(),
            exit_after_ms: seconds_ms("exit-after", self.exit_after)?,
            idle_ms: seconds_ms("idle", self.idle)?,
        })
    }
}

/// Runs a `cardpbx pri ...` command; returns the exit status.
///
/// # Errors
/// Bad arguments, socket or file errors.
pub fn run(cmd: &PriCmd) -> anyhow::Result<i32> {
    match cmd {
        PriCmd::Probe(args) => probe::run_probe(args.options()?),
    }
}
