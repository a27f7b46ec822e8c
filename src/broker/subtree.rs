//! The subscription tree: one node per filter level (children in a `BTreeMap`), each node
//! holding the clients subscribed with the filter that ends there. Matching a topic walks the
//! exact level, `+` and `#` children; a topic whose first level starts with `$` is not matched by
//! a leading wildcard.
//!
//! A shared subscription `$share/group/filter` is kept at the node of `filter`, under its group;
//! matching reports each matching shared subscription with all its members, and `shared.rs`
//! picks one.
//!
//! The tree is an index: the sessions own their subscriptions, and the tree is rebuilt from them
//! on restore. Not here: validation (`topic.rs`), choosing a shared subscription's member.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::QoS;
use crate::codec::topic::shared_subscription;

use super::session::Grant;

#[derive(Debug, Default, Clone)]
struct Node {
    children: BTreeMap<String, Node>,
    /// client id → the grant of its subscription with the filter ending here. The ids are
    /// reference-counted, so a match hands them out without copying.
    clients: BTreeMap<Arc<str>, Grant>,
    /// group → client id → grant, for `$share/group/<the filter ending here>`.
    shared: BTreeMap<String, BTreeMap<String, Grant>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.clients.is_empty() && self.shared.is_empty()
    }
}

/// A shared subscription matching a topic, with every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedMatch {
    /// `$share/group/filter`.
    pub name: String,
    /// Client id → grant, in client id order.
    pub members: BTreeMap<String, Grant>,
}

/// What one client gets for one topic: the union of its matching subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Match {
    /// The highest granted QoS among the matching subscriptions ([MQTT-3.3.5-1]).
    pub qos: QoS,
    /// True if any matching subscription asks for retain-as-published (5.0).
    pub retain_as_published: bool,
    /// The subscription identifiers of the matching subscriptions (5.0), ascending.
    pub subscription_ids: Vec<u32>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct SubTree {
    root: Node,
}

impl SubTree {
    /// Adds or replaces `client`'s subscription to `filter`.
    pub fn insert(&mut self, filter: &str, client: &str, grant: Grant) {
        let (group, inner) = match shared_subscription(filter) {
            Some((g, f)) => (Some(g), f),
            None => (None, filter),
        };
        let mut node = &mut self.root;
        for level in inner.split('/') {
            node = node.children.entry(level.to_owned()).or_default();
        }
        match group {
            Some(g) => node
                .shared
                .entry(g.to_owned())
                .or_default()
                .insert(client.to_owned(), grant),
            None => node.clients.insert(client.into(), grant),
        };
    }

    /// Removes `client`'s subscription to `filter`, pruning empty nodes. True if it existed.
    pub fn remove(&mut self, filter: &str, client: &str) -> bool {
        let (group, inner) = match shared_subscription(filter) {
            Some((g, f)) => (Some(g), f),
            None => (None, filter),
        };
        let levels: Vec<&str> = inner.split('/').collect();
        remove_at(&mut self.root, &levels, group, client)
    }

    /// Every shared subscription matching `topic`, in the order of the walk (deterministic).
    pub fn shared_matches(&self, topic: &str) -> Vec<SharedMatch> {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut out = Vec::new();
        let dollar = topic.starts_with('$');
        walk_shared(&self.root, &levels, 0, dollar, &mut Vec::new(), &mut out);
        out
    }

    /// The members of the shared subscription `name` (`$share/group/filter`).
    pub fn share_members(&self, name: &str) -> BTreeMap<String, Grant> {
        let Some((group, inner)) = shared_subscription(name) else {
            return BTreeMap::new();
        };
        let mut node = &self.root;
        for level in inner.split('/') {
            match node.children.get(level) {
                Some(n) => node = n,
                None => return BTreeMap::new(),
            }
        }
        node.shared.get(group).cloned().unwrap_or_default()
    }

    /// Every client with a subscription matching `topic`, one entry per client, in client id
    /// order. Subscriptions with no-local are skipped for the publishing client `origin`.
    pub fn matches(&self, topic: &str, origin: Option<&str>) -> Vec<(Arc<str>, Match)> {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut nodes = Vec::new();
        let dollar = topic.starts_with('$');
        walk(&self.root, &levels, 0, dollar, &mut nodes);
        let kept = |(client, grant): (&Arc<str>, &Grant)| {
            (!(grant.options.no_local && origin == Some(&**client))).then(|| {
                let m = Match {
                    qos: grant.options.qos,
                    retain_as_published: grant.options.retain_as_published,
                    subscription_ids: grant.id.into_iter().collect(),
                };
                (client.clone(), m)
            })
        };
        if let [node] = nodes[..] {
            // One filter matched: its clients are already one entry each, in order.
            return node.clients.iter().filter_map(kept).collect();
        }
        let mut out: BTreeMap<Arc<str>, Match> = BTreeMap::new();
        for (client, new) in nodes.iter().flat_map(|n| n.clients.iter().filter_map(kept)) {
            match out.get_mut(&client) {
                Some(m) => m.merge(new),
                None => {
                    out.insert(client, new);
                }
            }
        }
        out.into_iter().collect()
    }
}

