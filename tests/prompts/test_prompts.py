"""Prompt files load and render exactly; few-shot sets are the standard ones; show-prompt works."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from helpers import MIRROR_BENCHMARKS, cli_env, run_cli, single_error_line
from nemo_eval.datasets.prepare import load_items
from nemo_eval.datasets.spec import get_benchmark
from nemo_eval.errors import UserError
from nemo_eval.prompts import (EXAMPLE_SETS, MODEL_TEMPLATES, PROMPT_CONFIGS, PromptSettings, build_prompt,
                               resolve_prompt)


def test_every_prompt_file_loads():
    assert {"generic/math", "generic/codegen", "generic/mbpp", "generic/math-with-code", "lm-eval/gsm8k-cot",
            "lm-eval/minerva-math"} <= set(PROMPT_CONFIGS.names())
    assert {"gsm8k_cot", "minerva_math", "gsm8k_text_with_code", "mbpp_3shot"} <= set(EXAMPLE_SETS.names())
    assert {"llama3-instruct", "chatml", "qwen", "plain"} <= set(MODEL_TEMPLATES.names())
    for name in PROMPT_CONFIGS.names():
        PROMPT_CONFIGS.get(name)


def test_standard_few_shot_sets():
    cot = EXAMPLE_SETS.get("gsm8k_cot").examples
    assert len(cot) == 8
    assert cot[0]["problem"].startswith("There are 15 trees in the grove.")
    assert [e["expected_answer"] for e in cot] == ["6", "5", "39", "8", "9", "29", "33", "8"]
    assert all(e["solution"].endswith(f"The answer is {e['expected_answer']}.") for e in cot)
    minerva = EXAMPLE_SETS.get("minerva_math").examples
    assert [e["expected_answer"] for e in minerva] == ["[2,5)", "24", "16", "-\\frac{2}{3}"]
    assert all("Final Answer: The final answer is" in e["solution"] for e in minerva)
    mbpp = EXAMPLE_SETS.get("mbpp_3shot").examples
    assert [e["id"] for e in mbpp] == ["2", "3", "4"]


def test_mbpp_shots_pass_their_own_tests(tmp_path):
    for example in EXAMPLE_SETS.get("mbpp_3shot").examples:
        script = tmp_path / "shot.py"
        script.write_text(example["solution"] + "\n" + example["test_asserts"] + "\n", encoding="utf-8")
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


def test_text_with_code_outputs_are_what_the_code_prints(tmp_path):
    """Each ```python block in the code few-shot set really prints the ```output shown after it."""
    pattern = re.compile(r"```python\n(.*?)```\n```output\n(.*?)```", re.S)
    for example in EXAMPLE_SETS.get("gsm8k_text_with_code").examples:
        blocks = pattern.findall(example["solution"])
        assert blocks, example["problem"]
        for code, shown in blocks:
            script = tmp_path / "block.py"
            script.write_text(code, encoding="utf-8")
            result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
            assert result.stdout == shown, (example["problem"], result.stdout, shown)
        assert f"\\boxed{{{example['expected_answer']}}}" in example["solution"]


def test_literal_braces_and_item_braces():
    resolved = resolve_prompt(PromptSettings(prompt_config="generic/math"))
    prompt = build_prompt(resolved, {"problem": "Compute $\\frac{1}{2}$ and {x}."})
    user = prompt.messages[-1]["content"]
    assert "inside \\boxed{}." in user
    assert user.endswith("Compute $\\frac{1}{2}$ and {x}.")  # item text is never re-formatted
    assert prompt.text is None


@pytest.mark.parametrize("template,expected", [
    ("llama3-instruct", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"),
    ("plain", "S\n\nU"),
])
def test_model_templates_render_exactly(tmp_path, template, expected):
    config = tmp_path / "c.yaml"
    config.write_text('system: "S"\nuser: "{problem}"\nstop: ["###"]\n', encoding="utf-8")
    prompt = build_prompt(resolve_prompt(PromptSettings(prompt_config=str(config), prompt_template=template)),
                          {"problem": "U"})
    assert prompt.text == expected
    assert prompt.stop[0] == "###" and set(MODEL_TEMPLATES.get(template).stop) <= set(prompt.stop)


def test_qwen_template_adds_its_default_system_message():
    resolved = resolve_prompt(PromptSettings(prompt_template="qwen"))
    text = build_prompt(resolved, {"problem": "1+1?"}).text
    assert text.startswith("<|im_start|>system\nYou are Qwen") and text.endswith("<|im_start|>assistant\n")


def test_few_shot_rendering_matches_lm_eval_layout():
    resolved = resolve_prompt(PromptSettings(prompt_config="lm-eval/gsm8k-cot", examples_type="gsm8k_cot"))
    assert len(resolved.examples) == 8
    user = build_prompt(resolved, {"problem": "How many?"}).messages[-1]["content"]
    assert user.startswith("Q: There are 15 trees in the grove.")
    assert user.count("\nA: ") == 8 and user.endswith("The answer is 8.\n\nQ: How many?\nA:")


def test_every_benchmark_default_prompt_renders(prepared_data):
    for name in MIRROR_BENCHMARKS:
        spec = get_benchmark(name)
        resolved = resolve_prompt(PromptSettings(), spec.defaults)
        for item in load_items(name, data_dir=prepared_data)[:5]:
            prompt = build_prompt(resolved, item)
            assert item["problem"] in prompt.messages[-1]["content"]


@pytest.mark.parametrize("settings,message", [
    (PromptSettings(num_few_shots=2), r"needs \+\+examples_type"),
    (PromptSettings(examples_type="minerva_math", num_few_shots=5), "has only 4 examples"),
    (PromptSettings(prompt_config="generic/codegen", examples_type="gsm8k_cot"), "does not take few-shot"),
    (PromptSettings(prompt_config="generic/nope"), "unknown prompt config"),
    (PromptSettings(prompt_template="llama2"), "unknown model template"),
])
def test_bad_prompt_settings_are_user_errors(settings, message):
    with pytest.raises(UserError, match=message):
        resolve_prompt(settings)


def test_missing_item_field_names_the_field(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text('user: "{question}"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"\{question\}.*item fields: problem"):
        build_prompt(resolve_prompt(PromptSettings(prompt_config=str(config))), {"problem": "x"})


def test_unknown_key_in_a_prompt_file_is_rejected(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text('user: "{problem}"\nstops: ["x"]\n', encoding="utf-8")
    with pytest.raises(UserError, match="unknown key"):
        resolve_prompt(PromptSettings(prompt_config=str(config)))


def test_show_prompt_cli(prepared_data):
    env = cli_env(prepared_data)
    result = run_cli("show-prompt", "gsm8k", env=env)
    assert result.returncode == 0, result.stderr
    assert "Janet’s ducks lay 16 eggs per day" in result.stdout and "generic/math" in result.stdout
    result = run_cli("show-prompt", "math-500", "++prompt_config=lm-eval/minerva-math", "++examples_type=minerva_math",
                     "++prompt_template=llama3-instruct", "++index=2", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["prompt"].startswith("<|begin_of_text|>") and body["prompt"].count("Final Answer:") == 4
    assert body["stop"] == ["Problem:", "<|eot_id|>"]
    result = run_cli("show-prompt", "humaneval", "++id=HumanEval/3", env=env)
    assert result.returncode == 0 and "def below_zero" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["gsm8k", "++num_fewshot=3"], "num_fewshot"),
    (["gsm8k", "++index=99999"], "out of range"),
    (["gsm8k", "++split=dev"], "no split 'dev'"),
    (["gsm8k", "++prompt_config=missing.yaml"], "does not exist"),
    (["gsm8k", "index=abc"], "index"),
])
def test_show_prompt_errors(prepared_data, args, message):
    result = run_cli("show-prompt", *args, env=cli_env(prepared_data))
    assert result.returncode == 2
    assert message in single_error_line(result.stderr)


def test_show_prompt_and_generate_name_the_benchmark_the_same_way(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    by_word = run_cli("show-prompt", "gsm8k", "++index=2", env=env)
    by_setting = run_cli("show-prompt", "++benchmark=gsm8k", "++index=2", env=env)
    assert by_word.returncode == 0 and by_word.stdout == by_setting.stdout
    dry = run_cli("generate", "gsm8k", f"++output_dir={tmp_path / 'r'}", "++dry_run=true", env=env)
    assert dry.returncode == 0 and "Janet" in dry.stdout, dry.stderr
    for command in ("show-prompt", "generate"):
        twice = run_cli(command, "gsm8k", "++benchmark=math-500", env=env)
        assert twice.returncode == 2 and "named twice" in single_error_line(twice.stderr)
    missing = run_cli("show-prompt", env=env)
    assert missing.returncode == 2 and "name the benchmark" in single_error_line(missing.stderr)
