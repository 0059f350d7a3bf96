#!/usr/bin/env bash
# The Vault KV v2 face against the REST API, in the same run on the same server process: a KV
# read (`GET /v1/secret/data/{path}`, as hvac, the bao CLI and External Secrets read) against the
# REST read, and a KV write (`POST /v1/secret/data/{path}` with `{"data": {…}}`) against the REST
# write, with wrk on loopback at 1 and 64 connections, on SQLite and on PostgreSQL. Every read is
# audited durably and every write is durable on both faces; the ratio is taken within each round
# and its median reported.
#
#   bash bench/vault.sh                   # ROUNDS=3 DURATION=5s; BACKENDS="sqlite postgres"
#
# Needs wrk (installed when missing). Every process is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/wrk_setup.sh

write_lua "$WORK/rest_write.lua" "/api/v1/teams/default/secrets/bench/rest/" PUT \
    '{"value": {"user": "bench", "password": "a benchmark value"}}'
write_lua "$WORK/kv_write.lua" "/v1/secret/data/bench/kv/" POST \
    '{"data": {"user": "bench", "password": "a benchmark value"}}'

run_backend() {
    local name="$1" db="$2"
    start_server "$WORK/$name" "$db"
    put_bench_secret
    curl -sf -H "X-Vault-Token: $KEY" "$URL/v1/secret/data/bench/read" | grep -q '"data"' \
        || { echo "the KV read does not answer" >&2; exit 1; }
    for c in 1 64; do
        local t=$(( c < 2 ? 1 : 2 ))
        for f in rr kr rw kw rratio wratio; do : >"$WORK/$f"; done
        for _ in $(seq 1 "$ROUNDS"); do
            local rr kr rw kw
            rr=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
                "$URL/api/v1/teams/default/secrets/bench/read" | measure)
            kr=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -H "X-Vault-Token: $KEY" \
                "$URL/v1/secret/data/bench/read" | measure)
            rw=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$WORK/rest_write.lua" "$URL" | measure)
            kw=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$WORK/kv_write.lua" "$URL" | measure)
            echo "$rr" >>"$WORK/rr"; echo "$kr" >>"$WORK/kr"; echo "$rw" >>"$WORK/rw"; echo "$kw" >>"$WORK/kw"
            echo "${kr%% *} ${rr%% *}" | awk '{printf "%.3f\n", $1/$2}' >>"$WORK/rratio"
            echo "${kw%% *} ${rw%% *}" | awk '{printf "%.3f\n", $1/$2}' >>"$WORK/wratio"
            echo "  round: $name $c conns: REST read $rr | KV read $kr | REST write $rw | KV write $kw" >&2
        done
        local mid='{a[NR]=$0} END {print a[int((NR+1)/2)]}'
        local rr kr rw kw
        rr=$(sort -g "$WORK/rr" | awk "$mid"); kr=$(sort -g "$WORK/kr" | awk "$mid")
        rw=$(sort -g "$WORK/rw" | awk "$mid"); kw=$(sort -g "$WORK/kw" | awk "$mid")
        printf "| %s | %2d | %.0f/s | %.0f/s (p99 %s) | **%.0f %%** | %.0f/s | %.0f/s (p99 %s) | **%.0f %%** |\n" \
            "$name" "$c" "${rr%% *}" "${kr%% *}" "${kr#* }" "$(median <"$WORK/rratio" | awk '{print 100*$1}')" \
            "${rw%% *}" "${kw%% *}" "${kw#* }" "$(median <"$WORK/wratio" | awk '{print 100*$1}')"
    done
    stop_server
}

echo "| backend | conns | REST read | KV read | KV ÷ REST | REST write | KV write | KV ÷ REST |"
echo "|---|---|---|---|---|---|---|---|"
on_each_backend
