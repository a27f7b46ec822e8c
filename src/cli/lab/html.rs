//! `replay --html FILE` and `run --html-dir DIR`: one run as a self-contained HTML page. A lane
//! per client and one for the broker, the packets each client sent and received as arrows
//! between its lane and the broker's, faults and crashes as shaded bands, the violations at the
//! top, each linked to the events that show it; filters by client, topic and packet identifier
//! and a zoom on time, all in the page's own script (`html/report.js`, `html/report.css`), with
//! the run embedded as JSON (`<script type="application/json" id="run">`).
//!
//! The page depends only on the outcome minus its wall time, so a seed gives the same bytes
//! every time, and it loads nothing: no network, no fonts. Not here: running the seed, and the
//! broker's side of a packet (the trace records what clients observed; an arrow is drawn at the
//! instant its client sent or received it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::summary::replay_command;
use super::timeline::describe;
use super::verdict::Verdict;
use crate::check::Violation;
use crate::sim::RunOutcome;
use crate::trace::{BROKER, Event, Fault, Trace};

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

/// The lane of the run's own milestones (start, settle, end) in the event list.
const RUN_LANE: &str = "run";
/// The lane of fault events in the event list; the chart draws them as bands.
const FAULT_LANE: &str = "fault";

/// What the page's script reads: the run, its lanes, events, fault bands and violations.
#[derive(Serialize)]
struct Page<'a> {
    scenario: &'a str,
    seed: u64,
    end_us: u64,
    faults_until_us: u64,
    /// When every fault had healed (`settle_started`), if the trace says.
    #[serde(skip_serializing_if = "Option::is_none")]
    settle_us: Option<u64>,
    /// The broker first, then every client process in the order the trace first names it.
    lanes: Vec<String>,
    events: Vec<PageEvent>,
    bands: Vec<Band>,
    violations: Vec<PageViolation<'a>>,
}

/// One trace event, as the chart and the list show it.
#[derive(Serialize)]
struct PageEvent {
    t: u64,
    /// A client process, [`FAULT_LANE`] or [`RUN_LANE`].
    lane: String,
    /// The colour class: `conn`, `sub`, `pub`, `ack`, `bad`, `fault`, `run`.
    kind: &'static str,
    /// `out` (a packet the client sent to the broker), `in` (one it received) or absent (not
    /// a packet: drawn as a dot on the lane).
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<&'static str>,
    text: String,
    /// The topic of the message the event is about, when the trace names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    /// The topic filter of a subscription event.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u16>,
}

/// A fault from its `fault_applied` to its `fault_healed` (or the end of the run); `from == to`
/// for an instant fault.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Band {
    from: u64,
    to: u64,
    /// The lanes it strikes; empty: every lane (a broker crash).
    lanes: Vec<String>,
    /// `crash` for crashes and power-offs, `fault` for the rest.
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct PageViolation<'a> {
    #[serde(skip)]
    violation: &'a Violation,
    checker: &'static str,
    at_us: u64,
    message: &'a str,
    /// Undecided rather than broken ([`RunOutcome::undecided`]).
    undecided: bool,
    /// The lanes its message names.
    clients: Vec<String>,
    /// The events that show it, by index in the trace.
    events: Vec<usize>,
}

/// The whole page for the run of the scenario at `path`.
pub fn render(path: &str, outcome: &RunOutcome) -> String {
    let trace = &outcome.trace;
    let lanes = lanes(trace);
    let events: Vec<PageEvent> = page_events(trace);
    let lane_set: BTreeSet<&str> = lanes.iter().map(String::as_str).collect();
    let violations: Vec<PageViolation> = outcome
        .violations
        .iter()
        .map(|v| (v, false))
        .chain(outcome.undecided.iter().map(|v| (v, true)))
        .map(|(v, undecided)| link(v, undecided, trace, &events, &lane_set))
        .collect();
    let page = Page {
        scenario: path,
        seed: outcome.seed,
        end_us: trace
            .end_us()
            .max(u64::try_from(outcome.sim_time.as_micros()).unwrap_or(u64::MAX)),
        faults_until_us: u64::try_from(outcome.plan.faults_until.as_micros()).unwrap_or(u64::MAX),
        settle_us: trace
            .events
            .iter()
            .find(|e| matches!(e.event, Event::SettleStarted))
            .map(|e| e.at_us),
        lanes,
        bands: bands(trace),
        events,
        violations,
    };
    let verdict = Verdict::of(outcome);
    let mut out = String::new();
    let title = format!("{path} seed {}", outcome.seed);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(&title));
    let _ = writeln!(out, "<style>\n{CSS}</style>\n</head>\n<body>");
    header(&mut out, path, outcome, &verdict, &page);
    out.push_str(CONTROLS);
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"run\">{}</script>",
        json_for_script(&page)
    );
    let _ = writeln!(out, "<script>\n{JS}</script>\n</body>\n</html>");
    out
}

