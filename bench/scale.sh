#!/usr/bin/env bash
# A million secrets in one team: the server started on a database loaded with N_SECRETS secrets
# (1,000,000) and N_AUDIT audit records (50,000,000) of team `default`, then measured as a user
# meets it: a read at one connection (p50), a list page of 100 names and a prefix search (p50),
# the web page's secrets list and audit page (time to first byte), start to ready, and the
# database's bytes per secret and per audit record — on SQLite and on PostgreSQL.
#
#   SCALE=1 bash bench/scale.sh                          # both backends, the full sizes
#   SCALE=1 N_SECRETS=100000 N_AUDIT=5000000 BACKENDS=sqlite bash bench/scale.sh
#
# Not part of CI (SCALE=1 is the flag): the load takes minutes and ~10 GB per backend. The
# fillers are written straight into the database with the server stopped (their ciphertexts are
# placeholders no test opens); the secret read is written through the API and is a real one.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${SCALE:-}" == 1 ]] || { echo "bench/scale.sh loads millions of rows: run it with SCALE=1" >&2; exit 2; }
N_SECRETS="${N_SECRETS:-1000000}"
N_AUDIT="${N_AUDIT:-50000000}"
DURATION="${DURATION:-5s}"
source bench/wrk_setup.sh

# a folder per thousand secrets: prefix searches find a thousand names
FOLDERS=$(( (N_SECRETS + 999) / 1000 ))

load_sqlite() { # db
    local db="$1" chunk=5000000 done=0
    sqlite3 "$db" <<SQL
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $N_SECRETS - 1)
INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
SELECT 1, printf('app%04d/secret%06d', i / 1000, i), 1, 1764000000000 + i, 1764000000000 + i, 'benchadmin01' FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $N_SECRETS - 1)
INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
SELECT 1, printf('app%04d/secret%06d', i / 1000, i), 1, 1, randomblob(73), 1764000000000 + i, 'benchadmin01' FROM n;
COMMIT;
SQL
    SIZE_SECRETS=$(stat -c %s "$db")
    while ((done < N_AUDIT)); do
        local n=$(( N_AUDIT - done < chunk ? N_AUDIT - done : chunk ))
        sqlite3 "$db" >/dev/null <<SQL
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $n - 1)
INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, via)
SELECT 1764000000000 + $done + i, 'benchadmin01', 'reader', 'secret.read', 'default',
       printf('app%04d/secret%06d', (i % $N_SECRETS) / 1000, i % $N_SECRETS), 1, 'ok', '127.0.0.1', 'api' FROM n;
INSERT OR IGNORE INTO audit_blocks (team, block)
SELECT 'default', b FROM (SELECT DISTINCT id >> 10 AS b FROM audit WHERE id > (SELECT COALESCE(MAX(block), -1) << 10 FROM audit_blocks WHERE team = 'default'));
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
        done=$((done + n))
        echo "  sqlite: $done audit records" >&2
    done
}

load_postgres() { # url (with its search_path)
    local url="$1" chunk=5000000 done=0
    psql "$url" -q <<SQL
SET synchronous_commit = off;
INSERT INTO secrets (team_id, name, version, created_at, updated_at, updated_by)
SELECT t.id, format('app%s/secret%s', lpad((i / 1000)::text, 4, '0'), lpad(i::text, 6, '0')), 1,
       1764000000000 + i, 1764000000000 + i, 'benchadmin01'
FROM generate_series(0, $N_SECRETS - 1) i, teams t WHERE t.name = 'default';
INSERT INTO secret_versions (team_id, name, version, data_key_version, ciphertext, created_at, created_by)
SELECT t.id, format('app%s/secret%s', lpad((i / 1000)::text, 4, '0'), lpad(i::text, 6, '0')), 1, 1,
       decode(md5(i::text) || md5(i::text) || md5(i::text) || md5(i::text) || md5(i::text), 'hex'),
       1764000000000 + i, 'benchadmin01'
FROM generate_series(0, $N_SECRETS - 1) i, teams t WHERE t.name = 'default';
ANALYZE secrets; ANALYZE secret_versions;
SQL
    SIZE_SECRETS=$(psql "$url" -qAtc "SELECT pg_total_relation_size('secrets') + pg_total_relation_size('secret_versions')")
    while ((done < N_AUDIT)); do
        local n=$(( N_AUDIT - done < chunk ? N_AUDIT - done : chunk ))
        psql "$url" -q <<SQL
SET synchronous_commit = off;
INSERT INTO audit (at, key_id, role, action, team, name, version, outcome, client, via)
SELECT 1764000000000 + $done + i, 'benchadmin01', 'reader', 'secret.read', 'default',
       format('app%s/secret%s', lpad(((i % $N_SECRETS) / 1000)::text, 4, '0'), lpad((i % $N_SECRETS)::text, 6, '0')),
       1, 'ok', '127.0.0.1', 'api'
FROM generate_series(0, $n - 1) i;
SQL
        done=$((done + n))
        echo "  postgres: $done audit records" >&2
    done
    psql "$url" -qc "VACUUM ANALYZE audit" >/dev/null
}

