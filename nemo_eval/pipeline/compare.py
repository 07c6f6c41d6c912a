"""Alias kept for scripts: ``python -m nemo_eval.pipeline.compare`` runs :mod:`nemo_eval.metrics.compare`."""

from nemo_eval.errors import run_main
from nemo_eval.metrics.compare import PROG, main

__all__ = ["PROG", "main"]

if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
