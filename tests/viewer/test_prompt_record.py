"""The prompt the viewer shows is the prompt that was sent: generations made by the real ``generate``
step against the test server (which logs every request body), chat and raw-text completions with
few-shot examples, rebuilt from the record in the output's meta file and compared byte for byte."""

from __future__ import annotations

import html
import json
import urllib.parse
import urllib.request

import pytest

from helpers import cli_env, openai_test_server, run_cli
from nemo_eval.viewer.render import prompt_as_sent
from viewer_runs import serve

SETUPS = {
    "chat": [],
    "completions": ["++prompt_config=lm-eval/gsm8k-cot", "++examples_type=gsm8k_cot", "++num_few_shots=3",
                    "++prompt_template=llama3-instruct", "++system_message=Be brief."],
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_recorded_prompt_equals_the_request_body(prepared_data, tmp_path, setup):
    log = tmp_path / "requests.jsonl"
    out = tmp_path / "run"
    with openai_test_server("--log-requests", str(log)) as url:
        result = run_cli("generate", "gsm8k", f"++output_dir={out}", f"++server.base_url={url}", "++max_samples=4",
                         *SETUPS[setup], env=cli_env(prepared_data))
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    path = out / "gsm8k" / "output-greedy.jsonl"
    meta = json.loads((path.parent / (path.name + ".meta.json")).read_text())
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert meta["server"]["type"] == "openai" and len(sent) == len(rows) == 4
    for row in rows:
        prompt, note = prompt_as_sent(meta, row)
        assert note == ""
        text_of = lambda b: b.get("prompt") or "".join(m["content"] for m in b["messages"])  # noqa: E731
        body = next(b for b in sent if text_of(b).endswith(row["problem"]) or f"{row['problem']}\n" in text_of(b))
        if setup == "chat":
            assert prompt["messages"] == body["messages"] and prompt["text"] is None
        else:
            assert prompt["text"] == body["prompt"] and "Be brief." in prompt["text"]
        assert prompt["stop"] == body.get("stop", [])
    with serve(out) as viewer:
        query = urllib.parse.urlencode({"run": "run", "benchmark": "gsm8k", "id": rows[0]["id"]})
        with urllib.request.urlopen(f"{viewer}/sample?{query}", timeout=30) as response:
            page = html.unescape(response.read().decode())
    shown = prompt_as_sent(meta, rows[0])[0]
    assert (shown["text"] or shown["messages"][-1]["content"]) in page
