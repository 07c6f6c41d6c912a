"""AMC 2023: numeric answers are stored as floats upstream (27.0); written as 27."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import format_number, read_jsonl


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        yield {
            "id": str(row["id"]),
            "problem": row["problem"],
            "expected_answer": format_number(row["answer"]),
            "url": row["url"],
        }
