//! The ACL file: which client may publish (write) and receive (read) on which topics.
//!
//! ```text
//! # Lines before any `user` or `client` line apply to clients without a user name.
//! topic read public/#
//! # The lines below apply to user `alice` (a `topic` without an access word is readwrite) ...
//! user alice
//! topic readwrite home/alice/#
//! topic sensors/+/temperature
//! # ... and these to client identifier `gateway-7`.
//! client gateway-7
//! topic write telemetry/#
//! # `pattern` lines apply to every client, wherever they are.
//! pattern read devices/%c/commands
//! pattern write users/%u/#
//! ```
//!
//! Comments are whole lines starting with `#`. In `pattern` lines `%u` is replaced by the client's user name and `%c` by its client
//! identifier; a pattern naming `%u` never applies to a client without a user name, and neither
//! applies when the value contains `/`, `+` or `#` (which would widen the pattern). Topics are
//! filters with the usual wildcards; a leading wildcard does not match a topic starting with `$`
//! ([MQTT-4.7.2-1]). Anything not granted is denied.
//!
//! A topic may be published if some rule with write access matches it, and delivered if some
//! rule with read access matches it. A subscription is granted if its filter (without a
//! `$share/group/` prefix) can match some topic a read rule matches; each message it matches is
//! still checked when delivered.
//!
//! Not here: authentication (`password.rs`), the broker hooks (`mod.rs`).

use crate::codec::topic::{matches, validate_topic_filter};

use super::FileError;

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    fn grants(self, wanted: Access) -> bool {
        self == Access::ReadWrite || self == wanted
    }
}

/// Whom a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Clients without a (verified) user name.
    Anonymous,
    User(String),
    Client(String),
    /// Every client, with `%u` / `%c` substituted.
    Pattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scope: Scope,
    access: Access,
    filter: String,
}

/// The parsed ACL, rules in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<Rule>,
}

/// Who asks: the verified user name (if any) and the client identifier.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub user: Option<&'a str>,
    pub client_id: &'a str,
}

impl Acl {
    /// Parses the file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Acl, FileError> {
        let mut rules = Vec::new();
        let mut scope = Scope::Anonymous;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| FileError::new(file, line_no, message);
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match word {
                "user" | "client" => {
                    if rest.is_empty() || rest.contains(char::is_whitespace) {
                        return Err(err(format!("`{word}` takes exactly one name")));
                    }
                    scope = if word == "user" {
                        Scope::User(rest.to_owned())
                    } else {
                        Scope::Client(rest.to_owned())
                    };
                }
                "topic" | "pattern" => {
                    let (access, filter) = match rest.split_once(char::is_whitespace) {
                        Some(("read", f)) => (Access::Read, f.trim()),
                        Some(("write", f)) => (Access::Write, f.trim()),
                        Some(("readwrite", f)) => (Access::ReadWrite, f.trim()),
                        Some((other, _)) => {
                            return Err(err(format!(
                                "access must be read, write or readwrite, not {other:?}"
                            )));
                        }
                        None => (Access::ReadWrite, rest),
                    };
                    if filter.is_empty() {
                        return Err(err(format!("`{word}` needs a topic")));
                    }
                    if validate_topic_filter(filter).is_err() {
                        return Err(err(format!("invalid topic filter {filter:?}")));
                    }
                    let scope = if word == "pattern" {
                        Scope::Pattern
                    } else {
                        scope.clone()
                    };
                    rules.push(Rule {
                        scope,
                        access,
                        filter: filter.to_owned(),
                    });
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword {other:?} (expected user, client, topic or pattern)"
                    )));
                }
            }
        }
        Ok(Acl { rules })
    }

    /// The filters of the rules that apply to `who` and grant `access`, substituted.
    fn filters<'a>(&'a self, who: Who<'a>, access: Access) -> impl Iterator<Item = String> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.access.grants(access))
            .filter_map(move |r| match &r.scope {
                Scope::Anonymous => who.user.is_none().then(|| r.filter.clone()),
                Scope::User(u) => (who.user == Some(u.as_str())).then(|| r.filter.clone()),
                Scope::Client(c) => (who.client_id == c).then(|| r.filter.clone()),
                Scope::Pattern => substitute(&r.filter, who),
            })
    }

    /// May `who` publish to `topic`?
    pub fn may_write(&self, who: Who<'_>, topic: &str) -> bool {
        self.filters(who, Access::Write).any(|f| matches(&f, topic))
    }

    /// May `who` receive a message published to `topic`?
    pub fn may_read(&self, who: Who<'_>, topic: &str) -> bool {
        self.filters(who, Access::Read).any(|f| matches(&f, topic))
    }

    /// May `who` subscribe to `filter` (a `$share/group/` prefix is ignored)?
    pub fn may_subscribe(&self, who: Who<'_>, filter: &str) -> bool {
        let filter = strip_share(filter);
        self.filters(who, Access::Read).any(|f| overlap(&f, filter))
    }
}

/// `%u` and `%c` replaced; `None` if a needed value is missing or would widen the pattern.
fn substitute(pattern: &str, who: Who<'_>) -> Option<String> {
    let safe = |v: &str| !v.is_empty() && !v.contains(['/', '+', '#']);
    let mut out = pattern.to_owned();
    if pattern.contains("%u") {
        let user = who.user.filter(|u| safe(u))?;
        out = out.replace("%u", user);
    }
    if pattern.contains("%c") {
        if !safe(who.client_id) {
            return None;
        }
        out = out.replace("%c", who.client_id);
    }
    Some(out)
}

fn strip_share(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, f)| f)
}

