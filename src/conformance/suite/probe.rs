//! What a check holds: connections to the broker under test over real TCP, speaking through
//! our codec (or raw bytes, for what a normal client never sends), every packet both ways kept
//! in a transcript, every wait bounded.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::{
    self, Ack, ConnAck, Connect, Disconnect, Framer, LastWill, Packet, Properties, Protocol,
    Publish, QoS, ReasonCode, Subscribe, Subscription, SubscriptionOptions,
};

use super::Settings;

/// What came back when a check waited.
// A packet is the common case; the rest are rare and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Packet(Packet),
    /// The broker closed the connection (or reset it).
    Closed,
    /// Nothing within the wait.
    Silent,
    /// Bytes our decoder refuses.
    Malformed(String),
    /// A whole packet's bytes, undecoded (a connection opened with [`Probe::open_raw`]).
    Bytes(Vec<u8>),
}

impl Got {
    pub fn describe(&self) -> String {
        match self {
            Got::Packet(p) => describe(p),
            Got::Closed => "the connection closed".into(),
            Got::Silent => "nothing".into(),
            Got::Malformed(e) => format!("a malformed packet ({e})"),
            Got::Bytes(b) => format!("the packet {}", hex(b)),
        }
    }
}

/// A check's failure: what went wrong, in a sentence.
pub type Fault = String;

/// One connection to the broker under test.
pub struct Conn {
    stream: TcpStream,
    framer: Framer,
    /// Set: packets are returned as bytes ([`Got::Bytes`]), not decoded.
    raw: Option<Vec<u8>>,
    protocol: Protocol,
    name: String,
    transcript: Rc<RefCell<Vec<String>>>,
    start: Instant,
    closed: bool,
    /// A CONNACK accepting the connection (a reason code below 0x80) has arrived.
    accepted: bool,
}

