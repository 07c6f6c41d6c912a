"""lm-evaluation-harness's own pass@1 next to ours for files generated with the lm-eval/mbpp and
lm-eval/humaneval prompts: crafted generations for real rows, graded in the real sandbox, where the two
rules agree and where they differ (code fences, lm-eval's 3 s timeout, MBPP's setup code), and the
metric in the metrics output only with those prompts."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import cli_env, openai_test_server, run_cli
from nemo_eval.evaluation.code_grader import build_test_program, lm_eval_program
from nemo_eval.metrics.compute import compute_metrics

SLEEP = "import time\ntime.sleep(4.5)\n"   # over lm-eval's 3 s, under our timeout below


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, benchmark: str, prompt_config: str, lines: list[dict]) -> Path:
    """``lines`` (crafted cases of real rows, their ``id`` made unique) with a .meta.json naming the prompt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({**line, "id": line["case"]}) + "\n" for line in lines))
    Path(f"{path}.meta.json").write_text(json.dumps({"settings": {"input": {"benchmark": benchmark},
                                                                  "prompt": {"config": prompt_config}}}))
    return path


def evaluate(path: Path, sandbox_url: str, *extra: str) -> list[dict]:
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", f"++sandbox_address={sandbox_url}",
                     "++max_concurrency=8", "++timeout=15", *extra)
    assert result.returncode == 0, result.stderr
    return rows(path)


def verdicts(graded: list[dict]) -> dict[str, tuple]:
    return {line["case"]: (line["is_correct"], line.get("is_correct_lm_eval")) for line in graded}


def metrics(path: Path, benchmark: str) -> dict:
    result = run_cli("compute-metrics", "--prediction_jsonl_files", str(path), "--benchmark", benchmark)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("{"):])[benchmark]


def mbpp_cases(prepared_data: Path) -> list[dict]:
    items = {r["id"]: r for r in rows(prepared_data / "mbpp" / "test.jsonl")}
    first, second, setup = items["11"], items["12"], items["367"]   # 367's asserts need its test_setup_code
    code = first["reference_solution"]
    return [
        {**first, "case": "plain", "generation": code + "\n"},
        {**first, "case": "fenced", "generation": f"Here is the function:\n```python\n{code}\n```\n"},
        {**first, "case": "sleeps", "generation": SLEEP + code + "\n"},
        {**first, "case": "exits", "generation": code + "\nimport sys\nsys.exit(0)\n"},
        {**first, "case": "wrong", "generation": f"def {first['entry_point']}(*args):\n    return None\n"},
        {**first, "case": "main", "generation": code + "\nif __name__ == '__main__':\n    raise ValueError\n"},
        {**first, "case": "done", "generation": code + "\n[DONE]\n\nYou are an expert Python programmer"},
        {**second, "case": "plain2", "generation": second["reference_solution"] + "\n"},
        {**setup, "case": "setup", "generation": setup["reference_solution"] + "\n"},
    ]


def test_programs_are_what_lm_eval_runs(prepared_data):
    item = next(r for r in rows(prepared_data / "mbpp" / "test.jsonl") if r["id"] == "367")
    program = lm_eval_program(item, "CODE\n[DONE]\nmore", "mbpp")
    assert program == "CODE\n\n" + "\n".join(item["test_list"])   # raw generation + "\n" + the three asserts
    assert "root = Node(1)" not in program and "root = Node(1)" in build_test_program(item, "CODE", "N")
    human = rows(prepared_data / "humaneval" / "test.jsonl")[0]
    assert lm_eval_program(human, "    return 1\n\ndef other():", "humaneval") == (
        f"{human['prompt']}    return 1\n\n{human['test']}\ncheck({human['entry_point']})")


def test_mbpp_with_the_lm_eval_prompt(prepared_data, sandbox_url, tmp_path):
    cases = mbpp_cases(prepared_data)
    path = write(tmp_path / "lm" / "mbpp" / "output-greedy.jsonl", "mbpp", "lm-eval/mbpp", cases)
    assert verdicts(evaluate(path, sandbox_url)) == {
        "plain": (True, True), "plain2": (True, True),   # identical plain completions agree
        "fenced": (True, False),     # ours extracts the fenced block; lm-eval runs the markdown as is
        "sleeps": (True, False),     # 4.5 s: within our 15 s, over lm-eval's 3 s
        "exits": (False, False),     # sys.exit(0) before the tests: no pass for either
        "wrong": (False, False),
        "main": (False, True),       # lm-eval execs with __name__ != "__main__"; ours runs a script
        "done": (False, True),       # lm-eval cuts at its stop string [DONE]; ours takes the text as code
        "setup": (True, False),      # lm-eval's program has no test_setup_code: the asserts' root is undefined
    }
    row = metrics(path, "mbpp")["greedy"]
    assert row["accuracy"] == round(100 * 5 / 9, 2) and row["accuracy_lm_eval"] == round(100 * 4 / 9, 2)

    generic = write(tmp_path / "generic" / "mbpp" / "output-greedy.jsonl", "mbpp", "generic/mbpp", cases)
    graded = evaluate(generic, sandbox_url)
    assert not any("is_correct_lm_eval" in line for line in graded)
    assert "accuracy_lm_eval" not in metrics(generic, "mbpp")["greedy"]

    forced = write(tmp_path / "forced" / "mbpp" / "output-greedy.jsonl", "mbpp", "generic/mbpp", cases[:2])
    assert verdicts(evaluate(forced, sandbox_url, "++lm_eval_task=mbpp")) == {"plain": (True, True),
                                                                              "fenced": (True, False)}
    off = write(tmp_path / "off" / "mbpp" / "output-greedy.jsonl", "mbpp", "lm-eval/mbpp", cases[:1])
    assert "is_correct_lm_eval" not in evaluate(off, sandbox_url, "++lm_eval_task=none")[0]


