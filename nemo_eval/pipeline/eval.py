"""``nemo-eval eval`` (also ``python -m nemo_eval.pipeline.eval``).

Run benchmarks end to end: prepare data, start the code sandbox and the inference server (or use --server_address), generate every benchmark and seed, grade in the sandbox, compute metrics, print the summary and write <output_dir>/metrics.json. Locally or on Slurm (--cluster).
"""

from __future__ import annotations

from typing import Sequence

from nemo_eval.errors import run_main
from nemo_eval.pending import pending_main

PROG = "nemo-eval eval"
DESCRIPTION = """Run benchmarks end to end: prepare data, start the code sandbox and the inference server (or use --server_address), generate every benchmark and seed, grade in the sandbox, compute metrics, print the summary and write <output_dir>/metrics.json. Locally or on Slurm (--cluster)."""
EXAMPLE = """nemo-eval eval --cluster local --server_type openai --server_address http://localhost:8000/v1 --model NAME --benchmarks gsm8k:0,math-500:4 --output_dir results ++max_samples=10"""


def main(argv: Sequence[str] | None = None) -> int:
    return pending_main(PROG, DESCRIPTION, EXAMPLE, argv)


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
