//! The names a run's clients use on the wire, and the names the trace records.
//!
//! Under the simulator every run has a broker of its own, so the two are the same
//! ([`Names::default`]). Runs sharing one real broker (`mqtt-lab run --target ... --jobs N`)
//! each get a prefix: client identifiers `TAG-id`, topics `mqtt-lab/TAG/topic` (a shared
//! subscription keeps its `$share/group/` and prefixes the filter). The prefix is added where a
//! name leaves the client application and taken off where the trace records it, so the trace,
//! and every checker judging it, sees the scenario's own names.
//!
//! A prefix changes what some stories are about: a topic beginning with `$` (wildcards at the
//! first level do not match it), an empty or invalid topic (a prefix would make it valid),
//! exact packet sizes. [`Names::fits`] says whether a scenario's names can take one.

/// How names are written on the wire. `Default`: as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Put before every non-empty client identifier.
    client: String,
    /// Put before every topic name and (non-shared part of every) filter.
    topic: String,
}

/// The first levels of every prefixed topic.
pub const TOPIC_ROOT: &str = "mqtt-lab";

impl Names {
    /// The names of a run tagged `tag` (letters, digits and `-` only).
    pub fn tagged(tag: &str) -> Names {
        debug_assert!(tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        Names {
            client: format!("{tag}-"),
            topic: format!("{TOPIC_ROOT}/{tag}/"),
        }
    }

    /// Whether names are written as they are.
    pub fn is_plain(&self) -> bool {
        self.client.is_empty() && self.topic.is_empty()
    }

    /// The filter matching every topic of this run (`#` when plain).
    pub fn everything(&self) -> String {
        self.filter("#")
    }

    /// A client identifier on the wire (an empty one stays empty: the broker assigns it).
    pub fn client_id(&self, id: &str) -> String {
        if id.is_empty() {
            String::new()
        } else {
            format!("{}{id}", self.client)
        }
    }

    /// A topic name on the wire.
    pub fn topic(&self, topic: &str) -> String {
        format!("{}{topic}", self.topic)
    }

    /// A topic filter on the wire.
    pub fn filter(&self, filter: &str) -> String {
        match shared(filter) {
            Some((group, rest)) => format!("$share/{group}/{}", self.topic(rest)),
            None => self.topic(filter),
        }
    }

    /// A topic name as the trace records it.
    pub fn trace_topic<'t>(&self, topic: &'t str) -> &'t str {
        topic.strip_prefix(self.topic.as_str()).unwrap_or(topic)
    }

    /// A topic filter as the trace records it.
    pub fn trace_filter(&self, filter: &str) -> String {
        match shared(filter) {
            Some((group, rest)) => format!("$share/{group}/{}", self.trace_topic(rest)),
            None => self.trace_topic(filter).to_string(),
        }
    }

    /// Why the topic names and filters `names` cannot take a prefix without changing what they
    /// mean, or `None` if they can.
    pub fn fits<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
        for name in names {
            let bare = shared(name).map_or(name, |(_, rest)| rest);
            if bare.is_empty() {
                return Some("an empty topic".into());
            }
            if bare.starts_with('$') {
                return Some(format!("topic {name:?} begins with `$`"));
            }
            if bare.contains('\0') {
                return Some(format!("topic {name:?} holds a null character"));
            }
        }
        None
    }
}

/// `$share/group/rest` as `(group, rest)`.
fn shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_unchanged() {
        let n = Names::default();
        assert!(n.is_plain());
        assert_eq!(n.client_id("c1"), "c1");
        assert_eq!(n.topic("a/b"), "a/b");
        assert_eq!(n.filter("$share/g/a/#"), "$share/g/a/#");
        assert_eq!(n.everything(), "#");
        assert_eq!(n.trace_topic("a/b"), "a/b");
    }

    #[test]
    fn tagged_names_round_trip_and_keep_wildcards_and_groups() {
        let n = Names::tagged("r7");
        assert!(!n.is_plain());
        assert_eq!(n.client_id("c1"), "r7-c1");
        assert_eq!(n.client_id(""), "");
        assert_eq!(n.topic("a/b"), "mqtt-lab/r7/a/b");
        assert_eq!(n.topic("/a"), "mqtt-lab/r7//a");
        assert_eq!(n.filter("#"), "mqtt-lab/r7/#");
        assert_eq!(n.filter("+/x"), "mqtt-lab/r7/+/x");
        assert_eq!(n.filter("$share/g/s/+"), "$share/g/mqtt-lab/r7/s/+");
        assert_eq!(n.everything(), "mqtt-lab/r7/#");
        for t in ["a/b", "/a", "#", "+/x"] {
            assert_eq!(n.trace_topic(&n.topic(t)), t);
        }
        assert_eq!(n.trace_filter(&n.filter("$share/g/s/+")), "$share/g/s/+");
        // Another run's names are not its own: they stay as they are.
        assert_eq!(n.trace_topic("mqtt-lab/r8/a"), "mqtt-lab/r8/a");
    }

    #[test]
    fn names_that_a_prefix_would_change_are_named() {
        assert_eq!(Names::fits(["a/b", "+/#", "$share/g/x"]), None);
        assert!(
            Names::fits(["a", "$SYS/broker/uptime"])
                .unwrap()
                .contains("$SYS")
        );
        assert!(Names::fits(["$share/g/$x"]).is_some());
        assert!(Names::fits([""]).is_some());
    }
}
