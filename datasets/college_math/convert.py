"""College Math (2,818): answers without their $...$; the line number is the id (question numbers repeat
across textbooks), the textbook and exercise number are kept, the topic becomes ``subject``."""

from pathlib import Path

from nemo_eval.datasets.convert_utils import read_jsonl, strip_math_delimiters


def convert(split: str, raw_dir: Path):
    for index, row in enumerate(read_jsonl(raw_dir / f"{split}.jsonl")):
        yield {
            "id": str(index),
            "problem": row["question"],
            "expected_answer": strip_math_delimiters(row["answer"]),
            "subject": row["data_topic"].removeprefix("college_math."),
            "source": row["data_source"].removeprefix("college_math."),
            "question_number": row["question_number"],
        }
