#!/usr/bin/env bash
# Lists what `shipgate check` (CI mode: no database) and squawk report on the PostgreSQL fixture
# corpus, tests/corpus/postgres (each file as shipgate runs it: in a transaction unless it says
# `-- shipgate:no-transaction`). bench/lint/fixtures.md classifies each finding.
#   SHIPGATE=<binary> bash bench/lint/fixtures.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus="$root/tests/corpus/postgres"
squawk_dir=${SQUAWK_DIR:-/tmp/squawk-bench}
squawk="$squawk_dir/node_modules/.bin/squawk"
[ -x "$squawk" ] || npm install --silent --no-fund --no-audit --prefix "$squawk_dir" squawk-cli@2.66.0 >/dev/null
shipgate=${SHIPGATE:?set SHIPGATE to the shipgate binary}
echo "## shipgate $("$shipgate" --version | cut -d' ' -f2)"
(cd "$root" && env -i PATH="$PATH" DATABASE_URL=postgres://localhost/x "$shipgate" --migrations "$corpus" check --format json 2>/dev/null || true) |
    python3 -c 'import json,sys
for f in json.load(sys.stdin)["findings"]:
    print(f["file"].split("/")[-1], f["line"], f["rule"], f["severity"])'
echo "## $("$squawk" --version)"
for f in "$corpus"/*.up.sql; do
    args=(--reporter json)
    grep -q 'shipgate:no-transaction' "$f" || args+=(--assume-in-transaction)
    "$squawk" "${args[@]}" "$f" 2>/dev/null | python3 -c 'import json,sys
name=sys.argv[1]
for v in json.load(sys.stdin) or []:
    print(name, v.get("line"), v.get("rule_name"), v.get("level"))' "$(basename "$f")" || true
done
