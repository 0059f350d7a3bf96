//! Faults provoked for real, and what the server does about them: a lost or wrong master key.

use sigil_test_support::process::Bounded;

use crate::server::{ADMIN, RunningServer};
use crate::{Sandbox, assert_exit, stderr};

/// `sigil server` on the sandbox's home with `env`, expected to refuse to start.
fn refused(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["server", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut cmd = sb.cmd(&all);
    cmd.env("SIGIL_BOOTSTRAP_ADMIN_KEY", ADMIN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.bounded()
}

/// The defect of issue 18: a server started without its master key file minted a new one for a
/// database full of data keys, said it was ready, and answered every read `500`. Now a missing
/// key file is a refusal to start that names the file (and none is created), a wrong key is a
/// refusal that names where it came from and the key the data keys need, a previous key file
/// that does not exist is refused too, and the right key serves again.
#[test]
fn a_server_never_starts_with_a_master_key_that_cannot_open_its_data_keys() {
    let sb = Sandbox::new();
    let key_file = sb.home().join(".sigil/server/master.key");
    {
        let srv = RunningServer::start(&sb, &[], &[]);
        srv.put("kept", serde_json::json!("the value kept"));
    }
    let saved = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let o = refused(&sb, &[], &[]);
    assert_exit(&o, 1, "does not exist");
    assert!(
        stderr(&o).contains(&key_file.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!key_file.exists(), "no new key was minted");
    // another key from the environment: refused, naming it and the key the data keys need
    let other = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let o = refused(&sb, &[], &[("SIGIL_MASTER_KEY", other)]);
    assert_exit(&o, 1, "the master key from SIGIL_MASTER_KEY");
    assert!(stderr(&o).contains("does not open this database's data keys"));
    assert!(!stderr(&o).contains(other), "the key itself is never shown");
    // the right key, with a previous key file that does not exist: refused, none created
    std::fs::write(&key_file, &saved).unwrap();
    let missing = sb.home().join("previous.key");
    let p = missing.to_str().unwrap();
    let o = refused(&sb, &["--previous-master-key-file", p], &[]);
    assert_exit(&o, 1, "previous.key does not exist");
    assert!(!missing.exists());
    // the right key alone: it serves what it kept
    let srv = RunningServer::start(&sb, &[], &[]);
    let read = srv.client(ADMIN).get_secret("kept", None).unwrap().unwrap();
    assert_eq!(read.value, "the value kept");
}

/// `sigil server backup` while the server takes writes: the copy passes `PRAGMA integrity_check`,
/// is private, and a server started on it (with the same master key) reads every write that was
/// acknowledged before the backup began; a backup never overwrites a file.
#[test]
fn a_backup_under_write_load_restores_every_write_acknowledged_before_it() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let copy = sb.home().join("backups/sigil-copy.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let stop = AtomicBool::new(false);
    let acked: Mutex<Vec<(String, String, Instant)>> = Mutex::new(Vec::new());
    let (began, ended, out) = std::thread::scope(|s| {
        for w in 0..2 {
            let (srv, stop, acked) = (&srv, &stop, &acked);
            s.spawn(move || {
                let c = srv.client(ADMIN);
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (name, value) = (format!("load/w{w}-{i}"), format!("value {w} {i}"));
                    c.put_secret(&name, &serde_json::json!(value), None)
                        .unwrap();
                    acked.lock().unwrap().push((name, value, Instant::now()));
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let began = Instant::now();
        let out = sb
            .cmd(&["server", "backup", "--to", copy.to_str().unwrap()])
            .bounded();
        let ended = Instant::now();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        (began, ended, out)
    });
    assert_exit(&out, 0, "the master key is not in it");
    let acked = acked.into_inner().unwrap();
    let before: Vec<&(String, String, Instant)> =
        acked.iter().filter(|(_, _, at)| *at < began).collect();
    assert!(
        before.len() > 10,
        "writes before the backup: {}",
        before.len()
    );
    assert!(
        acked.iter().any(|(_, _, at)| *at > ended),
        "writes went on after it"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let c = rusqlite::Connection::open(&copy).unwrap();
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
    // a second backup to the same file is refused and leaves the copy alone
    let size = std::fs::metadata(&copy).unwrap().len();
    let again = sb
        .cmd(&["server", "backup", "--to", copy.to_str().unwrap()])
        .bounded();
    assert_exit(&again, 1, "already exists");
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), size);
    drop(srv);
    // restored: a server on the copy, with the same master key (the sandbox's key file)
    let url = format!("sqlite://{}", copy.display());
    let restored = RunningServer::start(&sb, &["--database", &url], &[]);
    let c = restored.client(ADMIN);
    for (name, value, _) in before {
        let got = c
            .get_secret(name, None)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} lost"));
        assert_eq!(got.value, serde_json::json!(value), "{name}");
    }
}
