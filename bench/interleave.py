#!/usr/bin/env python3
"""Time short commands interleaved (A B C A B C ...), so drift hits all of them alike.

Usage: interleave.py RUNS NAME=COMMAND [NAME=COMMAND ...]
  COMMAND runs via /bin/sh -c 'exec COMMAND' with stdout/stderr to /dev/null; it may start with
  VAR=value assignments. The first NAME is the reference for the paired ratios.
Prints, per command: median wall time, min, and the median of (this / reference) over the
rotations (each rotation runs every command once, the order rotated per rotation).
Three warm-up rotations are not recorded.
"""
import os
import statistics
import sys
import time


def once(cmd):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        words = cmd.split(" ")
        while words and "=" in words[0] and not words[0].startswith(("/", "-")):
            k, v = words.pop(0).split("=", 1)
            os.environ[k] = v
        cmd = " ".join(words)
        fd = os.open(os.devnull, os.O_RDWR)
        os.dup2(fd, 0), os.dup2(fd, 1), os.dup2(fd, 2)
        os.execv("/bin/sh", ["sh", "-c", "exec " + cmd])
    _, status, _ = os.wait4(pid, 0)
    el = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {cmd}")
    return el


def main():
    runs = int(sys.argv[1])
    cmds = [a.split("=", 1) for a in sys.argv[2:]]
    names = [n for n, _ in cmds]
    times = {n: [] for n in names}
    for r in range(runs + 3):
        k = r % len(cmds)
        rot = {n: once(c) for n, c in cmds[k:] + cmds[:k]}
        if r >= 3:
            for n in names:
                times[n].append(rot[n])
    ref = names[0]
    print(f"| command | median | min | × {ref} (paired median) | minus {ref} (paired median) |")
    print("|---|---|---|---|---|")
    for n in names:
        ratios = [a / b for a, b in zip(times[n], times[ref])]
        diffs = [a - b for a, b in zip(times[n], times[ref])]
        print(f"| {n} | {statistics.median(times[n]) * 1000:.2f} ms | {min(times[n]) * 1000:.2f} ms | "
              f"{statistics.median(ratios):.2f}× | {statistics.median(diffs) * 1000:+.2f} ms |")


if __name__ == "__main__":
    main()
