#!/usr/bin/env bash
# Paired no-op and cold-apply timings of two shipgate binaries against psql, in one hyperfine
# run each (interleaved is not possible in hyperfine, so the commands alternate within one
# invocation and the machine's load hits all of them alike). A measurement, not a test.
#
#   BEFORE=/path/to/old/shipgate AFTER=/path/to/new/shipgate bench/pair.sh [N]
#
# Needs PostgreSQL on 127.0.0.1:5432 (postgres, trust), hyperfine, psql and python3; the corpus
# comes from ../shared/bench/gen_corpus.py. Writes bench/results/pair-<N>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
BEFORE=${BEFORE:?set BEFORE to the old binary}
AFTER=${AFTER:?set AFTER to the new binary}
RUNS=${RUNS:-30}
CORPUS=/tmp/shipgate-pair-corpus-$N
PG="postgres://postgres@127.0.0.1:5432"
OUT=bench/results/pair-$N.md
[ -d "$CORPUS" ] || python3 ../shared/bench/gen_corpus.py --n "$N" --out "$CORPUS" >/dev/null
sql() { psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "$1"; }
# Work in an empty directory: no project config file changes what is measured.
WORK=$(mktemp -d)
cd "$WORK"

# The every-deploy no-op: both binaries against a database where all N are applied (each
# binary's own tables), against psql connecting and running SELECT 1.
for who in before after; do
    sql "DROP DATABASE IF EXISTS pair_noop_$who" >/dev/null
    sql "CREATE DATABASE pair_noop_$who" >/dev/null
done
"$BEFORE" up -q --database-url "$PG/pair_noop_before" --migrations "$CORPUS/sqlx" >/dev/null
"$AFTER" up -q --database-url "$PG/pair_noop_after" --migrations "$CORPUS/sqlx" >/dev/null
hyperfine -N --warmup 3 --runs "$RUNS" --export-markdown noop.md \
    -n psql-select1 "psql -X -Atq -h 127.0.0.1 -U postgres -d pair_noop_after -c 'SELECT 1'" \
    -n before "$BEFORE up -q --database-url $PG/pair_noop_before --migrations $CORPUS/sqlx" \
    -n after "$AFTER up -q --database-url $PG/pair_noop_after --migrations $CORPUS/sqlx"

# Cold apply of all N on a fresh database, against psql running them in one transaction.
PREP="psql -X -q -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS pair_cold' -c 'CREATE DATABASE pair_cold'"
hyperfine --warmup 1 --runs "$(( RUNS / 3 > 3 ? RUNS / 3 : 3 ))" --export-markdown cold.md \
    --prepare "$PREP" \
    -n psql-1 "psql -X -q -1 -h 127.0.0.1 -U postgres -d pair_cold -f $CORPUS/all.sql" \
    -n before "$BEFORE up -q --database-url $PG/pair_cold --migrations $CORPUS/sqlx" \
    -n after "$AFTER up -q --database-url $PG/pair_cold --migrations $CORPUS/sqlx"

cd - >/dev/null
{
    echo "# Paired timings, N=$N ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "before: \`$BEFORE\`; after: \`$AFTER\`; \`bench/pair.sh $N\` with RUNS=$RUNS."
    echo
    echo "## No-op (all $N applied)"
    echo
    cat "$WORK/noop.md"
    echo
    echo "## Cold apply of $N on a fresh database"
    echo
    cat "$WORK/cold.md"
} > "$OUT"
rm -rf "$WORK"
for who in before after; do sql "DROP DATABASE IF EXISTS pair_noop_$who" >/dev/null; done
sql "DROP DATABASE IF EXISTS pair_cold" >/dev/null
echo "wrote $OUT"
