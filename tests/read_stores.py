"""Reads every store of a run directory with four independent readers, as a
user would: DuckDB (a `**/*.parquet` glob, Hive partitions), polars
(`scan_parquet` on the store folder), pyarrow datasets (Hive partitioning)
and Hugging Face `datasets` (the folder's Parquet files). Prints a JSON
summary per store: rows, and the type each reader gives every partition
column, plus a few aggregates."""
import json
import os
import sys
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq

STORES = {
    "tasks": ["iteration", "family"],
    "heldout": ["family"],
    "episodes": ["iteration"],
    "examples": ["iteration"],
    "evals": ["iteration"],
    "results": ["iteration"],
    "metrics": ["stage", "iteration"],
    "curves": ["iteration"],
}


def hf_dataset(root):
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as cache:
        return datasets.load_dataset("parquet", data_dir=root, split="train", cache_dir=cache, keep_in_memory=True)


def visit_check(run):
    """Proven rows, and rows whose target is not their visit counts:
    a proven row's target is all on one move; another's is its visit
    counts normalised (when any)."""
    rows = ds.dataset(os.path.join(run, "examples"), format="parquet", partitioning="hive").to_table(
        columns=["policy_probs", "visit_counts", "proven"]
    ).to_pylist()
    proven = bad = 0
    for r in rows:
        p, v = r["policy_probs"], r["visit_counts"]
        if len(p) != len(v):
            bad += 1
        elif r["proven"]:
            proven += 1
            bad += not (len(p) == 1 and abs(p[0] - 1.0) < 1e-6)
        elif sum(v) > 0:
            bad += any(abs(pi - vi / sum(v)) > 1e-5 for pi, vi in zip(p, v))
    return proven, bad


def ownership_check(con, examples):
    """Ownership targets: rows whose map has the wrong length for its
    family (42 cells for Connect Four, 9 for tic-tac-toe, none for the
    rest) or a class outside 0-2; Connect Four rows with a map; and
    consecutive moves of one game whose maps are not each other's with
    the players swapped (the board is the same, the mover changes)."""
    rows = f"read_parquet('{examples}', hive_partitioning = true)"
    cells = "case family when 'connect4' then 42 when 'tictactoe' then 9 else 0 end"
    bad, connect4 = con.execute(
        f"select count(*) filter (where len(ownership) != {cells} "
        "or not coalesce(list_bool_and(list_transform(ownership, lambda x: x <= 2)), true)), "
        f"count(*) filter (where family = 'connect4' and len(ownership) = 42) from {rows}"
    ).fetchone()
    unswapped = con.execute(
        f"select count(*) from {rows} a join {rows} b "
        "on a.iteration = b.iteration and a.task_id = b.task_id and b.step = a.step + 1 "
        "where a.family = 'connect4' and a.ownership != "
        "list_transform(b.ownership, lambda x: (case x when 1 then 2 when 2 then 1 else 0 end)::utinyint)"
    ).fetchone()[0]
    return {"bad": bad, "connect4_rows": connect4, "unswapped": unswapped}


def results_check(con, run):
    """The results store against the held-out tasks and the evals rows:
    duplicate episodes, (iteration, agent, opponent, colour) groups whose
    row count is not their family's held-out task count, and matchups
    whose tally differs from the evals row `bucket = 'all'`."""
    results = f"read_parquet('{os.path.join(run, 'results', '**', '*.parquet')}', hive_partitioning = true)"
    evals = f"read_parquet('{os.path.join(run, 'evals', '**', '*.parquet')}', hive_partitioning = true)"
    heldout = f"read_parquet('{os.path.join(run, 'heldout', '**', '*.parquet')}', hive_partitioning = true)"
    duplicates = con.execute(
        f"select count(*) - count(distinct (iteration, agent, opponent, task_id, colour)) from {results}"
    ).fetchone()[0]
    miscounted = con.execute(
        f"select r.iteration, r.family, r.agent, r.opponent, r.colour, r.n, h.n from "
        f"(select iteration, family, agent, opponent, colour, count(*) n from {results} group by all) r "
        f"join (select family, count(*) n from {heldout} group by all) h using (family) where r.n != h.n"
    ).fetchall()
    mismatched = con.execute(
        "select * from ("
        "select iteration, family, agent, opponent, count(*) games, "
        "count(*) filter (where outcome in ('success', 'win')) wins, count(*) filter (where outcome = 'draw') draws "
        f"from {results} group by all) r "
        f"full join (select iteration, family, agent, opponent, games, wins, draws from {evals} where bucket = 'all') e "
        "using (iteration, family, agent, opponent) "
        "where r.games is distinct from e.games or r.wins is distinct from e.wins or r.draws is distinct from e.draws"
    ).fetchall()
    agents = [r[0] for r in con.execute(f"select distinct agent from {results} order by 1").fetchall()]
    return {
        "results_duplicates": duplicates,
        "results_miscounted": [list(r) for r in miscounted],
        "results_vs_evals": [[str(x) for x in r] for r in mismatched],
        "results_agents": agents,
    }


