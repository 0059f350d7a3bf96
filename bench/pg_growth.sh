#!/usr/bin/env bash
# Sigil on PostgreSQL: reads at one connection on a new database, after 64-connection writes of new
# names (the tables grow by tens of thousands of rows and the pool opens all its connections), and
# after a restart on the same data (a new pool, new plans). A read that slows down after the writes
# and recovers after the restart is paying for the pool's or the plans' state, not for the data.
#
#   bash bench/pg_growth.sh                       # WRITE_S=10
#   OPTS='%20-cplan_cache_mode%3Dforce_generic_plan' bash bench/pg_growth.sh   # a session setting
#   POOL=pool_size=4 bash bench/pg_growth.sh      # any of Sigil's pool parameters
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/wrk_setup.sh
SCHEMA="sigil_growth_$$"
DB="$POSTGRES_URL?options=-csearch_path%3D$SCHEMA${OPTS:-}${POOL:+&$POOL}"
psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" >/dev/null
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
start_server "$WORK/pg" "$DB"
put_bench_secret
write_lua "$WORK/write.lua" /api/v1/teams/default/secrets/bench/kv/ PUT '{"value": "x"}'
# reads at one connection -> "requests/s p50 p99"
read1() {
    wrk -t1 -c1 -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
        "$URL/api/v1/teams/default/secrets/bench/read" \
        | awk '/Requests\/sec/ {r = $2} /^ +50%/ {p = $2} /^ +99%/ {q = $2} END {printf "%s/s, p50 %s, p99 %s", r, p, q}'
}
echo "| moment | reads at one connection |"
echo "|---|---|"
echo "| a new database | $(read1) |"
w=$(wrk -t2 -c64 -d"${WRITE_S:-10}s" -s "$WORK/write.lua" "$URL" | awk '/^Requests\/sec/ {print $2}')
secrets=$(psql "$POSTGRES_URL" -qAtc "SELECT count(*) FROM $SCHEMA.secrets")
echo "| after ${WRITE_S:-10} s of writes at 64 connections ($w/s; $secrets secrets) | $(read1) |"
echo "| again | $(read1) |"
stop_server
start_server "$WORK/pg" "$DB"
echo "| after a restart on the same data | $(read1) |"
echo "| again | $(read1) |"
stop_server
