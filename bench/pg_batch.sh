#!/usr/bin/env bash
# What PostgreSQL itself spends on the server's batched audited read, without the server, the
# HTTP stack or wrk: pgbench runs the statement the server runs (READ_BATCH in
# crates/sigil-store/src/postgres/batch.rs, read from the source so the two cannot drift) for
# batches of 1, 8, 32 and 64 reads, one batch in flight as in the server, with
# synchronous_commit on (as the server runs it) and off (PostgreSQL's CPU alone, no WAL
# flush); and `SELECT 1` as the baseline of the same run. The figures in bench/README.md
# ("PostgreSQL's own cost") come from it.
#
#   bash bench/pg_batch.sh
#   DURATION=10 POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bash bench/pg_batch.sh
#
# Needs pgbench and python3 (both on these machines). The schema it makes is dropped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
POSTGRES_URL="${POSTGRES_URL:-${SIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
cargo build --release --bin sigil >/dev/null
WORK="$(mktemp -d)"
schema="sigil_pgbatch_$$"
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
source bench/lib.sh
PGOPTIONS=-cclient_min_messages=warning psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null

# the server migrates the schema and stores the secret the statement reads
start_server "$WORK" "$POSTGRES_URL?options=-csearch_path%3D$schema"
put_bench_secret
stop_server
team_id=$(PGOPTIONS="-csearch_path=$schema" psql "$POSTGRES_URL" -qAtc "SELECT id FROM teams WHERE name = 'default'")

# the statement with its parameters as array literals of n elements
for n in 1 8 32 64; do
    pg_read_batch_sql "$n" "$team_id" >"$WORK/batch$n.sql"
done
echo "SELECT 1;" >"$WORK/select1.sql"

latency() { # sql-file synchronous_commit -> "average p99" in ms (p99 from pgbench's log of
    # every transaction: a read waits for at least one whole batch, so a batch's p99 bounds the
    # p99 of the reads it carries)
    rm -f "$WORK"/txlog.*
    local avg
    # planned as the server's reads' connection plans it (one generic plan, crates/sigil-store/src/postgres)
    avg=$(PGOPTIONS="-csearch_path=$schema -csynchronous_commit=$2 -cplan_cache_mode=force_generic_plan" \
        pgbench -n -M prepared -c1 -T"$DURATION" -l --log-prefix="$WORK/txlog" -f "$1" "$POSTGRES_URL" 2>&1 \
        | awk '/latency average/ {print $4}')
    cat "$WORK"/txlog.* | awk '{print $3 / 1000}' | sort -n \
        | awk -v avg="$avg" '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%s %.3f", avg, v[i]}'
    cat "$WORK"/txlog.* | awk '{print $3 / 1000}' >"$WORK/last-batches"
}

# The p99 a read would see at 64 connections if the server added nothing to PostgreSQL's
# batches: it arrives during a batch in flight (more likely a long one: picked by duration),
# waits for the rest of it, then for its own batch (the next one in the log).
modelled_p99() { # file of batch durations in ms, in order
    python3 - "$1" <<'PY'
import random, sys
d = [float(x) for x in open(sys.argv[1])]
random.seed(1)
picks = random.choices(range(len(d) - 1), weights=d[:-1], k=200000)
lat = sorted(random.random() * d[i] + d[i + 1] for i in picks)
print("%.3f" % lat[int(len(lat) * 0.99)])
PY
}
read -r base _ <<<"$(latency "$WORK/select1.sql" on)"
echo "SELECT 1 (baseline): $base ms"
echo "| reads per batch | synchronous_commit | ms per batch | p99 ms per batch | µs per read | reads/s, one batch in flight |"
echo "|---|---|---|---|---|---|"
for n in 1 8 32 64; do
    for sc in on off; do
        read -r ms p99 <<<"$(latency "$WORK/batch$n.sql" "$sc")"
        awk -v n="$n" -v sc="$sc" -v ms="$ms" -v p99="$p99" \
            'BEGIN {printf "| %d | %s | %.3f | %.3f | %.1f | %.0f |\n", n, sc, ms, p99, 1000 * ms / n, 1000 * n / ms}'
        if [[ "$n" == 64 && "$sc" == on ]]; then
            cp "$WORK/last-batches" "$WORK/batches64"
        fi
    done
done
echo "p99 of a read at 64 connections with batches of 64 as above and nothing else (HTTP, the"
echo "server's work): $(modelled_p99 "$WORK/batches64") ms"
