//! The normative statements of MQTT 3.1.1 and 5.0, as data: every `[MQTT-x.y.z-n]` of each
//! specification, summarised in our words, with whom it binds and whether it can be seen on
//! the wire (`mqtt-3.1.1.toml`, `mqtt-5.0.toml`, compiled in).
//!
//! The project names tests, checkers and docs after these statements; the unit tests below
//! read every source, scenario and page and fail on a reference to a statement that neither
//! specification has.
//!
//! [`matrix`] says, per statement, what checks it ([`evidence`]: tests, checkers, scenarios;
//! [`suite`]: the black-box checks any broker can be judged by) or why nothing does.

pub mod evidence;
pub mod matrix;
#[cfg(test)]
mod scan;
pub mod suite;

use std::sync::OnceLock;

use serde::Deserialize;

/// One of the two specifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Spec {
    /// MQTT 3.1.1, OASIS Standard, 29 October 2014.
    V3_1_1,
    /// MQTT 5.0, OASIS Standard, 7 March 2019.
    V5_0,
}

impl Spec {
    pub const ALL: [Spec; 2] = [Spec::V3_1_1, Spec::V5_0];

    pub fn name(self) -> &'static str {
        match self {
            Spec::V3_1_1 => "3.1.1",
            Spec::V5_0 => "5.0",
        }
    }

    /// Every normative statement of the specification, in its order.
    pub fn statements(self) -> &'static [Statement] {
        static V3: OnceLock<Vec<Statement>> = OnceLock::new();
        static V5: OnceLock<Vec<Statement>> = OnceLock::new();
        let (cell, text) = match self {
            Spec::V3_1_1 => (&V3, include_str!("mqtt-3.1.1.toml")),
            Spec::V5_0 => (&V5, include_str!("mqtt-5.0.toml")),
        };
        cell.get_or_init(|| {
            parse(text).unwrap_or_else(|e| panic!("mqtt-{}.toml: {e}", self.name()))
        })
    }

    /// The statement `id` (`MQTT-3.1.0-1`, without brackets), if this specification has it.
    pub fn statement(self, id: &str) -> Option<&'static Statement> {
        self.statements().iter().find(|s| s.id == id)
    }
}

/// Whom a statement binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binds {
    Client,
    Server,
    Both,
}

/// One normative statement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// As the specification labels it, without brackets: `MQTT-3.1.0-1`.
    pub id: String,
    /// The section it is in: `3.1.2.4`.
    pub section: String,
    pub binds: Binds,
    /// Whether a peer, or an observer of the network, can see whether it is kept.
    pub wire: bool,
    /// 3.1.1 only: the 5.0 statement that states the same rule, where 5.0 has one.
    #[serde(default)]
    pub v5: Option<String>,
    /// What it requires, in our words.
    pub summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    statement: Vec<Statement>,
}

fn parse(text: &str) -> Result<Vec<Statement>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut seen = std::collections::BTreeSet::new();
    for s in &file.statement {
        if !is_label(&s.id) {
            return Err(format!("{:?} is not a statement label", s.id));
        }
        if !seen.insert(s.id.as_str()) {
            return Err(format!("{} is listed twice", s.id));
        }
        if !s
            .section
            .split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || !s.id[5..].starts_with(s.section.split('.').next().unwrap_or_default())
        {
            return Err(format!(
                "{}: section {:?} is not where it is",
                s.id, s.section
            ));
        }
        if s.summary.trim().is_empty() {
            return Err(format!("{}: no summary", s.id));
        }
    }
    Ok(file.statement)
}

/// Whether `id` has the shape of a statement label: `MQTT-` then dot-separated numbers, a
/// dash and a number.
pub fn is_label(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("MQTT-") else {
        return false;
    };
    let Some((section, n)) = rest.rsplit_once('-') else {
        return false;
    };
    let number = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    number(n) && section.split('.').count() >= 3 && section.split('.').all(number)
}

/// The specifications that have statement `id`.
pub fn specs_with(id: &str) -> Vec<Spec> {
    Spec::ALL
        .into_iter()
        .filter(|s| s.statement(id).is_some())
        .collect()
}

/// Every statement label written in `text` (`MQTT-x.y.z-n` inside brackets or not), in order,
/// with its byte offset.
pub fn labels_in(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("MQTT-").map(|i| from + i) {
        let mut end = at + 5;
        while end < bytes.len()
            && (bytes[end].is_ascii_digit() || bytes[end] == b'.' || bytes[end] == b'-')
        {
            end += 1;
        }
        // A sentence may end right after a label: "... [MQTT-3.1.0-1]." has no trailing dot
        // inside brackets, but "MQTT-3.1.0-1." may.
        let mut label = &text[at..end];
        while label.ends_with(['.', '-']) {
            label = &label[..label.len() - 1];
        }
        if is_label(label) {
            out.push((at, label));
        }
        from = end.max(at + 5);
    }
    out
}

/// The statement a test function's name refers to: `mqtt_3_1_2_8_...` or `mqtt5_3_1_2_8_...`
/// name `MQTT-3.1.2-8` (exactly four numbers, then a word). Names with fewer numbers name a
/// section, with more a section and its statements or a subsection: neither is read.
pub fn label_of_test_name(name: &str) -> Option<String> {
    let rest = name
        .strip_prefix("mqtt5_")
        .or_else(|| name.strip_prefix("mqtt_"))?;
    let parts: Vec<&str> = rest.split('_').collect();
    let numbers = parts
        .iter()
        .take_while(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .count();
    (numbers == 4 && parts.len() > 4)
        .then(|| format!("MQTT-{}.{}.{}-{}", parts[0], parts[1], parts[2], parts[3]))
}

#[cfg(test)]
mod tests;