impl Conn {
    fn note(&self, line: String) {
        let t = self.start.elapsed().as_millis();
        self.transcript
            .borrow_mut()
            .push(format!("{t:>5} ms {} {line}", self.name));
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends a packet as our codec writes it for this connection's protocol.
    pub fn send(&mut self, packet: &Packet) -> Result<(), Fault> {
        let mut buf = BytesMut::new();
        codec::encode(packet, self.protocol, &mut buf)
            .map_err(|e| format!("the check could not encode {}: {e}", describe(packet)))?;
        self.note(format!("→ {}", describe(packet)));
        self.write(&buf)
    }

    /// Sends bytes as they are, described in the transcript as `what`.
    pub fn send_raw(&mut self, bytes: &[u8], what: &str) -> Result<(), Fault> {
        self.note(format!("→ {what}: {}", hex(bytes)));
        self.write(bytes)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        match self.stream.write_all(bytes) {
            Ok(()) => Ok(()),
            // A broker that already closed: what it sent before is still read by `recv`.
            Err(e) if is_closed(&e) => {
                self.note(format!("(write refused: {e})"));
                Ok(())
            }
            Err(e) => Err(format!("writing to the broker failed: {e}")),
        }
    }

    /// The next packet, the close, or silence after `wait`.
    pub fn recv(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        let got = self.recv_until(deadline);
        match &got {
            Got::Silent => {}
            g => self.note(format!("← {}", g.describe())),
        }
        if let Got::Packet(Packet::ConnAck(a)) = &got {
            self.accepted |= !a.reason.is_error();
        }
        got
    }

    fn recv_until(&mut self, deadline: Instant) -> Got {
        let mut buf = [0u8; 4096];
        // Bounded by the deadline: every read waits at most until it.
        loop {
            if let Some(raw) = &mut self.raw {
                if let Some(len) = whole_packet(raw) {
                    return Got::Bytes(raw.drain(..len).collect());
                }
            } else {
                match self.framer.next_packet() {
                    Ok(Some(p)) => return Got::Packet(p),
                    Ok(None) => {}
                    Err(e) => return Got::Malformed(e.to_string()),
                }
            }
            if self.closed {
                return Got::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Got::Silent;
            }
            let _ = self
                .stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => match &mut self.raw {
                    Some(raw) if raw.len() + n <= RAW_LIMIT => raw.extend_from_slice(&buf[..n]),
                    Some(_) => return Got::Malformed(format!("more than {RAW_LIMIT} bytes")),
                    None => self.framer.push(&buf[..n]),
                },
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    /// The next packet; a close, silence or malformed bytes are a fault naming `what` was
    /// awaited.
    pub fn expect(&mut self, what: &str, wait: Duration) -> Result<Packet, Fault> {
        match self.recv(wait) {
            Got::Packet(p) => Ok(p),
            g => Err(format!("waited for {what}, got {}", g.describe())),
        }
    }

    /// Waits for the broker to close the connection. A 5.0 DISCONNECT before the close is
    /// allowed (the broker may say why) once a CONNACK accepted the connection, never before
    /// ([MQTT-3.14.0-1]); after it, nothing but the close ([MQTT-3.14.4-1], [MQTT-3.14.4-2]).
    /// Any other packet, or an open connection after `wait`, is a fault.
    pub fn expect_close(&mut self, wait: Duration) -> Result<Option<ReasonCode>, Fault> {
        let deadline = Instant::now() + wait;
        let mut reason = None;
        loop {
            let got = self.recv(deadline.saturating_duration_since(Instant::now()));
            match got {
                Got::Closed => return Ok(reason),
                Got::Packet(Packet::Disconnect(d)) if self.protocol.is_v5() && !self.accepted => {
                    return Err(format!(
                        "the broker sent DISCONNECT 0x{:02x} before any CONNACK accepting the connection; it may only close it [MQTT-3.14.0-1]",
                        d.reason.as_u8()
                    ));
                }
                Got::Packet(Packet::Disconnect(d)) if self.protocol.is_v5() && reason.is_none() => {
                    reason = Some(d.reason)
                }
                Got::Silent if reason.is_some() => {
                    return Err(format!(
                        "the broker sent DISCONNECT but the connection was still open {} ms later; the sender of DISCONNECT must close it [MQTT-3.14.4-2]",
                        wait.as_millis()
                    ));
                }
                Got::Silent => {
                    return Err(format!(
                        "the connection was still open {} ms later",
                        wait.as_millis()
                    ));
                }
                g if reason.is_some() => {
                    return Err(format!(
                        "the broker sent {} after its DISCONNECT; nothing may follow a DISCONNECT [MQTT-3.14.4-1]",
                        g.describe()
                    ));
                }
                g => {
                    return Err(format!(
                        "the broker answered with {} instead of closing the connection",
                        g.describe()
                    ));
                }
            }
        }
    }

    /// Waits `wait` and fails on anything but silence (a packet or a close).
    pub fn expect_silence(&mut self, wait: Duration, why: &str) -> Result<(), Fault> {
        match self.recv(wait) {
            Got::Silent => Ok(()),
            g => Err(format!("{why}, but got {}", g.describe())),
        }
    }

    /// Closes the connection without DISCONNECT.
    pub fn drop_abruptly(mut self) {
        self.note("✂ closes the connection without DISCONNECT".into());
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.closed = true;
    }

    /// DISCONNECT (normal), then close.
    pub fn disconnect(mut self) {
        let _ = self.send(&Packet::Disconnect(Disconnect::default()));
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        // Let the broker read it before the socket goes.
        let _ = self.recv(Duration::from_millis(50));
    }
}

/// The length of the fixed header at the front of `bytes` (type byte and remaining length).
pub fn fixed_header_len(bytes: &[u8]) -> usize {
    1 + bytes[1..]
        .iter()
        .take(4)
        .take_while(|b| **b & 0x80 != 0)
        .count()
        + 1
}

/// What a raw connection buffers at most.
const RAW_LIMIT: usize = 1 << 20;

/// The length of the whole packet at the front of `buf`, once it has all arrived.
pub fn whole_packet(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for (i, b) in buf.iter().skip(1).take(4).enumerate() {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let total = 1 + i + 1 + len;
            return (buf.len() >= total).then_some(total);
        }
    }
    None
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// What a check runs against: the target, the protocol of this run, the settings, names that
/// no other check or run uses, and the transcript.
pub struct Probe<'a> {
    target: SocketAddr,
    pub protocol: Protocol,
    pub settings: &'a Settings,
    /// Unique per run, check and protocol: `[0-9a-z]`, short enough for any client identifier.
    tag: String,
    topic_root: String,
    transcript: Rc<RefCell<Vec<String>>>,
    start: Instant,
    /// Topics the check may have left a retained message on.
    pub(super) retained: BTreeSet<String>,
    /// Client identifiers that may have a session left.
    pub(super) sessions: BTreeSet<String>,
    /// How long to wait for an answer the broker owes at once.
    pub wait: Duration,
}

impl<'a> Probe<'a> {
    pub(super) fn new(
        target: SocketAddr,
        protocol: Protocol,
        settings: &'a Settings,
        tag: String,
        check: &str,
    ) -> Probe<'a> {
        let topic_root = format!("mqtt-lab-conformance/{tag}/{check}");
        Probe {
            target,
            protocol,
            settings,
            tag,
            topic_root,
            transcript: Rc::new(RefCell::new(Vec::new())),
            start: Instant::now(),
            retained: BTreeSet::new(),
            sessions: BTreeSet::new(),
            wait: settings.wait,
        }
    }

    pub fn v5(&self) -> bool {
        self.protocol.is_v5()
    }

    pub(super) fn transcript(&self) -> Vec<String> {
        self.transcript.borrow().clone()
    }

    /// A client identifier of this check: `[0-9a-z]`, at most 23 characters ([MQTT-3.1.3-5]).
    pub fn client_id(&self, n: u8) -> String {
        format!("{}{}", self.tag, (b'a' + n % 26) as char)
    }

    /// A topic under this check's own root.
    pub fn topic(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.topic_root)
    }

