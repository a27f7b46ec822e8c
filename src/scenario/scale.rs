//! A run on a scaled clock (`run --target ... --time-scale F`): every time of one seed's run
//! multiplied by `F`, so a story written for 60 s runs in 30 s at `0.5` against a real broker,
//! or in 120 s at `2` against a slow one. The protocol's own clocks scale with it: the
//! keep-alive, session expiry, will delay and message expiry a client sends are scaled too, so
//! the broker's timers keep their place in the story and the checkers judge the scaled run
//! with the values it carried.
//!
//! A scenario's clock allows a factor when each of those protocol values stays a whole number
//! of seconds within its MQTT maximum (MQTT counts them in seconds), and when no trigger matches
//! an event on a time value. Otherwise [`Scenario::scaled`] says which value does not fit.
//!
//! What is scaled is one seed's run: the plan ([`Plan::scaled`]) and the scenario its clients
//! are drawn from ([`Scenario::drawn`]). The `[random]` section and the `[[fault]]` entries as
//! written keep their values: a plan drawn from a scaled scenario would place its faults
//! differently, so the plan of the unscaled scenario is drawn and then scaled.
//!
//! Not here: the simulator, whose clock is virtual and needs no scale.

use std::time::Duration;

use super::document::Scenario;
use super::fault::FaultKind;
use super::plan::Plan;
use super::template::Value;
use super::values::{MAX_INTERVAL_S, MAX_KEEP_ALIVE_S, MAX_SESSION_EXPIRY_S};
use crate::config::duration::{NEVER_EXPIRES, format_duration};

/// Smallest and largest factor accepted.
pub const SCALE_RANGE: [f64; 2] = [0.01, 100.0];

/// A factor by which a run's times are multiplied: within [`SCALE_RANGE`]. Serialized as the
/// number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct TimeScale(f64);

impl TimeScale {
    /// Times as written.
    pub const ONE: TimeScale = TimeScale(1.0);

    /// `factor` if it is a finite number within [`SCALE_RANGE`].
    pub fn new(factor: f64) -> Result<TimeScale, String> {
        if factor.is_finite() && (SCALE_RANGE[0]..=SCALE_RANGE[1]).contains(&factor) {
            Ok(TimeScale(factor))
        } else {
            Err(format!(
                "time scale {factor} is not between {} and {}",
                SCALE_RANGE[0], SCALE_RANGE[1]
            ))
        }
    }

    pub fn factor(self) -> f64 {
        self.0
    }

    pub fn is_one(self) -> bool {
        self.0 == 1.0
    }

    /// `d` scaled, to the microsecond.
    pub fn of(self, d: Duration) -> Duration {
        if self.is_one() {
            return d;
        }
        let us = (d.as_micros() as f64 * self.0).round();
        Duration::from_micros(if us >= u64::MAX as f64 {
            u64::MAX
        } else {
            us as u64
        })
    }

    fn range(self, r: [Duration; 2]) -> [Duration; 2] {
        [self.of(r[0]), self.of(r[1])]
    }

    fn opt(self, d: Option<Duration>) -> Option<Duration> {
        d.map(|d| self.of(d))
    }

    /// A protocol time counted in whole seconds, scaled; an error names `what` when the scaled
    /// value is not whole seconds or exceeds `max_secs`.
    fn seconds(self, what: &str, d: Duration, max_secs: u64) -> Result<Duration, String> {
        let scaled = self.of(d);
        if scaled.subsec_nanos() != 0 {
            return Err(format!(
                "{what} {} would be {} (MQTT counts it in whole seconds)",
                format_duration(d),
                format_duration(scaled)
            ));
        }
        if scaled.as_secs() > max_secs {
            return Err(format!(
                "{what} {} would be {}, above the MQTT maximum of {max_secs}s",
                format_duration(d),
                format_duration(scaled)
            ));
        }
        Ok(scaled)
    }
}

impl Default for TimeScale {
    fn default() -> TimeScale {
        TimeScale::ONE
    }
}

impl std::fmt::Display for TimeScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for TimeScale {
    type Err = String;

    fn from_str(s: &str) -> Result<TimeScale, String> {
        let factor: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("time scale {s:?} is not a number (like 0.5 or 2)"))?;
        TimeScale::new(factor)
    }
}

