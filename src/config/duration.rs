//! The one duration grammar of every configuration file (scenarios, `broker.toml`, the client's
//! configuration): strings with a unit (`"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"1m30s"`), parsed by
//! [`parse_duration`] and printed back by [`format_duration`], and the serde adapters that read
//! and write them.
//!
//! Bare numbers are refused on purpose: `keep_alive = 10` would leave the reader guessing the
//! unit. A session expiry may also be `"never"` ([`NEVER_EXPIRES`]). Each file may bound its
//! durations further (a scenario: one week of virtual time). Not here: any clock (a duration is a
//! length of time, never read from a clock).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration the grammar reads: 0xFFFFFFFF seconds, the longest interval MQTT can
/// state (about 136 years).
pub const LONGEST: Duration = Duration::from_secs(u32::MAX as u64);

/// How [`LONGEST`] is named in errors.
const LONGEST_NAME: &str = "4294967295s, the longest interval MQTT can state";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: write a number and a unit, like \"5s\"")]
    Empty,
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ms, s, m, h), like \"250ms\" or \"1m30s\""
    )]
    Syntax(String),
    #[error("invalid duration {text:?}: unknown unit {unit:?} (use us, ms, s, m or h)")]
    Unit { text: String, unit: String },
    #[error("invalid duration {0:?}: finer than one microsecond")]
    TooPrecise(String),
    #[error("invalid duration {text:?}: more than {limit}")]
    TooLong { text: String, limit: &'static str },
}

/// Parses `"100ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"1h"`, `"1m30s"` and `"0s"`.
///
/// Units: `us`, `ms`, `s`, `m`, `h`. Several number-unit pairs add up. A decimal point is
/// allowed; the result is exact to the microsecond (finer fractions are an error). No sign, no
/// spaces inside a pair, at most [`LONGEST`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse_within(text, LONGEST, LONGEST_NAME)
}

/// [`parse_duration`], refusing more than `max` (named `limit` in the error).
pub fn parse_within(
    text: &str,
    max: Duration,
    limit: &'static str,
) -> Result<Duration, DurationError> {
    let too_long = || DurationError::TooLong {
        text: text.to_string(),
        limit,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let syntax = || DurationError::Syntax(text.to_string());
    let mut rest = trimmed;
    let mut total_us: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(syntax());
        }
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_us: u128 = match unit {
            "us" | "µs" => 1,
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" | "min" => 60_000_000,
            "h" => 3_600_000_000,
            "" => return Err(syntax()),
            other => {
                return Err(DurationError::Unit {
                    text: text.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        let (whole, frac) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if whole.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
            return Err(syntax());
        }
        if whole.len() > 12 || frac.len() > 9 {
            return Err(too_long());
        }
        let whole: u128 = whole.parse().map_err(|_| syntax())?;
        let mut value = whole * unit_us;
        if !frac.is_empty() {
            let digits: u128 = frac.parse().map_err(|_| syntax())?;
            let scale = 10u128.pow(frac.len() as u32);
            let frac_us = digits * unit_us;
            if !frac_us.is_multiple_of(scale) {
                return Err(DurationError::TooPrecise(text.to_string()));
            }
            value += frac_us / scale;
        }
        total_us += value;
        if total_us > max.as_micros() {
            return Err(too_long());
        }
    }
    Ok(Duration::from_micros(total_us as u64))
}

/// Prints a duration compactly in the syntax [`parse_duration`] reads back:
/// `"0s"`, `"250ms"`, `"5s"`, `"1m30s"`, `"1.5ms"`, `"2h5m"`.
pub fn format_duration(d: Duration) -> String {
    let total_us = d.as_micros();
    if total_us == 0 {
        return "0s".to_string();
    }
    let hours = total_us / 3_600_000_000;
    let minutes = (total_us / 60_000_000) % 60;
    let sub_minute_us = total_us % 60_000_000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if sub_minute_us > 0 {
        if sub_minute_us.is_multiple_of(1_000_000) {
            out.push_str(&format!("{}s", sub_minute_us / 1_000_000));
        } else if sub_minute_us >= 1_000_000 && sub_minute_us.is_multiple_of(1_000) {
            out.push_str(&trim_decimal(sub_minute_us / 1_000, 3, "s"));
        } else if sub_minute_us >= 1_000_000 {
            out.push_str(&trim_decimal(sub_minute_us, 6, "s"));
        } else if sub_minute_us.is_multiple_of(1_000) {
            out.push_str(&format!("{}ms", sub_minute_us / 1_000));
        } else {
            out.push_str(&trim_decimal(sub_minute_us, 3, "ms"));
        }
    }
    out
}

/// A point in virtual time as seconds with millisecond precision (`"12.345s"`), fixed width
/// friendly for timelines.
pub fn format_instant(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

fn trim_decimal(value: u128, decimals: u32, unit: &str) -> String {
    let scale = 10u128.pow(decimals);
    let frac = format!("{:0width$}", value % scale, width = decimals as usize);
    let frac = frac.trim_end_matches('0');
    format!("{}.{}{}", value / scale, frac, unit)
}

fn invalid<E: serde::de::Error>(e: DurationError) -> E {
    E::custom(e)
}

/// A duration field as written in a file: a string, or a number (refused with a hint).
enum Raw {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration string with a unit, like \"5s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::Integer(v.try_into().unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The longest a field may be, and how that bound is named in errors.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub max: Duration,
    pub name: &'static str,
}

/// The grammar's own bound, [`LONGEST`].
pub const ANY: Bound = Bound {
    max: LONGEST,
    name: LONGEST_NAME,
};

fn from_raw<E: serde::de::Error>(raw: Raw, bound: Bound) -> Result<Duration, E> {
    match raw {
        Raw::Text(text) => parse_within(&text, bound.max, bound.name).map_err(invalid),
        Raw::Integer(n) => Err(E::custom(format!(
            "a duration needs a unit: write \"{n}s\" or \"{n}ms\", not {n}"
        ))),
        Raw::Float(n) => Err(E::custom(format!(
            "a duration needs a unit: write \"{n}s\", not {n}"
        ))),
    }
}

/// Reads a duration of at most `bound`.
pub fn deserialize_within<'de, D: Deserializer<'de>>(
    d: D,
    bound: Bound,
) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?, bound)
}

/// Reads a `[low, high]` duration range, each end at most `bound`.
pub fn deserialize_range_within<'de, D: Deserializer<'de>>(
    d: D,
    bound: Bound,
) -> Result<[Duration; 2], D::Error> {
    let raw = Vec::<Raw>::deserialize(d)?;
    if raw.len() != 2 {
        return Err(serde::de::Error::custom(format!(
            "a range is two values [low, high], got {} values",
            raw.len()
        )));
    }
    let mut it = raw.into_iter();
    let low = from_raw(it.next().expect("two values"), bound)?;
    let high = from_raw(it.next().expect("two values"), bound)?;
    Ok([low, high])
}

/// Reads a session expiry: a duration of at most `bound`, or `"never"` ([`NEVER_EXPIRES`]).
pub fn deserialize_expiry_within<'de, D: Deserializer<'de>>(
    d: D,
    bound: Bound,
) -> Result<Duration, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Text(text) if text == "never" => Ok(NEVER_EXPIRES),
        raw => from_raw(raw, bound),
    }
}

