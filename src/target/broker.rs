//! The target broker's life as the user's commands run it: `--broker-restart`, or
//! `--broker-stop` and `--broker-start`. A scenario's `crash_broker` fault runs them; without
//! them such scenarios are skipped (see [`super::unsupported`]).
//!
//! - With stop and start: the crash runs the stop command, the restart (after the fault's
//!   `restart_after`) runs the start command.
//! - With restart only: the crash runs the restart command, so the broker is down for as long
//!   as the command takes, not for `restart_after`.
//!
//! Either way the fault heals once the target accepts TCP connections again. A command runs
//! with `sh -c`, at most [`COMMAND_WAIT`]; one that fails or hangs ends the run as a lab error
//! (never as the broker's failure), with its exit status and the end of its error output.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Longest a user's command may run.
pub const COMMAND_WAIT: Duration = Duration::from_secs(60);
/// Longest the target may take to accept connections after a start or restart command.
pub const UP_WAIT: Duration = Duration::from_secs(30);

/// The commands that stop, start or restart the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerCommands {
    pub restart: Option<String>,
    pub stop: Option<String>,
    pub start: Option<String>,
}

impl BrokerCommands {
    /// Checks that the commands given make a whole: a stop needs a start and the other way
    /// round; a restart stands alone or beside both.
    pub fn new(
        restart: Option<String>,
        stop: Option<String>,
        start: Option<String>,
    ) -> Result<BrokerCommands, String> {
        match (&stop, &start) {
            (Some(_), None) => Err("--broker-stop needs --broker-start".into()),
            (None, Some(_)) => Err("--broker-start needs --broker-stop".into()),
            _ => Ok(BrokerCommands {
                restart,
                stop,
                start,
            }),
        }
    }

    /// Whether the broker can be crashed and brought back.
    pub fn can_crash(&self) -> bool {
        self.restart.is_some() || self.stop.is_some()
    }

    /// The crash: the stop command, or else the restart command. `down` is called once, as
    /// soon as the lab knows the broker has died: when the stop command has returned; during a
    /// restart command, when a connect to the target is refused (looked at every
    /// [`DOWN_POLL`]), or else when the command has returned. The broker died at an instant
    /// between the call and `down`, which no one sees.
    pub(super) async fn crash(
        &self,
        target: SocketAddr,
        down: impl FnOnce(),
    ) -> Result<(), String> {
        match (&self.stop, &self.restart) {
            (Some(stop), _) => {
                let done = run("--broker-stop", stop).await;
                down();
                done
            }
            (None, Some(restart)) => {
                let command = run("--broker-restart", restart);
                tokio::pin!(command);
                let mut down = Some(down);
                let done = loop {
                    tokio::select! {
                        done = &mut command => break done,
                        () = tokio::time::sleep(DOWN_POLL), if down.is_some() => {
                            if refused(target).await && let Some(f) = down.take() {
                                f();
                            }
                        }
                    }
                };
                if let Some(f) = down.take() {
                    f();
                }
                done?;
                wait_up(target).await
            }
            (None, None) => Err("no command crashes the target (--broker-restart)".into()),
        }
    }

    /// The restart: the start command (nothing more when the restart command did both).
    pub(super) async fn recover(&self, target: SocketAddr) -> Result<(), String> {
        if let Some(start) = &self.start {
            run("--broker-start", start).await?;
        }
        wait_up(target).await
    }
}

/// Runs `command` with `sh -c` on a blocking thread (the run's clients go on meanwhile).
async fn run(flag: &'static str, command: &str) -> Result<(), String> {
    let cmd = command.to_string();
    let child = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|child| wait_bounded(child, COMMAND_WAIT))
    });
    let output = child
        .await
        .map_err(|e| format!("{flag} {command:?}: {e}"))?
        .map_err(|e| format!("{flag} {command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{flag} {command:?} failed ({}){}{}",
        output.status,
        if tail.is_empty() { "" } else { ": " },
        tail.join(" / ")
    ))
}

