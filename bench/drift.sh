#!/usr/bin/env bash
# bench/drift.sh — the cost of the drift check at 1,000 tables on PostgreSQL (issue 15: target
# <= 100 ms for the catalog read + compare).
#
# Usage: bench/drift.sh [TABLES] [RUNS]     (defaults 1000 and 30)
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), psql, hyperfine, python3, and a
# release build (`cargo build --release`; BIN overrides the binary).
# What it does: a fresh database; one migration creating TABLES tables (5 columns with defaults
# and NOT NULL, a primary key and one secondary index each); `shipgate release` (which stores
# the snapshot); then
#   1. in-process: RUNS runs of `shipgate drift` with debug logs, reading the time of the one
#      catalog read and of normalise + compare from its "drift check" event (median, min, max);
#   2. end to end: hyperfine of `psql -c 'select 1'` (the floor: a process, a connection, one
#      statement), `shipgate history` (connect + one statement) and `shipgate drift`.
set -euo pipefail
TABLES=${1:-1000}; RUNS=${2:-30}
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/shipgate}
[ -x "$BIN" ] || { echo "no release binary at $BIN (cargo build --release, or set BIN)" >&2; exit 2; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB=shipgate_drift_bench
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB?sslmode=disable"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null 2>&1
mkdir -p "$WORK/migrations"
python3 - "$TABLES" > "$WORK/migrations/1_tables.up.sql" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    t = f"t{i:05d}"
    print(f"CREATE TABLE {t} (id bigint PRIMARY KEY, name text NOT NULL DEFAULT '', "
          f"email varchar(200), created_at timestamptz NOT NULL DEFAULT now(), n integer);")
    print(f"CREATE INDEX {t}_email_idx ON {t} (email);")
PY
cd "$WORK"
export DATABASE_URL=$URL SHIPGATE_MIGRATIONS=$WORK/migrations SHIPGATE_LINT_GATE=off
"$BIN" -q release >/dev/null
"$BIN" drift >/dev/null   # exit 0: no drift
echo "## $TABLES tables: $(psql -X -qAt -d "$DB" -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") relations, PostgreSQL $(psql -X -qAt -d "$DB" -c 'SHOW server_version')"
echo
for _ in $(seq "$RUNS"); do
    RUST_LOG=shipgate=debug SHIPGATE_LOG_FORMAT=json "$BIN" drift 2>&1 >/dev/null | grep -E '"(drift check|read the schema)' || true
done > "$WORK/events.jsonl"
python3 - "$WORK/events.jsonl" <<'PY'
import sys, json, statistics
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# One "read the schema" and one "drift check" event per run: merged into one row per run.
rows, row = [], {}
for e in events:
    row.update({k: v for k, v in e.items() if k.endswith("_us") or k == "objects"})
    if "compare_us" in e:
        rows.append(row)
        row = {}
get = lambda r, k: r.get(k, 0)
def f(k):
    v = sorted(float(get(r, k)) / 1000 for r in rows)
    return "median %.1f ms (min %.1f, max %.1f)" % (statistics.median(v), v[0], v[-1])
print("In-process, %d runs, %s objects in the snapshot:" % (len(rows), get(rows[0], "objects")))
print("- the catalog statement (fresh session): " + f("statement_us"))
print("- normalise (rows to snapshot):         " + f("normalise_us"))
print("- read + normalise:                     " + f("catalog_read_us"))
print("- compare with the stored snapshot:     " + f("compare_us"))
PY
echo
hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-markdown "$WORK/h.md" \
    -n "psql select 1" "psql -X -q -d $DB -c 'select 1'" \
    -n "shipgate history" "$BIN -q history" \
    -n "shipgate drift" "$BIN -q drift" >/dev/null
cat "$WORK/h.md"
