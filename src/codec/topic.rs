//! Topic names, topic filters and matching (MQTT 5.0 section 4.7, shared subscriptions 4.8.2).
//!
//! Pure string functions: no subscription tree here (that lives in the broker).

/// Why a topic name or topic filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("empty")]
    Empty,
    #[error("longer than 65535 bytes")]
    TooLong,
    #[error("contains U+0000")]
    NullCharacter,
    #[error("a topic name contains a wildcard")]
    WildcardInName,
    #[error("'#' is not alone in the last level")]
    MultiLevelWildcardMisplaced,
    #[error("'+' does not occupy a whole level")]
    SingleLevelWildcardMisplaced,
    #[error("shared subscription without a valid share name")]
    InvalidShareName,
    #[error("shared subscription without a topic filter")]
    EmptySharedFilter,
}

impl TopicError {
    /// The normative statement broken.
    pub fn rule(&self) -> &'static str {
        match self {
            TopicError::Empty => "MQTT-4.7.3-1",
            TopicError::TooLong => "MQTT-4.7.3-3",
            TopicError::NullCharacter => "MQTT-4.7.3-2",
            TopicError::WildcardInName => "MQTT-3.3.2-2",
            TopicError::MultiLevelWildcardMisplaced => "MQTT-4.7.1-1",
            TopicError::SingleLevelWildcardMisplaced => "MQTT-4.7.1-2",
            TopicError::InvalidShareName => "MQTT-4.8.2-2",
            TopicError::EmptySharedFilter => "§4.8.2",
        }
    }
}

/// A topic name as PUBLISH carries it: not empty, at most 65535 bytes, no U+0000, no wildcard.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > u16::MAX as usize {
        return Err(TopicError::TooLong);
    }
    if has_wildcard_or_nul(name.as_bytes()) {
        if name.as_bytes().contains(&0) {
            return Err(TopicError::NullCharacter);
        }
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// A topic filter as SUBSCRIBE and UNSUBSCRIBE carry it: not empty, '#' alone in the last level,
/// '+' alone in its level. `$share/{group}/{filter}` needs a non-empty group without '/', '+'
/// or '#', and a valid non-empty filter.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.len() > u16::MAX as usize {
        return Err(TopicError::TooLong);
    }
    if let Some(rest) = filter.strip_prefix("$share/") {
        let (group, inner) = rest.split_once('/').ok_or(TopicError::EmptySharedFilter)?;
        if group.is_empty() || group.contains(['+', '#']) {
            return Err(TopicError::InvalidShareName);
        }
        if inner.is_empty() {
            return Err(TopicError::EmptySharedFilter);
        }
        return validate_plain_filter(inner);
    }
    validate_plain_filter(filter)
}

