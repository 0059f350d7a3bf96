# Sourced by the bench scripts: starting a release `sigil server` and waiting until it is ready.
# Needs WORK (a scratch directory) set before it is sourced; sets KEY (the bootstrap admin key).

KEY="sgl_benchadmin01_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
# SIGIL_BIN runs another build (bench/compare_builds.sh alternates two)
BIN="${SIGIL_BIN:-$PWD/target/release/sigil}"

# µs since the epoch, without starting a process
now_us() { local t="${EPOCHREALTIME/[.,]/}"; echo "$t"; }

# Waits until the server logging to $1 (process $2) answers /readyz with 200 and sets URL. It
# polls with shell builtins only (the log read line by line, HTTP over bash's /dev/tcp, a 1 ms
# pause read from a FIFO), so no process is started per poll and the time measured is the
# server's.
wait_ready() { # log pid
    local log="$1" line hostport status
    URL=""
    while :; do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "the server exited before it was ready; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        if [[ -z "$URL" && -r "$log" ]]; then
            while IFS= read -r line; do
                if [[ "$line" =~ (http://127\.0\.0\.1:[0-9]+) ]]; then
                    URL="${BASH_REMATCH[1]}"
                    break
                fi
            done <"$log"
        fi
        if [[ -n "$URL" ]]; then
            hostport="${URL#http://}"
            if { exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"; } 2>/dev/null; then
                printf 'GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3
                IFS= read -r status <&3 || status=""
                exec 3<&-
                [[ "$status" == "HTTP/1.1 200"* ]] && return
            fi
        fi
        read -r -t 0.001 -u "$PAUSE" || true
    done
}
[[ -p "$WORK/pause" ]] || mkfifo "$WORK/pause"
exec {PAUSE}<>"$WORK/pause"

# Starts a server with SIGIL_HOME $1 on database $2, listening on a free loopback port; sets PID,
# URL and READY_MS (from start to a ready /readyz).
start_server() { # home database
    local t0 t1
    mkdir -p "$1"
    : >"$1/server.log" # emptied here, not by the child, which may open it after the first poll
    t0=$(now_us)
    SIGIL_HOME="$1" SIGIL_BOOTSTRAP_ADMIN_KEY="$KEY" SIGIL_MASTER_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" \
        "$BIN" server --listen 127.0.0.1:0 --database "$2" 2>>"$1/server.log" &
    PID=$!
    wait_ready "$1/server.log" "$PID"
    t1=$(now_us)
    READY_MS=$(( (t1 - t0) / 1000 ))
}

# Stops the server started last (SIGTERM) and waits for it.
stop_server() {
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null || true
}

# Stores the secret the read benchmarks read.
put_bench_secret() {
    curl -sf -X PUT -H "Authorization: Bearer $KEY" -d '{"value": "the secret read by the benchmark"}' \
        "$URL/api/v1/teams/default/secrets/bench/read" >/dev/null
}

# wrk's output -> "requests/s p99"
measure() { awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {printf "%s %s", r, p}'; }
# the median of numbers, one a line
median() { sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# The transaction the server runs for a write of a new name on PostgreSQL
# (crates/sigil-store/src/postgres/versions.rs, `put_secret`: the secret's advisory lock, the read
# of its row and its team's settings, the version, the secret's row, the audit record) as a
# pgbench script for team $1, in one pipeline (one round trip: the least it can cost; the server
# needs the read's answer before it writes). Restated here, not read from the source: a change of
# the write transaction must be made here too.
pg_write_sql() { # team-id
    local team_id="$1" cipher
    # a 120-byte ciphertext, as a small value's
    cipher="'\\x$(head -c 120 /dev/urandom | od -An -tx1 | tr -d ' \n')'::bytea"
    cat <<SQL
\\set n random(1, 9000000000000000000)
\\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock($team_id, hashtext('bench/w/' || :n));
SELECT s.name, s.version, s.created_at, s.updated_at, s.updated_by, s.deleted_at, s.oldest_version,
       s.max_versions, s.cas_required, s.delete_version_after, s.custom_metadata, t.kv_max_versions,
       t.kv_cas_required, t.kv_delete_version_after
  FROM teams t LEFT JOIN secrets s ON s.team_id = t.id AND s.name = 'bench/w/' || :n WHERE t.id = $team_id;
INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by, deleted_at)
  VALUES ($team_id, 'bench/w/' || :n, 1, 1, $cipher, 1764620000000, 'benchadmin01', NULL);
INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by, deleted_at, oldest_version)
  VALUES ($team_id, 'bench/w/' || :n, 1, 1764620000000, 1764620000000, 'benchadmin01', NULL, 1)
  ON CONFLICT (team_id, name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at,
     updated_by = excluded.updated_by, deleted_at = NULL, oldest_version = excluded.oldest_version;
INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, flow_run, task, target, via, agent)
  VALUES (1764620000000, 'benchadmin01', 'admin', 'secret.write', 'default', 'bench/w/' || :n, 1, 'ok',
          '127.0.0.1', NULL, NULL, NULL, 'api', NULL);
END;
\\endpipeline
SQL
}

# The server's batched audited read (READ_BATCH in crates/sigil-store/src/postgres/batch.rs, read
# from the source so the two cannot drift) of secret bench/read of team $2, $1 reads in one
# statement, its parameters as array literals: a pgbench script.
pg_read_batch_sql() { # reads team-id
    python3 - "$1" "$2" <<'PY'
import re, sys
n, team = int(sys.argv[1]), sys.argv[2]
src = open("crates/sigil-store/src/postgres/batch.rs").read()
sql = src.split('const READ_BATCH: &str = "', 1)[1].split('";', 1)[0]
sql = " ".join(line.split("--")[0] for line in sql.splitlines())
def arr(value, ty):
    return "('{" + ",".join([value] * n) + "}'::" + ty + "[])"
params = {1: arr(team, "bigint"), 2: arr('"bench/read"', "text"), 3: arr("NULL", "bigint"),
          4: arr("1764620000000", "bigint"), 5: arr('"benchadmin01"', "text"),
          6: arr('"admin"', "text"), 7: arr('"secret.read"', "text"), 8: arr('"default"', "text"),
          9: arr('"bench/read"', "text"), 10: arr('"ok"', "text"), 11: arr('"127.0.0.1"', "text"),
          12: arr("NULL", "text"), 13: arr("NULL", "text"), 14: "'not_found'",
          15: arr('"api"', "text"), 16: arr("NULL", "text")}
for k in sorted(params, reverse=True):  # $16 before $1
    sql = sql.replace("$%d" % k, params[k])
if re.search(r"\$\d", sql):
    sys.exit("READ_BATCH has a parameter this script does not fill")
print(" ".join(sql.split()) + ";")
PY
}
