//! Topic filter matching for the checkers' own model (sections 4.7.1 and 4.7.2), kept apart
//! from the broker's subscription tree so that a routing bug there is not copied here.

/// Whether `filter` matches `topic`. A leading wildcard does not match a topic starting with
/// `$` [MQTT-4.7.2-1].
pub fn matches(filter: &str, topic: &str) -> bool {
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
    use super::matches;

    /// [MQTT-4.7.1-2] "#" also matches the parent level; [MQTT-4.7.2-1] `$` topics.
    #[test]
    fn mqtt_4_7_wildcards() {
        assert!(matches("sport/tennis/#", "sport/tennis"));
        assert!(matches("sport/tennis/#", "sport/tennis/p1/ranking"));
        assert!(matches("#", "a/b"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("sport/+", "sport/"));
        assert!(!matches("sport/+", "sport"));
        assert!(!matches("sport/+", "sport/a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
    }
}
