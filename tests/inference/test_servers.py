"""Server types: exact launch command lines (GPU servers cannot run here), the real launcher,
the real embedded llama.cpp server, and the benchmark:N spec."""

from __future__ import annotations

import json
import os
import sys
import urllib.request

import pytest

from helpers import REPO, cli_env, run_cli
from nemo_eval.errors import UserError
from nemo_eval.run_layout import output_name, parse_benchmark_runs
from nemo_eval.inference.server import SERVERS, get_server_type
from nemo_eval.inference.server.base import LaunchArgs, ServerType
from nemo_eval.inference.server.launcher import LaunchedServer
from nemo_eval.processes import free_port


ARGS = LaunchArgs(model="/models/llama-8b", port=5000, gpus=8, nodes=2, seed=3, extra_args="--max-model-len 8192")


@pytest.mark.parametrize("name", SERVERS.names())
def test_every_registered_server_type_is_complete(name):
    server = get_server_type(name)
    assert server.name == name and server.description and server.health_path.startswith("/")
    if server.launchable:
        command = server.command(ARGS)
        assert "5000" in command and command[-2:] == ["--max-model-len", "8192"]


def test_existing_endpoints_and_the_embedded_server():
    assert not get_server_type("openai").launchable
    assert not get_server_type("llamacpp").needs_gpu and get_server_type("vllm").needs_gpu


@pytest.mark.parametrize("name,expected", [
    ("vllm", "python3 -m vllm.entrypoints.openai.api_server --model /models/llama-8b --served-model-name "
             "/models/llama-8b --host 0.0.0.0 --port 5000 --tensor-parallel-size 8 --pipeline-parallel-size 2 "
             "--trust-remote-code --seed 3 --max-model-len 8192"),
    ("sglang", "python3 -m sglang.launch_server --model-path /models/llama-8b --served-model-name /models/llama-8b "
               "--host 0.0.0.0 --port 5000 --tp 16 --trust-remote-code --nnodes 2 --random-seed 3 --max-model-len 8192"),
    ("trtllm", "trtllm-serve /models/llama-8b --host 0.0.0.0 --port 5000 --tp_size 8 --pp_size 2 --max-model-len 8192"),
    ("nemo", "python3 -m nemo_eval.inference.server.nemo_serve --checkpoint /models/llama-8b --port 5000 --gpus 8 "
             "--nodes 2 --max-model-len 8192"),
    ("llamacpp", "python3 -m nemo_eval.inference.server.llamacpp_serve --model /models/llama-8b --port 5000 --seed 3 "
                 "--max-model-len 8192"),
])
def test_launch_command_lines(name, expected):
    assert " ".join(get_server_type(name).command(ARGS)) == expected


def _test_server_type(extra: list[str]) -> ServerType:
    script = str(REPO / "tests" / "support" / "openai_test_server.py")
    return ServerType(name="fake", description="the test server", needs_gpu=False,
                      command=lambda a: [sys.executable, script, "--port", str(a.port), *extra])


def test_launcher_waits_for_health_and_kills_the_process_group(tmp_path):
    with LaunchedServer(_test_server_type([]), LaunchArgs(model="m", port=free_port()), tmp_path / "s.log") as server:
        pid = server.process.pid
        with urllib.request.urlopen(server.base_url + "/models") as response:
            assert json.loads(response.read())["data"][0]["id"] == "test-model"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_launcher_reports_a_server_that_dies(tmp_path, capsys):
    dying = ServerType(name="broken", description="exits at once", needs_gpu=False,
                       command=lambda a: [sys.executable, "-c", "import sys; print('CUDA out of memory'); sys.exit(3)"])
    with pytest.raises(UserError, match=r"exited with code 3 .*s\.log"):
        LaunchedServer(dying, LaunchArgs(model="m", port=free_port()), tmp_path / "s.log").start()
    assert "CUDA out of memory" in capsys.readouterr().err, "the log tail is shown"


def test_launching_a_missing_gpu_server_is_a_clear_error(prepared_data, tmp_path):
    result = run_cli("generate", "++benchmark=gsm8k", f"++output_file={tmp_path / 'o.jsonl'}", "++max_samples=1",
                     "++server.server_type=trtllm", "++server.model=/nope", "++server.startup_timeout=5",
                     env=cli_env(prepared_data))
    assert result.returncode == 2
    assert "trtllm-serve" in result.stderr.splitlines()[-1]


