"""Command lines and checks for running the sandbox service in each mode.

- ``bwrap``: gunicorn on the host serving ``sandbox/server.py``; every execution runs in a
  bubblewrap jail as its own unprivileged uid (needs root and the ``bubblewrap`` package).
- ``docker``: the same service inside a container started with no network, a read-only root
  and pids/memory limits, reached through a unix socket in a bind-mounted directory
  (see ``sandbox/Dockerfile``; ``nemo-eval sandbox build`` makes the image).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

from nemo_eval.errors import UserError
from nemo_eval.resources import bundled_dir

DEFAULT_PORT = 6000
MODES = ("bwrap", "docker")


@dataclass(frozen=True)
class SandboxSettings:
    """How to run the service."""

    mode: str = "bwrap"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = max(2, (os.cpu_count() or 1) * 2)
    max_output_chars: int = 20000
    memory_mb: int = 1024
    max_timeout: float = 120.0

    def environment(self) -> dict[str, str]:
        return {"SANDBOX_MAX_OUTPUT_CHARS": str(self.max_output_chars), "SANDBOX_MEMORY_MB": str(self.memory_mb),
                "SANDBOX_MAX_TIMEOUT": str(self.max_timeout), "SANDBOX_WORKERS": str(self.workers)}


@lru_cache(maxsize=1)
def _gunicorn_has_control_socket_flag() -> bool:
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True)
    return "--no-control-socket" in result.stdout


def check_bwrap_mode() -> None:
    """One-line errors for what bwrap mode needs."""
    if os.geteuid() != 0:
        raise UserError("sandbox bwrap mode runs each execution as its own unprivileged uid, which needs root "
                        "(run it with sudo), or use --mode docker")
    if shutil.which("bwrap") is None:
        raise UserError("sandbox bwrap mode needs bubblewrap: apt-get install bubblewrap (or use --mode docker)")
    if not os.path.exists("/usr/bin/python3"):
        raise UserError("sandbox bwrap mode runs code with the system Python: apt-get install python3")
    if subprocess.run(["/usr/bin/python3", "-c", "import sympy"], capture_output=True).returncode != 0:
        print("nemo-eval sandbox: warning: the system Python has no sympy, so math grading will fail "
              "(apt-get install python3-sympy); code execution works", file=sys.stderr)


def bwrap_command(settings: SandboxSettings) -> list[str]:
    """The gunicorn command serving the sandbox on the host."""
    cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(bundled_dir("sandbox")),
           "--bind", f"{settings.host}:{settings.port}", "--workers", str(settings.workers),
           "--timeout", str(int(settings.max_timeout) + 60), "--graceful-timeout", "5", "--log-level", "warning"]
    if _gunicorn_has_control_socket_flag():
        cmd.append("--no-control-socket")
    return cmd + ["server:app"]
