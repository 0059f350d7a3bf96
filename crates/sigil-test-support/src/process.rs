//! Waiting for a child process with a deadline: a command that hangs fails its test (naming
//! the command and what it printed) instead of hanging the run.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a test lets one command of the CLI run before it fails.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// As [`Command::output`] (stdin from `/dev/null` unless set), but the command is killed and
/// the test fails when it runs longer than `limit`.
///
/// # Panics
/// When the command cannot start or outlives `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    finish_within(child, limit, &format!("{cmd:?}"))
}

/// [`output_within`] with [`COMMAND_LIMIT`] as a method: `cmd.bounded()` where a test would
/// write `cmd.output().unwrap()`.
pub trait Bounded {
    /// The command's output; the test fails when it outlives [`COMMAND_LIMIT`].
    fn bounded(&mut self) -> Output;
}

impl Bounded for Command {
    fn bounded(&mut self) -> Output {
        output_within(self, COMMAND_LIMIT)
    }
}

/// Kills a process (SIGKILL) when it still runs `limit` after the watchdog was made, unless the
/// watchdog was dropped first: a test that reads a child's output line by line cannot block
/// for ever on a child that hangs (its pipe closes and the read ends).
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// Watches process `pid` for `limit`.
    #[must_use]
    pub fn new(pid: u32, limit: Duration) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(limit) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        });
        Watchdog { stop: Some(stop) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A pipe read to its end on a thread of its own, into a buffer that can be read before it ends.
struct Drain {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Drain {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Drain {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let sink = bytes.clone();
        std::thread::spawn(move || {
            if let Some(mut p) = pipe {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = p.read(&mut chunk) {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            }
            let _ = tx.send(());
        });
        Drain { bytes, done }
    }

    /// What was read, once the pipe ended or `until` passed (a grandchild may hold it open).
    fn take(self, until: Instant) -> Vec<u8> {
        let _ = self
            .done
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        std::mem::take(&mut *self.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Collects a spawned child's piped stdout and stderr and waits for it, for at most `limit`;
/// past that it is killed and the test fails, saying `what` it was and what it printed.
///
/// # Panics
/// When the child outlives `limit`.
pub fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    let out = Drain::start(child.stdout.take());
    let err = Drain::start(child.stderr.take());
    let Some(status) = wait_within(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        let err = err.take(Instant::now());
        panic!(
            "{what} still ran after {limit:?}; killed. stderr:\n{}",
            String::from_utf8_lossy(&err)
        );
    };
    Output {
        status,
        stdout: out.take(deadline),
        stderr: err.take(deadline),
    }
}

/// The child's exit status, or `None` when it still runs after `limit` (it is left running).
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_ends_is_collected() {
        let o = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            COMMAND_LIMIT,
        );
        assert_eq!(
            (o.status.code(), &o.stdout[..], &o.stderr[..]),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn a_watchdog_ends_a_hung_child_and_only_that() {
        let mut hung = Command::new("sleep").arg("30").spawn().unwrap();
        let _dog = Watchdog::new(hung.id(), Duration::from_millis(100));
        assert!(wait_within(&mut hung, Duration::from_secs(10)).is_some_and(|s| !s.success()));
        let mut quick = Command::new("sleep").arg("0.3").spawn().unwrap();
        drop(Watchdog::new(quick.id(), Duration::from_millis(100)));
        assert!(wait_within(&mut quick, Duration::from_secs(10)).is_some_and(|s| s.success()));
    }

    #[test]
    fn a_command_that_hangs_fails_the_test() {
        let hung = std::panic::catch_unwind(|| {
            output_within(
                Command::new("sh").args(["-c", "echo waiting >&2; sleep 30"]),
                Duration::from_millis(300),
            )
        });
        let message = *hung.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("still ran after 300ms") && message.contains("waiting"),
            "{message}"
        );
    }
}
