//! Local checks of topic names and filters before a request is queued (section 4.7).
//!
//! Only what a client must not send; no subscription matching, no alias handling.

/// A topic name for PUBLISH: non-empty, no wildcards, no NUL, at most 65535 bytes
/// ([MQTT-4.7.3-1], [MQTT-3.3.2-2], [MQTT-1.5.3-2]).
pub fn topic_name(topic: &str) -> Result<(), &'static str> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err("wildcards are not allowed in a topic name");
    }
    Ok(())
}

/// A topic filter for SUBSCRIBE / UNSUBSCRIBE: `#` only as a whole last level, `+` only as a
/// whole level ([MQTT-4.7.1-1], [MQTT-4.7.1-2]).
pub fn topic_filter(filter: &str) -> Result<(), &'static str> {
    check_common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` must be a whole level and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` must be a whole level");
        }
    }
    Ok(())
}

fn check_common(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() > usize::from(u16::MAX) {
        return Err("longer than 65535 bytes");
    }
    if s.contains('\0') {
        return Err("contains U+0000");
    }
    Ok(())
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
