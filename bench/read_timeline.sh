#!/usr/bin/env bash
# Where one audited read's time goes at one connection on SQLite: `perf trace` records the
# server's system calls while wrk reads one secret over one connection, and each request is cut
# into its steps by the threads' calls —
#   request read (a runtime thread's read of the socket)
#   -> the writer thread's first WAL pwrite          (the request's work, the hand-off to the writer)
#   -> its last WAL pwrite ends                       (the audit record's WAL frame)
#   -> the syncer's fdatasync begins                  (the hand-off to the syncer)
#   -> fdatasync ends                                 (the durable flush)
#   -> the response's write on the socket             (the hand-back and the response's work)
#   -> the next request read                          (wrk and the loopback round trip)
# and the medians are printed. perf trace adds a few µs to each call it records.
#
#   bash bench/read_timeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
source bench/wrk_setup.sh
command -v perf >/dev/null || { echo "perf is missing" >&2; exit 1; }

start_server "$WORK" "sqlite://$WORK/sqlite/sigil.db"
put_bench_secret
cat >"$WORK/read.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.path = "/api/v1/teams/default/secrets/bench/read"
LUA
wrk -t1 -c1 -d2s -s "$WORK/read.lua" "$URL" >/dev/null # warm
perf trace -q -p "$PID" -o "$WORK/trace.txt" \
    -e 'read,recvfrom,write,writev,sendto,sendmsg,pwrite64,fdatasync' &
tracer=$!
sleep 1
wrk -t1 -c1 -d"${DURATION}s" -s "$WORK/read.lua" --latency "$URL" | tee "$WORK/wrk.txt" | grep -E "Requests/sec|50%"
sleep 0.5
kill -INT "$tracer"
wait "$tracer" 2>/dev/null || true
stop_server

python3 - "$WORK/trace.txt" <<'PY'
import re, statistics, sys
# "  1234.567 ( 0.012 ms): sigil-server/4321 read(fd: 12, buf: 0x.., count: 8192) = 147"
line_re = re.compile(r"^\s*([\d.]+) \(\s*([\d.]+) ms\): (\S+)/(\d+) (\w+)\((.*)\)\s+= (-?\d+)")
steps = {k: [] for k in ("to_writer", "wal", "to_syncer", "fsync", "to_response", "round_trip")}
cur = None
last_response = None
for line in open(sys.argv[1], errors="replace"):
    m = line_re.match(line)
    if not m:
        continue
    t, dur, comm, call, ret = float(m[1]), float(m[2]), m[3], m[5], int(m[7])
    end = t + dur
    if call in ("read", "recvfrom") and comm.startswith("sigil-server") and ret > 0:
        if last_response is not None:
            steps["round_trip"].append(t + dur - last_response)
        cur = {"req": end}
    elif cur is None:
        continue
    elif call == "pwrite64" and "wal" not in cur.get("done", ""):
        cur.setdefault("w0", t)
        cur["w1"] = end
    elif call == "fdatasync" and "s0" not in cur:
        cur["s0"], cur["s1"] = t, end
    elif call in ("write", "writev", "sendto", "sendmsg") and comm.startswith("sigil-server") and ret > 0:
        if all(k in cur for k in ("w0", "s0")):
            steps["to_writer"].append(cur["w0"] - cur["req"])
            steps["wal"].append(cur["w1"] - cur["w0"])
            steps["to_syncer"].append(cur["s0"] - cur["w1"])
            steps["fsync"].append(cur["s1"] - cur["s0"])
            steps["to_response"].append(t - cur["s1"])
        last_response = t
        cur = None
n = len(steps["fsync"])
if n < 100:
    sys.exit(f"only {n} requests could be cut into their steps; is perf trace allowed here?")
names = {
    "to_writer": "request read -> writer's first WAL write (request work + hand-off)",
    "wal": "WAL frame written (pwrite)",
    "to_syncer": "last WAL write -> fdatasync begins (hand-off to the syncer)",
    "fsync": "fdatasync",
    "to_response": "fdatasync ends -> response written (hand-back + response work)",
    "round_trip": "response written -> next request read (wrk + loopback)",
}
print(f"\n{n} reads cut into steps (median ms each):")
total = 0.0
for k, label in names.items():
    med = statistics.median(steps[k])
    total += med
    print(f"| {label} | {med:.3f} |")
print(f"| sum of the medians | {total:.3f} |")
PY
