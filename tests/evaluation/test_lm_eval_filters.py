"""lm-eval's GSM8K filters follow the prompt: gsm8k's strict filter reads "#### N", gsm8k_cot's
"The answer is N."; the prompt config named in a generation's .meta.json picks it."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli
from nemo_eval.evaluation.answer_modes import lm_eval_gsm8k

LINES = [
    {"id": "a", "expected_answer": "18", "generation": "So 9 * 2 = 18. The answer is 18.\n\nQ: next"},
    {"id": "b", "expected_answer": "18", "generation": "9 * 2 = 18\n#### 18"},
    {"id": "c", "expected_answer": "1000", "generation": "The answer is 1,000."},
]


def test_filters_by_task():
    assert lm_eval_gsm8k(LINES[0]["generation"], "gsm8k_cot") == ("18", "18.")   # "." dropped when matching
    assert lm_eval_gsm8k(LINES[0]["generation"], "gsm8k") == (None, "18.")
    assert lm_eval_gsm8k(LINES[1]["generation"], "gsm8k_cot") == (None, "18")
    assert lm_eval_gsm8k(LINES[2]["generation"], "gsm8k_cot")[0] == "1,000"


def write(path: Path, prompt_config: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    Path(f"{path}.meta.json").write_text(json.dumps({"settings": {"input": {"benchmark": "gsm8k"},
                                                                  "prompt": {"config": prompt_config}}}))
    return path


def strict_verdicts(path: Path, sandbox_url: str, *extra: str) -> list[bool]:
    result = run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", f"++sandbox_address={sandbox_url}", *extra)
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["is_correct_strict"] for line in path.read_text().splitlines()]


def test_the_prompt_config_picks_the_filter(tmp_path, sandbox_url):
    cot = write(tmp_path / "cot" / "gsm8k" / "output-greedy.jsonl", "lm-eval/gsm8k-cot")
    assert strict_verdicts(cot, sandbox_url) == [True, False, True]
    plain = write(tmp_path / "plain" / "gsm8k" / "output-greedy.jsonl", "lm-eval/gsm8k")
    assert strict_verdicts(plain, sandbox_url) == [False, True, False]
    forced = write(tmp_path / "forced" / "gsm8k" / "output-greedy.jsonl", "lm-eval/gsm8k-cot")
    assert strict_verdicts(forced, sandbox_url, "++extraction.lm_eval_task=gsm8k") == [False, True, False]
