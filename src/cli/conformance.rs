//! `mqtt-lab conformance`: the statement matrix (`--matrix`) and the black-box suite against
//! a broker (`--target HOST:PORT`).

pub mod report;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::codec::Protocol;
use crate::conformance::Spec;
use crate::conformance::matrix::Matrix;
use crate::conformance::suite::{self, Selection, Settings, Verdict};

use super::{EXIT_OK, EXIT_USAGE, EXIT_VIOLATION};

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["matrix", "target", "list"])))]
pub struct ConformanceArgs {
    /// Print every normative statement of MQTT 3.1.1 and 5.0 with what checks it, or why
    /// nothing does.
    #[arg(long)]
    pub matrix: bool,
    /// Judge the broker at HOST:PORT with the black-box suite, over real TCP.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// List the suite's checks with their statements.
    #[arg(long)]
    pub list: bool,
    /// Only this protocol version: 3.1.1 or 5.0. Default: both.
    #[arg(long, value_name = "VERSION", value_parser = parse_protocol)]
    pub protocol: Option<Protocol>,
    /// Only checks whose name or statements contain TEXT (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub only: Vec<String>,
    /// JSON instead of text: on stdout, or (with --target) written to FILE beside the text.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// With --target: also write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// With --target: the user name every check connects with.
    #[arg(long, value_name = "NAME", requires = "password")]
    pub user: Option<String>,
    /// With --target: the password of --user.
    #[arg(long, value_name = "PASSWORD", requires = "user")]
    pub password: Option<String>,
    /// With --target: a topic the client may not publish to (for the authorization checks).
    #[arg(long, value_name = "TOPIC")]
    pub denied_topic: Option<String>,
    /// With --target: seconds to wait for an answer the broker owes (and for a close). Default 3.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    pub wait: f64,
    /// With --target: checks run at once. Default 8.
    #[arg(short, long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "3.1.1" | "4" => Ok(Protocol::V3_1_1),
        "5.0" | "5" => Ok(Protocol::V5),
        _ => Err(format!("{s:?} is not a protocol version: use 3.1.1 or 5.0")),
    }
}

pub fn run(args: ConformanceArgs) -> i32 {
    let mut out = Vec::new();
    let result = conformance(&args, &mut out);
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &out);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}

/// `--json FILE`: the file; `--json` alone means stdout.
fn json_file(args: &ConformanceArgs) -> Option<&PathBuf> {
    args.json.as_ref().filter(|p| p.as_os_str() != "-")
}

/// `--json` without a file: JSON on stdout.
fn json_stdout(args: &ConformanceArgs) -> bool {
    args.json.as_ref().is_some_and(|p| p.as_os_str() == "-")
}

fn specs(args: &ConformanceArgs) -> Vec<Spec> {
    match args.protocol {
        Some(p) => vec![suite::spec_of(p)],
        None => Spec::ALL.to_vec(),
    }
}

