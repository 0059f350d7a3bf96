# Sourced by the wrk load scripts (server.sh, prefect.sh) from the repository's root: their
# settings, wrk (installed when missing), the release build (unless SIGIL_BIN names another),
# a scratch directory removed at exit with every process started, and lib.sh.
DURATION="${DURATION:-5s}"
ROUNDS="${ROUNDS:-3}"
POSTGRES_URL="${POSTGRES_URL:-${SIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[[ -n "${SIGIL_BIN:-}" ]] || cargo build --release --bin sigil >/dev/null
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
source bench/lib.sh

# Runs the script's run_backend on SQLite, then on a fresh schema of PostgreSQL when it answers
# (and BACKENDS, "sqlite postgres" by default, names it).
on_each_backend() {
    run_backend sqlite "sqlite://$WORK/sqlite/sigil.db"
    if [[ "${BACKENDS:-sqlite postgres}" == *postgres* ]] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        local schema="sigil_bench_$$"
        psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null 2>&1
        run_backend postgres "$POSTGRES_URL?options=-csearch_path%3D$schema"
        psql "$POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
    else
        echo "PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL figures not measured" >&2
    fi
}

# A wrk script writing new names (each a first version) with `method` under `path-prefix`,
# with the benchmark key in both of the faces' headers.
write_lua() { # file path-prefix method body
    cat >"$1" <<LUA
local n = 0
local id = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  return wrk.format("$3", "$2" .. id .. "/" .. n,
    {["X-Vault-Token"] = "$KEY", ["Authorization"] = "Bearer $KEY", ["Content-Type"] = "application/json"},
    '$4')
end
LUA
}
