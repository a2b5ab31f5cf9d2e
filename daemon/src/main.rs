//! The `cardpbx` binary: daemon, demo, benchmarks and the technician CLI.

use cardpbx::ctl::cli::{
    resolve_socket, run_client_command, run_config_check, BenchCmd, Cli, Command, ConfigCmd,
    EXIT_FAILED,
};
use clap::Parser;
use std::process::ExitCode;

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARDPBX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match &cli.cmd {
        Command::Daemon { config } => {
            init_logging("info");
            let cfg = cardpbx::config::Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            cardpbx::service::run_with_file(&cfg, config)?;
            Ok(0)
        }
        Command::Demo { duration, json, config, seed } => {
            if let Some(d) = duration {
                if !(d.is_finite() && *d > 0.0) {
                    anyhow::bail!("--duration must be a positive number of seconds, got {d}");
                }
            }
            init_logging("warn");
            let summary = cardpbx::demo::run(config.as_deref(), *duration, *json, *seed)?;
            if *json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                print!("{}", summary.render());
            }
            let ok = summary.audio_path_errors == 0 && summary.calls_failed == 0;
            Ok(if ok { 0 } else { EXIT_FAILED })
        }
        Command::Config(ConfigCmd::Check { file }) => {
            run_config_check(file, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Bench(BenchCmd::Engine { channels, seconds, json }) => {
            if *channels == 0 || *channels > 100_000 {
                anyhow::bail!("--channels must be between 1 and 100000, got {channels}");
            }
            if !(seconds.is_finite() && *seconds > 0.0 && *seconds <= 3600.0) {
                anyhow::bail!("--seconds must be more than 0 and at most 3600, got {seconds}");
            }
            let report = cardpbx::bench::bench_engine(*channels, *seconds);
            if *json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(0)
        }
        Command::Bench(BenchCmd::Pri { calls, parallel, json }) => {
            if *calls == 0 || *calls > 10_000_000 {
                anyhow::bail!("--calls must be between 1 and 10000000, got {calls}");
            }
            if !(1..=30).contains(parallel) {
                anyhow::bail!("--parallel must be between 1 and 30, got {parallel}");
            }
            let report = cardpbx::bench_pri::bench_pri(*calls, *parallel)?;
            if *json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(if report.failed == 0 { 0 } else { EXIT_FAILED })
        }
        Command::Dsp(cmd) => {
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            cardpbx::dspcli::run(cmd, &mut stdout.lock(), &mut stderr.lock())
        }
        Command::Pri(cmd) => cardpbx::pri::run(cmd),
        Command::Sim(cmd) => {
            init_logging("warn");
            cardpbx::whatif::run_cli(cmd)
        }
        Command::Fax(cmd) => cardpbx::faxsvc::cli::run(cmd, &resolve_socket(cli.socket.as_deref())),
        Command::Report(args) => cardpbx::store::report::run(args, &mut std::io::stdout().lock()),
        other => {
            let socket = resolve_socket(cli.socket.as_deref());
            run_client_command(other, &socket)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("cardpbx: error: {e:#}");
            ExitCode::from(EXIT_FAILED as u8)
        }
    }
}
