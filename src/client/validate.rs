//! Local checks of topic names and filters before a request is queued (section 4.7), on the
//! codec's rules.
//!
//! Only what a client must not send; no subscription matching, no alias handling.

use crate::codec::topic::{self, TopicError};

fn describe(e: TopicError) -> &'static str {
    match e {
        TopicError::Empty => "empty",
        TopicError::TooLong => "longer than 65535 bytes",
        TopicError::NullCharacter => "contains U+0000",
        TopicError::WildcardInName => "wildcards are not allowed in a topic name",
        TopicError::MultiLevelWildcardMisplaced => "`#` must be a whole level and the last one",
        TopicError::SingleLevelWildcardMisplaced => "`+` must be a whole level",
        TopicError::InvalidShareName => {
            "a shared subscription needs a share name without wildcards"
        }
        TopicError::EmptySharedFilter => "a shared subscription needs a topic filter",
    }
}

/// A topic name for PUBLISH: non-empty, no wildcards, no NUL, at most 65535 bytes
/// ([MQTT-4.7.3-1], [MQTT-3.3.2-2], [MQTT-1.5.3-2]).
pub fn topic_name(name: &str) -> Result<(), &'static str> {
    topic::validate_topic_name(name).map_err(describe)
}

/// A topic filter for SUBSCRIBE / UNSUBSCRIBE: `#` only as a whole last level, `+` only as a
/// whole level ([MQTT-4.7.1-1], [MQTT-4.7.1-2]).
pub fn topic_filter(filter: &str) -> Result<(), &'static str> {
    topic::validate_topic_filter(filter).map_err(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MQTT-4.7.3-1] topic names must be at least one character; no wildcards in names.
    #[test]
    fn mqtt_4_7_3_1_topic_name_rules() {
        assert!(topic_name("a/b").is_ok());
        assert!(topic_name("/").is_ok());
        assert!(topic_name("").is_err());
        assert!(topic_name("a/+").is_err());
        assert!(topic_name("a/#").is_err());
        assert!(topic_name("a\0b").is_err());
    }

    /// [MQTT-4.7.1-1] [MQTT-4.7.1-2] wildcard placement in filters.
    #[test]
    fn mqtt_4_7_1_2_filter_wildcards() {
        for ok in ["#", "+", "a/+/b", "a/#", "+/+", "/+"] {
            assert!(topic_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+", "a/b+/c", "#/a"] {
            assert!(topic_filter(bad).is_err(), "{bad}");
        }
    }
}
