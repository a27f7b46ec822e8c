//! `mqtt-lab run` (scenario suites over seed ranges), `mqtt-lab replay` (one seed, the
//! same bytes every time), `mqtt-lab merge` (the reports of a run's shards as one). `run` and
//! `replay` need a simulation build (`cargo sim-run ...`, `cargo lab`).
//!
//! - [`RunArgs`], [`run`], [`run_with`]: load every scenario, run the seeds (or `--shard`'s
//!   part of them) on worker threads, print the table (or `--json`), write `--junit`, return
//!   the exit code.
//! - [`ReplayArgs`], [`replay()`], [`replay_with`]: run one seed and print what it derived, the
//!   timeline, the violations, the fingerprint and the verdict.
//! - [`merge_reports`], [`merge_with`]: combine shards' `--json` reports.
//! - [`shrink()`]: a failing seed's scenario cut down (`shrink.rs` holds it all).
//! - Submodules: `seeds` (ranges), `discover` (finding and loading files), `shard` (splitting
//!   a run), `suite` (the scheduler), `verdict` (failure classes, tallies), `merge`,
//!   `summary`, `junit`, `json`, `timeline`, `replay`, `html` (renderings).
//!
//! The `_with` functions take the world as a function of (scenario, seed), so tests can run
//! them on a wrapped world. Not here: the world itself (`crate::sim`) or the checkers.

pub mod coverage;
pub mod discover;
pub mod html;
pub mod json;
pub mod junit;
pub mod merge;
pub mod replay;
pub mod seeds;
pub mod shard;
pub mod shrink;
pub mod suite;
pub mod summary;
pub mod timeline;
pub mod verdict;

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::cli::EXIT_USAGE;
use crate::scenario::Scenario;
use crate::sim::RunOutcome;

pub use discover::LoadedScenario;
pub use seeds::SeedRange;
pub use suite::SuiteConfig;
pub use verdict::{SeedResult, SuiteReport, Verdict};

