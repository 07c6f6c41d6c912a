"""Minerva OCWCourses (272): the answer is the last \\boxed{} of the published solution; idx becomes id."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import last_boxed, read_jsonl


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        answer = last_boxed(row["solution"])
        if answer is None:
            raise ValueError(f"minerva_math item {row['idx']} has no \\boxed{{}} answer in its solution")
        yield {
            "id": str(row["idx"]),
            "problem": row["problem"],
            "expected_answer": answer.strip(),
            "reference_solution": row["solution"],
            "subject": row["type"],
        }
