"""lm-evaluation-harness's ``minerva_math`` scores next to ours, computed in isolated workers.

The scores (:mod:`lm_eval_minerva`) need sympy's LaTeX parser, which needs ``antlr4-python3-runtime``
4.11, while Hydra (a core dependency) needs antlr 4.9: the two cannot share one environment. So they
run under another Python, found in this order:

1. ``extraction.lm_eval_python`` (a path);
2. ``$NEMO_EVAL_LM_EVAL_PYTHON`` (for instance the venv an lm-evaluation-harness install lives in);
3. ``$XDG_CACHE_HOME/nemo-eval/lm-eval-math/bin/python`` (``~/.cache/...``), where docs/evaluation.md's
   one-line setup puts it.

It must import sympy, ``math_verify`` and antlr 4.11 (checked once per Python). Without one, the
scores are skipped with one warning line naming the fix; our own grading is unaffected.

Each line gets ``predicted_answer_exact_match`` (the normalised answer, ``[invalidanswer]`` when the
"Final Answer: ..." sentence is missing), ``is_correct_exact_match`` and ``is_correct_math_verify``.
A comparison that dies or hangs past the worker's hard limit counts as not equal, as lm-eval counts
its own timeouts.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

PYTHON_ENV = "NEMO_EVAL_LM_EVAL_PYTHON"
KINDS = ("exact_match", "math_verify")
SETUP = ("python3 -m venv ~/.cache/nemo-eval/lm-eval-math && ~/.cache/nemo-eval/lm-eval-math/bin/pip install "
         "sympy 'antlr4-python3-runtime==4.11.*' 'math-verify[antlr4_11_0]'")
PROBE = ("import sympy, math_verify\n"
         "from importlib.metadata import version\n"
         "assert version('antlr4-python3-runtime').startswith('4.11'), version('antlr4-python3-runtime')\n"
         "from sympy.parsing.latex import parse_latex\n"
         "parse_latex('1')\n")


def default_python() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "nemo-eval" / "lm-eval-math" / "bin" / "python"


def _probe(command: list[str]) -> Optional[str]:
    """None when ``command`` (the probe) succeeds, else its last error line."""
    try:
        probe = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["no output"])[-1][:160]


@functools.lru_cache(maxsize=None)
def _usable(python: str) -> Optional[str]:
    """None when ``python`` can compute the scores where the workers run (in the jail, if any), else why not."""
    from nemo_eval.evaluation.local_worker import jail_prefix

    command = [python, "-I", "-c", PROBE]
    jail = jail_prefix()
    problem = _probe(jail + command)
    if problem is None:
        return None
    if jail:   # tell a Python the jail cannot see from one that lacks the packages
        problem = _probe(command)
        if problem is None:
            return (f"{python} works but not inside the grading jail, which shows the system read-only with an "
                    "empty /tmp: install it outside /tmp")
    return f"{python} lacks sympy, math-verify or antlr4-python3-runtime 4.11 ({problem})"


def find_python(configured: Optional[str]) -> tuple[Optional[str], str]:
    """``(python, "")`` for the first usable candidate, else ``(None, why)``."""
    candidates = [c for c in (configured, os.environ.get(PYTHON_ENV)) if c]
    if not candidates:
        candidates = [str(default_python())]
        if not default_python().exists():
            return None, f"no Python for them (set {PYTHON_ENV} or extraction.lm_eval_python, or run: {SETUP})"
    problem = _usable(candidates[0])
    return (candidates[0], "") if problem is None else (None, problem)


def _collector(answers: dict[tuple, str]):
    def collect(output: str, nonce: str, items: list) -> None:
        for match in re.finditer(rf"^{nonce} answer (\d+) (.*)$", output, re.M):
            position = int(match.group(1))
            if position < len(items):
                try:
                    answers[tuple(items[position])] = json.loads(match.group(2))
                except ValueError:
                    pass
    return collect


def _item(kind: str, line: dict[str, Any]) -> tuple[str, str, str, str]:
    return (kind, str(line.get("generation") or ""), str(line.get("reference_solution") or ""),
            str(line.get("expected_answer") or ""))


def add_minerva_scores(lines: list[dict[str, Any]], configured_python: Optional[str] = None,
                       timeout: float = 10.0, workers: int = 0) -> bool:
    """Add lm-eval's minerva_math fields to ``lines`` in place; False (with a warning) when they cannot be computed."""
    python, why = find_python(configured_python)
    if python is None:
        print(f"nemo-eval: warning: lm-eval's minerva_math scores (accuracy_exact_match, accuracy_math_verify) "
              f"not computed: {why}", file=sys.stderr)
        return False
    from nemo_eval.evaluation.local_worker import WorkerPool
    from nemo_eval.evaluation.lm_eval_minerva import __file__ as program_file

    items, index = [], {}
    for line in lines:
        for kind in KINDS:
            item = _item(kind, line)
            if item not in index:
                index[item] = len(items)
                items.append(item)
    answers: dict[tuple, str] = {}
    pool = WorkerPool(workers, timeout=timeout, program=Path(program_file).read_text(encoding="utf-8"),
                      python=python, on_output=_collector(answers))
    try:
        verdicts = pool.decide([list(item) for item in items])
    finally:
        pool.close()
    for line in lines:
        for kind in KINDS:
            item = _item(kind, line)
            line[f"is_correct_{kind}"] = verdicts[index[item]] == "1"
            if kind == "exact_match":
                line["predicted_answer_exact_match"] = answers.get(item)
    undecided = sum(verdict not in ("0", "1") for verdict in verdicts)
    if undecided:
        print(f"nemo-eval: warning: lm-eval's minerva_math scores: {undecided} of {len(verdicts)} comparisons failed or "
              "hit the hard time limit; counted as not equal, as lm-eval counts its own failures", file=sys.stderr)
    return True
