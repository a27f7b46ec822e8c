//! `mqtt-lab sub`: subscribes to one or more filters and prints each message's payload (with
//! `-v`, `topic payload`), until `-C` messages were printed, `-W` seconds passed, Ctrl-C, or the
//! connection is lost.
//!
//! Events that arrive while the SUBSCRIBE is in flight (messages of a resumed session, a lost
//! connection) are kept and handled in order once the SUBACK is in.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use clap::{ArgAction, Args};
use tokio::sync::oneshot;

use super::{ConnArgs, EXIT_FAILED, EXIT_TIMEOUT, ToolError, connect, finish, runtime};
use crate::cli::{EXIT_USAGE, require_real_network};
use crate::client::ClientEvent;
use crate::codec::{Publish, ReasonCode};
use crate::net::client::{Events, MqttClient, subscription};

/// `mqtt-lab sub` flags.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    pub topics: Vec<String>,
    /// Exit after printing this many messages.
    #[arg(short = 'C', long = "count", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Print "topic payload" instead of the payload alone.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do not add a newline after each payload.
    #[arg(short = 'N', long = "no-newline")]
    pub no_newline: bool,
    /// Do not print stale messages (those with the retain flag set).
    #[arg(short = 'R', long = "no-stale")]
    pub no_stale: bool,
    /// Give up after this many seconds (exit code 27), counted from the start.
    #[arg(short = 'W', long = "timeout", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Keep the session when disconnected (clean session 0; 5.0: it never expires). Needs -i.
    #[arg(short = 'c', long = "disable-clean-session")]
    pub persistent: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// Hooks for callers that run [`subscribe`] in-process.
#[derive(Default)]
pub struct SubHooks {
    /// Sent once the SUBACK granted at least one subscription.
    pub subscribed: Option<oneshot::Sender<()>>,
    /// When it completes, the tool disconnects and returns `Ok`.
    pub stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for SubHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubHooks")
            .field("subscribed", &self.subscribed.is_some())
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// Runs `mqtt-lab sub`, printing to stdout until Ctrl-C (or `-C`, `-W`); returns the exit code.
pub fn run_sub(args: SubArgs) -> i32 {
    if let Err(msg) = require_real_network("sub") {
        eprintln!("error: {msg}");
        return EXIT_USAGE;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return finish(Err(e)),
    };
    let mut out = std::io::stdout();
    let hooks = SubHooks {
        subscribed: None,
        stop: Some(Box::pin(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })),
    };
    finish(rt.block_on(subscribe(&args, &mut out, hooks)))
}

/// What ended one wait of the tool.
enum Wake<T> {
    Done(T),
    TimedOut,
    Stopped,
}

/// Subscribes as `args` say and writes messages to `out`.
pub async fn subscribe(
    args: &SubArgs,
    out: &mut (dyn Write + Send),
    hooks: SubHooks,
) -> Result<(), ToolError> {
    for filter in &args.topics {
        crate::client::validate_topic_filter(filter)
            .map_err(|why| ToolError::usage(format!("invalid topic filter {filter:?}: {why}")))?;
    }
    if args.persistent && args.conn.id.is_none() {
        return Err(ToolError::usage("-c needs a client id (-i)"));
    }
    let config = args.conn.client_config('s', args.persistent)?;
    let timeout = args.timeout.map(Duration::from_secs);
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut timed: Pin<Box<dyn Future<Output = ()> + Send>> = match deadline {
        Some(d) => Box::pin(tokio::time::sleep_until(d)),
        None => Box::pin(std::future::pending()),
    };
    let mut stop = hooks
        .stop
        .unwrap_or_else(|| Box::pin(std::future::pending()));
    let timed_out = |printed: u64| {
        ToolError::new(
            EXIT_TIMEOUT,
            format!(
                "timed out after {}s ({printed} message(s) printed)",
                args.timeout.unwrap_or(0)
            ),
        )
    };

    let (client, mut events) =
        match wake(connect(args.conn.options(config)?), &mut timed, &mut stop).await {
            Wake::Done(r) => r?,
            Wake::TimedOut => return Err(timed_out(0)),
            Wake::Stopped => return Ok(()),
        };

    let mut early: VecDeque<ClientEvent> = VecDeque::new();
    match request_subscriptions(
        args,
        &client,
        &mut events,
        &mut early,
        &mut timed,
        &mut stop,
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(e) => return Err(e.unwrap_or_else(|| timed_out(0))),
    }
    if let Some(tx) = hooks.subscribed {
        let _ = tx.send(());
    }

    let mut printed: u64 = 0;
    let result = loop {
        if args.count.is_some_and(|c| printed >= c) {
            break Ok(());
        }
        let event = match early.pop_front() {
            Some(ev) => Some(ev),
            None => match wake(events.recv(), &mut timed, &mut stop).await {
                Wake::Done(ev) => ev,
                Wake::TimedOut => break Err(timed_out(printed)),
                Wake::Stopped => break Ok(()),
            },
        };
        match event {
            Some(ClientEvent::Message(p)) => {
                if args.no_stale && p.retain {
                    continue;
                }
                match print(out, &p, args) {
                    Ok(()) => printed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break Ok(()),
                    Err(e) => {
                        break Err(ToolError::new(EXIT_FAILED, format!("cannot write: {e}")));
                    }
                }
            }
            Some(ClientEvent::ConnectionLost { cause }) => {
                break Err(ToolError::new(
                    EXIT_FAILED,
                    format!("connection lost: {cause}"),
                ));
            }
            Some(_) => {}
            None => break Err(ToolError::new(EXIT_FAILED, "the client stopped")),
        }
    };
    finish_session(client, events).await;
    result
}

