//! The audit log on SQLite: appending records in multi-row statements (with the blocks of ids
//! each team has records in) and reading a team's pages through those blocks.

#[allow(unused_imports)]
use super::*;

/// The values of one audit record in an INSERT.
pub(super) const AUDIT_PARAMS: usize = 14;

/// Audit records go in up to this many rows per statement.
pub(super) const AUDIT_CHUNK: usize = 32;

/// `INSERT INTO audit … VALUES (…), (…)` for 1 to [`AUDIT_CHUNK`] rows, built once; the writer
/// connection's statement cache keeps them prepared.
pub(super) fn audit_insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=AUDIT_CHUNK)
            .map(|n| {
                let tuples: Vec<String> = (0..n)
                    .map(|r| {
                        let p: Vec<String> = (1..=AUDIT_PARAMS)
                            .map(|c| format!("?{}", r * AUDIT_PARAMS + c))
                            .collect();
                        format!("({})", p.join(","))
                    })
                    .collect();
                format!(
                    "INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target, via, agent) VALUES {}",
                    tuples.join(",")
                )
            })
            .collect()
    });
    &all[rows - 1]
}

/// Runs `op` in a savepoint of the open transaction: when it fails, nothing it did stays (the
/// transaction's other writes are unaffected).
pub(super) fn in_savepoint<R>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<R>,
) -> Result<R> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map_err(StoreError::from)
    };
    run("SAVEPOINT op")?;
    let r = op(conn);
    if r.is_err() {
        run("ROLLBACK TO op")?;
    }
    run("RELEASE op")?;
    r
}

/// Appends audit records (and notes their blocks in `audit_blocks`), a statement per
/// [`AUDIT_CHUNK`] records: run it in a savepoint ([`in_savepoint`]) to keep none of them when
/// one statement fails.
pub(super) fn insert_audit_rows(conn: &Connection, rows: &[AuditRow]) -> Result<()> {
    for chunk in rows.chunks(AUDIT_CHUNK) {
        let mut st = conn.prepare_cached(audit_insert_sql(chunk.len()))?;
        for (r, a) in chunk.iter().enumerate() {
            let b = r * AUDIT_PARAMS;
            let bind = |st: &mut rusqlite::CachedStatement<'_>| -> rusqlite::Result<()> {
                st.raw_bind_parameter(b + 1, a.at)?;
                st.raw_bind_parameter(b + 2, &a.key_id)?;
                st.raw_bind_parameter(b + 3, a.role.map(Role::as_str))?;
                st.raw_bind_parameter(b + 4, a.action.as_str())?;
                st.raw_bind_parameter(b + 5, &a.team)?;
                st.raw_bind_parameter(b + 6, &a.name)?;
                st.raw_bind_parameter(b + 7, a.version)?;
                st.raw_bind_parameter(b + 8, a.outcome.as_str())?;
                st.raw_bind_parameter(b + 9, &a.client)?;
                st.raw_bind_parameter(b + 10, &a.flow_run)?;
                st.raw_bind_parameter(b + 11, &a.task)?;
                st.raw_bind_parameter(b + 12, &a.target)?;
                st.raw_bind_parameter(b + 13, &a.via)?;
                st.raw_bind_parameter(b + 14, &a.agent)
            };
            bind(&mut st)?;
        }
        st.raw_execute()?;
        // the only writer: a statement's rows get consecutive rowids, the last one's known
        let last = conn.last_insert_rowid();
        let first = last - chunk.len() as i64 + 1;
        note_audit_blocks(
            conn,
            chunk
                .iter()
                .zip(first..)
                .map(|(a, id)| (a.team.as_str(), id)),
        )?;
    }
    Ok(())
}

/// Records in `audit_blocks` which teams have records in which blocks of ids.
pub(super) fn note_audit_blocks<'a>(
    conn: &Connection,
    records: impl Iterator<Item = (&'a str, i64)>,
) -> Result<()> {
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (team, id) in records {
        let block = (team, id >> AUDIT_BLOCK_BITS);
        if !seen.contains(&block) {
            seen.push(block);
        }
    }
    let mut st =
        conn.prepare_cached("INSERT OR IGNORE INTO audit_blocks (team, block) VALUES (?1, ?2)")?;
    for (team, block) in seen {
        st.execute(params![team, block])?;
    }
    Ok(())
}

/// A page of a team's audit records after `cursor` (oldest first) or before it (`newest`): the
/// team's blocks of ids from the cursor on, walked as needed, then each block's records — a scan
/// of at most 1024 rows per block the team has records in, and only the blocks the page is in.
pub(super) fn audit_page(
    c: &Connection,
    team: &str,
    cursor: i64,
    since: i64,
    limit: u32,
    newest: bool,
) -> Result<Vec<AuditRow>> {
    let (blocks_sql, order, first_block) = if newest {
        (
            "SELECT block FROM audit_blocks WHERE team = ?1 AND block <= ?2 ORDER BY block DESC",
            "DESC",
            cursor.saturating_sub(1).max(0) >> AUDIT_BLOCK_BITS,
        )
    } else {
        (
            "SELECT block FROM audit_blocks WHERE team = ?1 AND block >= ?2 ORDER BY block",
            "",
            cursor.max(0) >> AUDIT_BLOCK_BITS,
        )
    };
    let mut blocks = c.prepare_cached(blocks_sql)?;
    let mut records = c.prepare_cached(&format!(
        "SELECT {AUDIT_COLS} FROM audit WHERE id >= ?1 AND id < ?2 AND team = ?3 AND at >= ?4 \
             ORDER BY id {order} LIMIT ?5"
    ))?;
    let blocks = blocks.query_map(params![team, first_block], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for block in blocks {
        let block = block?;
        let left = u64::from(limit).saturating_sub(out.len() as u64);
        if left == 0 {
            break;
        }
        let (lo, hi) = (block << AUDIT_BLOCK_BITS, (block + 1) << AUDIT_BLOCK_BITS);
        let (from, to) = if newest {
            (lo, hi.min(cursor))
        } else {
            (lo.max(cursor.saturating_add(1)), hi)
        };
        let rows = records
            .query_map(params![from, to, team, since, left], |r| rows::audit(r))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())?;
        out.extend(rows);
    }
    Ok(out)
}
