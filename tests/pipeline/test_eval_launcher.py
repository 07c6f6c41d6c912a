"""``nemo-eval eval`` on this machine: the real sandbox it starts, the OpenAI-compatible test server,
every output file and a metrics.json checked against the generations; failures, resume, teardown and
validation errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import REPO, cli_env, openai_test_server, run_cli, single_error_line


def _answers(prepared_data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text((prepared_data / "gsm8k" / "test.jsonl").read_text())
    return path


def _eval(env, *args: str, timeout: float = 600):
    return run_cli("eval", *args, env=env, timeout=timeout)


def test_local_end_to_end_outputs_and_metrics(prepared_data, sandbox_url, tmp_path):
    env = cli_env(prepared_data)
    out = tmp_path / "results, (quoted) dir"               # Hydra-special characters and spaces survive
    with openai_test_server("--answers-jsonl", str(_answers(prepared_data, tmp_path)), "--correct-rate", "0.5") as url:
        args = ["--cluster", "local", "--server_type", "openai", "--server_address", url.removesuffix("/v1"),
                "--model", "test-model",
                "--benchmarks", "gsm8k:2,humaneval:0", "--output_dir", str(out), "--num_jobs", "2",
                "++max_samples=20", "++timeout=5"]
        result = _eval(env, *args)
        assert result.returncode == 0, result.stderr
        names = ["output-greedy.jsonl", "output-rs0.jsonl", "output-rs1.jsonl"]
        for name in names:
            lines = [json.loads(line) for line in (out / "gsm8k" / name).read_text().splitlines()]
            assert len(lines) == 20 and all("is_correct" in line for line in lines)
        assert len((out / "humaneval" / "output-greedy.jsonl").read_text().splitlines()) == 20
        for log in ["prepare-data", "sandbox", "generate-gsm8k-rs1", "evaluate-humaneval-greedy", "summarize-results"]:
            assert (out / "logs" / f"{log}.log").is_file()
        metrics = json.loads((out / "metrics.json").read_text())
        # the test server answers \boxed{expected} for about half of the problems: count them independently
        for name, row in [("output-greedy.jsonl", "greedy")]:
            lines = [json.loads(line) for line in (out / "gsm8k" / name).read_text().splitlines()]
            right = sum(f"\\boxed{{{line['expected_answer']}}}" in line["generation"] for line in lines)
            assert metrics["gsm8k"][row]["accuracy"] == round(100 * right / 20, 2) and 0 < right < 20
        assert metrics["gsm8k"]["greedy"]["num_entries"] == 20 and "pass@2" in metrics["gsm8k"]
        assert "majority@2" in metrics["gsm8k"] and metrics["humaneval"]["greedy"]["accuracy"] == 0.0
        assert "gsm8k" in result.stdout and "greedy" in result.stdout    # the summary table
        umask = os.umask(0o022)
        os.umask(umask)                                                   # files follow the user's umask
        for path in [out / "metrics.json", out / "gsm8k" / "output-greedy.jsonl", out / "gsm8k" / "output-greedy.jsonl.meta.json",
                     prepared_data / "gsm8k" / "test.jsonl"]:
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
        before = {p: p.read_bytes() for p in (out / "gsm8k").glob("output-*.jsonl")}
        again = _eval(env, *args)                                         # resume: nothing left to do
        assert again.returncode == 0, again.stderr
        assert {p: p.read_bytes() for p in before} == before
        assert "nothing left to generate for gsm8k-greedy, gsm8k-rs0, gsm8k-rs1, humaneval-greedy" in again.stderr
        assert "sandbox (" not in again.stderr and "server at" not in again.stderr   # neither was started
        assert again.stdout.count("pass@2") == 1                      # this run's summary, printed once


def test_a_failing_step_makes_the_launcher_fail_naming_step_and_log(prepared_data, tmp_path):
    with openai_test_server("--faults", "500:1.0", "--max-faults-per-prompt", "1000") as url:   # every request fails
        result = _eval(cli_env(prepared_data), "--server_address", url, "--model", "test-model",
                       "--benchmarks", "gsm8k:0", "--output_dir", str(tmp_path / "r"), "++max_samples=2",
                       "++server.max_retries=0")
    assert result.returncode == 1
    assert ("step 'generate gsm8k-greedy' failed (exit 1): nemo-eval generate: 2 item(s) failed; run the same command "
            "again to retry them") in result.stderr
    assert str(tmp_path / "r" / "logs" / "generate-gsm8k-greedy.log") in result.stderr
    assert not (tmp_path / "r" / "metrics.json").exists()   # (the sandbox starts alongside generation, so whether
    # it was announced before generation failed depends on timing: not asserted)


def test_sigterm_tears_everything_down(prepared_data, sandbox_url, tmp_path):
    with openai_test_server("--delay", "5") as url:
        proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "eval", "--server_address", url,
                                 "--model", "test-model", "--benchmarks", "gsm8k:0", "--output_dir", str(tmp_path / "r"),
                                 "++max_samples=4"],
                                env=cli_env(prepared_data), stderr=subprocess.PIPE, text=True)
        seen = ""
        deadline = time.monotonic() + 120
        while "sandbox (bwrap mode) at" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        sandbox = re.search(r"at (http://127\.0\.0\.1:\d+)", seen).group(1)
        time.sleep(2)                                                     # generation is under way
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
        with pytest.raises(OSError):
            urllib.request.urlopen(sandbox + "/health", timeout=2)
        assert not list((tmp_path / "r" / "gsm8k").glob("output-greedy.jsonl"))   # unfinished: only .partial


def test_dry_run_prints_the_steps_and_runs_nothing(tmp_path):
    result = run_cli("eval", "--server_address", "http://127.0.0.1:8000", "--benchmarks", "gsm8k:1,math-500:0",
                     "--output_dir", str(tmp_path / "r"), "--dry_run", "++max_samples=3", "++extraction.strategies=[boxed]")
    assert result.returncode == 0, result.stderr
    assert "++inference.random_seed=0" in result.stdout and "++max_samples=3" in result.stdout
    assert "evaluate ++prediction_jsonl_files" in result.stdout and "++extraction.strategies=[boxed]" in result.stdout
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args,message", [
    (["--benchmarks", "gsm9k:0"], "unknown benchmark"),
    (["--benchmarks", "gsm8k:x"], "must be an integer"),
    (["--benchmarks", "gsm8k:0", "++max_sample=3"], "unknown setting 'max_sample'"),
    (["--benchmarks", "gsm8k:0", "++output_dir=x"], "use --output-dir"),
    (["--benchmarks", "gsm8k:0", "--server_type", "vllm"], "needs GPUs"),
    (["--benchmarks", "gsm8k:0", "--server_type", "openai"], "give --server-address"),
    (["--benchmarks", "gsm8k:0", "--cluster", "nowhere"], "unknown cluster config 'nowhere'"),
    (["--benchmarks", "gsm8k:0,gsm8k:2", "--server_address", "http://h:1"], "names a benchmark twice"),
    (["--benchmarks", "gsm8k:0", "--server_address", "localhost:8000"], "must look like http://HOST:PORT"),
    (["--benchmarks", "gsm8k:0", "--server_address", "http://h:1", "++max_samples=abc"], "bad override"),
    (["--benchmarks", "gsm8k:0", "--server_address", "http://h:1", "++server.port=9"], "launcher's choice"),
])
def test_bad_input_is_one_line_before_anything_starts(tmp_path, args, message):
    result = run_cli("eval", "--output_dir", str(tmp_path / "r"), *args)
    assert result.returncode == 2 and message in single_error_line(result.stderr)
    assert not (tmp_path / "r").exists()


def test_cluster_config_keys_are_checked(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("executor: local\nsandbox_mod: docker\n")
    result = run_cli("eval", "--cluster", str(bad), "--benchmarks", "gsm8k:0", "--output_dir", str(tmp_path / "r"),
                     "--server_address", "http://x/v1")
    assert result.returncode == 2 and "unknown key(s) sandbox_mod" in single_error_line(result.stderr)
    via_env = run_cli("eval", "--benchmarks", "gsm8k:0", "--output_dir", str(tmp_path / "r"),
                      "--server_address", "http://x/v1", env={**cli_env(tmp_path), "NEMO_EVAL_CONFIG": str(bad)})
    assert via_env.returncode == 2 and "sandbox_mod" in single_error_line(via_env.stderr)


@pytest.mark.docker
def test_local_launched_server_in_a_docker_container(prepared_data, sandbox_url, tmp_path):
    """The embedded server, run from an image (the sandbox's Debian base) with this checkout and its
    site-packages mounted: the launcher starts the container, waits for health, and removes it."""
    import sysconfig

    from conftest import _require
    from nemo_eval.sandbox.docker_mode import BASE_IMAGE

    _require("docker")  # also (re)builds the images, so the base image exists
    site = sysconfig.get_paths()["purelib"]
    # the minimal base image lacks the OpenMP runtime llama.cpp links: lend it the host's
    gomp = next(Path("/usr/lib").glob("*/libgomp.so.1"), None)
    mounts = [f"{REPO}:{REPO}:ro", f"{site}:{site}:ro"] + ([f"{gomp.resolve()}:{gomp}:ro"] if gomp else [])
    config = tmp_path / "local-docker.yaml"
    config.write_text(f"executor: local\ncontainers:\n  llamacpp: {BASE_IMAGE}\nmounts: {json.dumps(mounts)}\n"
                      f"env_vars:\n  PYTHONPATH: '{REPO}:{site}'\n")
    out = tmp_path / "r"
    result = _eval(cli_env(prepared_data), "--cluster", str(config), "--server_type", "llamacpp",
                   "--benchmarks", "gsm8k:0", "--output_dir", str(out), "++max_samples=2",
                   "++inference.tokens_to_generate=16")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["greedy"]["num_entries"] == 2
    assert f"$ docker run {BASE_IMAGE} python3 -m nemo_eval.inference.server.llamacpp_serve" in (
        out / "logs" / "server.log").read_text()
    deadline = time.monotonic() + 60     # removed in the background (the run's watchdog makes sure of it)
    while True:
        left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=nemo-eval.output-dir={out}"],
                              capture_output=True, text=True).stdout.strip()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert left == "", "the server container was removed"
    again = _eval(cli_env(prepared_data), "--cluster", str(config), "--server_type", "llamacpp",
                  "--benchmarks", "gsm8k:0", "--output_dir", str(out), "++max_samples=2",
                  "++inference.tokens_to_generate=16")
    assert again.returncode == 0, again.stderr
    assert "nothing left to generate for gsm8k-greedy" in again.stderr
    assert "server at" not in again.stderr and "started llamacpp" not in again.stderr     # no server launched


@pytest.mark.slow
def test_a_killed_step_is_reported_by_its_signal_not_its_progress_bar(prepared_data, tmp_path):
    out = tmp_path / "r"
    with openai_test_server("--delay", "0.5") as url:
        proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "eval", "--server_address", url, "--model", "test-model",
                                 "--benchmarks", "gsm8k:0", "--output_dir", str(out), "++max_samples=20",
                                 "++max_concurrent_requests=1"], env=cli_env(prepared_data), stderr=subprocess.PIPE, text=True)
        step = None
        deadline = time.monotonic() + 60
        while step is None and time.monotonic() < deadline:
            for pid in (p for p in Path("/proc").iterdir() if p.name.isdigit()):
                try:
                    cmdline = (pid / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"nemo_eval.inference.generate" in cmdline and str(out).encode() in cmdline:
                    step = int(pid.name)
            time.sleep(0.1)
        time.sleep(2)                                                    # its progress bar has printed lines
        os.kill(step, signal.SIGKILL)
        assert proc.wait(60) == 1
        stderr = proc.stderr.read()
    assert "step 'generate gsm8k-greedy' was killed by SIGKILL (out of memory? see dmesg): " in stderr
    assert "item/s" not in stderr.split("was killed by SIGKILL", 1)[1]


def test_a_sandbox_that_cannot_start_is_one_line_naming_its_log(prepared_data, tmp_path):
    config = tmp_path / "docker.yaml"
    config.write_text("executor: local\nsandbox_mode: docker\n")
    env = {**cli_env(prepared_data), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    with openai_test_server() as url:
        result = _eval(env, "--cluster", str(config), "--server_address", url, "--model", "test-model",
                       "--benchmarks", "gsm8k:0", "--output_dir", str(tmp_path / "r"), "++max_samples=2")
    line = single_error_line(result.stderr)
    assert result.returncode == 2, result.stderr
    assert "the sandbox did not start (exit 2): nemo-eval sandbox: error: cannot talk to a Docker engine" in line
    assert f"log: {tmp_path / 'r' / 'logs' / 'sandbox.log'}" in line
