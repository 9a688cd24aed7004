#!/usr/bin/env bash
# bench/http/instructions.sh — user-space instructions per request, shipgate against the axum
# hello-world baseline, counted by valgrind's callgrind.
#
# Not a test: a measurement that, unlike req/s, does not move with the machine's other load (the
# same binary and input give the same count within about ±500 instructions). Use it to see what
# a change to the request path costs; bench/http/run.sh remains the run of record for req/s.
#
# For each of: baseline `GET /`, shipgate `GET /health`, shipgate `GET /migrations/status`
# (with a bearer token), it starts the server under `valgrind --tool=callgrind`, warms up with
# `wrk -t1 -c8 -d5s`, zeroes the counters (callgrind_control -z), runs `wrk -t1 -c8 -d10s`, dumps
# (callgrind_control -d) and divides the dump's instructions by wrk's completed requests. The
# dump also holds the status refresher's one statement a second, a few hundred instructions per
# request at most. Prints a table; the dumps stay in $WORK for callgrind_annotate.
#
# Needs the release binaries (bench/http/run.sh builds both; or set SHIPGATE_BIN/BASELINE_BIN),
# valgrind, wrk, curl and psql. Environment as run.sh: PGHOST PGPORT PGUSER DB WORK.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB=${DB:-shipgate_bench_http_ir}
WORK=${WORK:-/tmp/shipgate-bench-http-ir}
PORT=${PORT:-18090}
TOKEN=bench-ir-$$
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SHIPGATE_BIN=${SHIPGATE_BIN:-$TARGET/release/shipgate}
BASELINE_BIN=${BASELINE_BIN:-${BASELINE_TARGET_DIR:-/tmp/target-bench-http}/release/shipgate-http-baseline}
PW=${PGPASSWORD:+:$PGPASSWORD}
export DATABASE_URL="postgres://$PGUSER$PW@$PGHOST:$PGPORT/$DB"

for tool in valgrind callgrind_control wrk curl psql; do
    command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is required" >&2; exit 2; }
done
for bin in "$SHIPGATE_BIN" "$BASELINE_BIN"; do
    [[ -x $bin ]] || { echo "instructions.sh: $bin not built (run bench/http/run.sh once)" >&2; exit 2; }
done
rm -rf "$WORK" && mkdir -p "$WORK"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
(cd "$ROOT" && "$SHIPGATE_BIN" release >"$WORK/release.log" 2>&1)

# count NAME PATH CMD...: prints "NAME requests instructions instructions/request"
count() {
    local name=$1 path=$2 pid reqs ir dump
    shift 2
    (cd "$ROOT" && PORT=$PORT SHIPGATE_STATUS_TOKEN=$TOKEN exec valgrind --tool=callgrind \
        --callgrind-out-file="$WORK/$name.%p" "$@" >"$WORK/$name.log" 2>&1) &
    pid=$!
    for _ in $(seq 120); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT$path" && break
        sleep 0.5
    done
    local auth=(-H "Authorization: Bearer $TOKEN")
    wrk -t1 -c8 -d5s "${auth[@]}" "http://127.0.0.1:$PORT$path" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    wrk -t1 -c8 -d10s "${auth[@]}" "http://127.0.0.1:$PORT$path" >"$WORK/$name.wrk"
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    reqs=$(grep -oP '^\s+\K\d+(?= requests in)' "$WORK/$name.wrk")
    dump=$(ls "$WORK/$name".*.1)
    ir=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
    echo "$name $reqs $ir $((ir / reqs))"
}

{
    count baseline / "$BASELINE_BIN"
    count health /health "$SHIPGATE_BIN" serve
    count status /migrations/status "$SHIPGATE_BIN" serve
} >"$WORK/counts.txt"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"

base=$(awk '$1 == "baseline" {print $4}' "$WORK/counts.txt")
echo "| target | requests | instructions/request | baseline ÷ target |"
echo "|---|---:|---:|---:|"
awk -v base="$base" '{printf "| %s | %d | %d | %.2f× |\n", $1, $2, $4, base / $4}' "$WORK/counts.txt"
echo "(shipgate $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ', with uncommitted changes'); dumps in $WORK)"
