//! Client templates: a `[[client]]` entry with `count` stands for `count` clients, its `id` and
//! every string in it written with `{n}`, replaced by 1 to `count`. Some of its fields
//! ([`VARIABLE_FIELDS`]) may be ranges `[low, high]` instead of values, drawn per instance and
//! per seed. Entries elsewhere that name a template client (`client = "sensor-{n}"` in a
//! `[[workload]]`, `cut = "sensor-{n}"`, `[expect] no_will = ["sensor-{n}"]`, ...) stand for
//! one entry per instance, with `{n}` replaced everywhere in them.
//!
//! Templates are expanded on the TOML tree, before the sections are read ([`expand`]), so every
//! other check sees concrete clients; a range is read at its low end, its high end is read and
//! checked too, and problems of instances are reported once, on their template
//! ([`Expansion::place`]). Each seed then draws the ranged values ([`Expansion::draws`]) from
//! its own stream per instance and field, and [`Scenario::drawn`](super::Scenario::drawn) is the scenario a run uses.
//! Not here: the checks of a client (`client.rs`), which run on the instances.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::Rng;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::client::ClientConfig;
use super::random::stream;
use super::values::MAX_CLIENTS;
use crate::config::duration::{NEVER_EXPIRES, format_duration};
use crate::config::file::{Document, Problem};

/// The placeholder a template's strings carry, replaced by the instance's number.
pub const PLACEHOLDER: &str = "{n}";

/// Most entries one array of the file may expand to (`[[workload]]`, `[[fault]]`, ...).
pub const MAX_EXPANDED: usize = 100_000;

/// The fields of a template that may be ranges `[low, high]`, as written in the file.
pub const VARIABLE_FIELDS: [&str; 13] = [
    "keep_alive",
    "session_expiry",
    "connect_at",
    "disconnect_at",
    "reconnect_at",
    "receive_maximum",
    "max_inflight",
    "max_packet_size",
    "topic_alias_maximum",
    "topic_aliases",
    "will.delay",
    "reconnect.min_backoff",
    "reconnect.max_backoff",
];

/// Pairs of variable fields where the first must come before the second: besides both ends
/// of every range, each pair is checked with the first at its high end and the second at its
/// low end.
const ORDERED: [(&str, &str); 3] = [
    ("connect_at", "disconnect_at"),
    ("disconnect_at", "reconnect_at"),
    ("reconnect.min_backoff", "reconnect.max_backoff"),
];

/// The arrays whose entries may name a template client, by field path.
const REFERRING: [&str; 7] = [
    "workload",
    "fault",
    "expect.will_reaches",
    "expect.receives",
    "expect.no_will",
    "expect.overflow",
    "random.targets",
];

/// One value a template field takes: a duration or a whole number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Value {
    Duration(Duration),
    Number(u32),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Duration(d) => f.write_str(&format_duration(*d)),
            Value::Number(n) => write!(f, "{n}"),
        }
    }
}

/// How a field's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Grain {
    /// Whole seconds (MQTT counts the field in seconds).
    Seconds,
    /// Whole milliseconds (microseconds when an end of the range is not a whole millisecond).
    Millis,
    /// Whole numbers.
    Number,
}

/// A field that may vary: how to read it from a client and write it into one.
struct Variable {
    field: &'static str,
    grain: Grain,
    get: fn(&ClientConfig) -> Option<Value>,
    set: fn(&mut ClientConfig, Value),
}

fn dur(v: Value) -> Duration {
    match v {
        Value::Duration(d) => d,
        Value::Number(n) => Duration::from_secs(n.into()),
    }
}

fn num(v: Value) -> u32 {
    match v {
        Value::Number(n) => n,
        Value::Duration(d) => u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
    }
}

fn num16(v: Value) -> u16 {
    u16::try_from(num(v)).unwrap_or(u16::MAX)
}

