#!/usr/bin/env bash
# Soak: mixed reads, writes, lists and web page loads at about 80 % of the server's peak for a long
# time, on SQLite and on PostgreSQL: every slice's requests per second, p99 and errors, and the
# server's RSS and open file descriptors, so that a leak or a slow drift shows.
#
#   SOAK=1 bash bench/soak.sh                         # 30 minutes per backend (MINUTES=30)
#   SOAK=1 MINUTES=3 BACKENDS=sqlite bash bench/soak.sh
#   SOAK=1 BACKENDS=sqlite SOAK_DATA=/dev/shm bash bench/soak.sh   # the server without the disk
#   SOAK=1 BACKENDS=postgres WARMUP=6 bash bench/soak.sh   # three minutes of warm-up, not one slice
#   SOAK=1 BACKENDS=postgres PG_POOL=pool_min=64 bash bench/soak.sh   # the pool opened whole at start
#
# Not part of CI (SOAK=1 is the flag). The mix per 20 requests: 14 audited reads, 3 durable
# writes (of 500 names, so versions pile up), 2 list pages, 1 web page (signed in). wrk has no
# rate limit: each connection waits between requests (Lua `delay`) so that the whole runs near
# 80 % of the peak measured first with no wait. Verdict: no error; RSS and descriptors within
# 10 % of their first value after the warm-up (WARMUP slices, one by default), and on PostgreSQL
# the descriptors other than the pool's connections (`sigil_store_connections` in /metrics: the
# pool opens one when every open one is busy and keeps it, up to `pool_size`); p99 of the last
# slices against the first.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${SOAK:-}" == 1 ]] || { echo "bench/soak.sh runs for a long time: run it with SOAK=1" >&2; exit 2; }
MINUTES="${MINUTES:-30}"
SLICE="${SLICE:-30}"
# slices counted as the warm-up (RSS and descriptors are compared with the first slice after it)
WARMUP="${WARMUP:-1}"
CONNS=64
source bench/wrk_setup.sh
# Where the SQLite database (and the fsync probe) go: SOAK_DATA=/dev/shm puts them on a tmpfs, where a
# sync costs nothing, to see the server without the disk (not durable: a control, not a result).
DATA="$(mktemp -d -p "${SOAK_DATA:-$WORK}")"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK" "$DATA"' EXIT

# An independent witness of the disk (bench/fsync_probe.py): another process that writes 4 KiB
# and fdatasyncs it every 10 ms in the database's directory. When its syncs stall in the same
# slices as the server's, the stall is the disk's (or the file system's), not the server's.
# The probe's syncs logged since line `seen`: how many took over 100 ms, and the longest.
probe_slice() { # log seen-lines last-line
    sed -n "$(( $2 + 1 )),$3p" "$1" \
        | awk '{n++; if ($1 > 100) s++; if ($1 > m) m = $1} END {printf "%d of %d, max %.0f ms", s, n, m}'
}

# The share of CPU time the hypervisor gave to others (steal) and that was idle, since the last
# call, from /proc/stat.
cpu_slice() {
    local now; now=$(head -1 /proc/stat)
    awk -v a="${CPU_BEFORE:-$now}" -v b="$now" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); t = 0
        for (i = 2; i <= n; i++) t += y[i] - x[i]
        if (t <= 0) {print "—"; exit}
        printf "%.0f %% idle, %.0f %% steal", 100 * (y[5] - x[5]) / t, 100 * (y[9] - x[9]) / t }'
}

# Sets VM_PAUSED to 1 when the host paused the VM (a snapshot) since the last call: the kernel logs
# "virtual machine fork" when it resumes, and "drop_caches" when the host empties its page cache
# just before. The server's clock (monotonic) does not see the pause; wrk's (the wall clock)
# does, as seconds of latency with no request slow in the server.
vm_paused() {
    local n; n=$(dmesg 2>/dev/null | grep -cE "virtual machine fork|drop_caches" || true)
    VM_PAUSED=$(( n > ${VM_FORKS:-$n} ? 1 : 0 ))
    VM_FORKS=$n
}

# The whole disks' writes since the last call (from /proc/diskstats): writes/s, MB/s, the average
# time a write took, and cache flushes/s.
disk_now() {
    awk '$3 ~ /^(vd[a-z]+|sd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+)$/ {w += $8; s += $10; t += $11; f += $19}
         END {printf "%d %d %d %d ", w, s, t, f}' /proc/diskstats
    date +%s.%N
}
disk_slice() { # before after
    awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); d = y[5] - x[5]; if (d <= 0) d = 1
        w = y[1] - x[1]
        printf "%.0f w/s, %.0f MB/s, %.2f ms/w, %.0f flush/s", w / d, (y[2] - x[2]) * 512 / 1e6 / d,
            (w > 0 ? (y[3] - x[3]) / w : 0), (y[4] - x[4]) / d}'
}

