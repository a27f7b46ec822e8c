//! Simple checks of topic names and filters written in scenario files, and filter matching used
//! to validate expectations (a will must be able to reach the subscriber it is expected at).
//!
//! These are the rules of MQTT section 4.7 that a scenario author can get wrong; they are not
//! the broker's own validation, which lives in the broker core.

/// Checks a topic name used to publish: not empty, no wildcard, no NUL, at most 65,535 bytes.
/// [MQTT-3.3.2-2], [MQTT-4.7.3-1], [MQTT-4.7.3-2], [MQTT-4.7.3-3].
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("a topic name must not be empty".into());
    }
    if topic.contains(['+', '#']) {
        return Err(format!(
            "topic name {topic:?} contains a wildcard: '+' and '#' are only allowed in subscription filters"
        ));
    }
    common_checks(topic, "topic name")
}

/// Checks a subscription filter: not empty, `#` alone as the last level, `+` alone in its level.
/// [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.1-3].
pub fn check_topic_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("a topic filter must not be empty".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!(
                "filter {filter:?}: '#' must be a whole level and the last one (like \"a/#\")"
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!(
                "filter {filter:?}: '+' must fill a whole level (like \"a/+/c\")"
            ));
        }
    }
    common_checks(filter, "topic filter")
}

fn common_checks(text: &str, what: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err(format!("{what} {text:?} contains a NUL character"));
    }
    if text.len() > 65_535 {
        return Err(format!(
            "{what} is {} bytes long, more than 65535",
            text.len()
        ));
    }
    Ok(())
}

/// Whether `filter` matches `topic` (both assumed valid). Topics starting with `$` are not
/// matched by a filter starting with a wildcard [MQTT-4.7.2-1].
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MQTT-4.7.1-2] '#' must be the last character and alone in its level.
    #[test]
    fn mqtt_4_7_1_2_multi_level_wildcard_must_be_last_and_alone() {
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
