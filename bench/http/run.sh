#!/usr/bin/env bash
# bench/http/run.sh — shipgate's HTTP service against an axum hello-world, with wrk, on loopback.
#
# Not a test: a measurement (issue 3, "Benchmark"). 2 to 7 minutes with the defaults (longer when
# the machine is busy: see QUIET_WAIT), plus builds.
# Writes bench/http/results.md (small); raw wrk output and logs stay in $WORK.
#
# What it does, in order (every command is echoed to stderr as it runs):
#   1. build      cargo build --release --locked                   (root; honours CARGO_TARGET_DIR)
#                 cargo build --release --locked in bench/http/baseline with
#                 CARGO_TARGET_DIR=$BASELINE_TARGET_DIR (the baseline is its own workspace whose
#                 Cargo.lock is shipgate's, pruned: same axum/hyper/hyper-util/tokio/tower)
#   2. database   psql: DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB
#                 DATABASE_URL=... shipgate release         (applies the repo's migrations/)
#   3. servers    PORT=$SG_PORT DATABASE_URL=... SHIPGATE_STATUS_TOKEN=... shipgate serve
#                 (cwd = repo root, JSON logs to $WORK/serve.log)
#                 PORT=$BL_PORT shipgate-http-baseline  (GET / -> "Hello, World!")
#                 then waits for /health/ready = 200 and a 2 s settle
#   4. wrk        warm-up: wrk -t$THREADS -c$CONNS -d$WARMUP once per target, not counted;
#                 then $ROUNDS interleaved rounds; each round runs the three targets once, in an
#                 order rotated every round (no target always runs first or last), each after
#                 waiting (bounded) for a quiet second on the machine:
#                   wrk -t$THREADS -c$CONNS -d$DURATION --latency http://127.0.0.1:$BL_PORT/
#                   wrk -t$THREADS -c$CONNS -d$DURATION --latency http://127.0.0.1:$SG_PORT/health
#                   wrk -t$THREADS -c$CONNS -d$DURATION --latency \
#                       -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$SG_PORT/migrations/status
#                 Around each wrk: the server's CPU time (utime+stime from /proc/PID/stat), so
#                 the table can show CPU microseconds per request.
#   5. database   the refresher's statements, counted two ways over the rounds and over the
#                 status rounds alone:
#                 - exact: before serve starts, ALTER DATABASE $DB SET log_statement = 'all';
#                   then the "statement:" lines of the refresher's backend (its pid, from
#                   pg_stat_activity) in the server log $PG_LOG between byte offsets taken around
#                   the rounds. Needs a superuser and a readable log (default: Debian's
#                   /var/log/postgresql/postgresql-<major>-main.log); skipped otherwise.
#                 - upper bound: pg_stat_database.xact_commit + xact_rollback for $DB (read from
#                   the postgres database, so the reads do not count). It also counts autovacuum's
#                   transactions in $DB, and backends flush it at most once a second.
#   6. memory     VmRSS and VmHWM of serve (and of the baseline) from /proc/PID/status.
#   7. stop       SIGTERM to both servers (serve must exit 0), DROP DATABASE, write results.md.
#
# Why 5 rounds of 6 s: the machine is shared (other builds come and go), so shorter rounds that
# run the three targets back to back pair each target with a baseline measured seconds apart;
# the table shows both the ratio of medians and the median of these paired ratios, and the
# other load during every run. Server CPU µs per request is the figure least moved by noise.
#
# Why -t2 -c64: the machine this was written on has 2 cores and wrk shares them with the server,
# so absolute req/s are bound by loopback and by wrk itself; the ratios to the baseline, measured
# in the same run and interleaved, are the numbers that mean something. 2 wrk threads keep both
# cores busy; 64 keep-alive connections are enough to saturate either server without making the
# p99 mostly queueing in wrk. Override with THREADS / CONNS / DURATION / ROUNDS.
#
# Environment (all optional):
#   ROUNDS=5 DURATION=6s WARMUP=3s THREADS=2 CONNS=64 SG_PORT=18080 BL_PORT=18081
#   QUIET_WAIT=20 QUIET_PCT=10: before each wrk run, wait up to QUIET_WAIT s for a second in
#   which the whole machine is at most QUIET_PCT % busy (the servers idle); 0 disables
#   PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres (PGPASSWORD if needed) DB=shipgate_bench_http
#   CARGO_TARGET_DIR (shipgate's)  BASELINE_TARGET_DIR (default /tmp/target-bench-http)
#   PG_LOG (server log file; default: Debian's, when readable)
#   WORK=/tmp/shipgate-bench-http  OUT=<this dir>/results.md  SKIP_BUILD=1 (use built binaries)
#   SHIPGATE_BIN / BASELINE_BIN (binaries to run; default: the build outputs)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-6s} WARMUP=${WARMUP:-3s}
QUIET_WAIT=${QUIET_WAIT:-20} QUIET_PCT=${QUIET_PCT:-10}
THREADS=${THREADS:-2} CONNS=${CONNS:-64}
SG_PORT=${SG_PORT:-18080} BL_PORT=${BL_PORT:-18081}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB=${DB:-shipgate_bench_http}
TOKEN=${TOKEN:-bench-$(date +%s)-$$}
WORK=${WORK:-/tmp/shipgate-bench-http}
OUT=${OUT:-$HERE/results.md}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BASELINE_TARGET_DIR=${BASELINE_TARGET_DIR:-/tmp/target-bench-http}
SHIPGATE_BIN=${SHIPGATE_BIN:-$TARGET/release/shipgate}
BASELINE_BIN=${BASELINE_BIN:-$BASELINE_TARGET_DIR/release/shipgate-http-baseline}
PW=${PGPASSWORD:+:$PGPASSWORD}
export DATABASE_URL="postgres://$PGUSER$PW@$PGHOST:$PGPORT/$DB"

