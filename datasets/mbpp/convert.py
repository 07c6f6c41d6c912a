"""MBPP: text -> problem; the test program is the solution followed by `test`
(test imports + setup code + the asserts). entry_point is the function the asserts call."""

import json
import re
from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl

TASK_RANGES = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}


def _entry_point(code: str, asserts: list[str]) -> str:
    defined = re.findall(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", code, flags=re.M)
    called = "\n".join(asserts)
    for name in defined:
        if re.search(rf"\b{name}\s*\(", called):
            return name
    return defined[-1] if defined else ""


def _item(task_id: int, text: str, code: str, asserts: list[str], setup: list[str]) -> dict:
    code = code.replace("\r\n", "\n").replace("\r", "\n")
    return {
        "id": str(task_id),
        "problem": text,
        "entry_point": _entry_point(code, asserts),
        "test_list": asserts,
        "test_asserts": "\n".join(a.strip() for a in asserts),
        "test": "\n".join([line for line in setup if line.strip()] + [a.strip() for a in asserts]) + "\n",
        "reference_solution": code,
    }


def convert(split: str, raw_dir: Path):
    if split == "sanitized-test":
        low, high = TASK_RANGES["test"]
        for row in json.loads((raw_dir / "sanitized-mbpp.json").read_text(encoding="utf-8")):
            if low <= row["task_id"] <= high:
                yield _item(row["task_id"], row["prompt"], row["code"], row["test_list"], row["test_imports"])
        return
    low, high = TASK_RANGES[split]
    for row in read_jsonl(raw_dir / "mbpp.jsonl"):
        if low <= row["task_id"] <= high:
            yield _item(row["task_id"], row["text"], row["code"], row["test_list"], [row["test_setup_code"]])