fn variables() -> [Variable; 13] {
    use Grain::*;
    use Value::Duration as d;
    fn n(x: u16) -> Value {
        Value::Number(x.into())
    }
    [
        Variable {
            field: "keep_alive",
            grain: Seconds,
            get: |c| Some(d(c.keep_alive)),
            set: |c, v| c.keep_alive = dur(v),
        },
        Variable {
            field: "session_expiry",
            grain: Seconds,
            get: |c| c.session_expiry.map(Value::Duration),
            set: |c, v| c.session_expiry = Some(dur(v)),
        },
        Variable {
            field: "connect_at",
            grain: Millis,
            get: |c| Some(d(c.connect_at)),
            set: |c, v| c.connect_at = dur(v),
        },
        Variable {
            field: "disconnect_at",
            grain: Millis,
            get: |c| c.disconnect_at.map(Value::Duration),
            set: |c, v| c.disconnect_at = Some(dur(v)),
        },
        Variable {
            field: "reconnect_at",
            grain: Millis,
            get: |c| c.reconnect_at.map(Value::Duration),
            set: |c, v| c.reconnect_at = Some(dur(v)),
        },
        Variable {
            field: "receive_maximum",
            grain: Number,
            get: |c| c.receive_maximum.map(|x| Value::Number(x.into())),
            set: |c, v| c.receive_maximum = Some(num16(v)),
        },
        Variable {
            field: "max_inflight",
            grain: Number,
            get: |c| c.max_inflight.map(|x| Value::Number(x.into())),
            set: |c, v| c.max_inflight = Some(num16(v)),
        },
        Variable {
            field: "max_packet_size",
            grain: Number,
            get: |c| c.max_packet_size.map(Value::Number),
            set: |c, v| c.max_packet_size = Some(num(v)),
        },
        Variable {
            field: "topic_alias_maximum",
            grain: Number,
            get: |c| Some(n(c.topic_alias_maximum)),
            set: |c, v| c.topic_alias_maximum = num16(v),
        },
        Variable {
            field: "topic_aliases",
            grain: Number,
            get: |c| Some(n(c.topic_aliases)),
            set: |c, v| c.topic_aliases = num16(v),
        },
        Variable {
            field: "will.delay",
            grain: Seconds,
            get: |c| c.will.as_ref().map(|w| Value::Duration(w.delay)),
            set: |c, v| {
                if let Some(w) = &mut c.will {
                    w.delay = dur(v);
                }
            },
        },
        Variable {
            field: "reconnect.min_backoff",
            grain: Millis,
            get: |c| Some(d(c.reconnect.min_backoff)),
            set: |c, v| c.reconnect.min_backoff = dur(v),
        },
        Variable {
            field: "reconnect.max_backoff",
            grain: Millis,
            get: |c| Some(d(c.reconnect.max_backoff)),
            set: |c, v| c.reconnect.max_backoff = dur(v),
        },
    ]
}

fn variable(field: &str) -> Variable {
    variables()
        .into_iter()
        .find(|v| v.field == field)
        .expect("a variable field")
}

/// One ranged field of a template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The field, as written (`keep_alive`, `will.delay`).
    pub field: &'static str,
    pub low: Value,
    pub high: Value,
}

/// A `[[client]]` entry with `count`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its index among the file's `[[client]]` entries.
    pub entry: usize,
    /// Its id, with `{n}`.
    pub id: String,
    /// How many clients it stands for.
    pub count: usize,
    /// The index of its first instance (n = 1) in [`Scenario::clients`](super::Scenario::clients); the others follow.
    pub first: usize,
    /// Its ranged fields, in the order of [`VARIABLE_FIELDS`].
    pub ranges: Vec<Range>,
}

impl Template {
    /// The id of instance `n` (from 1).
    pub fn instance(&self, n: usize) -> String {
        self.id.replace(PLACEHOLDER, &n.to_string())
    }

    /// Copies of `instance` with its ranged fields at the ends that the checks must see: all
    /// high, and for each ordered pair with a range, the second at its low end and every other
    /// range high (all lows is `instance` itself).
    pub(crate) fn corners(&self, instance: &ClientConfig) -> Vec<ClientConfig> {
        if self.ranges.is_empty() {
            return Vec::new();
        }
        let at = |highs: &[&str]| {
            let mut c = instance.clone();
            for r in &self.ranges {
                let v = if highs.contains(&r.field) {
                    r.high
                } else {
                    r.low
                };
                (variable(r.field).set)(&mut c, v);
            }
            c
        };
        let all: Vec<&str> = self.ranges.iter().map(|r| r.field).collect();
        let mut out = vec![at(&all)];
        for (first, second) in ORDERED {
            let ranged = |f: &str| self.ranges.iter().any(|r| r.field == f);
            if ranged(first) || ranged(second) {
                let highs: Vec<&str> = all.iter().copied().filter(|f| *f != second).collect();
                out.push(at(&highs));
            }
        }
        out
    }

