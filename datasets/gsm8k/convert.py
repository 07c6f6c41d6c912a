"""GSM8K: question -> problem; the number after '####' (no thousands separators) -> expected_answer.

``answer_text`` keeps the published answer verbatim (the few-shot target of lm-eval's ``gsm8k`` prompt).
"""

import re
from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl

CALCULATOR_ANNOTATION = re.compile(r"<<[^>]*>>")


def convert(split: str, raw_dir: Path):
    for index, row in enumerate(read_jsonl(raw_dir / f"{split}.jsonl")):
        _, _, answer = row["answer"].rpartition("####")
        yield {
            "id": f"{split}-{index}",
            "problem": row["question"],
            "expected_answer": answer.strip().replace(",", ""),
            "reference_solution": CALCULATOR_ANNOTATION.sub("", row["answer"]),
            "answer_text": row["answer"],   # as published (annotations, "#### N"): lm-eval's few-shot target
        }
