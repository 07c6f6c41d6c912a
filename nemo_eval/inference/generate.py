"""``nemo-eval generate`` (also ``python -m nemo_eval.inference.generate``).

Generate solutions for every item of one benchmark split (or input file) against an OpenAI-compatible server, concurrently and resumably, writing one JSON line per item.
"""

from __future__ import annotations

from typing import Sequence

from nemo_eval.errors import run_main
from nemo_eval.pending import pending_main

PROG = "nemo-eval generate"
DESCRIPTION = """Generate solutions for every item of one benchmark split (or input file) against an OpenAI-compatible server, concurrently and resumably, writing one JSON line per item."""
EXAMPLE = """nemo-eval generate ++benchmark=gsm8k ++output_file=out.jsonl ++server.base_url=http://localhost:8000/v1 ++server.model=NAME"""


def main(argv: Sequence[str] | None = None) -> int:
    return pending_main(PROG, DESCRIPTION, EXAMPLE, argv)


if __name__ == "__main__":
    raise SystemExit(run_main(PROG, main))
