#!/usr/bin/env bash
# bench/run.sh — shipgate against psql baselines and peer migration tools, local PostgreSQL.
#
# Not a test: a measurement. Run it from anywhere: `bench/run.sh` (about 7 min on 2 cores with dbmate and Alembic
# installed, plus the build).
# Results land in bench/results/ (small files only); bench/README.md explains every number.
#
# What it runs, in order (every command is echoed to stderr as it starts):
#   1. build        cargo build --release --locked   (in the project root; honours CARGO_TARGET_DIR,
#                   binary = ${CARGO_TARGET_DIR:-<root>/target}/release/shipgate)
#   2. corpus       python3 $SHARED/gen_corpus.py --n N --out $WORK/corpus/cN        for N in $NS
#   3. peers        OURS='<bin> up -q --database-url {url} --migrations {dir}' \
#                   OURS_TABLE=shipgate_migrations OURS_VERSION='shipgate <git rev>' \
#                   TOOLS=$TOOLS OUT=<root>/bench/results/peers-nN \
#                   $SHARED/peers.sh N                                               for N in $NS
#                   (interleaved rounds: fresh db -> timed cold apply -> timed no-op re-runs;
#                   then 5 simultaneous runs, fresh and half-applied; then strace/log_statement
#                   round-trip counts; writes summary.md, samples.tsv, conc.tsv, rt.tsv)
#   4. ratios       python3 <root>/bench/ratios.py <root>/bench/results/peers-nN N
#                   > <root>/bench/results/peers-nN/ratios.md
#                   (paired ratios within each round: cold vs psql-tracked, no-op vs psql-select1)
#   5. tls          a database with the N=$TLS_N corpus applied by shipgate, then ONE hyperfine run:
#                   hyperfine -N --warmup 3 --runs $TLS_RUNS --export-json tls.json \
#                     -n psql-disable    "$PSQL -X -Atc 'SELECT 1' postgres://...?sslmode=disable" \
#                     -n psql-require    "$PSQL -X -Atc 'SELECT 1' postgres://...?sslmode=require" \
#                     -n shipgate-disable "<bin> up -q --database-url ...?sslmode=disable --migrations DIR" \
#                     -n shipgate-require "<bin> up -q --database-url ...?sslmode=require --migrations DIR"
#                   -> <root>/bench/results/tls.md (medians, require minus disable per tool)
#
# Environment (all optional):
#   NS="100 1000"     corpus sizes            STEPS=build,corpus,peers,tls   which steps to run
#   TOOLS             default: psql-txn,psql-tracked,ours + every installed peer among
#                     sqlx sqlx-lib dbmate refinery alembic alembic-txn (install them with
#                     $SHARED/install_peers.sh; dbmate and Alembic are cheap, the cargo ones are not)
#   SHARED=<root>/../shared/bench   the shared benchmark kit      WORK=/tmp/peers (peers, corpora)
#   ROUNDS NOOP_PER_ROUND CONC CONC_TRIALS PHASES PGHOST PGPORT PGUSER   passed to peers.sh
#   TLS_N=1000 TLS_RUNS=40
#   SHIPGATE_BIN=path  benchmark this binary instead of building (the build step is skipped);
#                      SHIPGATE_REV labels it in the results (default: the project's git rev)
# Steps 3 and 5 run with $WORK as the working directory, so a config/shipgate.toml in the
# directory you start from does not change what is measured (shipgate reads ./config/shipgate.toml).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
export WORK=${WORK:-/tmp/peers}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
NS=${NS:-"100 1000"}
STEPS=${STEPS:-build,corpus,peers,tls}
TLS_N=${TLS_N:-1000}
TLS_RUNS=${TLS_RUNS:-40}
RESULTS=$ROOT/bench/results
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SHIPGATE_BIN:-$TARGET/release/shipgate}
[ -n "${SHIPGATE_BIN:-}" ] && STEPS=${STEPS//build/}
PSQL_BIN=${PSQL_BIN:-$(pg_config --bindir 2>/dev/null)/psql}
[ -x "$PSQL_BIN" ] || PSQL_BIN=$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -1)
export PSQL_BIN

step() { [[ ",$STEPS," == *",$1,"* ]]; }
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
run() { say "+ $*"; "$@"; }
mkdir -p "$RESULTS"

for tool in strace hyperfine; do
    command -v "$tool" >/dev/null || say "warning: $tool missing (apt-get install -y $tool)"
done

# 1. build ------------------------------------------------------------------
if step build; then
    (cd "$ROOT" && run cargo build --release --locked)
fi
[ -x "$BIN" ] || { say "no binary at $BIN (set CARGO_TARGET_DIR or run the build step)"; exit 1; }
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet -- src Cargo.toml Cargo.lock 2>/dev/null || REV="$REV+dirty"
REV=${SHIPGATE_REV:-$REV}
BIN=$(realpath "$BIN")
mkdir -p "$WORK"
cd "$WORK"

