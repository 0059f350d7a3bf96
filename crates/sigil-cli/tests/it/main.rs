//! End-to-end tests of the `sigil` binary: real processes, real files.

mod audit;
mod bad_input;
mod browser;
mod canary;
mod concurrency;
mod crash;
mod edit;
mod export;
mod faults;
mod import;
mod prefect;
mod run;
mod schemathesis;
mod secrets;
mod server;
mod vault;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sigil_test_support::process::{Bounded, COMMAND_LIMIT};

/// A sandbox: its own `$HOME` (so `~/.sigil/config.toml` is ours) and nothing else inherited
/// from the caller's environment but `PATH`.
pub(crate) struct Sandbox {
    pub(crate) dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn home(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.home().join(".sigil/config.toml")
    }

    /// Writes `~/.sigil/config.toml`, private as sigil makes it (a file others can read gets a
    /// warning on stderr).
    pub(crate) fn write_config(&self, text: impl AsRef<[u8]>) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(self.home().join(".sigil")).unwrap();
        std::fs::write(self.config(), text).unwrap();
        std::fs::set_permissions(self.config(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sigil"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).bounded()
    }

    /// Writes `text` to `name` in the sandbox's home and gives its path.
    pub(crate) fn file(&self, name: &str, text: impl AsRef<[u8]>) -> std::path::PathBuf {
        let path = self.home().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `sigil` with `vars` set, asserts it succeeded and returns its stdout.
    #[track_caller]
    pub(crate) fn ok_env(&self, args: &[&str], vars: &[(&str, &str)]) -> String {
        let o = self.run_env(args, vars);
        assert_code(&o, 0);
        stdout(&o)
    }

    /// As [`Sandbox::run`], with these variables set too.
    pub(crate) fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in vars {
            c.env(k, v);
        }
        c.bounded()
    }

    /// As [`Sandbox::run`], with `input` on standard input.
    pub(crate) fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        feed(&mut self.cmd(args), input)
    }
}

/// Runs `cmd` with `input` on its standard input and collects its output.
pub(crate) fn feed(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input); // the command may exit before reading
    sigil_test_support::process::finish_within(child, COMMAND_LIMIT, &format!("{cmd:?}"))
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts the exit code and that stderr says `says`, showing both outputs when not.
#[track_caller]
pub(crate) fn assert_exit(o: &Output, code: i32, says: &str) {
    assert_code(o, code);
    assert!(
        stderr(o).contains(says),
        "wanted {says:?} in stderr: {}",
        stderr(o)
    );
}

/// Asserts the exit code, showing stderr when it differs.
#[track_caller]
pub(crate) fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}
