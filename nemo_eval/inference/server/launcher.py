"""Start an inference server as a process group, wait until healthy, always tear it down.

Used as a context manager::

    with LaunchedServer(server_type, LaunchArgs(model=..., port=...), log_path) as server:
        ... server.base_url ...

If the process dies or never becomes healthy, the last lines of its log are printed and a
:class:`UserError` names the log file. On exit (success, error or Ctrl-C) the whole process
group gets SIGTERM, then SIGKILL after a grace period. The server gets SIGTERM from the kernel
when the process that launched it dies, even by ``kill -9`` (``nemo_eval.children``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from nemo_eval.children import spawn
from nemo_eval.errors import UserError
from nemo_eval.inference.server.base import LaunchArgs, ServerType
from nemo_eval.processes import log_tail, poll_until_healthy, terminate_group

TERMINATE_GRACE_S = 20.0


class LaunchedServer:
    """A server process started from a :class:`ServerType`.

    Args:
        server_type: What to launch.
        args: Model, port, GPUs, extra arguments.
        log_path: File receiving the server's stdout and stderr.
        startup_timeout: Seconds to wait for the health check to pass.
        host: Address clients use to reach it.
    """

    def __init__(self, server_type: ServerType, args: LaunchArgs, log_path: Path,
                 startup_timeout: float = 1800.0, host: str = "127.0.0.1",
                 env: Optional[dict[str, str]] = None) -> None:
        if server_type.command is None:
            raise UserError(f"server type {server_type.name!r} is not launched by nemo-eval; give its address "
                            "with ++server.base_url (or --server-address)")
        self.server_type = server_type
        self.command = server_type.command(args)
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.root_url = f"http://{host}:{args.port}"
        self.base_url = f"{self.root_url}/v1"
        self.process: Optional[subprocess.Popen] = None
        self.env = env  # None: this process's environment

    def __enter__(self) -> "LaunchedServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Launch and wait until healthy (a UserError naming the log when it dies or never gets there)."""
        self.launch()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def launch(self) -> subprocess.Popen:
        """Start the server process (its own group, tied to this process's life); returns at once."""
        try:
            self.process = spawn(self.command, self.log_path, self.env if self.env is not None else dict(os.environ))
        except FileNotFoundError:
            raise UserError(f"cannot start the {self.server_type.name} server: {self.command[0]!r} is not "
                            "installed (install its extra, e.g. pip install 'nemo-eval[...]', or use its container)") from None
        print(f"nemo-eval: started {self.server_type.name} server (pid {self.process.pid}), log: {self.log_path}",
              file=sys.stderr)
        return self.process

    def wait_healthy(self) -> None:
        """Block until the launched server answers its health check."""
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self.process is not None
        url = self.root_url + self.server_type.health_path
        outcome = poll_until_healthy(url, self.startup_timeout, self.process.poll)
        if outcome is None:
            return
        print(f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}\n---", file=sys.stderr)
        if outcome == "exited":
            raise UserError(f"the {self.server_type.name} server exited with code {self.process.returncode} while "
                            f"starting; see {self.log_path}")
        raise UserError(f"the {self.server_type.name} server did not become healthy ({url}) within "
                        f"{self.startup_timeout:g} s; see {self.log_path} (raise ++server.startup_timeout "
                        "for large models)")

    def stop(self) -> None:
        """Terminate the whole process group; SIGKILL what is left after the grace period."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            terminate_group(process, TERMINATE_GRACE_S)