/// The seeds `run` uses without `--seeds`.
pub const DEFAULT_SEEDS: &str = "1..100";
/// What `run` runs without a path: the scenario library.
pub const DEFAULT_PATH: &str = "scenarios";

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Scenario files, or folders searched recursively for *.toml (README files skipped).
    /// Default: the folder `scenarios`.
    #[arg(value_name = "PATHS", default_value = DEFAULT_PATH)]
    pub paths: Vec<PathBuf>,
    /// Seeds to run for every scenario: 7, or 1..500 (both ends included).
    #[arg(long, value_name = "RANGE", default_value = DEFAULT_SEEDS)]
    pub seeds: SeedRange,
    /// Worker threads running seeds in parallel. Default: the number of cores.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Also write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run every seed twice and fail the seed if the two traces differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Start no new seed after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Show no progress on stderr: neither the bar (drawn when stderr is a terminal) nor the
    /// line printed for each finished scenario otherwise.
    #[arg(long)]
    pub no_progress: bool,
    /// Run only shard K of N (from 1: `1/4` to `4/4`): the (scenario, seed) pairs of the whole
    /// run are dealt to N shards evenly by expected cost, the same way on every machine, so N
    /// machines given the same files and seeds run the whole run once; `mqtt-lab merge`
    /// combines their `--json` reports.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<shard::Shard>,
    /// Count how often each behaviour worth testing happened over the run (sessions resumed
    /// after a broker crash, takeovers with messages in flight, cancelled will delays, ...),
    /// from the traces, and print the table; a zero is a blind spot of the scenarios run.
    #[arg(long)]
    pub coverage: bool,
    /// Write an HTML page of every failing seed into DIR (created if missing), named after
    /// the scenario's folder and file and the seed: DIR/03-qos1-01-qos1-under-cuts-seed-7.html.
    /// Simulator runs only (a target run leaves its evidence in --failures-dir).
    #[arg(long, value_name = "DIR", conflicts_with = "addr")]
    pub html_dir: Option<PathBuf>,
    /// The broker to judge instead of the simulator, and its commands.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `run --target` and the flags that go with it.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// Judge the broker at HOST:PORT instead of the simulator (real-network build): every
    /// client runs on real TCP behind a fault proxy of its own, in real time; runs share the
    /// broker under per-run name prefixes (`--jobs` at once); scenarios that need what a target
    /// run cannot do are skipped with the reason.
    #[arg(long = "target", value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// With --target: a shell command that restarts the target (kill it and start it again);
    /// lets `crash_broker` faults run. The broker is down as long as the command takes.
    #[arg(long, value_name = "COMMAND", requires = "addr")]
    pub broker_restart: Option<String>,
    /// With --target: a shell command that stops (kills) the target; with --broker-start, a
    /// `crash_broker` fault stops the broker and starts it after its `restart_after`.
    #[arg(long, value_name = "COMMAND", requires = "addr")]
    pub broker_stop: Option<String>,
    /// With --target: a shell command that starts the target again (see --broker-stop).
    #[arg(long, value_name = "COMMAND", requires = "addr")]
    pub broker_start: Option<String>,
    /// With --target: what the target keeps across the --broker-* restarts, `none` or
    /// `durable`; a scenario that crashes the broker and wants the other is not run (needs
    /// configuration). Unsaid, the scenario's persistence is an assumption the report lists.
    #[arg(long, value_name = "KEEPS", value_parser = parse_persistence, requires = "addr")]
    pub broker_persistence: Option<crate::trace::Persistence>,
    /// With --target: run the scenarios whose [broker] settings no packet shows (queue limits,
    /// ...), taking the target as configured so; the report lists them as assumptions.
    /// Without it they are not run (needs configuration).
    #[arg(long, requires = "addr")]
    pub assume_configured: bool,
    /// With --target: multiply every time of each run by F (0.01 to 100): faults, workloads,
    /// connects, and the keep-alives and expiries the clients send, so `0.5` runs a 60 s story
    /// in 30 s and `2` gives a slow broker twice the time. A scenario whose protocol times
    /// would not stay whole seconds is skipped with the reason. Default 1.
    #[arg(long, value_name = "F", requires = "addr")]
    pub time_scale: Option<crate::scenario::TimeScale>,
    /// With --target: where the trace (JSON Lines) and timeline of every failing run are
    /// written. Default: mqtt-lab-failures.
    #[arg(long, value_name = "DIR", requires = "addr")]
    pub failures_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// The seed to replay.
    #[arg(long, value_name = "N")]
    pub seed: u64,
    /// Also write the run's trace as JSON Lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Print the timeline, one line per trace event (the default).
    #[arg(long, overrides_with = "no_timeline")]
    pub timeline: bool,
    /// Leave the timeline out.
    #[arg(long, overrides_with = "timeline")]
    pub no_timeline: bool,
    /// Also write the run as a self-contained HTML page to FILE: lanes, packets, faults,
    /// violations, filters.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Refuses the lab commands in a real-network build.
pub fn require_simulation(command: &str) -> Result<(), String> {
    if cfg!(madsim) {
        Ok(())
    } else {
        Err(format!(
            "`mqtt-lab {command}` runs the simulator, but this binary was built for the real network; \
             use `cargo sim-run {command} ...` (or `cargo lab` for the whole scenario library), \
             which build with --cfg madsim"
        ))
    }
}

/// `mqtt-lab run`: returns the exit code.
pub fn run(args: RunArgs) -> i32 {
    if let Some(target) = &args.target.addr {
        return run_target(&args, target);
    }
    if let Err(msg) = require_simulation("run") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    finish(run_with(&args, world, &mut std::io::stdout().lock()))
}

/// `mqtt-lab replay`: returns the exit code.
pub fn replay(args: ReplayArgs) -> i32 {
    if let Err(msg) = require_simulation("replay") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    finish(replay_with(&args, world, &mut std::io::stdout().lock()))
}

