"""HumanEval: the function signature + docstring is the problem; the test program is
prompt + completion + test + check(entry_point). reference_solution is the full canonical program."""

import gzip
import json
from pathlib import Path


def convert(split: str, raw_dir: Path):
    with gzip.open(raw_dir / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            yield {
                "id": row["task_id"],
                "problem": row["prompt"],
                "prompt": row["prompt"],
                "entry_point": row["entry_point"],
                "test": row["test"],
                "canonical_solution": row["canonical_solution"],
                "reference_solution": row["prompt"] + row["canonical_solution"],
            }
