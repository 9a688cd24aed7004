#!/usr/bin/env python3
"""Paired ratios from one peers.sh results folder, against the issue's targets.

Usage: ratios.py OUT_DIR N   (reads samples.tsv, conc.tsv, rt.tsv, tools.tsv, env.txt)

Within each recorded round r (round 0 is peers.sh's warm-up and is not recorded):
  cold ratio   = tool's cold apply wall time in r / psql-tracked's cold apply in r
  no-op ratio  = median of the tool's no-op re-runs in r / median of psql-select1 in r
The table gives the median over rounds, with min–max. Absolute times are medians over rounds
and drift with the machine; the ratios are what to compare.
"""
import csv
import os
import statistics
import sys


def tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def ms(x):
    return "-" if x is None else (f"{x:.2f} s" if x >= 1 else f"{x * 1000:.1f} ms")


def rng(v, fmt):
    if not v:
        return "-"
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))})"


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    samples = [s for s in tsv(os.path.join(out, "samples.tsv")) if s["rc"] == "0"]
    failed = [s for s in tsv(os.path.join(out, "samples.tsv")) if s["rc"] != "0"]
    tools = [t["tool"] for t in tsv(os.path.join(out, "tools.tsv"))]
    conc = tsv(os.path.join(out, "conc.tsv"))
    rt = tsv(os.path.join(out, "rt.tsv"))

    runs = {}  # (tool, kind, round) -> [wall]
    for s in samples:
        runs.setdefault((s["tool"], s["kind"], s["round"]), []).append(float(s["wall_s"]))
    rounds = sorted({s["round"] for s in samples}, key=int)

    def per_round(tool, kind):
        return {r: statistics.median(runs[(tool, kind, r)]) for r in rounds if (tool, kind, r) in runs}

    tracked = per_round("psql-tracked", "cold")
    floor = per_round("psql-select1", "noop")

    def paired(tool, kind, base):
        mine = per_round(tool, kind)
        return [mine[r] / base[r] for r in mine if r in base]

    x = lambda v: f"{v:.2f}×"
    print(f"## N = {n}: paired ratios (median over {len(rounds)} rounds, min–max)\n")
    env = os.path.join(out, "env.txt")
    if os.path.exists(env):
        for line in open(env).read().splitlines():
            print(f"- {line}")
        print()
    print("| tool | cold apply | × psql-tracked | no-op re-run | × psql-select1 | "
          "5 at once: non-zero exits per trial (fresh; half) | end state ok | "
          "socket writes per migration | server statements per migration |")
    print("|---|---|---|---|---|---|---|---|---|")
    rtd = {}
    for r in rt:
        rtd.setdefault(r["tool"], {})[r["kind"]] = r

    def per_mig(tool, field):
        c, z = rtd.get(tool, {}).get("cold"), rtd.get(tool, {}).get("noop")
        try:
            return f"{(float(c[field]) - (float(z[field]) if z else 0.0)) / n:.2f}"
        except (TypeError, ValueError, KeyError):
            return "-"

    for tool in tools + ["psql-select1"]:
        cold = list(per_round(tool, "cold").values())
        noop = list(per_round(tool, "noop").values())
        cs = [c for c in conc if c["tool"] == tool]
        fails = "; ".join(", ".join(c["failed"].split("/")[0] for c in cs if c["mode"] == m)
                          for m in ("fresh", "half") if any(c["mode"] == m for c in cs)) or "-"
        ok = f"{sum(c['state'] == 'ok' for c in cs)}/{len(cs)}" if cs else "-"
        print(f"| {tool} | {rng(cold, ms)} | {rng(paired(tool, 'cold', tracked), x) if cold else '-'} | "
              f"{rng(noop, ms)} | {rng(paired(tool, 'noop', floor), x) if noop else '-'} | "
              f"{fails} | {ok} | {per_mig(tool, 'socket_writes')} | {per_mig(tool, 'server_statements')} |")
    if failed:
        print(f"\nfailed timed runs (excluded): " +
              ", ".join(f"{s['tool']} {s['kind']} round {s['round']} rc={s['rc']}" for s in failed))

    cold_r = paired("ours", "cold", tracked)
    noop_r = paired("ours", "noop", floor)
    ours_conc = [c for c in conc if c["tool"] == "ours"]
    print("\n### Targets (shipgate = `ours`)\n")
    if cold_r:
        m = statistics.median(cold_r)
        print(f"- cold apply ≤ 1.0× psql-tracked: {m:.2f}× — {'met' if m <= 1.0 else 'MISSED'}")
    if noop_r:
        m = statistics.median(noop_r)
        print(f"- no-op re-run ≤ 1.2× psql-select1: {m:.2f}× — {'met' if m <= 1.2 else 'MISSED'}")
    ours_failed = [s for s in failed if s["tool"] == "ours"]
    if ours_failed:
        print(f"- {len(ours_failed)} timed runs of shipgate exited non-zero "
              f"(rc {sorted({s['rc'] for s in ours_failed})}): see log-ours.txt — MISSED")
    if ours_conc:
        nz = sum(int(c["failed"].split("/")[0]) for c in ours_conc)
        bad = sum(c["state"] != "ok" for c in ours_conc)
        print(f"- 5 simultaneous runs: {nz} non-zero exits over {len(ours_conc)} trials, "
              f"{bad} wrong end states — {'met' if nz == 0 and bad == 0 else 'MISSED'}")


if __name__ == "__main__":
    main()