    /// The values of instance `n` for `seed`: one stream per instance and field
    /// (`clients/<instance id>/<field>`), so adding an instance or a field shifts no other draw.
    fn draw(&self, seed: u64, n: usize) -> Vec<(&'static str, Value)> {
        let id = self.instance(n);
        self.ranges
            .iter()
            .map(|r| {
                let mut rng = stream(seed, &format!("clients/{id}/{}", r.field));
                let v = match (variable(r.field).grain, r.low, r.high) {
                    (_, Value::Number(lo), Value::Number(hi)) => {
                        Value::Number(rng.random_range(lo..=hi))
                    }
                    (grain, lo, hi) => {
                        let (lo, hi) = (dur(lo).as_micros() as u64, dur(hi).as_micros() as u64);
                        let unit = match grain {
                            Grain::Seconds => 1_000_000,
                            _ if lo % 1_000 == 0 && hi % 1_000 == 0 => 1_000,
                            _ => 1,
                        };
                        // The checks keep whole-second ranges whole; never an empty one.
                        let first = lo.div_ceil(unit);
                        let us = rng.random_range(first..=(hi / unit).max(first)) * unit;
                        Value::Duration(Duration::from_micros(us))
                    }
                };
                (r.field, v)
            })
            .collect()
    }
}

/// The values one seed drew for one template instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDraw {
    /// The instance's id.
    pub client: String,
    /// Its template's id, with `{n}`.
    pub template: String,
    /// Each ranged field and the value drawn, in the order of [`VARIABLE_FIELDS`].
    pub values: Vec<(&'static str, Value)>,
}

impl fmt::Display for ClientDraw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(field, v)| format!("{field} {v}"))
            .collect();
        write!(f, "{}: {}", self.client, values.join(", "))
    }
}

/// Where an entry of an expanded array comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Origin {
    /// The entry's index in the file.
    entry: usize,
    /// The template it was expanded over (an index into [`Expansion::templates`]).
    template: Option<usize>,
}

/// What expanding the templates of a file made: the templates, and for each array that
/// changed, where each of its entries comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expansion {
    pub templates: Vec<Template>,
    origins: BTreeMap<&'static str, Vec<Origin>>,
}

impl Expansion {
    /// `field` (a path in the expanded scenario, like `workload[57].topic`) as a path in the
    /// file, to find its line; as shown, where an entry expanded over a template names it
    /// (`workload[1] (sensor-{n}).topic`); and then the index of the expanded entry.
    pub fn place(&self, field: &str) -> (String, String, Option<usize>) {
        for (array, origins) in &self.origins {
            let Some(rest) = field.strip_prefix(array).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some((index, rest)) = rest.split_once(']') else {
                continue;
            };
            let Some((i, origin)) = index
                .parse::<usize>()
                .ok()
                .and_then(|i| Some((i, origins.get(i)?)))
            else {
                continue;
            };
            let located = format!("{array}[{}]{rest}", origin.entry);
            return match origin.template {
                Some(t) => {
                    let id = &self.templates[t].id;
                    let shown = format!("{array}[{}] ({id}){rest}", origin.entry);
                    (located, shown, Some(i))
                }
                None => (located.clone(), located, None),
            };
        }
        (field.to_string(), field.to_string(), None)
    }

    /// The index in the file of entry `i` of the expanded array at `path` (`fault`).
    pub fn entry(&self, path: &str, i: usize) -> usize {
        self.origins
            .get(path)
            .and_then(|o| o.get(i))
            .map_or(i, |o| o.entry)
    }

    /// Every value `seed` draws for the instances of templates with ranges, in client order.
    pub fn draws(&self, seed: u64) -> Vec<ClientDraw> {
        let mut out = Vec::new();
        for t in self.templates.iter().filter(|t| !t.ranges.is_empty()) {
            for n in 1..=t.count {
                out.push(ClientDraw {
                    client: t.instance(n),
                    template: t.id.clone(),
                    values: t.draw(seed, n),
                });
            }
        }
        out
    }
}

/// Sets the values of `draws` on the template instances among `clients` (by id).
pub fn apply(clients: &mut [ClientConfig], draws: &[ClientDraw]) {
    let index: BTreeMap<String, usize> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    for draw in draws {
        let Some(&i) = index.get(draw.client.as_str()) else {
            continue;
        };
        for (field, v) in &draw.values {
            (variable(field).set)(&mut clients[i], *v);
        }
    }
}

