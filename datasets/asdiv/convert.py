"""ASDiv: problem = body + question; the answer's trailing unit '(apples)' is dropped.

Some answers are not numbers ('Yes', '3:30 p.m.', ratios like '5:6'); they are kept as text.
"""

import re
from pathlib import Path

from nemo_eval.datasets.convert_utils import join_body_question, read_jsonl

TRAILING_UNIT = re.compile(r"\s*\([^()]*\)\s*$")


def convert(split: str, raw_dir: Path):
    for row in read_jsonl(raw_dir / f"{split}.jsonl"):
        yield {
            "id": str(row["idx"]),
            "problem": join_body_question(row["body"], row["question"]),
            "expected_answer": TRAILING_UNIT.sub("", row["answer"]).strip(),
            "answer_with_unit": row["answer"],
            "formula": row["formula"],
            "type": row["solution_type"],
        }
