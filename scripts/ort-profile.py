#!/usr/bin/env python3
"""Summarises ONNX Runtime profiles (SELFPLAY_ORT_PROFILE=PREFIX writes one
PREFIX_<time>.json per session): per file, node time by operator and the
execution provider that ran it, so a node left on the CPU in a CUDA session
shows at once; and Conv's time per call (quantiles, first call per input
shape, slowest batch sizes), as cuDNN's algorithm choice shows there.

    python3 scripts/ort-profile.py PREFIX_*.json
"""
import collections
import json
import sys


def median(xs):
    return sorted(xs)[len(xs) // 2]


def summary(path, top=12):
    with open(path) as f:
        events = json.load(f)
    time, count = collections.Counter(), collections.Counter()
    runs = 0
    durations, first, by_batch = [], {}, {}
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            runs += 1
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        key = (args.get("op_name", "?"), args.get("provider", "?"))
        if key[0] == "Conv":
            durations.append(e.get("dur", 0))
            shapes = args.get("input_type_shape") or [{}]
            batch = next(iter(shapes[0].values()), [0])[0]
            by_batch.setdefault(batch, []).append(e.get("dur", 0))
            shape = (e.get("name"), json.dumps(args.get("input_type_shape")))
            first.setdefault(shape, e.get("dur", 0))
        time[key] += e.get("dur", 0)
        count[key] += 1
    total = sum(time.values())
    if not total:
        return
    print(f"{path}: {runs} runs, {total / 1e3:.1f} ms in nodes")
    if durations:
        d = sorted(durations)
        q = lambda f: d[min(int(f * len(d)), len(d) - 1)]
        print(f"  Conv calls: {len(d)}, p50 {q(0.5)} us, p90 {q(0.9)} us, p99 {q(0.99)} us, max {d[-1]} us; "
              f"{len(first)} input shapes, their first calls {sum(first.values()) / 1e3:.1f} ms")
        slow = sorted(by_batch, key=lambda b: -median(by_batch[b]))[:8]
        print("  slowest batch sizes by median Conv time: " + ", ".join(
            f"{b}: {median(by_batch[b])} us x{len(by_batch[b])}" for b in slow))
    for (op, provider), us in time.most_common(top):
        per = us / max(count[(op, provider)], 1)
        print(f"  {op:<24} {provider:<28} {us / 1e3:9.1f} ms  {100 * us / total:5.1f}%  {per:8.1f} us/node")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: ort-profile.py PROFILE.json...")
    for p in sys.argv[1:]:
        summary(p)