/// `mqtt-lab shrink`: returns the exit code.
pub fn shrink(args: shrink::ShrinkArgs) -> i32 {
    if let Err(msg) = require_simulation("shrink") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    finish(shrink::shrink_with(
        &args,
        world,
        &mut std::io::stdout().lock(),
    ))
}

/// The broker `--target` and the `--broker-*` commands name.
#[cfg(not(madsim))]
fn target_of(args: &RunArgs, target: &str) -> Result<crate::target::Target, String> {
    use std::net::ToSocketAddrs;
    let addr = match target.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => return Err(format!("--target {target}: not an address (HOST:PORT)")),
    };
    let broker = crate::target::BrokerCommands::new(
        args.target.broker_restart.clone(),
        args.target.broker_stop.clone(),
        args.target.broker_start.clone(),
    )?;
    Ok(crate::target::Target { addr, broker })
}

/// `mqtt-lab run --target`: the suite against a real broker. The target is asked what it is
/// first; scenarios it cannot run, or that need a configuration its CONNACK shows it lacks, are
/// left out with the reason. Runs share it, each under its own name prefix; a scenario that
/// needs the broker to itself waits until no other run is going and keeps the others waiting
/// while it goes.
#[cfg(not(madsim))]
fn run_target(args: &RunArgs, target: &str) -> i32 {
    match target_suite(args, target) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            EXIT_USAGE
        }
    }
}

#[cfg(not(madsim))]
fn target_suite(args: &RunArgs, target: &str) -> Result<i32, String> {
    use crate::target::{
        Names, needs_broker_alone, probe, requirements, run_seed, unscalable, unsupported,
    };
    use std::sync::RwLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use verdict::{Assumed, Skipped, TargetSummary};

    let address = target.to_string();
    let target = target_of(args, target)?;
    let scale = args.target.time_scale.unwrap_or_default();
    let scenarios = discover::load_all(&args.paths)?;
    // Tags tell apart the runs of this command and those of another one against the same
    // broker: 12 bits of the process and the clock, then a count.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    let tag = |n: u64| format!("{:03x}{n:x}", nonce & 0xfff);
    let identity = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?
        .block_on(probe(target.addr, &tag(0)));
    eprintln!("target {identity}");
    eprintln!(
        "real TCP, real time: a run is not bit-reproducible (the seed fixes the plan, not the trace)"
    );
    let failures_dir = args
        .target
        .failures_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FAILURES_DIR));
    let mut summary = TargetSummary {
        address,
        failures_dir: failures_dir.display().to_string(),
        rerun_flags: rerun_flags(&args.target),
        time_scale: scale,
        identity: identity.to_string(),
        skipped: Vec::new(),
        assumed: Vec::new(),
        order: Vec::new(),
    };
    let mut kept = Vec::new();
    summary.order = scenarios.iter().map(|l| l.path.clone()).collect();
    for l in scenarios {
        let refused = unsupported(&l.scenario, &target).or_else(|| unscalable(&l.scenario, scale));
        if let Some(why) = refused {
            eprintln!("skipped {}: {why}", l.path);
            summary.skipped.push(Skipped {
                path: l.path.clone(),
                class: "unsupported",
                reason: why,
            });
            continue;
        }
        let mut needs = requirements(
            &l.scenario,
            identity.limits.as_ref(),
            args.target.broker_persistence,
        );
        let mut missing = needs.unmet.clone();
        if args.target.assume_configured {
            needs.assumed.append(&mut needs.unverified);
        } else {
            missing.extend(needs.unverified.iter().map(|u| {
                format!("{u}, which no packet shows: configure it and give --assume-configured")
            }));
        }
        if !missing.is_empty() {
            let why = format!("set {}", missing.join("; "));
            eprintln!("needs configuration {}: {why}", l.path);
            summary.skipped.push(Skipped {
                path: l.path.clone(),
                class: "needs_configuration",
                reason: why,
            });
            continue;
        }
        if !needs.assumed.is_empty() {
            summary.assumed.push(Assumed {
                path: l.path.clone(),
                settings: needs.assumed,
            });
        }
        if let Some(why) = needs_broker_alone(&l.scenario) {
            eprintln!("alone {}: needs the broker to itself: {why}", l.path);
        }
        kept.push(l);
    }
    // The runs that share the broker go first, side by side; those that need it to
    // themselves last, one at a time, so that none holds the others up while it waits.
    let alone: std::collections::BTreeSet<String> = kept
        .iter()
        .filter(|l| needs_broker_alone(&l.scenario).is_some())
        .map(|l| l.scenario.origin().to_string())
        .collect();
    kept.sort_by_key(|l| alone.contains(l.scenario.origin()));
    let check = crate::check::CheckConfig::default();
    let runs = AtomicU64::new(1);
    let gate = RwLock::new(());
    let world = |s: &Scenario, seed: u64| {
        let outcome = if alone.contains(s.origin()) {
            let _alone = gate.write().unwrap_or_else(|e| e.into_inner());
            run_seed(s, seed, &target, &Names::default(), scale, &check)
        } else {
            let _shared = gate.read().unwrap_or_else(|e| e.into_inner());
            let names = Names::tagged(&tag(runs.fetch_add(1, Ordering::Relaxed)));
            run_seed(s, seed, &target, &names, scale, &check)
        };
        if Verdict::of(&outcome) != Verdict::Passed {
            write_evidence(&failures_dir, s.origin(), &outcome);
        }
        outcome
    };
    run_loaded(
        args,
        kept,
        world,
        &mut std::io::stdout().lock(),
        Some(summary),
    )
}