/// The run's data as JSON that cannot end its `<script>` element: every `<`, `>` and `&` is
/// written as a `\u` escape (only strings can hold them).
fn json_for_script<T: Serialize>(value: &T) -> String {
    // Strings, integers, booleans and lists: always serializable.
    let json = serde_json::to_string(value).expect("the page's data always serializes");
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `s` as HTML text or attribute value (escaped as XML is: HTML reads it the same).
fn esc(s: &str) -> String {
    super::junit::escape(s)
}

/// The top of the page: what ran, the verdict, the violations (linked by the script to their
/// events), and what the seed derived.
fn header(out: &mut String, path: &str, outcome: &RunOutcome, verdict: &Verdict, page: &Page) {
    let failed = verdict.exit_code() != crate::cli::EXIT_OK;
    let _ = writeln!(
        out,
        "<header>\n<h1>{} <span class=\"seed\">seed {}</span></h1>",
        esc(path),
        outcome.seed
    );
    let _ = writeln!(
        out,
        "<p class=\"verdict {}\">{}</p>",
        verdict.class(),
        esc(&if failed {
            format!("FAILED, {}", verdict.headline(outcome.violations.len()))
        } else {
            verdict.headline(outcome.violations.len())
        })
    );
    if failed {
        let _ = writeln!(
            out,
            "<p>replay: <code>{}</code></p>",
            esc(&replay_command(path, outcome.seed))
        );
    }
    if let Verdict::Crashed(message) = verdict {
        let _ = writeln!(out, "<pre class=\"crash\">{}</pre>", esc(message));
    }
    if !page.violations.is_empty() {
        let _ = writeln!(
            out,
            "<section id=\"violations\">\n<h2>violations ({})</h2>\n<ol>",
            page.violations.len()
        );
        for (i, v) in page.violations.iter().enumerate() {
            let text = v.violation.to_string();
            let links = match (v.events.len(), v.clients.is_empty()) {
                (0, _) => String::new(),
                (n, true) => format!("{n} event{}", if n == 1 { "" } else { "s" }),
                (n, false) => format!(
                    "{n} event{} of {}",
                    if n == 1 { "" } else { "s" },
                    v.clients.join(", ")
                ),
            };
            let _ = writeln!(
                out,
                "<li class=\"violation{}\" data-v=\"{i}\" tabindex=\"0\">{}{} <span class=\"links\">{}</span></li>",
                if v.undecided { " undecided" } else { "" },
                if v.undecided { "undecided: " } else { "" },
                esc(&text),
                esc(&links)
            );
        }
        out.push_str("</ol>\n</section>\n");
    }
    for i in &outcome.unfired {
        let _ = writeln!(
            out,
            "<p class=\"note\">fault[{i}] never fired: its trigger event did not come before faults_until</p>"
        );
    }
    let _ = writeln!(
        out,
        "<details><summary>what the seed derived</summary><pre>{}</pre></details>",
        esc(&outcome.plan.describe())
    );
    let _ = writeln!(
        out,
        "<p class=\"note\">{} trace events, fingerprint <code>{}</code></p>\n</header>",
        outcome.trace.events.len(),
        outcome.fingerprint()
    );
}

/// The filters, the zoom, the chart and the event list; the script fills them in.
const CONTROLS: &str = r#"<nav id="controls">
<label>client <select id="f-client"><option value="">all</option></select></label>
<label>topic <input id="f-topic" placeholder="plant/1/temp or plant/#" size="22"></label>
<label>packet id <input id="f-pid" inputmode="numeric" size="6"></label>
<button id="f-clear" type="button">clear</button>
<span class="zoom">zoom <button id="z-out" type="button" title="zoom out">&minus;</button><input id="zoom" type="range" min="0" max="48" value="0"><button id="z-in" type="button" title="zoom in">+</button><button id="z-fit" type="button">fit</button></span>
<span id="count"></span>
</nav>
<div id="legend"><span class="k-conn">connect</span><span class="k-sub">subscribe</span><span class="k-pub">publish</span><span class="k-ack">ack</span><span class="k-bad">lost / refused</span><span class="b-fault">fault</span><span class="b-crash">crash</span><span class="k-viol">violation</span> arrows point from the sender to the receiver</div>
<div id="chart-wrap"><div id="labels"></div><div id="scroll"></div></div>
<div id="list"><table id="events"><thead><tr><th>time</th><th>lane</th><th>event</th></tr></thead><tbody id="rows"></tbody></table></div>
<noscript><p>The chart, the filters and the event list need JavaScript.</p></noscript>
"#;

/// The broker, then every client process in the order the trace first names it (in an event
/// or in a fault).
fn lanes(trace: &Trace) -> Vec<String> {
    let mut lanes = vec![BROKER.to_string()];
    let mut seen: BTreeSet<String> = lanes.iter().cloned().collect();
    for e in &trace.events {
        let names: Vec<&str> = match &e.event {
            Event::FaultApplied { fault } | Event::FaultHealed { fault } => fault_nodes(fault),
            _ => e.process().into_iter().collect(),
        };
        for name in names {
            if seen.insert(name.to_string()) {
                lanes.push(name.to_string());
            }
        }
    }
    lanes
}

/// The nodes a fault names; none for the broker's own faults.
fn fault_nodes(fault: &Fault) -> Vec<&str> {
    match fault {
        Fault::Cut { client }
        | Fault::BlackHole { client }
        | Fault::Delay { client, .. }
        | Fault::SplitWrites { client }
        | Fault::ClientCrash { client }
        | Fault::ClientPowerOff { client } => vec![client],
        Fault::Partition { from, to, .. } => vec![from, to],
        Fault::Pause { node } => vec![node],
        Fault::BrokerCrash | Fault::SyncError | Fault::DiskFull | Fault::SlowSync { .. } => {
            vec![BROKER]
        }
    }
}

/// Every trace event with its lane, colour, direction, topic and packet identifier.
fn page_events(trace: &Trace) -> Vec<PageEvent> {
    // The topic of every message label, so that packets that carry only the label (PUBLISH
    // sent, acknowledgements) can be found by topic too.
    let mut topics: BTreeMap<&str, &str> = BTreeMap::new();
    for e in &trace.events {
        match &e.event {
            Event::PublishRequested { payload, topic, .. }
            | Event::Delivered { payload, topic, .. } => {
                topics.entry(payload).or_insert(topic);
            }
            Event::Connecting { will: Some(w), .. } => {
                topics.entry(&w.payload).or_insert(&w.topic);
            }
            _ => {}
        }
    }
    trace
        .events
        .iter()
        .map(|e| {
            let (kind, dir) = shape(&e.event);
            let lane = match &e.event {
                Event::FaultApplied { .. }
                | Event::FaultHealed { .. }
                | Event::FaultTookEffect { .. } => FAULT_LANE,
                _ => e.process().unwrap_or(RUN_LANE),
            };
            let filter = match &e.event {
                Event::SubscribeRequested { filter, .. }
                | Event::SubscribeGranted { filter, .. }
                | Event::UnsubscribeRequested { filter, .. }
                | Event::Unsubscribed { filter, .. } => Some(filter.clone()),
                _ => None,
            };
            PageEvent {
                t: e.at_us,
                lane: lane.to_string(),
                kind,
                dir,
                text: describe(&e.event),
                topic: payload_of(&e.event)
                    .and_then(|p| topics.get(p))
                    .map(|t| t.to_string()),
                filter,
                pid: e.event.packet_id(),
            }
        })
        .collect()
}

/// The colour class of an event, and the direction of the packet it records, if it records one.
fn shape(event: &Event) -> (&'static str, Option<&'static str>) {
    const OUT: Option<&str> = Some("out");
    const IN: Option<&str> = Some("in");
    match event {
        Event::Connecting { .. } | Event::DisconnectSent { .. } => ("conn", OUT),
        Event::Connected { .. } => ("conn", IN),
        Event::ConnectFailed { .. } | Event::ConnectionLost { .. } | Event::PublishLost { .. } => {
            ("bad", None)
        }
        Event::SubscribeRequested { .. } | Event::UnsubscribeRequested { .. } => ("sub", OUT),
        Event::SubscribeGranted { .. } | Event::Unsubscribed { .. } => ("sub", IN),
        Event::PublishSent { .. } => ("pub", OUT),
        Event::PublishReceived { .. } => ("pub", IN),
        // A QoS 0 message has no `publish_received`: its delivery is the packet's arrival.
        Event::Delivered { qos: 0, .. } | Event::Figure { .. } => ("pub", IN),
        Event::Delivered { .. } | Event::PublishRequested { .. } => ("pub", None),
        Event::AckSent { .. } => ("ack", OUT),
        Event::AckReceived { .. } => ("ack", IN),
        Event::PublishAcked { .. } => ("ack", None),
        Event::FaultApplied { .. } | Event::FaultHealed { .. } | Event::FaultTookEffect { .. } => {
            ("fault", None)
        }
        Event::RunStarted { .. }
        | Event::AuthConfigured { .. }
        | Event::SettleStarted
        | Event::RunEnded => ("run", None),
    }
}

/// The label of the message an event is about.
fn payload_of(event: &Event) -> Option<&str> {
    match event {
        Event::PublishRequested { payload, .. }
        | Event::PublishAcked { payload, .. }
        | Event::PublishLost { payload, .. }
        | Event::PublishSent { payload, .. }
        | Event::PublishReceived { payload, .. }
        | Event::Delivered { payload, .. } => Some(payload),
        Event::AckSent { payload, .. } | Event::AckReceived { payload, .. } => payload.as_deref(),
        Event::Connecting { will, .. } => will.as_ref().map(|w| w.payload.as_str()),
        _ => None,
    }
}

/// Every fault as a band: each `fault_applied` up to the first `fault_healed` of the same fault
/// after it, or to the end of the run; instant faults (cuts) are over where they start.
fn bands(trace: &Trace) -> Vec<Band> {
    let mut bands = Vec::new();
    let mut open: Vec<(usize, &Fault)> = Vec::new();
    for e in &trace.events {
        match &e.event {
            Event::FaultApplied { fault } => {
                let lanes = match fault {
                    Fault::BrokerCrash => Vec::new(),
                    f => fault_nodes(f).into_iter().map(str::to_string).collect(),
                };
                let kind = match fault {
                    Fault::BrokerCrash
                    | Fault::ClientCrash { .. }
                    | Fault::ClientPowerOff { .. } => "crash",
                    _ => "fault",
                };
                if !fault.is_instant() {
                    open.push((bands.len(), fault));
                }
                bands.push(Band {
                    from: e.at_us,
                    to: e.at_us,
                    lanes,
                    kind,
                    text: describe(&e.event),
                });
            }
            Event::FaultHealed { fault } => {
                if let Some(k) = open.iter().position(|(_, f)| *f == fault) {
                    let (i, _) = open.remove(k);
                    bands[i].to = e.at_us;
                }
            }
            _ => {}
        }
    }
    for (i, _) in open {
        bands[i].to = trace.end_us();
    }
    bands
}

/// A violation with the lanes its message names and the events that show it: those of every
/// message label it names, and those of its lanes at its instant; failing both, the last event
/// of each of its lanes (of any lane, if it names none) at or before its instant.
fn link<'a>(
    v: &'a Violation,
    undecided: bool,
    trace: &Trace,
    events: &[PageEvent],
    lanes: &BTreeSet<&str>,
) -> PageViolation<'a> {
    let words: BTreeSet<&str> = v
        .message
        .split(|c: char| c.is_whitespace() || ",;()[]{}\"'`".contains(c))
        .map(|w| w.trim_end_matches([':', '.']))
        .filter(|w| !w.is_empty())
        .collect();
    let clients: Vec<String> = lanes
        .iter()
        .filter(|l| **l != BROKER && words.contains(*l))
        .map(|l| l.to_string())
        .collect();
    let of_clients = |e: &PageEvent| clients.is_empty() || clients.contains(&e.lane);
    let mut linked: Vec<usize> = Vec::new();
    for (i, (e, traced)) in events.iter().zip(&trace.events).enumerate() {
        let names_label = payload_of(&traced.event).is_some_and(|p| words.contains(p));
        let at_instant = e.t == v.at_us && e.lane != RUN_LANE && of_clients(e);
        if names_label || at_instant {
            linked.push(i);
        }
    }
    if linked.is_empty() {
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            if e.t > v.at_us {
                break;
            }
            if e.lane != RUN_LANE && e.lane != FAULT_LANE && of_clients(e) {
                let key = if clients.is_empty() { "" } else { &e.lane };
                last.insert(key, i);
            }
        }
        linked = last.into_values().collect();
        linked.sort_unstable();
    }
    PageViolation {
        violation: v,
        checker: v.checker,
        at_us: v.at_us,
        message: &v.message,
        undecided,
        clients,
        events: linked,
    }
}

