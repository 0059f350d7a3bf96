#!/usr/bin/env bash
# Where the CPU of a request goes: runs wrk against /healthz and against an audited secret read
# of one server, under `perf record -a`, and prints the CPU time per request of each process
# (the server's runtime threads, its SQLite writer and syncer, PostgreSQL, wrk, the kernel's
# I/O workers) and the idle share. The per-request figures in bench/README.md come from it.
#
#   bash bench/server_profile.sh                       # SQLite
#   DATABASE=postgres://postgres@127.0.0.1:5432/test bash bench/server_profile.sh
#   CONNS=64 DURATION=4s bash bench/server_profile.sh
#
# Needs wrk and perf (Debian: wrk, linux-perf); perf.data files are left in $WORK for
# `perf report -i`.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS="${CONNS:-64}"
DURATION="${DURATION:-4s}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }
cargo build --release --bin sigil >/dev/null 2>&1
WORK="${WORK:-$(mktemp -d)}"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
source bench/lib.sh
db="${DATABASE:-sqlite://$WORK/sigil.db}"
if [[ "$db" == postgres* ]]; then
    schema="sigil_profile_$$"
    psql "$db" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null 2>&1
    sep='?'; [[ "$db" == *\?* ]] && sep='&'
    db="$db${sep}options=-csearch_path%3D$schema"
fi
start_server "$WORK" "$db"
url=$URL
put_bench_secret

profile() { # name wrk-args...
    local name="$1"; shift
    local out rps
    out=$(perf record -a -F 999 -o "$WORK/perf-$name.data" -- wrk -t2 -c"$CONNS" -d"$DURATION" "$@" 2>/dev/null)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo "$name: $rps requests/s; CPU per request by process (µs), idle share:"
    perf report -i "$WORK/perf-$name.data" --no-children --sort comm --stdio -g none 2>/dev/null \
        | awk -v rps="$rps" '/%/ { p = $1; sub("%", "", p); $1 = "";
              if ($0 ~ /swapper/) printf "  %-22s %5.1f %% of the machine\n", "idle", p;
              else if (p >= 0.5) printf "  %-22s %6.2f\n", $0, p / 100 * 2 * 1e6 / rps }'
}
profile healthz "$url/healthz"
profile read -H "Authorization: Bearer $KEY" "$url/api/v1/teams/default/secrets/bench/read"
echo "perf data: $WORK/perf-healthz.data, $WORK/perf-read.data"
