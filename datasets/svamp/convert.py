"""SVAMP: problem = Body + Question; the equation is kept as reference_equation."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import format_number, join_body_question, read_jsonl


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        yield {
            "id": row["ID"],
            "problem": join_body_question(row["Body"], row["Question"]),
            "expected_answer": format_number(row["Answer"]),
            "reference_equation": row["Equation"].strip(),
            "type": row["Type"],
        }