# p50 in ms of wrk at one connection
p50() { wrk -t1 -c1 -d"$DURATION" --latency "$@" | awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v } /^ +50%/ {printf "%.3f", ms($2)}'; }

# the median time to first byte (ms) of 21 GETs of a web page, signed in with the admin key
ttfb() { # url path
    python3 - "$1" "$2" "$KEY" <<'PY'
import http.client, re, statistics, sys, time, urllib.parse
base, path, key = sys.argv[1], sys.argv[2], sys.argv[3]
host = urllib.parse.urlparse(base).netloc
c = http.client.HTTPConnection(host)
c.request("GET", "/")
r = c.getresponse(); body = r.read().decode()
cookie = r.getheader("set-cookie").split(";")[0]
token = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
form = urllib.parse.urlencode({"csrf": token, "key": key})
c.request("POST", "/ui/signin", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Origin": base})
r = c.getresponse(); r.read()
cookie = r.getheader("set-cookie").split(";")[0]
times = []
for _ in range(21):
    t = time.perf_counter()
    c.request("GET", path, headers={"Cookie": cookie})
    r = c.getresponse()
    r.read(1)
    times.append((time.perf_counter() - t) * 1000)
    r.read()
    assert r.status == 200, (path, r.status)
print(f"{statistics.median(times):.2f}")
PY
}

run_backend() { # name database
    local name="$1" db="$2" t0 t1
    start_server "$WORK/$name" "$db"
    put_bench_secret
    stop_server
    t0=$SECONDS
    local before=0
    if [[ "$name" == sqlite ]]; then
        local file="$WORK/$name/sigil.db"
        sqlite3 "$file" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        before=$(stat -c %s "$file")
        load_sqlite "$file"
        local after; after=$(stat -c %s "$file")
        PER_SECRET=$(( (SIZE_SECRETS - before) / N_SECRETS ))
        PER_AUDIT=$(( (after - SIZE_SECRETS) / N_AUDIT ))
    else
        load_postgres "$PG_URL"
        PER_SECRET=$(( SIZE_SECRETS / N_SECRETS ))
        PER_AUDIT=$(( $(psql "$PG_URL" -qAtc "SELECT pg_total_relation_size('audit')") / N_AUDIT ))
    fi
    t1=$SECONDS
    echo "  $name: loaded in $((t1 - t0)) s" >&2
    start_server "$WORK/$name" "$db"
    local ready=$READY_MS
    local h="Authorization: Bearer $KEY"
    local read list prefix secrets_page audit_page
    read=$(p50 -H "$h" "$URL/api/v1/teams/default/secrets/bench/read")
    list=$(p50 -H "$h" "$URL/api/v1/teams/default/secrets?limit=100")
    prefix=$(p50 -H "$h" "$URL/api/v1/teams/default/secrets?prefix=$(printf 'app%04d/' $((FOLDERS / 2)))&limit=100")
    secrets_page=$(ttfb "$URL" "/ui/secrets")
    audit_page=$(ttfb "$URL" "/ui/audit")
    stop_server
    printf "| %s | %s | %s ms | %s ms | %s ms | %s ms | %s ms | %s ms | %s B | %s B |\n" \
        "$name" "$N_SECRETS / $N_AUDIT" "$read" "$list" "$prefix" "$secrets_page" "$audit_page" "$ready" "$PER_SECRET" "$PER_AUDIT"
}

echo "| backend | secrets / audit records | read p50 (1 conn) | list of 100 p50 | prefix search p50 | web list TTFB | web audit TTFB | start to ready | bytes per secret | bytes per audit record |"
echo "|---|---|---|---|---|---|---|---|---|---|"
if [[ "${BACKENDS:-sqlite postgres}" == *sqlite* ]]; then
    run_backend sqlite "sqlite://$WORK/sqlite/sigil.db"
fi
if [[ "${BACKENDS:-sqlite postgres}" == *postgres* ]]; then
    schema="sigil_scale_$$"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
    PG_URL="$POSTGRES_URL?options=-csearch_path%3D$schema"
    run_backend postgres "$PG_URL"
    psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
fi
