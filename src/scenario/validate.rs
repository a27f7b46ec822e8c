//! Checks a deserialized [`Scenario`] beyond what serde can: ids unique, referenced clients
//! exist, times inside the run, faults inside the faults phase, protocol-specific fields on
//! the right protocol, valid topics and filters, ordered ranges, at least one checker.
//! Problems are collected (all of them, not only the first) as `(field path, reason)`.
//! Also turns `[[fault]]` entries into [`PlannedFault`]s. Not here: line numbers (`error.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::client::ClientConfig;
use super::document::Scenario;
use super::duration::{MAX_DURATION, NEVER_EXPIRES, format_duration};
use super::fault::{FaultKind, FaultSource, FaultSpec, PlannedFault};
use super::random::{MAX_LOSS, MAX_PER_MINUTE, RandomFaults};
use super::topic::{check_topic_filter, check_topic_name, filter_matches};
use super::values::{BROKER, Node};
use crate::codec::varint;

/// Most clients in one scenario.
pub const MAX_CLIENTS: usize = 256;
/// Most messages in one workload.
pub const MAX_COUNT: u32 = 100_000;
/// Most scripted faults.
pub const MAX_FAULTS: usize = 1_000;
/// Longest client id.
pub const MAX_ID_LEN: usize = 64;
/// Largest packet an MQTT packet can be (remaining length limit plus fixed header).
pub const MQTT_MAX_PACKET: u32 = 268_435_460;

struct Checks<'a> {
    s: &'a Scenario,
    problems: Vec<(String, String)>,
}

fn d(x: Duration) -> String {
    format_duration(x)
}

impl Checks<'_> {
    fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.problems.push((field.into(), reason.into()));
    }

    fn client_ref(&mut self, field: &str, id: &str) -> bool {
        if self.s.client(id).is_some() {
            return true;
        }
        let known: Vec<&str> = self.s.clients.iter().map(|c| c.id.as_str()).collect();
        self.fail(
            field,
            format!("unknown client {id:?} (clients: {})", known.join(", ")),
        );
        false
    }

    fn node_ref(&mut self, field: &str, name: &str) -> Option<Node> {
        if name == BROKER {
            return Some(Node::Broker);
        }
        self.client_ref(field, name)
            .then(|| Node::Client(name.to_string()))
    }

    fn within_run(&mut self, field: &str, at: Duration) {
        if at >= self.s.duration {
            self.fail(
                field,
                format!(
                    "{} is not before the end of the run (duration {})",
                    d(at),
                    d(self.s.duration)
                ),
            );
        }
    }

    fn positive(&mut self, field: &str, x: Duration) -> bool {
        if x.is_zero() {
            self.fail(field, "must be longer than 0s");
            return false;
        }
        true
    }

    fn whole_seconds(&mut self, field: &str, x: Duration, max_secs: u64) {
        if x.subsec_nanos() != 0 {
            self.fail(
                field,
                format!(
                    "{} is not a whole number of seconds (MQTT counts this in seconds)",
                    d(x)
                ),
            );
        } else if x.as_secs() > max_secs {
            self.fail(
                field,
                format!("{} is more than the MQTT maximum of {max_secs}s", d(x)),
            );
        }
    }

    fn range<T: PartialOrd + std::fmt::Debug>(&mut self, field: &str, r: &[T; 2], min: T, max: T) {
        if r[0] > r[1] {
            self.fail(
                field,
                format!("range is reversed: {:?} is above {:?}", r[0], r[1]),
            );
        } else if r[0] < min || r[1] > max {
            self.fail(field, format!("range {r:?} is outside {min:?} to {max:?}"));
        }
    }

    fn duration_range(&mut self, field: &str, r: &[Duration; 2]) {
        if r[0] > r[1] {
            self.fail(
                field,
                format!("range is reversed: {} is above {}", d(r[0]), d(r[1])),
            );
        } else if r[0].is_zero() {
            self.fail(field, "the low end must be longer than 0s");
        }
    }

    fn probability(&mut self, field: &str, p: f64, max: f64) {
        if !(0.0..=max).contains(&p) {
            self.fail(
                field,
                format!("{p} is not a probability between 0 and {max}"),
            );
        }
    }
}

