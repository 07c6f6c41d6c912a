"""A real sandbox service (bwrap mode) for the sandbox tests, started once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from helpers import free_port


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
