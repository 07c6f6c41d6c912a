"""Gaokao 2023 English (385): answers without their $...$; the line number is the id, the source kept."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl, strip_math_delimiters


def convert(split: str, raw_dir: Path):
    for index, row in enumerate(read_jsonl(raw_dir / f"{split}.jsonl")):
        yield {
            "id": str(index),
            "problem": row["question"],
            "expected_answer": strip_math_delimiters(row["answer"]),
            "source": row["source"],
        }
