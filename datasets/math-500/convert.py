"""MATH-500: problem, answer, solution, subject and level as published; unique_id becomes id."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        yield {
            "id": row["unique_id"],
            "problem": row["problem"],
            "expected_answer": row["answer"],
            "reference_solution": row["solution"],
            "subject": row["subject"],
            "level": row["level"],
        }
