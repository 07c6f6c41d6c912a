"""Code benchmarks graded in the real sandbox: reference solutions pass, broken ones fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.evaluation.code_grader import build_test_program, extract_code


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluate(path: Path, sandbox_url: str, *extra: str):
    return run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", f"++sandbox_address={sandbox_url}",
                   "++max_concurrency=4", *extra)


@pytest.mark.parametrize("generation,expected", [
    ("def f():\n    return 1", "def f():\n    return 1"),                         # no fence: a completion
    ("Sure:\n```python\ndef f():\n    return 1\n```\nThat's it.", "def f():\n    return 1\n"),
    ("```python\nimport os\n```\ntext\n```python\ndef f(x):\n    return x\n```\n```python\nprint(f(1))\n```",
     "def f(x):\n    return x\n"),                                                # the block defining f
    ("```py\ndef f():\n    return 2\n", "def f():\n    return 2\n"),              # cut off: unclosed fence
    ("```bash\nls\n```\n```\ndef f(): pass\n```", "def f(): pass\n"),             # not the bash block
    ("", ""), (None, ""),
])
def test_extract_code(generation, expected):
    assert extract_code(generation, "f") == expected


def test_test_programs():
    human = {"prompt": "def f(x):\n    \"\"\"doc\"\"\"\n", "entry_point": "f", "test": "def check(c):\n    assert c(1) == 1"}
    program = build_test_program(human, "    return x\n", "NONCE")
    assert program.startswith(human["prompt"] + "    return x\n") and "check(f)\n" in program
    assert program.endswith("_nemo_eval_os.write(1, b'\\nNONCE\\n')\n")
    mbpp = {"entry_point": "f", "test": "assert f(1) == 1\n"}
    assert build_test_program(mbpp, "def f(x): return x", "N").startswith("def f(x): return x\n\nassert f(1) == 1\n")


def test_humaneval_canonical_solutions_all_pass_and_broken_ones_fail(prepared_data, sandbox_url, tmp_path):
    items = lines(prepared_data / "humaneval" / "test.jsonl")
    as_completion = write(tmp_path / "completion.jsonl", [{**r, "generation": r["canonical_solution"]} for r in items])
    as_function = write(tmp_path / "function.jsonl", [
        {**r, "generation": f"Here you go:\n```python\n{r['prompt']}{r['canonical_solution']}```"} for r in items])
    off_by_one = write(tmp_path / "broken.jsonl", [
        {**r, "generation": f"```python\ndef {r['entry_point']}(*args, **kwargs):\n    return None\n```"} for r in items])
    for path, correct in ((as_completion, 164), (as_function, 164), (off_by_one, 0)):
        result = evaluate(path, sandbox_url)
        assert result.returncode == 0, result.stderr
        graded = lines(path)
        assert sum(r["is_correct"] for r in graded) == correct, path.name
        assert all(r["execution_status"] == "completed" for r in graded)
    assert all("execution_error" in r for r in lines(off_by_one))


def test_mbpp_reference_code_passes_on_the_test_split(prepared_data, sandbox_url, tmp_path):
    items = lines(prepared_data / "mbpp" / "test.jsonl")
    path = write(tmp_path / "mbpp.jsonl", [{**r, "generation": f"```python\n{r['reference_solution']}\n```"} for r in items])
    result = evaluate(path, sandbox_url)
    assert result.returncode == 0, result.stderr
    graded = lines(path)
    failures = [(r["id"], r.get("execution_error")) for r in graded if not r["is_correct"]]
    assert len(graded) == 500 and failures == []


def test_hanging_and_crashing_programs_are_wrong_not_fatal(prepared_data, sandbox_url, tmp_path):
    items = lines(prepared_data / "mbpp" / "test.jsonl")[:3]
    rows = [{**items[0], "generation": "```python\nwhile True:\n    pass\n```"},
            {**items[1], "generation": "```python\nimport os\nos._exit(0)\n```"},   # exit 0 before the asserts: a cheat
            {**items[2], "generation": "```python\nraise SystemExit(1)\n```"}]
    path = write(tmp_path / "bad.jsonl", rows)
    assert evaluate(path, sandbox_url, "++timeout=2").returncode == 0
    graded = lines(path)
    assert [r["execution_status"] for r in graded] == ["timeout", "completed", "completed"]
    assert [r["is_correct"] for r in graded] == [False, False, False], "the nonce catches os._exit(0)"


def test_flooding_output_does_not_hide_a_real_pass(prepared_data, sandbox_url, tmp_path):
    item = lines(prepared_data / "mbpp" / "test.jsonl")[0]
    code = "print('x' * 5_000_000)\n" + item["reference_solution"]
    path = write(tmp_path / "flood.jsonl", [{**item, "generation": f"```python\n{code}\n```"}])
    assert evaluate(path, sandbox_url).returncode == 0
    assert lines(path)[0]["is_correct"] is True


def test_rerun_is_a_noop_and_the_rewrite_is_atomic(prepared_data, sandbox_url, tmp_path):
    items = lines(prepared_data / "humaneval" / "test.jsonl")[:5]
    path = write(tmp_path / "h.jsonl", [{**r, "generation": r["canonical_solution"]} for r in items])
    assert evaluate(path, sandbox_url).returncode == 0
    before = path.read_bytes()
    again = evaluate(path, sandbox_url)
    assert again.returncode == 0 and "graded 0 of 5" in again.stderr
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h.jsonl"], "no temporary files left behind"


@pytest.mark.slow
def test_evaluate_errors(tmp_path):
    missing = run_cli("evaluate", f"++prediction_jsonl_files=[{tmp_path / 'nope.jsonl'}]")
    assert missing.returncode == 2 and "not found" in single_error_line(missing.stderr)
    math = write(tmp_path / "m.jsonl", [{"id": "1", "problem": "1+1", "expected_answer": "2", "generation": "2"}])
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{math}]", "++sandbox_address=http://127.0.0.1:9")
    assert result.returncode == 2 and "cannot reach the sandbox" in single_error_line(result.stderr)
    code = write(tmp_path / "c.jsonl", [{"id": "1", "problem": "p", "test": "assert True", "entry_point": "f",
                                         "generation": "def f(): pass"}])
    down = run_cli("evaluate", f"++prediction_jsonl_files=[{code}]", "++sandbox_address=http://127.0.0.1:9")
    assert down.returncode == 2 and "cannot reach the sandbox at http://127.0.0.1:9" in single_error_line(down.stderr)
