//! Real processes on real loopback TCP, in the real network build only: our broker and client
//! against third-party clients (`rumqttc`, `mosquitto_pub` / `mosquitto_sub`) and the `mosquitto`
//! broker, our shell's connection limits and loopback round trips, the built `mqtt-lab`
//! binary's commands (`broker` with persistence, `passwd`, `pub` / `sub`), the broker's TLS and
//! WebSocket listeners (`mosquitto_pub` / `mosquitto_sub`, paho-mqtt, our client), and scenarios judged
//! against a real broker through fault proxies (`run --target`).
#![cfg(not(madsim))]

mod auth;
mod cli_broker_kill;
mod cli_broker_log;
mod cli_broker_metrics;
mod cli_broker_persist;
mod cli_passwd;
mod cli_pubsub;
mod conformance;
mod mosquitto_broker;
mod mosquitto_clients;
mod net_backpressure;
mod net_journal;
mod net_limits;
mod net_loopback;
mod net_park;
mod support;
mod target;
mod tls;
mod v311_rumqttc;
mod v5_mosquitto;
mod v5_rumqttc;
mod websocket;
