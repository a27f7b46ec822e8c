//! `mqtt-lab pub`: publishes one message (`-m`, `-f`, `-n`, `-s`) or one per line of stdin
//! (`-l`), waits until each is confirmed at its QoS, then disconnects.
//!
//! Lines are published as they are read, with at most [`WINDOW`] awaiting confirmation, so a
//! long stream never overflows the client's outbox. A lost connection ends the tool: nothing
//! is re-sent.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::PathBuf;

use bytes::Bytes;
use clap::{ArgAction, Args};
use tokio::sync::{mpsc, watch};

use super::{ConnArgs, EXIT_FAILED, ToolError, connect, finish, runtime};
use crate::cli::{EXIT_USAGE, require_real_network};
use crate::client::{ClientEvent, DownCause};
use crate::codec::ReasonCode;
use crate::net::client::{MqttClient, PendingPublish, RequestError};

/// Publishes awaiting confirmation at once with `-l`.
pub const WINDOW: usize = 64;
/// Lines read ahead of the publisher with `-l`.
const LINE_QUEUE: usize = 256;

/// `mqtt-lab pub` flags.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub topic: String,
    #[command(flatten)]
    pub source: MessageSource,
    /// Ask the broker to retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// Where the message comes from: exactly one of these.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct MessageSource {
    /// The message.
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Send each line of stdin as a separate message (without its newline).
    #[arg(short = 'l', long = "stdin-line")]
    pub lines: bool,
    /// Send a zero-length message (with -r: clears the retained message).
    #[arg(short = 'n', long = "null-message")]
    pub null: bool,
    /// Send all of stdin as one message.
    #[arg(short = 's', long = "stdin-file")]
    pub stdin_file: bool,
}

/// Runs `mqtt-lab pub` with the process's stdin; returns the exit code.
pub fn run_pub(args: PubArgs) -> i32 {
    if let Err(msg) = require_real_network("pub") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return finish(Err(e)),
    };
    let stdin = Box::new(std::io::BufReader::new(std::io::stdin()));
    finish(rt.block_on(publish(&args, stdin)))
}

/// Publishes as `args` say, reading `-l` / `-s` input from `stdin`. Returns once every
/// message is confirmed (QoS 0: written) and the client has disconnected.
pub async fn publish(args: &PubArgs, stdin: Box<dyn BufRead + Send>) -> Result<(), ToolError> {
    crate::client::validate_topic_name(&args.topic)
        .map_err(|why| ToolError::usage(format!("invalid topic {:?}: {why}", args.topic)))?;
    let config = args.conn.client_config('p', false)?;
    // Read single messages before connecting, so a bad file fails without touching the broker.
    let mut stdin = Some(stdin);
    let single: Option<Bytes> = if let Some(m) = &args.source.message {
        Some(Bytes::from(m.clone()))
    } else if let Some(path) = &args.source.file {
        let data = std::fs::read(path)
            .map_err(|e| ToolError::usage(format!("cannot read {}: {e}", path.display())))?;
        Some(Bytes::from(data))
    } else if args.source.null {
        Some(Bytes::new())
    } else if args.source.stdin_file {
        let mut data = Vec::new();
        let mut input = stdin.take().expect("stdin is read once");
        input
            .read_to_end(&mut data)
            .map_err(|e| ToolError::usage(format!("cannot read stdin: {e}")))?;
        Some(Bytes::from(data))
    } else {
        None
    };

    let (client, mut events) = connect(args.conn.options(config)?).await?;
    let (lost_tx, mut lost) = watch::channel(None::<DownCause>);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let ClientEvent::ConnectionLost { cause } = event {
                let _ = lost_tx.send(Some(cause));
            }
        }
    });

    let result = match single {
        Some(payload) => match start(&client, args, payload, &mut lost).await {
            Ok(p) => confirm(p, &mut lost).await,
            Err(e) => Err(e),
        },
        None => {
            let input = stdin.take().expect("-l reads stdin");
            publish_lines(&client, args, input, &mut lost).await
        }
    };
    client.disconnect(ReasonCode::Success).await;
    result
}

async fn publish_lines(
    client: &MqttClient,
    args: &PubArgs,
    input: Box<dyn BufRead + Send>,
    lost: &mut watch::Receiver<Option<DownCause>>,
) -> Result<(), ToolError> {
    let (tx, mut lines) = mpsc::channel::<std::io::Result<Bytes>>(LINE_QUEUE);
    // Blocking reads stay off the runtime; the thread ends at end of input or when the
    // publisher stops listening.
    std::thread::spawn(move || read_lines(input, tx));
    let mut window: VecDeque<PendingPublish> = VecDeque::new();
    while let Some(line) = lines.recv().await {
        let payload =
            line.map_err(|e| ToolError::new(EXIT_FAILED, format!("cannot read stdin: {e}")))?;
        if window.len() >= WINDOW {
            let oldest = window.pop_front().expect("window is full");
            confirm(oldest, lost).await?;
        }
        window.push_back(start(client, args, payload, lost).await?);
    }
    for p in window {
        confirm(p, lost).await?;
    }
    Ok(())
}

fn read_lines(mut input: Box<dyn BufRead + Send>, tx: mpsc::Sender<std::io::Result<Bytes>>) {
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if tx.blocking_send(Ok(Bytes::from(line))).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

async fn start(
    client: &MqttClient,
    args: &PubArgs,
    payload: Bytes,
    lost: &mut watch::Receiver<Option<DownCause>>,
) -> Result<PendingPublish, ToolError> {
    check_lost(lost)?;
    client
        .publish_start(
            args.topic.clone(),
            payload,
            args.conn.qos,
            args.retain,
            Default::default(),
        )
        .await
        .map_err(publish_failure)
}

/// Waits for a publish's outcome, or for the connection to be lost.
async fn confirm(
    pending: PendingPublish,
    lost: &mut watch::Receiver<Option<DownCause>>,
) -> Result<(), ToolError> {
    let id = pending.id;
    tokio::select! {
        biased;
        outcome = pending.outcome() => outcome.map(|_| ()).map_err(publish_failure),
        cause = lost.wait_for(Option::is_some) => {
            let cause = cause.ok().and_then(|c| *c);
            Err(ToolError::new(
                EXIT_FAILED,
                match cause {
                    Some(cause) => format!("connection lost before publish {id} was confirmed: {cause}"),
                    None => format!("publish {id} was not confirmed"),
                },
            ))
        }
    }
}

fn check_lost(lost: &watch::Receiver<Option<DownCause>>) -> Result<(), ToolError> {
    match *lost.borrow() {
        Some(cause) => Err(ToolError::new(
            EXIT_FAILED,
            format!("connection lost before every message was confirmed: {cause}"),
        )),
        None => Ok(()),
    }
}

fn publish_failure(e: RequestError) -> ToolError {
    match e {
        RequestError::Rejected(reason) => ToolError::new(
            EXIT_FAILED,
            format!(
                "the broker rejected the message: {reason:?} (0x{:02x})",
                reason.as_u8()
            ),
        ),
        RequestError::Refused(why) => ToolError::usage(format!("cannot publish: {why}")),
        other => ToolError::new(EXIT_FAILED, format!("publish failed: {other}")),
    }
}
