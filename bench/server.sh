#!/usr/bin/env bash
# Load test of `sigil server` with wrk, on SQLite and on PostgreSQL, against one server process
# per backend: the no-op endpoint (/healthz) as the baseline, an authenticated secret read (with
# its durable audit record), and a durable write; with 1 and 64 connections. Also the idle
# memory (RSS) and the time from start to a ready /readyz.
#
#   bash bench/server.sh                 # 5 s per measurement, 3 rounds
#   DURATION=10s ROUNDS=5 bash bench/server.sh
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bash bench/server.sh
#
# The machine is a shared 2-core VM whose speed drifts by ±10 % within minutes, so each round
# measures /healthz, then the read, then the write, one after the other, and the figures are
# the medians over the rounds; the read's ratio to /healthz is taken within each round (the
# two were measured seconds apart) and its median reported.
#
# Needs wrk (Debian: apt-get install wrk); installs it when missing. Loopback only; every run
# is bounded by DURATION. Results are printed as a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-3}"
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

measure() { # wrk output -> "requests/s p99"
    awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {printf "%s %s", r, p}'
}
median() { sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

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
    echo "| $name | start to ready $(( (t1 - t0) / 1000000 )) ms, idle RSS $((rss / 1024)) MiB | | | | |"
    for c in 1 64; do
        local t=$(( c < 2 ? 1 : 2 ))
        : >"$WORK/h" ; : >"$WORK/r" ; : >"$WORK/w" ; : >"$WORK/ratio"
        for _ in $(seq 1 "$ROUNDS"); do
            local h r w
            h=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency "$url/healthz" | measure)
            r=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
                "$url/api/v1/teams/default/secrets/bench/read" | measure)
            w=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$WORK/write.lua" "$url" | measure)
            echo "$h" >>"$WORK/h"; echo "$r" >>"$WORK/r"; echo "$w" >>"$WORK/w"
            echo "${r%% *} ${h%% *}" | awk '{printf "%.3f\n", $1/$2}' >>"$WORK/ratio"
            echo "  round: $c conns: healthz $h | read $r | write $w" >&2
        done
        local hr rr wr ratio
        hr=$(cut -d' ' -f1 "$WORK/h" | median); rr=$(cut -d' ' -f1 "$WORK/r" | median)
        wr=$(cut -d' ' -f1 "$WORK/w" | median); ratio=$(median <"$WORK/ratio")
        printf "| %s | %2d | %.0f/s | %.0f/s | %.0f %% | %.0f/s |\n" \
            "$name" "$c" "$hr" "$rr" "$(echo "$ratio" | awk '{print 100*$1}')" "$wr"
    done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| backend | conns | /healthz | read | read / healthz (median of rounds) | durable write |"
echo "|---|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/sigil.db"
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    schema="sigil_bench_$$"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null 2>&1
    run_backend postgres "$POSTGRES_URL?options=-csearch_path%3D$schema"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
else
    echo "PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL figures not measured" >&2
fi
