"""lm-eval's own minerva_math scores (exact_match, math_verify) next to ours, equal to lm-eval's on the same text.

The reference is lm-evaluation-harness 0.4.13 itself (tests/support/lm_eval_minerva.py), run in its own
venv; ours runs lm_eval_minerva.py in isolated workers under that same venv's Python (the scores need
antlr 4.11, which nemo-eval's own environment cannot hold).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, cli_env, lm_eval_python, openai_test_server, run_cli
from nemo_eval.evaluation.lm_eval_math import add_minerva_scores
from nemo_eval.evaluation.lm_eval_minerva import normalize_final_answer, unnormalized_answer

# normalisation edge cases: units (whole words and glued), \text, commands holding unit letters, shorthand
# fractions and roots, indexed roots, thousands separators and tuples, dollars, degrees, "a "/"an ", equations
ANSWERS = [
    "5 cm", "2\\pi cm", "\\left( 3, \\frac{\\pi}{2} \\right)", "10\\text{ inches}", "\\text{(C)}", "\\textbf{(A)}",
    "\\frac12", "\\frac{1}{2}", "\\fracab", "\\sqrt2", "\\sqrt[3]{8}", "\\sqrt[3]a", "\\sqrt{2}", "1,000", "100,000",
    "0,1", "-1,234", "1,2,3", "\\$5.00", "\\$ 32", "90^\\circ", "90^{\\circ}", "an integer", "a square", "x = 5",
    "y=2x+3", "\\boxed{7}", "$\\frac{3}{4}$ of them", "12 students", "3\\text{ hours}", "\\mathrm{3rd}",
    "4\\mathrm{th}", "\\overline{AB}", "[2,5)", "(-\\infty, 0]", "\\{1,2\\}", "x^2 + 2x + 1", "\\dfrac{1}{3}",
    "6\\;\\text{cm}", "20{,}000", "12,\\!345", "\\text{m}", "\\ldots", "", "[invalidanswer]", "\"yes\"",
    "5 ways", "2ft", "\\infty", "$", "$5$ and $6$", "30 mph", "edges: 12", "\\text{\nm}", "1.5.",
]


def test_normalisation_is_lm_evals(prepared_data):
    rows = [json.loads(line) for line in (prepared_data / "math-500" / "test.jsonl").read_text().splitlines()]
    answers = ANSWERS + [row["expected_answer"] for row in rows]
    reference = run_reference({"normalize": answers})
    assert [normalize_final_answer(answer) for answer in answers] == reference


def run_reference(request) -> list:
    python = lm_eval_python()
    done = subprocess.run([str(python), str(REPO / "tests" / "support" / "lm_eval_minerva.py")],
                          input=json.dumps(request), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def generations(rows: list[dict]) -> list[dict]:
    """Crafted generations over real MATH-500 rows: right, wrong, unit-laden, equivalent but different, no closing
    sentence, only a box, several closings, a multi-line final answer."""
    forms = [
        "Work.\nFinal Answer: The final answer is ${a}$. I hope it is correct.",
        "Final Answer: The final answer is ${b}$. I hope it is correct.",
        "So the answer is $\\boxed{{{a}}}$.",
        "Final Answer: The final answer is {a} units. I hope it is correct.",
        "Final Answer: The final answer is $x = {a}$",
        "Final Answer: The final answer is $0.5$. I hope it is correct.",
        "Final Answer: The final answer is $2$. I hope it is correct.\nFinal Answer: The final answer is ${a}$. "
        "I hope it is correct.",
        "Final Answer: The final answer is $\n{a}$. I hope it is correct.",
        "Final Answer: The final answer is $\\frac{{2}}{{4}}$. I hope it is correct.",
        "",
    ]
    lines = []
    for i, row in enumerate(rows):
        other = rows[(i + 7) % len(rows)]["expected_answer"]
        text = forms[i % len(forms)].format(a=row["expected_answer"], b=other)
        lines.append({"generation": text, "reference_solution": row["reference_solution"],
                      "expected_answer": row["expected_answer"]})
    return lines


def test_scores_equal_lm_evals_on_crafted_generations(prepared_data):
    rows = [json.loads(line) for line in (prepared_data / "math-500" / "test.jsonl").read_text().splitlines()][:150]
    lines = generations(rows)
    assert add_minerva_scores(lines, str(lm_eval_python()))
    reference = run_reference([{"generation": line["generation"], "solution": line["reference_solution"]}
                               for line in lines])
    ours = [(line["is_correct_exact_match"], line["is_correct_math_verify"], line["predicted_answer_exact_match"])
            for line in lines]
    theirs = [(bool(r["exact_match"]), bool(r["math_verify"]), r["answer"]) for r in reference]
    assert ours == theirs
    exact, verified = sum(o[0] for o in ours), sum(o[1] for o in ours)
    assert 0 < exact < verified < len(lines)      # both scores vary, and the crafted forms tell them apart


@pytest.mark.slow
def test_hostile_generations_end_in_bounded_time():
    hostile = ["\\boxed{" * 20000, "Final Answer: The final answer is $" + "x " * 100000,
               "Final Answer: The final answer is 4 " * 3000, "Final Answer: The final answer is $9^{9^{9^{9}}}$. "
               "I hope it is correct.", "$" + "\\frac" * 5000 + "$"]
    lines = [{"generation": text, "reference_solution": "So $\\boxed{5}$.", "expected_answer": "5"} for text in hostile]
    started = time.monotonic()
    assert add_minerva_scores(lines, str(lm_eval_python()), timeout=5)
    assert time.monotonic() - started < 240
    assert not any(line["is_correct_exact_match"] or line["is_correct_math_verify"] for line in lines)


def test_extraction_reads_only_the_closing_sentence():
    assert unnormalized_answer("Final Answer: The final answer is $5$. I hope it is correct.") == "$5$"
    # the closing sentence is appended before searching, and lm-eval's "." (any character) eats one
    assert unnormalized_answer("Final Answer: The final answer is $5$ ") == "$5"
    assert unnormalized_answer("Final Answer: The final answer is $5$") == "[invalidanswer]"
    assert unnormalized_answer("The answer is $\\boxed{5}$.") == "[invalidanswer]"


def write_lines(path: Path, lines: list[dict], prompt_config: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    Path(f"{path}.meta.json").write_text(json.dumps({"settings": {"input": {"benchmark": "math-500"},
                                                                  "prompt": {"config": prompt_config}}}))
    return path


def test_without_a_usable_python_one_warning_and_our_grading_stands(tmp_path, sandbox_url):
    lines = [{"id": "1", "expected_answer": "5", "reference_solution": "$\\boxed{5}$",
              "generation": "Final Answer: The final answer is $5$. I hope it is correct."}]
    path = write_lines(tmp_path / "math-500" / "output-greedy.jsonl", lines, "lm-eval/minerva-math")
    env = cli_env(tmp_path / "data", NEMO_EVAL_LM_EVAL_PYTHON=sys.executable, XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", f"++sandbox_address={sandbox_url}", env=env)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "minerva_math scores" in line]
    assert len(warnings) == 1 and "antlr4-python3-runtime 4.11" in warnings[0] and "Traceback" not in result.stderr
    graded = json.loads(path.read_text())
    assert graded["is_correct"] is True and "is_correct_exact_match" not in graded


def test_bad_lm_eval_task_is_one_line(tmp_path):
    path = write_lines(tmp_path / "math-500" / "output-greedy.jsonl", [{"id": "1", "expected_answer": "5"}], "generic/math")
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", "++extraction.lm_eval_task=minerva")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith("must be one of gsm8k, gsm8k_cot, minerva_math (got 'minerva')")


def test_minerva_prompt_end_to_end(prepared_data, sandbox_url, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text((prepared_data / "math-500" / "test.jsonl").read_text())
    env = cli_env(prepared_data, NEMO_EVAL_LM_EVAL_PYTHON=str(lm_eval_python()))
    out = tmp_path / "math-500" / "output-greedy.jsonl"
    with openai_test_server("--answers-jsonl", str(answers), "--script", "minerva", "--correct-rate", "0.6") as url:
        result = run_cli("generate", "++benchmark=math-500", f"++output_file={out}", f"++server.base_url={url}",
                         "++prompt_config=lm-eval/minerva-math", "++examples_type=lm_eval_minerva_math",
                         "++num_few_shots=4", "++max_samples=30", env=env)
    assert result.returncode == 0, result.stderr
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}", env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    reference = run_reference([{"generation": line["generation"], "solution": line["reference_solution"]}
                               for line in lines])
    assert [line["is_correct_exact_match"] for line in lines] == [bool(r["exact_match"]) for r in reference]
    assert [line["is_correct_math_verify"] for line in lines] == [bool(r["math_verify"]) for r in reference]
    metrics = run_cli("compute-metrics", "--prediction_jsonl_files", str(out), "--benchmark", "math-500", env=env)
    assert metrics.returncode == 0, metrics.stderr
    greedy = json.loads(metrics.stdout[metrics.stdout.index("{"):])["math-500"]["greedy"]
    assert greedy["accuracy_exact_match"] == round(100 * sum(line["is_correct_exact_match"] for line in lines) / 30, 2)
    assert greedy["accuracy_math_verify"] == round(100 * sum(line["is_correct_math_verify"] for line in lines) / 30, 2)
    assert 0 < greedy["accuracy_exact_match"] <= greedy["accuracy"]


@pytest.mark.parametrize("prompt", ["generic/math"])
def test_other_prompts_get_no_lm_eval_minerva_fields(tmp_path, sandbox_url, prompt):
    lines = [{"id": "1", "expected_answer": "5", "reference_solution": "$\\boxed{5}$", "generation": "\\boxed{5}"}]
    path = write_lines(tmp_path / "math-500" / "output-greedy.jsonl", lines, prompt)
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", f"++sandbox_address={sandbox_url}")
    assert result.returncode == 0, result.stderr
    assert "is_correct_exact_match" not in json.loads(path.read_text())


def test_a_python_the_grading_jail_cannot_see_is_refused_with_the_reason(tmp_path):
    from nemo_eval.evaluation.lm_eval_math import find_python
    from nemo_eval.evaluation.local_worker import jail_prefix

    if not jail_prefix() or not str(tmp_path).startswith("/tmp/"):
        pytest.skip("needs the bubblewrap grading jail and a temporary dir under /tmp")
    reference = Path(lm_eval_python())
    venv = tmp_path / "venv"          # works here, but the jail mounts an empty /tmp
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([str(reference), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    inner = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    Path(inner, "reference.pth").write_text(site + "\n")
    python, why = find_python(str(venv / "bin" / "python"))
    assert python is None and "not inside the grading jail" in why
