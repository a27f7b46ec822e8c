//! Topic filter matching for the checkers' own model (sections 4.7.1 and 4.7.2), kept apart
//! from the broker's subscription tree so that a routing bug there is not copied here. Shared
//! subscriptions (`$share/{group}/{filter}`, section 4.8.2) match through their inner filter.

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

/// Splits a shared subscription `$share/{group}/{filter}` into `(group, filter)`; `None` for a
/// plain filter (section 4.8.2).
pub fn shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

/// Whether subscription `filter`, plain or shared, matches `topic`: a shared subscription
/// matches what its inner filter matches.
pub fn subscription_matches(filter: &str, topic: &str) -> bool {
    match shared(filter) {
        Some((_, inner)) => matches(inner, topic),
        None => matches(filter, topic),
    }
}

#[cfg(test)]
mod tests {
    use super::{matches, shared, subscription_matches};

    /// [MQTT-4.8.2-1] a shared subscription is `$share/{ShareName}/{filter}`.
    #[test]
    fn mqtt_4_8_2_1_shared_filters_match_through_their_inner_filter() {
        assert_eq!(shared("$share/g/s/#"), Some(("g", "s/#")));
        assert_eq!(shared("s/#"), None);
        assert!(subscription_matches("$share/g/s/#", "s/1"));
        assert!(!subscription_matches("$share/g/s/#", "t/1"));
        assert!(!matches("$share/g/s/#", "s/1"));
        assert!(subscription_matches("s/+", "s/1"));
    }

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
