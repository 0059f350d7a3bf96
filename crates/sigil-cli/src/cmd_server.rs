//! `sigil server`, `sigil server rotate-master-key`, `reset-bootstrap-key` and `backup`.

use std::path::PathBuf;

use anyhow::Context as _;
use sigil_core::config::{Environment, Paths};
use sigil_server::{MasterKeySource, ServerConfig};
use zeroize::Zeroizing;

use crate::EXIT_OK;
use crate::cli::{ServerArgs, ServerCommand};

fn master_source(
    env: &Environment,
    var: &str,
    file: Option<PathBuf>,
    default: PathBuf,
) -> crate::failure::Result<MasterKeySource> {
    if let Some(text) = env.var_str(var)? {
        return Ok(MasterKeySource::Env(Zeroizing::new(text.to_owned())));
    }
    Ok(MasterKeySource::File(file.unwrap_or(default)))
}

pub fn run(args: ServerArgs) -> crate::failure::Result<u8> {
    let env = Environment::from_process();
    let paths = Paths::from_env(&env)?;
    let server_dir = paths.home.join("server");
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", server_dir.join("sigil.db").display()));
    let master = master_source(
        &env,
        "SIGIL_MASTER_KEY",
        args.master_key_file.clone(),
        server_dir.join("master.key"),
    )?;
    let mut previous: Vec<MasterKeySource> = args
        .previous_master_key_file
        .iter()
        .cloned()
        .map(MasterKeySource::File)
        .collect();
    if let Some(text) = env.var_str("SIGIL_PREVIOUS_MASTER_KEY")? {
        previous.push(MasterKeySource::Env(Zeroizing::new(text.to_owned())));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sigil-server")
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        None => {
            let mut config = ServerConfig::new(args.listen, database);
            config.master_key = master;
            config.previous_master_keys = previous;
            config.bootstrap_key = env
                .var_str("SIGIL_BOOTSTRAP_ADMIN_KEY")?
                .map(|k| Zeroizing::new(k.to_owned()));
            let credentials = sigil_client::credentials_path(&env)?;
            config.on_bootstrap = Some(std::sync::Arc::new(move |url: &str, key: &str| {
                // so that the CLI on this machine works at once; an existing file is someone's login
                if credentials.exists() {
                    return;
                }
                match sigil_client::write_credentials(&credentials, url, "default", key) {
                    Ok(()) => eprintln!(
                        "bootstrap: wrote {} (mode 0600) so that the local CLI can use the server",
                        credentials.display()
                    ),
                    Err(e) => eprintln!("warning: bootstrap: cannot save the key for the CLI: {e}"),
                }
            }));
            config.limits.max_value_bytes = args.max_value_bytes;
            config.limits.trusted_proxies = args
                .trusted_proxies
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.parse::<sigil_server::net::Cidr>().map_err(|e| {
                        crate::UsageError(format!("--trusted-proxy (SIGIL_TRUSTED_PROXIES): {e}"))
                    })
                })
                .collect::<Result<_, _>>()?;
            config.secure_cookies = args.secure_cookies;
            if let Some(n) = args.max_connections {
                config.max_connections = n.max(1);
            }
            config.header_read_timeout = args.header_read_timeout;
            config.idle_timeout = args.idle_timeout;
            config.limits.request_timeout = args.request_timeout;
            config.limits.session_idle = args.session_idle;
            config.limits.session_max_age = args.session_max_age;
            config.limits.sessions_per_key = args.sessions_per_key.max(1);
            config.limits.auth_failures_allowed = args.auth_failures_allowed;
            config.limits.auth_window = args.auth_window;
            config.limits.audit_retention = args.audit_retention;
            config.shutdown_timeout = args.shutdown_timeout;
            config.tls = args.tls_cert.clone().zip(args.tls_key.clone());
            runtime
                .block_on(sigil_server::run(config))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(EXIT_OK)
        }
        Some(ServerCommand::ResetBootstrapKey) => {
            let key = runtime.block_on(async {
                // open (not for maintenance): a running server on a SQLite file holds its lock
                let store = sigil_store::open(&database).await?;
                sigil_server::reset_bootstrap_key(&*store)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            eprintln!("revoked the old bootstrap administrator key; the new one (shown once):");
            crate::out::line(&key)?;
            Ok(EXIT_OK)
        }
        Some(ServerCommand::Backup { to }) => {
            let size = runtime.block_on(async {
                // beside a running server: the copy is one read transaction
                let store = sigil_store::open_for_maintenance(&database).await?;
                Ok::<_, anyhow::Error>(store.backup(&to).await?)
            })?;
            eprintln!(
                "backed up {} to {} ({size} bytes); the master key is not in it: keep it backed up on its own",
                sigil_server::redact_url(&database),
                to.display()
            );
            Ok(EXIT_OK)
        }
        Some(ServerCommand::RotateMasterKey { new_key_file }) => {
            runtime.block_on(async {
                let old = sigil_server::load_master_key(&master, false).map_err(|e| anyhow::anyhow!("{e}"))?;
                let (new, created) =
                    sigil_server::crypto::MasterKey::load_or_create(&new_key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
                if created {
                    eprintln!("created a new master key in {} (mode 0600)", new_key_file.display());
                }
                // data keys only: it may run while the server does
                let store = sigil_store::open_for_maintenance(&database).await?;
                let n = sigil_server::rotate_master_key(&*store, &old, &new)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!(
                    "re-wrapped {n} data key(s) with master key {} (was {}); start the server with the new key: \
                     --master-key-file {} (or SIGIL_MASTER_KEY); the old key is no longer needed",
                    new.id(),
                    old.id(),
                    new_key_file.display()
                );
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(EXIT_OK)
        }
    }
}
