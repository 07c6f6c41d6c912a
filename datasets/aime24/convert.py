"""AIME 2024: answers are integers, written without leading zeros ('025' -> '25')."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import canonical_integer, read_jsonl


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        yield {
            "id": str(row["id"]),
            "problem": row["problem"],
            "expected_answer": canonical_integer(row["answer"]),
            "reference_solution": row["solution"],
            "url": row["url"],
        }