impl Match {
    /// The union with another matching subscription of the same client ([MQTT-3.3.5-1]).
    fn merge(&mut self, other: Match) {
        self.qos = self.qos.max(other.qos);
        self.retain_as_published |= other.retain_as_published;
        for id in other.subscription_ids {
            if let Err(at) = self.subscription_ids.binary_search(&id) {
                self.subscription_ids.insert(at, id);
            }
        }
    }
}

fn remove_at(node: &mut Node, levels: &[&str], group: Option<&str>, client: &str) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        let Some(g) = group else {
            return node.clients.remove(client).is_some();
        };
        let Some(members) = node.shared.get_mut(g) else {
            return false;
        };
        let removed = members.remove(client).is_some();
        if members.is_empty() {
            node.shared.remove(g);
        }
        return removed;
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_at(child, rest, group, client);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

/// The nodes whose filter matches the topic `levels` and that hold subscribers. Depth is
/// bounded by the topic's level count, itself bounded by `max_topic_levels`.
fn walk<'a>(node: &'a Node, levels: &[&str], depth: usize, dollar: bool, out: &mut Vec<&'a Node>) {
    let wild_ok = !(dollar && depth == 0);
    if wild_ok
        && let Some(hash) = node.children.get("#")
        && !hash.clients.is_empty()
    {
        // `#` also matches the parent level: "a/#" matches "a" ([MQTT-4.7.1-2]).
        out.push(hash);
    }
    let Some((first, rest)) = levels.split_first() else {
        if !node.clients.is_empty() {
            out.push(node);
        }
        return;
    };
    if let Some(child) = node.children.get(*first) {
        walk(child, rest, depth + 1, dollar, out);
    }
    if wild_ok
        && *first != "+"
        && let Some(child) = node.children.get("+")
    {
        walk(child, rest, depth + 1, dollar, out);
    }
}

fn collect_shared(node: &Node, path: &[&str], out: &mut Vec<SharedMatch>) {
    for (group, members) in &node.shared {
        out.push(SharedMatch {
            name: format!("$share/{group}/{}", path.join("/")),
            members: members.clone(),
        });
    }
}

