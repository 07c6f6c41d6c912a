"""Alias kept for scripts: ``python -m nemo_eval.pipeline.summarize_results`` runs :mod:`nemo_eval.metrics.summarize_results`."""

from nemo_eval.errors import run_main
from nemo_eval.metrics.summarize_results import PROG, main

__all__ = ["PROG", "main"]

if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
