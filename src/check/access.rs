//! Access as the broker's users and ACL grant it, by the checkers' own reading of the ACL file
//! syntax (see docs/auth.md), kept apart from the broker's parser and matcher so that a bug there
//! is not copied here: [`Rules`] (who is who, who may read, write and subscribe to what) and
//! [`Refusal`] (why a CONNECT must be refused, with its CONNACK code).
//!
//! Not here: which client was verified as which user in a run ([`Model`](super::model::Model)),
//! or judging what the broker did (the "acl" checker).

use std::collections::BTreeMap;

use super::topic;
use crate::trace::{Event, Trace};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Anonymous,
    User(String),
    Client(String),
    Pattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scope: Scope,
    access: Access,
    filter: String,
}

/// The broker's users and ACL as the trace states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub allow_anonymous: bool,
    /// User → password.
    pub users: BTreeMap<String, String>,
    /// `None`: no ACL, everything allowed.
    acl: Option<Vec<Rule>>,
}

/// Why a CONNECT must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user, wrong password, or a password without a user name.
    BadCredentials,
    /// Anonymous while anonymous access is off, or a will topic the client may not write.
    NotAuthorized,
}

impl Refusal {
    /// The CONNACK code as on the wire.
    pub fn code(self, v5: bool) -> u8 {
        match (self, v5) {
            (Refusal::BadCredentials, false) => 0x04,
            (Refusal::NotAuthorized, false) => 0x05,
            (Refusal::BadCredentials, true) => 0x86,
            (Refusal::NotAuthorized, true) => 0x87,
        }
    }
}

impl Rules {
    /// The rules of `auth_configured`; an error names the ACL line that does not parse.
    pub fn new(
        allow_anonymous: bool,
        users: &[crate::trace::UserSpec],
        acl: Option<&str>,
    ) -> Result<Rules, String> {
        Ok(Rules {
            allow_anonymous,
            users: users
                .iter()
                .map(|u| (u.name.clone(), u.password.clone()))
                .collect(),
            acl: acl.map(parse).transpose()?,
        })
    }

    /// The rules stated by the trace's `auth_configured` event, if any.
    pub fn of(trace: &Trace) -> Option<Result<Rules, String>> {
        trace.events.iter().find_map(|e| match &e.event {
            Event::AuthConfigured {
                allow_anonymous,
                users,
                acl,
            } => Some(Rules::new(*allow_anonymous, users, acl.as_deref())),
            _ => None,
        })
    }

    /// The user name the broker verifies for these credentials, or why it refuses them.
    /// Without users (no password file) a user name cannot be verified: anonymous.
    pub fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Option<String>, Refusal> {
        let anonymous = || {
            if self.allow_anonymous {
                Ok(None)
            } else {
                Err(Refusal::NotAuthorized)
            }
        };
        if self.users.is_empty() {
            return anonymous();
        }
        match (username, password) {
            (None, None) => anonymous(),
            (Some(u), Some(p)) if self.users.get(u).is_some_and(|known| known == p) => {
                Ok(Some(u.to_string()))
            }
            _ => Err(Refusal::BadCredentials),
        }
    }

    fn granted(&self, user: Option<&str>, client: &str, wanted: Access) -> Option<Vec<String>> {
        let acl = self.acl.as_ref()?;
        let safe = |v: &str| !v.is_empty() && !v.contains(['/', '+', '#']);
        Some(
            acl.iter()
                .filter(|r| r.access == Access::ReadWrite || r.access == wanted)
                .filter_map(|r| match &r.scope {
                    Scope::Anonymous => user.is_none().then(|| r.filter.clone()),
                    Scope::User(u) => (user == Some(u.as_str())).then(|| r.filter.clone()),
                    Scope::Client(c) => (client == c).then(|| r.filter.clone()),
                    Scope::Pattern => {
                        let mut f = r.filter.clone();
                        if f.contains("%u") {
                            f = f.replace("%u", user.filter(|u| safe(u))?);
                        }
                        if f.contains("%c") {
                            if !safe(client) {
                                return None;
                            }
                            f = f.replace("%c", client);
                        }
                        Some(f)
                    }
                })
                .collect(),
        )
    }