signin_cookie() { # url
    python3 - "$1" "$KEY" <<'PY'
import http.client, re, sys, urllib.parse
base, key = sys.argv[1], sys.argv[2]
c = http.client.HTTPConnection(urllib.parse.urlparse(base).netloc)
c.request("GET", "/")
r = c.getresponse(); body = r.read().decode()
cookie = r.getheader("set-cookie").split(";")[0]
token = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
c.request("POST", "/ui/signin", urllib.parse.urlencode({"csrf": token, "key": key}),
          {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Origin": base})
r = c.getresponse(); r.read()
print(r.getheader("set-cookie").split(";")[0])
PY
}

mix_lua() { # file delay-ms cookie
    cat >"$1" <<LUA
local n = 0
local auth = {["Authorization"] = "Bearer $KEY", ["Content-Type"] = "application/json"}
local web = {["Cookie"] = "$3"}
request = function()
  n = n + 1
  local r = n % 20
  if r < 14 then
    return wrk.format("GET", "/api/v1/teams/default/secrets/bench/read", auth)
  elseif r < 17 then
    return wrk.format("PUT", "/api/v1/teams/default/secrets/soak/" .. (math.random(0, 499)), auth,
      '{"value": {"user": "soak", "password": "a value written over and over"}}')
  elseif r < 19 then
    return wrk.format("GET", "/api/v1/teams/default/secrets?limit=100", auth)
  else
    return wrk.format("GET", "/ui/secrets", web)
  end
end
delay = function() return $2 end
LUA
}

# wrk's output -> "requests/s p99-ms errors" (non-2xx answers and socket errors)
slice_measure() {
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /Requests\/sec/ {r = $2} /^ +99%/ {p = ms($2)} /^ +Latency +[0-9]/ {x = ms($4)}
         /Non-2xx or 3xx responses/ {e += $NF}
         /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10}
         END {printf "%s %.2f %.1f %d", r, p, x, e + 0}'
}

metrics_snapshot() { # file
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode())' "$URL" >"$1"
}

# Between two /metrics snapshots: how many requests, group commits, WAL syncs and checkpoints
# took over 100 ms (the server's own clock: wrk's p99 corrects for coordinated omission, so a
# stall of under a second shows as a p99 of hundreds of milliseconds), and how many checkpoints.
slow_steps() { # before after
    python3 - "$1" "$2" <<'PY'
import re, sys
def read(path):
    h = {}
    for line in open(path):
        m = re.match(r'(sigil_\w+)_(bucket\{le="([^"]+)"\}|count) (\d+)', line)
        if m:
            name, le, n = m.group(1), m.group(3), int(m.group(4))
            h.setdefault(name, {})[le or "count"] = n
    return h
a, b = read(sys.argv[1]), read(sys.argv[2])
def over(name):
    x, y = a.get(name, {}), b.get(name, {})
    if not y:
        return "—"
    d = lambda k: y.get(k, 0) - x.get(k, 0)
    return str(d("count") - d("0.1"))
n = b.get("sigil_store_checkpoint_seconds", {}).get("count", 0) - a.get("sigil_store_checkpoint_seconds", {}).get("count", 0)
print(", ".join([over("sigil_http_request_duration_seconds"), over("sigil_store_commit_seconds"),
                 over("sigil_store_sync_seconds"), over("sigil_store_checkpoint_seconds") + f" (of {n})"]))
PY
}

