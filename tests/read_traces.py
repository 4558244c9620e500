"""Reads a run's traces/ store as a fine-tuning user would: Hugging Face
`datasets.load_dataset("parquet", ...)` (the whole folder, and one split per
data_files entry) and pyarrow (Hive partitions). Prints JSON: row counts per
reader and split, the text columns' types, the conversational shape of
`messages`, and every row's (family, iteration, task_id, source, split,
completion) for the caller to re-verify with the family verifiers."""
import json
import os
import sys
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets
import pyarrow.dataset as ds


def load(cache, **kwargs):
    return datasets.load_dataset("parquet", cache_dir=cache, keep_in_memory=True, **kwargs)


def main(root):
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        whole = load(cache, data_dir=root, split="train")
        files = {s: os.path.join(root, f"split={s}", "*.parquet") for s in ("train", "test")}
        splits = load(cache, data_files=files)
    out["hf_rows"] = len(whole)
    out["hf_split_rows"] = {s: len(splits[s]) for s in splits}
    out["hf_features"] = {k: str(v) for k, v in splits["train"].features.items()}
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    out["pyarrow_rows"] = table.num_rows
    out["pyarrow_types"] = {f.name: str(f.type) for f in table.schema}
    rows = table.to_pylist()
    out["messages_ok"] = all(
        [m["role"] for m in r["messages"]] == ["user", "assistant"]
        and r["messages"][0]["content"] == r["prompt"]
        and r["messages"][1]["content"] == r["completion"]
        for r in rows
    )
    hf_row = splits["train"][0]
    out["hf_messages_ok"] = hf_row["messages"][1]["content"] == hf_row["completion"]
    out["rows"] = [
        {k: r[k] for k in ("family", "iteration", "task_id", "source", "split", "completion", "prompt", "notes")}
        for r in rows
    ]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
