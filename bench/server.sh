#!/usr/bin/env bash
# Load test of `sigil server` with wrk, on SQLite and on PostgreSQL, against one server process
# per backend: the no-op endpoint (/healthz) as the baseline, an authenticated secret read (with
# its durable audit record), and a durable write; with 1 and 64 connections. Also the idle
# memory (RSS) and the time from start to a ready /readyz. Last, for 1 connection, the most a
# read can reach: each one waits for its audit record's sync to disk on top of the round trip
# that /healthz takes, and the script measures that sync on the same disk in the same run.
#
#   bash bench/server.sh                 # 5 s per measurement, 3 rounds
#   DURATION=10s ROUNDS=5 bash bench/server.sh
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bash bench/server.sh
#   SIGIL_BIN=/path/to/sigil BACKENDS=sqlite bash bench/server.sh   # another build, SQLite only
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
source bench/wrk_setup.sh

write_lua "$WORK/write.lua" "/api/v1/teams/default/secrets/bench/" PUT \
    '{"value": "a benchmark value of some forty bytes long"}'

# µs per 4 KiB write made durable (O_DSYNC, as fdatasync), overwriting a preallocated file on the
# database's disk: the least a durably audited read waits on top of the HTTP round trip
sync_us() {
    dd if=/dev/zero of="$WORK/sync.probe" bs=4k count=500 status=none
    local t0 t1
    t0=$(now_us)
    dd if=/dev/zero of="$WORK/sync.probe" bs=4k count=500 oflag=dsync conv=notrunc status=none
    t1=$(now_us)
    echo $(( (t1 - t0) / 500 ))
}

run_backend() {
    local name="$1" db="$2"
    local home="$WORK/$name"
    mkdir -p "$home"
    local url pid first
    # the first start migrates the empty database and bootstraps it; the restart is every later one
    start_server "$home" "$db"
    first=$READY_MS
    stop_server
    start_server "$home" "$db"
    url=$URL pid=$PID
    sleep 1
    local rss
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    put_bench_secret
    echo "| $name | start to ready: first start (empty database) $first ms, restart $READY_MS ms; idle RSS $((rss / 1024)) MiB | | | | |"
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
        if ((c == 1)); then
            local sync
            sync=$(sync_us)
            awk -v h="$hr" -v s="$sync" -v n="$name" 'BEGIN { rtt = 1e6 / h;
                printf "  %s, 1 connection: /healthz round trip %.0f µs, one durable 4 KiB write %d µs: a read, which waits for both, is at most %.0f %% of /healthz\n", n, rtt, s, 100 * rtt / (rtt + s) }' >>"$WORK/bounds"
        fi
    done
    stop_server
}

echo "| backend | conns | /healthz | read | read / healthz (median of rounds) | durable write |"
echo "|---|---|---|---|---|---|"
on_each_backend
echo
cat "$WORK/bounds"
