"""The generation step against a real OpenAI-compatible test server process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (cli_env, openai_test_server, read_lines, read_lines_untimed, reset_stats, run_cli, server_stats,
                     single_error_line)

FAULTS = "429:0.15,500:0.1,hang:0.05,garbage:0.1,drop:0.1,badretry:0.05,nullmsg:0.05"
# Generous request timeout: tests that count requests must not see retries caused by a slow, loaded
# machine. Only the fault test, which injects hangs, shortens it.
FAST_RETRY = ["++server.retry_base_delay=0.02", "++server.retry_max_delay=0.2"]


def generate(env, url, output, *extra, items=40, timeout=60):
    return run_cli("generate", "++benchmark=gsm8k", f"++output_file={output}", f"++server.base_url={url}",
                   f"++max_samples={items}", f"++server.request_timeout={timeout}", *FAST_RETRY, *extra, env=env)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in read_lines(path)]


def test_faults_are_retried_and_every_item_completes(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    with openai_test_server() as clean_url:
        assert generate(env, clean_url, tmp_path / "clean.jsonl").returncode == 0
    with openai_test_server("--faults", FAULTS, "--hang-seconds", "2") as url:
        result = generate(env, url, tmp_path / "faulty.jsonl", "++max_concurrent_requests=16", timeout=1)
        stats = server_stats(url)
    assert result.returncode == 0, result.stderr
    assert set(stats["faults"]) == {"429", "500", "hang", "garbage", "drop", "badretry", "nullmsg"}, stats["faults"]
    # every item answered; a request that outlived the client's timeout is (rightly) sent again,
    # so under load an item may be answered twice - the output must still hold it exactly once
    assert len(stats["completed"]) == 40 and min(stats["completed"].values()) >= 1
    assert read_lines_untimed(tmp_path / "faulty.jsonl") == read_lines_untimed(tmp_path / "clean.jsonl")
    out = rows(tmp_path / "faulty.jsonl")
    assert [r["id"] for r in out] == [f"test-{i}" for i in range(40)], "input order"
    for row in out:
        assert row["generation"].startswith("Let me work it out") and row["finish_reason"] == "stop"
        assert row["num_generated_tokens"] == len(row["generation"].split())
        assert "error" not in row and row["expected_answer"]  # input fields kept


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_uninterrupted(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    reference, output = tmp_path / "reference.jsonl", tmp_path / "killed.jsonl"
    partial = Path(str(output) + ".partial")
    with openai_test_server("--delay", "0.05") as url:
        assert generate(env, url, reference, "++max_concurrent_requests=4", items=80).returncode == 0
        reset_stats(url)
        command = [sys.executable, "-m", "nemo_eval", "generate", "++benchmark=gsm8k", f"++output_file={output}",
                   f"++server.base_url={url}", "++max_samples=80", "++max_concurrent_requests=4",
                   "++server.request_timeout=60", *FAST_RETRY]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (partial.exists() and len(read_lines(partial)) >= 12):
            assert proc.poll() is None and time.monotonic() < deadline, "generation ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not output.exists(), "the final file appears only when every item is done"
        finished = {json.loads(line)["id"] for line in read_lines(partial)}
        with open(partial, "a", encoding="utf-8") as handle:  # a write torn by the kill
            handle.write('{"id": "test-79", "generation": "half a li')
        reset_stats(url)
        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        stats = server_stats(url)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert read_lines_untimed(output) == read_lines_untimed(reference), \
        "resumed output equals an uninterrupted run, line for line"
    assert not partial.exists()
    assert sum(stats["attempts"].values()) == 80 - len(finished), "no finished request is sent again"


def test_items_failing_for_good_are_recorded_then_retried_on_rerun(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    output = tmp_path / "out.jsonl"
    with openai_test_server("--faults", "500:1.0", "--max-faults-per-prompt", "1000") as url:
        failed = generate(env, url, output, "++server.max_retries=2", items=5)
    assert failed.returncode == 1
    assert "5 item(s) failed" in failed.stderr and "failed item 0 (id test-0)" in failed.stderr
    assert all(r["error"].startswith("gave up after 3 attempts") and r["generation"] is None for r in rows(output))
    with openai_test_server() as url:
        fixed = generate(env, url, output, "++server.max_retries=2", items=5)
        assert sum(server_stats(url)["attempts"].values()) == 5
    assert fixed.returncode == 0, fixed.stderr
    assert all("error" not in r and r["generation"] for r in rows(output))


def test_rerun_is_noop_changed_settings_refused_overwrite_allowed(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    output = tmp_path / "out.jsonl"
    with openai_test_server() as url:
        assert generate(env, url, output, items=5).returncode == 0
        before = output.read_bytes()
        again = generate(env, url, output, items=5)
        assert again.returncode == 0 and "nothing to do" in again.stderr
        assert sum(server_stats(url)["attempts"].values()) == 5
        changed = generate(env, url, output, "++inference.temperature=0.3", items=5)
        assert changed.returncode == 2
        assert "changed: request.temperature" in single_error_line(changed.stderr)
        assert output.read_bytes() == before
        replaced = generate(env, url, output, "++inference.temperature=0.3", "++overwrite=true", items=5)
        assert replaced.returncode == 0
        extended = generate(env, url, output, "++inference.temperature=0.3", items=8)
        assert extended.returncode == 0 and len(read_lines(output)) == 8


def test_sampled_runs_send_their_seed_and_use_the_standard_names(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    with openai_test_server() as url:
        for seed in (None, 0, 1):
            extra = [] if seed is None else [f"++inference.random_seed={seed}"]
            result = run_cli("generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}", f"++server.base_url={url}",
                             "++max_samples=6", *extra, env=env)
            assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "gsm8k").glob("*.jsonl"))
    assert names == ["output-greedy.jsonl", "output-rs0.jsonl", "output-rs1.jsonl"]
    meta = json.loads((tmp_path / "gsm8k" / "output-rs1.jsonl.meta.json").read_text())
    assert meta["settings"]["request"] == {"max_tokens": 2048, "temperature": 0.7, "top_p": 0.95, "seed": 1}
    greedy = json.loads((tmp_path / "gsm8k" / "output-greedy.jsonl.meta.json").read_text())
    assert greedy["settings"]["request"] == {"max_tokens": 2048, "temperature": 0.0, "top_p": 1.0}
    gens = {name: [r["generation"] for r in rows(tmp_path / "gsm8k" / name)] for name in names}
    assert gens["output-rs0.jsonl"] != gens["output-rs1.jsonl"], "the seed reaches the server"


def test_completions_endpoint_sends_the_rendered_text(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    with openai_test_server() as url:
        dry = generate(env, url, tmp_path / "o.jsonl", "++prompt_template=llama3-instruct", "++dry_run=true", items=3)
        assert dry.returncode == 0 and sum(server_stats(url)["attempts"].values()) == 0, "dry run sends nothing"
        body = json.loads(dry.stdout.split("\n", 1)[1])
        assert body["prompt"].startswith("<|begin_of_text|>") and body["stop"] == ["<|eot_id|>"]
        assert "messages" not in body and not (tmp_path / "o.jsonl").exists()
        result = generate(env, url, tmp_path / "o.jsonl", "++prompt_template=llama3-instruct", items=3)
    assert result.returncode == 0, result.stderr
    assert all(r["generation"] for r in rows(tmp_path / "o.jsonl"))


def test_input_file_instead_of_a_benchmark(tmp_path):
    source = tmp_path / "mine.jsonl"
    source.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"What is {i}+{i}?"}) + "\n" for i in range(4)))
    with openai_test_server() as url:
        result = run_cli("generate", f"++input_file={source}", f"++output_file={tmp_path / 'out.jsonl'}",
                         f"++server.base_url={url}", env=cli_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in rows(tmp_path / "out.jsonl")] == ["q0", "q1", "q2", "q3"]


def test_api_key_is_read_from_the_named_variable(prepared_data, tmp_path):
    with openai_test_server("--api-key", "sekret") as url:
        missing = generate(cli_env(prepared_data), url, tmp_path / "a.jsonl", items=2)
        assert missing.returncode == 2
        assert "OPENAI_API_KEY" in single_error_line(missing.stderr)
        wrong = generate(cli_env(prepared_data, MY_KEY="nope"), url, tmp_path / "a.jsonl", "++server.api_key_env=MY_KEY",
                         items=2)
        assert wrong.returncode == 2 and "$MY_KEY was rejected" in single_error_line(wrong.stderr)
        good = generate(cli_env(prepared_data, MY_KEY="sekret"), url, tmp_path / "a.jsonl",
                        "++server.api_key_env=MY_KEY", items=2)
        assert good.returncode == 0, good.stderr


@pytest.mark.parametrize("extra,message", [
    (["++server.model=gpt-7"], "model 'gpt-7' is not served at http://127.0.0.1:"),
    (["++server.model=gpt-7", "++server.base_url=http://127.0.0.1:9/v1"], "cannot reach the server at http://127.0.0.1:9/v1"),
    (["++server.server_type=tgi"], "unknown server type 'tgi'"),
    (["++inference.temprature=0.5"], "did you mean inference.temperature"),
    (["++max_concurrent_requests=0"], "at least 1"),
])
def test_clear_errors(prepared_data, tmp_path, extra, message):
    with openai_test_server() as url:
        result = generate(cli_env(prepared_data), url, tmp_path / "e.jsonl", *extra, items=2)
    assert result.returncode == 2
    assert message in single_error_line(result.stderr)


def test_resuming_against_a_server_with_another_model_is_refused(prepared_data, tmp_path):
    """With ++server.model unset the model is whatever the server offers: it is recorded and checked."""
    env = cli_env(prepared_data)
    output = tmp_path / "out.jsonl"
    with openai_test_server() as url:
        assert generate(env, url, output, items=3).returncode == 0
    meta = json.loads(Path(str(output) + ".meta.json").read_text())
    assert meta["resolved_model"] == "test-model" and meta["settings"]["model"] is None
    meta["resolved_model"] = "another-model"  # as if the first run had been against another server
    Path(str(output) + ".meta.json").write_text(json.dumps(meta))
    with openai_test_server() as url:
        result = generate(env, url, output, items=5)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]  # after the "resuming, 3 of 5 done" progress line
    assert last.startswith("nemo-eval generate: error:") and "holds lines from model 'another-model'" in last
    assert "Traceback" not in result.stderr
