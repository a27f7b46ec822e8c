//! `properties = { ... }` on a `[[workload]]`: the MQTT 5.0 application properties sent with
//! every message of the workload (payload format, content type, response topic, correlation
//! data, user properties), their validation, and the codec [`Properties`] they become.
//!
//! Not here: message expiry (the workload's own `message_expiry`), topic aliases (the client
//! core's), subscription identifiers (on `subscribe` entries).

use serde::Deserialize;

use super::topic::check_topic_name;
use crate::codec::{Properties, PropertySet};

/// Most user properties on one workload.
pub const MAX_USER_PROPERTIES: usize = 32;
/// Longest string (content type, response topic, correlation data, user property name or
/// value): the MQTT limit of a UTF-8 string.
pub const MAX_PROPERTY_STRING: usize = 65_535;

/// The Payload Format Indicator as written in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    Bytes,
    /// 1: UTF-8 encoded character data.
    Utf8,
}

impl PayloadFormat {
    /// The indicator's value on the wire.
    pub fn indicator(self) -> u8 {
        match self {
            PayloadFormat::Bytes => 0,
            PayloadFormat::Utf8 => 1,
        }
    }
}

/// `properties = { ... }`: 5.0 application properties of every message of a workload. Every
/// field defaults to absent (not sent).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageProperties {
    /// `"utf8"` or `"bytes"`.
    #[serde(default)]
    pub payload_format: Option<PayloadFormat>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// A topic name (no wildcards).
    #[serde(default)]
    pub response_topic: Option<String>,
    /// Sent as the UTF-8 bytes of this text.
    #[serde(default)]
    pub correlation_data: Option<String>,
    /// `[["name", "value"], ...]`, sent in this order; a name may repeat.
    #[serde(default)]
    pub user_properties: Vec<(String, String)>,
}

impl MessageProperties {
    /// The codec properties of one PUBLISH (no message expiry: the workload adds it).
    pub fn to_codec(&self) -> Properties {
        Properties::from(PropertySet {
            payload_format_indicator: self.payload_format.map(PayloadFormat::indicator),
            content_type: self.content_type.clone(),
            response_topic: self.response_topic.clone(),
            correlation_data: self
                .correlation_data
                .as_ref()
                .map(|c| c.clone().into_bytes().into()),
            user_properties: self.user_properties.clone(),
            ..PropertySet::default()
        })
    }

    /// An upper bound of the bytes these properties add to a PUBLISH.
    pub fn wire_len(&self) -> u32 {
        let s = |x: &Option<String>| x.as_ref().map_or(0, |v| 3 + v.len());
        let n = 2
            + s(&self.content_type)
            + s(&self.response_topic)
            + s(&self.correlation_data)
            + self
                .user_properties
                .iter()
                .map(|(k, v)| 5 + k.len() + v.len())
                .sum::<usize>();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Every problem, as `(field under properties, reason)`.
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut text = |field: String, text: &str| {
            if text.len() > MAX_PROPERTY_STRING {
                out.push((
                    field,
                    format!(
                        "{} bytes, more than an MQTT string holds ({MAX_PROPERTY_STRING})",
                        text.len()
                    ),
                ));
            } else if text.contains('\0') {
                out.push((field, "must not contain U+0000 [MQTT-1.5.4-2]".into()));
            }
        };
        for (field, v) in [
            ("content_type", &self.content_type),
            ("response_topic", &self.response_topic),
            ("correlation_data", &self.correlation_data),
        ] {
            if let Some(v) = v {
                text(field.to_string(), v);
            }
        }
        for (k, (name, value)) in self.user_properties.iter().enumerate() {
            text(format!("user_properties[{k}]"), name);
            text(format!("user_properties[{k}]"), value);
        }
        if let Some(t) = &self.response_topic
            && let Err(reason) = check_topic_name(t)
        {
            out.push((
                "response_topic".into(),
                format!("{reason} (a response topic is a topic name [MQTT-3.3.2-14])"),
            ));
        }
        if self.user_properties.len() > MAX_USER_PROPERTIES {
            out.push((
                "user_properties".into(),
                format!(
                    "{} user properties, more than {MAX_USER_PROPERTIES}",
                    self.user_properties.len()
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_codec_keeps_every_field_and_the_user_property_order() {
        let p = MessageProperties {
            payload_format: Some(PayloadFormat::Utf8),
            content_type: Some("application/json".into()),
            response_topic: Some("replies/a".into()),
            correlation_data: Some("req-1".into()),
            user_properties: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        };
        let c = p.to_codec();
        assert_eq!(c.payload_format_indicator, Some(1));
        assert_eq!(c.content_type.as_deref(), Some("application/json"));
        assert_eq!(c.response_topic.as_deref(), Some("replies/a"));
        assert_eq!(c.correlation_data.as_deref(), Some(&b"req-1"[..]));
        assert_eq!(c.user_properties, p.user_properties);
        assert!(MessageProperties::default().to_codec().is_empty());
        assert!(p.problems().is_empty());
    }

    #[test]
    fn problems_name_the_field() {
        let p = MessageProperties {
            response_topic: Some("replies/+".into()),
            content_type: Some("a\0b".into()),
            user_properties: vec![("k".into(), "v".into()); MAX_USER_PROPERTIES + 1],
            ..MessageProperties::default()
        };
        let fields: Vec<String> = p.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["content_type", "response_topic", "user_properties"]
        );
    }
}