def test_lm_eval_timeout_is_a_setting(prepared_data, sandbox_url, tmp_path):
    sleeps = [c for c in mbpp_cases(prepared_data) if c["case"] == "sleeps"]
    path = write(tmp_path / "mbpp" / "output-greedy.jsonl", "mbpp", "lm-eval/mbpp", sleeps)
    assert verdicts(evaluate(path, sandbox_url, "++lm_eval_timeout=8")) == {"sleeps": (True, True)}
    again = write(tmp_path / "short" / "mbpp" / "output-greedy.jsonl", "mbpp", "lm-eval/mbpp", sleeps)
    assert verdicts(evaluate(again, sandbox_url, "++timeout=2")) == {"sleeps": (False, False)}
    bad = run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", "++lm_eval_task=gsm8k")
    assert bad.returncode == 2 and "lm_eval_task must be mbpp, humaneval or none" in bad.stderr


def test_humaneval_with_the_lm_eval_prompt(prepared_data, sandbox_url, tmp_path):
    items = rows(prepared_data / "humaneval" / "test.jsonl")[:2]
    first, second = items
    body = first["canonical_solution"]
    cases = [
        {**first, "case": "plain", "generation": body},
        {**second, "case": "plain2", "generation": second["canonical_solution"]},
        {**first, "case": "fenced", "generation": f"```python\n{first['prompt']}{body}```\n"},
        {**first, "case": "sleeps", "generation": body + SLEEP},   # once, at module level (no stop string)
        {**first, "case": "exits", "generation": "    import sys\n    sys.exit(0)\n"},
        {**first, "case": "wrong", "generation": "    return None\n"},
        {**first, "case": "stops", "generation": body + "\ndef helper():\n    pass\n"},   # lm-eval cuts at \ndef
    ]
    path = write(tmp_path / "humaneval" / "output-greedy.jsonl", "humaneval", "lm-eval/humaneval", cases)
    assert verdicts(evaluate(path, sandbox_url)) == {
        "plain": (True, True), "plain2": (True, True), "fenced": (True, False), "sleeps": (True, False),
        "exits": (False, False), "wrong": (False, False), "stops": (True, True)}
    assert metrics(path, "humaneval")["greedy"]["accuracy_lm_eval"] == round(100 * 3 / 7, 2)


def test_sampled_runs_get_lm_evals_accuracy_like_ours(tmp_path):
    def run(seed: int, ours: list[bool], theirs: list[bool]) -> Path:
        path = tmp_path / f"output-rs{seed}.jsonl"
        path.write_text("".join(json.dumps({"id": str(i), "generation": "x", "is_correct": a, "is_correct_lm_eval": b})
                                + "\n" for i, (a, b) in enumerate(zip(ours, theirs))))
        return path

    files = [run(0, [True, True], [True, False]), run(1, [True, False], [False, False])]
    result = compute_metrics(files, "code")
    assert result["pass@1[avg-of-2]"]["accuracy"] == 75.0 and result["pass@1[avg-of-2]"]["accuracy_lm_eval"] == 25.0
    assert result["pass@2"]["accuracy"] == 100.0 and result["pass@2"]["accuracy_lm_eval"] == 50.0
    assert result["pass@1"]["accuracy_lm_eval"] == 25.0
    plain = [tmp_path / "output-greedy.jsonl"]
    plain[0].write_text(json.dumps({"id": "0", "generation": "x", "is_correct": True}) + "\n")
    assert "accuracy_lm_eval" not in compute_metrics(plain, "code")["greedy"]


def test_generate_and_evaluate_with_the_lm_eval_mbpp_prompt(sandbox_url, tmp_path):
    env = cli_env(tmp_path / "data")
    assert run_cli("prepare-data", "mbpp", env=env).returncode == 0
    out = tmp_path / "mbpp" / "output-greedy.jsonl"
    with openai_test_server() as url:
        result = run_cli("generate", "++benchmark=mbpp", f"++output_file={out}", f"++server.base_url={url}",
                         "++prompt_config=lm-eval/mbpp", "++examples_type=lm_eval_mbpp", "++max_samples=4", env=env)
    assert result.returncode == 0, result.stderr
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}", env=env)
    assert result.returncode == 0, result.stderr
    graded = rows(out)
    assert len(graded) == 4 and all(line["is_correct_lm_eval"] is False for line in graded)  # the server writes prose
    result = run_cli("compute-metrics", "--prediction_jsonl_files", str(out), "--benchmark", "mbpp", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout[result.stdout.index("{"):])["mbpp"]["greedy"]["accuracy_lm_eval"] == 0.0