/// Sends the SUBSCRIBE for every filter of `args` and waits for its SUBACK, keeping in `early`
/// whatever arrives meanwhile. `Ok(true)`: at least one subscription was granted (refused ones
/// are warned about); `Ok(false)`: stopped by the stop signal; `Err(None)`: timed out;
/// `Err(Some(e))`: failed. The client has been told to disconnect on every path but `Ok(true)`.
async fn request_subscriptions(
    args: &SubArgs,
    client: &MqttClient,
    events: &mut Events,
    early: &mut VecDeque<ClientEvent>,
    timed: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
    stop: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Result<bool, Option<ToolError>> {
    let subs = args
        .topics
        .iter()
        .map(|t| subscription(t.clone(), args.conn.qos))
        .collect();
    let reasons = {
        let mut request = std::pin::pin!(client.subscribe(subs));
        loop {
            let step = wake(
                async {
                    tokio::select! {
                        biased;
                        r = &mut request => Ok(r),
                        ev = events.recv() => Err(ev),
                    }
                },
                timed,
                stop,
            )
            .await;
            match step {
                Wake::Done(Ok(r)) => break r,
                Wake::Done(Err(Some(ev))) => early.push_back(ev),
                Wake::Done(Err(None)) => {
                    return Err(Some(ToolError::new(EXIT_FAILED, "the client stopped")));
                }
                Wake::TimedOut => {
                    client.disconnect(ReasonCode::Success).await;
                    return Err(None);
                }
                Wake::Stopped => {
                    client.disconnect(ReasonCode::Success).await;
                    return Ok(false);
                }
            }
            if let Some(ClientEvent::ConnectionLost { cause }) = early.back() {
                let e = ToolError::new(EXIT_FAILED, format!("connection lost: {cause}"));
                client.disconnect(ReasonCode::Success).await;
                return Err(Some(e));
            }
        }
    };
    let reasons = match reasons {
        Ok(r) => r,
        Err(e) => {
            client.disconnect(ReasonCode::Success).await;
            return Err(Some(ToolError::new(
                EXIT_FAILED,
                format!("subscribe failed: {e}"),
            )));
        }
    };
    let refused: Vec<String> = args
        .topics
        .iter()
        .zip(&reasons)
        .filter(|(_, r)| r.is_error())
        .map(|(t, r)| super::suback_refusal_text(t, *r, args.conn.protocol))
        .collect();
    if refused.len() == args.topics.len() {
        client.disconnect(ReasonCode::Success).await;
        return Err(Some(ToolError::new(
            EXIT_FAILED,
            format!(
                "the broker refused every subscription: {}",
                refused.join(", ")
            ),
        )));
    }
    if !refused.is_empty() {
        eprintln!("warning: subscriptions refused: {}", refused.join(", "));
    }
    Ok(true)
}

/// Disconnects, draining events so the event loop is never blocked on a full stream.
async fn finish_session(client: MqttClient, mut events: Events) {
    let drain = async { while events.recv().await.is_some() {} };
    tokio::join!(client.disconnect(ReasonCode::Success), drain);
}

/// Waits for `fut`, unless the timeout or the stop signal comes first.
async fn wake<T>(
    fut: impl Future<Output = T>,
    timed: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
    stop: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Wake<T> {
    tokio::select! {
        biased;
        _ = stop => Wake::Stopped,
        _ = timed => Wake::TimedOut,
        v = fut => Wake::Done(v),
    }
}

/// Writes one message as `mosquitto_sub` does (`-v`: `topic payload`, an empty payload shown
/// as `(null)`), then flushes.
fn print(out: &mut (dyn Write + Send), p: &Publish, args: &SubArgs) -> std::io::Result<()> {
    if args.verbose {
        out.write_all(p.topic.as_bytes())?;
        out.write_all(b" ")?;
        if p.payload.is_empty() {
            out.write_all(b"(null)")?;
        } else {
            out.write_all(&p.payload)?;
        }
    } else {
        out.write_all(&p.payload)?;
    }
    if !args.no_newline {
        out.write_all(b"\n")?;
    }
    out.flush()
}