/// Validates `s`; on success returns its scripted faults in time order.
pub(crate) fn validate(s: &Scenario) -> Result<Vec<PlannedFault>, Vec<(String, String)>> {
    let mut c = Checks {
        s,
        problems: Vec::new(),
    };
    top_level(&mut c);
    broker(&mut c);
    for (i, client) in s.clients.iter().enumerate() {
        client_entry(&mut c, i, client);
    }
    workloads(&mut c);
    let scripted = faults(&mut c);
    if let Some(random) = &s.random {
        random_section(&mut c, random);
    }
    expect(&mut c);
    if c.problems.is_empty() {
        Ok(scripted)
    } else {
        Err(c.problems)
    }
}

fn top_level(c: &mut Checks<'_>) {
    let s = c.s;
    if s.name.trim().is_empty() {
        c.fail("name", "must not be empty");
    }
    if c.positive("duration", s.duration) && s.duration > MAX_DURATION {
        c.fail("duration", "more than one week");
    }
    if let Some(until) = s.faults_until
        && until > s.duration
    {
        c.fail(
            "faults_until",
            format!(
                "{} is after the end of the run (duration {})",
                d(until),
                d(s.duration)
            ),
        );
    }
    if let Some(settle) = s.settle {
        let end = s.faults_until() + settle;
        if end > s.duration {
            c.fail(
                "settle",
                format!(
                    "faults_until {} + settle {} = {} is after the end of the run (duration {})",
                    d(s.faults_until()),
                    d(settle),
                    d(end),
                    d(s.duration)
                ),
            );
        }
    }
    let lat = s.network.latency;
    if lat[0] > lat[1] {
        c.fail(
            "network.latency",
            format!("range is reversed: {} is above {}", d(lat[0]), d(lat[1])),
        );
    } else if lat[0] < Duration::from_millis(1) {
        c.fail("network.latency", "the simulator's latency is at least 1ms");
    }
    if s.clients.is_empty() {
        c.fail("client", "a scenario needs at least one [[client]]");
    }
    if s.clients.len() > MAX_CLIENTS {
        c.fail(
            "client",
            format!("{} clients, more than {MAX_CLIENTS}", s.clients.len()),
        );
    }
}

fn broker(c: &mut Checks<'_>) {
    let b = &c.s.broker;
    if b.max_inflight == 0 {
        c.fail("broker.max_inflight", "must be at least 1");
    }
    if !(64..=MQTT_MAX_PACKET).contains(&b.max_packet_size) {
        c.fail(
            "broker.max_packet_size",
            format!(
                "{} is outside 64 to {MQTT_MAX_PACKET} bytes",
                b.max_packet_size
            ),
        );
    }
    if b.max_sessions < c.s.clients.len() {
        c.fail(
            "broker.max_sessions",
            format!(
                "{} is fewer than the {} clients of the scenario",
                b.max_sessions,
                c.s.clients.len()
            ),
        );
    }
    if let Some(max) = b.max_session_expiry {
        c.whole_seconds("broker.max_session_expiry", max, u32::MAX as u64);
    }
    limits(c);
    auth(c);
}

/// The limits of `[broker]` that the broker core takes as they are.
fn limits(c: &mut Checks<'_>) {
    let b = &c.s.broker;
    for (field, value) in [
        ("max_connections", b.max_connections),
        ("max_subscriptions", b.max_subscriptions),
        ("max_topic_levels", b.max_topic_levels),
        ("max_queued_bytes", b.max_queued_bytes),
    ] {
        if value == 0 {
            c.fail(format!("broker.{field}"), "must be at least 1");
        }
    }
    if !(1..=65_535).contains(&b.max_topic_length) {
        c.fail(
            "broker.max_topic_length",
            format!("{} is outside 1 to 65535 bytes", b.max_topic_length),
        );
    }
    c.positive("broker.connect_timeout", b.connect_timeout);
}

