//! The HTML page of a failing run, in a real browser (`chromium --headless`): a bug planted in
//! the broker (`planted.rs`) fails a library scenario, `replay --html` and `run --html-dir` write
//! its page, and chromium loads it to show that the page's script draws it without an error,
//! that the violations are in the document, and that the filters and the violation links read
//! from the address work. Without chromium the test is skipped with a message, unless `CI` is
//! set: then it fails (scripts/test.sh installs chromium).
//!
//! `MQTT_LAB_BLESS=1` also writes the screenshot the docs show, docs/img/report.png.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mqtt_lab::cli::EXIT_VIOLATION;
use mqtt_lab::cli::lab::{self, ReplayArgs, RunArgs};
use mqtt_lab::codec::topic::matches;
use mqtt_lab::sim::{RunOptions, RunOutcome, run_seed};
use mqtt_lab::trace::Event;

use crate::planted::{Bug, factory};

/// A QoS 1 message to a client holding a QoS 0 and a QoS 1 subscription that match it goes out
/// at QoS 0: the delivery checker reports it.
const SCENARIO: &str = "scenarios/16-misses/05-overlapping-subscriptions.toml";
const SEED: u64 = 1;

/// How long one chromium run may take before the test gives up on it.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

fn planted_options() -> RunOptions {
    RunOptions {
        broker: factory(Bug::OverlapLowestQos),
        ..RunOptions::default()
    }
}

/// The chromium binary on the PATH; `None` (the test is skipped) only when CI is not set.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|p| p.is_file())
    });
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    match found {
        Some(path) => Some(path),
        None if ci => panic!(
            "chromium is not installed and CI is set: the HTML page must be tested in a browser \
             (scripts/test.sh installs it with apt-get install chromium)"
        ),
        None => {
            eprintln!(
                "\n\n*** SKIPPED html_report: chromium is not installed (apt-get install chromium); \
                 with CI=true this fails ***\n"
            );
            None
        }
    }
}

/// Runs headless chromium on `args` with a fresh profile, and returns its stdout and stderr.
fn headless(chromium: &Path, args: &[String]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, err) = (tmp.path().join("stdout"), tmp.path().join("stderr"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: cannot start: {e}", chromium.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} took longer than {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    let (stdout, stderr) = (read(&out), read(&err));
    assert!(status.success(), "chromium {args:?}: {status}\n{stderr}");
    (stdout, stderr)
}

/// The document chromium holds after loading `page` at `hash`, once its script has run; fails
/// on any error the script or the console reported.
fn dom(chromium: &Path, page: &Path, hash: &str) -> String {
    let url = format!("file://{}{hash}", page.display());
    let (dom, stderr) = headless(chromium, &["--dump-dom".into(), url]);
    let body = body_tag(&dom);
    assert!(
        body.contains("data-ok=\"1\"") && !body.contains("data-error"),
        "the page's script did not finish at {hash:?}: {body}\n{stderr}"
    );
    // The page writes nothing to the console: any line there is an error or a warning.
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "the console at {hash:?}: {console:#?}");
    dom
}

/// The `<body ...>` opening tag, where the script leaves its marks.
fn body_tag(dom: &str) -> &str {
    let from = dom.find("<body").expect("a body");
    &dom[from..from + dom[from..].find('>').unwrap() + 1]
}

/// The `data-shown` count the script writes on the body.
fn shown(dom: &str) -> usize {
    let body = body_tag(dom);
    let from = body.find("data-shown=\"").expect("data-shown") + "data-shown=\"".len();
    body[from..from + body[from..].find('"').unwrap()]
        .parse()
        .unwrap()
}

/// The lanes of the event rows in the document, in order.
fn row_lanes(dom: &str) -> Vec<&str> {
    dom.split("<tr class=\"row ")
        .skip(1)
        .map(|row| {
            let from = row.find("data-lane=\"").unwrap() + "data-lane=\"".len();
            &row[from..from + row[from..].find('"').unwrap()]
        })
        .collect()
}

