//! The client side the throughput benchmarks share: our async client, connected to a broker
//! on loopback, and the median of a set of runs.

use std::time::Duration;

use mqtt_lab::client::{ClientConfig, ClientEvent};
use mqtt_lab::codec::Protocol;
use mqtt_lab::net::client::{ClientOptions, Events, MqttClient};

/// Bound on a CONNACK.
const WAIT: Duration = Duration::from_secs(10);

/// A 3.1.1 client `id` that does not reconnect, with room for `window` publishes in flight.
pub fn client_config(id: String, clean: bool, window: usize) -> ClientConfig {
    let mut c = ClientConfig {
        protocol: Protocol::V3_1_1,
        client_id: id,
        clean_start: clean,
        max_inflight: window as u16 + 8,
        max_buffered: 4 * window,
        ..ClientConfig::default()
    };
    c.reconnect.enabled = false;
    c
}

/// Connects to the broker on loopback `port`; panics without a CONNACK.
pub async fn connect(port: u16, config: ClientConfig) -> (MqttClient, Events) {
    let id = config.client_id.clone();
    let (client, mut events) =
        MqttClient::start(ClientOptions::new(format!("127.0.0.1:{port}"), config))
            .expect("client starts");
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(ClientEvent::Connected { .. })) => return (client, events),
            Ok(Some(_)) => continue,
            other => panic!("{id}: no CONNACK: {other:?}"),
        }
    }
}

/// The median of `xs`; NaN (a failed run) when any is NaN.
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