say() { printf '+ %s\n' "$*" >&2; }
run() { say "$*"; "$@"; }
psql_admin() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }  # all cores, not idle/iowait
HZ=$(getconf CLK_TCK) NCPU=$(nproc)
quiet_wait() { # up to QUIET_WAIT s for a second in which the machine is <= QUIET_PCT % busy
    local end=$((SECONDS + QUIET_WAIT)) b0 b1
    while ((SECONDS < end)); do
        b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
        (((b1 - b0) * 100 <= QUIET_PCT * HZ * NCPU)) && return 0
    done
    return 0
}
secs_of() { awk '{s = 0; for (i = 1; i <= NF; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s}'; }
xacts() { psql_admin -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }
now() { date +%s.%N; }
log_size() { if [[ -n $PG_LOG ]]; then stat -c %s "$PG_LOG"; else echo 0; fi; }
log_count() { # from-offset to-offset: statements logged by the refresher's backend in between
    if [[ -n $PG_LOG && -n $REFRESHER ]]; then
        tail -c +"$(($1 + 1))" "$PG_LOG" | head -c "$(($2 - $1))" | grep -c "\[$REFRESHER\].*statement: " || true
    else echo -1; fi
}

for tool in wrk psql curl python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required (apt-get install wrk postgresql-client curl python3)" >&2; exit 2; }
done
for port in "$SG_PORT" "$BL_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "run.sh: port $port is already in use" >&2; exit 2; fi
done
rm -rf "$WORK" && mkdir -p "$WORK"

# 1. build
if [[ -z ${SKIP_BUILD:-} ]]; then
    (cd "$ROOT" && run cargo build --release --locked)
    (cd "$HERE/baseline" && CARGO_TARGET_DIR=$BASELINE_TARGET_DIR run cargo build --release --locked)
fi

SG_PID='' BL_PID=''
cleanup() {
    [[ -n $SG_PID ]] && kill "$SG_PID" 2>/dev/null || true
    [[ -n $BL_PID ]] && kill "$BL_PID" 2>/dev/null || true
}
trap cleanup EXIT

