"""A launched inference server in a Docker container (local executor, ``containers:`` in the config).

The container twin of :class:`~nemo_eval.inference.server.launcher.LaunchedServer`: same server
types, same health check, same start/stop contract.

The server's own launch command runs in the configured image with host networking (so it answers
on 127.0.0.1:<port> like a process would), the config's mounts and env vars, and GPUs requested
through the engine when ``--server-gpus`` is set. Its output streams to the server log; the
container is stopped and removed on success, failure, Ctrl-C and SIGTERM. It carries the labels the
launcher gives it (``nemo-eval.run``, ``nemo-eval.output-dir``), so the run's watchdog, or the next run
on the same output dir, removes it when the launcher was killed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

from nemo_eval.docker_client import (docker_client, engine_error, exit_code, gpu_requests, remove_container,
                                     stream_logs)
from nemo_eval.errors import UserError
from nemo_eval.inference.server.base import LaunchArgs, ServerType
from nemo_eval.processes import log_tail, poll_until_healthy

NO_ENGINE_HINT = "or run the server as a process (remove it from containers: in the cluster config)"


class ContainerServer:
    """Context manager: start ``server_type`` in ``image``, wait until healthy, always remove it."""

    def __init__(self, server_type: ServerType, args: LaunchArgs, image: str, log_path: Path,
                 mounts: tuple[str, ...] = (), env: Optional[dict[str, str]] = None, startup_timeout: float = 1800.0,
                 labels: Optional[dict[str, str]] = None):
        self.server_type, self.args, self.image, self.log_path = server_type, args, image, log_path
        self.command = server_type.command(args)
        self.mounts, self.env, self.startup_timeout = mounts, env or {}, startup_timeout
        self.labels = labels or {}
        self.root_url = f"http://127.0.0.1:{args.port}"
        self.base_url = f"{self.root_url}/v1"
        self.container: Any = None

    def __enter__(self) -> "ContainerServer":
        self.launch()
        try:
            self.wait_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def launch(self) -> str:
        """Start the container (labelled with the run, for reaping); returns its id at once."""
        client = docker_client(NO_ENGINE_HINT)
        volumes = {}
        for mount in self.mounts:
            source, _, rest = mount.partition(":")
            target, _, mode = rest.partition(":")
            volumes[source] = {"bind": target, "mode": mode or "rw"}
        requests = gpu_requests(self.args.gpus)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ docker run {self.image} {' '.join(self.command)}\n".encode())
        try:
            self.container = client.containers.run(self.image, self.command, detach=True, network_mode="host",
                                                   volumes=volumes, environment=self.env, device_requests=requests,
                                                   name=f"nemo-eval-server-{self.args.port}", labels=self.labels)
        except Exception as exc:  # noqa: BLE001 - engine errors of every kind: one line for the user
            raise engine_error(f"start the {self.server_type.name} container from {self.image}", exc) from None
        threading.Thread(target=self._copy_logs, daemon=True).start()
        print(f"nemo-eval: started {self.server_type.name} server in container {self.container.short_id} "
              f"({self.image}), log: {self.log_path}", file=sys.stderr)
        return self.container.id

    def _copy_logs(self) -> None:
        with open(self.log_path, "ab") as log:
            def write(chunk: bytes) -> None:
                log.write(chunk)
                log.flush()

            stream_logs(self.container, write)

    def _exit_code(self) -> Optional[int]:
        return exit_code(self.container)

    def wait_healthy(self) -> None:
        """Block until the server in the container answers its health check."""
        url = self.root_url + self.server_type.health_path
        outcome = poll_until_healthy(url, self.startup_timeout, self._exit_code, interval=0.5)
        if outcome == "exited":
            time.sleep(0.5)  # let the log copier catch the last lines
            raise UserError(f"the {self.server_type.name} container exited while starting: "
                            f"{log_tail(self.log_path, 1)}; see {self.log_path}")
        if outcome == "timeout":
            raise UserError(f"the {self.server_type.name} container did not become healthy ({url}) within "
                            f"{self.startup_timeout:g} s; see {self.log_path}")

    def stop_in_background(self) -> None:
        """Remove the container without waiting (the run's watchdog removes it if this process ends first)."""
        threading.Thread(target=self.__exit__, daemon=True).start()

    def __exit__(self, *exc_info: object) -> None:
        container, self.container = self.container, None
        if container is not None:
            remove_container(container, stop_timeout=20)
