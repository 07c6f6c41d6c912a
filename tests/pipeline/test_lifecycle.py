"""Run lifecycle: one launcher owns an output dir at a time, and nothing a run started outlives it,
however the launcher dies (SIGKILL at random points), locally and in Slurm jobs (scancel); the rerun
gives the same metrics. Processes are found as a user would: every process whose environment carries
the run's id (``NEMO_EVAL_RUN_ID=<host>-<launcher pid>-...``) or whose command line names the output dir."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli_env, openai_test_server, read_lines_untimed, run_cli, single_error_line
from test_slurm import _cluster, slurm_up  # noqa: F401 - the Slurm fixture, shared with the Slurm tests


def _leftovers(marker: str, path: str) -> list[str]:
    """Live processes (not zombies) carrying ``marker`` in their environment or ``path`` in their command line."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            if stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] in (b"Z", b"X"):
                continue
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ or path.encode() in cmdline:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {command[:200]}")
    return found


def _wait_until_nothing_left(marker: str, path: str, seconds: float = 60) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := _leftovers(marker, path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _marker(launcher_pid: int) -> str:
    return f"NEMO_EVAL_RUN_ID={socket.gethostname()}-{launcher_pid}-"


def _launch(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nemo_eval", "eval", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _owner(out: Path) -> dict:
    try:
        return json.loads((out / ".nemo-eval.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


@pytest.mark.bwrap
def test_one_launcher_per_output_dir_and_a_killed_ones_lock_is_taken_over(prepared_data, tmp_path):
    out = tmp_path / "r"
    env = cli_env(prepared_data)
    with openai_test_server("--delay", "0.5") as url:
        args = ["--server_address", url, "--model", "test-model", "--benchmarks", "gsm8k:0", "--output_dir", str(out),
                "++max_samples=6", "++max_concurrent_requests=1"]
        first = _launch(env, *args)
        deadline = time.monotonic() + 60
        while _owner(out).get("pid") != first.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli("eval", *args, env=env)
        line = single_error_line(second.stderr)
        assert second.returncode == 2, second.stderr
        assert f"is in use by another nemo-eval eval (host {socket.gethostname()}, pid {first.pid}, since " in line
        first.kill()
        first.wait(30)
        assert _wait_until_nothing_left(_marker(first.pid), str(out)) == []
        third = run_cli("eval", *args, env=env)
    assert third.returncode == 0, third.stderr
    assert f"taking over {out} from a run that is gone (host {socket.gethostname()}, pid {first.pid}" in third.stderr
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["greedy"]["num_entries"] == 6
    assert _owner(out).get("released") is True


def _graded(out: Path) -> dict[str, list[dict]]:
    """Every graded line, without its request wall time (which differs from run to run)."""
    return {str(p.relative_to(out)): [json.loads(line) for line in read_lines_untimed(p)]
            for p in sorted(out.glob("*/output-*.jsonl"))}


def _untimed(path: Path) -> dict:
    """metrics.json without the summed request wall time (usage.request_seconds differs from run to run)."""
    metrics = json.loads(path.read_text())
    for rows in metrics.values():
        rows.get("usage", {}).pop("request_seconds", None)
    return metrics


@pytest.mark.bwrap
@pytest.mark.slow
def test_sigkill_at_random_points_leaves_nothing_and_the_rerun_gives_identical_metrics(prepared_data, tmp_path):
    """Ten SIGKILLs of the launcher, each at a random moment of a run (data preparation, sandbox start,
    generation of a greedy and a sampled GSM8K run and of HumanEval, grading in the sandbox, summary):
    after each, no process of the run is left; then the rerun's metrics equal an uninterrupted run's."""
    env = cli_env(prepared_data)
    answers = tmp_path / "answers.jsonl"
    answers.write_text((prepared_data / "gsm8k" / "test.jsonl").read_text())
    rng = random.Random(13)
    with openai_test_server("--answers-jsonl", str(answers), "--delay", "0.05") as url:
        def args(out: Path) -> list[str]:
            return ["--server_address", url, "--model", "test-model", "--benchmarks", "gsm8k:1,humaneval:0",
                    "--output_dir", str(out), "++max_samples=24", "++max_concurrent_requests=4", "++timeout=5"]

        start = time.monotonic()
        reference = run_cli("eval", *args(tmp_path / "reference"), env=env)
        duration = time.monotonic() - start
        assert reference.returncode == 0, reference.stderr
        out = tmp_path / "killed"
        for attempt in range(10):
            proc = _launch(env, *args(out))
            time.sleep(rng.uniform(0.1, duration))
            proc.kill()
            proc.wait(30)
            left = _wait_until_nothing_left(_marker(proc.pid), str(out))
            assert left == [], f"after kill {attempt + 1}: {left}"
        final = run_cli("eval", *args(out), env=env)
    assert final.returncode == 0, final.stderr
    assert _untimed(out / "metrics.json") == _untimed(tmp_path / "reference" / "metrics.json")
    assert _graded(out) == _graded(tmp_path / "reference")
    assert not list(out.glob("*/*.partial"))


@pytest.mark.docker
def test_sigkill_with_a_docker_mode_sandbox_leaves_no_container(prepared_data, tmp_path):
    """The sandbox in docker mode: after a SIGKILL of the launcher, the `sandbox start` child dies with it
    and its container goes. A kill while the container is being created relies on the sandbox's own lease
    on its container (issue 12)."""
    from conftest import _require

    _require("docker")
    config = tmp_path / "docker.yaml"
    config.write_text("executor: local\nsandbox_mode: docker\n")
    env = cli_env(prepared_data)
    rng = random.Random(7)
    with openai_test_server("--delay", "0.05") as url:
        for attempt in range(3):
            out = tmp_path / f"r{attempt}"
            proc = _launch(env, "--cluster", str(config), "--server_address", url, "--model", "test-model",
                           "--benchmarks", "humaneval:0", "--output_dir", str(out), "++max_samples=8")
            time.sleep(rng.uniform(1.0, 4.0))
            proc.kill()
            proc.wait(30)
            assert _wait_until_nothing_left(_marker(proc.pid), str(out)) == []
            log = out / "logs" / "sandbox.log"
            port = log.read_text().split("--port ", 1)[1].split()[0] if log.is_file() else None
            deadline = time.monotonic() + 60
            while port:
                names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                                       text=True).stdout.split()
                if f"nemo-eval-sandbox-{port}" not in names or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert not port or f"nemo-eval-sandbox-{port}" not in names, f"kill {attempt + 1}: the container is left"


@pytest.mark.usefixtures("slurm_up")
def test_scancel_leaves_nothing_behind(prepared_data, tmp_path):
    """scancel while generation runs: the sandbox step, the client step and its generate child, all gone."""
    out = tmp_path / "r"
    with openai_test_server("--delay", "1") as url:
        result = run_cli("eval", "--cluster", str(_cluster(tmp_path)), "--server_address", url, "--model", "test-model",
                         "--benchmarks", "gsm8k:0", "--output_dir", str(out), "++max_samples=30",
                         "++max_concurrent_requests=1", env=cli_env(prepared_data))
        assert result.returncode == 0, result.stderr
        ids = json.loads((out / "slurm" / "submitted.json").read_text())
        run_id = (out / "slurm" / "eval-0.sbatch").read_text().split("export NEMO_EVAL_RUN_ID=", 1)[1].split()[0]
        deadline = time.monotonic() + 120
        while not (out / "gsm8k" / "output-greedy.jsonl.partial").exists() and time.monotonic() < deadline:
            time.sleep(0.5)                                              # generation is under way
        assert _leftovers(f"NEMO_EVAL_RUN_ID={run_id}", str(out)), "the job's processes are visible while it runs"
        subprocess.run(["scancel", *ids["eval"], ids["summarize"]], check=True)
        assert _wait_until_nothing_left(f"NEMO_EVAL_RUN_ID={run_id}", str(out)) == []


def test_slurm_with_a_bwrap_sandbox_as_a_non_root_user_is_refused_before_submitting(tmp_path):
    """Jobs run as the submitting user; bwrap mode needs root: say what to do instead of a failed job."""
    import sysconfig
    import tempfile

    from helpers import REPO

    same = Path("/usr/bin/python3").exists() and subprocess.run(
        ["/usr/bin/python3", "-c", f"import sys; sys.exit(sys.version_info[:2] != {tuple(sys.version_info[:2])})"]).returncode == 0
    if os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists() or not same:
        pytest.skip("needs root, setpriv and a system python3 of this version to run the launcher as another user")
    site = sysconfig.get_paths()["purelib"]
    out = Path(tempfile.gettempdir()) / f"nemo-eval-nonroot-{os.getpid()}" / "r"      # a path that user can reach
    interpreter = "/usr/bin/python3"
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", interpreter, "-m",
                             "nemo_eval", "eval", "--cluster", str(REPO / "cluster_configs" / "slurm.yaml"),
                             "--server_address", "http://127.0.0.1:9/v1", "--benchmarks", "gsm8k:0",
                             "--output_dir", str(out)],
                            env={"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONPATH": f"{REPO}:{site}"},
                            capture_output=True, text=True, timeout=120)
    line = single_error_line(result.stderr)
    assert result.returncode == 2 and "bwrap mode, which needs root, but they run as you (uid 65534)" in line
    assert "sandbox_mode: docker" in line and not out.exists()


@pytest.mark.docker
@pytest.mark.usefixtures("slurm_up")
def test_scancel_with_a_docker_mode_sandbox_leaves_no_container(prepared_data, tmp_path):
    """sandbox_mode: docker in a Slurm job: after scancel, the sandbox's container goes too. Slurm ends the
    sandbox step (SIGTERM, then SIGKILL after KillWait); the container's own lease on its `sandbox start`
    process (issue 12) makes this hold even when the step is SIGKILLed before it removed the container."""
    from conftest import _require

    _require("docker")
    out = tmp_path / "r"
    config = _cluster(tmp_path, "sandbox_mode: docker\n")
    with openai_test_server("--delay", "1") as url:
        result = run_cli("eval", "--cluster", str(config), "--server_address", url, "--model", "test-model",
                         "--benchmarks", "humaneval:0", "--output_dir", str(out), "++max_samples=30",
                         "++max_concurrent_requests=1", env=cli_env(prepared_data))
        assert result.returncode == 0, result.stderr
        ids = json.loads((out / "slurm" / "submitted.json").read_text())
        script = (out / "slurm" / "eval-0.sbatch").read_text()
        run_id = script.split("export NEMO_EVAL_RUN_ID=", 1)[1].split()[0]
        port = script.split("sandbox start --mode docker --port ", 1)[1].split()[0]
        deadline = time.monotonic() + 180
        while not (out / "humaneval" / "output-greedy.jsonl.partial").exists() and time.monotonic() < deadline:
            time.sleep(0.5)                                              # the sandbox is up, generation under way
        subprocess.run(["scancel", *ids["eval"], ids["summarize"]], check=True)
        assert _wait_until_nothing_left(f"NEMO_EVAL_RUN_ID={run_id}", str(out)) == []
    deadline = time.monotonic() + 60
    while True:
        names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()
        if f"nemo-eval-sandbox-{port}" not in names or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert f"nemo-eval-sandbox-{port}" not in names, "the sandbox container outlived the job"
