//! The audit log's retention: records older than [`Limits::audit_retention`](crate::Limits) are
//! removed in the background, chunk by chunk, so that reads and writes go on between chunks.

use std::sync::Arc;
use std::time::Duration;

use crate::service::{ServerError, now_ms};
use crate::state::{AppState, Metrics};

/// Records looked at per chunk: one short write each.
const CHUNK: u32 = 1000;

/// Removes every audit record written more than `retention` ago (but the newest record, where
/// ids continue from), chunk by chunk; returns how many.
///
/// # Errors
/// The store's failure; what was removed before it stays removed.
pub(crate) async fn prune_audit_once(
    state: &AppState,
    retention: Duration,
) -> Result<u64, ServerError> {
    let before = now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let mut total = 0;
    loop {
        let n = state.store.prune_audit(before, CHUNK).await?;
        Metrics::inc(&state.metrics.audit_pruned, n);
        total += n;
        if n == 0 {
            break;
        }
        // the next chunk after whatever else is waiting
        tokio::task::yield_now().await;
    }
    if total > 0 {
        tracing::info!(
            removed = total,
            retention_s = retention.as_secs(),
            "audit records past the retention removed"
        );
    }
    Ok(total)
}

/// How often the pruner runs: a tenth of the retention, from a second to an hour.
fn interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Starts the pruner when a retention is set: at once, then every [`interval`].
pub(crate) fn spawn(state: Arc<AppState>) {
    let Some(retention) = state.limits.audit_retention else {
        return;
    };
    tokio::spawn(async move {
        loop {
            if let Err(e) = prune_audit_once(&state, retention).await {
                tracing::warn!(error = %e, "pruning the audit log failed; trying again later");
            }
            tokio::time::sleep(interval(retention)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pruner_runs_a_tenth_of_the_retention_apart() {
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(interval(Duration::from_secs(600)), Duration::from_secs(60));
        let days = Duration::from_secs(400 * 86_400);
        assert_eq!(interval(days), Duration::from_secs(3600));
    }
}