def main(run):
    out = {}
    con = duckdb.connect()
    for store, partitions in STORES.items():
        root = os.path.join(run, store)
        if not os.path.isdir(root):
            continue
        pattern = os.path.join(root, "**", "*.parquet")
        duck = con.execute(f"select * from read_parquet('{pattern}', hive_partitioning = true) limit 0")
        duck_types = {d[0]: str(d[1]) for d in duck.description}
        rows_duck = con.execute(f"select count(*) from read_parquet('{pattern}', hive_partitioning = true)").fetchone()[0]
        polars = pl.scan_parquet(root + "/").collect()
        arrow = ds.dataset(root, format="parquet", partitioning="hive").to_table()
        hf = hf_dataset(root)
        files = sorted(ds.dataset(root, format="parquet").files)
        meta = pq.read_metadata(files[0]).metadata or {}
        out[store] = {
            "rows_duckdb": rows_duck,
            "rows_polars": polars.height,
            "rows_pyarrow": arrow.num_rows,
            "rows_hf": len(hf),
            "partitions": {
                p: {
                    "duckdb": duck_types.get(p),
                    "polars": str(polars.schema.get(p)),
                    "pyarrow": str(arrow.schema.field(p).type) if p in arrow.schema.names else None,
                    "hf": str(hf.features[p].dtype) if p in hf.features else None,
                }
                for p in partitions
            },
            "columns_duckdb": list(duck_types),
            "schema_version": meta.get(b"selfplay.schema_version", b"").decode(),
            "field_doc": bool(arrow.schema.field(arrow.schema.names[1]).metadata or any(f.metadata for f in arrow.schema)),
        }
    episodes = os.path.join(run, "episodes", "**", "*.parquet")
    if "episodes" in out:
        out["episode_outcomes"] = dict(
            con.execute(
                f"select family || '/' || outcome, count(*) from read_parquet('{episodes}', hive_partitioning = true) group by 1"
            ).fetchall()
        )
        out["episode_iterations"] = [
            r[0]
            for r in con.execute(
                f"select distinct iteration + 0 from read_parquet('{episodes}', hive_partitioning = true) order by 1"
            ).fetchall()
        ]
    if "metrics" in out:
        metrics = os.path.join(run, "metrics", "**", "*.parquet")
        out["metrics_rows"] = [
            list(r)
            for r in con.execute(
                f"select stage, iteration, shard, detail.examples, detail.cache_hit_rate from read_parquet('{metrics}', hive_partitioning = true) order by all"
            ).fetchall()
        ]
    if "examples" in out:
        examples = os.path.join(run, "examples", "**", "*.parquet")
        subset, narrower = con.execute(
            "select bool_and(len(list_filter(policy_actions, lambda a: not list_contains(legal, a))) = 0), "
            f"count(*) filter (where len(policy_actions) < len(legal)) from read_parquet('{examples}')"
        ).fetchone()
        out["examples_policy_subset_of_legal"] = subset
        out["examples_policy_narrower_than_legal"] = narrower
        out["examples_proven"], out["examples_visits_inconsistent"] = visit_check(run)
        out["examples_ownership"] = ownership_check(con, examples)
        episodes = os.path.join(run, "episodes", "**", "*.parquet")
        out["examples_weights"] = [
            list(r)
            for r in con.execute(
                "select e.family, p.outcome, e.weight, count(*) "
                f"from read_parquet('{examples}', hive_partitioning = true) e "
                f"join read_parquet('{episodes}', hive_partitioning = true) p using (iteration, task_id) "
                "group by all order by all"
            ).fetchall()
        ]
    if "results" in out:
        out.update(results_check(con, run))
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