impl Scenario {
    /// This scenario with every time of a run scaled by `scale` (see the module text), or why
    /// its clock does not allow it. Call it on the scenario a seed's clients are drawn from.
    pub fn scaled(&self, scale: TimeScale) -> Result<Scenario, String> {
        if scale.is_one() {
            return Ok(self.clone());
        }
        let mut s = self.clone();
        s.duration = scale.of(s.duration);
        s.faults_until = Some(scale.of(self.faults_until()));
        s.settle = scale.opt(s.settle);
        s.network.latency = scale.range(s.network.latency);
        s.broker.sync_latency = scale.opt(s.broker.sync_latency);
        for c in &mut s.clients {
            let who = |field: &str| format!("client {:?} {field}", c.id);
            c.keep_alive = scale.seconds(&who("keep_alive"), c.keep_alive, MAX_KEEP_ALIVE_S)?;
            c.session_expiry = match c.session_expiry {
                Some(e) if e == NEVER_EXPIRES => Some(e),
                Some(e) => Some(scale.seconds(&who("session_expiry"), e, MAX_SESSION_EXPIRY_S)?),
                None => None,
            };
            if let Some(w) = &mut c.will {
                w.delay = scale.seconds(&who("will delay"), w.delay, MAX_INTERVAL_S)?;
            }
            c.connect_at = scale.of(c.connect_at);
            c.disconnect_at = scale.opt(c.disconnect_at);
            c.reconnect_at = scale.opt(c.reconnect_at);
            for u in &mut c.unsubscribe {
                u.at = scale.of(u.at);
            }
            c.reconnect.min_backoff = scale.of(c.reconnect.min_backoff);
            c.reconnect.max_backoff = scale.of(c.reconnect.max_backoff);
        }
        for (i, w) in s.workloads.iter_mut().enumerate() {
            if let Some(e) = w.message_expiry {
                let what = format!("workload[{i}] message_expiry");
                w.message_expiry = Some(scale.seconds(&what, e, MAX_INTERVAL_S)?);
            }
            w.every = Some(scale.of(w.interval()));
            w.rate = None;
            w.start = scale.of(w.start);
        }
        for f in &mut s.scripted {
            f.at = scale.of(f.at);
            f.kind = scale_kind(scale, &f.kind);
        }
        for t in &mut s.triggered {
            if let Some(field) = t.trigger.fields.keys().find(|k| is_time_field(k)) {
                return Err(format!(
                    "fault[{}] fires on a time value ({} {field}), which a scale would change",
                    t.source, t.trigger.event
                ));
            }
            t.delay = scale.of(t.delay);
            t.kind = scale_kind(scale, &t.kind);
        }
        Ok(s)
    }
}

impl Scenario {
    /// Whether every seed's clock allows `scale`: seed 1's drawn scenario scales
    /// ([`Scenario::scaled`]), and no client template draws a protocol time (keep-alive,
    /// session expiry, will delay) from a range unless `scale` is whole, which keeps every
    /// whole-second draw whole.
    pub fn scalable(&self, scale: TimeScale) -> Result<(), String> {
        if scale.factor().fract() != 0.0 {
            for t in self.templates() {
                let ranged = t.ranges.iter().find(|r| {
                    matches!(r.field, "keep_alive" | "session_expiry" | "will.delay")
                        && r.low != r.high
                });
                if let Some(r) = ranged {
                    return Err(format!(
                        "client template {:?} draws {} from {} to {}, which MQTT counts in \
                         whole seconds: only a whole factor keeps every draw whole",
                        t.id, r.field, r.low, r.high
                    ));
                }
            }
        }
        self.drawn(&self.plan(1)).scaled(scale).map(|_| ())
    }
}

/// Whether an event field holds a time (`keep_alive_s`, `at_us`, ...).
fn is_time_field(name: &str) -> bool {
    name.ends_with("_s") || name.ends_with("_ms") || name.ends_with("_us")
}