    /// The root of this check's topics (a filter `root/#` sees only them).
    pub fn topic_root(&self) -> &str {
        &self.topic_root
    }

    /// A TCP connection whose packets come back as bytes: for answers our decoder would
    /// refuse in this run's protocol (a 3.1.1 CONNACK to a CONNECT of another version).
    pub fn open_raw(&mut self, name: &str) -> Result<Conn, Fault> {
        let mut conn = self.open(name)?;
        conn.raw = Some(Vec::new());
        Ok(conn)
    }

    /// A TCP connection, nothing sent yet. `name` labels it in the transcript.
    pub fn open(&mut self, name: &str) -> Result<Conn, Fault> {
        let stream = TcpStream::connect_timeout(&self.target, self.wait)
            .map_err(|e| format!("could not connect to {}: {e}", self.target))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(self.wait));
        Ok(Conn {
            stream,
            framer: Framer::new(Some(self.protocol), codec::MAX_PACKET_SIZE),
            raw: None,
            protocol: self.protocol,
            name: name.to_string(),
            transcript: self.transcript.clone(),
            start: self.start,
            closed: false,
            accepted: false,
        })
    }

    /// A CONNECT of this run's protocol with the configured user, clean start, keep-alive 60.
    pub fn connect_packet(&self, client_id: &str) -> Connect {
        let (username, password) = match &self.settings.user {
            Some((u, p)) => (Some(u.clone()), Some(Bytes::from(p.clone().into_bytes()))),
            None => (None, None),
        };
        Connect {
            protocol: self.protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.to_string(),
            will: None,
            username,
            password,
            properties: Properties::default(),
        }
    }

    /// A CONNECT that keeps its session: clean start 0 and, in 5.0, a session expiry of 60 s.
    pub fn persistent_packet(&self, client_id: &str) -> Connect {
        let mut c = self.connect_packet(client_id);
        c.clean_start = false;
        if self.v5() {
            c.properties.session_expiry_interval = Some(60);
        }
        c
    }

    /// Opens a connection, sends `connect` and waits for a successful CONNACK. A session the
    /// CONNECT may leave behind is remembered for the clean-up.
    pub fn connect_with(&mut self, name: &str, connect: Connect) -> Result<(Conn, ConnAck), Fault> {
        let persistent =
            !connect.clean_start || connect.properties.session_expiry_interval.unwrap_or(0) > 0;
        if persistent || connect.will.is_some() {
            self.sessions.insert(connect.client_id.clone());
        }
        if let Some(w) = &connect.will
            && w.retain
        {
            self.retained.insert(w.topic.clone());
        }
        let mut conn = self.open(name)?;
        conn.send(&Packet::Connect(connect))?;
        match conn.expect("CONNACK", self.wait)? {
            Packet::ConnAck(ack) if ack.reason == ReasonCode::Success => Ok((conn, ack)),
            Packet::ConnAck(ack) => Err(format!(
                "the broker refused the connection: {:?} (0x{:02x})",
                ack.reason,
                ack.reason.as_u8()
            )),
            p => Err(format!("waited for CONNACK, got {}", describe(&p))),
        }
    }

    /// `connect_with` the default CONNECT of `client_id`.
    pub fn connect(&mut self, name: &str, client_id: &str) -> Result<(Conn, ConnAck), Fault> {
        let c = self.connect_packet(client_id);
        self.connect_with(name, c)
    }

    /// Subscribes `conn` to `filter` at `qos` and checks that the SUBACK grants it.
    pub fn subscribe(&mut self, conn: &mut Conn, filter: &str, qos: QoS) -> Result<(), Fault> {
        let reason = self.subscribe_with(conn, 1, filter, options(qos), Properties::default())?;
        if reason.is_error() {
            return Err(format!(
                "the broker refused the subscription to {filter:?} (0x{:02x})",
                reason.as_u8()
            ));
        }
        Ok(())
    }

    /// Sends a SUBSCRIBE of one filter with identifier `pkid` and returns the code of the SUBACK
    /// that answers it (which must carry `pkid` and one code).
    pub fn subscribe_with(
        &self,
        conn: &mut Conn,
        pkid: u16,
        filter: &str,
        options: SubscriptionOptions,
        properties: Properties,
    ) -> Result<ReasonCode, Fault> {
        conn.send(&Packet::Subscribe(Subscribe {
            pkid,
            filters: vec![Subscription {
                filter: filter.to_string(),
                options,
            }],
            properties,
        }))?;
        match conn.expect("SUBACK", self.wait)? {
            Packet::SubAck(s) if s.pkid == pkid && s.reasons.len() == 1 => Ok(s.reasons[0]),
            other => Err(format!(
                "waited for a SUBACK of identifier {pkid} with one code for {filter:?}, got {}",
                describe(&other)
            )),
        }
    }

    /// A PUBLISH of this check: remembered for the clean-up when retained.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        pkid: u16,
    ) -> Packet {
        if retain {
            self.retained.insert(topic.to_string());
        }
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.to_string(),
            pkid: if qos == QoS::AtMostOnce { 0 } else { pkid },
            properties: Properties::default(),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    /// A will for a CONNECT.
    pub fn will(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> LastWill {
        LastWill {
            topic: topic.to_string(),
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain,
            properties: Properties::default(),
        }
    }

    /// Removes what the check left: retained messages and sessions. Errors are ignored (a
    /// broker that fails the check may fail this too); every step is bounded by `wait`.
    pub(super) fn clean_up(&mut self) {
        let retained = std::mem::take(&mut self.retained);
        let sessions = std::mem::take(&mut self.sessions);
        if retained.is_empty() && sessions.is_empty() {
            return;
        }
        self.note("clean-up");
        // Sessions first: ending one cancels a delayed will or publishes a pending one, and a
        // retained will is then cleared below.
        for id in sessions {
            // A clean start ends a 3.1.1 session; a 5.0 one ends with the connection, since
            // the session expiry interval is absent (0).
            if let Ok((conn, _)) = self.connect("cleanup", &id) {
                conn.disconnect();
            }
        }
        if !retained.is_empty()
            && let Ok((mut conn, _)) = self.connect("cleanup", &self.client_id(25))
        {
            for topic in &retained {
                let p = self.publish(topic, b"", QoS::AtMostOnce, true, 0);
                let _ = conn.send(&p);
            }
            conn.disconnect();
            self.retained.clear();
        }
        self.sessions.clear();
    }

    pub fn note(&self, line: &str) {
        let t = self.start.elapsed().as_millis();
        self.transcript
            .borrow_mut()
            .push(format!("{t:>5} ms {line}"));
    }
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP of `pkid`, success.
pub fn ack(pkid: u16) -> Ack {
    Ack::new(pkid)
}

/// Hex bytes, at most 64 shown.
pub fn hex(bytes: &[u8]) -> String {
    let mut s: String = bytes
        .iter()
        .take(64)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    if bytes.len() > 64 {
        s.push_str(&format!(" … ({} bytes)", bytes.len()));
    }
    s
}

/// A packet in one line, with the fields a check judges.
pub fn describe(p: &Packet) -> String {
    let props = |pr: &Properties| {
        if pr.is_empty() {
            String::new()
        } else {
            format!(", properties {}", properties(pr))
        }
    };
    match p {
        Packet::Connect(c) => format!(
            "CONNECT({}, client id {:?}, clean {}, keep-alive {}{}{}{})",
            c.protocol.name(),
            c.client_id,
            u8::from(c.clean_start),
            c.keep_alive,
            c.will
                .as_ref()
                .map(|w| format!(
                    ", will {:?} QoS {} retain {}",
                    w.topic,
                    w.qos.as_u8(),
                    u8::from(w.retain)
                ))
                .unwrap_or_default(),
            c.username
                .as_ref()
                .map(|u| format!(", user {u:?}"))
                .unwrap_or_default(),
            props(&c.properties)
        ),
        Packet::ConnAck(c) => format!(
            "CONNACK(session present {}, {:?} 0x{:02x}{})",
            u8::from(c.session_present),
            c.reason,
            c.reason.as_u8(),
            props(&c.properties)
        ),
        Packet::Publish(x) => format!(
            "PUBLISH({:?}, QoS {}, retain {}, dup {}, id {}, {} bytes {:?}{})",
            x.topic,
            x.qos.as_u8(),
            u8::from(x.retain),
            u8::from(x.dup),
            x.pkid,
            x.payload.len(),
            String::from_utf8_lossy(&x.payload[..x.payload.len().min(32)]),
            props(&x.properties)
        ),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => format!(
            "{}(id {}, {:?}{})",
            codec::packet_name(p.packet_type()),
            a.pkid,
            a.reason,
            props(&a.properties)
        ),
        Packet::Subscribe(s) => format!(
            "SUBSCRIBE(id {}, {}{})",
            s.pkid,
            s.filters
                .iter()
                .map(|f| format!("{:?} QoS {}", f.filter, f.options.qos.as_u8()))
                .collect::<Vec<_>>()
                .join(", "),
            props(&s.properties)
        ),
        Packet::SubAck(s) => format!(
            "SUBACK(id {}, {}{})",
            s.pkid,
            s.reasons
                .iter()
                .map(|r| format!("0x{:02x}", r.as_u8()))
                .collect::<Vec<_>>()
                .join(", "),
            props(&s.properties)
        ),
        Packet::Unsubscribe(u) => format!("UNSUBSCRIBE(id {}, {:?})", u.pkid, u.filters),
        Packet::UnsubAck(u) => format!(
            "UNSUBACK(id {}{})",
            u.pkid,
            u.reasons
                .iter()
                .map(|r| format!(", 0x{:02x}", r.as_u8()))
                .collect::<String>()
        ),
        Packet::PingReq => "PINGREQ".into(),
        Packet::PingResp => "PINGRESP".into(),
        Packet::Disconnect(d) => format!(
            "DISCONNECT({:?} 0x{:02x}{})",
            d.reason,
            d.reason.as_u8(),
            props(&d.properties)
        ),
        Packet::Auth(a) => format!("AUTH({:?}{})", a.reason, props(&a.properties)),
    }
}

/// The properties that are set, as `name value` pairs.
fn properties(p: &Properties) -> String {
    let text = format!("{p:?}");
    // `PropertySet { a: None, b: Some(1), c: [] }` → `b: Some(1)`: only what is set.
    let inner = text
        .trim_start_matches("PropertySet {")
        .trim_end_matches('}')
        .trim();
    let mut set = Vec::new();
    let mut depth = 0i32;
    let mut field = String::new();
    for ch in inner.chars() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            set.push(std::mem::take(&mut field));
        } else {
            field.push(ch);
        }
    }
    set.push(field);
    set.into_iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.ends_with(": None") && !f.ends_with(": []") && !f.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Probe<'_> {
    /// A SUBSCRIBE of one filter.
    pub fn subscribe_packet(pkid: u16, filter: &str, qos: QoS) -> Packet {
        Packet::Subscribe(Subscribe {
            pkid,
            filters: vec![Subscription {
                filter: filter.to_string(),
                options: options(qos),
            }],
            properties: Properties::default(),
        })
    }
}

/// Subscription options asking for `qos`, the rest as default.
pub fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

/// The payload as text, for messages.
pub fn text(m: &Publish) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}