# 2. database
run psql_admin -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
(cd "$ROOT" && say "DATABASE_URL=$DATABASE_URL $SHIPGATE_BIN release" && "$SHIPGATE_BIN" release >"$WORK/release.log" 2>&1)
PG_LOG=${PG_LOG-/var/log/postgresql/postgresql-$(psql_admin -c 'SHOW server_version_num' | cut -c1-2)-main.log}
if [[ -n $PG_LOG && -r $PG_LOG ]] && psql_admin -c "ALTER DATABASE $DB SET log_statement = 'all'" 2>/dev/null; then
    say "psql -d postgres -c \"ALTER DATABASE $DB SET log_statement = 'all'\"  (log: $PG_LOG)"
else
    say "not counting logged statements (PG_LOG='$PG_LOG' unreadable or not a superuser): xact_commit only"
    PG_LOG=''
fi

# 3. servers
say "cd $ROOT && PORT=$SG_PORT DATABASE_URL=$DATABASE_URL SHIPGATE_STATUS_TOKEN=<token> $SHIPGATE_BIN serve"
(cd "$ROOT" && PORT=$SG_PORT SHIPGATE_STATUS_TOKEN=$TOKEN exec "$SHIPGATE_BIN" serve >"$WORK/serve.log" 2>&1) &
SG_PID=$!
say "PORT=$BL_PORT $BASELINE_BIN"
PORT=$BL_PORT "$BASELINE_BIN" >"$WORK/baseline.log" 2>&1 &
BL_PID=$!
for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SG_PORT/health/ready") == 200 ]] &&
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BL_PORT/") == 200 ]] && break
    sleep 0.1
done
for p in "$SG_PID" "$BL_PID"; do
    kill -0 "$p" 2>/dev/null || { echo "run.sh: a server exited; see $WORK/serve.log, $WORK/baseline.log" >&2; exit 1; }
done
code=$(curl -s -o "$WORK/status.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SG_PORT/migrations/status")
[[ $code == 200 ]] || { echo "run.sh: /migrations/status answered $code" >&2; exit 1; }
curl -s -o "$WORK/health.json" "http://127.0.0.1:$SG_PORT/health"
sleep 2

declare -A URL=(
    [baseline]="http://127.0.0.1:$BL_PORT/"
    [health]="http://127.0.0.1:$SG_PORT/health"
    [status]="http://127.0.0.1:$SG_PORT/migrations/status"
)
declare -A PID=([baseline]=$BL_PID [health]=$SG_PID [status]=$SG_PID)
names=(baseline health status)
wrk_for() { # name duration [--latency]
    local auth=()
    [[ $1 == status ]] && auth=(-H "Authorization: Bearer $TOKEN")
    wrk -t"$THREADS" -c"$CONNS" -d"$2" "${@:3}" "${auth[@]}" "${URL[$1]}"
}

