"""``nemo-eval summarize-results`` (also ``python -m nemo_eval.pipeline.summarize_results``).

Find every benchmark and sample file under an output directory, print one table per benchmark and write <out_dir>/metrics.json.
"""

from __future__ import annotations

from typing import Sequence

from nemo_eval.errors import run_main
from nemo_eval.pending import pending_main

PROG = "nemo-eval summarize-results"
DESCRIPTION = """Find every benchmark and sample file under an output directory, print one table per benchmark and write <out_dir>/metrics.json."""
EXAMPLE = """nemo-eval summarize-results results"""


def main(argv: Sequence[str] | None = None) -> int:
    return pending_main(PROG, DESCRIPTION, EXAMPLE, argv)


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