/// Text as the browser serializes it in a document.
fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Replays the planted failure with `--html`, and returns the page's path and the run.
fn replay_page(dir: &Path) -> (PathBuf, RunOutcome) {
    let page = dir.join("replay.html");
    let args = ReplayArgs {
        scenario: PathBuf::from(SCENARIO),
        seed: SEED,
        trace: None,
        timeline: false,
        no_timeline: true,
        html: Some(page.clone()),
    };
    let kept = RefCell::new(None);
    let options = planted_options();
    let code = lab::replay_with(
        &args,
        |s, seed| {
            let outcome = run_seed(s, seed, &options);
            *kept.borrow_mut() = Some(outcome.clone());
            outcome
        },
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(code, EXIT_VIOLATION);
    let outcome = kept.into_inner().unwrap();
    assert!(
        outcome.violations.iter().any(|v| v.checker == "delivery"),
        "{:#?}",
        outcome.violations
    );
    (page, outcome)
}

#[test]
fn the_page_of_a_planted_failure_works_in_a_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (page, outcome) = replay_page(tmp.path());
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html, lab::html::render(SCENARIO, &outcome));

    // `run --html-dir` writes the same page, under the scenario's folder, file and seed.
    let pages = tmp.path().join("pages");
    let run = RunArgs {
        paths: vec![PathBuf::from(SCENARIO)],
        seeds: SEED.to_string().parse().unwrap(),
        jobs: Some(1),
        junit: None,
        json: false,
        check_determinism: false,
        fail_fast: false,
        no_progress: true,
        shard: None,
        coverage: false,
        html_dir: Some(pages.clone()),
        target: Default::default(),
    };
    let options = planted_options();
    let code = lab::run_with(&run, |s, seed| run_seed(s, seed, &options), &mut Vec::new()).unwrap();
    assert_eq!(code, EXIT_VIOLATION);
    let written: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let name = format!("16-misses-05-overlapping-subscriptions-seed-{SEED}.html");
    assert_eq!(written, std::slice::from_ref(&name));
    assert_eq!(
        std::fs::read_to_string(pages.join(&name)).unwrap(),
        html,
        "the same seed gives the same bytes"
    );

    let events = &outcome.trace.events;

    // Unfiltered: every event is a row, every violation is in the text.
    let all = dom(&chromium, &page, "");
    assert_eq!(shown(&all), events.len());
    assert_eq!(row_lanes(&all).len(), events.len());
    for v in &outcome.violations {
        assert!(
            all.contains(&html_text(&v.to_string())),
            "the document lacks {v}"
        );
    }

    // One client: only its events.
    let client = "sensor-1";
    let of_client = events
        .iter()
        .filter(|e| {
            !matches!(
                e.event,
                Event::FaultApplied { .. } | Event::FaultHealed { .. }
            )
        })
        .filter(|e| e.process() == Some(client))
        .count();
    assert!(of_client > 0 && of_client < events.len());
    let one = dom(&chromium, &page, &format!("#client={client}"));
    assert_eq!(shown(&one), of_client);
    let lanes = row_lanes(&one);
    assert_eq!(lanes.len(), of_client);
    assert!(lanes.iter().all(|l| *l == client), "{lanes:?}");

    // One client and one packet identifier.
    let pid = events
        .iter()
        .filter(|e| e.process() == Some(client))
        .find_map(|e| e.event.packet_id())
        .expect("sensor-1 publishes at QoS 1 and 2");
    let with_pid = events
        .iter()
        .filter(|e| e.process() == Some(client) && e.event.packet_id() == Some(pid))
        .count();
    let narrow = dom(&chromium, &page, &format!("#client={client}&pid={pid}"));
    assert_eq!(shown(&narrow), with_pid);
    assert!(with_pid >= 2, "a PUBLISH and its PUBACK at least");

    // One topic: the messages published to it and the subscriptions that cover it.
    let topic = "plant/2/temp";
    let labels: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::PublishRequested {
                topic: t, payload, ..
            } if t == topic => Some(payload.as_str()),
            _ => None,
        })
        .collect();
    let on_topic = events
        .iter()
        .filter(|e| match &e.event {
            Event::PublishRequested { payload, .. }
            | Event::PublishAcked { payload, .. }
            | Event::PublishLost { payload, .. }
            | Event::PublishSent { payload, .. }
            | Event::PublishReceived { payload, .. }
            | Event::Delivered { payload, .. } => labels.contains(payload.as_str()),
            Event::AckSent { payload, .. } | Event::AckReceived { payload, .. } => {
                payload.as_deref().is_some_and(|p| labels.contains(p))
            }
            Event::SubscribeRequested { filter, .. }
            | Event::SubscribeGranted { filter, .. }
            | Event::UnsubscribeRequested { filter, .. }
            | Event::Unsubscribed { filter, .. } => matches(filter, topic),
            _ => false,
        })
        .count();
    let by_topic = dom(&chromium, &page, &format!("#topic={topic}"));
    assert_eq!(shown(&by_topic), on_topic);

    // A violation chosen in the address: its events highlighted.
    let blob_start = html.find("id=\"run\">").unwrap() + "id=\"run\">".len();
    let blob_end = blob_start + html[blob_start..].find("</script>").unwrap();
    let blob: serde_json::Value = serde_json::from_str(&html[blob_start..blob_end]).unwrap();
    let linked = blob["violations"][0]["events"].as_array().unwrap().len();
    assert!(linked > 0, "the first violation links to events");
    let chosen = dom(&chromium, &page, "#v=0");
    let highlighted = chosen
        .split("<tr class=\"row ")
        .skip(1)
        .filter(|row| row[..row.find('"').unwrap()].split(' ').any(|c| c == "hl"))
        .count();
    assert_eq!(highlighted, linked);
    assert!(chosen.contains("class=\"violation selected\""));

    // What the docs show: the chart zoomed in on the last violation shown before the first
    // fault, so that both are in sight.
    let fault_at = blob["bands"][0]["from"]
        .as_u64()
        .expect("the scenario cuts clients");
    let near = blob["violations"]
        .as_array()
        .unwrap()
        .iter()
        .rposition(|v| {
            let first = v["events"][0].as_u64().unwrap() as usize;
            blob["events"][first]["t"].as_u64().unwrap() < fault_at
        })
        .expect("a violation before the first fault");
    let shot = tmp.path().join("report.png");
    let url = format!("file://{}#v={near}&zoom=20", page.display());
    headless(
        &chromium,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,900".into(),
            "--hide-scrollbars".into(),
            url,
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of {} bytes",
        png.len()
    );
    if std::env::var_os("MQTT_LAB_BLESS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img/report.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::write(&docs, png).unwrap();
    }
}
