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
# The statements are restated in bench/lib.sh (`pg_write_sql`; not read from the source as
# pg_batch.sh does: they are built there from several pieces); a change of the write transaction
# must be made there too. bench/compare.sh measures the same at 64 clients as a bound.
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

pg_write_sql "$team_id" >"$WORK/write.sql"
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
