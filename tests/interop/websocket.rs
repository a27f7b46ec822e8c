//! `mqtt-lab broker` with WebSocket listeners (subprotocol `mqtt`), plain and over TLS: paho-mqtt
//! (Python, `transport="websockets"`) publishing and receiving with MQTT 3.1.1 and 5.0, a
//! payload larger than any buffer on the way; our own client over WebSockets beside it; an
//! upgrade without the `mqtt` subprotocol and bytes that are no upgrade at all refused without
//! harm to the listener; hand-made frames: a packet split over two frames, two packets in one,
//! and a text frame, which closes the connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use crate::support::WAIT;
use crate::support::tls::{BIN, Broker, Certs, free_port, python_with_paho, run, s};

/// paho-mqtt over WebSockets: subscribes to `ws/#`, publishes a message of SIZE bytes to
/// `ws/paho` with QoS 1 and a retained one to `ws/retained`, and exits 0 once its own big
/// message came back.
/// Arguments: PORT PROTOCOL(311|5) SIZE [CA_FILE].
const PAHO: &str = r#"
import ssl, sys, threading
import paho.mqtt.client as mqtt

port, protocol, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ca = sys.argv[4] if len(sys.argv) > 4 else None
version = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws-" + protocol,
                     transport="websockets", protocol=version)
client.ws_set_options(path="/mqtt")
if ca:
    client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
payload = bytes(i % 251 for i in range(size))
done = threading.Event()
result = {}

def on_connect(client, userdata, flags, reason, properties):
    if reason.is_failure:
        result["error"] = "CONNACK " + str(reason)
        done.set()
        return
    client.subscribe("ws/#", qos=1)

def on_subscribe(client, userdata, mid, reasons, properties):
    client.publish("ws/retained", b"from paho", qos=1, retain=True)
    client.publish("ws/paho", payload, qos=1)

def on_message(client, userdata, message):
    if message.topic == "ws/paho":
        result["ok"] = message.payload == payload
        done.set()

client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("localhost", port, keepalive=30)
client.loop_start()
done.wait(10)
client.disconnect()
client.loop_stop()
if not result.get("ok"):
    sys.exit("no round trip: " + repr(result.get("error", "timed out or wrong payload")))
"#;

