"""What a globbing reader sees in a run directory, for the kill and
concurrency tests: per store the rows DuckDB reads through `**/*.parquet`,
the rows the committed parts' footers promise, any file in a store folder
that is not a committed part, the metrics rows' keys, and a digest of the
episodes' content."""
import glob
import hashlib
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq

STORES = ["tasks", "heldout", "episodes", "examples", "evals", "results", "traces", "metrics"]


def main(run):
    con = duckdb.connect()
    out = {"stray_files": [], "rows": {}, "footer_rows": {}}
    for store in STORES:
        root = os.path.join(run, store)
        for path in glob.glob(os.path.join(root, "**", "*"), recursive=True):
            name = os.path.basename(path)
            if os.path.isfile(path) and not (name.startswith("part-") and name.endswith(".parquet")):
                out["stray_files"].append(os.path.relpath(path, run))
        files = glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True)
        if not files:
            out["rows"][store] = 0
            out["footer_rows"][store] = 0
            continue
        pattern = os.path.join(root, "**", "*.parquet")
        out["rows"][store] = con.execute(f"select count(*) from read_parquet('{pattern}')").fetchone()[0]
        out["footer_rows"][store] = sum(
            json.loads(pq.read_metadata(f).metadata[b"selfplay.marker"])["rows"] for f in files
        )
    metrics = os.path.join(run, "metrics", "**", "*.parquet")
    if glob.glob(metrics, recursive=True):
        out["metrics"] = [
            list(r)
            for r in con.execute(
                f"select stage, iteration, shard, items from read_parquet('{metrics}') order by all"
            ).fetchall()
        ]
    episodes = os.path.join(run, "episodes", "**", "*.parquet")
    if glob.glob(episodes, recursive=True):
        rows = con.execute(
            f"select iteration, task_id, outcome, actions from read_parquet('{episodes}') order by all"
        ).fetchall()
        out["episodes_digest"] = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    # Content of the other stores, timing columns aside.
    content = {
        "tasks": "task_id, family, difficulty, seed, spec",
        "examples": "task_id, step, obs, policy_actions, policy_probs, value, weight",
        "evals": "*",
        "results": "*",
        "traces": "*",
    }
    out["content"] = {}
    for store, columns in content.items():
        pattern = os.path.join(run, store, "**", "*.parquet")
        if glob.glob(pattern, recursive=True):
            rows = con.execute(
                f"select {columns} from read_parquet('{pattern}', hive_partitioning=true) order by all"
            ).fetchall()
            out["content"][store] = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
