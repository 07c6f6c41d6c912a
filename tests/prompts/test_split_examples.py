"""Few-shot examples drawn from a benchmark split (``from_split``): lm-eval's seeded per-item draws,
first_n, an item never its own example, and one-line errors."""

from __future__ import annotations

import json
import random

import pytest

from helpers import cli_env, run_cli, single_error_line
from nemo_eval.errors import UserError
from nemo_eval.prompts.builder import PromptSettings, build_prompt, resolve_prompt

POOL = [{"id": f"train-{i}", "problem": f"p{i}", "answer_text": f"a{i}"} for i in range(30)]


def shots(prompt_text: str) -> list[str]:
    return [line.split(": ")[1] for line in prompt_text.splitlines() if line.startswith("Question: p")]


def test_lm_eval_random_draws_follow_one_seeded_generator():
    resolved = resolve_prompt(PromptSettings(prompt_config="lm-eval/gsm8k", num_few_shots=3), None,
                              lambda split: POOL, "test")
    items = [{"id": f"test-{i}", "problem": f"q{i}"} for i in range(5)]
    prompts = [build_prompt(resolved, item, position=i).messages[0]["content"] for i, item in enumerate(items)]
    rng = random.Random(1234)
    for text in prompts:
        assert shots(text) == [f"p{j}" for j in rng.sample(range(30), 3)]
    assert build_prompt(resolved, items[2], position=2).messages[0]["content"] == prompts[2]   # stable on re-render


def test_own_split_never_shows_the_item_itself(tmp_path):
    config = tmp_path / "own.yaml"
    config.write_text('user: "{examples}Q: {problem}"\nfew_shot_examples:\n  template: "Question: {problem}\\n"\n'
                      "  from_split: test\n  sampler: first_n\n  num: 2\n")
    resolved = resolve_prompt(PromptSettings(prompt_config=str(config)), None, lambda split: POOL[:5], "test")
    first = build_prompt(resolved, POOL[0], position=0).messages[0]["content"]
    assert shots(first) == ["p1", "p2"]
    assert shots(build_prompt(resolved, POOL[3], position=3).messages[0]["content"]) == ["p0", "p1"]


def test_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="run it on a benchmark"):
        resolve_prompt(PromptSettings(prompt_config="lm-eval/gsm8k"))
    with pytest.raises(UserError, match="drop \\+\\+examples_type"):
        resolve_prompt(PromptSettings(prompt_config="lm-eval/gsm8k", examples_type="gsm8k_cot"), None, lambda s: POOL)
    with pytest.raises(UserError, match="has only 30 items"):
        resolve_prompt(PromptSettings(prompt_config="lm-eval/gsm8k", num_few_shots=31), None, lambda s: POOL, "test")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "1", "problem": "2+2?"}) + "\n")
    result = run_cli("generate", f"++input_file={source}", f"++output_file={tmp_path / 'out.jsonl'}",
                     "++prompt_config=lm-eval/gsm8k", "++server.base_url=http://127.0.0.1:9/v1")
    assert result.returncode == 2 and "run it on a benchmark" in single_error_line(result.stderr)


def test_show_prompt_lists_several_items(prepared_data):
    result = run_cli("show-prompt", "gsm8k", "++prompt_config=lm-eval/gsm8k", "++count=3", "++index=5", "--format",
                     "json", env=cli_env(prepared_data))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert len(shown) == 3 and all(p["stop"] == ["Question:", "</s>", "<|im_end|>"] for p in shown)
    text = run_cli("show-prompt", "gsm8k", "++prompt_config=lm-eval/gsm8k", "++count=2", env=cli_env(prepared_data))
    assert text.returncode == 0 and text.stdout.count("# benchmark gsm8k") == 2
    assert "5 drawn from the train split (lm-eval-random)" in text.stdout