fn paho(python: &Path, port: u16, protocol: &str, size: usize, ca: Option<&Path>) {
    let mut command = Command::new(python);
    command
        .args(["-c", PAHO, &port.to_string(), protocol])
        .arg(size.to_string());
    if let Some(ca) = ca {
        command.arg(ca);
    }
    let out = run(&mut command, "paho-mqtt");
    assert!(
        out.status.success(),
        "paho over WebSockets (MQTT {protocol}, port {port}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Our `mqtt-lab sub --ws` reads the retained message paho left.
fn ours_reads_the_retained_message(port: u16, tls: &[&str]) {
    let out = run(
        Command::new(BIN)
            .args(["sub", "--ws", "-h", "localhost", "-p", &port.to_string()])
            .args(["-t", "ws/retained", "-C", "1", "-W", "10"])
            .args(tls),
        "mqtt-lab sub --ws",
    );
    assert!(
        out.status.success(),
        "mqtt-lab sub --ws {tls:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from paho\n");
}

/// [MQTT-6.0.0-2] Big messages span many WebSocket frames and reads on the way; [MQTT-6.0.0-3]
/// our client offers `mqtt` (the listener refuses an upgrade without it).
#[test]
fn mqtt_6_0_0_2_paho_and_our_client_speak_mqtt_over_websockets() {
    let Some(python) = python_with_paho() else {
        return;
    };
    let certs = Certs::generate();
    let (ws, wss) = (free_port(), free_port());
    let broker = Broker::start(
        &format!(
            "[[listener]]\naddress = \"127.0.0.1:{ws}\"\ntransport = \"websocket\"\n\
             [[listener]]\naddress = \"127.0.0.1:{wss}\"\ntransport = \"websocket\"\n{}\n",
            certs.tls_table(""),
        ),
        &[ws, wss],
    );
    // 3.1.1 with a small message, 5.0 with one that spans many reads and WebSocket frames.
    paho(&python, ws, "311", 10, None);
    paho(&python, ws, "5", 300_000, None);
    ours_reads_the_retained_message(ws, &[]);
    paho(&python, wss, "5", 100_000, Some(&certs.ca));
    ours_reads_the_retained_message(wss, &["--cafile", s(&certs.ca)]);
    let log = broker.log();
    assert!(log.contains("client_id=paho-ws-5"), "{log}");
}

/// Sends `request` to `port` and returns what comes back until the broker closes.
fn exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// [MQTT-6.0.0-4] The listener answers with the subprotocol `mqtt`, and refuses an upgrade
/// that does not offer it.
#[test]
fn mqtt_6_0_0_4_an_upgrade_without_the_mqtt_subprotocol_or_no_upgrade_at_all_is_refused() {
    let port = free_port();
    let broker = Broker::start(
        &format!("[[listener]]\naddress = \"127.0.0.1:{port}\"\ntransport = \"websocket\"\n"),
        &[port],
    );
    let upgrade = upgrade_request;
    let answer = exchange(port, upgrade("").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("subprotocol mqtt"), "{answer}");
    let answer = exchange(port, upgrade("Sec-WebSocket-Protocol: chat\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // Plain MQTT on a WebSocket port: closed without a CONNACK.
    let answer = exchange(
        port,
        &[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 1, b'x',
        ],
    );
    assert!(!answer.starts_with('\u{20}'), "{answer:?}");
    // The subprotocol offered among others is accepted.
    let answer = {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
            .write_all(upgrade("Sec-WebSocket-Protocol: chat, mqtt\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt"),
        "{answer}"
    );
    broker.wait_for_log("WebSocket upgrade refused");
}

/// The upgrade request of a WebSocket client offering `protocol_line`.
fn upgrade_request(protocol_line: &str) -> String {
    format!(
        "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{protocol_line}\r\n"
    )
}

/// A client frame: final, masked with a zero key (so the payload goes as it is).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match u8::try_from(payload.len()) {
        Ok(len) if len < 126 => f.push(0x80 | len),
        _ => {
            f.push(0x80 | 126);
            f.extend(u16::try_from(payload.len()).unwrap().to_be_bytes());
        }
    }
    f.extend([0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A WebSocket connection to `port` offering `mqtt`, upgraded.
fn ws_connect(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(upgrade_request("Sec-WebSocket-Protocol: mqtt\r\n").as_bytes())
        .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).unwrap();
        response.push(byte[0]);
    }
    assert!(response.starts_with(b"HTTP/1.1 101"));
    stream
}

/// Reads until the broker closes `stream` (fails if it does not within the bound); what came.
fn closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    if let Err(e) = stream.read_to_end(&mut rest) {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed");
    }
    rest
}

/// One server frame: its opcode and payload.
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0, "a server frame is not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).unwrap();
            usize::from(u16::from_be_bytes(n))
        }
        127 => panic!("an unexpectedly large frame"),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// [MQTT-6.0.0-2] A CONNECT split over two binary frames and two PINGREQs in one are read as
/// packets; [MQTT-6.0.0-1] a text frame closes the connection. A message larger than twice
/// `max_packet_size` closes it too.
#[test]
fn mqtt_6_0_0_1_packets_span_binary_frames_and_a_text_frame_closes_the_connection() {
    let port = free_port();
    let broker = Broker::start(
        &format!(
            "[[listener]]\naddress = \"127.0.0.1:{port}\"\ntransport = \"websocket\"\n\
             [broker]\nmax_packet_size = 128\n"
        ),
        &[port],
    );
    let mut stream = ws_connect(port);

    // A 3.1.1 CONNECT of the client `ws`.
    let connect = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 2, b'w', b's',
    ];
    stream.write_all(&frame(2, &connect[..5])).unwrap();
    stream.write_all(&frame(2, &connect[5..])).unwrap();
    assert_eq!(read_frame(&mut stream), (2, vec![0x20, 2, 0, 0]));
    stream.write_all(&frame(2, &[0xc0, 0, 0xc0, 0])).unwrap();
    let mut pongs = Vec::new();
    while pongs.len() < 4 {
        let (opcode, payload) = read_frame(&mut stream);
        assert_eq!(opcode, 2, "MQTT goes in binary frames");
        pongs.extend(payload);
    }
    assert_eq!(pongs, [0xd0, 0, 0xd0, 0]);

    stream.write_all(&frame(1, b"hello")).unwrap();
    closed(&mut stream);
    broker.wait_for_log("client_id=ws");
    broker.wait_for_log("cause=Io");

    // 150 PINGREQs, each well within max_packet_size, in one message of 300 bytes: closed
    // unanswered.
    let mut stream = ws_connect(port);
    stream.write_all(&frame(2, &connect)).unwrap();
    assert_eq!(read_frame(&mut stream), (2, vec![0x20, 2, 0, 0]));
    stream.write_all(&frame(2, &[0xc0, 0].repeat(150))).unwrap();
    let rest = closed(&mut stream);
    assert!(!rest.windows(2).any(|w| w == [0xd0, 0]), "{rest:?}");
    // The listener goes on.
    let mut stream = ws_connect(port);
    stream.write_all(&frame(2, &connect)).unwrap();
    assert_eq!(read_frame(&mut stream), (2, vec![0x20, 2, 0, 0]));
}