/// One pass over the bytes: a wildcard must start its level, '#' must end the filter and '+'
/// its level. The first offending byte decides the error.
fn validate_plain_filter(filter: &str) -> Result<(), TopicError> {
    let b = filter.as_bytes();
    if !has_wildcard_or_nul(b) {
        return Ok(());
    }
    for (i, &c) in b.iter().enumerate() {
        if c != 0 && c != b'#' && c != b'+' {
            continue;
        }
        let level_start = i == 0 || b[i - 1] == b'/';
        match c {
            0 => return Err(TopicError::NullCharacter),
            b'#' if !level_start || i + 1 != b.len() => {
                return Err(TopicError::MultiLevelWildcardMisplaced);
            }
            b'+' if !level_start || b.get(i + 1).is_some_and(|&n| n != b'/') => {
                return Err(TopicError::SingleLevelWildcardMisplaced);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Does `b` hold '+', '#' or 0? One branch-free pass that the compiler vectorizes; callers
/// find out which rule is broken only when this says one is.
#[inline]
pub(crate) fn has_wildcard_or_nul(b: &[u8]) -> bool {
    let mut acc = 0u8;
    for &c in b {
        acc |= u8::from((c == b'+') | (c == b'#') | (c == 0));
    }
    acc != 0
}

/// Does `b` hold a 0 byte? Vectorized like [`has_wildcard_or_nul`]; faster than `memchr` on
/// the short strings MQTT carries.
#[inline]
pub(crate) fn has_nul(b: &[u8]) -> bool {
    let mut acc = 0u8;
    for &c in b {
        acc |= u8::from(c == 0);
    }
    acc != 0
}

/// Splits `$share/{group}/{filter}` into `(group, filter)`; `None` for a plain filter.
pub fn shared_subscription(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

/// Does the (plain, valid) `filter` match the (valid) topic name `topic`? A filter starting
/// with a wildcard does not match a topic starting with '$' [MQTT-4.7.2-1].
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
    use super::*;

    /// [MQTT-4.7.1-1] '#' must be the last character and alone in its level.
    #[test]
    fn mqtt_4_7_1_1_multi_level_wildcard_last_and_alone() {
        for ok in ["#", "a/#", "a/b/#", "/#", "+/#"] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["a/#/b", "a#", "a/b#", "#/a", "##"] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::MultiLevelWildcardMisplaced),
                "{bad}"
            );
        }
    }

    /// [MQTT-4.7.1-2] '+' must occupy an entire level.
    #[test]
    fn mqtt_4_7_1_2_single_level_wildcard_whole_level() {
        for ok in ["+", "+/+", "a/+/b", "/+", "+/"] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["a+", "a/b+/c", "++", "+a"] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::SingleLevelWildcardMisplaced),
                "{bad}"
            );
        }
    }

    /// [MQTT-4.7.3-1] topic names and filters are at least one character long.
    #[test]
    fn mqtt_4_7_3_1_not_empty() {
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("/"), Ok(()));
    }

    /// [MQTT-4.7.3-2] no U+0000; [MQTT-4.7.3-3] at most 65535 bytes.
    #[test]
    fn mqtt_4_7_3_2_and_3_null_and_length() {
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(
            validate_topic_filter("a/\0"),
            Err(TopicError::NullCharacter)
        );
        let long = "a".repeat(65536);
        assert_eq!(validate_topic_name(&long), Err(TopicError::TooLong));
        assert_eq!(validate_topic_filter(&long), Err(TopicError::TooLong));
        assert_eq!(validate_topic_name(&long[1..]), Ok(()));
    }

    /// [MQTT-3.3.2-2] a topic name contains no wildcard.
    #[test]
    fn mqtt_3_3_2_2_no_wildcards_in_topic_names() {
        assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a/b c/$d"), Ok(()));
    }

    /// [MQTT-4.8.2-1] [MQTT-4.8.2-2] shared subscriptions need a non-empty share name without
    /// wildcards, followed by a filter.
    #[test]
    fn mqtt_4_8_2_2_shared_subscription_filters() {
        assert_eq!(validate_topic_filter("$share/g/a/+"), Ok(()));
        assert_eq!(validate_topic_filter("$share/g/#"), Ok(()));
        assert_eq!(
            validate_topic_filter("$share//a"),
            Err(TopicError::InvalidShareName)
        );
        assert_eq!(
            validate_topic_filter("$share/g+/a"),
            Err(TopicError::InvalidShareName)
        );
        assert_eq!(
            validate_topic_filter("$share/g"),
            Err(TopicError::EmptySharedFilter)
        );
        assert_eq!(
            validate_topic_filter("$share/g/"),
            Err(TopicError::EmptySharedFilter)
        );
        assert_eq!(
            validate_topic_filter("$share/g/a#"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(shared_subscription("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(shared_subscription("a/b"), None);
    }

    /// [MQTT-4.7.1-1] '#' matches the parent level and any number of child levels.
    #[test]
    fn mqtt_4_7_1_1_multi_level_matching() {
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("#", "a/b/c"));
        assert!(!matches("sport/tennis/#", "sport/football"));
    }

    /// [MQTT-4.7.1-2] '+' matches exactly one level, including an empty one.
    #[test]
    fn mqtt_4_7_1_2_single_level_matching() {
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
    }

    /// [MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'.
    #[test]
    fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcards() {
        assert!(!matches("#", "$SYS/monitor/Clients"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(matches("a/#", "a/$b"));
    }
}
