"""Helpers shared by the tests: run the real CLI in a subprocess, start a real HTTP server."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nemo_eval.processes import free_port, poll_until_healthy

REPO = Path(__file__).resolve().parents[2]
MIRROR_BENCHMARKS = ["aime24", "amc23", "asdiv", "gsm8k", "humaneval", "math-500", "mbpp", "svamp"]


def lm_eval_python() -> Path:
    """The Python of the separate venv holding lm-evaluation-harness (docs/testing.md); skip (outside CI) or
    fail (under CI) when it is missing."""
    import pytest

    python = Path(os.environ.get("NEMO_EVAL_LM_EVAL_PYTHON") or REPO / ".lmeval-venv" / "bin" / "python")
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must create the lm-eval venv ({python}); see docs/testing.md")
        pytest.skip(f"needs lm-evaluation-harness in a separate venv at {python} (docs/testing.md)")
    return python


def mirror_dir() -> str | None:
    """The data mirror the suite reads, from NEMO_EVAL_DATA_MIRROR (CI sets it)."""
    return os.environ.get("NEMO_EVAL_DATA_MIRROR") or None


def cli_env(data_dir: Path, mirror: str | None = "default", **extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess with its own data dir; mirror="default" keeps the suite's mirror."""
    env = dict(os.environ)
    env["NEMO_EVAL_DATA_DIR"] = str(data_dir)
    env.pop("NEMO_EVAL_DATA_MIRROR", None)
    chosen = mirror_dir() if mirror == "default" else mirror
    if chosen:
        env["NEMO_EVAL_DATA_MIRROR"] = chosen
    # A machine whose proxy variables reach the package registries must not send the suite's loopback
    # servers through that proxy (tests/inference/test_proxy.py sets its own).
    for name in ("no_proxy", "NO_PROXY"):
        env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1", "localhost"]))
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m nemo_eval <args>`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "nemo_eval", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@contextmanager
def http_file_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` with Python's http.server on 127.0.0.1; yield its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if poll_until_healthy(f"http://127.0.0.1:{port}/", 20, proc.poll, interval=0.05) is not None:
            raise RuntimeError("test HTTP server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def single_error_line(stderr: str) -> str:
    """Assert stderr is exactly one line, no traceback, and return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


@contextmanager
def openai_test_server(*args: str) -> Iterator[str]:
    """Start tests/support/openai_test_server.py on a free port; yield its base URL (``.../v1``)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "support" / "openai_test_server.py"), "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = f"http://127.0.0.1:{port}"
    try:
        if poll_until_healthy(root + "/health", 20, proc.poll, interval=0.05) is not None:
            raise RuntimeError(f"test server did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield root + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def server_stats(base_url: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/stats", timeout=10) as response:
        return json.loads(response.read())


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


TIMING_FIELDS = ("request_seconds",)  # differ from run to run by nature


def read_lines_untimed(path: Path) -> list[str]:
    """The lines of a generation file without their wall-time fields (for comparing two runs)."""
    import json

    out = []
    for line in read_lines(path):
        row = json.loads(line)
        for key in TIMING_FIELDS:
            row.pop(key, None)
        out.append(json.dumps(row, ensure_ascii=False))
    return out


def reset_stats(base_url: str) -> None:
    import urllib.request

    request = urllib.request.Request(base_url.rsplit("/v1", 1)[0] + "/stats/reset", data=b"{}", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