/// The table at `path` (`expect`, or the root for `""`) of `root`, if there is one.
fn array_at<'a, 't>(root: &'a mut DeTable<'t>, path: &str) -> Option<&'a mut DeArray<'t>> {
    let (table, key) = match path.split_once('.') {
        Some((table, key)) => (root.get_mut(table)?.get_mut().as_table_mut()?, key),
        None => (root, path),
    };
    match table.get_mut(key)?.get_mut() {
        DeValue::Array(a) => Some(a),
        _ => None,
    }
}

trait TableMut<'t> {
    fn as_table_mut(&mut self) -> Option<&mut DeTable<'t>>;
}

impl<'t> TableMut<'t> for DeValue<'t> {
    fn as_table_mut(&mut self) -> Option<&mut DeTable<'t>> {
        match self {
            DeValue::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// `value` with every `{n}` in its strings replaced by `n`.
fn substitute(value: &mut DeValue<'_>, n: &str) {
    match value {
        DeValue::String(s) if s.contains(PLACEHOLDER) => {
            *s = Cow::Owned(s.replace(PLACEHOLDER, n));
        }
        DeValue::Array(items) => items.iter_mut().for_each(|i| substitute(i.get_mut(), n)),
        DeValue::Table(t) => t.iter_mut().for_each(|(_, v)| substitute(v.get_mut(), n)),
        _ => {}
    }
}

/// Every string of `value` holding `{n}`, with its path below `value` (`.topic`, `[0]`, or `""`
/// for `value` itself).
fn with_placeholder<'a>(value: &'a DeValue<'_>, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        DeValue::String(s) if s.contains(PLACEHOLDER) => out.push((path, s.as_ref())),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                with_placeholder(item.get_ref(), format!("{path}[{i}]"), out);
            }
        }
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                with_placeholder(v.get_ref(), format!("{path}.{}", k.get_ref()), out);
            }
        }
        _ => {}
    }
}

/// The value at `field` (`keep_alive`, `will.delay`) of `table`.
fn value_at<'a, 't>(
    table: &'a mut DeTable<'t>,
    field: &str,
) -> Option<&'a mut Spanned<DeValue<'t>>> {
    match field.split_once('.') {
        Some((outer, inner)) => table
            .get_mut(outer)?
            .get_mut()
            .as_table_mut()?
            .get_mut(inner),
        None => table.get_mut(field),
    }
}

/// A problem of field `field` of `client[i]`.
fn at_client(doc: &Document<'_>, i: usize, field: &str, reason: String) -> Problem {
    doc.problem(format!("client[{i}].{field}"), reason)
}

/// Expands the templates of `root` in place: each `[[client]]` with `count` becomes its
/// instances (ranges at their low ends), each entry naming a template client becomes one entry
/// per instance. On success, what was expanded; otherwise every problem found.
pub(crate) fn expand<'t>(
    doc: &Document<'t>,
    root: &mut DeTable<'t>,
) -> Result<Expansion, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut expansion = Expansion::default();
    let Some(clients) = array_at(root, "client") else {
        return Ok(expansion);
    };
    let entries: Vec<_> = std::mem::replace(clients, DeArray::new())
        .into_iter()
        .collect();
    let mut expanded = DeArray::new();
    let mut origins = Vec::new();
    // Each id made so far: the entry that made it, and its template.
    let mut ids: BTreeMap<String, (usize, Option<usize>)> = BTreeMap::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let span = entry.span();
        let DeValue::Table(mut table) = entry.into_inner() else {
            // Not a table: reading the section reports it.
            continue;
        };
        let Some(count) = table.remove("count") else {
            problems.extend(plain_client(doc, i, &table));
            if let Some(id) = table.get("id").and_then(|v| v.get_ref().as_str()) {
                match ids.get(id) {
                    Some((j, Some(t))) => problems.push(at_client(
                        doc,
                        i,
                        "id",
                        format!(
                            "client id {id:?} is also an instance of client[{j}] ({})",
                            expansion.templates[*t].id
                        ),
                    )),
                    Some((_, None)) => {} // two plain clients: the client checks report it
                    None => {
                        ids.insert(id.to_string(), (i, None));
                    }
                }
            }
            origins.push(Origin {
                entry: i,
                template: None,
            });
            expanded.push(Spanned::new(span, DeValue::Table(table)));
            continue;
        };
        let Some(template) = read_template(doc, i, &count, &mut table, &mut problems) else {
            continue;
        };
        if origins.len() + template.count > MAX_CLIENTS {
            problems.push(at_client(
                doc,
                i,
                "count",
                format!(
                    "{} more clients make more than {MAX_CLIENTS} in the scenario",
                    template.count
                ),
            ));
            continue;
        }
        let t = expansion.templates.len();
        for n in 1..=template.count {
            let id = template.instance(n);
            match ids.get(&id) {
                Some((j, None)) => problems.push(at_client(
                    doc,
                    i,
                    "id",
                    format!(
                        "{:?} with n = {n} is {id:?}, the id of client[{j}]",
                        template.id
                    ),
                )),
                Some((j, Some(other))) => problems.push(at_client(
                    doc,
                    i,
                    "id",
                    format!(
                        "{:?} with n = {n} is {id:?}, also an instance of client[{j}] ({})",
                        template.id, expansion.templates[*other].id
                    ),
                )),
                None => {
                    ids.insert(id, (i, Some(t)));
                }
            }
            let mut instance = DeValue::Table(table.clone());
            substitute(&mut instance, &n.to_string());
            origins.push(Origin {
                entry: i,
                template: Some(t),
            });
            expanded.push(Spanned::new(span.clone(), instance));
        }
        expansion.templates.push(Template {
            first: origins.len() - template.count,
            ..template
        });
    }
    *array_at(root, "client").expect("taken above") = expanded;
    if !problems.is_empty() {
        return Err(problems);
    }
    if !expansion.templates.is_empty() {
        expansion.origins.insert("client", origins);
    }
    for path in REFERRING {
        let Some(array) = array_at(root, path) else {
            continue;
        };
        if let Some(origins) = refer(doc, path, array, &expansion.templates, &mut problems) {
            expansion.origins.insert(path, origins);
        }
    }
    if problems.is_empty() {
        Ok(expansion)
    } else {
        Err(problems)
    }
}