# 4. warm-up, then interleaved rounds
for n in "${names[@]}"; do say "wrk -t$THREADS -c$CONNS -d$WARMUP ${URL[$n]}  (warm-up)"; wrk_for "$n" "$WARMUP" >/dev/null; done
REFRESHER=$(psql_admin -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' ORDER BY backend_start LIMIT 1")
x0=$(xacts) t0=$(now) l0=$(log_size)
status_xacts=0 status_secs=0 status_logged=0
printf 'round\ttarget\tserver_ticks\twrk_secs\tbusy_ticks\twall_secs\n' >"$WORK/cpu.tsv"
for r in $(seq "$ROUNDS"); do
    for i in 0 1 2; do
        n=${names[$(( (i + r - 1) % 3 ))]}
        say "round $r: wrk -t$THREADS -c$CONNS -d$DURATION --latency ${URL[$n]}"
        quiet_wait
        c0=$(cpu_ticks "${PID[$n]}") sx0=$(xacts) st0=$(now) sl0=$(log_size) b0=$(busy_ticks) w0=$(now)
        # `times` in the subshell: wrk's own user+sys CPU (its children's times line).
        wrk_cpu=$( (wrk_for "$n" "$DURATION" --latency >"$WORK/wrk-$n-$r.txt"; times) | tail -1 | secs_of)
        c1=$(cpu_ticks "${PID[$n]}") b1=$(busy_ticks) w1=$(now)
        if [[ $n == status ]]; then
            sx1=$(xacts) st1=$(now) sl1=$(log_size)
            status_xacts=$((status_xacts + sx1 - sx0))
            status_logged=$((status_logged + $(log_count "$sl0" "$sl1")))
            status_secs=$(python3 -c "print($status_secs + $st1 - $st0)")
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$n" "$((c1 - c0))" "$wrk_cpu" "$((b1 - b0))" \
            "$(python3 -c "print($w1 - $w0)")" >>"$WORK/cpu.tsv"
    done
done
x1=$(xacts) t1=$(now) l1=$(log_size)
logged=$(log_count "$l0" "$l1")
[[ $logged -lt 0 ]] && status_logged=-1
conns=$(psql_admin -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB'")

# 6. memory, right after the last round
grep -E 'VmRSS|VmHWM' "/proc/$SG_PID/status" >"$WORK/serve-mem.txt"
grep -E 'VmRSS|VmHWM' "/proc/$BL_PID/status" >"$WORK/baseline-mem.txt"

# 7. stop
say "kill -TERM $SG_PID (serve)"
kill -TERM "$SG_PID"
ts=$(now)
set +e; wait "$SG_PID"; sg_exit=$?; set -e
te=$(now)
SG_PID=''
kill -TERM "$BL_PID" 2>/dev/null || true; wait "$BL_PID" 2>/dev/null || true; BL_PID=''
run psql_admin -c "DROP DATABASE IF EXISTS $DB"

export WORK OUT ROUNDS DURATION WARMUP THREADS CONNS x0 x1 t0 t1 status_xacts status_secs conns sg_exit ts te
export logged status_logged PG_LOG
export SG_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
export SG_DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
export ENV_CPU="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
export ENV_KERNEL=$(uname -r) ENV_RUSTC=$(rustc --version 2>/dev/null || echo unknown)
export ENV_WRK=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) ENV_PG=$(psql_admin -c 'SHOW server_version')
export SG_PORT BL_PORT DB QUIET_WAIT QUIET_PCT
python3 - <<'EOF'
import os, re, statistics as st

E = os.environ
work, rounds = E["WORK"], int(E["ROUNDS"])
names = ["baseline", "health", "status"]
label = {"baseline": "baseline `GET /` (axum hello-world)", "health": "shipgate `GET /health`",
         "status": "shipgate `GET /migrations/status` (bearer)"}
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
hz = os.sysconf("SC_CLK_TCK")
ncpu = os.cpu_count()
cpu = {}
for line in open(f"{work}/cpu.tsv").read().splitlines()[1:]:
    r, n, t, w, b, wall = line.split("\t")
    # other = what neither the server nor wrk used, as a share of the machine: the noise.
    other = max(0.0, int(b) / hz - int(t) / hz - float(w)) / (float(wall) * ncpu)
    cpu[(int(r), n)] = dict(cpu=int(t), wrk=float(w), other=other)

def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    v, u = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errs = re.search(r"Socket errors: (.*)", text)
    return dict(rps=rps, total=total, p99=float(v) * unit[u],
                bad=int(non2xx.group(1)) if non2xx else 0, errs=errs.group(1) if errs else "")

res = {n: [dict(parse(f"{work}/wrk-{n}-{r}.txt"), **cpu[(r, n)]) for r in range(1, rounds + 1)] for n in names}
# Paired: each target against the baseline of the same round (they ran back to back).
paired = {n: st.median(res[n][i]["rps"] / res["baseline"][i]["rps"] for i in range(rounds)) for n in names}
wrk_us = {n: st.median(x["wrk"] * 1e6 / x["total"] for x in res[n]) for n in names}
other = max(x["other"] for n in names for x in res[n])
med = {n: st.median(x["rps"] for x in res[n]) for n in names}
p99 = {n: st.median(x["p99"] for x in res[n]) for n in names}
p99max = {n: max(x["p99"] for x in res[n]) for n in names}
cpu_us = {n: st.median(x["cpu"] / hz * 1e6 / x["total"] for x in res[n]) for n in names}
bad = {n: sum(x["bad"] for x in res[n]) for n in names}
errs = {n: "; ".join(x["errs"] for x in res[n] if x["errs"]) for n in names}
ratio = {n: med[n] / med["baseline"] for n in names}

secs = float(E["t1"]) - float(E["t0"])
db_rate = (int(E["x1"]) - int(E["x0"])) / secs
st_secs = float(E["status_secs"])
st_rate = int(E["status_xacts"]) / st_secs if st_secs else float("nan")
logged, st_logged = int(E["logged"]), int(E["status_logged"])
exact = logged >= 0
q_rate = logged / secs if exact else db_rate
q_st_rate = st_logged / st_secs if exact else st_rate
mem = {}
for who in ("serve", "baseline"):
    for line in open(f"{work}/{who}-mem.txt"):
        k, v = line.split(":")
        mem[(who, k.strip())] = int(v.split()[0]) / 1024
stop_s = float(E["te"]) - float(E["ts"])

def ok(b): return "**met**" if b else "**MISSED**"
targets = [
    ("`/health` req/s ≥ 0.8× baseline", f"{ratio['health']:.3f}× (paired {paired['health']:.3f}×)", min(ratio["health"], paired["health"]) >= 0.8),
    ("`/migrations/status` req/s ≥ 0.5× baseline", f"{ratio['status']:.3f}× (paired {paired['status']:.3f}×)", min(ratio["status"], paired["status"]) >= 0.5),
    ("`/migrations/status` p99 ≤ 10 ms", f"{p99['status']:.2f} ms (median of rounds; worst {p99max['status']:.2f} ms)", p99["status"] <= 10),
    ("database ≤ 2 status queries/s", f"{q_st_rate:.2f}/s during status rounds, {q_rate:.2f}/s over the run"
     + (" (logged statements)" if exact else " (xact_commit, an upper bound)"), max(q_st_rate, q_rate) <= 2),
    ("`serve` RSS ≤ 20 MB after the run", f"{mem[('serve', 'VmRSS')]:.1f} MiB (peak {mem[('serve', 'VmHWM')]:.1f} MiB)", mem[("serve", "VmRSS")] <= 20),
]

L = []
L.append("# shipgate HTTP benchmark\n")
L.append(f"Written by `bench/http/run.sh` (shipgate {E['SG_REV']}"
         + (f", with uncommitted changes in src/Cargo files" if E["SG_DIRTY"] != "0" else "") + "). "
         f"{E['ENV_CPU']}; Linux {E['ENV_KERNEL']}; {E['ENV_RUSTC']}; {E['ENV_WRK']}; PostgreSQL {E['ENV_PG']}. "
         f"wrk and both servers share the machine, so absolute numbers are loopback- and wrk-bound; "
         f"the ratios, from the same run with interleaved rounds, are the comparison.\n")
L.append(f"{rounds} rounds × {E['DURATION']} per target (`wrk -t{E['THREADS']} -c{E['CONNS']} --latency`, "
         f"keep-alive), order rotated each round, after a {E['WARMUP']} warm-up per target; each run first waited "
         f"up to {E['QUIET_WAIT']} s for a second with the machine ≤ {E['QUIET_PCT']} % busy.\n")
L.append("| target | req/s (median) | vs baseline (medians) | vs baseline (paired, median) | p99 (median) | p99 (worst round) | server CPU µs/req | wrk CPU µs/req | req/s per round (other load) |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for n in names:
    L.append(f"| {label[n]} | {med[n]:,.0f} | {ratio[n]:.2f}× | {paired[n]:.2f}× | {p99[n]:.2f} ms | {p99max[n]:.2f} ms | {cpu_us[n]:.1f} | {wrk_us[n]:.1f} | "
             + ", ".join(f"{x['rps']:,.0f} ({x['other']:.0%})" for x in res[n]) + " |")
L.append("")
L.append(f"Paired = each round's target req/s over the baseline's in the same round. CPU µs/req = the "
         f"process's utime+stime over the requests wrk completed. Other load on the machine during a wrk "
         f"run (busy time in /proc/stat minus server and wrk): at most {other:.0%} of the {ncpu} cores"
         + (" — noisy: compare CPU µs/req, not only req/s." if other > 0.05 else "."))
L.append(f"Non-2xx responses: " + ", ".join(f"{n} {bad[n]}" for n in names)
         + ("; socket errors: " + "; ".join(f"{n}: {errs[n]}" for n in names if errs[n]) if any(errs.values()) else "; no socket errors") + ".")
if exact:
    L.append(f"Database `{E['DB']}`: the refresher's backend logged {logged} statements in the {secs:.1f} s of rounds "
             f"({q_rate:.2f}/s), {st_logged} in the {st_secs:.1f} s of status rounds ({q_st_rate:.2f}/s) "
             f"(`log_statement = 'all'` on that database, lines counted in {E['PG_LOG']}).")
L.append(f"pg_stat_database for `{E['DB']}`: {int(E['x1']) - int(E['x0'])} transactions in the rounds ({db_rate:.2f}/s), "
         f"{int(E['status_xacts'])} in the status rounds ({st_rate:.2f}/s); this includes autovacuum's visits, so it is "
         f"an upper bound. {E['conns']} connection(s) open to the database after the run.")
L.append(f"Memory after the run: serve VmRSS {mem[('serve','VmRSS')]:.1f} MiB, VmHWM {mem[('serve','VmHWM')]:.1f} MiB; "
         f"baseline VmRSS {mem[('baseline','VmRSS')]:.1f} MiB, VmHWM {mem[('baseline','VmHWM')]:.1f} MiB.")
L.append(f"SIGTERM to serve after the run: exit {E['sg_exit']} in {stop_s:.2f} s.\n")
L.append("## Targets (issue 3)\n")
L.append("| target | measured | |")
L.append("|---|---|---|")
for t, m, b in targets:
    L.append(f"| {t} | {m} | {ok(b)} |")
L.append("")
L.append("## Commands\n")
L.append("```sh")
L.append("bench/http/run.sh        # ROUNDS DURATION THREADS CONNS PGHOST PGPORT PGUSER ... see its header")
L.append("# what it ran:")
L.append(f"psql -d postgres -c 'DROP DATABASE IF EXISTS {E['DB']}' -c 'CREATE DATABASE {E['DB']}'")
L.append(f"DATABASE_URL=postgres://…/{E['DB']} shipgate release")
L.append(f"PORT={E['SG_PORT']} DATABASE_URL=postgres://…/{E['DB']} SHIPGATE_STATUS_TOKEN=… shipgate serve")
L.append(f"PORT={E['BL_PORT']} shipgate-http-baseline          # bench/http/baseline")
L.append(f"wrk -t{E['THREADS']} -c{E['CONNS']} -d{E['DURATION']} --latency http://127.0.0.1:{E['BL_PORT']}/")
L.append(f"wrk -t{E['THREADS']} -c{E['CONNS']} -d{E['DURATION']} --latency http://127.0.0.1:{E['SG_PORT']}/health")
L.append(f"wrk -t{E['THREADS']} -c{E['CONNS']} -d{E['DURATION']} --latency -H 'Authorization: Bearer …' http://127.0.0.1:{E['SG_PORT']}/migrations/status")
L.append(f"psql -d postgres -c \"ALTER DATABASE {E['DB']} SET log_statement = 'all'\"   # then: grep -c '[<refresher pid>].*statement: ' <server log>")
L.append(f"psql -d postgres -c \"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{E['DB']}'\"")
L.append("grep -E 'VmRSS|VmHWM' /proc/<serve pid>/status")
L.append("```")
open(E["OUT"], "w").write("\n".join(L) + "\n")
print("\n".join(L))
EOF
say "wrote $OUT (raw output in $WORK)"
