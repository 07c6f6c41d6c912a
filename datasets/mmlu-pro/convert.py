"""MMLU-Pro: options in the published order (up to ten, letters A-J), the answer letter, category as subject.

Reading the parquet file needs pyarrow (the ``parquet`` extra); without it, one line says what to install.
"""

from pathlib import Path

from nemo_eval.datasets.convert_utils import read_parquet

LETTERS = "ABCDEFGHIJ"


def convert(split: str, raw_dir: Path):
    for row in read_parquet(raw_dir / f"{split}-00000-of-00001.parquet"):
        choices = [str(option).strip() for option in row["options"]]
        letters = LETTERS[:len(choices)]
        if row["answer"] not in letters or letters[row["answer_index"]] != row["answer"]:
            raise ValueError(f"mmlu-pro question {row['question_id']}: answer {row['answer']!r} does not fit its options")
        yield {
            "id": str(row["question_id"]),
            "problem": row["question"].strip(),
            "choices": choices,
            "options_text": "\n".join(f"{letter}) {text}" for letter, text in zip(letters, choices)),
            "letters": letters,
            "expected_answer": row["answer"],
            "subject": row["category"],
            "source": row["src"],
        }
