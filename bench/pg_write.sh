#!/usr/bin/env bash
# What bounds Sigil's durable writes on PostgreSQL: pgbench runs the transaction the server runs
# for a write of a new name (crates/sigil-store/src/postgres/versions.rs, `put_secret`: the
# secret's advisory lock, the read of its row and its team's settings, the version, the secret's
# row and the audit record; `synchronous_commit = on`) with no server, no HTTP and no wrk — at 1
# and 64 clients, the whole transaction in one pipeline (one round trip: the least it can cost;
# the server needs the read's answer before it writes, so it makes at least two) — and, in the
# same run, Sigil's own `PUT` of new names through wrk at 1 and 64 connections. PostgreSQL alone
# with the whole machine is the most Sigil's writes could reach.
#
#   bash bench/pg_write.sh
#   DURATION=10 bash bench/pg_write.sh
#
# The statements are restated here (not read from the source as pg_batch.sh does: they are
# built there from several pieces); a change of the write transaction must be made here too.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
source bench/wrk_setup.sh
schema="sigil_pgwrite_$$"
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
PGOPTIONS=-cclient_min_messages=warning psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
DB="$POSTGRES_URL?options=-csearch_path%3D$schema"

# the server migrates the schema (and makes the team); then it is stopped until its own turn
start_server "$WORK" "$DB"
put_bench_secret
stop_server
team_id=$(PGOPTIONS="-csearch_path=$schema" psql "$POSTGRES_URL" -qAtc "SELECT id FROM teams WHERE name = 'default'")

# one write of a new name, as put_secret sends it (a 120-byte ciphertext, as a small value's)
cipher="'\\x$(head -c 120 /dev/urandom | od -An -tx1 | tr -d ' \n')'::bytea"
cat >"$WORK/write.sql" <<SQL
\\set n random(1, 9000000000000000000)
\\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock($team_id, hashtext('bench/w/' || :n));
SELECT s.name, s.version, s.created_at, s.updated_at, s.updated_by, s.deleted_at, s.oldest_version,
       s.max_versions, s.cas_required, s.delete_version_after, s.custom_metadata, t.kv_max_versions,
       t.kv_cas_required, t.kv_delete_version_after
  FROM teams t LEFT JOIN secrets s ON s.team_id = t.id AND s.name = 'bench/w/' || :n WHERE t.id = $team_id;
INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by, deleted_at)
  VALUES ($team_id, 'bench/w/' || :n, 1, 1, $cipher, 1764620000000, 'benchadmin01', NULL);
INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at, oldest_version)
  VALUES ($team_id, 'bench/w/' || :n, 1, 1764620000000, 1764620000000, 'benchadmin01', NULL, 1)
  ON CONFLICT (team_id, name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at,
     updated_by = excluded.updated_by, deleted_at = NULL, oldest_version = excluded.oldest_version;
INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target, via, agent)
  VALUES (1764620000000, 'benchadmin01', 'admin', 'secret.write', 'default', 'bench/w/' || :n, 1, 'ok',
          '127.0.0.1', NULL, NULL, NULL, 'api', NULL);
END;
\\endpipeline
SQL
# the script must be the server's transaction: it runs once and leaves one version and one record
PGOPTIONS="-csearch_path=$schema" pgbench -n -M prepared -t1 -f "$WORK/write.sql" "$POSTGRES_URL" >/dev/null

pgbench_tps() { # clients
    PGOPTIONS="-csearch_path=$schema -csynchronous_commit=on" \
        pgbench -n -M prepared -c"$1" -j"$(($1 > 1 ? 2 : 1))" -T"$DURATION" -f "$WORK/write.sql" "$POSTGRES_URL" 2>&1 \
        | awk '/^tps/ {printf "%.0f", $3}'
}
write_lua "$WORK/put.lua" /api/v1/teams/default/secrets/bench/s PUT '{"value": "a small secret value"}'
sigil_tps() { # conns
    wrk -t"$(($1 > 1 ? 2 : 1))" -c"$1" -d"${DURATION}s" -s "$WORK/put.lua" --latency "$URL" | measure | cut -d' ' -f1
}

echo "| round | clients | PostgreSQL alone: the write transaction (pgbench) | Sigil on PostgreSQL: PUT (wrk) | Sigil ÷ PostgreSQL alone |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for c in 1 64; do
        pg=$(pgbench_tps "$c")
        start_server "$WORK" "$DB"
        sg=$(sigil_tps "$c")
        stop_server
        awk -v r="$round" -v c="$c" -v pg="$pg" -v sg="$sg" \
            'BEGIN {printf "| %d | %d | %.0f/s | %.0f/s | %.0f %% |\n", r, c, pg, sg, 100 * sg / pg}'
    done
done
