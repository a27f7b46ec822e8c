//! The Prometheus endpoint (`metrics_listen`): `GET /metrics` answers the broker's figures in
//! Prometheus' text format, asked of the task that owns the core at each request.
//!
//! Every request is bounded: its head may be at most [`MAX_REQUEST_HEAD`] bytes and must arrive
//! within [`REQUEST_TIME_LIMIT`]; anything else than `GET /metrics` (or `GET /`) gets 404, a
//! malformed request 400. One task per connection, one request per connection.
//!
//! Not here: the figures themselves (`broker/sys.rs`).

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::broker::Metrics;

/// The longest request head read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a request may take to arrive.
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(5);

/// A request for the figures, answered by the task that owns the core (`None`: it keeps none).
pub type MetricsRequest = oneshot::Sender<Option<Figures>>;

/// What the endpoint serves: the core's figures and the network shell's.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub core: Metrics,
    /// Plain TCP connections parked now: idle, without a task (`park.rs`).
    pub connections_parked: u64,
}

/// One metric: name, type, help and samples as (labels, value).
type Family<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, u64)>);

/// The figures in Prometheus' text exposition format (version 0.0.4).
pub fn render(f: &Figures) -> String {
    let m = &f.core;
    let (t, s, a) = (&m.traffic, &m.stats, &m.auth);
    let families: [Family; 19] = [
        (
            "uptime_seconds",
            "gauge",
            "Seconds since the broker core started.",
            vec![("", m.uptime_s)],
        ),
        (
            "clients_connected",
            "gauge",
            "Clients connected now.",
            vec![("", m.clients_connected)],
        ),
        (
            "connections_parked",
            "gauge",
            "Idle plain TCP connections parked without a task.",
            vec![("", f.connections_parked)],
        ),
        (
            "clients_disconnected",
            "gauge",
            "Sessions held for clients not connected.",
            vec![("", m.clients_disconnected)],
        ),
        (
            "clients_maximum",
            "gauge",
            "The most clients connected at once.",
            vec![("", m.clients_maximum)],
        ),
        (
            "packets_received_total",
            "counter",
            "MQTT packets of every kind received.",
            vec![("", t.packets_received)],
        ),
        (
            "packets_sent_total",
            "counter",
            "MQTT packets of every kind sent.",
            vec![("", t.packets_sent)],
        ),
        (
            "publish_received_total",
            "counter",
            "PUBLISH packets received.",
            vec![("", t.publish_received)],
        ),
        (
            "publish_sent_total",
            "counter",
            "PUBLISH packets sent.",
            vec![("", t.publish_sent)],
        ),
        (
            "bytes_received_total",
            "counter",
            "Bytes received from clients.",
            vec![("", t.bytes_received)],
        ),
        (
            "bytes_sent_total",
            "counter",
            "Bytes written to clients.",
            vec![("", t.bytes_sent)],
        ),
        (
            "subscriptions",
            "gauge",
            "Subscriptions held over every session.",
            vec![("", m.subscriptions)],
        ),
        (
            "retained_messages",
            "gauge",
            "Retained messages held.",
            vec![("", m.retained)],
        ),
        (
            "messages_dropped_total",
            "counter",
            "Messages not delivered, by cause.",
            vec![
                ("{cause=\"queue_overflow\"}", s.queue_overflow_dropped),
                ("{cause=\"qos0_offline\"}", s.qos0_offline_dropped),
                ("{cause=\"expired\"}", s.expired_dropped),
                ("{cause=\"oversize\"}", s.oversize_dropped),
            ],
        ),
        (
            "retained_rejected_total",
            "counter",
            "Retained messages not retained because the store was full.",
            vec![("", s.retained_rejected)],
        ),
        (
            "sessions_expired_total",
            "counter",
            "Sessions discarded by session expiry.",
            vec![("", s.sessions_expired)],
        ),
        (
            "connections_refused_total",
            "counter",
            "Connections refused, by cause.",
            vec![
                ("{cause=\"max_connections\"}", s.connections_refused),
                ("{cause=\"login\"}", a.connects_refused),
            ],
        ),
        (
            "denied_total",
            "counter",
            "Requests the ACL refused, by kind.",
            vec![
                ("{kind=\"publish\"}", a.publishes_denied),
                ("{kind=\"subscribe\"}", a.subscriptions_denied),
                ("{kind=\"delivery\"}", a.deliveries_withheld),
            ],
        ),
        (
            "events_dropped_total",
            "counter",
            "Observations dropped because nobody read them.",
            vec![("", s.events_dropped)],
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        let _ = writeln!(out, "# HELP mqtt_lab_{name} {help}");
        let _ = writeln!(out, "# TYPE mqtt_lab_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "mqtt_lab_{name}{labels} {value}");
        }
    }
    out
}

/// Serves `GET /metrics` on `listener`, asking `owner` for the figures at each request, until
/// the owner is gone.
pub async fn serve_metrics(listener: TcpListener, owner: mpsc::Sender<MetricsRequest>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if owner.is_closed() {
            return;
        }
        let owner = owner.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, owner).await {
                tracing::debug!(%peer, error = %e, "metrics request failed");
            }
        });
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Metrics,
    NotFound,
    Bad,
}

