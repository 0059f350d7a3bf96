//! The audit log does not grow without end: `--audit-retention` removes old records in the
//! background while the server serves, and `sigil audit export` ships them first — on SQLite and
//! on PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{ADMIN, RunningServer, http_get_raw, run_env, server_env};
use crate::{Sandbox, assert_code, assert_exit, stdout};

/// `sigil audit export` with these arguments: its records, one JSON object per line.
fn export(sb: &Sandbox, srv: &RunningServer, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "export"];
    all.extend_from_slice(args);
    let o = run_env(sb, &all, &server_env(srv, &[]));
    assert_code(&o, 0);
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn retention_and_export(sb: &Sandbox, srv: &RunningServer) {
    let c = srv.client(ADMIN);
    for i in 0..5 {
        c.put_secret(
            &format!("old/s{i}"),
            &serde_json::json!(format!("v{i}")),
            None,
        )
        .unwrap();
    }
    // every record, oldest first, whole pages joined
    let all = export(sb, srv, &[]);
    let writes: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "secret.write")
        .collect();
    assert_eq!(writes.len(), 5, "{all:?}");
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert!(all.iter().all(|e| e.get("value").is_none()));
    // --since: only what came at or after it
    let third = writes[2]["at"].as_str().unwrap().to_owned();
    let since = export(sb, srv, &["--since", &third]);
    assert!(
        since
            .iter()
            .all(|e| e["at"].as_str().unwrap() >= third.as_str())
    );
    assert_eq!(
        since
            .iter()
            .filter(|e| e["action"] == "secret.write")
            .count(),
        3
    );
    let o = run_env(
        sb,
        &["audit", "export", "--format", "csv"],
        &server_env(srv, &[]),
    );
    assert_exit(&o, 2, "jsonl");
    // the retention (3 s) removes the old records in the background, while reads go on
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let pruned = std::thread::scope(|s| {
        s.spawn(|| {
            let reader = srv.client(ADMIN);
            while !stop.load(Ordering::SeqCst) {
                let got = reader.get_secret("old/s0", None).unwrap().unwrap();
                assert_eq!(
                    got.value, "v0",
                    "every read answered while the log is pruned"
                );
                reads.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let gone = loop {
            let left = c.audit(None, None, 1000).unwrap().entries;
            if !left.iter().any(|e| e.action == "secret.write") {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        stop.store(true, Ordering::SeqCst);
        gone
    });
    assert!(pruned, "the writes' records were not removed within 30 s");
    assert!(reads.load(Ordering::SeqCst) > 10);
    // the recent reads' records are kept, and the server counted what it removed
    let left = c.audit(None, None, 1000).unwrap().entries;
    assert!(left.iter().any(|e| e.action == "secret.read"), "{left:?}");
    let metrics = http_get_raw(&srv.url, "/metrics");
    let removed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sigil_audit_pruned_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(removed >= 5, "{metrics}");
}

#[test]
fn old_audit_records_are_pruned_and_exported_first_on_sqlite() {
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &["--audit-retention", "3s"], &[]);
    retention_and_export(&sb, &srv);
}

#[test]
#[ignore = "needs PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
fn old_audit_records_are_pruned_and_exported_first_on_postgres() {
    let url = crate::server::postgres_schema("the audit retention test", "sigil_retention");
    let sb = Sandbox::new();
    let master = [crate::server::SHARED_MASTER_KEY];
    let args = ["--database", url.as_str(), "--audit-retention", "3s"];
    let srv = RunningServer::start(&sb, &args, &master);
    retention_and_export(&sb, &srv);
}
