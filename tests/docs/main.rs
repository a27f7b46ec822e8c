//! The samples in the docs are tested: every fenced block of `README.md`, `docs/*.md` and
//! `scenarios/README.md` is checked by its fence language, so a sample added later is tested
//! too, and a fence language nobody checks fails.
//!
//! - `toml`: a scenario file, loaded and validated; `toml broker.toml`: the broker's
//!   configuration file, loaded as `mqtt-lab broker --config` loads it.
//! - `sh`: every `mqtt-lab ...`, `cargo lab ...`, `cargo sim-run ...` and `cargo run -- ...`
//!   command is parsed by the command line's own parser; scenario paths must exist, and
//!   `--test`, `--bench` and `--example` must name existing files. `$ ` lines of `text` blocks
//!   are commands too.
//! - `json`: trace JSON Lines; `acl`: an ACL file.
//! - `rust`: compiled and run by `cargo test --doc` (`src/lib.rs` includes every page); here
//!   only that the page is included.
//! - `text`: output and examples that are not run.
//!
//! Besides the samples: every relative link (and its `#anchor`) and every path to a file of
//! the repository named in a code span must exist.

#![cfg(not(madsim))]

use std::path::{Path, PathBuf};

use clap::Parser;
use mqtt_lab::broker::auth::Acl;
use mqtt_lab::cli::broker::BrokerFile;
use mqtt_lab::cli::{Cli, Command};
use mqtt_lab::scenario::Scenario;
use mqtt_lab::trace::Trace;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The pages whose samples are tested, relative to the repository root, sorted.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_string(), "scenarios/README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| format!("docs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// One fenced block: its info string, first line number (1-based, the fence line) and text.
struct Fence {
    info: String,
    line: usize,
    text: String,
}

/// A page split into its fenced blocks and its prose (fenced lines blanked out, so line
/// numbers stay right).
struct Page {
    path: String,
    fences: Vec<Fence>,
    prose: Vec<String>,
}

fn read_page(path: &str) -> Page {
    let text = std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("{path}: cannot read: {e}"));
    let mut fences = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(String, usize, usize, Vec<String>)> = None; // info, line, indent, lines
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None if trimmed.starts_with("```") => {
                open = Some((trimmed[3..].trim().to_string(), i + 1, indent, Vec::new()));
                prose.push(String::new());
            }
            None => prose.push(line.to_string()),
            Some(_) if trimmed.starts_with("```") && trimmed.trim_end() == "```" => {
                let (info, line, _, lines) = open.take().unwrap();
                fences.push(Fence {
                    info,
                    line,
                    text: lines.join("\n") + "\n",
                });
                prose.push(String::new());
            }
            Some((_, _, indent, lines)) => {
                let cut = line.len().min(*indent);
                let cut = if line[..cut].trim().is_empty() {
                    cut
                } else {
                    0
                };
                lines.push(line[cut..].to_string());
                prose.push(String::new());
            }
        }
    }
    assert!(open.is_none(), "{path}: a fence is never closed");
    Page {
        path: path.to_string(),
        fences,
        prose,
    }
}

