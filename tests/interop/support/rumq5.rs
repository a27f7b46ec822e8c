//! A `rumqttc::v5` (third-party MQTT 5.0 client) connection whose event loop runs in a task,
//! with bounded waits for the packets a test expects.

use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnectReturnCode, Filter, Packet, PubAckReason, Publish, PublishProperties,
    SubscribeProperties, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::WAIT;

/// A rumqttc v5 client whose event loop runs in a task and forwards every event; the task
/// stops at the first error (no reconnection).
pub struct Rumq {
    pub client: AsyncClient,
    pub events: mpsc::UnboundedReceiver<Result<Event, ConnectionError>>,
    pub task: JoinHandle<()>,
}

pub fn spawn(port: u16, id: &str, tune: impl FnOnce(&mut MqttOptions)) -> Rumq {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    tune(&mut opts);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let (tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let ev = eventloop.poll().await;
            let stop = ev.is_err();
            if tx.send(ev).is_err() || stop {
                return;
            }
        }
    });
    Rumq {
        client,
        events,
        task,
    }
}

impl Rumq {
    pub async fn connect(
        port: u16,
        id: &str,
        tune: impl FnOnce(&mut MqttOptions),
    ) -> (Rumq, ConnAck) {
        let mut r = spawn(port, id, tune);
        let ack = r
            .until(|p| match p {
                Packet::ConnAck(a) => Some(a.clone()),
                _ => None,
            })
            .await;
        assert_eq!(ack.code, ConnectReturnCode::Success);
        (r, ack)
    }

    /// Connects expecting a refusal; returns the CONNACK reason code.
    pub async fn refused(
        port: u16,
        id: &str,
        tune: impl FnOnce(&mut MqttOptions),
    ) -> ConnectReturnCode {
        let mut r = spawn(port, id, tune);
        let code = loop {
            match tokio::time::timeout(WAIT, r.events.recv()).await {
                Ok(Some(Err(ConnectionError::ConnectionRefused(code)))) => break code,
                Ok(Some(Ok(Event::Outgoing(_)))) => {}
                other => panic!("rumqttc: expected a refused CONNACK, got {other:?}"),
            }
        };
        r.task.abort();
        code
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

    pub async fn suback(&mut self) -> Vec<SubscribeReasonCode> {
        self.until(|p| match p {
            Packet::SubAck(s) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<SubscribeReasonCode> {
        self.client.subscribe(filter, qos).await.unwrap();
        self.suback().await
    }

    /// Subscribes to one filter with options and properties.
    pub async fn subscribe_filter(
        &mut self,
        filter: Filter,
        props: Option<SubscribeProperties>,
    ) -> Vec<SubscribeReasonCode> {
        match props {
            Some(p) => self
                .client
                .subscribe_many_with_properties(vec![filter], p)
                .await
                .unwrap(),
            None => self.client.subscribe_many(vec![filter]).await.unwrap(),
        }
        self.suback().await
    }

    /// Publishes and waits for the end of the QoS handshake (QoS 0: nothing to wait for).
    pub async fn publish_props(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &str,
        props: Option<PublishProperties>,
    ) {
        let payload = payload.as_bytes().to_vec();
        match props {
            Some(p) => self
                .client
                .publish_with_properties(topic, qos, retain, payload, p)
                .await
                .unwrap(),
            None => self
                .client
                .publish(topic, qos, retain, payload)
                .await
                .unwrap(),
        }
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                let reason = self
                    .until(|p| match p {
                        Packet::PubAck(a) => Some(a.reason),
                        _ => None,
                    })
                    .await;
                assert!(
                    matches!(
                        reason,
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                    ),
                    "PUBACK {reason:?}"
                );
            }
            QoS::ExactlyOnce => {
                self.until(|p| matches!(p, Packet::PubRec(_)).then_some(()))
                    .await;
                self.until(|p| matches!(p, Packet::PubComp(_)).then_some(()))
                    .await
            }
        }
    }

    pub async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &str) {
        self.publish_props(topic, qos, retain, payload, None).await
    }

    /// DISCONNECT (reason 0), then wait until the event loop has sent it and stopped.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        loop {
            match tokio::time::timeout(WAIT, self.events.recv()).await {
                Ok(Some(Ok(Event::Outgoing(Outgoing::Disconnect)))) | Ok(None) => break,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) => break,
                Err(_) => panic!("rumqttc did not disconnect"),
            }
        }
        self.task.abort();
    }

    /// Drops the connection without DISCONNECT.
    pub fn kill(self) {
        self.task.abort();
    }
}