impl Plan {
    /// This plan with every time scaled by `scale`. The scenario the run uses must be scaled
    /// alike ([`Scenario::scaled`]), which also says whether the scale is allowed.
    pub fn scaled(&self, scale: TimeScale) -> Plan {
        let mut p = self.clone();
        p.duration = scale.of(p.duration);
        p.faults_until = scale.of(p.faults_until);
        p.settle_by = scale.of(p.settle_by);
        p.latency = scale.range(p.latency);
        for f in &mut p.faults {
            f.at = scale.of(f.at);
            f.kind = scale_kind(scale, &f.kind);
        }
        for t in &mut p.triggered {
            t.delay = scale.of(t.delay);
            t.kind = scale_kind(scale, &t.kind);
        }
        for draw in &mut p.clients {
            for (_, v) in &mut draw.values {
                if let Value::Duration(d) = v {
                    *d = scale.of(*d);
                }
            }
        }
        p
    }
}

fn scale_kind(scale: TimeScale, kind: &FaultKind) -> FaultKind {
    let mut k = kind.clone();
    match &mut k {
        FaultKind::Cut { .. } | FaultKind::Restart { .. } => {}
        FaultKind::Blackhole { duration, .. }
        | FaultKind::SplitWrites { duration, .. }
        | FaultKind::Partition { duration, .. }
        | FaultKind::Pause { duration, .. }
        | FaultKind::SyncError { duration }
        | FaultKind::DiskFull { duration } => *duration = scale.of(*duration),
        FaultKind::Delay {
            extra, duration, ..
        }
        | FaultKind::SlowSync {
            latency: extra,
            duration,
        } => {
            *extra = scale.of(*extra);
            *duration = scale.of(*duration);
        }
        FaultKind::Crash { restart_after, .. } | FaultKind::PowerOff { restart_after, .. } => {
            *restart_after = scale.opt(*restart_after)
        }
        FaultKind::CrashBroker { restart_after, .. } => *restart_after = scale.of(*restart_after),
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = r#"
name = "scaled"
protocol = "5.0"
duration = "20s"
faults_until = "12s"
settle = "6s"

[[client]]
id = "a"
keep_alive = "10s"
session_expiry = "never"
connect_at = "1s"
will = { topic = "w", delay = "4s" }
unsubscribe = [{ filter = "t/#", at = "9s" }]
subscribe = [{ filter = "t/#", qos = 1 }]

[[client]]
id = "b"
keep_alive = "2s"
session_expiry = "60s"

[[workload]]
client = "b"
topic = "t/1"
qos = 1
count = 10
rate = 4.0
start = "2s"
message_expiry = "30s"

[[fault]]
at = "3s"
partition = { between = ["a", "broker"], for = "2s" }

[[fault]]
at = "6s"
crash = "b"
restart_after = "1500ms"

[[fault]]
after = { event = "connected", client = "a" }
at = "500ms"
cut = "b"

[random]
cuts_per_minute = [6, 6]

[expect]
checkers = ["delivery"]
"#;

    fn scale(f: f64) -> TimeScale {
        TimeScale::new(f).unwrap()
    }

    #[test]
    fn every_time_of_the_run_is_scaled_and_protocol_times_stay_whole_seconds() {
        let s = Scenario::from_str(STORY, "scaled.toml").unwrap();
        let half = s.scaled(scale(0.5)).unwrap();
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(half.duration, secs(10));
        assert_eq!(half.faults_until(), secs(6));
        assert_eq!(half.settle_by(), secs(9));
        let a = &half.clients[0];
        assert_eq!(
            (a.keep_alive, a.connect_at, a.unsubscribe[0].at),
            (secs(5), ms(500), ms(4500))
        );
        assert_eq!(a.session_expiry, Some(NEVER_EXPIRES), "never stays never");
        assert_eq!(a.will.as_ref().unwrap().delay, secs(2));
        assert_eq!(half.clients[1].session_expiry, Some(secs(30)));
        assert_eq!(half.clients[1].reconnect.min_backoff, ms(50));
        let w = &half.workloads[0];
        assert_eq!(
            (w.start, w.interval(), w.message_expiry),
            (secs(1), ms(125), Some(secs(15)))
        );
        assert_eq!(w.due(9), half.workloads[0].start + ms(125) * 9);
        let kinds: Vec<_> = half
            .scripted_faults()
            .iter()
            .map(|f| (f.at, f.kind.lasts()))
            .collect();
        assert_eq!(kinds, [(ms(1500), Some(secs(1))), (secs(3), Some(ms(750)))]);
        assert_eq!(half.triggered_faults()[0].delay, ms(250));

        // The plan of a seed, scaled, is the same plan at half its times.
        let plan = s.plan(7);
        let scaled = plan.scaled(scale(0.5));
        assert_eq!(scaled.faults.len(), plan.faults.len());
        for (x, y) in plan.faults.iter().zip(&scaled.faults) {
            assert_eq!(y.at, x.at / 2);
            assert_eq!(y.kind.lasts(), x.kind.lasts().map(|l| l / 2));
            assert_eq!(y.kind.name(), x.kind.name());
        }
        assert_eq!((scaled.duration, scaled.faults_until), (secs(10), secs(6)));
        assert_eq!(s.scaled(TimeScale::ONE).unwrap(), s);
        assert_eq!(plan.scaled(TimeScale::ONE), plan);
    }

    #[test]
    fn a_scale_that_breaks_a_whole_second_is_refused_naming_the_value() {
        let s = Scenario::from_str(STORY, "scaled.toml").unwrap();
        let why = s.scaled(scale(0.25)).unwrap_err();
        assert_eq!(
            why,
            "client \"a\" keep_alive 10s would be 2.5s (MQTT counts it in whole seconds)"
        );
        let why = s.scaled(scale(0.1)).unwrap_err();
        assert_eq!(
            why,
            "client \"a\" will delay 4s would be 400ms (MQTT counts it in whole seconds)"
        );
        assert!(s.scaled(scale(3.0)).is_ok());
        let big = STORY.replace("keep_alive = \"10s\"", "keep_alive = \"60000s\"");
        let why = Scenario::from_str(&big, "big.toml")
            .unwrap()
            .scaled(scale(2.0))
            .unwrap_err();
        assert!(why.contains("above the MQTT maximum of 65535s"), "{why}");
        let trig = STORY.replace(
            "after = { event = \"connected\", client = \"a\" }",
            "after = { event = \"connecting\", client = \"a\", keep_alive_s = 10 }",
        );
        let why = Scenario::from_str(&trig, "trig.toml")
            .unwrap()
            .scaled(scale(2.0))
            .unwrap_err();
        assert!(why.contains("fault[2] fires on a time value"), "{why}");
    }

    #[test]
    fn a_template_drawing_a_protocol_time_from_a_range_takes_only_whole_factors() {
        let t = STORY
            .replace(
                "[[client]]\nid = \"b\"\nkeep_alive = \"2s\"",
                "[[client]]\nid = \"b-{n}\"\ncount = 3\nkeep_alive = [\"2s\", \"9s\"]",
            )
            .replace("client = \"b\"", "client = \"b-1\"")
            .replace("crash = \"b\"", "crash = \"b-1\"")
            .replace("cut = \"b\"", "cut = \"b-2\"");
        let s = Scenario::from_str(&t, "template.toml").unwrap();
        let why = s.scalable(scale(0.5)).unwrap_err();
        assert!(
            why.starts_with("client template \"b-{n}\" draws keep_alive from 2s to 9s"),
            "{why}"
        );
        assert_eq!(s.scalable(scale(2.0)), Ok(()));
        let plain = Scenario::from_str(STORY, "scaled.toml").unwrap();
        assert_eq!(plain.scalable(scale(0.5)), Ok(()));
        assert!(plain.scalable(scale(0.25)).is_err());
    }

    #[test]
    fn a_factor_is_a_number_between_the_bounds() {
        assert_eq!("0.5".parse::<TimeScale>(), Ok(scale(0.5)));
        assert_eq!(" 2 ".parse::<TimeScale>(), Ok(scale(2.0)));
        for bad in ["0", "-1", "1000", "NaN", "inf"] {
            let e = bad.parse::<TimeScale>().unwrap_err();
            assert!(e.contains("not between 0.01 and 100"), "{bad}: {e}");
        }
        assert!(
            "half"
                .parse::<TimeScale>()
                .unwrap_err()
                .contains("not a number")
        );
        assert_eq!(
            scale(0.5).of(Duration::from_micros(3)),
            Duration::from_micros(2)
        );
        assert_eq!(
            scale(3.0).of(Duration::from_millis(100)),
            Duration::from_millis(300)
        );
    }
}
