//! Connect, subscribe, publish and receive with the async client.
//!
//! ```text
//! cargo run --example publish_subscribe                   # against a broker started in-process
//! cargo run --example publish_subscribe -- 127.0.0.1:1883 # against any broker
//! ```

#[cfg(not(madsim))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use mqtt_lab::client::{ClientConfig, ClientEvent};
    use mqtt_lab::codec::{Protocol, QoS, ReasonCode};
    use mqtt_lab::net::client::{ClientOptions, MqttClient, subscription};

    let broker = match std::env::args().nth(1) {
        Some(addr) => addr,
        None => start_local_broker().await?,
    };

    // Connect: the client starts its event loop and connects in the background.
    let config = ClientConfig {
        protocol: Protocol::V5,
        client_id: "example".into(),
        ..ClientConfig::default()
    };
    let (client, mut events) = MqttClient::start(ClientOptions::new(&broker, config))?;

    // Requests made before CONNACK wait in the client's outbox; `subscribe` returns at SUBACK.
    let granted = client
        .subscribe(vec![subscription("greetings/#", QoS::AtLeastOnce)])
        .await?;
    println!("subscribed: {granted:?}");

    // `publish` returns when the QoS handshake completes (here: PUBACK).
    let reason = client
        .publish("greetings/world", "hello", QoS::AtLeastOnce, false)
        .await?;
    println!("published: {reason:?}");

    // Messages and connection events arrive on one stream, in order.
    while let Some(event) = events.recv().await {
        match event {
            ClientEvent::Message(msg) => {
                println!(
                    "received on {}: {}",
                    msg.topic,
                    String::from_utf8_lossy(&msg.payload)
                );
                break;
            }
            ClientEvent::Connected {
                session_present, ..
            } => println!("connected (session present: {session_present})"),
            ClientEvent::ConnectionLost { cause } => eprintln!("connection lost: {cause}"),
            _ => {} // request completions, also delivered to the awaiting calls
        }
    }

    client.disconnect(ReasonCode::Success).await;
    Ok(())
}

/// Our broker on a free loopback port, for the duration of the example.
#[cfg(not(madsim))]
async fn start_local_broker() -> std::io::Result<String> {
    use mqtt_lab::broker::{Broker, BrokerConfig};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(mqtt_lab::net::server::serve(
        Broker::new(BrokerConfig::default()),
        vec![listener],
        None,
        std::future::pending(),
    ));
    Ok(addr)
}

#[cfg(madsim)]
fn main() {
    eprintln!("this example needs the real network: build it without --cfg madsim");
}