/// The words of a fence's info string (`rust no_run`, `rust,no_run`, `toml broker.toml`).
fn info_words(info: &str) -> Vec<&str> {
    info.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn every_sample_in_the_docs_is_valid() {
    let lib_rs = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut problems = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for path in pages() {
        let page = read_page(&path);
        for fence in &page.fences {
            let at = format!("{}:{}", page.path, fence.line);
            let words = info_words(&fence.info);
            let lang = words.first().copied().unwrap_or("");
            *counts.entry(lang.to_string()).or_default() += 1;
            let result = match lang {
                "toml" if words.contains(&"broker.toml") => check_broker_toml(&fence.text),
                "toml" => Scenario::from_str(&fence.text, &at)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                "sh" => check_commands(&fence.text, false),
                "yaml" => check_yaml(&fence.text),
                "text" => check_commands(&fence.text, true),
                "json" => Trace::from_jsonl(&fence.text)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                "acl" => Acl::parse("acl", &fence.text)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                "rust" => {
                    if lib_rs.contains(&format!("include_str!(\"../{}\")", page.path)) {
                        Ok(())
                    } else {
                        Err(format!(
                            "a Rust sample, but src/lib.rs does not include {} as a doctest module",
                            page.path
                        ))
                    }
                }
                other => Err(format!(
                    "fence language {other:?} is checked by nobody: use toml, toml broker.toml, \
                     sh, yaml, json, acl, rust or text (see docs/testing.md)"
                )),
            };
            if let Err(e) = result {
                problems.push(format!("{at}: {e}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} sample(s) in the docs are broken:\n{}",
        problems.len(),
        problems.join("\n")
    );
    for lang in ["toml", "sh", "rust", "text"] {
        assert!(
            counts.get(lang).is_some_and(|&n| n > 0),
            "no {lang} sample found at all"
        );
    }
}

/// Loads `text` as a broker configuration file, from a file in a fresh folder.
fn check_broker_toml(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    BrokerFile::load(&file).map(|_| ()).map_err(|e| {
        e.replace(&file.display().to_string(), "broker.toml")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Parses a YAML sample (a CI workflow, a Kubernetes object) and checks, as shell commands,
/// every string in it that runs `mqtt-lab` or `cargo`; `${{ ... }}` and `$(( ... ))`
/// expressions stand for `1`.
fn check_yaml(text: &str) -> Result<(), String> {
    use yaml_rust2::{Yaml, YamlLoader};
    fn strings<'a>(y: &'a Yaml, out: &mut Vec<&'a str>) {
        match y {
            Yaml::String(s) => out.push(s),
            Yaml::Array(items) => items.iter().for_each(|i| strings(i, out)),
            Yaml::Hash(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    if docs.is_empty() {
        return Err("an empty YAML sample".into());
    }
    let mut found = Vec::new();
    docs.iter().for_each(|d| strings(d, &mut found));
    for s in found {
        if !(s.contains("mqtt-lab ") || s.trim_start().starts_with("cargo ")) {
            continue;
        }
        let mut plain = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${{").or_else(|| rest.find("$((")) {
            let close = if rest[i..].starts_with("${{") {
                "}}"
            } else {
                "))"
            };
            let end = rest[i + 3..]
                .find(close)
                .ok_or_else(|| format!("an unclosed expression in `{s}`"))?;
            plain.push_str(&rest[..i]);
            plain.push('1');
            rest = &rest[i + 3 + end + 2..];
        }
        plain.push_str(rest);
        check_commands(&plain, false)?;
    }
    Ok(())
}

/// Checks every command of a shell block; with `prompts_only`, only lines starting with `$ `.
fn check_commands(text: &str, prompts_only: bool) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = if prompts_only {
            match line.strip_prefix("$ ") {
                Some(rest) => rest,
                None => continue,
            }
        } else {
            line
        };
        if let Some(head) = line.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let words = match shell_words(&logical) {
            Ok(w) => w,
            Err(e) => {
                problems.push(format!("`{}`: {e}", logical.trim()));
                logical.clear();
                continue;
            }
        };
        for command in words.split(|w| w == "|" || w == "&&" || w == ";" || w == "||") {
            if let Err(e) = check_command(command) {
                problems.push(format!("`{}`: {e}", command.join(" ")));
            }
        }
        logical.clear();
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Splits a command line as a POSIX shell would for simple commands: quotes, backslashes,
/// comments; `|`, `;` and `&&` become words of their own.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed '".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.extend(chars.next()),
                        Some(c) => word.push(c),
                        None => return Err("unclosed \"".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            '|' | ';' | '&' if !in_word || !word.is_empty() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                let mut op = c.to_string();
                if chars.peek() == Some(&c) {
                    op.push(chars.next().unwrap());
                }
                words.push(op);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Checks one simple command: `mqtt-lab` command lines are parsed by [`Cli`]; cargo's
/// `--test`, `--bench` and `--example` must name files that exist. Anything else passes.
fn check_command(words: &[String]) -> Result<(), String> {
    // Leading environment assignments (`FUZZ_SECONDS=0 scripts/test.sh`).
    let start = words
        .iter()
        .position(|w| !w.contains('=') || w.starts_with('-'))
        .unwrap_or(words.len());
    // Redirections are the shell's, not the command's: `> FILE`, `2>/dev/null`.
    let mut words: Vec<&str> = words[start..].iter().map(String::as_str).collect();
    while let Some(i) = words
        .iter()
        .position(|w| w.starts_with('>') || w.starts_with("2>") || w.starts_with('<'))
    {
        let bare = matches!(words[i], ">" | ">>" | "2>" | "<");
        words.drain(i..(i + 1 + usize::from(bare)).min(words.len()));
    }
    let argv: Option<Vec<&str>> = match words.as_slice() {
        ["mqtt-lab", rest @ ..] => Some(rest.to_vec()),
        ["cargo", "lab", rest @ ..] => Some([&["run"][..], rest].concat()),
        ["cargo", "sim-run", rest @ ..] => Some(rest.to_vec()),
        ["cargo", "run", rest @ ..] => {
            let (opts, args) = match rest.iter().position(|w| *w == "--") {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            let other_target = opts
                .iter()
                .any(|o| matches!(*o, "--example" | "--bench" | "--test" | "--bin" | "-p"));
            (!other_target).then(|| args.to_vec())
        }
        _ => None,
    };
    check_cargo_targets(&words)?;
    let Some(argv) = argv else { return Ok(()) };
    let cli = Cli::try_parse_from(std::iter::once("mqtt-lab").chain(argv.iter().copied()))
        .map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().to_string();
            format!("the command line's parser refuses it: {first}")
        })?;
    let paths: Vec<PathBuf> = match cli.command {
        Command::Run(args) => args.paths,
        Command::Replay(args) => vec![args.scenario],
        _ => Vec::new(),
    };
    for p in paths {
        if p.starts_with("scenarios") && !root().join(&p).exists() {
            return Err(format!("{}: no such scenario file or folder", p.display()));
        }
    }
    Ok(())
}

/// A `cargo` command's `--test`, `--bench` and `--example` name targets that exist: a file
/// `DIR/NAME.rs`, or a folder `DIR/NAME/` with a `main.rs`.
fn check_cargo_targets<S: AsRef<str>>(words: &[S]) -> Result<(), String> {
    let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    if words.first() == Some(&"cargo") {
        for (flag, dir) in [
            ("--test", "tests"),
            ("--bench", "benches"),
            ("--example", "examples"),
        ] {
            if let Some(i) = words.iter().position(|w| *w == flag) {
                let name = words.get(i + 1).ok_or(format!("{flag} without a name"))?;
                let file = root().join(dir).join(format!("{name}.rs"));
                let folder = root().join(dir).join(name).join("main.rs");
                if !file.exists() && !folder.exists() {
                    return Err(format!(
                        "{flag} {name}: neither {dir}/{name}.rs nor {dir}/{name}/main.rs"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_link_and_path_in_the_docs_exists() {
    let mut problems = Vec::new();
    for path in pages() {
        let page = read_page(&path);
        let dir = Path::new(&path).parent().unwrap_or(Path::new(""));
        // Paragraphs, so a code span or link broken across lines is still whole.
        let mut paragraph = String::new();
        let mut first_line = 0;
        for (i, line) in page.prose.iter().chain([&String::new()]).enumerate() {
            if line.trim().is_empty() {
                if !paragraph.is_empty() {
                    let at = format!("{path}:{first_line}");
                    check_links(&paragraph, dir, &at, &mut problems);
                    check_code_spans(&paragraph, &at, &mut problems);
                    paragraph.clear();
                }
                continue;
            }
            if paragraph.is_empty() {
                first_line = i + 1;
            }
            paragraph.push_str(line);
            paragraph.push('\n');
        }
    }
    assert!(
        problems.is_empty(),
        "{} broken link(s) or path(s) in the docs:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Relative Markdown links `[text](target#anchor)`: the target exists, and the anchor is a
/// heading of the target page.
fn check_links(text: &str, dir: &Path, at: &str, problems: &mut Vec<String>) {
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        rest = &rest[end..];
        if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
            continue;
        }
        let (file, anchor) = match target.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (target, None),
        };
        let resolved = if file.is_empty() {
            // Same page: `at` names it.
            PathBuf::from(at.rsplit_once(':').unwrap().0)
        } else {
            normalize(&dir.join(file))
        };
        if !root().join(&resolved).exists() {
            problems.push(format!("{at}: link to {target}: no such file"));
            continue;
        }
        if let Some(anchor) = anchor
            && resolved.extension().is_some_and(|e| e == "md")
            && !anchors(&resolved).iter().any(|a| a == anchor)
        {
            problems.push(format!(
                "{at}: link to {target}: no heading #{anchor} in {}",
                resolved.display()
            ));
        }
    }
}

/// `a/b/../c` as `a/c`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as `-`.
fn anchors(page: &Path) -> Vec<String> {
    let page = read_page(&page.to_string_lossy());
    page.prose
        .iter()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Code spans naming a file of the repository: `src/...`, `tests/...`, `benches/...`,
/// `examples/...`, `scenarios/...`, `docs/...`, a module file relative to `src/`
/// (`broker/close.rs`) or a library scenario by its id (`05-will/01-will-on-crash`); and the
/// test, bench or example named by a `cargo` command in a span.
fn check_code_spans(text: &str, at: &str, problems: &mut Vec<String>) {
    const MODULES: &[&str] = &[
        "codec/",
        "broker/",
        "client/",
        "net/",
        "scenario/",
        "sim/",
        "trace/",
        "check/",
        "cli/",
    ];
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 0 || span.is_empty() {
            continue;
        }
        if span.starts_with("cargo ") {
            if let Ok(words) = shell_words(span)
                && let Err(e) = check_cargo_targets(&words)
            {
                problems.push(format!("{at}: `{span}`: {e}"));
            }
            continue;
        }
        if span.contains(|c: char| c.is_whitespace() || "<>*…[]{}%".contains(c))
            || span.contains("...")
        {
            continue;
        }
        let file = if [
            "src/",
            "tests/",
            "benches/",
            "examples/",
            "scenarios/",
            "docs/",
        ]
        .iter()
        .any(|p| span.starts_with(p))
        {
            PathBuf::from(span)
        } else if MODULES.iter().any(|m| span.starts_with(m)) && span.ends_with(".rs") {
            Path::new("src").join(span)
        } else if is_scenario_id(span) {
            PathBuf::from(format!("scenarios/{span}.toml"))
        } else {
            continue;
        };
        if !root().join(&file).exists() {
            problems.push(format!("{at}: `{span}`: no {}", file.display()));
        }
    }
}

/// `NN-area/NN-name`, as the library's scenarios are named without folder and extension.
fn is_scenario_id(span: &str) -> bool {
    let Some((area, name)) = span.split_once('/') else {
        return false;
    };
    let numbered = |s: &str| {
        s.len() > 3
            && s.as_bytes()[..2].iter().all(u8::is_ascii_digit)
            && s.as_bytes()[2] == b'-'
            && s[3..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    numbered(area) && numbered(name)
}

#[test]
fn the_shell_splitter_reads_quotes_comments_and_pipes() {
    let w = shell_words(r#"tail -f x.log | mqtt-lab sub -t 'sensors/#' -m "a b" # note"#).unwrap();
    assert_eq!(
        w,
        [
            "tail",
            "-f",
            "x.log",
            "|",
            "mqtt-lab",
            "sub",
            "-t",
            "sensors/#",
            "-m",
            "a b"
        ]
    );
    assert!(check_command(&["mqtt-lab".into(), "nosuch".into()]).is_err());
    // A redirection is no argument: `merge` without reports is refused.
    assert!(check_commands("mqtt-lab merge > all.json", false).is_err());
    assert!(check_commands("mqtt-lab merge a.json b.json > all.json 2>/dev/null", false).is_ok());
    // YAML samples: parsed, and the commands in their strings checked.
    let job = "jobs:\n  a:\n    steps:\n      - run: >\n          cargo sim-run run scenarios --shard ${{ matrix.k }}/8\n          --json > s.json || true\n";
    assert_eq!(check_yaml(job), Ok(()));
    let err = check_yaml(&job.replace("--shard", "--shards")).unwrap_err();
    assert!(err.contains("--shards"), "{err}");
    assert!(check_yaml("a: [1, 2").unwrap_err().starts_with("not YAML"));
    assert!(
        check_command(&[
            "cargo".into(),
            "lab".into(),
            "--seeds".into(),
            "1..5".into()
        ])
        .is_ok()
    );
    assert!(
        check_command(&[
            "cargo".into(),
            "test".into(),
            "--test".into(),
            "nosuch".into()
        ])
        .is_err()
    );
}
