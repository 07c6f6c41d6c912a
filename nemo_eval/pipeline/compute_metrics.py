"""``nemo-eval compute-metrics`` (also ``python -m nemo_eval.pipeline.compute_metrics``).

Compute metrics for one benchmark from its prediction files: accuracy for one greedy file; majority@k, pass@k and pass@1[avg-of-k] for k sampled files; no-answer rate and confidence intervals.
"""

from __future__ import annotations

from typing import Sequence

from nemo_eval.errors import run_main
from nemo_eval.pending import pending_main

PROG = "nemo-eval compute-metrics"
DESCRIPTION = """Compute metrics for one benchmark from its prediction files: accuracy for one greedy file; majority@k, pass@k and pass@1[avg-of-k] for k sampled files; no-answer rate and confidence intervals."""
EXAMPLE = """nemo-eval compute-metrics --prediction_jsonl_files results/gsm8k/output-rs*.jsonl --benchmark gsm8k"""


def main(argv: Sequence[str] | None = None) -> int:
    return pending_main(PROG, DESCRIPTION, EXAMPLE, argv)


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
