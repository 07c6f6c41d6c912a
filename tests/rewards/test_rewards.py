"""The reward functions called exactly as TRL's GRPOTrainer and veRL call them: argument names, batch
shapes, string and chat completions, hostile completions, items that cannot be graded, the isolation
fallbacks, and agreement with ``nemo-eval evaluate`` on the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from helpers import run_cli
from nemo_eval.evaluation.answer_extraction import MARKERS
from nemo_eval.rewards import (CodeReward, FormatReward, MathReward, RewardWarning, code_reward, compute_score,
                               format_reward, math_reward, score, weighted_sum)

FIXTURES = Path(__file__).resolve().parents[1] / "evaluation" / "fixtures"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def trl_call(function, prompts, completions, rows, **extra):
    """What TRL's GRPOTrainer does (trl/trainer/grpo_trainer.py, _calculate_rewards): every column but
    "prompt"/"completion" becomes a keyword holding one value per completion, plus its own extras."""
    keys = [key for key in rows[0] if key not in ("prompt", "completion")]
    reward_kwargs = {key: [row[key] for row in rows] for key in keys}
    return function(prompts=prompts, completions=completions, **extra, **reward_kwargs)


def test_math_reward_trl_standard_and_conversational_batches():
    rows = [{"prompt": "q1", "answer": "\\frac12"}, {"prompt": "q1", "answer": "\\frac12"},
            {"prompt": "q2", "answer": "7"}, {"prompt": "q2", "answer": "7"}]
    completions = ["so $\\boxed{0.5}$", "The answer is 1/3.", "#### 7", "I give up"]
    standard = trl_call(math_reward, [r["prompt"] for r in rows], completions, rows,
                        completion_ids=[[1, 2]] * 4, trainer_state=None)
    assert standard == [1.0, 0.0, 1.0, 0.0] and all(isinstance(v, float) for v in standard)
    chat_prompts = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    chat = [[{"role": "assistant", "content": text}] for text in completions]
    assert trl_call(math_reward, chat_prompts, chat, rows) == standard
    # the gold column may be called expected_answer or solution (a worked solution: its final answer counts)
    assert math_reward(prompts=None, completions=["\\boxed{4}"], expected_answer=["4"]) == [1.0]
    assert math_reward(completions=["\\boxed{4}", "5"], solution=["2+2 so $\\boxed{4}$", "... \\boxed{4}"]) == [1.0, 0.0]
    assert math_reward(completions=[], answer=[]) == []
    # a multi-task batch: rows of another kind have no gold and get None (TRL: "does not apply", NaN)
    assert math_reward(completions=["\\boxed{1}", "def f(): pass"], answer=["1", None]) == [1.0, None]


def test_trl_helper_when_trl_is_installed():
    pytest.importorskip("trl")   # not a dependency; when it is present its own reward helpers must accept ours
    from trl import GRPOConfig  # noqa: F401 - importable trl is what matters here
    rows = [{"prompt": "q", "answer": "3"}]
    assert trl_call(math_reward, ["q"], ["\\boxed{3}"], rows) == [1.0]


def test_rewards_equal_the_known_evaluate_verdicts_of_the_hand_checked_responses():
    cases = read(FIXTURES / "math_responses.jsonl")   # evaluate grades every one of these right (test_math_eval)
    rewards = math_reward(prompts=["p"] * len(cases), completions=[c["response"] for c in cases],
                          answer=[c["expected"] for c in cases])
    assert [c["why"] for c, r in zip(cases, rewards) if (r == 1.0) != c["equal"]] == []


def test_rewards_equal_evaluate_on_the_same_rows(tmp_path, sandbox_url):
    cases = read(FIXTURES / "math_responses.jsonl")
    rows = [{"id": str(i), "expected_answer": c["expected"], "generation": c["response"]} for i, c in enumerate(cases)]
    rows += [{"id": "cut", "expected_answer": "18", "generation": "so far 18, and", "finish_reason": "length"},
             {"id": "hash", "expected_answer": "18", "generation": "9 * 2 = 18\n#### 18"}]
    for benchmark in ("math-500", "gsm8k"):   # each benchmark's own extraction settings
        out = tmp_path / benchmark / "output-greedy.jsonl"
        out.parent.mkdir(parents=True)
        out.write_text("".join(json.dumps(row) + "\n" for row in rows))
        result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}")
        assert result.returncode == 0, result.stderr
        graded = read(out)
        verdicts = [float(row["is_correct"]) for row in graded]
        # format_reward is the test behind the format_adherence metric: the answer was found by a marker
        assert format_reward(completions=[r["generation"] for r in rows]) == [
            float(row["extraction_strategy"] in MARKERS) for row in graded]
        reward = MathReward(benchmark=benchmark)
        try:
            assert reward(completions=[r["generation"] for r in rows], expected_answer=[r["expected_answer"] for r in rows],
                          finish_reason=[r.get("finish_reason") for r in rows]) == verdicts
        finally:
            reward.close()
    sandboxed = MathReward(sandbox=sandbox_url)
    try:
        assert sandboxed(completions=[r["generation"] for r in rows], answer=[r["expected_answer"] for r in rows],
                         finish_reason=[r.get("finish_reason") for r in rows]) == verdicts
        assert sandboxed.decider.isolation() == "sandbox"
    finally:
        sandboxed.close()


def test_verl_compute_score_single_and_batched():
    assert compute_score(data_source="openai/gsm8k", solution_str="... #### 72", ground_truth="72",
                         extra_info={"split": "train", "index": 0}) == 1.0
    assert compute_score("lighteval/MATH", "The answer is $\\frac{\\sqrt3}{2}$", "\\frac{\\sqrt{3}}{2}") == 1.0
    assert compute_score("lighteval/MATH", "The answer is 2", "3", None) == 0.0
    assert compute_score(data_source=["openai/gsm8k", "lighteval/MATH"], solution_str=["#### 5", "\\boxed{x^2}"],
                         ground_truth=["5", "x^{2}"], extra_info=[None, None]) == [1.0, 1.0]
    assert compute_score("mbpp", "def f(x):\n    return x", ["assert f(1) == 1", "assert f(2) == 3"], {}) == 0.5
    # veRL's batch reward manager: plural keyword names, one list each, and its reward_kwargs
    assert compute_score(**verl_batch(list)) == [1.0, 0.0, 1.0]


def verl_batch(array) -> dict:
    return dict(data_sources=array(["openai/gsm8k", "openai/gsm8k", "mbpp"]),
                solution_strs=["#### 5", "#### 6", "def f():\n    return 1"],
                ground_truths=["5", "5", json.dumps({"test_list": ["assert f() == 1"]})],
                extra_infos=array([{"index": 0}, {"index": 1}, {"index": 2}]), some_reward_kwarg=1)


def test_verl_batch_with_numpy_columns():
    numpy = pytest.importorskip("numpy")   # veRL's non-tensor batch columns are numpy object arrays
    assert compute_score(**verl_batch(lambda values: numpy.array(values, dtype=object))) == [1.0, 0.0, 1.0]


def test_plain_signature_format_reward_and_weighted_sum():
    assert score("x = 3", "3") == 1.0 and score("\\boxed{4}", "3") == 0.0
    assert math_reward.score([{"role": "assistant", "content": "\\boxed{2}"}], 2) == 1.0
    texts = ["\\boxed{1}", "<answer>2</answer>", "the result was 3", "The answer is 4."]
    assert format_reward(prompts=None, completions=texts) == [1.0, 1.0, 0.0, 1.0]
    boxed_only = FormatReward(require="boxed")
    assert boxed_only(completions=texts) == [1.0, 0.0, 0.0, 0.0]
    think = FormatReward(require="tag", reasoning_tags=("<think>", "</think>"), partial=True)
    assert think(completions=["<think>hm</think><answer>2</answer>", "<think>hm</think> 2", "<answer>2</answer>",
                              "<think>a</think><think>b</think><answer>2</answer>"]) == [1.0, 0.5, 0.5, 0.5]
    combined = weighted_sum((math_reward, 1.0), (format_reward, 0.25))
    assert combined.__name__ == "weighted_reward" and math_reward.__name__ == "math_reward"
    assert combined(prompts=["p", "p"], completions=["\\boxed{3}", "3"], answer=["3", "4"]) == [1.25, 0.0]


HOSTILE = [
    "x" * 5_000_000 + " \\boxed{3}",                      # huge
    "\\boxed{" * 20000 + "3",                                # unclosed, deeply nested
    "The answer is \\boxed{3",                               # unclosed
    "$" + "\\frac{1}{" * 5000 + "2" + "}" * 5000 + "$",       # deeply nested LaTeX
    "\\boxed{9^{9^{9^{9^{9}}}}}",                            # a power tower
    "\\boxed{10^{10^{10}}!}",
    "\\boxed{\\sqrt{" * 3000 + "}" * 3000 + "}",
    "\x00\ud800 \\boxed{\udfff}",                            # NUL and lone surrogates
    "(" * 100000,
    None,
]


def test_hostile_completions_score_without_hanging_or_raising():
    reward = MathReward(timeout=2.0)
    try:
        with pytest.warns(RewardWarning, match=r"could not be graded \(.*1 too long"):
            values = reward(prompts=None, completions=HOSTILE, answer=["3"] * len(HOSTILE))
        assert len(values) == len(HOSTILE) and all(v in (0.0, 1.0) for v in values)
        assert values[0] == 0.0 and values[4] == 0.0   # 5 MB: not graded (counted); a power tower: refused
        assert reward(completions=["x" * 150_000 + " \\boxed{3}"], answer=["3"]) == [1.0]
        # the workers survive it: the next batch is graded normally
        assert reward(completions=["\\boxed{5}"], answer=["5"]) == [1.0]
        with pytest.warns(RewardWarning, match="1 of 10 completions could not be graded"):
            assert format_reward(completions=HOSTILE) == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
        with pytest.warns(RewardWarning, match=r"\(1 too long\)"):
            assert code_reward(completions=["x" * 300_000], test_list=[["assert True"]]) == [0.0]
    finally:
        reward.close()


def test_ungradable_items_score_zero_are_counted_and_warned_about():
    reward = MathReward(timeout=1.0)
    hanging = "x^{31}-7x^{17}+5x^{3}-x+1 > 0"   # sympy grinds on this for many seconds
    try:
        with pytest.warns(RewardWarning, match=r"1 of 3 completions could not be graded \(1 timeout\)"):
            assert reward(completions=["\\boxed{1}", f"\\boxed{{{hanging}}}", "\\boxed{2}"],
                          answer=["1", "x > 1", "2"]) == [1.0, 0.0, 1.0]
        assert reward.stats.as_dict() == {"scored": 3, "ungraded": {"timeout": 1}}
    finally:
        reward.close()


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_without_a_jail_the_fallback_is_announced_once_and_still_isolated():
    # no bubblewrap on the PATH (as in an unprivileged container): plain worker processes, one warning
    code = ("from nemo_eval.rewards import MathReward, CodeReward\n"
            "r = MathReward()\n"
            "print(r(completions=['\\\\boxed{2}'], answer=['2']), r(completions=['3'], answer=['2']), r.decider.isolation())\n"
            "c = CodeReward(timeout=2)\n"
            "print(c(completions=['def f():\\n    return 1'], test_list=[['assert f() == 1']]))\n")
    result = _run_python(code, PATH="/nonexistent")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[1.0] [0.0] process", "[1.0]"]
    assert result.stderr.count("no bubblewrap jail can be made here, so math answers") == 1
    assert result.stderr.count("no bubblewrap jail can be made here, so code runs") == 1


@pytest.mark.slow
def test_an_unreachable_sandbox_falls_back_to_local_workers_once(unused_port=None):
    from nemo_eval.processes import free_port

    reward = MathReward(sandbox=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.warns(RewardWarning, match="cannot grade"):
            assert reward(completions=["\\boxed{2}"], answer=["2"]) == [1.0]
        with warnings.catch_warnings():
            warnings.simplefilter("error", RewardWarning)   # announced once only
            assert reward(completions=["\\boxed{3}"], answer=["2"]) == [0.0]
    finally:
        reward.close()


def test_a_missing_gold_column_is_a_clear_error():
    with pytest.raises(ValueError, match="pass one of answer, expected_answer, solution"):
        math_reward(prompts=["p"], completions=["1"], question=["q"])
    with pytest.raises(ValueError, match="has 1 values for 2 completions"):
        math_reward(completions=["1", "2"], answer=["1"])


MBPP_ROW = {"test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0",
                          "assert add(2, 2) == 5"], "entry_point": "add"}


def test_code_reward_share_of_tests_and_humaneval_rows(prepared_data):
    reward = CodeReward(timeout=3.0)
    try:
        rows = [MBPP_ROW] * 4
        completions = ["```python\ndef add(a, b):\n    return a + b\n```",              # 3 of 4 (the 4th is wrong)
                       "def add(a, b):\n    return 0",                                   # 2 of 4
                       [{"role": "assistant", "content": "def add(a, b):\n    raise SystemExit(0)"}],
                       "no code here"]
        assert trl_call(reward, ["p"] * 4, completions, rows) == [0.75, 0.5, 0.0, 0.0]
        mixed = [{"test_list": MBPP_ROW["test_list"], "answer": None}, {"test_list": None, "answer": "3"}]
        assert trl_call(reward, ["p", "p"], [completions[0], "\\boxed{3}"], mixed) == [0.75, None]
        assert trl_call(weighted_sum((reward, 1.0), (math_reward, 1.0)), ["p", "p"], [completions[0], "\\boxed{3}"],
                        mixed) == [0.75, 1.0]
        item = read(prepared_data / "humaneval" / "test.jsonl")[0]
        row = {"test": item["test"], "entry_point": item["entry_point"], "code_prompt": item["prompt"]}
        assert trl_call(reward, ["p", "p"], [item["canonical_solution"], "    return None\n"], [row, row]) == [1.0, 0.0]
        mbpp = read(prepared_data / "mbpp" / "test.jsonl")[0]
        assert code_reward.score(mbpp["reference_solution"], mbpp) == 1.0
    finally:
        reward.close()


@pytest.mark.slow
def test_code_reward_survives_infinite_loops_fork_bombs_and_floods():
    reward = CodeReward(timeout=1.0)
    hostile = ["def add(a, b):\n    while True:\n        pass",
               "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
               "def add(a, b):\n    print('x' * 100000000)\n    return a + b",
               "x = bytearray(8 << 30)\n",
               "import sys\nsys.setrecursionlimit(10**6)\ndef add(a, b):\n    return add(a, b)",
               "def add(a, b):\n    return a + b"]
    try:
        values = reward(completions=hostile, test_list=[MBPP_ROW["test_list"]] * len(hostile),
                        entry_point=["add"] * len(hostile))
        assert values[:5] == [0.0] * 5 and values[5] == 0.75
    finally:
        reward.close()


def test_code_rewards_equal_evaluate_on_the_same_rows(tmp_path, prepared_data, sandbox_url):
    rows = []
    for benchmark in ("humaneval", "mbpp"):
        items = read(prepared_data / benchmark / "test.jsonl")[:3]
        out = tmp_path / benchmark / "output-greedy.jsonl"
        out.parent.mkdir(parents=True)
        lines = [{**item, "generation": generation} for item in items
                 for generation in (item.get("canonical_solution") or item["reference_solution"], "    return None\n",
                                    "while True:\n    pass\n")]
        out.write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = run_cli("evaluate", f"++prediction_jsonl_files=[{out}]", f"++sandbox_address={sandbox_url}",
                         "++timeout=2")
        assert result.returncode == 0, result.stderr
        rows += read(out)
    columns = {"test": [r["test"] for r in rows], "entry_point": [r["entry_point"] for r in rows],
               "code_prompt": [r.get("prompt") for r in rows], "test_list": [r.get("test_list") for r in rows]}
    expected = [float(r["is_correct"]) for r in rows]
    assert sum(expected) == 6
    for reward in (CodeReward(sandbox=sandbox_url, timeout=2.0), CodeReward(timeout=2.0)):
        try:
            values = reward(prompts=["p"] * len(rows), completions=[r["generation"] for r in rows], **columns)
            assert [float(v == 1.0) for v in values] == expected
        finally:
            reward.close()


@pytest.mark.slow
def test_without_a_jail_code_that_escapes_its_session_is_still_killed():
    # plain processes (no bubblewrap on the PATH): a fork bomb, and a child that leaves the session and
    # sleeps forever; as root each program runs as its own slot uid, and every process of it is killed
    code = ("import os\n"
            "from nemo_eval.rewards import CodeReward\n"
            "from nemo_eval.rewards.code_rewards import SLOT_UID_BASE, _has_processes\n"
            "escape = 'import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(100000)\\n'\n"
            "bomb = 'import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass\\n'\n"
            "c = CodeReward(timeout=1, workers=2)\n"
            "good = 'def add(a, b):\\n    return a + b'\n"
            "print(c(completions=[escape, bomb, good], test_list=[['assert add(1, 1) == 2']] * 3))\n"
            "print(os.geteuid() != 0 or not any(_has_processes(SLOT_UID_BASE + i) for i in range(8)))\n")
    result = _run_python(code, PATH="/nonexistent")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[0.0, 0.0, 1.0]", "True"]
