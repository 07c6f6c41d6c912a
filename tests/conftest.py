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



def _require_bwrap_mode() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if shutil.which("bwrap") is None:
        missing.append("bubblewrap (apt-get install bubblewrap)")
    if missing:
        message = f"sandbox tests need {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs both: a skip there would hide a broken sandbox
        pytest.skip(message)


@pytest.fixture(scope="session")
def sandbox_url():
    _require_bwrap_mode()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "sandbox", "start", "--mode", "bwrap", "--port",
                             str(port), "--workers", "4", "--max-output-chars", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/health", timeout=2).json()["status"] == "ok":
                break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
