//! `sigil run -- CMD ARGS…`: a command with secrets in its environment and masked output.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use sigil_core::{Redactor, SecretName};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::RunArgs;
use crate::cmd_secrets::load;
use crate::{PassExit, UsageError};

/// The command could not be started.
#[derive(Debug)]
pub struct SpawnError {
    command: String,
    source: std::io::Error,
}

impl SpawnError {
    /// 127 when the command does not exist, 126 when it cannot be executed, as shells do.
    pub fn exit_code(&self) -> u8 {
        match self.source.kind() {
            std::io::ErrorKind::NotFound => 127,
            std::io::ErrorKind::PermissionDenied => 126,
            _ => crate::EXIT_ERROR,
        }
    }
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.source.kind() {
            std::io::ErrorKind::NotFound => write!(f, "command not found: {}", self.command),
            _ => write!(f, "cannot run {}: {}", self.command, self.source),
        }
    }
}

impl std::error::Error for SpawnError {}

/// The environment variable of each secret; two names that map to one variable are an error.
pub fn env_vars(names: &[SecretName]) -> Result<BTreeMap<String, SecretName>, UsageError> {
    let mut vars: BTreeMap<String, SecretName> = BTreeMap::new();
    for name in names {
        let var = name.to_env_var();
        if let Some(other) = vars.get(&var) {
            return Err(UsageError(format!(
                "secrets {:?} and {:?} both map to the environment variable {var}; pass --only to choose one",
                other.as_str(),
                name.as_str()
            )));
        }
        vars.insert(var, name.clone());
    }
    Ok(vars)
}

pub fn run(a: RunArgs) -> anyhow::Result<u8> {
    let loaded = load()?;
    let resolver = loaded.resolver()?;
    let mut names: Vec<SecretName> = if a.only.is_empty() {
        resolver.list()?.into_iter().map(|l| l.name).collect()
    } else {
        a.only
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| SecretName::parse(s))
            .collect::<Result<_, _>>()?
    };
    names.sort();
    names.dedup();
    let vars = env_vars(&names)?;

    let program = a.command[0].clone();
    let mut cmd = Command::new(&program);
    cmd.args(&a.command[1..]);
    let redactor = Arc::new(Redactor::with_min_len(
        loaded.settings.limits.min_mask_bytes,
    ));
    // every source is asked once for what the ones before it lacked: one batch read from a server
    let names: Vec<SecretName> = vars.values().cloned().collect();
    let values = resolver.get_many(&names)?;
    for ((var, _), value) in vars.iter().zip(&values) {
        redactor.register(value);
        cmd.env(var, &*value.expose_text());
    }
    tracing::debug!(
        secrets = vars.len(),
        masked = !a.no_mask,
        "starting command"
    );
    if !a.no_mask {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // signals that arrive while the command runs go to the command, not to sigil
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    let mut child = cmd.spawn().map_err(|source| SpawnError {
        command: program.to_string_lossy().into_owned(),
        source,
    })?;
    let pid = rustix::process::Pid::from_child(&child);
    let signal_handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                tracing::debug!(signal = sig, "forwarding signal to the command");
                let _ = rustix::process::kill_process(pid, s);
            }
        }
    });
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        let r = redactor.clone();
        pumps.push(std::thread::spawn(move || {
            pump(out, r.writer(std::io::stdout()))
        }));
    }
    if let Some(err) = child.stderr.take() {
        let r = redactor.clone();
        pumps.push(std::thread::spawn(move || {
            pump(err, r.writer(std::io::stderr()))
        }));
    }
    let status = child.wait()?;
    signal_handle.close();
    for p in pumps {
        let _ = p.join();
    }
    let _ = forwarder.join();
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => crate::EXIT_ERROR,
    };
    tracing::debug!(code, "command finished");
    if code == 0 {
        Ok(0)
    } else {
        Err(PassExit(code).into())
    }
}

/// Copies the command's output through the Redactor. When our own output is closed, the
/// command's output is still read (and dropped) so that it never blocks on a full pipe.
fn pump(mut from: impl Read, mut to: sigil_core::RedactingWriter<impl Write>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = true;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if open && (to.write_all(&buf[..n]).is_err() || to.flush().is_err()) {
            open = false;
        }
    }
    if open {
        let _ = to.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_name_both_secrets() {
        let names: Vec<SecretName> = ["db/password", "db.password"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let e = env_vars(&names).unwrap_err().to_string();
        assert!(
            e.contains("\"db/password\" and \"db.password\"") && e.contains("db_password"),
            "{e}"
        );
        let names: Vec<SecretName> = ["a/b", "A_B"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(env_vars(&names).unwrap().len(), 2);
    }
}