run_backend() { # name database
    local name="$1" db="$2"
    start_server "$WORK/$name" "$db"
    put_bench_secret
    local cookie; cookie=$(signin_cookie "$URL")
    mix_lua "$WORK/peak.lua" 0 "$cookie"
    local peak; peak=$(wrk -t2 -c"$CONNS" -d10s --latency -s "$WORK/peak.lua" "$URL" | slice_measure | cut -d' ' -f1)
    # each connection waits so that all of them together send ~80 % of the peak
    local wait_ms; wait_ms=$(awk -v p="$peak" -v c="$CONNS" 'BEGIN {d = c * 1000 / (0.8 * p) - c * 1000 / p; if (d < 0) d = 0; printf "%.0f", d}')
    mix_lua "$WORK/soak.lua" "$wait_ms" "$cookie"
    echo "$name: peak $peak req/s; soak with a $wait_ms ms wait per request per connection, $MINUTES min" >&2
    echo "| $name | slice | req/s | p99 | max | errors | RSS | descriptors (the pool's connections) | database, WAL (SQLite) | over 100 ms: requests, commits, syncs, checkpoints (of n) | probe's syncs over 100 ms | CPU | disk |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    metrics_snapshot "$WORK/metrics.0"
    mkdir -p "$DATA/$name"
    : >"$WORK/$name.probe"
    python3 bench/fsync_probe.py "$DATA/$name" --log "$WORK/$name.probe" &
    local probe_pid=$! seen=0 lines
    CPU_BEFORE=$(head -1 /proc/stat)
    vm_paused
    local disk_before disk_after; disk_before=$(disk_now)
    local slices=$(( MINUTES * 60 / SLICE )) i m rss fds
    : >"$WORK/$name.tsv"
    for i in $(seq 1 "$slices"); do
        # wrk gives up on a request after 2 s by default and counts it as an error; here it waits
        # as long as the server's own request timeout (30 s), past which the server answers 503
        m=$(wrk -t2 -c"$CONNS" -d"${SLICE}s" --timeout 30s --latency -s "$WORK/soak.lua" "$URL" | slice_measure)
        metrics_snapshot "$WORK/metrics.$i"
        slow=$(slow_steps "$WORK/metrics.$((i - 1))" "$WORK/metrics.$i")
        lines=$(wc -l <"$WORK/$name.probe")
        probe=$(probe_slice "$WORK/$name.probe" "$seen" "$lines")
        seen=$lines
        cpu=$(cpu_slice)
        vm_paused
        [[ "$VM_PAUSED" == 1 ]] && cpu="$cpu, the VM paused by its host"
        disk_after=$(disk_now)
        disk=$(disk_slice "$disk_before" "$disk_after")
        disk_before=$disk_after
        CPU_BEFORE=$(head -1 /proc/stat)
        rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status")
        fds=$(ls "/proc/$PID/fd" | wc -l)
        # the SQLite file and its WAL (a WAL that only grows would slow reads and checkpoints)
        files="—"
        if [[ -f "$DATA/$name/sigil.db" ]]; then
            files=$(stat -c %s "$DATA/$name/sigil.db" "$DATA/$name/sigil.db-wal" 2>/dev/null \
                | awk '{printf "%s%.0f MB", (NR > 1 ? ", " : ""), $1 / 1048576}')
        fi
        # a disk stall in the slice: a step of the server's store, or the probe's sync, over 100 ms
        stall=$(awk -v s="$slow" -v p="$probe" 'BEGIN {split(s, x, /[ ,]+/); split(p, y, " ");
            print (x[2] + x[3] + x[4] > 0 || y[1] > 0) ? 1 : 0}')
        # the PostgreSQL pool's open connections (idle and in use), 0 on SQLite
        pool=$(awk '/^sigil_store_connections\{/ {n += $2} END {print n + 0}' "$WORK/metrics.$i")
        printf '%s %s %s %s %s %s %s\n' "$i" "$m" "$rss" "$fds" "$stall" "$pool" "$VM_PAUSED" >>"$WORK/$name.tsv"
        read -r rps p99 max errors <<<"$m"
        printf "| | %d | %.0f | %s ms | %s ms | %d | %s MB | %d (%d) | %s | %s | %s | %s | %s |\n" "$i" "$rps" "$p99" "$max" "$errors" "$rss" "$fds" "$pool" "$files" "$slow" "$probe" "$cpu" "$disk"
    done
    python3 - "$WORK/$name.tsv" "$name" "$WARMUP" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()]
name, warmup = sys.argv[2], int(sys.argv[3])
errors = sum(int(r[4]) for r in rows)
after = rows[warmup:] or rows  # the first slices are the warm-up
rss0, fd0 = float(after[0][5]), int(after[0][6])
rss_drift = max(abs(float(r[5]) - rss0) / rss0 for r in after)
fd_drift = max(abs(int(r[6]) - fd0) / fd0 for r in after)
# the descriptors that are not the pool's connections
own0 = int(after[0][6]) - int(after[0][8])
own_drift = max(abs(int(r[6]) - int(r[8]) - own0) / own0 for r in after)
pools = [int(r[8]) for r in after]
p99_first, p99_last = float(after[0][2]), float(after[-1][2])
paused = [r for r in after if r[9] == "1"]  # the host paused the VM (a snapshot)
calm = sorted(float(r[2]) for r in after if r[7] == "0" and r[9] == "0")
stalled = [r for r in after if r[7] == "1"]
median = calm[len(calm) // 2] if calm else float("nan")
high = [r for r in after if float(r[2]) > 2 * median]
unexplained = [r for r in high if r[7] == "0" and r[9] == "0"]
print(f"{name}: {errors} errors; warm-up {warmup} slice(s); RSS within {100 * rss_drift:.1f} % and descriptors within "
      f"{100 * fd_drift:.1f} % of their first value after the warm-up (target 10 %)"
      + (f" (the pool's connections {min(pools)}–{max(pools)}; the other descriptors within {100 * own_drift:.1f} %)"
         if max(pools) > 0 else "") + "; p99 "
      f"{p99_first:.2f} ms in the first slice after it, {p99_last:.2f} ms in the last; "
      f"{len(stalled)} of {len(after)} slices had a disk stall (a sync or commit of the store, or the "
      f"probe's sync, over 100 ms) and {len(paused)} the VM paused by its host; p99 in the others {calm[0] if calm else 0:.2f}–"
      f"{calm[-1] if calm else 0:.2f} ms, median {median:.2f} ms; slices above twice that median "
      f"without a disk stall: {len(unexplained)}")
PY
    kill "$probe_pid" 2>/dev/null || true
    stop_server
}

if [[ "${BACKENDS:-sqlite postgres}" == *sqlite* ]]; then
    run_backend sqlite "sqlite://$DATA/sqlite/sigil.db"
fi
if [[ "${BACKENDS:-sqlite postgres}" == *postgres* ]]; then
    schema="sigil_soak_$$"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
    run_backend postgres "$POSTGRES_URL?options=-csearch_path%3D$schema${PG_POOL:+&$PG_POOL}"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
fi