/// Reads one request head (up to the blank line) and says what it asks for.
fn parse_head(head: &[u8]) -> Asked {
    let Ok(text) = std::str::from_utf8(head) else {
        return Asked::Bad;
    };
    let Some(line) = text.lines().next() else {
        return Asked::Bad;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Asked::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Asked::Bad;
    }
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics" | "/") => Asked::Metrics,
        _ => Asked::NotFound,
    }
}

async fn answer(mut stream: TcpStream, owner: mpsc::Sender<MetricsRequest>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(REQUEST_TIME_LIMIT, async {
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    let asked = match read {
        Ok(Ok(())) if head.windows(4).any(|w| w == b"\r\n\r\n") => parse_head(&head),
        Ok(Err(e)) => return Err(e),
        _ => Asked::Bad,
    };
    let (status, body) = match asked {
        Asked::Metrics => {
            let (tx, rx) = oneshot::channel();
            let figures = match owner.send(tx).await {
                Ok(()) => rx.await.ok().flatten(),
                Err(_) => None,
            };
            match figures {
                Some(m) => ("200 OK", render(&m)),
                None => (
                    "503 Service Unavailable",
                    "the broker keeps no figures\n".to_string(),
                ),
            }
        }
        Asked::NotFound => ("404 Not Found", "try GET /metrics\n".to_string()),
        Asked::Bad => ("400 Bad Request", "not an HTTP request\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_are_read_as_metrics_not_found_or_bad() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics
        );
        assert_eq!(parse_head(b"GET /?x=1 HTTP/1.0\r\n\r\n"), Asked::Metrics);
        assert_eq!(
            parse_head(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Asked::NotFound
        );
        assert_eq!(parse_head(b"GET /other HTTP/1.1\r\n\r\n"), Asked::NotFound);
        assert_eq!(parse_head(b"\x16\x03\x01\x02\r\n\r\n"), Asked::Bad);
        assert_eq!(parse_head(b"GET /metrics\r\n\r\n"), Asked::Bad);
    }

    #[test]
    fn every_figure_is_one_sample_line_with_help_and_type() {
        let mut m = Metrics {
            uptime_s: 7,
            clients_connected: 3,
            ..Metrics::default()
        };
        m.stats.queue_overflow_dropped = 11;
        m.auth.connects_refused = 2;
        let text = render(&Figures {
            core: m,
            connections_parked: 5,
        });
        assert!(text.contains("\nmqtt_lab_uptime_seconds 7\n"), "{text}");
        assert!(text.contains("\nmqtt_lab_clients_connected 3\n"), "{text}");
        assert!(text.contains("\nmqtt_lab_connections_parked 5\n"), "{text}");
        assert!(
            text.contains("\nmqtt_lab_messages_dropped_total{cause=\"queue_overflow\"} 11\n"),
            "{text}"
        );
        assert!(
            text.contains("\nmqtt_lab_connections_refused_total{cause=\"login\"} 2\n"),
            "{text}"
        );
        // Every metric has its HELP and TYPE before its samples, and every sample line is
        // `name[labels] value`.
        let mut declared = std::collections::BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let (name, value) = line.rsplit_once(' ').unwrap();
                let name = name.split('{').next().unwrap();
                assert!(declared.contains(name), "{name} sampled before its TYPE");
                value.parse::<u64>().unwrap();
            }
        }
        assert_eq!(declared.len(), 19);
    }
}
