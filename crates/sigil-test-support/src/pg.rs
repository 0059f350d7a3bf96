//! A PostgreSQL cluster a test owns: made with `initdb` in a temporary directory, started with
//! `pg_ctl` on a free loopback port, stopped (cleanly or `-m immediate`, as a crash) and started
//! again by the test, removed when dropped. `initdb` refuses to run as root: as root the tools
//! run as the `postgres` user (through `runuser`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A test's own PostgreSQL cluster.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

/// The directory of `initdb` and `pg_ctl`: on `PATH`, else Debian's `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(debian)
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .expect(
            "PostgreSQL's initdb and pg_ctl are installed (on PATH or under /usr/lib/postgresql)",
        )
}

fn is_root() -> bool {
    // the owner of a file this process creates is its effective user
    let probe = std::env::temp_dir().join(format!("sigil-uid-probe-{}", std::process::id()));
    let _ = std::fs::write(&probe, b"");
    let root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&probe).expect("a temp file")) == 0;
    let _ = std::fs::remove_file(&probe);
    root
}

impl Cluster {
    /// Makes and starts a cluster (trust authentication, user `postgres`, database `postgres`).
    ///
    /// # Panics
    /// When the tools are missing or the cluster cannot be made or started.
    #[must_use]
    pub fn start() -> Cluster {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sigil-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the cluster");
        let cluster = Cluster {
            port: free_port(),
            bin: pg_bin(),
            dir,
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:", cluster.dir.to_str().unwrap()])
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "cannot give {} to postgres",
                cluster.dir.display()
            );
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        cluster.start_again();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The cluster's own log.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// A URL of database `postgres` of this cluster.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The directory that holds the cluster (its data, socket and log).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the stopped cluster on its port, and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let data = self.data();
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the cluster at once, as a crash would (`pg_ctl -m immediate`): no checkpoint, no
    /// goodbye to clients; the next start recovers from the WAL.
    pub fn crash(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
