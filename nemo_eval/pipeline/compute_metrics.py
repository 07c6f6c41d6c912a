"""Alias kept for scripts: ``python -m nemo_eval.pipeline.compute_metrics`` runs :mod:`nemo_eval.metrics.compute_metrics`."""

from nemo_eval.errors import run_main
from nemo_eval.metrics.compute_metrics import PROG, main

__all__ = ["PROG", "main"]

if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
