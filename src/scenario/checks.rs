//! [`Checks`]: what every section's checks share — the problems found so far (all of them, not
//! only the first, as `(field path, reason)`), the client ids a field may name, the run's
//! length and end of the faults phase, and the small checks several sections make (a known
//! client or node, a time inside the run, a positive duration, whole seconds, ordered ranges,
//! probabilities). Not here: the checks of a section (beside its type) or line numbers.

use std::time::Duration;

use super::values::{BROKER, Node};
use crate::config::duration::format_duration;

/// The problems found so far and what the checks of every section may ask.
pub(crate) struct Checks<'a> {
    /// The ids of the scenario's clients, in file order.
    pub ids: Vec<&'a str>,
    /// The length of the run.
    pub duration: Duration,
    /// The end of the faults phase.
    pub faults_until: Duration,
    pub problems: Vec<(String, String)>,
}

/// A duration as a scenario writes it.
pub(crate) fn d(x: Duration) -> String {
    format_duration(x)
}

impl Checks<'_> {
    pub fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.problems.push((field.into(), reason.into()));
    }

    /// Whether `id` names a client; records a problem listing the clients if not.
    pub fn client_ref(&mut self, field: &str, id: &str) -> bool {
        if self.ids.contains(&id) {
            return true;
        }
        let known = self.ids.join(", ");
        self.fail(field, format!("unknown client {id:?} (clients: {known})"));
        false
    }

    /// The node `name` names (`"broker"` or a client); records a problem if none.
    pub fn node_ref(&mut self, field: &str, name: &str) -> Option<Node> {
        if name == BROKER {
            return Some(Node::Broker);
        }
        self.client_ref(field, name)
            .then(|| Node::Client(name.to_string()))
    }

    pub fn within_run(&mut self, field: &str, at: Duration) {
        if at >= self.duration {
            let reason = format!(
                "{} is not before the end of the run (duration {})",
                d(at),
                d(self.duration)
            );
            self.fail(field, reason);
        }
    }

    pub fn positive(&mut self, field: &str, x: Duration) -> bool {
        if x.is_zero() {
            self.fail(field, "must be longer than 0s");
            return false;
        }
        true
    }

    pub fn whole_seconds(&mut self, field: &str, x: Duration, max_secs: u64) {
        if x.subsec_nanos() != 0 {
            self.fail(
                field,
                format!(
                    "{} is not a whole number of seconds (MQTT counts this in seconds)",
                    d(x)
                ),
            );
        } else if x.as_secs() > max_secs {
            self.fail(
                field,
                format!("{} is more than the MQTT maximum of {max_secs}s", d(x)),
            );
        }
    }

    pub fn range<T: PartialOrd + std::fmt::Debug>(
        &mut self,
        field: &str,
        r: &[T; 2],
        min: T,
        max: T,
    ) {
        if r[0] > r[1] {
            self.fail(
                field,
                format!("range is reversed: {:?} is above {:?}", r[0], r[1]),
            );
        } else if r[0] < min || r[1] > max {
            self.fail(field, format!("range {r:?} is outside {min:?} to {max:?}"));
        }
    }

    pub fn duration_range(&mut self, field: &str, r: &[Duration; 2]) {
        if r[0] > r[1] {
            self.fail(
                field,
                format!("range is reversed: {} is above {}", d(r[0]), d(r[1])),
            );
        } else if r[0].is_zero() {
            self.fail(field, "the low end must be longer than 0s");
        }
    }

    pub fn probability(&mut self, field: &str, p: f64, max: f64) {
        if !(0.0..=max).contains(&p) {
            self.fail(
                field,
                format!("{p} is not a probability between 0 and {max}"),
            );
        }
    }
}
