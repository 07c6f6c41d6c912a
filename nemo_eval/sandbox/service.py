"""Running the sandbox service (``sandbox/nemo_eval_sandbox``, standard library only) in each mode.

- ``bwrap``: the service runs in this process on the host; every execution runs in a warm
  bubblewrap jail as an unprivileged uid of its own (needs root and the ``bubblewrap`` package).
- ``docker``: the same service inside a container with no network and a read-only root, reached
  through a unix socket (``docker_mode``; ``nemo-eval sandbox build`` makes the image).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Optional

from nemo_eval.errors import Terminated, UserError
from nemo_eval.registry import Registry
from nemo_eval.resources import bundled_dir

DEFAULT_PORT = 6000


@dataclass(frozen=True)
class SandboxMode:
    """One way of running the service (``nemo-eval sandbox start --mode``, a cluster config's ``sandbox_mode``)."""

    name: str
    description: str


SANDBOX_MODES: Registry[SandboxMode] = Registry("sandbox mode")
SANDBOX_MODES.register("bwrap", SandboxMode("bwrap", "jails on the host (needs root + bubblewrap)"))
SANDBOX_MODES.register("docker", SandboxMode("docker", "the service inside a container (nemo-eval sandbox build)"))
# host-wide settings that must reach the service in either mode (docker mode passes them into the container)
PASSED_THROUGH_ENV = ("SANDBOX_UID_BASE", "SANDBOX_UID_COUNT", "SANDBOX_MAX_PROCESSES",
                      "SANDBOX_MAX_OPEN_FILES")


@dataclass(frozen=True)
class SandboxSettings:
    """How to run the service."""

    mode: str = "bwrap"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = max(2, (os.cpu_count() or 1) * 2)
    max_output_chars: int = 20000
    memory_mb: int = 1024
    disk_mb: int = 256
    max_timeout: float = 120.0
    max_queue: int = 256

    def environment(self) -> dict[str, str]:
        """``SANDBOX_*`` variables for the service (its limits are read from them)."""
        env = {name: os.environ[name] for name in PASSED_THROUGH_ENV if name in os.environ}
        env.update({"SANDBOX_MAX_OUTPUT_CHARS": str(self.max_output_chars), "SANDBOX_MEMORY_MB": str(self.memory_mb),
                    "SANDBOX_DISK_MB": str(self.disk_mb), "SANDBOX_MAX_TIMEOUT": str(self.max_timeout),
                    "SANDBOX_WORKERS": str(self.workers), "SANDBOX_MAX_QUEUE": str(self.max_queue)})
        return env


def service_modules() -> ModuleType:
    """The service package (``sandbox/nemo_eval_sandbox``), imported from the bundled folder."""
    folder = str(bundled_dir("sandbox"))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import nemo_eval_sandbox.server

    return nemo_eval_sandbox.server


def check_bwrap_mode() -> None:
    """One-line errors for what bwrap mode needs."""
    if os.geteuid() != 0:
        raise UserError("sandbox bwrap mode runs each execution as its own unprivileged uid, which needs root "
                        "(run it with sudo), or use --mode docker")
    if shutil.which("bwrap") is None:
        raise UserError("sandbox bwrap mode needs bubblewrap: apt-get install bubblewrap (or use --mode docker)")
    if not os.path.exists("/usr/bin/python3"):
        raise UserError("sandbox bwrap mode runs code with the system Python: apt-get install python3")
    # sympy is only needed for math grading: probe for it while the service starts, warn when it is missing
    probe = subprocess.Popen(["/usr/bin/python3", "-c", "import sympy"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)

    def warn_without_sympy() -> None:
        if probe.wait() != 0:
            print("nemo-eval sandbox: warning: the system Python has no sympy, so math grading will fail "
                  "(apt-get install python3-sympy); code execution works", file=sys.stderr, flush=True)
    threading.Thread(target=warn_without_sympy, daemon=True).start()


def run_bwrap_mode(settings: SandboxSettings, announce: Callable[[str], None]) -> int:
    """Serve in this process until SIGTERM/SIGINT; ``announce`` is called once the service answers.

    Raises:
        UserError: the service cannot start (one line: what is wrong and what to do).
        Terminated, KeyboardInterrupt: the service was stopped by SIGTERM / SIGINT (after a clean stop).
    """
    check_bwrap_mode()
    server = service_modules()
    limits_module = sys.modules["nemo_eval_sandbox.limits"]
    hostuids = sys.modules["nemo_eval_sandbox.hostuids"]
    try:
        limits = limits_module.limits_from_env({**os.environ, **settings.environment()})
        sockets = [server.listen_tcp(settings.host, settings.port)]
        stopped_by: Optional[int] = asyncio.run(server.run_service(
            limits, sockets, announce, log=lambda message: print(message, file=sys.stderr, flush=True)))
    except (hostuids.StartupError, limits_module.SettingsError) as exc:
        raise UserError(str(exc)) from None
    if stopped_by == 15:
        raise Terminated()
    if stopped_by == 2:
        raise KeyboardInterrupt()
    return 0
