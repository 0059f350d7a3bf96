//! Work that PostgreSQL does best in batches: audit records appended by a few committers, and
//! concurrent reads of values answered by one statement that also appends their audit records.

#[allow(unused_imports)]
use super::*;

/// Audit records waiting for the next group commit, each batch with its callers' replies.
pub(super) type AuditJob = (Vec<AuditRow>, tokio::sync::oneshot::Sender<Result<()>>);

/// What a read of a value returns.
pub(super) type Found = Option<(SecretRow, VersionRow)>;

/// A read of a value waiting for the next batch, with its audit record.
pub(super) struct ReadJob {
    pub(super) team_id: i64,
    pub(super) name: String,
    pub(super) version: Option<i64>,
    pub(super) audit: AuditRow,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<Found>>,
}

pub(super) type Queue<J> =
    std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<J>>>;

/// Audit batches in flight at once. Reads have one batch in flight at a time: each takes every
/// read waiting, and one large batch costs PostgreSQL much less per read than several small
/// ones (measured: 38,700 reads/s with one, 31,800 with two, 24,500 with eight, at 64
/// connections on 2 cores).
pub(super) const AUDIT_COMMITTERS: usize = 2;
/// The most records (or reads) one batch holds.
pub(super) const BATCH: usize = 1024;

/// Takes every job waiting (up to [`BATCH`] of `size`) and runs them as one batch; jobs that
/// arrive meanwhile wait for the next batch (of another committer, or of this one). `run`
/// commits and returns what answers the batch's callers: the commit's time is counted before
/// anyone is answered, so a caller that asks `/metrics` next sees its own batch there.
pub(super) async fn committer<J, F, Fut, A>(
    pool: Pool,
    rx: Queue<J>,
    size: fn(&J) -> usize,
    mut run: F,
    timings: std::sync::Arc<crate::StoreTimings>,
) where
    J: Send + 'static,
    F: FnMut(Pool, Vec<J>) -> Fut,
    Fut: std::future::Future<Output = A>,
    A: FnOnce(),
{
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(j) => jobs.push(j),
                None => return, // the store was dropped
            }
            let mut n = size(&jobs[0]);
            while n < BATCH {
                match rx.try_recv() {
                    Ok(j) => {
                        n += size(&j);
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
        }
        let start = std::time::Instant::now();
        let answer = run(pool.clone(), jobs).await;
        timings.commit.record(start.elapsed());
        answer();
    }
}

pub(super) async fn commit_audit(pool: Pool, jobs: Vec<AuditJob>) -> impl FnOnce() {
    let rows: Vec<&AuditRow> = jobs.iter().flat_map(|(r, _)| r.iter()).collect();
    let result = insert_audit_batch(&pool, &rows).await;
    tracing::trace!(records = rows.len(), "audit group commit");
    move || {
        for (_, reply) in jobs {
            let _ = reply.send(result.clone());
        }
    }
}

