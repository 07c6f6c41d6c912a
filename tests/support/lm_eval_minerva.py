"""Run lm-evaluation-harness's own ``minerva_math`` scoring on cases (stdin JSON) and print its results.

Runs under the Python of a separate venv with ``lm-eval[math]`` installed (never nemo-eval's).
stdin: ``[{"generation", "solution"}, ...]`` -> stdout: ``[{"exact_match", "math_verify", "answer", "gold"}, ...]``
(lm-eval's scores, its normalised answer and gold); or ``{"normalize": [text, ...]}`` -> ``[normalised, ...]``.
"""

import json
import sys

cases = json.load(sys.stdin)
answer, sys.stdout = sys.stdout, sys.stderr   # lm-eval may print while importing
from lm_eval.tasks.minerva_math import utils  # noqa: E402

if isinstance(cases, dict):
    json.dump([utils.normalize_final_answer(text) for text in cases["normalize"]], answer)
    sys.exit(0)
results = []
for case in cases:
    gold = utils.normalize_final_answer(utils.remove_boxed(utils.last_boxed_only_string(case["solution"])))
    scores = utils.process_results({"solution": case["solution"], "answer": gold}, [case["generation"]])
    results.append({**scores, "answer": utils.normalize_final_answer(utils.get_unnormalized_answer(case["generation"])),
                    "gold": gold})
json.dump(results, answer)