/// Runs the command, writing to `out`; returns the exit code.
pub fn conformance(args: &ConformanceArgs, out: &mut dyn std::io::Write) -> Result<i32, String> {
    let io = |e: std::io::Error| e.to_string();
    if (args.matrix || args.list)
        && (args.junit.is_some() || json_file(args).is_some() || args.user.is_some())
    {
        return Err("--junit, --json FILE and --user go with --target".into());
    }
    if args.matrix {
        let matrices: Vec<Matrix> = specs(args).into_iter().map(Matrix::of).collect();
        if json_stdout(args) {
            let text = serde_json::to_string_pretty(&matrices).map_err(|e| e.to_string())?;
            writeln!(out, "{text}").map_err(io)?;
        } else {
            for m in &matrices {
                write!(out, "{}", m.text()).map_err(io)?;
            }
        }
        return Ok(EXIT_OK);
    }
    if args.list {
        for check in suite::checks() {
            for spec in specs(args) {
                if !check.statements(spec).is_empty() {
                    writeln!(
                        out,
                        "{:<40} {:<5} {}\n    {}",
                        check.name,
                        spec.name(),
                        check.statements(spec).join(" "),
                        check.about
                    )
                    .map_err(io)?;
                }
            }
        }
        return Ok(EXIT_OK);
    }
    let Some(target) = &args.target else {
        if args.junit.is_some() || json_file(args).is_some() || args.user.is_some() {
            return Err("--junit, --json FILE and --user go with --target".into());
        }
        return Err("give --matrix, --list or --target HOST:PORT".into());
    };
    super::require_real_network("conformance --target")?;
    let addr = resolve(target)?;
    if !(args.wait > 0.0 && args.wait <= 60.0) {
        return Err(format!("--wait {}: give 0.1 to 60 seconds", args.wait));
    }
    let settings = Settings {
        user: args.user.clone().zip(args.password.clone()),
        denied_topic: args.denied_topic.clone(),
        wait: Duration::from_secs_f64(args.wait),
        parallel: usize::from(args.jobs),
    };
    let selection = Selection {
        protocols: args.protocol.into_iter().collect(),
        only: args.only.clone(),
    };
    let results = suite::run(addr, &settings, &selection, |r| {
        if !json_stdout(args) {
            eprintln!("{:<9} {:<5} {}", r.result.name(), r.protocol, r.check);
        }
    });
    if results.is_empty() {
        return Err("no check matches the selection (see --list)".into());
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(target, &results))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = json_file(args) {
        std::fs::write(path, report::json(target, &results))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if json_stdout(args) {
        writeln!(out, "{}", report::json(target, &results)).map_err(io)?;
    } else {
        write!(out, "{}", report::text(target, &results)).map_err(io)?;
    }
    Ok(if results.iter().any(|r| r.result == Verdict::Fail) {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    })
}

fn resolve(target: &str) -> Result<SocketAddr, String> {
    target
        .to_socket_addrs()
        .map_err(|e| format!("--target {target}: {e} (give HOST:PORT)"))?
        .next()
        .ok_or_else(|| format!("--target {target}: no address"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(argv: &[&str]) -> Result<ConformanceArgs, clap::Error> {
        let mut full = vec!["mqtt-lab", "conformance"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Conformance(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn output(argv: &[&str]) -> (Result<i32, String>, String) {
        let mut out = Vec::new();
        let code = conformance(&args(argv).unwrap(), &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_matrix_lists_every_statement_of_each_version() {
        let (code, text) = output(&["--matrix"]);
        assert_eq!(code, Ok(EXIT_OK));
        let rows = text
            .lines()
            .filter(|l| l.trim_start().starts_with("MQTT-"))
            .count();
        let all: usize = Spec::ALL.iter().map(|s| s.statements().len()).sum();
        assert_eq!(rows, all);
        assert!(
            text.starts_with("MQTT 3.1.1: 141 statements"),
            "{}",
            &text[..80]
        );

        let (_, json) = output(&["--matrix", "--json", "--protocol", "5.0"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        assert_eq!(v[0]["spec"], "5.0");
        assert_eq!(v[0]["rows"].as_array().map(Vec::len), Some(251));
        let keep_alive = v[0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "MQTT-3.1.2-22") // 5.0: keep-alive
            .unwrap();
        assert!(
            keep_alive["suite"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "keep-alive-expiry"),
            "{keep_alive}"
        );
    }

    #[test]
    fn the_list_names_each_check_with_its_statements() {
        let (code, text) = output(&["--list", "--protocol", "3.1.1"]);
        assert_eq!(code, Ok(EXIT_OK));
        let line = text
            .lines()
            .find(|l| l.starts_with("pingreq-reserved-flags"))
            .unwrap();
        assert!(
            line.contains("3.1.1") && line.contains("MQTT-2.2.2-2"),
            "{line}"
        );
        assert!(!text.contains(" 5.0 "), "only 3.1.1 was asked for");
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        assert!(
            args(&[]).is_err(),
            "one of --matrix, --list, --target is required"
        );
        assert!(args(&["--matrix", "--protocol", "4.0"]).is_err());
        assert!(
            args(&["--target", "h:1", "--user", "u"]).is_err(),
            "a user needs a password"
        );
        let (code, _) = output(&["--matrix", "--junit", "x.xml"]);
        assert!(
            code.unwrap_err().contains("--target"),
            "--junit needs --target"
        );
        let (code, _) = output(&["--target", "no port here"]);
        let e = code.unwrap_err();
        assert!(e.contains("HOST:PORT") || e.contains("real network"), "{e}");
        let (code, _) = output(&["--target", "127.0.0.1:1", "--wait", "0"]);
        assert!(code.is_err());
    }
}