/// Waits for `child` at most `limit`, killing it after that.
fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    // A process the command leaves running (a daemon it starts) may hold the pipe open: the
    // output is read on the side and waited for briefly once the command has ended.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    let give_up = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still running after {limit:?}; killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = rx
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    Ok(std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    })
}

/// How often a restart command's target is tried while the command runs, to see it down.
pub const DOWN_POLL: Duration = Duration::from_millis(20);

/// Whether `target` refuses a TCP connection now (nothing listens: the broker is down). A
/// connection it accepts is closed at once, before any CONNECT.
async fn refused(target: SocketAddr) -> bool {
    let attempt = tokio::time::timeout(DOWN_POLL, tokio::net::TcpStream::connect(target)).await;
    matches!(attempt, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Waits until `target` accepts a TCP connection, at most [`UP_WAIT`].
async fn wait_up(target: SocketAddr) -> Result<(), String> {
    let give_up = Instant::now() + UP_WAIT;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(target),
        )
        .await;
        if let Ok(Ok(_)) = attempt {
            return Ok(());
        }
        if Instant::now() >= give_up {
            return Err(format!(
                "the target {target} accepted no connection within {UP_WAIT:?} of being started"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_stop_needs_a_start_and_the_other_way_round() {
        assert!(BrokerCommands::new(None, Some("x".into()), None).is_err());
        assert!(BrokerCommands::new(None, None, Some("x".into())).is_err());
        let none = BrokerCommands::new(None, None, None).unwrap();
        assert!(!none.can_crash());
        let restart = BrokerCommands::new(Some("r".into()), None, None).unwrap();
        assert!(restart.can_crash());
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_status_and_output() {
        let err = rt()
            .block_on(run("--broker-stop", "echo nope >&2; exit 3"))
            .unwrap_err();
        assert!(
            err.contains("--broker-stop") && err.contains("nope"),
            "{err}"
        );
        assert!(err.contains('3'), "{err}");
        rt().block_on(run("--broker-stop", "true")).unwrap();
    }

    #[test]
    fn a_command_that_leaves_a_process_behind_returns_when_it_ends() {
        let started = Instant::now();
        rt().block_on(run("--broker-start", "sleep 20 & true"))
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_hanging_command_is_killed() {
        let child = std::process::Command::new("sh")
            .args(["-c", "sleep 30"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let err = wait_bounded(child, Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_restart_command_tells_when_the_target_is_seen_down() {
        let rt = rt();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The command's broker stops listening at once and comes back after 1.5 s; it is seen
        // down long before the command returns.
        let commands = BrokerCommands::new(Some("sleep 1.5".into()), None, None).unwrap();
        drop(listener);
        let started = Instant::now();
        let seen = std::sync::Mutex::new(None);
        let back = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1_500));
            std::net::TcpListener::bind(addr).unwrap()
        });
        rt.block_on(commands.crash(addr, || *seen.lock().unwrap() = Some(started.elapsed())))
            .unwrap();
        let _listener = back.join().unwrap();
        let seen = seen.lock().unwrap().expect("down was called");
        assert!(
            seen < Duration::from_millis(1_000),
            "seen down after {seen:?}"
        );

        // A broker that never refuses is known down when the command returns.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let commands = BrokerCommands::new(Some("sleep 0.3".into()), None, None).unwrap();
        let started = Instant::now();
        let seen = std::sync::Mutex::new(None);
        rt.block_on(commands.crash(addr, || *seen.lock().unwrap() = Some(started.elapsed())))
            .unwrap();
        let seen = seen.lock().unwrap().expect("down was called");
        assert!(
            seen >= Duration::from_millis(300),
            "seen down after {seen:?}"
        );
    }

    #[test]
    fn recovery_waits_for_the_target_to_listen() {
        let rt = rt();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let commands = BrokerCommands::new(None, Some("true".into()), Some("true".into())).unwrap();
        rt.block_on(commands.recover(addr)).unwrap();
    }
}
