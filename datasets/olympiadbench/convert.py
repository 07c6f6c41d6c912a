"""OlympiadBench (675 English text-only math problems): final_answer[0] without its $...$ is the answer.

The unit (8 items), answer type (Numerical, Expression, Tuple, Interval), subfield and whether the
question asks for several answers are kept as fields.
"""

from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl, strip_math_delimiters


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        answers = row["final_answer"]
        if len(answers) != 1:
            raise ValueError(f"olympiadbench item {row['id']} has {len(answers)} final answers, expected 1")
        problem = row["question"] if not row.get("context") else f"{row['context']}\n\n{row['question']}"
        yield {
            "id": str(row["id"]),
            "problem": problem,
            "expected_answer": strip_math_delimiters(answers[0]),
            "reference_solution": "\n\n".join(row["solution"]),
            "subject": row["subfield"],
            "answer_type": row["answer_type"],
            "unit": row["unit"] or "",
            "is_multiple_answer": bool(row["is_multiple_answer"]),
        }
