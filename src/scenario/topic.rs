//! Checks of topic names and filters written in scenario files, and filter matching used to
//! validate expectations (a will must be able to reach the subscriber it is expected at). The
//! rules and their wording are the codec's (section 4.7, `codec::topic`).

use crate::codec::topic;

/// Checks a topic name used to publish: not empty, no wildcard, no NUL, at most 65,535 bytes.
/// [MQTT-3.3.2-2], [MQTT-4.7.3-1], [MQTT-4.7.3-2], [MQTT-4.7.3-3].
pub fn check_topic_name(name: &str) -> Result<(), String> {
    topic::validate_topic_name(name).map_err(|e| e.explain(name))
}

/// Checks a subscription filter: not empty, `#` alone as the last level, `+` alone in its level.
/// [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.1-3].
pub fn check_topic_filter(filter: &str) -> Result<(), String> {
    topic::validate_topic_filter(filter).map_err(|e| e.explain(filter))
}

/// Whether `filter` matches `topic` (both assumed valid). Topics starting with `$` are not
/// matched by a filter starting with a wildcard [MQTT-4.7.2-1].
pub fn filter_matches(filter: &str, name: &str) -> bool {
    topic::matches(filter, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MQTT-4.7.1-2] (3.1.1) '#' must be the last character and alone in its level.
    #[test]
    fn mqtt_4_7_1_2_multi_level_wildcard_must_be_last_and_alone() {
        // 5.0 states the same rule as [MQTT-4.7.1-1].
        assert!(check_topic_filter("a/#").is_ok());
        assert!(check_topic_filter("#").is_ok());
        assert!(check_topic_filter("a/#/b").is_err());
        assert!(check_topic_filter("a/b#").is_err());
    }

    /// [MQTT-4.7.1-3] '+' must occupy an entire level.
    #[test]
    fn mqtt_4_7_1_3_single_level_wildcard_fills_its_level() {
        assert!(check_topic_filter("a/+/c").is_ok());
        assert!(check_topic_filter("+").is_ok());
        assert!(check_topic_filter("a/b+").is_err());
    }

    /// [MQTT-3.3.2-2] The topic name in a PUBLISH must not contain wildcards.
    #[test]
    fn mqtt_3_3_2_2_publish_topic_has_no_wildcards() {
        assert!(check_topic_name("a/b").is_ok());
        assert!(check_topic_name("a/+").is_err());
        assert!(check_topic_name("a/#").is_err());
        assert!(check_topic_name("").is_err());
    }

    /// [MQTT-4.7.2-1] Wildcard filters do not match topics beginning with '$'.
    #[test]
    fn mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics() {
        assert!(filter_matches("sensors/+/temp", "sensors/1/temp"));
        assert!(filter_matches("sensors/#", "sensors"));
        assert!(filter_matches("sensors/#", "sensors/1/temp"));
        assert!(!filter_matches("sensors/+", "sensors/1/temp"));
        assert!(!filter_matches("#", "$SYS/x"));
        assert!(filter_matches("$SYS/#", "$SYS/x"));
        assert!(!filter_matches("a/b", "a/b/c"));
    }
}
