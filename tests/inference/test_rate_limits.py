"""Hosted-API limits against the test server rate-limiting like a provider (token buckets, 429 + Retry-After):
adaptive concurrency settles under an unknown request rate, the request and token rate limits keep a run
(and two steps of one eval run together) under known ones, and accounting equals the server's usage.

Wall times are not asserted here (no timing assertions in tests): ``perf/rate_limits.py`` measures them
against the ideal ``items / rate`` in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import cli_env, openai_test_server, read_lines, run_cli, server_stats

pytestmark = pytest.mark.slow  # hundreds of requests held to a rate: 10-15 s each
ITEMS = 300


def _generate(env, url, output, *extra):
    return run_cli("generate", "++benchmark=gsm8k", f"++output_file={output}", f"++server.base_url={url}",
                   f"++max_samples={ITEMS}", "++max_concurrent_requests=64", *extra, env=env, timeout=600)


def _rows(path):
    return [json.loads(line) for line in read_lines(path)]


def test_adaptive_concurrency_avoids_retry_storms_under_an_unknown_rate(prepared_data, tmp_path):
    with openai_test_server("--max-rps", "40") as url:
        result = _generate(cli_env(prepared_data), url, tmp_path / "out.jsonl")
        stats = server_stats(url)
    assert result.returncode == 0, result.stderr[-1500:]
    rows = _rows(tmp_path / "out.jsonl")
    assert len(rows) == ITEMS and not any("error" in row for row in rows)
    assert stats["rate_limited"] < 0.10 * (ITEMS + stats["rate_limited"]), stats["rate_limited"]
    assert "429s=" in result.stderr and "conc=" in result.stderr          # the progress bar shows both


def test_request_and_token_limits_keep_under_known_rates_and_usage_is_accounted(prepared_data, tmp_path):
    env = cli_env(prepared_data)
    with openai_test_server("--max-rps", "50") as url:
        result = _generate(env, url, tmp_path / "rpm.jsonl", "++server.max_requests_per_minute=3000",
                           "++server.adaptive_concurrency=false")
        stats = server_stats(url)
    assert result.returncode == 0, result.stderr[-1500:]
    assert stats["rate_limited"] <= 0.02 * ITEMS, stats["rate_limited"]
    # prompts of about 60-120 words plus 12-word answers; 9,000 tokens a minute is about 100 requests a minute
    with openai_test_server("--max-tpm", "60000") as url:
        result = _generate(env, url, tmp_path / "tpm.jsonl", "++max_samples=120", "++server.max_tokens_per_minute=60000",
                           "++server.adaptive_concurrency=false")
        stats = server_stats(url)
    assert result.returncode == 0, result.stderr[-1500:]
    rows = _rows(tmp_path / "tpm.jsonl")
    assert stats["rate_limited"] <= 0.05 * len(rows), stats["rate_limited"]
    served = sum(row["num_input_tokens"] + row["num_generated_tokens"] for row in rows)
    assert served == stats["tokens_served"]                                 # accounting equals the server's usage
    assert all(row["request_seconds"] >= 0 for row in rows)


def test_two_steps_of_one_run_share_the_request_limit(prepared_data, tmp_path):
    """Two generation processes with the same run id split one 3,000-requests-a-minute budget between them
    (each alone would be allowed the whole budget, together twice the server's rate: measured ~340 429s of 600)."""
    env = {**cli_env(prepared_data), "NEMO_EVAL_RUN_ID": f"shared-{tmp_path.name}"}
    with openai_test_server("--max-rps", "50") as url:
        procs = [subprocess.Popen([sys.executable, "-m", "nemo_eval", "generate", "++benchmark=gsm8k",
                                   f"++output_file={tmp_path / f'out{i}.jsonl'}", f"++server.base_url={url}",
                                   f"++max_samples={ITEMS}", "++max_concurrent_requests=64",
                                   "++server.max_requests_per_minute=3000", "++server.adaptive_concurrency=false",
                                   f"++inference.random_seed={i}"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        errors = [proc.communicate(timeout=600)[1] for proc in procs]
        stats = server_stats(url)
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert stats["rate_limited"] <= 0.05 * 2 * ITEMS, stats["rate_limited"]   # with separate budgets: ~340
