#!/usr/bin/env python3
"""Self time per operator from a Chrome trace written by a bench's --profile option
(bench/profile_trace.h: libtorch's legacy profiler, one "X" event per operator call, nested calls
inside their caller on the same thread).

Self time = an event's duration minus that of the events directly inside it, so the column sums
to the traced wall time of each thread and no time is counted twice. Prints a Markdown table,
heaviest first: operator, calls, self ms, share of the traced total, and the untraced remainder
(host work between operator calls: tokenization, loops, glue) when --wall-s is given, then the
inclusive time of the code's own scopes (RECORD_FUNCTION("rankemb::...")): the phases of a
training step, the attention kernel.

usage: scripts/profile_summary.py TRACE.json [--top 25] [--wall-s SECONDS] [--per N]
  --per N     divide times by N (e.g. the number of passes or steps in the trace)
Needs only the Python standard library.
"""
import argparse
import collections
import json
import sys


def self_times(events):
    """Per-thread interval nesting: a stack of open events; each event's time inside a child is
    taken off the parent's self time."""
    by_tid = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            by_tid[e.get("tid")].append((float(e["ts"]), float(e["dur"]), e["name"]))
    totals = collections.defaultdict(lambda: [0, 0.0])  # name -> [calls, self us]
    scopes = collections.defaultdict(lambda: [0, 0.0])  # rankemb::... scope -> [calls, inclusive us]
    traced = 0.0
    for evs in by_tid.values():
        evs.sort(key=lambda x: (x[0], -x[1]))
        stack = []  # [end, name, self]
        def close(item):
            totals[item[1]][0] += 1
            totals[item[1]][1] += item[2]
        for ts, dur, name in evs:
            if name.startswith("rankemb::"):
                scopes[name][0] += 1
                scopes[name][1] += dur
            while stack and stack[-1][0] <= ts:
                close(stack.pop())
            if stack:
                stack[-1][2] -= min(dur, stack[-1][0] - ts)
            else:
                traced += dur
            stack.append([ts + dur, name, dur])
        while stack:
            close(stack.pop())
    return totals, scopes, traced


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--wall-s", type=float, default=0.0, help="measured wall time of the traced span")
    p.add_argument("--per", type=float, default=1.0, help="divide every time by this (passes or steps)")
    a = p.parse_args()
    try:
        with open(a.trace) as f:
            events = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{a.trace}: cannot read the trace: {e}")
    if not isinstance(events, list):
        sys.exit(f"{a.trace}: not a Chrome trace (a JSON list of events)")
    totals, scopes, traced_us = self_times(events)
    if traced_us <= 0:
        sys.exit(f"{a.trace}: no operator events (was the profiler on while the work ran?)")
    rows = sorted(totals.items(), key=lambda kv: -kv[1][1])
    per = a.per
    print(f"| operator | calls | self ms | share |")
    print("|---|---:|---:|---:|")
    for name, (calls, us) in rows[: a.top]:
        print(f"| {name} | {calls / per:.0f} | {us / 1e3 / per:.1f} | {100 * us / traced_us:.1f}% |")
    rest = sum(us for _, (_, us) in rows[a.top:])
    if len(rows) > a.top:
        print(f"| (other {len(rows) - a.top} operators) | | {rest / 1e3 / per:.1f} | {100 * rest / traced_us:.1f}% |")
    print(f"| **traced total** | {sum(c for c, _ in totals.values()) / per:.0f} | {traced_us / 1e3 / per:.1f} | 100% |")
    if a.wall_s > 0:
        print(f"| (outside operators: host work) | | {(a.wall_s * 1e6 - traced_us) / 1e3 / per:.1f} | |")
    if scopes:  # the code's own named scopes (RECORD_FUNCTION("rankemb::...")), inclusive time
        print()
        print("| scope (inclusive) | calls | ms | share |")
        print("|---|---:|---:|---:|")
        for name, (calls, us) in sorted(scopes.items(), key=lambda kv: -kv[1][1]):
            print(f"| {name} | {calls / per:.0f} | {us / 1e3 / per:.1f} | {100 * us / traced_us:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
