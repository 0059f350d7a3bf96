//! `sigil run -- CMD ARGS…`: a command with secrets in its environment and masked output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use sigil_core::{Redactor, SecretName, SecretValue};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::UsageError;
use crate::cli::RunArgs;
use crate::failure::Failure;
use crate::loaded::load;
use crate::select::Selection;

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

/// Variables that change how programs load or start: a secret that would set one is refused
/// unless `--only` names it. Exact names, then prefixes.
pub const PROTECTED_VARS: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "PATH",
    "HOME",
    "SHELL",
    "ZDOTDIR",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "GCONV_PATH",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
];

/// Prefixes of protected variables (`LD_PRELOAD`, `PYTHONSTARTUP`, `GIT_SSH_COMMAND`, …).
pub const PROTECTED_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "BASH_FUNC_",
    "PYTHON",
    "PERL5",
    "GIT_",
    "SIGIL",
];

/// Sigil's own variables that hold credentials or secrets: masked when `--keep-sigil-env` passes
/// them on.
const SIGIL_CREDENTIAL_VARS: &[&str] = &[
    "SIGIL_API_KEY",
    "SIGIL_MASTER_KEY",
    "SIGIL_PREVIOUS_MASTER_KEY",
    "SIGIL_BOOTSTRAP_ADMIN_KEY",
    "SIGIL_DATABASE_URL",
];

/// Whether `var` changes how programs load or start.
pub fn is_protected(var: &str) -> bool {
    PROTECTED_VARS.contains(&var) || PROTECTED_PREFIXES.iter().any(|p| var.starts_with(p))
}

/// The environment variable of each secret (`prefix` first, upper-cased with `upper`); two names
/// that map to one variable are an error.
pub fn env_vars(
    names: &[SecretName],
    prefix: &str,
    upper: bool,
) -> Result<BTreeMap<String, SecretName>, UsageError> {
    let mut vars: BTreeMap<String, SecretName> = BTreeMap::new();
    for name in names {
        let mut var = format!("{prefix}{}", name.to_env_var());
        if upper {
            var.make_ascii_uppercase();
        }
        insert_var(&mut vars, var, name)?;
    }
    Ok(vars)
}

/// Adds `var` for `name`; a variable another secret already sets is an error naming both.
fn insert_var(
    vars: &mut BTreeMap<String, SecretName>,
    var: String,
    name: &SecretName,
) -> Result<(), UsageError> {
    if let Some(other) = vars.get(&var) {
        return Err(UsageError(format!(
            "secrets {:?} and {:?} both map to the environment variable {var}; pass --only to choose one",
            other.as_str(),
            name.as_str()
        )));
    }
    vars.insert(var, name.clone());
    Ok(())
}

/// Prefect 1 reads `PREFECT__CONTEXT__SECRETS__<NAME>` as the local secret `NAME`, case kept.
pub const PREFECT_SECRETS: &str = "PREFECT__CONTEXT__SECRETS__";

/// Whether Prefect 1 can read a secret of this name from a variable: a variable name, and no
/// `__` (Prefect splits a variable's name at each `__` into nested keys).
fn prefect_can_read(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__")
}

/// Adds `PREFECT__CONTEXT__SECRETS__<NAME>` for each secret to `vars`; returns the names that
/// cannot be passed that way (to be reported). A variable another secret already sets is an error.
pub fn add_prefect_vars(
    vars: &mut BTreeMap<String, SecretName>,
    names: &[SecretName],
) -> Result<Vec<SecretName>, UsageError> {
    let mut unreadable = Vec::new();
    for name in names {
        if !prefect_can_read(name.as_str()) {
            unreadable.push(name.clone());
            continue;
        }
        insert_var(vars, format!("{PREFECT_SECRETS}{}", name.as_str()), name)?;
    }
    Ok(unreadable)
}

