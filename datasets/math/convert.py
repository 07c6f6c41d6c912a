"""MATH (5,000 test problems): answer from the 'answer' field, else the last \\boxed{} of the solution."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import last_boxed, read_jsonl


def convert(split: str, raw_dir: Path):
    for index, row in enumerate(read_jsonl(raw_dir / f"{split}.jsonl")):
        solution = row.get("solution", "")
        answer = row.get("answer")
        if answer is None:
            answer = last_boxed(solution) or ""
        item = {
            "id": str(row.get("unique_id") or row.get("idx", index)),
            "problem": row.get("problem") or row["question"],
            "expected_answer": str(answer),
            "reference_solution": solution,
        }
        for key in ("subject", "type", "level"):
            if key in row:
                item[key] = row[key]
        yield item
