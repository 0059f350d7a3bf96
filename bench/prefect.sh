#!/usr/bin/env bash
# The Prefect 1 face against the REST API, in the same run on the same server process: Prefect's
# own read document (`secret_value` through GraphQL, `variables` as a JSON text, as the 1.4.1
# client sends it) against `GET /api/v1/teams/default/secrets/{name}`, with wrk on loopback at 1
# and 64 connections, on SQLite and on PostgreSQL. Both are audited reads; the ratio is taken
# within each round (REST, then GraphQL, one after the other) and its median reported.
#
#   bash bench/prefect.sh                  # ROUNDS=3 DURATION=5s; BACKENDS="sqlite postgres"
#
# Needs wrk (installed when missing). Every process is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/wrk_setup.sh

# the document and headers exactly as prefect==1.4.1's Secret.get() sends them
cat > "$WORK/graphql.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-PREFECT-CORE-VERSION"] = "1.4.1"
wrk.body = '{"query": "query(\$name: String!) {\\\\n        secret_value(name: \$name)\\\\n}", "variables": "{\\\\"name\\\\": \\\\"bench/read\\\\"}"}'
LUA


run_backend() {
    local name="$1" db="$2"
    start_server "$WORK/$name" "$db"
    put_bench_secret
    # the GraphQL read answers the value: check it once before measuring
    curl -sf -X POST -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
        --data-binary @<(lua_body) "$URL/prefect/graphql" | grep -q '"the secret read by the benchmark"' \
        || { echo "the GraphQL read does not answer the value" >&2; exit 1; }
    for c in 1 64; do
        local t=$(( c < 2 ? 1 : 2 ))
        : >"$WORK/rest"; : >"$WORK/gql"; : >"$WORK/ratio"
        for _ in $(seq 1 "$ROUNDS"); do
            local r g
            r=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
                "$URL/api/v1/teams/default/secrets/bench/read" | measure)
            g=$(wrk -t"$t" -c"$c" -d"$DURATION" --latency -s "$WORK/graphql.lua" "$URL/prefect/graphql" | measure)
            echo "$r" >>"$WORK/rest"; echo "$g" >>"$WORK/gql"
            echo "${g%% *} ${r%% *}" | awk '{printf "%.3f\n", $1/$2}' >>"$WORK/ratio"
            echo "  round: $name $c conns: REST $r | GraphQL $g" >&2
        done
        # each column's median round by requests/s, with that round's p99
        local rest gql
        rest=$(sort -g "$WORK/rest" | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
        gql=$(sort -g "$WORK/gql" | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
        printf "| %s | %2d | %.0f/s (p99 %s) | %.0f/s (p99 %s) | %.0f %% |\n" "$name" "$c" \
            "${rest%% *}" "${rest#* }" "${gql%% *}" "${gql#* }" \
            "$(median <"$WORK/ratio" | awk '{print 100*$1}')"
    done
    stop_server
}

# the body the Lua script sends, for the check above
lua_body() {
    printf '%s' '{"query": "query($name: String!) {\n        secret_value(name: $name)\n}", "variables": "{\"name\": \"bench/read\"}"}'
}

echo "| backend | conns | REST read | GraphQL read (Prefect's document) | GraphQL / REST (median of rounds) |"
echo "|---|---|---|---|---|"
on_each_backend
