"""lm-eval-identical prompts: the first 20 items of gsm8k (5- and 8-shot), gsm8k_cot, minerva_math (on
MATH-500), mbpp and humaneval rendered by lm-evaluation-harness itself (offline, on the same raw files)
and by ``nemo-eval show-prompt``, compared byte for byte: the raw text a completions request sends
(``++prompt_template=plain``), the chat message lm-eval's ``--apply_chat_template`` builds, and the stop
strings."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, cli_env, lm_eval_python, mirror_dir, run_cli

ITEMS = 20
CASES = {   # lm-eval task, its num_fewshot (None: the task's), our benchmark, our settings
    "gsm8k-5shot": ("gsm8k", None, "gsm8k", ["++prompt_config=lm-eval/gsm8k"]),
    "gsm8k-8shot": ("gsm8k", 8, "gsm8k", ["++prompt_config=lm-eval/gsm8k", "++num_few_shots=8"]),
    "gsm8k_cot": ("gsm8k_cot", None, "gsm8k", ["++prompt_config=lm-eval/gsm8k-cot", "++examples_type=gsm8k_cot"]),
    "minerva_math": ("minerva_math500", None, "math-500",
                     ["++prompt_config=lm-eval/minerva-math", "++examples_type=lm_eval_minerva_math", "++num_few_shots=4"]),
    "mbpp": ("mbpp", None, "mbpp", ["++prompt_config=lm-eval/mbpp", "++examples_type=lm_eval_mbpp", "++num_few_shots=3"]),
    "humaneval": ("humaneval", None, "humaneval", ["++prompt_config=lm-eval/humaneval"]),
}


def lm_eval_files(task: str, tmp_path: Path) -> dict[str, str]:
    """The raw files of the task's dataset, as JSON lines in the layout of its hub copy."""
    mirror = Path(mirror_dir() or "")
    if task.startswith("gsm8k"):
        return {"train": str(mirror / "gsm8k" / "train.jsonl"), "test": str(mirror / "gsm8k" / "test.jsonl")}
    if task == "minerva_math500":
        return {"test": str(mirror / "math-500" / "test.jsonl")}
    target = tmp_path / f"{task}.jsonl"
    if task == "mbpp":   # the hub's "full" test split: tasks 11-510
        rows = [json.loads(line) for line in (mirror / "mbpp" / "mbpp.jsonl").read_text().splitlines()]
        target.write_text("".join(json.dumps(r) + "\n" for r in rows if 11 <= r["task_id"] <= 510))
    else:
        target.write_bytes(gzip.decompress((mirror / "humaneval" / "HumanEval.jsonl.gz").read_bytes()))
    return {"test": str(target)}


def lm_eval_render(task: str, num_fewshot, tmp_path: Path) -> list[dict]:
    request = {"task": task, "num_fewshot": num_fewshot, "limit": ITEMS, "data_files": lm_eval_files(task, tmp_path)}
    env = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-cache"),
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(lm_eval_python()), str(REPO / "tests" / "support" / "lm_eval_prompts.py")],
                            input=json.dumps(request), capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rendered = json.loads(result.stdout)
    assert [r["doc_id"] for r in rendered] == list(range(ITEMS))
    return rendered


def ours(benchmark: str, settings: list[str], data_dir: Path, *extra: str) -> list[dict]:
    result = run_cli("show-prompt", benchmark, *settings, *extra, f"++count={ITEMS}", "--format", "json",
                     env=cli_env(data_dir))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_byte_identical_with_lm_evaluation_harness(case, prepared_data, tmp_path):
    if not mirror_dir():
        pytest.skip("needs the data mirror (NEMO_EVAL_DATA_MIRROR)")
    task, num_fewshot, benchmark, settings = CASES[case]
    theirs = lm_eval_render(task, num_fewshot, tmp_path)
    raw = ours(benchmark, settings, prepared_data, "++prompt_template=plain")
    chat = ours(benchmark, settings, prepared_data)
    for index, (lm, text, messages) in enumerate(zip(theirs, raw, chat)):
        assert text["prompt"] == lm["text"], f"{case} item {index}: raw text differs"
        assert text["stop"] == lm["until"] == messages["stop"], f"{case} item {index}: stop strings differ"
        assert messages["messages"] == lm["messages"], f"{case} item {index}: chat messages differ"
