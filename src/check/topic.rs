//! Topic filter matching for the checkers' own model (sections 4.7.1 and 4.7.2): the rules of
//! `codec::topic`, kept apart from the broker's subscription tree so that a routing bug there is
//! not copied here. Shared subscriptions (`$share/{group}/{filter}`, section 4.8.2) match through
//! their inner filter.

pub use crate::codec::topic::{matches, shared_subscription as shared, subscription_matches};

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

    /// "#" also matches the parent level, by the rule of 3.1.1 [MQTT-4.7.1-2] and of
    /// 5.0 [MQTT-4.7.1-1].
    /// [MQTT-4.7.2-1] `$` topics.
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