# 2. corpus -----------------------------------------------------------------
corpus() { echo "$WORK/corpus/c$1"; }
if step corpus; then
    for n in $NS $TLS_N; do
        [ -f "$(corpus "$n")/manifest.json" ] && continue
        mkdir -p "$WORK/corpus"
        run python3 "$SHARED/gen_corpus.py" --n "$n" --out "$(corpus "$n")" >/dev/null
    done
fi

# 3./4. peers and paired ratios ----------------------------------------------
if [ -z "${TOOLS:-}" ]; then
    TOOLS=psql-txn,psql-tracked,ours
    [ -x "$WORK/sqlx/bin/sqlx" ] && TOOLS+=,sqlx
    [ -x "$WORK/sqlx-lib-target/release/sqlx-lib-runner" ] && TOOLS+=,sqlx-lib
    [ -x "$WORK/dbmate/node_modules/@dbmate/linux-x64/bin/dbmate" ] && TOOLS+=,dbmate
    [ -x "$WORK/refinery/bin/refinery" ] && TOOLS+=,refinery
    [ -x "$WORK/alembic-venv/bin/alembic" ] && TOOLS+=,alembic,alembic-txn
fi
if step peers; then
    for n in $NS; do
        out=$RESULTS/peers-n$n
        run env OURS="$BIN up -q --database-url {url} --migrations {dir}" \
            OURS_TABLE=shipgate_migrations OURS_VERSION="shipgate $REV" \
            TOOLS="$TOOLS" OUT="$out" CORPUS="$(corpus "$n")" \
            "$SHARED/peers.sh" "$n" > /dev/null
        run python3 "$ROOT/bench/ratios.py" "$out" "$n" > "$out/ratios.md"
        cat "$out/ratios.md"
        # keep results small: conc.tsv keeps the outcome of the per-invocation logs, and of the
        # server statement logs only shipgate's are kept (the counts are in rt.tsv)
        rm -rf "$out/conc"
        find "$out" -name 'rt-*.sqllog.gz' ! -name 'rt-ours-*' -delete
    done
fi

# 5. TLS no-op check -----------------------------------------------------------
if step tls; then
    db=shipgate_bench_tls
    base="postgres://$PGUSER@$PGHOST:$PGPORT/$db"
    dir=$(corpus "$TLS_N")/sqlx
    run "$PSQL_BIN" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    run "$BIN" up -q --database-url "$base?sslmode=disable" --migrations "$dir" > /dev/null
    ssl=$("$PSQL_BIN" -X -Atc 'SHOW ssl' "$base?sslmode=disable")
    run hyperfine -N --style basic --warmup 3 --runs "$TLS_RUNS" --export-json "$RESULTS/tls.json" \
        -n psql-disable "$PSQL_BIN -X -Atc 'SELECT 1' $base?sslmode=disable" \
        -n psql-require "$PSQL_BIN -X -Atc 'SELECT 1' $base?sslmode=require" \
        -n shipgate-disable "$BIN up -q --database-url $base?sslmode=disable --migrations $dir" \
        -n shipgate-require "$BIN up -q --database-url $base?sslmode=require --migrations $dir" \
        > "$RESULTS/tls-hyperfine.txt" 2>&1 || { cat "$RESULTS/tls-hyperfine.txt"; exit 1; }
    python3 - "$RESULTS/tls.json" "$TLS_N" "$ssl" "$REV" > "$RESULTS/tls.md" <<'PY'
import json, statistics, sys, time, os
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v["times"]) * 1000 for k, v in res.items()}
print(f"## No-op re-run over TLS vs without (N={sys.argv[2]} applied)\n")
print(f"- date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}  cores={os.cpu_count()}  "
      f"load: {open('/proc/loadavg').read().split()[:3]}  server ssl={sys.argv[3]}  shipgate {sys.argv[4]}")
print(f"- one hyperfine run, -N, 3 warm-ups, {len(next(iter(res.values()))['times'])} runs each; "
      "commands in bench/run.sh step 5\n")
print("| command | median | mean ± sd | min |")
print("|---|---|---|---|")
for k, v in res.items():
    print(f"| {k} | {med[k]:.1f} ms | {v['mean']*1000:.1f} ± {v['stddev']*1000:.1f} ms | {v['min']*1000:.1f} ms |")
print("\n| tool | TLS cost (median require − median disable) | target |")
print("|---|---|---|")
for t in ("psql", "shipgate"):
    d = med[f"{t}-require"] - med[f"{t}-disable"]
    tgt = "≤ 5 ms: " + ("met" if d <= 5 else "MISSED") if t == "shipgate" else "reference"
    print(f"| {t} | {d:+.1f} ms | {tgt} |")
PY
    rm -f "$RESULTS/tls.json"
    "$PSQL_BIN" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    cat "$RESULTS/tls.md"
fi
say "done: $RESULTS"
