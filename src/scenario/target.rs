//! `[target]`: what a scenario needs when it judges a real broker (`mqtt-lab run --target`)
//! rather than the simulated one. The simulator ignores it.

use serde::Deserialize;

/// `[target]`. Every field has a default, so the section may be left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetSection {
    /// The scenario needs the broker to itself: against a target it runs while no other run
    /// does, with its client identifiers and topics as written (not prefixed), for example a
    /// story about `$SYS` topics or about everything a `#` subscription sees. Default `false`:
    /// runs share the broker, each with its own prefix. Stories that restart the broker, or
    /// whose topics a prefix would change (`$` topics, empty ones), need it whatever this says.
    pub exclusive: bool,
    /// What the story needs of a broker beyond the protocol and its `[broker]` settings, in
    /// words (for example "clients may publish on `$` topics": a broker may refuse them by
    /// policy). Against a target each is a requirement no packet shows: the scenario needs
    /// configuration unless the target is said to be configured so (`--assume-configured`).
    /// Default: none.
    pub requires: Vec<String>,
}