fn parse_persistence(s: &str) -> Result<crate::trace::Persistence, String> {
    match s {
        "none" => Ok(crate::trace::Persistence::None),
        "durable" => Ok(crate::trace::Persistence::Durable),
        _ => Err("none or durable".into()),
    }
}

/// Where a target run writes what failing runs leave, unless told otherwise.
pub const DEFAULT_FAILURES_DIR: &str = "mqtt-lab-failures";

/// Writes the trace and the timeline of a failing target run (a real run cannot be replayed:
/// this is all there is of it). A file that cannot be written is reported on stderr.
#[cfg(not(madsim))]
fn write_evidence(dir: &std::path::Path, path: &str, outcome: &RunOutcome) {
    let (trace, timeline) = summary::evidence_files(&dir.display().to_string(), path, outcome.seed);
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&trace, outcome.trace.to_jsonl()))
        .and_then(|()| std::fs::write(&timeline, replay::render(path, outcome, true)));
    if let Err(e) = written {
        eprintln!(
            "cannot write the trace of {path} seed {}: {e}",
            outcome.seed
        );
    }
}

/// The flags of a target run that decide what runs and how, as a rerun command repeats them.
#[cfg(any(test, not(madsim)))]
fn rerun_flags(t: &TargetArgs) -> String {
    let mut out = String::new();
    for (flag, value) in [
        ("--broker-restart", &t.broker_restart),
        ("--broker-stop", &t.broker_stop),
        ("--broker-start", &t.broker_start),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(" {flag} {}", summary::shell_quote(v)));
        }
    }
    if let Some(p) = t.broker_persistence {
        out.push_str(match p {
            crate::trace::Persistence::None => " --broker-persistence none",
            crate::trace::Persistence::Durable => " --broker-persistence durable",
        });
    }
    if t.assume_configured {
        out.push_str(" --assume-configured");
    }
    if let Some(scale) = t.time_scale.filter(|s| !s.is_one()) {
        out.push_str(&format!(" --time-scale {scale}"));
    }
    out
}

