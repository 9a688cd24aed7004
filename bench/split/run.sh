#!/usr/bin/env bash
# Large-file cost of applying one migration file: SQLite (one transaction), MariaDB (a file
# of data changes only: one transaction; a file with DDL: statement by statement) and
# PostgreSQL (one transaction, the file split by libpg_query), at 1, 10 and 60 MB, plus a 100 MB
# file (beyond the 64 MiB file limit: refused). Usage:
#   SHIPGATE_BIN=/path/to/shipgate [ENGINES="sqlite mariadb postgres"] bench/split/run.sh [sizes in MB...]
# Needs MariaDB on 127.0.0.1:3306 (root, no password), PostgreSQL on 127.0.0.1:5432 (postgres,
# trust) and python3. Prints one line per run:
#   engine kind MB seconds exit-code
set -u
BIN=${SHIPGATE_BIN:?set SHIPGATE_BIN to the shipgate binary to measure}
SIZES=${*:-1 10 60 100}
ENGINES=${ENGINES:-sqlite mariadb postgres}
has() { case " $ENGINES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
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
  if has sqlite; then
    rm -f "$WORK/s.db"
    run sqlite transactional "$mb" "sqlite://$WORK/s.db" "$WORK/dml$mb"
  fi
  if has postgres; then
    psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS sg_split_bench" -c "CREATE DATABASE sg_split_bench"
    run postgres transactional "$mb" "postgres://postgres@127.0.0.1:5432/sg_split_bench" "$WORK/dml$mb"
  fi
  if has mariadb; then
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS sg_split_bench; CREATE DATABASE sg_split_bench"
    run mariadb data-only "$mb" "mysql://root@127.0.0.1:3306/sg_split_bench" "$WORK/dml$mb"
  fi
  if has mariadb && [ "$mb" -le 10 ]; then
    gen "$WORK/ddl$mb" "$mb" 1
    mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS sg_split_bench; CREATE DATABASE sg_split_bench"
    run mariadb with-ddl "$mb" "mysql://root@127.0.0.1:3306/sg_split_bench" "$WORK/ddl$mb"
  fi
  rm -rf "$WORK/dml$mb" "$WORK/ddl$mb"
done
has mariadb && mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS sg_split_bench"
has postgres && psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS sg_split_bench"
