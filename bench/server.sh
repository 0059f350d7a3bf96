#!/usr/bin/env bash
# Load test of `sigil server` with wrk, on SQLite and on PostgreSQL, against one server process
# per backend: the no-op endpoint (/healthz) as the baseline, an authenticated secret read (with
# its durable audit record), and a durable write; with 1 and 64 connections. Also the idle
# memory (RSS) and the time from start to a ready /readyz.
#
#   bash bench/server.sh                 # 10 s per measurement
#   DURATION=30s bash bench/server.sh
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bash bench/server.sh
#
# Needs wrk (Debian: apt-get install wrk); installs it when missing. Loopback only; every run
# is bounded by DURATION. Results are printed as a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
POSTGRES_URL="${POSTGRES_URL:-${SIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
KEY="sgl_benchadmin01_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --bin sigil >/dev/null
BIN="$PWD/target/release/sigil"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat > "$WORK/write.lua" <<LUA
local n = 0
local id = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  return wrk.format("PUT", "/api/v1/teams/default/secrets/bench/" .. id .. "/" .. n,
    {["Authorization"] = "Bearer $KEY", ["Content-Type"] = "application/json"},
    '{"value": "a benchmark value of some forty bytes long"}')
end
LUA

rps() { # wrk output -> requests/s and p99 latency
    awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {printf "%s|%s", r, p}'
}

run_backend() {
    local name="$1" db="$2"
    local home="$WORK/$name"
    mkdir -p "$home"
    local t0 t1 url pid
    t0=$(date +%s%N)
    SIGIL_HOME="$home" SIGIL_BOOTSTRAP_ADMIN_KEY="$KEY" SIGIL_MASTER_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" \
        "$BIN" server --listen 127.0.0.1:0 --database "$db" 2>"$home/server.log" &
    pid=$!
    until url=$(grep -o 'http://127.0.0.1:[0-9]*' "$home/server.log" 2>/dev/null | head -1) && [ -n "$url" ] \
        && curl -sf "$url/readyz" >/dev/null; do
        sleep 0.001
    done
    t1=$(date +%s%N)
    sleep 1
    local rss
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    curl -sf -X PUT -H "Authorization: Bearer $KEY" -d '{"value": "the secret read by the benchmark"}' \
        "$url/api/v1/teams/default/secrets/bench/read" >/dev/null
    echo "| $name | start to ready | $(( (t1 - t0) / 1000000 )) ms | idle RSS | $((rss / 1024)) MiB |"
    for c in 1 64; do
        local t=$(( c < 2 ? 1 : 2 ))
        local h r w
        h=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency "$url/healthz" | rps)
        r=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
            "$url/api/v1/teams/default/secrets/bench/read" | rps)
        w=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$WORK/write.lua" "$url" | rps)
        local hr=${h%|*} rr=${r%|*} wr=${w%|*}
        printf "| %s | %2d conns | healthz %s/s (p99 %s) | read %s/s (p99 %s, %.0f %% of healthz) | write %s/s (p99 %s) |\n" \
            "$name" "$c" "$hr" "${h#*|}" "$rr" "${r#*|}" "$(echo "$rr $hr" | awk '{print 100*$1/$2}')" "$wr" "${w#*|}"
    done
    grep -c '"secret.read"' /dev/null >/dev/null || true
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| backend | measure | | | |"
echo "|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/sigil.db"
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    schema="sigil_bench_$$"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
    run_backend postgres "$POSTGRES_URL?options=-csearch_path%3D$schema"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
else
    echo "PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL figures not measured" >&2
fi
