#!/usr/bin/env bash
# Reproduces bench/lint/comparison.md: `shipgate check` and squawk (npm package squawk-cli) on
# every case in bench/lint/corpus. Needs cargo, node/npm and python3. squawk is installed into
# $SQUAWK_DIR (default /tmp/squawk-bench), never into the repository.
#
#   bash bench/lint/run.sh            # rewrites bench/lint/comparison.md
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
squawk_dir=${SQUAWK_DIR:-/tmp/squawk-bench}
squawk_version=${SQUAWK_VERSION:-2.66.0}
target=${CARGO_TARGET_DIR:-$root/target}

(cd "$root" && cargo build --quiet)
shipgate="$target/debug/shipgate"

squawk="$squawk_dir/node_modules/.bin/squawk"
if [ ! -x "$squawk" ] || [ "$("$squawk" --version)" != "squawk $squawk_version" ]; then
    npm install --silent --no-fund --no-audit --prefix "$squawk_dir" "squawk-cli@$squawk_version" >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for file in "$here"/corpus/*.sql; do
    case_name=$(basename "$file" .sql)
    # shipgate lints a migrations directory: the case becomes its only (transactional unless
    # marked) up file, linted as CI would, without a database.
    mkdir -p "$out/$case_name/migrations"
    cp "$file" "$out/$case_name/migrations/1_$case_name.up.sql"
    (cd "$out/$case_name" && env -i PATH="$PATH" "$shipgate" check --format json \
        >"$out/$case_name.shipgate.json" 2>/dev/null) || true
    # squawk gets the same knowledge of the transaction: shipgate wraps a file in a transaction
    # unless it says `-- shipgate:no-transaction`.
    args=(--reporter json)
    grep -q 'shipgate:no-transaction' "$file" || args+=(--assume-in-transaction)
    "$squawk" "${args[@]}" "$file" >"$out/$case_name.squawk.json" 2>/dev/null || true
done

python3 "$here/compare.py" "$here/corpus" "$out" "$("$squawk" --version)" >"$here/comparison.md"
echo "wrote $here/comparison.md"