def test_benchmark_run_specs():
    assert parse_benchmark_runs("gsm8k:0,math-500:2") == [("gsm8k", None), ("math-500", None), ("math-500", 0),
                                                           ("math-500", 1)]
    assert parse_benchmark_runs("aime24") == [("aime24", None)]
    assert [output_name(s) for _, s in parse_benchmark_runs("x:2")] == ["output-greedy.jsonl", "output-rs0.jsonl",
                                                                      "output-rs1.jsonl"]
    with pytest.raises(UserError, match="integer"):
        parse_benchmark_runs("gsm8k:two")


@pytest.mark.slow
def test_embedded_llamacpp_generates_with_the_real_default_model(prepared_data, tmp_path):
    """SmolLM2-135M on the CPU through llama.cpp: a real model, kept to a few short generations."""
    output = tmp_path / "gsm8k" / "output-greedy.jsonl"
    result = run_cli("generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}", "++server.server_type=llamacpp",
                     "++max_samples=3", "++inference.tokens_to_generate=48", env=cli_env(prepared_data), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(out) == 3
    for row in out:
        assert row["generation"].strip() and 0 < row["num_generated_tokens"] <= 48
        assert row["finish_reason"] in ("stop", "length")
    assert (tmp_path / "logs" / "server-llamacpp.log").exists()          # <output_dir>/logs, as documented
    again = run_cli("generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}", "++server.server_type=llamacpp",
                    "++max_samples=3", "++inference.tokens_to_generate=48", env=cli_env(prepared_data), timeout=600)
    assert again.returncode == 0 and "nothing to do" in again.stderr and "started llamacpp" not in again.stderr


def test_embedded_server_with_a_missing_model_file(prepared_data, tmp_path):
    result = run_cli("generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}", "++server.server_type=llamacpp",
                     "++server.model=/no/such.gguf", "++max_samples=1", env=cli_env(prepared_data), timeout=120)
    assert result.returncode == 2
    assert "exited with code 2" in result.stderr.splitlines()[-1]
    assert "/no/such.gguf not found" in result.stderr


@pytest.mark.slow
def test_sigterm_tears_down_the_launched_server(prepared_data, tmp_path):
    """A terminated run (Slurm cancel, kill) still stops its server and keeps what it wrote."""
    import re
    import signal
    import subprocess
    import time

    command = [sys.executable, "-m", "nemo_eval", "generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}",
               "++server.server_type=llamacpp", "++max_samples=40", "++inference.tokens_to_generate=16"]
    proc = subprocess.Popen(command, env=cli_env(prepared_data), stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    server_pid = int(re.search(r"\(pid (\d+)\)", first).group(1))
    partial = tmp_path / "gsm8k" / "output-greedy.jsonl.partial"
    deadline = time.monotonic() + 300
    while not (partial.exists() and partial.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 143
    assert "terminated" in rest
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)
    assert all(json.loads(line)["generation"] is not None for line in partial.read_text().splitlines())


@pytest.mark.slow
def test_the_embedded_server_dies_with_a_killed_generate_step(prepared_data, tmp_path):
    """kill -9 of `nemo-eval generate` while its launched llama.cpp server runs: the server goes too."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}",
                             "++server.server_type=llamacpp", "++max_samples=50", "++inference.tokens_to_generate=512"],
                            env=cli_env(prepared_data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = f"NEMO_EVAL_RUN_ID={socket.gethostname()}-{proc.pid}-".encode()

    def server_processes() -> list[int]:
        found = []
        for pid in (p for p in Path("/proc").iterdir() if p.name.isdigit()):
            try:
                stat = (pid / "stat").read_bytes()
                zombie = stat[stat.rfind(b")") + 2:].startswith((b"Z", b"X"))
                if marker in (pid / "environ").read_bytes() and not zombie:
                    found.append(int(pid.name))
            except OSError:
                continue
        return found

    log = tmp_path / "logs" / "server-llamacpp.log"
    deadline = time.monotonic() + 120
    while not (log.is_file() and "serving" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server_processes(), "the server runs, carrying the step's run id"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    deadline = time.monotonic() + 60
    while server_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server_processes() == []