/// Refuses variables a secret may not set: a protected one unless `explicit` (named in
/// `--only`) holds the secret, and one already set in `current` unless `override_env`. Every
/// refusal is listed, each naming the secret and the variable.
pub fn check_vars(
    vars: &BTreeMap<String, SecretName>,
    explicit: &BTreeSet<SecretName>,
    override_env: bool,
    current: impl Fn(&str) -> bool,
) -> Result<(), UsageError> {
    let mut refused = Vec::new();
    for (var, name) in vars {
        if is_protected(var) && !explicit.contains(name) {
            refused.push(format!(
                "secret {:?} would set {var}, which changes how programs load or start \
                 (name it in --only to pass it anyway, or use --prefix)",
                name.as_str()
            ));
        } else if current(var) && !override_env {
            refused.push(format!(
                "secret {:?} would replace {var}, which is already set \
                 (pass --override to replace it, or use --prefix)",
                name.as_str()
            ));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "refused to run the command:\n  {}",
        refused.join("\n  ")
    )))
}

/// The password of a URL such as `postgres://user:password@host/db`.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1).filter(|p| !p.is_empty())
}

pub fn check_prefix(prefix: &str) -> Result<(), UsageError> {
    let ok = prefix
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "--prefix {prefix:?} cannot start an environment variable's name \
             (letters, digits and '_', not starting with a digit)"
        )))
    }
}