/// Whether some topic name is matched by both filters.
fn overlap(a: &str, b: &str) -> bool {
    let wild = |s: &str| s.starts_with('+') || s.starts_with('#');
    // [MQTT-4.7.2-1] A leading wildcard never matches a `$` topic, so it shares none with a
    // filter whose first level starts with `$`.
    if (wild(a) && b.starts_with('$')) || (wild(b) && a.starts_with('$')) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
            (Some(p), Some(q)) => {
                if p != "+" && q != "+" && p != q {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite home/alice/#
topic sensors/+/temperature
client gateway-7
topic write telemetry/#
pattern read devices/%c/commands
pattern write users/%u/#
";

    fn who<'a>(user: Option<&'a str>, client_id: &'a str) -> Who<'a> {
        Who { user, client_id }
    }

    #[test]
    fn user_and_anonymous_sections_grant_only_their_access() {
        let acl = Acl::parse("acl", ACL).unwrap();
        let alice = who(Some("alice"), "a1");
        let anon = who(None, "x");
        assert!(acl.may_write(alice, "home/alice/lamp"));
        assert!(acl.may_read(alice, "home/alice/lamp"));
        assert!(acl.may_write(alice, "sensors/kitchen/temperature"));
        assert!(!acl.may_write(alice, "home/bob/lamp"));
        assert!(
            !acl.may_read(alice, "public/news"),
            "anonymous lines are not alice's"
        );
        assert!(acl.may_read(anon, "public/news"));
        assert!(!acl.may_write(anon, "public/news"), "read only");
        assert!(!acl.may_read(who(Some("bob"), "b"), "home/alice/lamp"));
    }

    #[test]
    fn client_section_applies_by_client_identifier() {
        let acl = Acl::parse("acl", ACL).unwrap();
        assert!(acl.may_write(who(None, "gateway-7"), "telemetry/a/b"));
        assert!(acl.may_write(who(Some("bob"), "gateway-7"), "telemetry/a"));
        assert!(!acl.may_write(who(Some("bob"), "gateway-8"), "telemetry/a"));
        assert!(
            !acl.may_read(who(None, "gateway-7"), "telemetry/a"),
            "write only"
        );
    }

    #[test]
    fn patterns_substitute_user_and_client_and_refuse_widening_values() {
        let acl = Acl::parse("acl", ACL).unwrap();
        assert!(acl.may_read(who(None, "d1"), "devices/d1/commands"));
        assert!(!acl.may_read(who(None, "d1"), "devices/d2/commands"));
        assert!(acl.may_write(who(Some("bob"), "x"), "users/bob/inbox"));
        assert!(!acl.may_write(who(Some("bob"), "x"), "users/carol/inbox"));
        assert!(
            !acl.may_write(who(None, "x"), "users//inbox"),
            "%u needs a user"
        );
        assert!(!acl.may_write(who(Some("#"), "x"), "users/carol/inbox"));
        assert!(!acl.may_write(who(Some("a/b"), "x"), "users/a/b/c"));
        assert!(!acl.may_read(who(None, "+"), "devices/d2/commands"));
    }

    #[test]
    fn subscriptions_are_granted_when_they_can_match_a_readable_topic() {
        let acl = Acl::parse("acl", ACL).unwrap();
        let alice = who(Some("alice"), "a1");
        assert!(acl.may_subscribe(alice, "home/alice/#"));
        assert!(acl.may_subscribe(alice, "home/+/lamp"));
        assert!(acl.may_subscribe(alice, "#"));
        assert!(acl.may_subscribe(alice, "$share/g/home/alice/x"));
        assert!(!acl.may_subscribe(alice, "home/bob/#"));
        assert!(!acl.may_subscribe(alice, "$SYS/#"));
        let bob = who(Some("bob"), "b");
        assert!(acl.may_subscribe(bob, "#"), "bob reads devices/b/commands");
        assert!(!acl.may_subscribe(bob, "home/#"));
        assert!(!acl.may_subscribe(bob, "devices/c/#"));
    }

    #[test]
    fn overlap_follows_wildcards_and_dollar_topics() {
        assert!(overlap("a/+/c", "a/b/+"));
        assert!(overlap("a/#", "a"));
        assert!(overlap("+/+", "x/y"));
        assert!(!overlap("a/+", "a/b/c"));
        assert!(!overlap("a/b", "a/c"));
        assert!(!overlap("#", "$SYS/x"));
        assert!(!overlap("+/x", "$SYS/x"));
        assert!(overlap("$SYS/#", "$SYS/x"));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let cases = [
            (
                "topic append a/b",
                "access must be read, write or readwrite",
            ),
            ("topic read a/#/b", "invalid topic filter"),
            ("user", "takes exactly one name"),
            ("allow a", "unknown keyword"),
            ("topic", "needs a topic"),
        ];
        for (line, want) in cases {
            let e = Acl::parse("/etc/acl", &format!("user a\n\n{line}\n")).unwrap_err();
            assert_eq!(e.line, 3, "{e}");
            let shown = e.to_string();
            assert!(shown.starts_with("/etc/acl:3: "), "{shown}");
            assert!(shown.contains(want), "{shown} should say {want}");
        }
    }

    #[test]
    fn an_empty_acl_denies_everything() {
        let acl = Acl::parse("acl", "# nothing\n").unwrap();
        assert!(!acl.may_read(who(None, "c"), "a"));
        assert!(!acl.may_write(who(Some("u"), "c"), "a"));
        assert!(!acl.may_subscribe(who(Some("u"), "c"), "#"));
    }
}
