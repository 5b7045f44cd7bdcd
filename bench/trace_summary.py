#!/usr/bin/env python3
# Self time per operator from a chrome-trace JSON written by LibTorch's profiler
# (bench_sft --profile FILE): an event's self time is its duration minus that of the events
# nested inside it on the same thread. Prints the top operators and their share of the total.
#   bench/trace_summary.py TRACE.json [--top 25]
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    events = [e for e in json.load(open(args.trace)) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e["tid"]].append(e)
    self_us = collections.Counter()
    calls = collections.Counter()
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # open events: [end, name, child time]
        for e in evs:
            while stack and stack[-1][0] <= e["ts"]:
                end, name, dur, child = stack.pop()
                self_us[name] += dur - child
                if stack:
                    stack[-1][3] += dur
            stack.append([e["ts"] + e["dur"], e["name"], e["dur"], 0.0])
            calls[e["name"]] += 1
        while stack:
            end, name, dur, child = stack.pop()
            self_us[name] += dur - child
            if stack:
                stack[-1][3] += dur
    total = sum(self_us.values())
    print(f"{'operator':44s} {'calls':>6s} {'self ms':>9s} {'share':>6s}")
    for name, us in self_us.most_common(args.top):
        print(f"{name[:44]:44s} {calls[name]:6d} {us / 1e3:9.1f} {100 * us / total:5.1f}%")
    print(f"{'total':44s} {sum(calls.values()):6d} {total / 1e3:9.1f}")


if __name__ == "__main__":
    main()