pub fn run(a: RunArgs) -> crate::failure::Result<u8> {
    let prefix = a.prefix.as_deref().unwrap_or_default();
    check_prefix(prefix)?;
    let loaded = load()?;
    let resolver = loaded.resolver()?;
    let selection = Selection::parse(&a.only)?;
    let names = selection.names(&resolver)?;
    let mut vars = if a.prefect_only {
        BTreeMap::new()
    } else {
        env_vars(&names, prefix, a.upper)?
    };
    if a.prefect || a.prefect_only {
        let unreadable = add_prefect_vars(&mut vars, &names)?;
        if !unreadable.is_empty() {
            let list: Vec<&str> = unreadable.iter().map(SecretName::as_str).collect();
            eprintln!(
                "sigil: not passed to Prefect (a name Prefect reads from a variable has only \
                 A-Z a-z 0-9 _, no \"__\", and does not start with a digit): {}",
                list.join(", ")
            );
        }
    }
    // before any value is read: a refused name costs no read and no audit record
    check_vars(&vars, selection.exact(), a.override_env, |v| {
        std::env::var_os(v).is_some()
    })?;

    let program = a.command[0].clone();
    let mut cmd = Command::new(&program);
    cmd.args(&a.command[1..]);
    let redactor = Arc::new(Redactor::with_min_len(
        loaded.settings.limits.min_mask_bytes,
    ));
    for (var, value) in std::env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        if !var.starts_with("SIGIL") {
            continue;
        }
        if !a.keep_sigil_env {
            cmd.env_remove(var);
        } else if SIGIL_CREDENTIAL_VARS.contains(&var)
            || var.starts_with("SIGIL__CONTEXT__SECRETS__")
        {
            let value = value.to_string_lossy();
            redactor.register_text(&value);
            if let Some(password) = url_password(&value) {
                redactor.register_text(password);
            }
        }
    }
    // every source is asked once for what the ones before it lacked: one batch read from a
    // server; a secret set as two variables (--prefect) is read once
    let names: Vec<SecretName> = vars
        .values()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let values: BTreeMap<&SecretName, SecretValue> =
        names.iter().zip(resolver.get_many(&names)?).collect();
    for (var, name) in &vars {
        let value = &values[name];
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
        Err(Failure::Passed(code))
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

    fn vars(names: &[&str], prefix: &str) -> BTreeMap<String, SecretName> {
        let names: Vec<SecretName> = names.iter().map(|s| s.parse().unwrap()).collect();
        env_vars(&names, prefix, false).unwrap()
    }

    #[test]
    fn protected_variables_need_only() {
        for var in [
            "BASH_ENV",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "PYTHONSTARTUP",
            "PERL5OPT",
            "GIT_SSH_COMMAND",
            "SIGIL_API_KEY",
            "SIGIL__BACKEND",
            "PATH",
            "_JAVA_OPTIONS",
            "IFS",
        ] {
            assert!(is_protected(var), "{var}");
        }
        for var in [
            "DB_PASSWORD",
            "PATHS",
            "MY_PATH",
            "ld_preload",
            "GITHUB_TOKEN",
            "ENVIRONMENT",
        ] {
            assert!(!is_protected(var), "{var}");
        }
        let v = vars(&["BASH_ENV", "prod/LD_X", "ok"], "");
        let e = check_vars(&v, &BTreeSet::new(), false, |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret \"BASH_ENV\" would set BASH_ENV"), "{e}");
        assert!(
            !e.contains("prod_LD_X"),
            "only the start of a variable counts: {e}"
        );
        let explicit = BTreeSet::from(["BASH_ENV".parse().unwrap()]);
        check_vars(&v, &explicit, false, |_| false).unwrap();
        // a prefix decides too: everything under LD_ is refused
        let v = vars(&["X"], "LD_");
        assert!(check_vars(&v, &BTreeSet::new(), false, |_| false).is_err());
    }

    #[test]
    fn existing_variables_need_override() {
        let v = vars(&["TZ", "DB"], "");
        let e = check_vars(&v, &BTreeSet::new(), false, |var| var == "TZ")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret \"TZ\" would replace TZ") && e.contains("--override"),
            "{e}"
        );
        check_vars(&v, &BTreeSet::new(), true, |var| var == "TZ").unwrap();
        // --override does not open the protected list
        let v = vars(&["PATH"], "");
        assert!(check_vars(&v, &BTreeSet::new(), true, |_| true).is_err());
    }

    #[test]
    fn prefixes_and_url_passwords() {
        check_prefix("APP_").unwrap();
        check_prefix("").unwrap();
        assert!(check_prefix("1X").is_err() && check_prefix("A-B").is_err());
        assert_eq!(
            url_password("postgres://u:p%40ss@h:5432/db?x=1"),
            Some("p%40ss")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("sqlite:///x"), None);
    }

    #[test]
    fn prefect_reads_only_plain_variable_names() {
        let names: Vec<SecretName> = [
            "MYSECRET", "aws_key", "_x", "prod/db", "a.b", "A__B", "9x", "a-b",
        ]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
        let mut vars = BTreeMap::new();
        let unreadable = add_prefect_vars(&mut vars, &names).unwrap();
        let set: Vec<&str> = vars.keys().map(String::as_str).collect();
        assert_eq!(
            set,
            [
                "PREFECT__CONTEXT__SECRETS__MYSECRET",
                "PREFECT__CONTEXT__SECRETS___x",
                "PREFECT__CONTEXT__SECRETS__aws_key",
            ]
        );
        let refused: Vec<&str> = unreadable.iter().map(SecretName::as_str).collect();
        assert_eq!(refused, ["prod/db", "a.b", "A__B", "9x", "a-b"]);
        // a secret whose own variable would be one of these is a collision, named
        let mut vars = vars_of(&["PREFECT__CONTEXT__SECRETS__MYSECRET"]);
        let e = add_prefect_vars(&mut vars, &names[..1]).unwrap_err();
        assert!(
            e.0.contains("both map to the environment variable"),
            "{}",
            e.0
        );
    }

    fn vars_of(names: &[&str]) -> BTreeMap<String, SecretName> {
        vars(names, "")
    }

    #[test]
    fn collisions_name_both_secrets() {
        let names: Vec<SecretName> = ["db/password", "db.password"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let e = env_vars(&names, "", false).unwrap_err().to_string();
        assert!(
            e.contains("\"db/password\" and \"db.password\"") && e.contains("db_password"),
            "{e}"
        );
        let names: Vec<SecretName> = ["a/b", "A_B"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(env_vars(&names, "", false).unwrap().len(), 2);
    }
}