/// How long the reads' connection keeps its plan of [`READ_BATCH`]. It plans it once
/// (`plan_cache_mode = force_generic_plan`) with the tables' sizes of that moment; a plan made
/// when the tables were small (a sequential scan of `secrets`) would otherwise be kept as they
/// grow (measured: 300 reads/s at one connection after 45,000 writes, 2,400 on a new plan).
/// One planning a second costs ~0.3 ms a second.
pub(super) const REPLAN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads every value of the batch and inserts their audit records — the version read and
/// `ok`, or `not_found` — in one statement, committed (durably) before anyone is answered;
/// `replan`: the connection drops its plans first.
pub(super) async fn commit_reads(pool: Pool, jobs: Vec<ReadJob>, replan: bool) -> impl FnOnce() {
    let found = read_batch(&pool, &jobs, replan).await;
    tracing::trace!(reads = jobs.len(), "audited read batch");
    move || match found {
        Ok(found) => {
            for (job, f) in jobs.into_iter().zip(found) {
                let _ = job.reply.send(Ok(f));
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

pub(super) const READ_BATCH: &str = "
WITH req AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY AS r(team_id, name, version, i)
), want AS MATERIALIZED (
    -- the version each read wants, settled before secret_versions is joined: otherwise the
    -- planner may look the version up by (team, name) alone and filter every version of it
    SELECT r.i, s.team_id, s.name, s.version AS sv, s.created_at AS sc, s.updated_at, s.updated_by,
           s.deleted_at, s.oldest_version, s.max_versions, s.cas_required, s.delete_version_after,
           s.custom_metadata, COALESCE(r.version, s.version) AS wv
    FROM req r
    JOIN secrets s ON s.team_id = r.team_id AND s.name = r.name AND s.deleted_at IS NULL
), found AS (
    SELECT w.i, w.name, w.sv, w.sc, w.updated_at, w.updated_by, w.deleted_at, w.oldest_version,
           w.max_versions, w.cas_required, w.delete_version_after, w.custom_metadata,
           v.version AS vv, v.data_key_version, v.ciphertext, v.created_at AS vc, v.created_by,
           v.deleted_at AS vd, v.destroyed
    FROM want w
    JOIN secret_versions v ON v.team_id = w.team_id AND v.name = w.name AND v.version = w.wv
), logged AS (
    INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, via, agent)
    SELECT a.at, a.key_id, a.role, a.action, a.team, a.name, f.vv,
           -- a version deleted or destroyed by then is found, not read
           CASE WHEN f.i IS NULL OR f.destroyed OR f.vd <= a.at THEN $14 ELSE a.outcome END,
           a.client, a.flow_run, a.task, a.via, a.agent
    FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                $11::text[], $12::text[], $13::text[], $15::text[], $16::text[])
         WITH ORDINALITY AS a(at, key_id, role, action, team, name, outcome, client, flow_run, task, via, agent, i)
    LEFT JOIN found f ON f.i = a.i
    ORDER BY a.i
)
SELECT name, sv, sc, updated_at, updated_by, deleted_at, oldest_version, max_versions, cas_required,
       delete_version_after, custom_metadata, vv, data_key_version, ciphertext, vc, created_by, vd,
       destroyed, i
FROM found";

pub(super) async fn read_batch(pool: &Pool, jobs: &[ReadJob], replan: bool) -> Result<Vec<Found>> {
    let c = pool.get().await.map_err(pool_error)?;
    if replan {
        c.batch_execute("DISCARD PLANS").await?;
    }
    let team_id: Vec<i64> = jobs.iter().map(|j| j.team_id).collect();
    let name: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let version: Vec<Option<i64>> = jobs.iter().map(|j| j.version).collect();
    let at: Vec<i64> = jobs.iter().map(|j| j.audit.at).collect();
    let text =
        |f: fn(&AuditRow) -> Option<&str>| jobs.iter().map(|j| f(&j.audit)).collect::<Vec<_>>();
    let key_id = text(|a| Some(&a.key_id));
    let role = text(|a| a.role.map(Role::as_str));
    let action = text(|a| Some(a.action.as_str()));
    let team = text(|a| Some(&a.team));
    let audit_name = text(|a| a.name.as_deref());
    let outcome = text(|a| Some(a.outcome.as_str()));
    let client = text(|a| Some(&a.client));
    let flow_run = text(|a| a.flow_run.as_deref());
    let task = text(|a| a.task.as_deref());
    let via = text(|a| a.via.as_deref());
    let agent = text(|a| a.agent.as_deref());
    let st = c.prepare_cached(READ_BATCH).await?;
    let rows = c
        .query(
            &st,
            &[
                &team_id,
                &name,
                &version,
                &at,
                &key_id,
                &role,
                &action,
                &team,
                &audit_name,
                &outcome,
                &client,
                &flow_run,
                &task,
                &AuditOutcome::NotFound.as_str(),
                &via,
                &agent,
            ],
        )
        .await?;
    let mut found: Vec<Found> = (0..jobs.len()).map(|_| None).collect();
    for r in rows {
        let i: i64 = r.get(18);
        let slot = usize::try_from(i - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| StoreError::backend(format!("batch read returned row {i}")))?;
        *slot = Some(rows::found(&r)?);
    }
    Ok(found)
}

/// One statement for any number of records: arrays unnested into rows.
pub(super) async fn insert_audit_batch(pool: &Pool, rows: &[&AuditRow]) -> Result<()> {
    let c = pool.get().await.map_err(pool_error)?;
    let col = |f: &dyn Fn(&AuditRow) -> Option<String>| {
        rows.iter().map(|r| f(r)).collect::<Vec<Option<String>>>()
    };
    let at: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let version: Vec<Option<i64>> = rows.iter().map(|r| r.version).collect();
    let key_id = col(&|r| Some(r.key_id.clone()));
    let role = col(&|r| r.role.map(|x| x.as_str().to_owned()));
    let action = col(&|r| Some(r.action.as_str().to_owned()));
    let team = col(&|r| Some(r.team.clone()));
    let name = col(&|r| r.name.clone());
    let outcome = col(&|r| Some(r.outcome.as_str().to_owned()));
    let client = col(&|r| Some(r.client.clone()));
    let flow_run = col(&|r| r.flow_run.clone());
    let task = col(&|r| r.task.clone());
    let target = col(&|r| r.target.clone());
    let via = col(&|r| r.via.clone());
    let agent = col(&|r| r.agent.clone());
    let st = c
        .prepare_cached(
            "INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target, via, agent)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                                  $13::text[], $14::text[])",
        )
        .await?;
    c.execute(
        &st,
        &[
            &at, &key_id, &role, &action, &team, &name, &version, &outcome, &client, &flow_run,
            &task, &target, &via, &agent,
        ],
    )
    .await?;
    Ok(())
}
