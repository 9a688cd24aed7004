#!/usr/bin/env bash
# docs/progress/capture.sh — the README's picture of shipgate's progress output on a terminal:
# a real `shipgate up` in a real terminal (tmux, 200×8), its second migration waiting for a lock
# that another session holds, captured mid-run with its colours, drawn as HTML and
# photographed by headless Chromium into docs/progress/terminal.png.
#
# Needs: a built shipgate (SHIPGATE_BIN, default target-dir debug build), tmux, psql, chromium,
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust). Takes about 20 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${SHIPGATE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/shipgate}
DB=shipgate_docs_progress
WORK=$(mktemp -d)
SESSION=shipgate-docs-$$
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$WORK"' EXIT
psql() { command psql -X -q -h 127.0.0.1 -U postgres "$@"; }

psql -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -d "$DB" -c "CREATE TABLE users (id bigint PRIMARY KEY, email text)"
mkdir -p "$WORK/migrations"
printf 'CREATE TABLE plans (id bigint PRIMARY KEY, name text NOT NULL);\n' >"$WORK/migrations/20240301120000_create_plans.up.sql"
printf 'ALTER TABLE users ADD COLUMN plan_id bigint REFERENCES plans (id);\n' >"$WORK/migrations/20240302090000_add_plan_to_users.up.sql"
printf 'CREATE INDEX users_plan_idx ON users (plan_id);\n' >"$WORK/migrations/20240302090500_index_users_plan.up.sql"

# Another session holds users for 14 s, idle in its transaction, as a forgotten one would.
(echo "BEGIN; LOCK TABLE users IN ACCESS SHARE MODE;"; sleep 14; echo "COMMIT;") |
    PGAPPNAME=billing-worker psql -d "$DB" &
sleep 1
tmux new-session -d -s "$SESSION" -x 200 -y 8 \
    "cd $WORK && echo '\$ shipgate up' && DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB $BIN up --lock-timeout 30s; sleep 30"
sleep 9
tmux capture-pane -t "$SESSION" -p -e >"$WORK/screen.ans"
wait

python3 - "$WORK/screen.ans" "$WORK/screen.html" <<'PY'
import html, re, sys
colours = {30: "#4d4d4d", 31: "#ff6e67", 32: "#5ff967", 33: "#fefb67", 34: "#6871ff",
           35: "#ff76ff", 36: "#5ffdff", 37: "#e0e0e0", 90: "#8c8c8c", 91: "#ff6e67",
           92: "#5ff967", 93: "#fefb67", 94: "#6871ff", 95: "#ff76ff", 96: "#5ffdff", 97: "#ffffff"}
out, fg, bold, dim, italic = [], None, False, False, False
text = open(sys.argv[1], encoding="utf-8").read().rstrip("\n")
for part in re.split(r"(\x1b\[[0-9;]*m)", text):
    m = re.fullmatch(r"\x1b\[([0-9;]*)m", part)
    if m:
        for code in [int(c) for c in (m.group(1) or "0").split(";") if c]:
            if code == 0: fg, bold, dim, italic = None, False, False, False
            elif code == 1: bold = True
            elif code == 2: dim = True
            elif code == 3: italic = True
            elif code in (22,): bold = dim = False
            elif code == 39: fg = None
            elif code in colours: fg = colours[code]
        continue
    if not part:
        continue
    style = []
    if fg: style.append(f"color:{fg}")
    if bold: style.append("font-weight:bold")
    if dim: style.append("opacity:.6")
    if italic: style.append("font-style:italic")
    span = html.escape(part)
    out.append(f'<span style="{";".join(style)}">{span}</span>' if style else span)
page = ("<!doctype html><meta charset=utf-8><style>body{margin:0;background:#1e1e1e}"
        "pre{margin:0;padding:14px 18px;color:#e0e0e0;font:13px/1.35 'DejaVu Sans Mono',monospace}"
        "</style><pre>" + "".join(out) + "</pre>")
open(sys.argv[2], "w", encoding="utf-8").write(page)
PY
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1640,120 \
    --screenshot="$HERE/terminal.png" "file://$WORK/screen.html" >/dev/null 2>&1
psql -d postgres -c "DROP DATABASE IF EXISTS $DB"
echo "wrote $HERE/terminal.png"
