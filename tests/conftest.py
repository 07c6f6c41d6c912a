"""Session fixtures: one prepared data directory built through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import MIRROR_BENCHMARKS, cli_env, free_port, run_cli  # noqa: E402


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """Every mirrored benchmark prepared once with ``nemo-eval prepare-data`` into a temporary dir."""
    data_dir = tmp_path_factory.mktemp("data")
    result = run_cli("prepare-data", *MIRROR_BENCHMARKS, env=cli_env(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir



def _require(mode: str) -> None:
    missing = []
    if mode == "bwrap":
        if os.geteuid() != 0:
            missing.append("root")
        if shutil.which("bwrap") is None:
            missing.append("bubblewrap (apt-get install bubblewrap)")
    else:
        probe = subprocess.run(["docker", "info"], capture_output=True) if shutil.which("docker") else None
        if probe is None or probe.returncode != 0:
            missing.append("a running Docker engine (apt-get install docker.io; dockerd)")
        else:  # (re)build: seconds with Docker's layer cache, and never a stale image under test
            build = subprocess.run([sys.executable, "-m", "nemo_eval", "sandbox", "build", "--make-base"],
                                   capture_output=True, text=True, timeout=900)
            if build.returncode != 0:
                missing.append(f"the sandbox image (build failed: {build.stderr.strip()[-300:]})")
    if missing:
        message = f"sandbox {mode} mode tests need {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs all of it: a skip there would hide a broken sandbox
        pytest.skip(message)


def _start_sandbox(mode: str):
    _require(mode)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "sandbox", "start", "--mode", mode, "--port",
                             str(port), "--workers", "4", "--max-output-chars", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(url + "/health", timeout=2).json()["status"] == "ok":
                return proc, url
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"sandbox ({mode}) did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
            time.sleep(0.2)


def _stop(proc) -> None:
    proc.terminate()
    proc.wait(timeout=60)


@pytest.fixture(scope="session")
def sandbox_url():
    """The sandbox service in bwrap mode (graders and code execution use it)."""
    proc, url = _start_sandbox("bwrap")
    yield url
    _stop(proc)


@pytest.fixture(scope="session", params=["bwrap", "docker"])
def sandbox_mode_url(request, sandbox_url):
    """The sandbox service in each mode, for the hostile-code tests."""
    if request.param == "bwrap":
        yield "bwrap", sandbox_url
        return
    proc, url = _start_sandbox("docker")
    yield "docker", url
    _stop(proc)
