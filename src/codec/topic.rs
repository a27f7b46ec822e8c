//! Topic rules, in one place (MQTT 5.0 section 4.7, shared subscriptions 4.8.2): what a valid
//! topic name and topic filter are, where wildcards may stand, how a filter matches a topic
//! (`$`-topics included), the length and level limits a deployment adds, and the wording of every
//! refusal. The codec, the broker and client cores, the scenario validation and the checkers all
//! judge topics here.
//!
//! Pure string functions: no subscription tree here (that lives in the broker).

/// Why a topic name or topic filter is invalid. The `Display` text is the one wording of each
/// rule; [`TopicError::explain`] adds the offending text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic must not be empty")]
    Empty,
    #[error("longer than 65535 bytes")]
    TooLong,
    #[error("contains a NUL character")]
    NullCharacter,
    #[error("contains a wildcard: '+' and '#' are only allowed in subscription filters")]
    WildcardInName,
    #[error("'#' must be a whole level and the last one (like \"a/#\")")]
    MultiLevelWildcardMisplaced,
    #[error("'+' must fill a whole level (like \"a/+/c\")")]
    SingleLevelWildcardMisplaced,
    #[error("a shared subscription is `$share/<group>/<filter>`, the group without '+' or '#'")]
    InvalidShareName,
    #[error("a shared subscription is `$share/<group>/<filter>`, with a filter")]
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

    /// The refusal of `text` in words: the text (its length only when too long), then the rule.
    pub fn explain(&self, text: &str) -> String {
        match self {
            TopicError::Empty => self.to_string(),
            TopicError::TooLong => format!("{} bytes long, {self}", text.len()),
            _ => format!("{text:?}: {self}"),
        }
    }
}

/// Bounds a deployment puts on topic names and filters beyond the protocol's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// Bytes.
    pub max_len: usize,
    /// Levels, counted as '/'-separated parts ("a/b" has 2, "/" has 2).
    pub max_levels: usize,
}

/// Why a topic is refused under [`TopicLimits`]: against the protocol, or beyond the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicRefusal {
    #[error("{0}")]
    Invalid(TopicError),
    #[error("longer or deeper than this broker allows")]
    BeyondLimits,
}

impl TopicLimits {
    /// Whether `s` stays within the length and level limits.
    pub fn admits(&self, s: &str) -> bool {
        s.len() <= self.max_len && levels(s) <= self.max_levels
    }

    /// A valid topic name ([`validate_topic_name`]) within the limits.
    pub fn check_name(&self, s: &str) -> Result<(), TopicRefusal> {
        validate_topic_name(s).map_err(TopicRefusal::Invalid)?;
        self.within(s)
    }

    /// A valid topic filter ([`validate_topic_filter`]), shared or not, within the limits; a
    /// shared subscription counts its `$share/{group}/` levels too.
    pub fn check_filter(&self, s: &str) -> Result<(), TopicRefusal> {
        validate_topic_filter(s).map_err(TopicRefusal::Invalid)?;
        self.within(s)
    }

    fn within(&self, s: &str) -> Result<(), TopicRefusal> {
        if self.admits(s) {
            Ok(())
        } else {
            Err(TopicRefusal::BeyondLimits)
        }
    }
}

/// The number of levels of a topic name or filter.
pub fn levels(s: &str) -> usize {
    s.split('/').count()
}

/// A topic name as PUBLISH carries it: not empty, at most 65535 bytes, no U+0000, no wildcard.
#[inline]
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
#[inline]
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_topic_filter(filter).map(|_| ())
}

/// [`validate_topic_filter`], telling whether the valid filter is a shared subscription (the
/// one reading of `$share/` both take).
#[inline(always)]
pub(crate) fn check_topic_filter(filter: &str) -> Result<bool, TopicError> {
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
        return validate_plain_filter(inner).map(|()| true);
    }
    validate_plain_filter(filter).map(|()| false)
}

/// A wildcard must start its level, '#' must end the filter and '+' its level. A filter without
/// '+', '#' or 0 costs one vectorized pass (`has_wildcard_or_nul`); otherwise the filter is read
/// 8 bytes at a time, and only its '+', '#' and 0 bytes are judged, in order, so that the first
/// offending one names the error.
#[inline(always)]
fn validate_plain_filter(filter: &str) -> Result<(), TopicError> {
    let b = filter.as_bytes();
    if !has_wildcard_or_nul(b) {
        return Ok(());
    }
    let n = b.len();
    if n < 8 {
        return (0..n).try_for_each(|i| check_filter_byte(b, i));
    }
    let (words, _) = b.as_chunks::<8>();
    for (k, word) in words.iter().enumerate() {
        check_marked(b, 8 * k, wildcard_or_nul_bytes(u64::from_le_bytes(*word)))?;
    }
    let rest = n % 8;
    if rest != 0 {
        // the last 8 bytes, of which the first 8 - rest were judged above
        let last = u64::from_le_bytes(b[n - 8..].try_into().expect("8 bytes"));
        check_marked(b, n - rest, wildcard_or_nul_bytes(last) >> (8 * (8 - rest)))?;
    }
    Ok(())
}

