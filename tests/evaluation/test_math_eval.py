"""Math grading through the real sandbox and the local isolated workers: hand-checked equivalence cases
and whole responses in both sandbox modes, the public API, the evaluate CLI end to end, benchmark
defaults, timeouts that do not stall a batch, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.evaluation import math_grader
from nemo_eval.evaluation.answer_extraction import ExtractionConfig
from nemo_eval.evaluation.api import math_equal_batch, math_verdicts
from nemo_eval.evaluation.local_worker import LocalWorker, WorkerPool
from nemo_eval.evaluation.math_grader import decide_pairs, grade_math_lines
from nemo_eval.evaluation.math_normalize import as_number, choice_letter, normalize_answer
from nemo_eval.evaluation.math_structure import parse_answer
from nemo_eval.sandbox import SandboxClient

FIXTURES = Path(__file__).parent / "fixtures"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def settings(sandbox_url: str, **changes) -> SimpleNamespace:
    base = dict(sandbox_address=sandbox_url, timeout=10.0, max_concurrency=4, math_batch_size=100,
                extraction=ExtractionConfig())
    return SimpleNamespace(**{**base, **changes})


def wrong_verdicts(cases: list[dict], verdicts: list[str], first: str) -> list[tuple]:
    return [(c["why"], c[first], c["expected"], v) for c, v in zip(cases, verdicts) if (v == "1") != c["equal"]]


def test_every_hand_checked_equivalence_case_in_the_sandbox(sandbox_mode_url):
    _, url = sandbox_mode_url  # bwrap mode (the host's sympy) and docker mode (the image's)
    cases = read(FIXTURES / "math_equivalence.jsonl")
    verdicts = decide_pairs([(c["predicted"], c["expected"]) for c in cases], settings(url))
    assert not wrong_verdicts(cases, verdicts, "predicted")
    assert "T" not in verdicts and "E" not in verdicts


def test_whole_responses_through_the_api_in_the_sandbox(sandbox_mode_url):
    _, url = sandbox_mode_url
    cases = read(FIXTURES / "math_responses.jsonl")
    verdicts = math_verdicts([(c["response"], c["expected"]) for c in cases], sandbox=url)
    assert not wrong_verdicts(cases, verdicts, "response")


def test_the_api_without_a_sandbox_uses_local_isolated_workers():
    cases = read(FIXTURES / "math_responses.jsonl") + [
        {"response": c["predicted"], "expected": c["expected"], "equal": c["equal"], "why": c["why"]}
        for c in read(FIXTURES / "math_equivalence.jsonl") if not c["predicted"].startswith(("__", "()."))]
    verdicts = math_verdicts([(c["response"], c["expected"]) for c in cases])
    assert not wrong_verdicts(cases, verdicts, "response")
    assert math_equal_batch([("The answer is $0.5$.", "\\frac12"), ("2000.1", "2000"), (None, "1")]) == [
        True, False, False]


# Written blind (by engineers who had not seen the grader) to measure how it generalises; their misses were
# fixed afterwards. Left: a compound unit the grader does not add up (docs/evaluation.md, Limits).
KNOWN_BLIND_MISSES = {"\\boxed{2 \\text{ hours } 30 \\text{ minutes}}"}


def test_cases_written_blind(sandbox_url):
    cases = [c for c in read(FIXTURES / "math_blind_cases.jsonl") if c["response"] not in KNOWN_BLIND_MISSES]
    verdicts = math_verdicts([(c["response"], c["expected"]) for c in cases], sandbox=sandbox_url)
    assert not wrong_verdicts(cases, verdicts, "response")


@pytest.mark.slow
def test_a_local_worker_that_hangs_is_killed_and_the_rest_is_decided():
    # a pair stuck where the per-pair timer cannot reach it (signals ignored): only the hard deadline ends it
    hanging = ("import json, signal, sys\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
               "for line in sys.stdin:\n    request = json.loads(line)\n"
               "    for index, (p, g) in enumerate(request['pairs']):\n"
               "        while p == 'hang':\n            pass\n"
               "        print(request['nonce'], index, '1' if p == g else '0', flush=True)\n"
               "    print(request['nonce'], 'done', flush=True)\n")
    worker = LocalWorker(timeout=0.5)
    worker.program = hanging
    try:
        assert worker.decide([("a", "a"), ("hang", "x"), ("b", "c"), ("hang", "y"), ("d", "d")]) == [
            "1", "T", "0", "T", "1"]
    finally:
        worker.close()


def test_local_workers_are_separate_limited_processes():
    pool = WorkerPool(workers=2, timeout=2.0, memory_mb=512)
    try:
        # a number too large to build is refused; an allocation beyond the memory limit is an error, not a crash
        assert pool.decide([("10^{10^{10}}", "1"), ("1", "1")]) == ["0", "1"]
        pids = {worker.proc.pid for worker in pool.workers if worker.proc}
        assert pids and all(pid != __import__("os").getpid() for pid in pids)
    finally:
        pool.close()


def test_normalisation_needs_no_sympy():
    assert normalize_answer("$\\dfrac12$") == "\\frac{1}{2}"
    assert normalize_answer("\\$1{,}000.") == "1000"
    assert normalize_answer("90^\\circ") == "90" and normalize_answer("12\\%") == "12%"
    assert normalize_answer("12,\\!345") == "12345" and normalize_answer("(1,234)") == "(1,234)"
    assert parse_answer("[1,2)") == ("tuple", [("value", "1"), ("value", "2")], "[)")
    assert parse_answer("\\{3,1\\}")[0] == "list" and parse_answer("x=1")[0] == "relation"
    assert as_number("-\\frac{3}{4}") == as_number("-3/4") == as_number("-0.75")
    assert as_number("x") is None and as_number("1/0") is None
    assert choice_letter("\\textbf{(D)} 7") == "D" and choice_letter("Devon") is None


def test_evaluate_gsm8k_file_end_to_end(tmp_path, sandbox_url):
    out = write(tmp_path / "gsm8k" / "output-greedy.jsonl", [
        {"id": "a", "expected_answer": "18", "generation": "9 * 2 = 18\n#### 18", "num_generated_tokens": 10},
        {"id": "b", "expected_answer": "3", "generation": "So the answer is $\\boxed{3}$."},
        {"id": "c", "expected_answer": "70000", "generation": "The answer is 70,000."},
        {"id": "d", "expected_answer": "540", "generation": "I think 500"},
        {"id": "e", "expected_answer": "20", "generation": ""},
        {"id": "f", "expected_answer": "18", "generation": "\\boxed{18.0}"},
        {"id": "g", "expected_answer": "18", "generation": "so far 18, and", "finish_reason": "length"},   # cut off
    ])
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in read(out)}
    assert [rows[i]["is_correct"] for i in "abcdefg"] == [True, True, True, False, False, True, False]
    assert [rows[i]["extraction_strategy"] for i in "abcdefg"] == [
        "hash", "boxed", "answer_is", "last_number", None, "boxed", None]
    assert rows["e"]["predicted_answer"] is None and rows["g"]["predicted_answer"] is None
    # gsm8k's benchmark.yaml turns on lm-eval's filters: strict needs "#### N", flexible takes the last number
    assert [rows[i]["is_correct_strict"] for i in "abcdefg"] == [True, False, False, False, False, False, False]
    assert [rows[i]["is_correct_flexible"] for i in "abcdefg"] == [True, False, True, False, False, False, True]
    before = out.read_bytes()
    again = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}")
    assert again.returncode == 0 and "graded 0 of 7" in again.stderr and out.read_bytes() == before
    metrics = run_cli("compute-metrics", "--prediction_jsonl_files", str(out), "--benchmark", "gsm8k")
    greedy = json.loads(metrics.stdout[metrics.stdout.index("{"):])["gsm8k"]["greedy"]
    assert greedy["accuracy"] == 57.14 and greedy["no_answer"] == 28.57
    assert greedy["accuracy_strict"] == 14.29 and greedy["accuracy_flexible"] == 42.86   # lm-eval's: no cut-off rule
    assert greedy["format_adherence"] == 57.14          # found by boxed/answer_is/hash, not the last-number fallback


def test_override_beats_benchmark_defaults_and_reasoning_tags(tmp_path, sandbox_url):
    out = write(tmp_path / "gsm8k" / "output-greedy.jsonl", [
        {"id": "a", "expected_answer": "2", "generation": "<think>\\boxed{1}</think>so \\boxed{2}"},
        {"id": "b", "expected_answer": "2", "generation": "<think>\\boxed{2} hmm"},
    ])
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}",
                     "++extraction.lm_eval_variants=false", "++extraction.reasoning_tags=['<think>','</think>']")
    assert result.returncode == 0, result.stderr
    rows = read(out)
    assert "is_correct_strict" not in rows[0]
    assert [r["is_correct"] for r in rows] == [True, False] and [r["has_reasoning"] for r in rows] == [True, False]


def test_a_hanging_comparison_times_out_without_stalling_the_rest(sandbox_url):
    # sympy grinds on the real roots of this degree-31 polynomial for many seconds; 1 s is allowed per comparison
    pairs = [("1", "1"), ("x^{31}-7x^{17}+5x^{3}-x+1 > 0", "x > 1"), ("2", "2"), ("3", "4")]
    assert decide_pairs(pairs, settings(sandbox_url, timeout=1.0)) == ["1", "T", "1", "0"]


def test_a_batch_killed_at_the_hard_limit_keeps_earlier_verdicts_and_retries_the_rest(sandbox_url):
    # a pair stuck where the per-pair timer cannot reach it (signals ignored): only the sandbox's kill ends it
    program = ("import json, signal, sys\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
               "request = json.loads(sys.stdin.read())\n"
               "for index, (p, g) in enumerate(request['pairs']):\n"
               "    while p == 'hang':\n        pass\n"
               "    print(request['nonce'], index, '1' if p == g else '0', flush=True)\n")
    client = SandboxClient(sandbox_url)
    batcher = math_grader.SandboxBatcher(client, timeout=0.5, max_timeout=2.0)
    batcher.program = program
    assert batcher.decide([("a", "a"), ("hang", "x"), ("b", "c"), ("hang", "y"), ("d", "d")]) == ["1", "T", "0", "T", "1"]


def test_a_long_batch_hands_the_rest_back_before_its_hard_limit(sandbox_url):
    # each slow pair uses its whole 1 s; the batch's budget is 2 s, so it yields and the rest is sent again:
    # slow pairs are timeouts of their own, no fast pair is ever blamed for a killed batch
    slow = ("x^{31}-7x^{17}+5x^{3}-x+1 > 0", "x > 1")
    pairs = [slow, ("1", "1"), slow, ("2", "3"), slow, ("4", "4"), slow, ("5", "5")]
    batcher = math_grader.SandboxBatcher(SandboxClient(sandbox_url), timeout=1.0, max_timeout=9.0)
    assert batcher.decide(pairs) == ["T", "1", "T", "0", "T", "1", "T", "1"]


def test_a_sandbox_that_goes_away_records_errors_instead_of_aborting(tmp_path):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{unused.getsockname()[1]}"   # nothing listens here
    batcher = math_grader.SandboxBatcher(SandboxClient(address, connect_retries=1), timeout=1.0, max_timeout=10.0)
    assert batcher.decide([("1", "1"), ("2", "2")]) == ["U", "U"]   # undecided: graded again next time


def test_identical_pairs_are_decided_once(monkeypatch, sandbox_url):
    seen = []
    monkeypatch.setattr(math_grader, "decide_pairs", lambda pairs, config: seen.extend(pairs) or ["1"] * len(pairs))
    lines = [{"expected_answer": "5", "generation": "\\boxed{5}"}] * 3 + [{"expected_answer": "6", "generation": "\\boxed{5}"}]
    graded = grade_math_lines(lines, settings(sandbox_url))
    assert seen == [("5", "5"), ("5", "6")] and all(line["is_correct"] for line in graded)


def test_missing_sympy_in_the_sandbox_is_one_clear_error(sandbox_url):
    batcher = math_grader.SandboxBatcher(SandboxClient(sandbox_url), timeout=1.0, max_timeout=10.0)
    batcher.program = "raise ModuleNotFoundError(\"No module named 'sympy'\")"
    with pytest.raises(Exception, match="install python3-sympy"):
        batcher.decide([("1", "1")])


def test_grading_program_runs_standalone_with_the_system_python():
    import subprocess

    program = math_grader.grading_program()
    assert "from nemo_eval" not in program and "import nemo_eval" not in program   # every helper is inlined
    request = json.dumps({"nonce": "n", "timeout": 5, "pairs": [["1/2", "0.5"], ["\\sqrt[3]{5}^2", "5^{1/9}"]]})
    result = subprocess.run(["/usr/bin/python3", "-I", "-c", program], input=request, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.splitlines() == ["n 0 1", "n 1 0"], result.stderr


@pytest.mark.parametrize("override,message", [
    ("++extraction.strategies=[boxed,guess]", "extraction.strategies"),
    ("++extraction.answer_tags=['<a>']", "extraction.answer_tags"),
    ("++math_batch_size=0", "math_batch_size"),
])
def test_bad_settings_are_one_line_errors(tmp_path, override, message):
    out = write(tmp_path / "x" / "output-greedy.jsonl", [{"expected_answer": "1", "generation": "1"}])
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", override)
    assert result.returncode == 2 and message in single_error_line(result.stderr)


def test_code_lines_graded_as_math_name_the_problem(tmp_path):
    out = write(tmp_path / "x" / "output-greedy.jsonl", [{"task_id": "t", "generation": "x"}])
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", "++eval_type=math")
    assert result.returncode == 2 and "expected_answer" in single_error_line(result.stderr)
