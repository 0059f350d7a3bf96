//! Latency histograms of the store's own work — commits, syncs of the log, checkpoints — for
//! `/metrics`: a disk whose flushes stall shows there, apart from the requests that wait on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus' `le`), from 50 µs to 10 s.
pub const BOUNDS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// A latency histogram with fixed buckets: recording is two relaxed atomic adds and a search
/// of sixteen bounds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// One per bound, and one past the last (`+Inf`).
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS.partition_point(|&b| b < secs);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Runs `f`, counting how long it took.
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let start = std::time::Instant::now();
        let r = f();
        self.record(start.elapsed());
        r
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the histogram in Prometheus' text format.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            match BOUNDS.get(i) {
                Some(b) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// How long the store's own steps take, by kind.
#[derive(Debug, Default)]
pub struct StoreTimings {
    /// A group commit. SQLite: every write waiting, in one transaction (the WAL written, not
    /// yet synced). PostgreSQL: a batch of reads with their audit records, or of audit records,
    /// in one statement and its durable `COMMIT`.
    pub commit: Histogram,
    /// SQLite: one `fdatasync` of the WAL, after which a group's callers are answered.
    pub sync: Histogram,
    /// SQLite: one checkpoint (the WAL's pages copied into the database file, which is then
    /// synced), made by the writer thread between two group commits.
    pub checkpoint: Histogram,
}

impl StoreTimings {
    /// Appends every histogram that has counted something, in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        for (h, name, help) in [
            (
                &self.commit,
                "sigil_store_commit_seconds",
                "Group commits (SQLite: every write waiting, before the WAL's sync; PostgreSQL: a batch of reads or audit records).",
            ),
            (
                &self.sync,
                "sigil_store_sync_seconds",
                "Syncs of the SQLite WAL (one per group commit).",
            ),
            (
                &self.checkpoint,
                "sigil_store_checkpoint_seconds",
                "SQLite checkpoints (the WAL copied into the database file and synced).",
            ),
        ] {
            if h.count() > 0 {
                h.render(name, help, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_buckets_and_render_cumulatively() {
        let h = Histogram::default();
        h.record(Duration::from_micros(30)); // ≤ 50 µs
        h.record(Duration::from_micros(50)); // ≤ 50 µs: a bound is inclusive
        h.record(Duration::from_millis(3)); // ≤ 5 ms
        h.record(Duration::from_secs(20)); // +Inf
        assert_eq!(h.count(), 4);
        let mut out = String::new();
        h.render("x_seconds", "X.", &mut out);
        assert!(out.contains("# TYPE x_seconds histogram\n"), "{out}");
        assert!(
            out.contains("x_seconds_bucket{le=\"0.00005\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{le=\"0.0025\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"10\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_count 4\n"), "{out}");
        let sum: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("x_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 20.00308).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn timings_render_only_what_was_counted() {
        let t = StoreTimings::default();
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, "");
        t.sync.time(|| ());
        t.render(&mut out);
        assert!(out.contains("sigil_store_sync_seconds_count 1\n"), "{out}");
        assert!(!out.contains("sigil_store_commit_seconds"), "{out}");
    }
}