#[cfg(madsim)]
fn run_target(_: &RunArgs, _: &str) -> i32 {
    eprintln!(
        "error: --target runs on the real network; this binary is the simulation build. Use `cargo run --release -- run --target ...`"
    );
    EXIT_USAGE
}

fn finish(result: Result<i32, String>) -> i32 {
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            EXIT_USAGE
        }
    }
}

/// One seed of one scenario in the simulated world, with default options.
#[cfg(madsim)]
pub fn world(scenario: &Scenario, seed: u64) -> RunOutcome {
    crate::sim::run_seed(scenario, seed, &crate::sim::RunOptions::default())
}

/// Never called: the commands refuse to run without the simulator first.
#[cfg(not(madsim))]
fn world(_: &Scenario, _: u64) -> RunOutcome {
    unreachable!("the lab commands refuse to run in a real-network build")
}

/// `run` with the world given: loads and validates every scenario (an error is `Err`, before
/// anything runs), runs the suite, writes the table or JSON to `out` and the JUnit file, and
/// returns the exit code.
pub fn run_with<W>(args: &RunArgs, world: W, out: &mut dyn Write) -> Result<i32, String>
where
    W: Fn(&Scenario, u64) -> RunOutcome + Sync,
{
    let scenarios = discover::load_all(&args.paths)?;
    let Some(dir) = &args.html_dir else {
        return run_loaded(args, scenarios, world, out, None);
    };
    let pages = html::Pages::new(dir)?;
    let world = |s: &Scenario, seed: u64| {
        let outcome = world(s, seed);
        pages.keep(s.origin(), &outcome);
        outcome
    };
    let code = run_loaded(args, scenarios, world, out, None)?;
    pages.announce();
    Ok(code)
}

