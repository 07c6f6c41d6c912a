"""Code execution during generation: the test server writes code, the real sandbox runs it."""

from __future__ import annotations

import json
import re

import pytest

from helpers import cli_env, openai_test_server, run_cli, single_error_line

CODE_ARGS = ["++prompt_config=generic/math-with-code", "++prompt_template=chatml", "++code_execution.enabled=true"]


def generate(env, url, output, *extra, items=6):
    return run_cli("generate", "++benchmark=gsm8k", f"++output_file={output}", f"++server.base_url={url}",
                   f"++max_samples={items}", *extra, env=env)


def test_code_blocks_are_run_and_their_real_output_is_shown(prepared_data, sandbox_url, tmp_path):
    output = tmp_path / "out.jsonl"
    with openai_test_server("--script", "code") as url:
        result = generate(cli_env(prepared_data), url, output, *CODE_ARGS, f"++code_execution.sandbox_address={sandbox_url}")
    assert result.returncode == 0, result.stderr
    for row in map(json.loads, output.read_text().splitlines()):
        a, b = map(int, re.search(r"print\((\d+) \* (\d+)\)", row["generation"]).groups())
        assert f"```python\nprint({a} * {b})\n```\n```output\n{a * b}\n```\n" in row["generation"]
        # the bare fence in the answer stopped generation (it is the code-end marker); it was put back
        assert row["generation"].endswith(f"The code printed:\n```\n{a * b}\n```\nso the answer is \\boxed{{{a * b}}}.")
        assert "FAKE" not in row["generation"] and row["num_code_executions"] == 1
        assert row["num_generated_tokens"] > 0 and row["finish_reason"] == "stop"


def test_without_execution_the_model_makes_its_output_up(prepared_data, tmp_path):
    output = tmp_path / "out.jsonl"
    with openai_test_server("--script", "code") as url:
        result = generate(cli_env(prepared_data), url, output, "++prompt_config=generic/math-with-code",
                          "++prompt_template=chatml", items=2)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert all("```output\nFAKE\n```" in r["generation"] and "num_code_executions" not in r for r in rows)


def test_execution_limit_zero_runs_nothing(prepared_data, sandbox_url, tmp_path):
    output = tmp_path / "out.jsonl"
    with openai_test_server("--script", "code") as url:
        result = generate(cli_env(prepared_data), url, output, *CODE_ARGS, "++code_execution.max_executions=0",
                          f"++code_execution.sandbox_address={sandbox_url}", items=2)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert all(r["num_code_executions"] == 0 and "FAKE" in r["generation"] for r in rows)


@pytest.mark.slow
def test_code_execution_errors(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    with openai_test_server("--script", "code") as url:
        no_markers = generate(env, url, tmp_path / "a.jsonl", "++prompt_template=chatml", "++code_execution.enabled=true")
        chat = generate(env, url, tmp_path / "b.jsonl", "++prompt_config=generic/math-with-code",
                        "++code_execution.enabled=true")
        no_sandbox = generate(env, url, tmp_path / "c.jsonl", *CODE_ARGS, "++code_execution.sandbox_address=http://127.0.0.1:9")
    assert no_markers.returncode == 2 and "code_execution markers" in single_error_line(no_markers.stderr)
    assert chat.returncode == 2 and "completions endpoint" in single_error_line(chat.stderr)
    assert no_sandbox.returncode == 2 and "cannot reach the sandbox" in single_error_line(no_sandbox.stderr)


def test_pending_code_and_output_format():
    from nemo_eval.inference.code_execution import format_output, pending_code
    from nemo_eval.prompts.config import CodeExecutionMarkers

    markers = CodeExecutionMarkers("```python\n", "```\n", "```output\n", "```\n")
    assert pending_code("x\n```python\nprint(1)\n", markers) == "print(1)\n"
    assert pending_code("```python\nprint(1)\n```\n```output\n1\n```\ndone", markers) is None
    assert pending_code("no code here", markers) is None
    assert format_output({"process_status": "completed", "stdout": "1", "return_code": 0}, 100) == "1\n"
    assert format_output({"process_status": "timeout"}, 100) == "Execution timed out.\n"
    failed = {"process_status": "completed", "stdout": "", "stderr": "Traceback...\nZeroDivisionError: x", "return_code": 1}
    assert format_output(failed, 100) == "ZeroDivisionError: x\n"
    assert format_output({"process_status": "completed", "stdout": "y" * 50, "return_code": 0}, 10).startswith("y" * 10 + "\n<output cut")