/// Judges the bytes of `b` from `start` on that `marks` flags (0x80 in the byte of each).
#[inline(always)]
fn check_marked(b: &[u8], start: usize, mut marks: u64) -> Result<(), TopicError> {
    while marks != 0 {
        check_filter_byte(b, start + marks.trailing_zeros() as usize / 8)?;
        marks &= marks - 1;
    }
    Ok(())
}

/// The rules for the byte at `i` of a plain filter: no 0, '#' alone in the last level, '+'
/// alone in its level.
#[inline(always)]
fn check_filter_byte(b: &[u8], i: usize) -> Result<(), TopicError> {
    let level_start = i == 0 || b[i - 1] == b'/';
    match b[i] {
        0 => Err(TopicError::NullCharacter),
        b'#' if !level_start || i + 1 != b.len() => Err(TopicError::MultiLevelWildcardMisplaced),
        b'+' if !level_start || b.get(i + 1).is_some_and(|&n| n != b'/') => {
            Err(TopicError::SingleLevelWildcardMisplaced)
        }
        _ => Ok(()),
    }
}

/// 0x80 in each byte of `word` that is '+', '#' or 0, and 0 in the others.
#[inline(always)]
fn wildcard_or_nul_bytes(word: u64) -> u64 {
    bytes_equal(word, b'+') | bytes_equal(word, b'#') | bytes_equal(word, 0)
}

