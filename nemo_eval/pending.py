"""Entry points whose step is not built yet: full ``--help``, then a clear one-line refusal.

Used by the pipeline steps that later issues fill in, so that every documented command exists,
explains itself and fails honestly (exit 2) instead of pretending to work.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from nemo_eval.errors import UserError


def pending_main(prog: str, description: str, usage_example: str, argv: Sequence[str] | None) -> int:
    """Parse ``--help``; otherwise refuse with a one-line message naming what is missing."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     epilog=f"example: {usage_example}")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments and ++key=value overrides")
    parser.parse_known_args(argv)
    raise UserError(f"{prog} is not available in nemo-eval yet (this step is still being built); "
                    "today you can run: nemo-eval prepare-data, nemo-eval show-prompt, nemo-eval list-benchmarks")
