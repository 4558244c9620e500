"""Reads every store of a run directory with two independent Parquet readers
(pyarrow datasets and DuckDB), Hive partitions as columns, and prints a JSON
summary: rows, columns and a few aggregates per store."""
import glob
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

STORES = ["tasks", "heldout", "episodes", "examples", "evals", "metrics"]


def main(run):
    out = {}
    con = duckdb.connect()
    for store in STORES:
        root = os.path.join(run, store)
        files = sorted(glob.glob(os.path.join(root, "**", "part-*.parquet"), recursive=True))
        if not files:
            continue
        dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=root)
        table = dataset.to_table()
        pattern = os.path.join(root, "**", "*.parquet")
        rows_duck = con.execute(
            f"select count(*) from read_parquet('{pattern}', hive_partitioning = true)"
        ).fetchone()[0]
        cols_duck = [
            d[0]
            for d in con.execute(
                f"describe select * from read_parquet('{pattern}', hive_partitioning = true)"
            ).fetchall()
        ]
        meta = pq.read_metadata(files[0]).metadata or {}
        out[store] = {
            "rows_pyarrow": table.num_rows,
            "rows_duckdb": rows_duck,
            "columns_pyarrow": table.column_names,
            "columns_duckdb": cols_duck,
            "schema_version": meta.get(b"selfplay.schema_version", b"").decode(),
        }
    episodes = os.path.join(run, "episodes", "**", "*.parquet")
    if glob.glob(episodes, recursive=True):
        out["episode_outcomes"] = dict(
            con.execute(
                f"select family || '/' || outcome, count(*) from read_parquet('{episodes}', hive_partitioning = true) group by 1"
            ).fetchall()
        )
        out["episode_iterations"] = sorted(
            int(r[0])
            for r in con.execute(
                f"select distinct iteration from read_parquet('{episodes}', hive_partitioning = true)"
            ).fetchall()
        )
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