/// The page `run --html-dir` writes for `seed` of the scenario at `path`: the scenario's
/// folder and file name and the seed, `03-qos1-01-qos1-under-cuts-seed-7.html`.
pub fn page_name(path: &str, seed: u64) -> String {
    let p = Path::new(path);
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let folder = p
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy());
    let name = match folder {
        Some(folder) if !folder.is_empty() => format!("{folder}-{stem}"),
        _ => stem.to_string(),
    };
    format!("{}-seed-{seed}.html", super::summary::file_safe(&name))
}

/// `run --html-dir`: writes the page of every failing run into one folder, and lists them at
/// the end. Safe to share between the suite's workers.
pub struct Pages {
    dir: PathBuf,
    written: Mutex<BTreeSet<PathBuf>>,
}

impl Pages {
    /// Creates `dir` if it is missing.
    pub fn new(dir: &Path) -> Result<Pages, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        Ok(Pages {
            dir: dir.to_path_buf(),
            written: Mutex::new(BTreeSet::new()),
        })
    }

    /// Writes the page of `outcome` if the run failed; a page that cannot be written is
    /// reported on stderr.
    pub fn keep(&self, path: &str, outcome: &RunOutcome) {
        if Verdict::of(outcome).exit_code() == crate::cli::EXIT_OK {
            return;
        }
        let file = self.dir.join(page_name(path, outcome.seed));
        match std::fs::write(&file, render(path, outcome)) {
            Ok(()) => {
                self.written
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(file);
            }
            Err(e) => eprintln!("{}: cannot write the page: {e}", file.display()),
        }
    }

    /// The pages written, in path order.
    pub fn written(&self) -> Vec<PathBuf> {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.iter().cloned().collect()
    }

    /// Prints where the pages are, on stderr.
    pub fn announce(&self) {
        let written = self.written();
        if written.is_empty() {
            eprintln!(
                "html: no failing run, no page written to {}",
                self.dir.display()
            );
        }
        for file in written {
            eprintln!("html: {}", file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lab::verdict::tests::outcome;
    use crate::sim::RunStatus;
    use crate::trace::{AckPacket, Persistence};

    /// A run of a monitor and a sensor: a publish, its delivery, a partition that heals, a
    /// broker crash that never does, and a cut of a client that has no event of its own.
    fn run() -> RunOutcome {
        let mut o = outcome(9, RunStatus::Completed, 0);
        let mut t = Trace::new();
        let c = |s: &str| s.to_string();
        t.push(
            0,
            Event::RunStarted {
                scenario: c("two clients"),
                seed: 9,
                protocol: c("3.1.1"),
                persistence: Persistence::None,
                max_queued_messages: None,
                max_inflight: None,
            },
        );
        t.push(
            1_000,
            Event::SubscribeRequested {
                client: c("monitor"),
                filter: c("plant/#"),
                qos: 1,
                options: Default::default(),
            },
        );
        t.push(
            2_000,
            Event::PublishRequested {
                client: c("sensor-1"),
                topic: c("plant/1/temp"),
                qos: 1,
                retain: false,
                payload: c("sensor-1#1"),
                size: 16,
                message_expiry_s: None,
                properties: Default::default(),
            },
        );
        t.push(
            2_100,
            Event::PublishSent {
                client: c("sensor-1"),
                payload: c("sensor-1#1"),
                packet_id: 7,
                qos: 1,
                dup: false,
            },
        );
        t.push(
            2_500,
            Event::AckReceived {
                client: c("sensor-1"),
                packet: AckPacket::Puback,
                packet_id: 7,
                payload: Some(c("sensor-1#1")),
                reason: None,
            },
        );
        let partition = Fault::Partition {
            from: c("monitor"),
            to: c(BROKER),
            one_way: false,
        };
        t.push(
            3_000,
            Event::FaultApplied {
                fault: partition.clone(),
            },
        );
        t.push(
            3_500,
            Event::FaultApplied {
                fault: Fault::Cut {
                    client: c("sensor-2"),
                },
            },
        );
        t.push(4_000, Event::FaultHealed { fault: partition });
        t.push(
            5_000,
            Event::Delivered {
                client: c("monitor"),
                topic: c("plant/1/temp"),
                qos: 0,
                retain: false,
                dup: false,
                packet_id: None,
                payload: c("sensor-1#1"),
                size: 16,
                message_expiry_s: None,
                properties: Default::default(),
                subscription_ids: Vec::new(),
            },
        );
        t.push(
            6_000,
            Event::FaultApplied {
                fault: Fault::BrokerCrash,
            },
        );
        t.push(8_000, Event::RunEnded);
        o.trace = t;
        o.violations = vec![Violation {
            checker: "delivery",
            at_us: 5_000,
            message: c("monitor received sensor-1#1 at QoS 0, granted QoS 1"),
        }];
        o
    }

    /// The JSON the page embeds, parsed back.
    fn data(html: &str) -> serde_json::Value {
        let start = "<script type=\"application/json\" id=\"run\">";
        let from = html.find(start).expect("the page embeds its run") + start.len();
        let to = from + html[from..].find("</script>").expect("the blob ends");
        serde_json::from_str(&html[from..to]).expect("the blob is JSON up to its own end tag")
    }

    #[test]
    fn markup_in_topics_payloads_and_messages_cannot_escape_its_place() {
        let mut o = run();
        let topic = "plant/</script><script>alert(1)</script>&amp;<!--";
        let payload = "sensor-1#</SCRIPT>";
        for e in &mut o.trace.events {
            match &mut e.event {
                Event::PublishRequested {
                    topic: t,
                    payload: p,
                    ..
                }
                | Event::Delivered {
                    topic: t,
                    payload: p,
                    ..
                } => {
                    *t = topic.into();
                    *p = payload.into();
                }
                _ => {}
            }
        }
        o.violations[0].message = "monitor got <b>x</b> & </script> twice".into();
        let html = render("scenarios/<x>&.toml", &o);
        let blob = data(&html);
        let events = blob["events"].as_array().unwrap();
        assert!(
            events.iter().any(|e| e["topic"] == topic),
            "the topic comes back whole from the blob"
        );
        assert!(
            events
                .iter()
                .any(|e| e["text"].as_str().unwrap().contains(payload))
        );
        assert_eq!(
            blob["violations"][0]["message"],
            "monitor got <b>x</b> & </script> twice"
        );
        // Two scripts, so exactly two end tags, whatever the case.
        assert_eq!(html.to_ascii_lowercase().matches("</script").count(), 2);
        assert!(!html.contains("<!--"), "no comment opener anywhere");
        assert!(
            html.contains("monitor got &lt;b&gt;x&lt;/b&gt; &amp; &lt;/script&gt; twice"),
            "the violation is escaped text in the list"
        );
        assert!(html.contains("<title>scenarios/&lt;x&gt;&amp;.toml seed 9</title>"));
        assert!(!html.contains("<b>x</b>"));
    }

    #[test]
    fn every_client_gets_a_lane_with_the_broker_first() {
        let blob = data(&render("x.toml", &run()));
        assert_eq!(
            blob["lanes"],
            serde_json::json!(["broker", "monitor", "sensor-1", "sensor-2"]),
            "sensor-2 appears only in a fault and still has a lane"
        );
        let lanes: Vec<&str> = blob["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["lane"].as_str().unwrap())
            .collect();
        assert_eq!(
            lanes,
            [
                "run", "monitor", "sensor-1", "sensor-1", "sensor-1", "fault", "fault", "fault",
                "monitor", "fault", "run"
            ]
        );
    }

    #[test]
    fn packets_are_arrows_with_their_direction_topic_and_packet_id() {
        let blob = data(&render("x.toml", &run()));
        let e = &blob["events"];
        assert_eq!(e[1]["dir"], "out", "SUBSCRIBE goes to the broker");
        assert_eq!(e[1]["filter"], "plant/#");
        assert_eq!(e[2].get("dir"), None, "a publish request is not a packet");
        assert_eq!(
            (&e[3]["dir"], &e[3]["pid"], &e[3]["topic"]),
            (&"out".into(), &7.into(), &"plant/1/temp".into()),
            "PUBLISH sent: its topic is found through its label"
        );
        assert_eq!((&e[4]["dir"], &e[4]["kind"]), (&"in".into(), &"ack".into()));
        assert_eq!(
            e[8]["dir"], "in",
            "a QoS 0 delivery is the packet's arrival"
        );
    }

    #[test]
    fn faults_are_bands_from_applied_to_healed_or_the_end() {
        let blob = data(&render("x.toml", &run()));
        assert_eq!(
            blob["bands"],
            serde_json::json!([
                {"from": 3000, "to": 4000, "lanes": ["monitor", "broker"], "kind": "fault",
                 "text": "partition monitor <-> broker"},
                {"from": 3500, "to": 3500, "lanes": ["sensor-2"], "kind": "fault",
                 "text": "cut sensor-2"},
                {"from": 6000, "to": 8000, "lanes": [], "kind": "crash", "text": "crash broker"},
            ])
        );
    }

    #[test]
    fn violations_are_listed_and_linked_to_the_events_that_show_them() {
        let o = run();
        let html = render("x.toml", &o);
        assert!(html.contains(
            "data-v=\"0\" tabindex=\"0\">[delivery] at 0.005000s: monitor received sensor-1#1 at QoS 0, granted QoS 1"
        ));
        let v = &data(&html)["violations"][0];
        assert_eq!(v["clients"], serde_json::json!(["monitor"]));
        assert_eq!(
            v["events"],
            serde_json::json!([2, 3, 4, 8]),
            "every event of the label sensor-1#1"
        );

        // A message naming no label: the events of its client at its instant, else the last
        // one before it.
        let mut o = run();
        o.violations[0].message = "monitor: connection never came back".into();
        o.violations[0].at_us = 4_500;
        let v = &data(&render("x.toml", &o))["violations"][0];
        assert_eq!(v["events"], serde_json::json!([1]));
        o.violations[0].message = "the broker lost a session".into();
        let v = &data(&render("x.toml", &o))["violations"][0];
        assert_eq!(v["clients"], serde_json::json!([]));
        assert_eq!(v["events"], serde_json::json!([4]), "the last client event");
    }

    #[test]
    fn a_failure_shows_its_verdict_and_replay_line_and_a_pass_does_not() {
        let html = render("x.toml", &run());
        assert!(html.contains("<p class=\"verdict violated\">FAILED, 1 violation</p>"));
        assert!(html.contains("<code>cargo sim-run replay x.toml --seed 9</code>"));
        let mut pass = run();
        pass.violations.clear();
        let html = render("x.toml", &pass);
        assert!(html.contains("<p class=\"verdict passed\">passed</p>"));
        assert!(!html.contains("replay:") && !html.contains("id=\"violations\""));
    }

    #[test]
    fn the_page_depends_only_on_the_outcome() {
        let mut o = run();
        let first = render("x.toml", &o);
        assert_eq!(render("x.toml", &o), first);
        o.wall_time = std::time::Duration::from_secs(1234);
        assert_eq!(render("x.toml", &o), first, "no wall time");
        o.trace.events[3].at_us += 1;
        assert_ne!(render("x.toml", &o), first, "the trace is in it");
    }

    #[test]
    fn the_page_loads_nothing() {
        let html = render("x.toml", &run());
        for outside in ["http:", "https:", "src=", "href=", "@import", "<link"] {
            assert!(!html.contains(outside), "{outside}");
        }
        assert_eq!(
            html.matches("url(").count(),
            html.matches("url(#").count(),
            "only references inside the page"
        );
    }

    #[test]
    fn page_names_keep_the_folder_the_file_and_the_seed() {
        assert_eq!(
            page_name("scenarios/03-qos1/02-lost-ack.toml", 7),
            "03-qos1-02-lost-ack-seed-7.html"
        );
        assert_eq!(page_name("x.toml", 1), "x-seed-1.html");
        assert_eq!(page_name("my dir/it's.toml", 2), "my_dir-it_s-seed-2.html");
    }

    #[test]
    fn pages_are_written_for_failing_runs_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pages");
        let pages = Pages::new(&dir).unwrap();
        pages.keep("s/a.toml", &run());
        let mut pass = run();
        pass.violations.clear();
        pass.seed = 10;
        pages.keep("s/a.toml", &pass);
        assert_eq!(pages.written(), [dir.join("s-a-seed-9.html")]);
        assert_eq!(
            std::fs::read_to_string(dir.join("s-a-seed-9.html")).unwrap(),
            render("s/a.toml", &run())
        );
    }
}
