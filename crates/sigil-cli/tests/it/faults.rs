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
