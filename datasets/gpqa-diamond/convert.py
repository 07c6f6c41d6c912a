"""GPQA Diamond: the four answers in a seeded random order, the correct one's letter as the answer.

The order follows OpenAI's simple-evals: one ``random.Random(SHUFFLE_SEED)`` drawn in file order,
``sample(range(4), 4)`` per question over [correct, incorrect 1, incorrect 2, incorrect 3]; so the
prompts equal simple-evals' for the same file. The seed and the permutation are kept in every item.
"""

import csv
import random
from pathlib import Path

SHUFFLE_SEED = 0
LETTERS = "ABCD"


def convert(split: str, raw_dir: Path):
    rng = random.Random(SHUFFLE_SEED)
    with open(raw_dir / "gpqa_diamond.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            answers = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"],
                       row["Incorrect Answer 3"]]
            permutation = rng.sample(range(4), 4)
            choices = [answers[i].strip() for i in permutation]
            yield {
                "id": row["Record ID"],
                "problem": row["Question"].strip(),
                "choices": choices,
                "options_text": "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, choices)),
                "letters": LETTERS,
                "expected_answer": LETTERS[permutation.index(0)],
                "subject": row["High-level domain"],
                "subdomain": row["Subdomain"],
                "shuffle_seed": SHUFFLE_SEED,
                "permutation": permutation,
            }
