#!/usr/bin/env bash
# Two builds of `sigil server` under the same load, alternated (A, B, A, B) in one run, so that
# the machine's drift falls on both: `bench/server.sh` for each, its tables one after the other.
#
#   bash bench/compare_builds.sh /path/to/old/sigil target/release/sigil
#   BACKENDS=sqlite ROUNDS=3 DURATION=5s bash bench/compare_builds.sh OLD NEW
set -euo pipefail
cd "$(dirname "$0")/.."
A="$1" B="$2"
for bin in "$A" "$B"; do
    [[ -x "$bin" ]] || { echo "not an executable: $bin" >&2; exit 2; }
done
for pass in 1 2; do
    for bin in "$A" "$B"; do
        echo "## pass $pass: $bin"
        SIGIL_BIN="$bin" bash bench/server.sh 2>/dev/null
    done
done