/// As `walk`, for shared subscriptions; `path` is the filter walked so far.
fn walk_shared<'a>(
    node: &'a Node,
    levels: &[&str],
    depth: usize,
    dollar: bool,
    path: &mut Vec<&'a str>,
    out: &mut Vec<SharedMatch>,
) {
    let wild_ok = !(dollar && depth == 0);
    if wild_ok && let Some(hash) = node.children.get("#") {
        path.push("#");
        collect_shared(hash, path, out);
        path.pop();
    }
    let Some((first, rest)) = levels.split_first() else {
        collect_shared(node, path, out);
        return;
    };
    if let Some((key, child)) = node.children.get_key_value(*first) {
        path.push(key);
        walk_shared(child, rest, depth + 1, dollar, path, out);
        path.pop();
    }
    if wild_ok
        && *first != "+"
        && let Some(child) = node.children.get("+")
    {
        path.push("+");
        walk_shared(child, rest, depth + 1, dollar, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SubscriptionOptions;
    use crate::codec::topic;

    fn grant(qos: QoS) -> Grant {
        Grant {
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
            id: None,
        }
    }

    fn clients(t: &SubTree, topic: &str) -> Vec<String> {
        t.matches(topic, None)
            .into_iter()
            .map(|(c, _)| c.to_string())
            .collect()
    }

    #[test]
    fn plus_and_hash_match_like_the_reference_matcher() {
        let filters = [
            "a/b", "a/+", "a/#", "+/b", "#", "+", "a/+/c", "$SYS/#", "+/+/+", "/a", "a//b",
        ];
        let topics = [
            "a/b", "a", "a/x/c", "b", "/a", "$SYS/x", "$SYS", "a//b", "x/y/z", "a/b/c/d",
        ];
        let mut t = SubTree::default();
        for (i, f) in filters.iter().enumerate() {
            t.insert(f, &format!("c{i:02}"), grant(QoS::AtMostOnce));
        }
        for topic_name in topics {
            let expected: Vec<String> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| topic::matches(f, topic_name))
                .map(|(i, _)| format!("c{i:02}"))
                .collect();
            assert_eq!(clients(&t, topic_name), expected, "topic {topic_name}");
        }
    }

    /// [MQTT-4.7.2-1] Filters starting with a wildcard do not match topics starting with `$`.
    #[test]
    fn mqtt_4_7_2_1_leading_wildcards_skip_dollar_topics() {
        let mut t = SubTree::default();
        t.insert("#", "all", grant(QoS::AtMostOnce));
        t.insert("+/info", "plus", grant(QoS::AtMostOnce));
        t.insert("$SYS/#", "sys", grant(QoS::AtMostOnce));
        assert_eq!(clients(&t, "$SYS/info"), vec!["sys".to_string()]);
        assert_eq!(
            clients(&t, "x/info"),
            vec!["all".to_string(), "plus".to_string()]
        );
    }

    /// [MQTT-3.3.5-1] Overlapping subscriptions give one match at the highest QoS.
    #[test]
    fn mqtt_3_3_5_1_overlapping_subscriptions_merge_at_max_qos() {
        let mut t = SubTree::default();
        t.insert("a/#", "c", grant(QoS::AtLeastOnce));
        t.insert("a/+", "c", grant(QoS::ExactlyOnce));
        t.insert("a/b", "c", grant(QoS::AtMostOnce));
        let m = t.matches("a/b", None);
        assert_eq!(m.len(), 1);
        assert_eq!(&*m[0].0, "c");
        assert_eq!(m[0].1.qos, QoS::ExactlyOnce);
    }

    /// 5.0 [MQTT-3.3.4-3]: overlapping subscriptions give every subscription identifier, once
    /// each and ascending, and retain as published if any of them asks for it.
    #[test]
    fn mqtt5_3_3_4_3_overlapping_subscriptions_carry_every_identifier() {
        let mut t = SubTree::default();
        let with = |qos, id, rap| {
            let mut g = grant(qos);
            g.id = id;
            g.options.retain_as_published = rap;
            g
        };
        t.insert("a/#", "c", with(QoS::AtMostOnce, Some(7), false));
        t.insert("a/+", "c", with(QoS::AtLeastOnce, Some(3), true));
        t.insert("a/b", "c", with(QoS::AtMostOnce, Some(7), false));
        t.insert("a/b", "d", with(QoS::AtMostOnce, None, false));
        let m = t.matches("a/b", None);
        assert_eq!(m.len(), 2);
        assert_eq!((&*m[0].0, &m[0].1.subscription_ids), ("c", &vec![3, 7]));
        assert!(m[0].1.retain_as_published);
        assert_eq!(m[0].1.qos, QoS::AtLeastOnce);
        assert_eq!((&*m[1].0, m[1].1.subscription_ids.len()), ("d", 0));
        assert!(!m[1].1.retain_as_published);
        let single = t.matches("a/x", None);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].1.subscription_ids, vec![3, 7]);
    }

    #[test]
    fn remove_prunes_and_reports() {
        let mut t = SubTree::default();
        t.insert("a/b/c", "x", grant(QoS::AtMostOnce));
        t.insert("a/b", "y", grant(QoS::AtMostOnce));
        assert!(t.remove("a/b/c", "x"));
        assert!(!t.remove("a/b/c", "x"));
        assert!(!t.remove("a/b", "x"));
        assert!(clients(&t, "a/b/c").is_empty());
        assert_eq!(clients(&t, "a/b"), vec!["y".to_string()]);
        assert!(t.remove("a/b", "y"));
        assert!(t.root.is_empty());
    }

    /// 5.0 no-local: the publisher's own subscription is skipped ([MQTT-3.8.3-3]).
    #[test]
    fn mqtt5_3_8_3_3_no_local_skips_the_publisher() {
        let mut t = SubTree::default();
        let mut g = grant(QoS::AtLeastOnce);
        g.options.no_local = true;
        t.insert("a", "me", g);
        t.insert("a", "other", grant(QoS::AtLeastOnce));
        assert_eq!(
            t.matches("a", Some("me"))
                .into_iter()
                .map(|(c, _)| c.to_string())
                .collect::<Vec<_>>(),
            vec!["other".to_string()]
        );
        assert_eq!(t.matches("a", Some("other")).len(), 2);
    }
}