/// `run` of `scenarios`, loaded; `target` says what a target run reports besides the runs.
fn run_loaded<W>(
    args: &RunArgs,
    scenarios: Vec<LoadedScenario>,
    world: W,
    out: &mut dyn Write,
    target: Option<verdict::TargetSummary>,
) -> Result<i32, String>
where
    W: Fn(&Scenario, u64) -> RunOutcome + Sync,
{
    let junit = open_junit(args.junit.as_ref())?;
    let config = SuiteConfig {
        jobs: match args.jobs {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        check_determinism: args.check_determinism,
        fail_fast: args.fail_fast,
        progress: !args.no_progress,
        keep_plans: target.is_some(),
        shard: args.shard,
        coverage: args.coverage,
    };
    eprintln!(
        "running {} scenario{} x seeds {} ({} seed{} each){}, {} worker{}",
        scenarios.len(),
        plural(scenarios.len()),
        args.seeds,
        args.seeds.len(),
        plural(args.seeds.len() as usize),
        if args.check_determinism {
            ", each run twice"
        } else {
            ""
        },
        config.jobs,
        plural(config.jobs)
    );
    if let Some(shard) = args.shard {
        eprintln!("shard {shard}: this run's share of the (scenario, seed) pairs");
    }
    let mut report = suite::run_suite(&scenarios, args.seeds, &config, world);
    if let Some(t) = &target {
        let place = |path: &str| t.order.iter().position(|p| p == path);
        report.scenarios.sort_by_key(|s| place(&s.path));
    }
    report.target = target;
    write_report(&report, args.json, junit, out)
}

/// The JUnit file `path` names, created (before anything runs, so a bad path costs nothing).
fn open_junit(path: Option<&PathBuf>) -> Result<Option<(&PathBuf, std::fs::File)>, String> {
    path.map(|path| {
        std::fs::File::create(path)
            .map(|file| (path, file))
            .map_err(|e| format!("{}: cannot write the JUnit file: {e}", path.display()))
    })
    .transpose()
}

/// Writes the table (or JSON) of `report` to `out` and its JUnit XML to `junit`; returns the
/// report's exit code.
fn write_report(
    report: &SuiteReport,
    json: bool,
    junit: Option<(&PathBuf, std::fs::File)>,
    out: &mut dyn Write,
) -> Result<i32, String> {
    let text = if json {
        json::render(report)
    } else {
        summary::render(report)
    };
    out.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the report: {e}"))?;
    if let Some((path, mut file)) = junit {
        file.write_all(junit::render(report).as_bytes())
            .map_err(|e| format!("{}: cannot write the JUnit file: {e}", path.display()))?;
    }
    Ok(report.exit_code())
}

/// `mqtt-lab merge`: returns the exit code of the combined run.
pub fn merge_reports(args: merge::MergeArgs) -> i32 {
    finish(merge_with(&args, &mut std::io::stdout().lock()))
}

/// `merge` writing to `out`: the combined report, its JUnit file, its exit code.
pub fn merge_with(args: &merge::MergeArgs, out: &mut dyn Write) -> Result<i32, String> {
    let report = merge::merge_files(&args.reports)?;
    let junit = open_junit(args.junit.as_ref())?;
    eprintln!(
        "merged {} report{}: {} scenario{}, {} seeds",
        args.reports.len(),
        plural(args.reports.len()),
        report.scenarios.len(),
        plural(report.scenarios.len()),
        report.seeds_run()
    );
    write_report(&report, args.json, junit, out)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `replay` with the world given: loads the scenario, runs the seed, writes the report to
/// `out` and the trace to `--trace`, and returns the exit code of the verdict.
pub fn replay_with<W>(args: &ReplayArgs, world: W, out: &mut dyn Write) -> Result<i32, String>
where
    W: Fn(&Scenario, u64) -> RunOutcome,
{
    let scenario = crate::sim::load(&args.scenario).map_err(|e| e.to_string())?;
    let mut trace_file = match &args.trace {
        Some(path) => Some((
            path,
            std::fs::File::create(path)
                .map_err(|e| format!("{}: cannot write the trace: {e}", path.display()))?,
        )),
        None => None,
    };
    let outcome = world(&scenario, args.seed);
    let path = args.scenario.display().to_string();
    let text = replay::render(&path, &outcome, !args.no_timeline);
    out.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the report: {e}"))?;
    if let Some((path, file)) = &mut trace_file {
        file.write_all(outcome.trace.to_jsonl().as_bytes())
            .map_err(|e| format!("{}: cannot write the trace: {e}", path.display()))?;
        eprintln!(
            "trace: {} events written to {}",
            outcome.trace.events.len(),
            path.display()
        );
    }
    if let Some(file) = &args.html {
        std::fs::write(file, html::render(&path, &outcome))
            .map_err(|e| format!("{}: cannot write the page: {e}", file.display()))?;
        eprintln!("html: {}", file.display());
    }
    Ok(Verdict::of(&outcome).exit_code())
}

#[cfg(test)]
mod tests {
    use super::verdict::tests::{SCENARIO, outcome};
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::sim::RunStatus;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("mqtt-lab").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn run_flags() {
        let Ok(Command::Run(a)) = parse(&[
            "run",
            "scenarios",
            "x.toml",
            "--seeds",
            "1..500",
            "--jobs",
            "3",
            "--junit",
            "out.xml",
            "--json",
            "--check-determinism",
            "--fail-fast",
            "--no-progress",
        ]) else {
            panic!("parse failed")
        };
        assert_eq!(
            a.paths,
            [PathBuf::from("scenarios"), PathBuf::from("x.toml")]
        );
        assert_eq!(a.seeds.len(), 500);
        assert_eq!(a.jobs, Some(3));
        assert_eq!(a.junit, Some(PathBuf::from("out.xml")));
        assert!(a.json && a.check_determinism && a.fail_fast && a.no_progress);
    }

    #[test]
    fn a_rerun_repeats_the_flags_that_decide_what_runs() {
        let Ok(Command::Run(a)) = parse(&[
            "run",
            "x.toml",
            "--target",
            "127.0.0.1:1884",
            "--broker-stop",
            "pkill -KILL -x mosquitto",
            "--broker-start",
            "mosquitto -d",
            "--broker-persistence",
            "none",
            "--assume-configured",
            "--time-scale",
            "0.5",
            "--failures-dir",
            "out",
        ]) else {
            panic!("parse failed")
        };
        assert_eq!(
            rerun_flags(&a.target),
            " --broker-stop 'pkill -KILL -x mosquitto' --broker-start 'mosquitto -d' --broker-persistence none --assume-configured --time-scale 0.5"
        );
        assert!(
            parse(&[
                "run",
                "x.toml",
                "--broker-persistence",
                "maybe",
                "--target",
                "h:1"
            ])
            .is_err()
        );
        assert!(
            parse(&["run", "x.toml", "--assume-configured"]).is_err(),
            "needs --target"
        );
        assert!(
            parse(&["run", "x.toml", "--time-scale", "2"]).is_err(),
            "needs --target"
        );
        let Ok(Command::Run(one)) = parse(&["run", "x", "--target", "h:1", "--time-scale", "1"])
        else {
            panic!("parse failed")
        };
        assert_eq!(rerun_flags(&one.target), "", "a scale of 1 is the default");
    }

    #[test]
    fn run_defaults() {
        let Ok(Command::Run(a)) = parse(&["run"]) else {
            panic!("parse failed")
        };
        assert_eq!(a.paths, [PathBuf::from(DEFAULT_PATH)]);
        assert_eq!(a.seeds, DEFAULT_SEEDS.parse().unwrap());
        assert_eq!(a.jobs, None);
        assert_eq!(a.shard, None);
        assert!(!a.json && !a.check_determinism && !a.fail_fast && !a.no_progress);
        // `cargo lab` is `run`: a path given to it replaces the library, not adds to it.
        let Ok(Command::Run(a)) = parse(&["run", "x.toml", "--shard", "2/3"]) else {
            panic!("parse failed")
        };
        assert_eq!(a.paths, [PathBuf::from("x.toml")]);
        assert_eq!(a.shard.map(|s| s.to_string()), Some("2/3".into()));
    }

    #[test]
    fn bad_run_flags_are_usage_errors() {
        for args in [
            &["run", "x", "--shard", "0/3"][..],
            &["run", "x", "--shard", "4/3"],
            &["merge"],
            &["run", "x", "--seeds", "9..1"],
            &["run", "x", "--jobs", "0"],
            &["run", "x", "--seeds"],
            &["run", "x", "--target", "h:1", "--html-dir", "d"],
            &["replay", "x.toml"],
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.use_stderr(), "{args:?}");
        }
    }

    #[test]
    fn replay_flags_last_timeline_flag_wins() {
        let Ok(Command::Replay(a)) = parse(&["replay", "x.toml", "--seed", "17"]) else {
            panic!("parse failed")
        };
        assert_eq!((a.seed, a.no_timeline, a.trace), (17, false, None));
        let Ok(Command::Replay(a)) = parse(&[
            "replay",
            "x.toml",
            "--seed",
            "1",
            "--no-timeline",
            "--trace",
            "t.jsonl",
        ]) else {
            panic!("parse failed")
        };
        assert!(a.no_timeline);
        assert_eq!(a.trace, Some(PathBuf::from("t.jsonl")));
        let Ok(Command::Replay(a)) = parse(&[
            "replay",
            "x.toml",
            "--seed",
            "1",
            "--no-timeline",
            "--timeline",
        ]) else {
            panic!("parse failed")
        };
        assert!(!a.no_timeline);
    }

    #[cfg(not(madsim))]
    #[test]
    fn lab_commands_refuse_a_real_network_build() {
        let e = require_simulation("run").unwrap_err();
        assert!(
            e.contains("cargo sim-run run") && e.contains("cargo lab"),
            "{e}"
        );
        let Ok(Command::Run(a)) = parse(&["run", "nope"]) else {
            panic!()
        };
        assert_eq!(run(a), EXIT_USAGE);
        let Ok(Command::Replay(a)) = parse(&["replay", "nope.toml", "--seed", "1"]) else {
            panic!()
        };
        assert_eq!(replay(a), EXIT_USAGE);
    }

    fn run_args(dir: &std::path::Path) -> RunArgs {
        RunArgs {
            paths: vec![dir.to_path_buf()],
            seeds: "1..6".parse().unwrap(),
            jobs: Some(2),
            junit: Some(dir.join("junit.xml")),
            json: false,
            check_determinism: false,
            fail_fast: false,
            no_progress: true,
            shard: None,
            coverage: false,
            html_dir: None,
            target: TargetArgs::default(),
        }
    }

    #[test]
    fn run_with_reports_and_returns_the_worst_exit_code() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.toml"), SCENARIO).unwrap();
        let mut args = run_args(tmp.path());
        let mut out = Vec::new();
        let code = run_with(
            &args,
            |_, seed| outcome(seed, RunStatus::Completed, usize::from(seed == 4)),
            &mut out,
        )
        .unwrap();
        assert_eq!(code, 1);
        let text = String::from_utf8(out).unwrap();
        let a = tmp.path().join("a.toml").display().to_string();
        assert!(
            text.contains(&format!("  replay: cargo sim-run replay {a} --seed 4\n")),
            "{text}"
        );
        let xml = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
        assert!(xml.contains("tests=\"6\" failures=\"1\""), "{xml}");

        args.json = true;
        let mut out = Vec::new();
        let code = run_with(&args, |_, s| outcome(s, RunStatus::TimeLimit, 0), &mut out).unwrap();
        assert_eq!(code, 3);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["failed"], 6);
    }

    #[test]
    fn an_invalid_scenario_stops_everything_before_a_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.toml"), SCENARIO).unwrap();
        std::fs::write(
            tmp.path().join("b.toml"),
            SCENARIO.replace("count = 2", "count = -2"),
        )
        .unwrap();
        let ran = std::sync::atomic::AtomicBool::new(false);
        let err = run_with(
            &run_args(tmp.path()),
            |_, s| {
                ran.store(true, std::sync::atomic::Ordering::Relaxed);
                outcome(s, RunStatus::Completed, 0)
            },
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.contains("b.toml") && err.contains("count"), "{err}");
        assert!(!ran.into_inner());
    }

    #[test]
    fn replay_with_writes_the_trace_and_returns_the_verdict() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.toml");
        std::fs::write(&file, SCENARIO).unwrap();
        let args = ReplayArgs {
            scenario: file.clone(),
            seed: 17,
            trace: Some(tmp.path().join("t.jsonl")),
            timeline: false,
            no_timeline: false,
            html: Some(tmp.path().join("page.html")),
        };
        let mut out = Vec::new();
        let code = replay_with(
            &args,
            |_, seed| outcome(seed, RunStatus::Completed, 1),
            &mut out,
        )
        .unwrap();
        assert_eq!(code, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("timeline (2 events):"));
        let written = std::fs::read_to_string(tmp.path().join("t.jsonl")).unwrap();
        assert_eq!(
            written,
            outcome(17, RunStatus::Completed, 1).trace.to_jsonl()
        );
        let page = std::fs::read_to_string(tmp.path().join("page.html")).unwrap();
        let path = file.display().to_string();
        assert_eq!(
            page,
            html::render(&path, &outcome(17, RunStatus::Completed, 1))
        );
        let missing = ReplayArgs {
            scenario: tmp.path().join("nope.toml"),
            ..args
        };
        let err = replay_with(
            &missing,
            |_, s| outcome(s, RunStatus::Completed, 0),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.contains("nope.toml"), "{err}");
    }
}