/// The problems of `client[i]`, a `[[client]]` without `count`: it has neither ranges nor
/// `{n}`.
fn plain_client(doc: &Document<'_>, i: usize, table: &DeTable<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut copy = table.clone();
    for field in VARIABLE_FIELDS {
        if value_at(&mut copy, field).is_some_and(|v| v.get_ref().is_array()) {
            out.push(at_client(
                doc,
                i,
                field,
                format!("a range [low, high] needs a template: give this [[client]] a count and {PLACEHOLDER} in its id"),
            ));
        }
    }
    let copy = DeValue::Table(copy);
    let mut found = Vec::new();
    with_placeholder(&copy, String::new(), &mut found);
    if let Some((path, _)) = found.first() {
        out.push(at_client(
            doc,
            i,
            path.trim_start_matches('.'),
            format!("{PLACEHOLDER} is replaced only in a template: give this [[client]] a count (how many clients it stands for)"),
        ));
    }
    out
}

/// Both ends of a template's ranges, read as `[[client]]` entries.
#[derive(serde::Deserialize)]
struct Ends {
    client: Vec<ClientConfig>,
}

/// Reads template `client[i]` (its `count` taken out of `table`): its count, its id, and its
/// ranges, each end read and checked as the field itself. `table` is left with the low ends.
fn read_template<'t>(
    doc: &Document<'t>,
    i: usize,
    count: &Spanned<DeValue<'t>>,
    table: &mut DeTable<'t>,
    problems: &mut Vec<Problem>,
) -> Option<Template> {
    let before = problems.len();
    let count = match count
        .get_ref()
        .as_integer()
        .and_then(|n| i64::from_str_radix(n.as_str(), n.radix()).ok())
    {
        Some(n) if (1..=MAX_CLIENTS as i64).contains(&n) => n as usize,
        _ => {
            problems.push(at_client(
                doc,
                i,
                "count",
                format!("a template's count is how many clients it stands for: a whole number from 1 to {MAX_CLIENTS}"),
            ));
            0
        }
    };
    let id = match table.get("id").map(|v| v.get_ref()) {
        Some(DeValue::String(id)) if id.contains(PLACEHOLDER) => id.to_string(),
        Some(DeValue::String(id)) => {
            problems.push(at_client(
                doc,
                i,
                "id",
                format!("{id:?} has no {PLACEHOLDER}: a template (a [[client]] with count) stands for one client per n from 1 to count, its id like \"sensor-{PLACEHOLDER}\""),
            ));
            String::new()
        }
        // Missing or not a string: reading the entry reports it.
        _ => String::new(),
    };
    let mut high = table.clone();
    let mut ranged = Vec::new();
    for field in VARIABLE_FIELDS {
        let Some(value) = value_at(table, field) else {
            continue;
        };
        let DeValue::Array(ends) = value.get_ref() else {
            continue;
        };
        if ends.len() != 2 {
            let reason = format!(
                "a range is two values [low, high], got {} values",
                ends.len()
            );
            problems.push(at_client(doc, i, field, reason));
            continue;
        }
        let (lo, hi) = (ends[0].clone(), ends[1].clone());
        *value_at(&mut high, field).expect("a copy of table") = hi;
        *value = lo;
        ranged.push(field);
    }
    let entry_span = doc
        .root()
        .get_ref()
        .get("client")
        .and_then(|a| a.get_ref().as_array())
        .and_then(|a| a.get(i))
        .map_or(0..0, |e| e.span());
    let mut both = DeArray::new();
    both.push(Spanned::new(
        entry_span.clone(),
        DeValue::Table(table.clone()),
    ));
    both.push(Spanned::new(entry_span, DeValue::Table(high)));
    let mut wrapper = DeTable::new();
    wrapper.insert(
        Spanned::new(0..0, Cow::Borrowed("client")),
        Spanned::new(0..0, DeValue::Array(both)),
    );
    let [low, high] = match doc.read::<Ends>(Spanned::new(0..0, wrapper), &[]) {
        Ok(Ends { client }) => <[ClientConfig; 2]>::try_from(client).ok()?,
        Err(found) => {
            for p in found {
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
            return None;
        }
    };
    let mut ranges = Vec::new();
    for field in ranged {
        let get = variable(field).get;
        let (Some(lo), Some(hi)) = (get(&low), get(&high)) else {
            continue;
        };
        if lo > hi {
            let reason = format!("range is reversed: {lo} is above {hi}");
            problems.push(at_client(doc, i, field, reason));
        } else if [lo, hi].contains(&Value::Duration(NEVER_EXPIRES)) {
            let reason = "\"never\" cannot end a range: give two durations, or \"never\" alone";
            problems.push(at_client(doc, i, field, reason.into()));
        } else {
            ranges.push(Range {
                field,
                low: lo,
                high: hi,
            });
        }
    }
    (problems.len() == before).then_some(Template {
        entry: i,
        id,
        count,
        first: 0,
        ranges,
    })
}

/// Expands the entries of `array` (at `path`) that name a template client; where each entry
/// of the result comes from, or `None` if none was expanded.
fn refer(
    doc: &Document<'_>,
    path: &'static str,
    array: &mut DeArray<'_>,
    templates: &[Template],
    problems: &mut Vec<Problem>,
) -> Option<Vec<Origin>> {
    let entries: Vec<_> = std::mem::replace(array, DeArray::new())
        .into_iter()
        .collect();
    let mut origins = Vec::new();
    let mut any = false;
    for (i, entry) in entries.into_iter().enumerate() {
        let mut found = Vec::new();
        with_placeholder(entry.get_ref(), String::new(), &mut found);
        if found.is_empty() {
            origins.push(Origin {
                entry: i,
                template: None,
            });
            array.push(entry);
            continue;
        }
        let mut named: Vec<usize> = found
            .iter()
            .filter_map(|(_, s)| templates.iter().position(|t| t.id == *s))
            .collect();
        named.sort_unstable();
        named.dedup();
        let field = format!("{path}[{i}]{}", found[0].0);
        let t = match named.as_slice() {
            [t] => *t,
            [] => {
                let known: Vec<&str> = templates.iter().map(|t| t.id.as_str()).collect();
                let reason = if known.is_empty() {
                    format!(
                        "{PLACEHOLDER} is replaced only in an entry naming a template client, and the scenario has no template ([[client]] with count)"
                    )
                } else {
                    format!(
                        "{PLACEHOLDER} is replaced only in an entry naming a template client ({})",
                        known.join(", ")
                    )
                };
                problems.push(doc.problem(field, reason));
                continue;
            }
            [a, b, ..] => {
                let reason = format!(
                    "names two templates, {} and {}: an entry stands for the instances of one",
                    templates[*a].id, templates[*b].id
                );
                problems.push(doc.problem(field, reason));
                continue;
            }
        };
        if array.len() + templates[t].count > MAX_EXPANDED {
            problems.push(doc.problem(
                format!("{path}[{i}]"),
                format!("expands {path} to more than {MAX_EXPANDED} entries"),
            ));
            continue;
        }
        any = true;
        for n in 1..=templates[t].count {
            let mut copy = entry.clone();
            substitute(copy.get_mut(), &n.to_string());
            origins.push(Origin {
                entry: i,
                template: Some(t),
            });
            array.push(copy);
        }
    }
    any.then_some(origins)
}
