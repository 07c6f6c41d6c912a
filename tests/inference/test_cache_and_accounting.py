"""The response cache (runs into other output dirs, and concurrent runs, send nothing twice) and the accounting
of tokens and cost (the summary and metrics.json equal the server's usage)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import cli_env, openai_test_server, run_cli, server_stats
from sandbox_support import require

ITEMS = 30
PRICES = ["++server.price_per_million_input=2", "++server.price_per_million_output=8"]


def _generate(env, url, out, cache, *extra):
    return run_cli("generate", "gsm8k", f"++output_dir={out}", f"++server.base_url={url}", f"++max_samples={ITEMS}",
                   f"++cache_dir={cache}", *PRICES, *extra, env=env)


def test_a_second_run_into_another_dir_sends_nothing_and_costs_nothing(prepared_data, tmp_path):
    env, cache = cli_env(prepared_data), tmp_path / "cache"
    with openai_test_server() as url:
        first = _generate(env, url, tmp_path / "a", cache)
        assert first.returncode == 0, first.stderr
        stats = server_stats(url)
        assert sum(stats["completed"].values()) == ITEMS
        served_tokens = stats["tokens_served"]
        second = _generate(env, url, tmp_path / "b", cache)
        assert second.returncode == 0, second.stderr
        assert sum(server_stats(url)["completed"].values()) == ITEMS                   # nothing sent twice
        # two concurrent runs into two more dirs share the cache without errors (no locking to fail)
        procs = [subprocess.Popen([sys.executable, "-m", "nemo_eval", "generate", "gsm8k",
                                   f"++output_dir={tmp_path / d}", f"++server.base_url={url}", f"++max_samples={ITEMS}",
                                   f"++cache_dir={cache}", "++inference.random_seed=7"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for d in ("c", "d")]
        assert [p.wait(timeout=300) for p in procs] == [0, 0]
        assert sum(server_stats(url)["completed"].values()) <= 3 * ITEMS              # seed 7: new requests, once or twice
    greedy = lambda d: [json.loads(x) for x in (tmp_path / d / "gsm8k" / "output-greedy.jsonl").read_text().splitlines()]
    a, b = greedy("a"), greedy("b")
    assert [r["generation"] for r in a] == [r["generation"] for r in b]
    assert not any(r.get("cached") for r in a) and all(r.get("cached") for r in b)
    assert sum(r["num_input_tokens"] + r["num_generated_tokens"] for r in a) == served_tokens
    assert "from the response cache (not billed); cost 0.0000" in second.stderr
    assert "estimated cost" in first.stderr and "items to send" in first.stderr
    # the summary and metrics.json carry the totals, priced from the meta file
    for d in ("a", "b"):
        path = tmp_path / d / "gsm8k" / "output-greedy.jsonl"
        graded = [json.dumps({**r, "is_correct": True, "predicted_answer": "1"}) for r in greedy(d)]
        path.write_text("\n".join(graded) + "\n")
        summary = run_cli("summarize-results", str(tmp_path / d))
        assert summary.returncode == 0, summary.stderr
        usage = json.loads((tmp_path / d / "metrics.json").read_text())["gsm8k"]["usage"]
        tokens_in = sum(r["num_input_tokens"] for r in a)
        tokens_out = sum(r["num_generated_tokens"] for r in a)
        assert (usage["input_tokens"], usage["generated_tokens"], usage["answered"]) == (tokens_in, tokens_out, ITEMS)
        expected = 0.0 if d == "b" else (2 * tokens_in + 8 * tokens_out) / 1e6
        assert abs(usage["cost"] - expected) < 1e-6 and "usage" in summary.stdout and "total" in summary.stdout


def test_a_damaged_cache_entry_is_asked_again(prepared_data, tmp_path):
    env, cache = cli_env(prepared_data), tmp_path / "cache"
    with openai_test_server() as url:
        assert _generate(env, url, tmp_path / "a", cache, "++max_samples=3").returncode == 0
        for entry in cache.rglob("*.json"):
            entry.write_text("{not json")
        again = _generate(env, url, tmp_path / "b", cache, "++max_samples=3")
        assert again.returncode == 0 and sum(server_stats(url)["completed"].values()) == 6
    assert all(json.loads(entry.read_text()) for entry in cache.rglob("*.json"))     # stored again, whole


@pytest.mark.bwrap
def test_the_launcher_estimates_the_cost_before_and_reports_it_after(prepared_data, tmp_path):
    require("bwrap")
    with openai_test_server() as url:
        result = run_cli("eval", "--server-address", url.removesuffix("/v1"), "--model", "test-model",
                         "--benchmarks", "gsm8k:1", "--output-dir", str(tmp_path / "out"), "++max_samples=10", *PRICES,
                         env=cli_env(prepared_data), timeout=600)
    assert result.returncode == 0, result.stderr[-1500:]
    first = result.stderr.index("20 items to send")
    assert "estimated cost" in result.stderr[first:first + 300] and first < result.stderr.index("generated and graded")
    usage = json.loads((tmp_path / "out" / "metrics.json").read_text())["gsm8k"]["usage"]
    assert usage["answered"] == 20 and usage["cost"] > 0 and " cost" in result.stdout.split("usage |")[1].split("\n")[0]
