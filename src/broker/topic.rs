//! Topic checks the broker applies: the wire rules (from `codec::topic`, repeated here because
//! `handle_packet` may get packets that did not come through our decoder) and the configured
//! length and level limits.
//!
//! Not here: the subscription tree (`subtree.rs`), which matches a topic against every filter at
//! once.

use super::config::BrokerConfig;
use crate::codec::topic;

/// Why a topic name or filter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicError {
    /// Empty, contains a wildcard (names), misplaced wildcard (filters), or a NUL character.
    Invalid,
    /// Longer than `max_topic_len` or deeper than `max_topic_levels`.
    TooLong,
}

fn check_limits(s: &str, config: &BrokerConfig) -> Result<(), TopicError> {
    if s.len() > config.max_topic_len || s.split('/').count() > config.max_topic_levels {
        return Err(TopicError::TooLong);
    }
    Ok(())
}

/// A topic name in PUBLISH or a will: the wire rules (non-empty, no wildcards, no NUL:
/// [MQTT-4.7.3-1], [MQTT-3.3.2-2], [MQTT-4.7.3-2]) and the configured limits.
pub(crate) fn check_name(s: &str, config: &BrokerConfig) -> Result<(), TopicError> {
    topic::validate_topic_name(s).map_err(|_| TopicError::Invalid)?;
    check_limits(s, config)
}

/// A topic filter in SUBSCRIBE or UNSUBSCRIBE: the wire rules (`+` alone in its level, `#` alone
/// and last: [MQTT-4.7.1-2], [MQTT-4.7.1-3]) and the configured limits.
pub(crate) fn check_filter(s: &str, config: &BrokerConfig) -> Result<(), TopicError> {
    topic::validate_topic_filter(s).map_err(|_| TopicError::Invalid)?;
    check_limits(s, config)
}

/// Whether `filter` matches `topic`; a topic starting with `$` is not matched by a filter
/// starting with a wildcard ([MQTT-4.7.2-1]).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    topic::matches(filter, topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BrokerConfig {
        BrokerConfig::default()
    }

    /// [MQTT-4.7.1-2] `#` must be last and alone; [MQTT-4.7.1-3] `+` alone in its level.
    #[test]
    fn mqtt_4_7_1_2_and_3_wildcard_placement() {
        for ok in ["#", "a/#", "+", "+/+", "a/+/b", "/+", "sport/tennis/#"] {
            assert_eq!(check_filter(ok, &cfg()), Ok(()), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+", "+a/b", "a/b#", "#/a"] {
            assert_eq!(check_filter(bad, &cfg()), Err(TopicError::Invalid), "{bad}");
        }
    }

    /// [MQTT-3.3.2-2] A topic name must not contain wildcards.
    #[test]
    fn mqtt_3_3_2_2_topic_name_without_wildcards() {
        assert_eq!(check_name("a/b", &cfg()), Ok(()));
        assert_eq!(check_name("a/+", &cfg()), Err(TopicError::Invalid));
        assert_eq!(check_name("#", &cfg()), Err(TopicError::Invalid));
        assert_eq!(check_name("", &cfg()), Err(TopicError::Invalid));
    }

    #[test]
    fn limits_on_length_and_levels() {
        let c = BrokerConfig {
            max_topic_len: 5,
            max_topic_levels: 2,
            ..cfg()
        };
        assert_eq!(check_name("a/b", &c), Ok(()));
        assert_eq!(check_name("abcdef", &c), Err(TopicError::TooLong));
        assert_eq!(check_name("a/b/c", &c), Err(TopicError::TooLong));
        assert_eq!(check_filter("a/+/#", &c), Err(TopicError::TooLong));
    }

    /// [MQTT-4.7.2-1] Leading wildcards do not match `$` topics.
    #[test]
    fn mqtt_4_7_2_1_dollar_topics_and_wildcards() {
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/tennis/#", "sport/tennis/player1/score"));
        assert!(matches("+/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(!matches("sport/+", "sport/a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
    }
}
