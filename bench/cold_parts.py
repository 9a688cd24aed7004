#!/usr/bin/env python3
"""Where the cold-apply time goes, server side: apply the corpus as shipgate does, one message
per migration, with and without parts of that message, interleaved over fresh databases.

Usage: cold_parts.py CORPUS_DIR [ROUNDS]   (needs psycopg2: WORK/alembic-venv/bin/python)

Each variant gets a fresh database (CHECKPOINT first, as peers.sh does), one connection, and is
timed from the first migration message to the last reply (no process start, no connect, no
history reads). Per migration, one simple-query message:
  shipgate      BEGIN; <DO lock check via pg_locks>; <file>; INSERT shipgate_migrations …; COMMIT
  no-check      the same without the DO block
  pid-check     a DO block that compares pg_backend_pid() with the lock owner's pid only
  narrow-insert shipgate's message with psql-tracked's INSERT (version only) into a 2-column table
  tracked-1msg  BEGIN; <file>; INSERT bench_migrations (version); COMMIT   (psql-tracked's work
                in one message)
  tracked-psql  the same statements sent one by one, as psql -f all_tracked.sql does
Prints per-round times and the median of each variant's ratio to tracked-psql within the round.
"""
import json
import os
import re
import statistics
import sys
import time

import psycopg2

CORPUS = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DSN = "host=127.0.0.1 port=5432 user=postgres dbname={}"
K1, K2 = 1558071570, 569988380

MIG_DDL = """CREATE TABLE IF NOT EXISTS "shipgate_migrations" (
    version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    state text NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'running', 'failed')),
    statements_done integer NOT NULL DEFAULT 0, error text,
    applied_at timestamptz NOT NULL DEFAULT now(), execution_ms bigint NOT NULL DEFAULT 0,
    applied_by text, deploy_id text, app_version text)"""
TRK_DDL = "CREATE TABLE IF NOT EXISTS bench_migrations (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"


def lock_check(pid):
    return (f"DO $shipgate$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
            f"AND pid = pg_catalog.pg_backend_pid() AND classid = {K1} AND objid = {K2} AND objsubid = 2 AND granted) THEN "
            f"RAISE EXCEPTION USING ERRCODE = 'SGLCK', MESSAGE = format('the migration lock is not held by this database session "
            f"(taken by backend pid %s, this transaction runs on pid %s)', {pid}, pg_catalog.pg_backend_pid()); "
            f"END IF; END $shipgate$;\n")


def pid_check(pid):
    return (f"DO $shipgate$ BEGIN IF pg_catalog.pg_backend_pid() <> {pid} THEN "
            f"RAISE EXCEPTION USING ERRCODE = 'SGLCK', MESSAGE = 'lock not held'; END IF; END $shipgate$;\n")


def ins_wide(v, name, checksum):
    return (f"INSERT INTO \"shipgate_migrations\" (version, name, checksum, state, statements_done, applied_at, "
            f"execution_ms, applied_by, deploy_id, app_version) VALUES ({v}, E'{name}', E'{checksum}', 'applied', 0, "
            f"clock_timestamp(), CAST(EXTRACT(EPOCH FROM clock_timestamp() - now()) * 1000 AS bigint), "
            f"E'bench:{os.getpid()}', NULL, NULL)")


def migrations():
    files = sorted(f for f in os.listdir(os.path.join(CORPUS, "sqlx")) if f.endswith(".sql"))
    out = []
    for f in files:
        v, name = f[:-4].split("_", 1)
        sql = open(os.path.join(CORPUS, "sqlx", f)).read()
        out.append((int(v), name, "0" * 64, sql))
    return out


def psql_statements():
    """all_tracked.sql as psql sends it: one message per statement (split on ';' at line end)."""
    text = open(os.path.join(CORPUS, "all_tracked.sql")).read()
    stmts, cur = [], []
    for line in text.splitlines():
        if not cur and (line.startswith("--") or not line.strip()):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            stmts.append("\n".join(cur))
            cur = []
    return stmts


def fresh(db):
    c = psycopg2.connect(DSN.format("postgres"))
    c.autocommit = True
    cur = c.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    cur.execute(f"CREATE DATABASE {db}")
    cur.execute("CHECKPOINT")
    c.close()


def run(variant, migs, stmts):
    db = "bench_parts_" + variant.replace("-", "_")
    fresh(db)
    c = psycopg2.connect(DSN.format(db))
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    cur.execute(f"SELECT pg_try_advisory_lock({K1}, {K2})")
    cur.execute(MIG_DDL if variant not in ("tracked-1msg", "tracked-psql", "narrow-insert") else TRK_DDL)
    msgs = []
    if variant == "tracked-psql":
        msgs = stmts
    else:
        for v, name, ck, sql in migs:
            check = {"shipgate": lock_check(pid), "pid-check": pid_check(pid),
                     "narrow-insert": lock_check(pid)}.get(variant, "")
            ins = (f"INSERT INTO bench_migrations (version) VALUES ({v})"
                   if variant in ("tracked-1msg", "narrow-insert") else ins_wide(v, name, ck))
            msgs.append(f"BEGIN;\n{check}{sql}\n;\n{ins};\nCOMMIT;")
    t = time.perf_counter()
    for m in msgs:
        cur.execute(m)
    el = time.perf_counter() - t
    c.close()
    c = psycopg2.connect(DSN.format("postgres"))
    c.autocommit = True
    c.cursor().execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    c.close()
    return el


def main():
    migs, stmts = migrations(), psql_statements()
    variants = ["shipgate", "no-check", "pid-check", "narrow-insert", "tracked-1msg", "tracked-psql"]
    res = {v: [] for v in variants}
    for r in range(ROUNDS + 1):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        times = {v: run(v, migs, stmts) for v in order}
        if r == 0:
            continue  # warm-up
        for v in variants:
            res[v].append((times[v], times[v] / times["tracked-psql"]))
        print(f"round {r}: " + "  ".join(f"{v}={times[v]:.3f}s" for v in variants), flush=True)
    n = len(migs)
    print(f"\nN={n}, {ROUNDS} rounds; time from first migration message to last reply (no connect)\n")
    print("| variant | median time | per migration | × tracked-psql (paired median, min–max) |")
    print("|---|---|---|---|")
    for v in variants:
        ts = [t for t, _ in res[v]]
        rs = [x for _, x in res[v]]
        print(f"| {v} | {statistics.median(ts):.3f} s | {statistics.median(ts) / n * 1000:.3f} ms | "
              f"{statistics.median(rs):.3f}× ({min(rs):.3f}–{max(rs):.3f}) |")


if __name__ == "__main__":
    main()
