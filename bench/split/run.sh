#!/usr/bin/env bash
# Large-file cost of applying one migration file: SQLite (one transaction) and MariaDB (a file
# of data changes only: one transaction; a file with DDL: statement by statement), at 1, 10 and
# 60 MB, plus a 100 MB file (beyond the 64 MiB file limit: refused). Usage:
#   SHIPGATE_BIN=/path/to/shipgate bench/split/run.sh [sizes in MB...]
# Needs MariaDB on 127.0.0.1:3306 (root, no password) and python3. Prints one line per run:
#   engine kind MB seconds exit-code
set -u
BIN=${SHIPGATE_BIN:?set SHIPGATE_BIN to the shipgate binary to measure}
SIZES=${*:-1 10 60 100}
LIMIT=${LIMIT:-600}
WORK=$(mktemp -d /tmp/sg-split-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

gen() { # dir MB with-ddl
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
d, mb, ddl = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
os.makedirs(d, exist_ok=True)
line = "INSERT INTO big (id, v) VALUES ({}, 'text; with a semicolon, it''s quoted');\n"
with open(os.path.join(d, "2_big.up.sql"), "w") as f:
    if ddl:
        f.write("CREATE TABLE big2 (id integer);\n")
    size, i = 0, 0
    while size < mb * 1024 * 1024:
        l = line.format(i); f.write(l); size += len(l); i += 1
with open(os.path.join(d, "1_table.up.sql"), "w") as f:
    f.write("CREATE TABLE big (id integer PRIMARY KEY, v text);\n")
PY
}

run() { # engine kind MB url dir
  local start end code
  start=$(date +%s.%N)
  timeout "$LIMIT" "$BIN" --database-url "$4" --migrations "$5" --lint-gate off up -q >/dev/null 2>"$WORK/err"
  code=$?
  end=$(date +%s.%N)
  printf '%s %s %s %.2f %s\n' "$1" "$2" "$3" "$(echo "$end - $start" | bc)" "$code"
}

for mb in $SIZES; do
  gen "$WORK/dml$mb" "$mb" 0
  rm -f "$WORK/s.db"
  run sqlite transactional "$mb" "sqlite://$WORK/s.db" "$WORK/dml$mb"
  mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS sg_split_bench; CREATE DATABASE sg_split_bench"
  run mariadb data-only "$mb" "mysql://root@127.0.0.1:3306/sg_split_bench" "$WORK/dml$mb"
  if [ "$mb" -le 10 ]; then
    gen "$WORK/ddl$mb" "$mb" 1
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS sg_split_bench; CREATE DATABASE sg_split_bench"
    run mariadb with-ddl "$mb" "mysql://root@127.0.0.1:3306/sg_split_bench" "$WORK/ddl$mb"
  fi
  rm -rf "$WORK/dml$mb" "$WORK/ddl$mb"
done
mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS sg_split_bench"