/// 0x80 in each byte of `word` equal to `c`, and 0 in the others (exact for every byte: the
/// additions never carry from one byte into the next).
#[inline(always)]
fn bytes_equal(word: u64, c: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let v = word ^ (0x0101_0101_0101_0101 * u64::from(c));
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// Does any byte of `b` satisfy `hit`? One branch-free pass that the compiler vectorizes: the
/// whole 16-byte blocks, then the last 16 bytes again (overlapping them) rather than a tail
/// byte by byte; a string of 8 to 15 bytes as two overlapping 8-byte blocks.
#[inline(always)]
fn any_byte(b: &[u8], hit: impl Fn(u8) -> bool) -> bool {
    let scan = |s: &[u8]| {
        let mut acc = 0u8;
        for &c in s {
            acc |= u8::from(hit(c));
        }
        acc
    };
    let n = b.len();
    if n < 8 {
        return scan(b) != 0;
    }
    if n < 16 {
        let (head, _) = b.split_first_chunk::<8>().expect("8 bytes");
        let (_, tail) = b.split_last_chunk::<8>().expect("8 bytes");
        return (scan(head) | scan(tail)) != 0;
    }
    (scan(&b[..n & !15]) | scan(&b[n - 16..])) != 0
}

/// Does `b` hold '+', '#' or 0? Callers find out which rule is broken only when this says one
/// is.
#[inline]
pub(crate) fn has_wildcard_or_nul(b: &[u8]) -> bool {
    any_byte(b, |c| (c == b'+') | (c == b'#') | (c == 0))
}

/// Does `b` hold a 0 byte? Vectorized like [`has_wildcard_or_nul`]; faster than `memchr` on
/// the short strings MQTT carries.
#[inline]
pub(crate) fn has_nul(b: &[u8]) -> bool {
    any_byte(b, |c| c == 0)
}

/// Splits `$share/{group}/{filter}` into `(group, filter)`; `None` for a plain filter.
pub fn shared_subscription(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

/// Does the subscription `filter`, plain or shared, match the topic name `topic`? A shared
/// subscription matches what its inner filter matches.
pub fn subscription_matches(filter: &str, topic: &str) -> bool {
    match shared_subscription(filter) {
        Some((_, inner)) => matches(inner, topic),
        None => matches(filter, topic),
    }
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
    use proptest::prelude::*;

    /// The rules of a plain filter byte by byte, naming the first offending byte's error: the
    /// reference [`validate_plain_filter`] must agree with.
    fn plain_filter_by_bytes(filter: &str) -> Result<(), TopicError> {
        let b = filter.as_bytes();
        for (i, &c) in b.iter().enumerate() {
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

    /// Strings made mostly of the bytes the filter rules look at, long enough to cross several
    /// 8- and 16-byte blocks.
    fn filter_like() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec!['a', '/', '/', '+', '#', '\0', 'é', '$']),
            0..70,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The block checks accept and refuse exactly what the byte-by-byte rules do, with the
        /// same error.
        #[test]
        fn plain_filter_check_agrees_with_the_rules(s in filter_like()) {
            prop_assert_eq!(validate_plain_filter(&s), plain_filter_by_bytes(&s), "{:?}", s);
        }

        #[test]
        fn plain_filter_check_agrees_on_any_string(s in any::<String>()) {
            prop_assert_eq!(validate_plain_filter(&s), plain_filter_by_bytes(&s), "{:?}", s);
        }

        /// The block scans find a byte wherever it is.
        #[test]
        fn byte_scans_agree_with_a_plain_search(s in filter_like()) {
            let b = s.as_bytes();
            prop_assert_eq!(has_nul(b), b.contains(&0));
            prop_assert_eq!(
                has_wildcard_or_nul(b),
                b.iter().any(|&c| c == 0 || c == b'+' || c == b'#')
            );
        }
    }

    /// Every length around the block size, with the offending byte at every place.
    #[test]
    fn plain_filter_check_at_every_length_and_place() {
        for n in 0..50 {
            let base = "ab/".repeat(20)[..n].to_owned();
            assert_eq!(validate_plain_filter(&base), plain_filter_by_bytes(&base));
            for i in 0..n {
                for c in ["+", "#", "\0", "/"] {
                    let mut s = base.clone();
                    s.replace_range(i..=i, c);
                    assert_eq!(
                        validate_plain_filter(&s),
                        plain_filter_by_bytes(&s),
                        "{s:?}"
                    );
                    assert_eq!(has_nul(s.as_bytes()), s.contains('\0'), "{s:?}");
                }
            }
        }
    }

    /// [MQTT-4.7.1-1] '#' must be the last character and alone in its level
    /// (3.1.1 [MQTT-4.7.1-2]).
    #[test]
    fn mqtt5_4_7_1_1_multi_level_wildcard_last_and_alone() {
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

    /// [MQTT-4.7.1-2] '+' must occupy an entire level
    /// (3.1.1 [MQTT-4.7.1-3]).
    #[test]
    fn mqtt5_4_7_1_2_single_level_wildcard_whole_level() {
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
        assert_eq!(check_topic_filter("$share/g/a/+"), Ok(true));
        assert_eq!(check_topic_filter("$share/g\0/a"), Ok(true));
        assert_eq!(check_topic_filter("$sharex/g/a"), Ok(false));
        assert_eq!(check_topic_filter("$share"), Ok(false));
        assert_eq!(
            check_topic_filter("$share/g/a/#/b"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(shared_subscription("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(shared_subscription("a/b"), None);
    }

    /// Limits come after the protocol's rules; a shared filter counts its share levels.
    #[test]
    fn limits_on_length_and_levels() {
        let l = TopicLimits {
            max_len: 5,
            max_levels: 2,
        };
        assert_eq!(l.check_name("a/b"), Ok(()));
        assert_eq!(l.check_name("abcdef"), Err(TopicRefusal::BeyondLimits));
        assert_eq!(l.check_name("a/b/c"), Err(TopicRefusal::BeyondLimits));
        assert_eq!(
            l.check_name("a/+"),
            Err(TopicRefusal::Invalid(TopicError::WildcardInName))
        );
        assert_eq!(l.check_filter("a/+/#"), Err(TopicRefusal::BeyondLimits));
        let wide = TopicLimits {
            max_len: 100,
            max_levels: 3,
        };
        assert_eq!(wide.check_filter("$share/g/a"), Ok(()));
        assert_eq!(
            wide.check_filter("$share/g/a/b"),
            Err(TopicRefusal::BeyondLimits)
        );
        assert_eq!(levels("/"), 2);
    }

    /// Refusals name the text and the rule; an overlong text is given by its length.
    #[test]
    fn refusals_are_explained_with_the_text() {
        let e = validate_topic_filter("a/#/b").unwrap_err();
        assert_eq!(
            e.explain("a/#/b"),
            "\"a/#/b\": '#' must be a whole level and the last one (like \"a/#\")"
        );
        let long = "a".repeat(65536);
        assert_eq!(
            TopicError::TooLong.explain(&long),
            "65536 bytes long, longer than 65535 bytes"
        );
        assert_eq!(TopicError::Empty.explain(""), "a topic must not be empty");
    }

    /// [MQTT-4.8.2-1] a shared subscription matches through its inner filter.
    #[test]
    fn mqtt_4_8_2_1_shared_filters_match_through_their_inner_filter() {
        assert!(subscription_matches("$share/g/s/#", "s/1"));
        assert!(!subscription_matches("$share/g/s/#", "t/1"));
        assert!(!matches("$share/g/s/#", "s/1"));
        assert!(subscription_matches("s/+", "s/1"));
    }

    /// [MQTT-4.7.1-1] '#' matches the parent level and any number of child levels
    /// (3.1.1 [MQTT-4.7.1-2]).
    #[test]
    fn mqtt5_4_7_1_1_multi_level_matching() {
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

    /// [MQTT-4.7.1-2] '+' matches exactly one level, including an empty one
    /// (3.1.1 [MQTT-4.7.1-3]).
    #[test]
    fn mqtt5_4_7_1_2_single_level_matching() {
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
