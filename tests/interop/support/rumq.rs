//! A `rumqttc` (third-party MQTT 3.1.1 client) connection whose event loop runs in a task,
//! with bounded waits for the packets a test expects.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnAck, ConnectReturnCode, Event, MqttOptions, Packet, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::WAIT;

/// A rumqttc client whose event loop runs in a task and forwards every event.
pub struct Rumq {
    pub client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
    pub task: JoinHandle<()>,
}

impl Rumq {
    pub async fn connect(
        port: u16,
        id: &str,
        tune: impl FnOnce(&mut MqttOptions),
    ) -> (Rumq, ConnAck) {
        let (r, ack) = Rumq::try_connect(port, id, tune)
            .await
            .unwrap_or_else(|e| panic!("rumqttc: no CONNACK: {e}"));
        assert_eq!(ack.code, ConnectReturnCode::Success);
        (r, ack)
    }

    /// The CONNACK, or the error that ended the connection before one came.
    pub async fn try_connect(
        port: u16,
        id: &str,
        tune: impl FnOnce(&mut MqttOptions),
    ) -> Result<(Rumq, ConnAck), String> {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        tune(&mut opts);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let ev = eventloop.poll().await.map_err(|e| e.to_string());
                let stop = ev.is_err();
                if tx.send(ev).is_err() || stop {
                    return;
                }
            }
        });
        let mut r = Rumq {
            client,
            events,
            task,
        };
        loop {
            match tokio::time::timeout(WAIT, r.events.recv()).await {
                Ok(Some(Ok(Event::Incoming(Packet::ConnAck(a))))) => return Ok((r, a)),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err("the event loop stopped".into()),
                Err(_) => panic!("rumqttc: neither a CONNACK nor a closed connection"),
            }
        }
    }

    /// The first incoming packet `pick` accepts, skipping others.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        loop {
            match tokio::time::timeout(WAIT, self.events.recv()).await {
                Ok(Some(Ok(Event::Incoming(p)))) => {
                    if let Some(v) = pick(&p) {
                        return v;
                    }
                }
                Ok(Some(Ok(Event::Outgoing(_)))) => {}
                other => panic!("rumqttc: expected packet not seen: {other:?}"),
            }
        }
    }

    pub async fn message(&mut self) -> Publish {
        self.until(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<SubscribeReasonCode> {
        self.client.subscribe(filter, qos).await.unwrap();
        self.until(|p| match p {
            Packet::SubAck(s) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// Publishes and waits for the end of the QoS handshake (QoS 0: nothing to wait for).
    pub async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &str) {
        self.client
            .publish(topic, qos, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.until(|p| matches!(p, Packet::PubAck(_)).then_some(()))
                    .await
            }
            QoS::ExactlyOnce => {
                self.until(|p| matches!(p, Packet::PubRec(_)).then_some(()))
                    .await;
                self.until(|p| matches!(p, Packet::PubComp(_)).then_some(()))
                    .await
            }
        }
    }

    /// DISCONNECT, then wait until the broker has closed the connection: it has processed the
    /// DISCONNECT, so the session is offline.
    pub async fn disconnect_until_closed(mut self) {
        self.client.disconnect().await.unwrap();
        loop {
            match tokio::time::timeout(WAIT, self.events.recv()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => break,
                Err(_) => panic!("the broker did not close the connection after DISCONNECT"),
            }
        }
        self.task.abort();
    }

    /// DISCONNECT, then wait until the event loop has sent it and stopped.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        loop {
            match tokio::time::timeout(WAIT, self.events.recv()).await {
                Ok(Some(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)))) | Ok(None) => break,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) => break,
                Err(_) => panic!("rumqttc did not disconnect"),
            }
        }
        self.task.abort();
    }
}