/// `users`, `acl` and the clients' credentials.
fn auth(c: &mut Checks<'_>) {
    let s = c.s;
    for (i, u) in s.broker.users.iter().enumerate() {
        let field = format!("broker.users[{i}].name");
        if !crate::broker::auth::password::valid_user_name(&u.name) {
            c.fail(
                field,
                format!(
                    "{:?} is not a user name: not empty, no ':', no leading '#', no control characters or surrounding spaces",
                    u.name
                ),
            );
        } else if s.broker.users[..i].iter().any(|o| o.name == u.name) {
            c.fail(field, format!("user {:?} is listed twice", u.name));
        }
    }
    if let Some(text) = &s.broker.acl
        && let Err(e) = crate::broker::auth::Acl::parse("acl", text)
    {
        c.fail("broker.acl", format!("ACL line {}: {}", e.line, e.message));
    }
    for (i, client) in s.clients.iter().enumerate() {
        if client.password.is_some()
            && client.username.is_none()
            && !s.client_protocol(client).is_v5()
        {
            c.fail(
                format!("client[{i}].password"),
                "a 3.1.1 client sends a password only with a username [MQTT-3.1.2-22]",
            );
        }
        if client.username.is_some() && s.broker.users.is_empty() {
            c.fail(
                format!("client[{i}].username"),
                "the broker has no users: add [broker] users, or leave the username out",
            );
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
}

fn client_entry(c: &mut Checks<'_>, i: usize, client: &ClientConfig) {
    let s = c.s;
    let at = |f: &str| format!("client[{i}].{f}");
    if !valid_id(&client.id) {
        c.fail(
            at("id"),
            format!(
                "{:?} is not a client id: use 1 to {MAX_ID_LEN} letters, digits, '-', '_' or '.'",
                client.id
            ),
        );
    } else if client.id == BROKER {
        c.fail(
            at("id"),
            "\"broker\" names the broker node; pick another client id",
        );
    } else if s.clients[..i].iter().any(|o| o.id == client.id) {
        c.fail(at("id"), format!("client id {:?} is used twice", client.id));
    }
    let v5 = s.client_protocol(client).is_v5();
    if v5 && client.clean_session.is_some() {
        c.fail(
            at("clean_session"),
            "clean_session is MQTT 3.1.1; a 5.0 client uses clean_start",
        );
    }
    if !v5 && client.clean_start.is_some() {
        c.fail(
            at("clean_start"),
            "clean_start is MQTT 5.0; a 3.1.1 client uses clean_session",
        );
    }
    if let Some(expiry) = client.session_expiry {
        if !v5 {
            c.fail(
                at("session_expiry"),
                "session_expiry is MQTT 5.0; a 3.1.1 session is kept by clean_session = false",
            );
        } else if expiry != NEVER_EXPIRES {
            c.whole_seconds(&at("session_expiry"), expiry, u32::MAX as u64 - 1);
        }
    }
    c.whole_seconds(&at("keep_alive"), client.keep_alive, u16::MAX as u64);
    if let Some(will) = &client.will {
        if let Err(reason) = check_topic_name(&will.topic) {
            c.fail(at("will.topic"), reason);
        }
        if !will.delay.is_zero() {
            if !v5 {
                c.fail(at("will.delay"), "will delay is MQTT 5.0 only");
            } else {
                c.whole_seconds(&at("will.delay"), will.delay, u32::MAX as u64);
            }
        }
    }
    for (j, sub) in client.subscribe.iter().enumerate() {
        let f = |name: &str| format!("client[{i}].subscribe[{j}].{name}");
        if let Err(reason) = check_topic_filter(&sub.filter) {
            c.fail(f("filter"), reason);
        } else if client.subscribe[..j].iter().any(|o| o.filter == sub.filter) {
            c.fail(
                f("filter"),
                format!("filter {:?} is subscribed twice", sub.filter),
            );
        }
        if sub.filter.starts_with("$share/") {
            if !v5 {
                c.fail(
                    f("filter"),
                    "shared subscriptions ($share/<group>/<filter>) are MQTT 5.0 only",
                );
            } else if sub.no_local {
                c.fail(
                    f("no_local"),
                    "no_local on a shared subscription is a protocol error [MQTT-3.8.3-4]",
                );
            }
        }
        if !v5 && (sub.no_local || sub.retain_as_published || sub.retain_handling != 0) {
            c.fail(
                format!("client[{i}].subscribe[{j}]"),
                "no_local, retain_as_published and retain_handling are MQTT 5.0 only",
            );
        }
        if let Some(id) = sub.id {
            if !v5 {
                c.fail(f("id"), "subscription identifiers are MQTT 5.0 only");
            } else if !(1..=varint::MAX).contains(&id) {
                c.fail(
                    f("id"),
                    format!("must be 1 to {} (section 3.8.2.1.2), got {id}", varint::MAX),
                );
            }
        }
        if sub.retain_handling > 2 {
            c.fail(
                f("retain_handling"),
                format!("must be 0, 1 or 2, got {}", sub.retain_handling),
            );
        }
    }
    flow_control(c, i, client, v5);
    let r = &client.reconnect;
    if r.min_backoff < Duration::from_millis(1) {
        c.fail(at("reconnect.min_backoff"), "must be at least 1ms");
    } else if r.min_backoff > r.max_backoff {
        c.fail(
            at("reconnect.max_backoff"),
            format!(
                "{} is below min_backoff {}",
                d(r.max_backoff),
                d(r.min_backoff)
            ),
        );
    }
    c.within_run(&at("connect_at"), client.connect_at);
    if let Some(off) = client.disconnect_at {
        c.within_run(&at("disconnect_at"), off);
        if off <= client.connect_at {
            c.fail(
                at("disconnect_at"),
                format!(
                    "{} is not after connect_at {}",
                    d(off),
                    d(client.connect_at)
                ),
            );
        }
    }
    match (client.disconnect_at, client.reconnect_at) {
        (None, Some(_)) => c.fail(
            at("reconnect_at"),
            "reconnect_at needs a disconnect_at before it",
        ),
        (Some(off), Some(on)) => {
            c.within_run(&at("reconnect_at"), on);
            if on <= off {
                c.fail(
                    at("reconnect_at"),
                    format!("{} is not after disconnect_at {}", d(on), d(off)),
                );
            }
        }
        _ => {}
    }
}

/// The 5.0 connection limits and topic aliases of a `[[client]]`.
fn flow_control(c: &mut Checks<'_>, i: usize, client: &ClientConfig, v5: bool) {
    let at = |f: &str| format!("client[{i}].{f}");
    let set = [
        ("receive_maximum", client.receive_maximum.is_some()),
        ("max_packet_size", client.max_packet_size.is_some()),
        ("topic_alias_maximum", client.topic_alias_maximum > 0),
        ("topic_aliases", client.topic_aliases > 0),
    ];
    if !v5 {
        for (field, given) in set {
            if given {
                c.fail(at(field), format!("{field} is MQTT 5.0 only"));
            }
        }
        return;
    }
    if client.receive_maximum == Some(0) {
        c.fail(
            at("receive_maximum"),
            "must be between 1 and 65535 (0 is a protocol error)",
        );
    }
    if let Some(max) = client.max_packet_size
        && !(64..=MQTT_MAX_PACKET).contains(&max)
    {
        c.fail(
            at("max_packet_size"),
            format!("must be between 64 and {MQTT_MAX_PACKET} bytes, got {max}"),
        );
    }
}

fn workloads(c: &mut Checks<'_>) {
    let s = c.s;
    for (i, w) in s.workloads.iter().enumerate() {
        let at = |f: &str| format!("workload[{i}].{f}");
        c.client_ref(&at("client"), &w.client);
        if let Err(reason) = check_topic_name(&w.topic) {
            c.fail(at("topic"), reason);
        }
        if w.count > MAX_COUNT {
            c.fail(
                at("count"),
                format!("{} messages, more than {MAX_COUNT}", w.count),
            );
        }
        match (w.every, w.rate) {
            (Some(_), Some(_)) => c.fail(at("rate"), "give either every or rate, not both"),
            (Some(every), None) => {
                if every < Duration::from_millis(1) {
                    c.fail(at("every"), "must be at least 1ms");
                }
            }
            (None, Some(rate)) => {
                if !(rate > 0.0 && rate <= 1000.0) {
                    c.fail(
                        at("rate"),
                        format!("{rate} is not a rate above 0 and at most 1000 per second"),
                    );
                }
            }
            (None, None) => {}
        }
        if w.payload.is_some() && w.size.is_some() {
            c.fail(at("payload"), "give either payload or size, not both");
        }
        // An unknown client is reported above; judge its 5.0 fields as if it spoke 5.0.
        let v5 = s
            .clients
            .iter()
            .find(|cl| cl.id == w.client)
            .is_none_or(|cl| s.client_protocol(cl).is_v5());
        if let Some(expiry) = w.message_expiry {
            if !v5 {
                c.fail(at("message_expiry"), "message expiry is MQTT 5.0 only");
            } else if expiry < Duration::from_secs(1) {
                c.fail(at("message_expiry"), "must be at least 1s");
            } else {
                c.whole_seconds(&at("message_expiry"), expiry, u32::MAX as u64);
            }
        }
        if let Some(props) = &w.properties {
            if !v5 {
                c.fail(at("properties"), "message properties are MQTT 5.0 only");
            }
            for (field, reason) in props.problems() {
                c.fail(at(&format!("properties.{field}")), reason);
            }
        }
        let props_len = w.properties.as_ref().map_or(0, |p| p.wire_len());
        let payload_len = w
            .payload
            .as_ref()
            .map_or(w.size(), |p| p.len() as u32)
            .saturating_add(props_len);
        let room = s
            .broker
            .max_packet_size
            .saturating_sub(w.topic.len() as u32 + 16);
        let topic_beyond = w.topic.len() > s.broker.max_topic_length
            || w.topic.split('/').count() > s.broker.max_topic_levels;
        if w.beyond_limits {
            if payload_len <= room && !topic_beyond {
                c.fail(
                    at("beyond_limits"),
                    "the workload breaks none of max_packet_size, max_topic_length and max_topic_levels",
                );
            } else if v5 && !topic_beyond {
                c.fail(
                    at("beyond_limits"),
                    "a 5.0 client learns max_packet_size from CONNACK and refuses to send the packet, so it never reaches the broker; break max_topic_length or max_topic_levels, or use a 3.1.1 client",
                );
            }
            if w.qos.as_u8() != 0 {
                c.fail(
                    at("qos"),
                    "a beyond_limits workload is QoS 0: a refused QoS 1 or 2 message would be sent again after every reconnect",
                );
            }
        } else if topic_beyond {
            c.fail(
                at("topic"),
                format!(
                    "{:?} is beyond broker.max_topic_length {} or max_topic_levels {} (set beyond_limits = true to send it anyway)",
                    w.topic, s.broker.max_topic_length, s.broker.max_topic_levels
                ),
            );
        }
        if payload_len > room && !w.beyond_limits {
            c.fail(
                if w.payload.is_some() {
                    at("payload")
                } else {
                    at("size")
                },
                format!(
                    "{payload_len}-byte payloads do not fit in broker.max_packet_size {}",
                    s.broker.max_packet_size
                ),
            );
        }
        c.within_run(&at("start"), w.start);
        if w.count > 0 && w.start < s.duration {
            let last = w.last_due();
            if last >= s.duration {
                c.fail(
                    at("count"),
                    format!(
                        "the last of {} messages is due at {}, not before the end of the run ({})",
                        w.count,
                        d(last),
                        d(s.duration)
                    ),
                );
            }
        }
    }
}

fn faults(c: &mut Checks<'_>) -> Vec<PlannedFault> {
    let s = c.s;
    if s.faults.len() > MAX_FAULTS {
        c.fail(
            "fault",
            format!("{} faults, more than {MAX_FAULTS}", s.faults.len()),
        );
    }
    let until = s.faults_until();
    let mut planned = Vec::new();
    for (i, spec) in s.faults.iter().enumerate() {
        let base = format!("fault[{i}]");
        if spec.at >= until {
            c.fail(
                format!("{base}.at"),
                format!(
                    "{} is not before faults_until {}: faults stop there",
                    d(spec.at),
                    d(until)
                ),
            );
        }
        let Some((name, kind)) = fault_kind(c, &base, spec) else {
            continue;
        };
        match kind.lasts() {
            Some(lasts) if spec.at < until && spec.at + lasts > until => c.fail(
                format!("{base}.{name}"),
                format!(
                    "heals at {} ({} + {}), after faults_until {}: every fault must heal by then",
                    d(spec.at + lasts),
                    d(spec.at),
                    d(lasts),
                    d(until)
                ),
            ),
            _ => {}
        }
        planned.push(PlannedFault {
            at: spec.at,
            kind,
            source: FaultSource::Script(i),
        });
    }
    planned.sort_by_key(|f| f.at);
    planned
}

/// Resolves the one kind field of a `[[fault]]`; records problems and returns `None` if it
/// cannot.
fn fault_kind(c: &mut Checks<'_>, base: &str, f: &FaultSpec) -> Option<(&'static str, FaultKind)> {
    let given: Vec<&'static str> = [
        ("cut", f.cut.is_some()),
        ("blackhole", f.blackhole.is_some()),
        ("delay", f.delay.is_some()),
        ("split_writes", f.split_writes.is_some()),
        ("partition", f.partition.is_some()),
        ("crash", f.crash.is_some()),
        ("power_off", f.power_off.is_some()),
        ("restart", f.restart.is_some()),
        ("crash_broker", f.crash_broker.is_some()),
        ("pause", f.pause.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let name = match given.as_slice() {
        [one] => *one,
        [] => {
            c.fail(
                base,
                "a fault needs one kind: cut, blackhole, delay, split_writes, partition, crash, power_off, restart, crash_broker or pause",
            );
            return None;
        }
        many => {
            c.fail(
                base,
                format!("one fault per [[fault]] entry, found {}", many.join(", ")),
            );
            return None;
        }
    };
    if f.restart_after.is_some() && !matches!(name, "crash" | "power_off") {
        c.fail(
            format!("{base}.restart_after"),
            "restart_after goes with crash or power_off (crash_broker has its own)",
        );
    }
    let field = format!("{base}.{name}");
    let before = c.problems.len();
    let kind = match name {
        "cut" => {
            let client = f.cut.clone().expect("given");
            c.client_ref(&field, &client);
            FaultKind::Cut { client }
        }
        "blackhole" => {
            let b = f.blackhole.as_ref().expect("given");
            c.client_ref(&format!("{field}.client"), &b.client);
            c.positive(&format!("{field}.for"), b.duration);
            FaultKind::Blackhole {
                client: b.client.clone(),
                duration: b.duration,
            }
        }
        "delay" => {
            let b = f.delay.as_ref().expect("given");
            c.client_ref(&format!("{field}.client"), &b.client);
            c.positive(&format!("{field}.extra"), b.extra);
            c.positive(&format!("{field}.for"), b.duration);
            FaultKind::Delay {
                client: b.client.clone(),
                extra: b.extra,
                duration: b.duration,
            }
        }
        "split_writes" => {
            let b = f.split_writes.as_ref().expect("given");
            c.client_ref(&format!("{field}.client"), &b.client);
            if b.max_fragment == 0 {
                c.fail(format!("{field}.max_fragment"), "must be at least 1 byte");
            }
            c.positive(&format!("{field}.for"), b.duration);
            FaultKind::SplitWrites {
                client: b.client.clone(),
                max_fragment: b.max_fragment,
                duration: b.duration,
            }
        }
        "partition" => {
            let p = f.partition.as_ref().expect("given");
            c.positive(&format!("{field}.for"), p.duration);
            let between = format!("{field}.between");
            if p.between.len() != 2 {
                c.fail(
                    &between,
                    format!(
                        "names two nodes, like [\"sensor-1\", \"broker\"]; got {}",
                        p.between.len()
                    ),
                );
                return None;
            }
            let a = c.node_ref(&between, &p.between[0]);
            let b = c.node_ref(&between, &p.between[1]);
            let (Some(from), Some(to)) = (a, b) else {
                return None;
            };
            if from == to {
                c.fail(&between, "names the same node twice");
            } else if from != Node::Broker && to != Node::Broker {
                c.fail(
                    &between,
                    "clients only talk to the broker: one side must be \"broker\"",
                );
            }
            FaultKind::Partition {
                from,
                to,
                oneway: p.oneway,
                duration: p.duration,
            }
        }
        "crash" | "power_off" => {
            let client = if name == "crash" {
                &f.crash
            } else {
                &f.power_off
            }
            .clone()
            .expect("given");
            c.client_ref(&field, &client);
            if let Some(r) = f.restart_after {
                c.positive(&format!("{base}.restart_after"), r);
            }
            if name == "crash" {
                FaultKind::Crash {
                    client,
                    restart_after: f.restart_after,
                }
            } else {
                FaultKind::PowerOff {
                    client,
                    restart_after: f.restart_after,
                }
            }
        }
        "restart" => {
            let client = f.restart.clone().expect("given");
            c.client_ref(&field, &client);
            FaultKind::Restart { client }
        }
        "crash_broker" => {
            let b = f.crash_broker.as_ref().expect("given");
            c.positive(&format!("{field}.restart_after"), b.restart_after);
            FaultKind::CrashBroker {
                restart_after: b.restart_after,
            }
        }
        "pause" => {
            let p = f.pause.as_ref().expect("given");
            let node = c.node_ref(&format!("{field}.node"), &p.node)?;
            c.positive(&format!("{field}.for"), p.duration);
            FaultKind::Pause {
                node,
                duration: p.duration,
            }
        }
        other => unreachable!("fault kind {other} is listed above"),
    };
    (c.problems.len() == before).then_some((name, kind))
}

fn random_section(c: &mut Checks<'_>, r: &RandomFaults) {
    let until = c.s.faults_until();
    if let Some(targets) = &r.targets {
        if targets.is_empty() {
            c.fail(
                "random.targets",
                "lists no client: leave it out to target every client",
            );
        }
        for (i, t) in targets.iter().enumerate() {
            c.client_ref(&format!("random.targets[{i}]"), t);
        }
    }
    if let Some(lat) = &r.latency {
        c.duration_range("random.latency", lat);
    }
    if let Some(loss) = &r.loss {
        c.range("random.loss", loss, 0.0, MAX_LOSS);
    }
    let rates = [
        ("cuts_per_minute", &r.cuts_per_minute),
        ("blackholes_per_minute", &r.blackholes_per_minute),
        ("delays_per_minute", &r.delays_per_minute),
        ("partitions_per_minute", &r.partitions_per_minute),
        ("crashes_per_minute", &r.crashes_per_minute),
        ("power_offs_per_minute", &r.power_offs_per_minute),
        ("broker_crashes_per_minute", &r.broker_crashes_per_minute),
        ("pauses_per_minute", &r.pauses_per_minute),
    ];
    for (name, rate) in rates {
        if let Some(rate) = rate {
            c.range(&format!("random.{name}"), rate, 0.0, MAX_PER_MINUTE);
        }
    }
    let spans = [
        ("blackhole_for", &r.blackhole_for),
        ("delay_extra", &r.delay_extra),
        ("delay_for", &r.delay_for),
        ("partition_for", &r.partition_for),
        ("client_restart_after", &r.client_restart_after),
        ("broker_restart_after", &r.broker_restart_after),
        ("pause_for", &r.pause_for),
    ];
    for (name, span) in spans {
        if let Some(span) = span {
            let field = format!("random.{name}");
            c.duration_range(&field, span);
            if name != "delay_extra" && span[0] >= until {
                c.fail(
                    field,
                    format!("{} is not shorter than the faults phase ({}): no such fault could heal in time", d(span[0]), d(until)),
                );
            }
        }
    }
    if let Some(p) = r.partition_oneway {
        c.probability("random.partition_oneway", p, 1.0);
    }
    if let Some(p) = r.split_writes {
        c.probability("random.split_writes", p, 1.0);
    }
    if let Some(frag) = &r.split_fragment {
        c.range("random.split_fragment", frag, 1, u32::MAX);
    }
}

fn expect(c: &mut Checks<'_>) {
    let s = c.s;
    let e = &s.expect;
    if e.checkers.is_empty() {
        c.fail(
            "expect.checkers",
            format!(
                "name at least one checker: {}",
                crate::check::registry::names()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, checker) in e.checkers.iter().enumerate() {
        if !seen.insert(*checker) {
            c.fail(
                format!("expect.checkers[{i}]"),
                format!("{:?} is listed twice", checker.name()),
            );
        }
    }
    for (i, w) in e.will_reaches.iter().enumerate() {
        let base = format!("expect.will_reaches[{i}]");
        let client_ok = c.client_ref(&format!("{base}.client"), &w.client);
        let sub_ok = c.client_ref(&format!("{base}.subscriber"), &w.subscriber);
        if !(client_ok && sub_ok) {
            continue;
        }
        let Some(will) = s.client(&w.client).and_then(|cl| cl.will.as_ref()) else {
            c.fail(
                format!("{base}.client"),
                format!("client {:?} has no will", w.client),
            );
            continue;
        };
        let subscriber = s.client(&w.subscriber).expect("checked above");
        if !subscriber.subscribe.iter().any(|sub| {
            check_topic_filter(&sub.filter).is_ok() && filter_matches(&sub.filter, &will.topic)
        }) {
            c.fail(
                format!("{base}.subscriber"),
                format!(
                    "{:?} has no subscription matching the will topic {:?}",
                    w.subscriber, will.topic
                ),
            );
        }
    }
    for (i, id) in e.no_will.iter().enumerate() {
        let field = format!("expect.no_will[{i}]");
        if c.client_ref(&field, id) && s.client(id).is_some_and(|cl| cl.will.is_none()) {
            c.fail(
                field,
                format!("client {id:?} has no will, so this says nothing"),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (i, class) in e.no_loss.iter().enumerate() {
        if !seen.insert(*class) {
            c.fail(format!("expect.no_loss[{i}]"), "listed twice");
        }
    }
    for (i, id) in e.overflow.iter().enumerate() {
        let field = format!("expect.overflow[{i}]");
        if !c.client_ref(&field, id) {
            continue;
        }
        if e.overflow[..i].contains(id) {
            c.fail(&field, format!("client {id:?} is listed twice"));
            continue;
        }
        let client = s.client(id).expect("checked above");
        if client.disconnect_at.is_none() || client.reconnect_at.is_none() {
            c.fail(
                &field,
                format!("client {id:?} needs disconnect_at and reconnect_at: its queue overflows while it is offline"),
            );
        }
        if !client.persistent_session(s.protocol) {
            c.fail(
                &field,
                format!("client {id:?} needs a persistent session, or nothing is queued for it"),
            );
        }
        if !client.subscribe.iter().any(|sub| sub.qos.as_u8() >= 1) {
            c.fail(
                &field,
                format!(
                    "client {id:?} has no QoS 1 or 2 subscription: QoS 0 messages are not judged"
                ),
            );
        }
    }
    for (i, r) in e.receives.iter().enumerate() {
        let base = format!("expect.receives[{i}]");
        c.client_ref(&format!("{base}.client"), &r.client);
        if let Some(filter) = &r.filter
            && let Err(reason) = check_topic_filter(filter)
        {
            c.fail(format!("{base}.filter"), reason);
        }
        if r.at_least == 0 {
            c.fail(format!("{base}.at_least"), "must be at least 1");
        }
        let filter = r.filter.as_deref().unwrap_or("#");
        if check_topic_filter(filter).is_ok() {
            let published: u64 = s
                .workloads
                .iter()
                .filter(|w| filter_matches(filter, &w.topic))
                .map(|w| u64::from(w.count))
                .sum();
            let wills = s
                .clients
                .iter()
                .filter_map(|cl| cl.will.as_ref())
                .filter(|w| filter_matches(filter, &w.topic))
                .count();
            if published == 0 && wills == 0 {
                c.fail(
                    format!("{base}.filter"),
                    format!("no workload or will publishes on a topic matching {filter:?}"),
                );
            } else if wills == 0 && u64::from(r.at_least) > published {
                c.fail(
                    format!("{base}.at_least"),
                    format!("{} is more than the {published} messages published on topics matching {filter:?}", r.at_least),
                );
            }
        }
    }
}
