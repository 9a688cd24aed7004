#!/usr/bin/env bash
# ab_cold.sh — paired cold-apply comparison of several commands, interleaved on fresh databases.
#
# Usage: ab_cold.sh N ROUNDS NAME='COMMAND' [NAME='COMMAND' ...]
#   COMMAND may use {url} (a fresh database, sslmode=disable) and {corpus} ($WORK/corpus/cN);
#   it may start with `env VAR=value`. The first NAME is the reference for the paired ratios.
# Every round: for each command (order rotated per round) drop+create its database, CHECKPOINT,
# then one timed run (shared timerun.py: fork/exec/wait, monotonic clock). Round 0 is a warm-up.
# Prints a Markdown table: median, min, paired median ratio to the reference (min–max).
# Used to measure what a proposed change gains (see bench/README.md, "Prototypes").
set -euo pipefail
N=$1; ROUNDS=$2; shift 2
WORK=${WORK:-/tmp/peers}; CORPUS=$WORK/corpus/c$N
SHARED=${SHARED:-$(cd "$(dirname "$0")/../../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
PSQL_BIN=${PSQL_BIN:-$(ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
names=(); cmds=()
for a in "$@"; do names+=("${a%%=*}"); cmds+=("${a#*=}"); done
tsv=$(mktemp)
for ((r = 0; r <= ROUNDS; r++)); do
    for ((k = 0; k < ${#names[@]}; k++)); do
        i=$(((k + r) % ${#names[@]}))
        db=ab_cold_$i
        "$PSQL_BIN" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" -c CHECKPOINT 2>/dev/null
        c=${cmds[$i]//\{url\}/postgres://$PGUSER@$PGHOST:$PGPORT/$db?sslmode=disable}
        c=${c//\{corpus\}/$CORPUS}
        res=$(python3 "$SHARED/timerun.py" /dev/null "$c")
        [ "${res##* }" = 0 ] || { echo "failed (rc ${res##* }): $c" >&2; exit 1; }
        [ "$r" -gt 0 ] && printf '%s\t%s\t%s\n' "$r" "${names[$i]}" "${res%% *}" >> "$tsv"
    done
done
for ((i = 0; i < ${#names[@]}; i++)); do "$PSQL_BIN" -X -q -d postgres -c "DROP DATABASE IF EXISTS ab_cold_$i WITH (FORCE)"; done
python3 - "$tsv" "${names[@]}" <<'PY'
import sys, statistics, collections
t = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, n, w = line.split("\t"); t[n][r] = float(w)
names = sys.argv[2:]; ref = names[0]
print(f"| command | median | min | × {ref} (paired median, min–max) |\n|---|---|---|---|")
for n in names:
    rs = [t[n][r] / t[ref][r] for r in t[n] if r in t[ref]]
    v = list(t[n].values())
    print(f"| {n} | {statistics.median(v):.3f} s | {min(v):.3f} s | {statistics.median(rs):.3f}× ({min(rs):.2f}–{max(rs):.2f}) |")
PY
rm -f "$tsv"
