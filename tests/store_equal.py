"""Are two run directories the same run, timing aside?

    store_equal.py RUN_A RUN_B   exit 0 when equal, else 1 listing each difference
    store_equal.py RUN           print the digest of every file as JSON

Every Parquet part is compared by its rows in file order (the order training
draws from) and its footer metadata, with the columns and keys that measure
time or speed set aside: episodes.search_us; metrics seconds, items_per_s,
cpu_pct, peak_rss_mb and detail's sims_per_s, evals_per_s, net_share,
read_share, cache_hit_rate; the same keys of the metrics row in footers and
in model.json. Model weights, ONNX files, optimizer state, promotion records,
BEST and config.toml are compared byte for byte. Work files (.selfplay/) and
anything outside the stores are ignored."""
import glob
import hashlib
import json
import os
import sys

import pyarrow.parquet as pq

TIMING = {"seconds", "items_per_s", "cpu_pct", "peak_rss_mb"}
TIMING_DETAIL = {"sims_per_s", "evals_per_s", "net_share", "read_share", "cache_hit_rate"}
TIMING_COLUMNS = {"episodes": {"search_us"}}


def scrub_metrics(row):
    """A metrics row (dict) without its timing figures."""
    row = {k: v for k, v in row.items() if k not in TIMING}
    if isinstance(row.get("detail"), dict):
        row["detail"] = {k: v for k, v in row["detail"].items() if k not in TIMING_DETAIL}
    return row


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


def parquet_digest(path):
    pf = pq.ParquetFile(path)
    meta = dict(pf.metadata.metadata or {})
    store = meta.get(b"selfplay.store", b"").decode()
    table = pf.read()
    drop = [c for c in TIMING_COLUMNS.get(store, ()) if c in table.column_names]
    table = table.drop_columns(drop)
    rows = table.to_pylist()
    if store == "metrics":
        rows = [scrub_metrics(r) for r in rows]
    footer = {}
    for key, value in meta.items():
        key = key.decode()
        if key.startswith("ARROW"):
            continue
        value = value.decode()
        if key == "selfplay.metrics":
            value = scrub_metrics(json.loads(value))
        footer[key] = value
    return sha(repr((table.column_names, rows, sorted(footer.items(), key=str))).encode())


def digest(run):
    out = {}
    for path in sorted(glob.glob(os.path.join(run, "**", "*"), recursive=True)):
        rel = os.path.relpath(path, run)
        if not os.path.isfile(path) or rel.startswith(".selfplay"):
            continue
        if rel.endswith(".parquet"):
            out[rel] = parquet_digest(path)
        elif os.path.basename(rel) == "model.json":
            meta = json.load(open(path))
            if isinstance(meta.get("metrics"), dict):
                meta["metrics"] = scrub_metrics(meta["metrics"])
            out[rel] = sha(json.dumps(meta, sort_keys=True).encode())
        else:
            with open(path, "rb") as f:
                out[rel] = sha(f.read())
    return out


def main(args):
    if len(args) == 1:
        print(json.dumps(digest(args[0]), indent=1, sort_keys=True))
        return 0
    if len(args) != 2:
        print("usage: store_equal.py RUN_A [RUN_B]", file=sys.stderr)
        return 2
    a, b = digest(args[0]), digest(args[1])
    diffs = []
    for rel in sorted(set(a) | set(b)):
        if rel not in a:
            diffs.append(f"only in {args[1]}: {rel}")
        elif rel not in b:
            diffs.append(f"only in {args[0]}: {rel}")
        elif a[rel] != b[rel]:
            diffs.append(f"differs: {rel}")
    for d in diffs:
        print(d)
    if diffs:
        print(f"{len(diffs)} of {len(set(a) | set(b))} files differ", file=sys.stderr)
        return 1
    print(f"equal: {len(a)} files (timing columns aside)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
