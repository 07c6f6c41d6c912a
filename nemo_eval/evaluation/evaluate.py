"""``nemo-eval evaluate`` (also ``python -m nemo_eval.evaluation.evaluate``).

Grade generations in place: extract each predicted answer and check it against the expected one (math), or run the benchmark's tests in the sandbox (code); adds predicted_answer and is_correct to every line.
"""

from __future__ import annotations

from typing import Sequence

from nemo_eval.errors import run_main
from nemo_eval.pending import pending_main

PROG = "nemo-eval evaluate"
DESCRIPTION = """Grade generations in place: extract each predicted answer and check it against the expected one (math), or run the benchmark's tests in the sandbox (code); adds predicted_answer and is_correct to every line."""
EXAMPLE = """nemo-eval evaluate ++prediction_jsonl_files='[out.jsonl]' ++eval_type=math"""


def main(argv: Sequence[str] | None = None) -> int:
    return pending_main(PROG, DESCRIPTION, EXAMPLE, argv)


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