/// `#[serde(with = "crate::config::duration")]`: a duration read with the grammar, written with
/// [`format_duration`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    deserialize_within(d, ANY)
}

/// See [`deserialize`].
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// `#[serde(with = "crate::config::duration::expiry_secs")]`: a session expiry kept as whole
/// seconds, written as a duration or `"never"` (0xFFFFFFFF seconds).
pub mod expiry_secs {
    use serde::{Deserializer, Serializer};

    use super::{ANY, NEVER_EXPIRES, deserialize_expiry_within, format_duration};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let expiry = deserialize_expiry_within(d, ANY)?;
        if expiry.subsec_nanos() != 0 {
            return Err(serde::de::Error::custom(format!(
                "{} is not a whole number of seconds (MQTT counts this in seconds)",
                format_duration(expiry)
            )));
        }
        Ok(u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX))
    }

    pub fn serialize<S: Serializer>(secs: &u32, s: S) -> Result<S::Ok, S::Error> {
        let d = std::time::Duration::from_secs(u64::from(*secs));
        if d == NEVER_EXPIRES {
            s.serialize_str("never")
        } else {
            s.serialize_str(&format_duration(d))
        }
    }
}

/// The session expiry `"never"` stands for: 0xFFFFFFFF seconds, the MQTT 5.0 value meaning
/// "the session does not expire".
pub const NEVER_EXPIRES: Duration = LONGEST;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("100ms"), Ok(ms(100)));
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn parses_fractions_and_compounds() {
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("0.25ms"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h2m3s4ms"), Ok(ms(3_723_004)));
    }

    #[test]
    fn refuses_missing_or_unknown_units_and_junk() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("10"),
            Err(DurationError::Syntax("10".into()))
        );
        assert_eq!(
            parse_duration("5x"),
            Err(DurationError::Unit {
                text: "5x".into(),
                unit: "x".into()
            })
        );
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::Syntax("-5s".into()))
        );
        assert_eq!(parse_duration("s"), Err(DurationError::Syntax("s".into())));
        assert_eq!(
            parse_duration("1..5s"),
            Err(DurationError::Syntax("1..5s".into()))
        );
        assert_eq!(
            parse_duration("1.s"),
            Err(DurationError::Syntax("1.s".into()))
        );
        assert_eq!(
            parse_duration("0.0001ms"),
            Err(DurationError::TooPrecise("0.0001ms".into()))
        );
        assert_eq!(
            parse_duration("8d"),
            Err(DurationError::Unit {
                text: "8d".into(),
                unit: "d".into()
            })
        );
        assert_eq!(
            parse_within("169h", Duration::from_secs(168 * 3600), "one week"),
            Err(DurationError::TooLong {
                text: "169h".into(),
                limit: "one week"
            })
        );
        assert!(parse_duration("169h").is_ok());
        assert!(matches!(
            parse_duration("1193047h"),
            Err(DurationError::TooLong { .. })
        ));
    }

    #[test]
    fn error_text_explains_the_syntax() {
        let e = parse_duration("5 seconds").unwrap_err().to_string();
        assert!(e.contains("\"5 seconds\""), "{e}");
        let e = parse_duration("5x").unwrap_err().to_string();
        assert!(e.contains("unknown unit \"x\""), "{e}");
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "0s", "1ms", "250ms", "5s", "1.5s", "1m30s", "2h5m", "1.5ms", "59.999s", "1h0.001s",
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        assert_eq!(format_duration(ms(1_500)), "1.5s");
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1.5ms");
        assert_eq!(format_instant(ms(12_345)), "12.345s");
    }
}
