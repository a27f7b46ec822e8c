//! The `mqtt-lab` command line: the broker, the pub/sub tools, and the lab (run, replay, shrink, merge).
//!
//! Exit codes: 0 success; 1 a guarantee was violated (lab) or the operation failed (tools);
//! 2 a usage or input error (bad flags, bad files); 3 a run crashed or hit its time limit.

pub mod broker;
pub mod conformance;
pub mod lab;
pub mod passwd;
pub mod pubsub;

use clap::{Parser, Subcommand};

/// Exit code: success (every seed passed).
pub const EXIT_OK: i32 = 0;
/// Exit code: a guarantee was violated (lab) or the operation failed (tools).
pub const EXIT_VIOLATION: i32 = 1;
/// Exit code: a usage or input error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: a run crashed, hit its time limit, or two runs of one seed differed.
pub const EXIT_CRASH: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "mqtt-lab",
    version,
    about = "An MQTT 3.1.1 and 5.0 broker and client, and a deterministic simulation lab"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker on real TCP.
    Broker(broker::BrokerArgs),
    /// Publish messages (flags as mosquitto_pub).
    Pub(pubsub::PubArgs),
    /// Subscribe and print messages (flags as mosquitto_sub).
    Sub(pubsub::SubArgs),
    /// Run scenario suites over seed ranges in the simulator (cargo lab).
    Run(lab::RunArgs),
    /// Replay one seed of one scenario, printing the same bytes every time.
    Replay(lab::ReplayArgs),
    /// Cut a scenario that fails on one seed down to a smaller file that fails the same way.
    Shrink(lab::shrink::ShrinkArgs),
    /// Combine the `run --json` reports of the shards of one run (`run --shard K/N`).
    Merge(lab::merge::MergeArgs),
    /// Add, change or remove a user in a broker password file.
    Passwd(passwd::PasswdArgs),
    /// The conformance matrix (--matrix) and the black-box suite against a broker (--target).
    Conformance(conformance::ConformanceArgs),
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Broker(args) => broker::run(args),
        Command::Pub(args) => pubsub::run_pub(args),
        Command::Sub(args) => pubsub::run_sub(args),
        Command::Run(args) => lab::run(args),
        Command::Replay(args) => lab::replay(args),
        Command::Shrink(args) => lab::shrink(args),
        Command::Merge(args) => lab::merge_reports(args),
        Command::Passwd(args) => passwd::run(args),
        Command::Conformance(args) => conformance::run(args),
    }
}

/// Installs the `tracing` subscriber on stderr (`RUST_LOG`, default `info`): text, coloured
/// only when stderr is a terminal, or JSON lines.
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// Refuses commands that need real sockets in a simulation build.
pub fn require_real_network(command: &str) -> Result<(), String> {
    if cfg!(madsim) {
        Err(format!(
            "`mqtt-lab {command}` needs the real network, but this binary was built for the simulator \
             (--cfg madsim, as `cargo sim-run` and `cargo lab` build it); build it with plain `cargo build` / `cargo run`"
        ))
    } else {
        Ok(())
    }
}
