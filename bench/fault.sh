#!/usr/bin/env bash
# bench/fault.sh — the full fault suite, with its results recorded.
#
# Not a unit of CI: `cargo test` (and .ci/run) runs a bounded part of the same tests (5 kills
# per engine, 3 soak rounds). This runs the full counts: 50 SIGKILLs on PostgreSQL, 20 on SQLite
# and MariaDB, 20 simultaneous releases × 10 rounds, plus every other fault test once.
# Needs the databases of the integration suite (PostgreSQL on 127.0.0.1:5432, MariaDB on
# 127.0.0.1:3306; `bash .ci/run` starts them) and PostgreSQL's server binaries for the private
# instance of the restart test. About 3–5 minutes on 2 cores.
#
# What it runs:
#   SHIPGATE_FAULT_FULL=1 SHIPGATE_FAULT_RESULTS=<dir>/results.tsv \
#     cargo test --locked --test it fault -- --test-threads=2
# and writes, in bench/results/fault-<UTC date>/:
#   results.tsv  one line per fault test: fault, engine, trials, survived, data lost,
#                double applies, locks left, note (seeds, timings)
#   table.md     the same as the Markdown table of the README's Reliability section
#   env.txt      date, git revision, cores, load, server versions
#   test.log     cargo's output
#
# Environment (optional): CARGO_TARGET_DIR (default: ../target-ci, as .ci/run),
# SHIPGATE_FAULT_SEED (replay the kills of an earlier run).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target-ci}"
export CARGO_TERM_COLOR=never

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$ROOT/bench/results/fault-$stamp"
mkdir -p "$out"
results="$out/results.tsv"
: >"$results"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores=$(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "postgres: $(psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT version()' 2>/dev/null || echo '?')"
    echo "mariadb: $(mariadb -h 127.0.0.1 -uroot -N -e 'SELECT VERSION()' 2>/dev/null || echo '?')"
    echo "command: SHIPGATE_FAULT_FULL=1 cargo test --locked --test it fault -- --test-threads=2"
} >"$out/env.txt"
cat "$out/env.txt" >&2

status=0
SHIPGATE_FAULT_FULL=1 SHIPGATE_FAULT_RESULTS="$results" \
    cargo test --locked --test it fault -- --test-threads=2 >"$out/test.log" 2>&1 || status=$?
tail -n 5 "$out/test.log" >&2

{
    echo "| fault | engine | trials | survived | data lost | double applies | locks left | notes |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    sort "$results" | while IFS=$'\t' read -r fault engine trials survived lost double locks note; do
        echo "| $fault | $engine | $trials | $survived | $lost | $double | $locks | $note |"
    done
} >"$out/table.md"
cat "$out/table.md"
echo "results in ${out#"$ROOT"/}" >&2
exit "$status"