    /// May `client` (verified as `user`) publish on `topic`?
    pub fn may_write(&self, user: Option<&str>, client: &str, topic: &str) -> bool {
        self.granted(user, client, Access::Write)
            .is_none_or(|fs| fs.iter().any(|f| topic::matches(f, topic)))
    }

    /// May `client` (verified as `user`) receive a message on `topic`?
    pub fn may_read(&self, user: Option<&str>, client: &str, topic: &str) -> bool {
        self.granted(user, client, Access::Read)
            .is_none_or(|fs| fs.iter().any(|f| topic::matches(f, topic)))
    }

    /// Can subscription `filter` (plain or shared) match some topic `client` may read?
    pub fn may_subscribe(&self, user: Option<&str>, client: &str, filter: &str) -> bool {
        let inner = topic::shared(filter).map_or(filter, |(_, f)| f);
        self.granted(user, client, Access::Read)
            .is_none_or(|fs| fs.iter().any(|f| some_topic_matches_both(f, inner)))
    }
}

/// Whether one topic name is matched by both filters.
fn some_topic_matches_both(a: &str, b: &str) -> bool {
    let wild_first = |f: &str| f.starts_with('+') || f.starts_with('#');
    if (wild_first(a) && b.starts_with('$')) || (wild_first(b) && a.starts_with('$')) {
        return false;
    }
    let x: Vec<&str> = a.split('/').collect();
    let y: Vec<&str> = b.split('/').collect();
    for i in 0.. {
        match (x.get(i), y.get(i)) {
            (Some(&"#"), _) | (_, Some(&"#")) => return true,
            (None, None) => return true,
            (Some(p), Some(q)) if *p == "+" || *q == "+" || p == q => {}
            _ => return false,
        }
    }
    unreachable!("the loop returns once a filter ends")
}

fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut scope = Scope::Anonymous;
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| Err(format!("ACL line {}: {why}", i + 1));
        match words.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            ["user", name] => scope = Scope::User((*name).to_string()),
            ["client", name] => scope = Scope::Client((*name).to_string()),
            [kind @ ("topic" | "pattern"), rest @ ..] => {
                let (access, filter) = match rest {
                    ["read", f] => (Access::Read, *f),
                    ["write", f] => (Access::Write, *f),
                    ["readwrite", f] => (Access::ReadWrite, *f),
                    [f] => (Access::ReadWrite, *f),
                    _ => return bad("expected `topic [read|write|readwrite] FILTER`"),
                };
                rules.push(Rule {
                    scope: if *kind == "pattern" {
                        Scope::Pattern
                    } else {
                        scope.clone()
                    },
                    access,
                    filter: filter.to_string(),
                });
            }
            _ => return bad("expected user, client, topic or pattern"),
        }
    }
    Ok(rules)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An ACL with every kind of rule, for the tests of its readers.
    pub(in crate::check) const ACL: &str = "\
topic read public/#
user alice
topic readwrite home/alice/#
user bob
topic write home/alice/inbox
pattern read devices/%c/#
";

    #[test]
    fn rules_read_the_acl_file_syntax() {
        let r = Rules::new(true, &[], Some(ACL)).unwrap();
        assert!(r.may_read(None, "x", "public/a"));
        assert!(!r.may_write(None, "x", "public/a"));
        assert!(r.may_write(Some("alice"), "x", "home/alice/a"));
        assert!(!r.may_read(Some("alice"), "x", "public/a"));
        assert!(r.may_read(Some("bob"), "dev-1", "devices/dev-1/cmd"));
        assert!(!r.may_read(Some("bob"), "dev-1", "devices/dev-2/cmd"));
        assert!(r.may_subscribe(Some("alice"), "x", "home/+/#"));
        assert!(r.may_subscribe(Some("alice"), "x", "#"));
        assert!(!r.may_subscribe(Some("alice"), "x", "public/#"));
        assert!(!r.may_subscribe(None, "x", "$SYS/#"));
        assert!(
            Rules::new(true, &[], Some("topic maybe a/b"))
                .unwrap_err()
                .contains("line 1")
        );
    }
}
