"""Long-lived children of a run: the sandbox and a launched inference server.

A :class:`Service` is started at once (from the launcher's main thread, so that the kernel's
parent-death signal is tied to the launcher itself) and waited for only by the steps that need it:
its health check runs in a background thread while data is prepared and generation starts. Stopping
sends SIGTERM and returns; the run's watchdog waits for the group and SIGKILLs what does not exit.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, Optional

from nemo_eval.children import RunWatchdog
from nemo_eval.errors import UserError
from nemo_eval.inference.server.base import LaunchArgs, get_server_type
from nemo_eval.inference.server.container import ContainerServer
from nemo_eval.inference.server.launcher import LaunchedServer
from nemo_eval.pipeline.cluster_config import ClusterConfig
from nemo_eval.pipeline.steps import EvalJob, StepRunner, last_message
from nemo_eval.processes import free_port, poll_until_healthy, signal_group

SANDBOX_STARTUP_S = 300.0


class Service:
    """Something started now and needed later: :meth:`address` blocks until it is healthy.

    Args:
        name: ``sandbox`` or ``server``, for messages.
        address: What steps use once it is healthy.
        wait: Blocks until healthy; raises UserError when it cannot get there.
        stop: Ends it without waiting.
    """

    def __init__(self, name: str, address: str, wait: Callable[[], None], stop: Callable[[], None]) -> None:
        self.name, self._address, self._stop = name, address, stop
        self._error: Optional[BaseException] = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._wait, args=(wait,), name=f"wait-{name}", daemon=True)
        self._thread.start()

    def _wait(self, wait: Callable[[], None]) -> None:
        try:
            wait()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever needs the service
            self._error = exc
        finally:
            self._done.set()

    def address(self) -> str:
        """The address once healthy; raises the UserError that kept it from getting there."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._address

    def stop(self) -> None:
        self._stop()


def start_sandbox(job: EvalJob, runner: StepRunner, cluster: ClusterConfig,
                  on_container: Callable[[str], None] = lambda name: None) -> Service:
    """Start ``nemo-eval sandbox start`` (mode and image from the cluster config) on a free port."""
    port = free_port()
    log = job.logs / "sandbox.log"
    image = cluster.container_for("sandbox")
    mode = "docker" if image else cluster.sandbox_mode
    if mode == "docker" and runner.watchdog is not None:
        # the container `sandbox start` names after its port: removed by the watchdog (and the next run)
        # even when that process is killed while creating it
        runner.watchdog.watch_container(f"nemo-eval-sandbox-{port}")
        on_container(f"nemo-eval-sandbox-{port}")
    proc = runner.start(job.python + ["nemo_eval", "sandbox", "start", "--mode", mode, "--port", str(port)]
                        + (["--image", image] if image else []), log, service=True)
    address = f"http://127.0.0.1:{port}"

    def wait() -> None:
        outcome = poll_until_healthy(address + "/health", SANDBOX_STARTUP_S, proc.poll, interval=0.05)
        if outcome == "exited":
            raise UserError(f"the sandbox did not start (exit {proc.returncode}): {last_message(log)}; log: {log}")
        if outcome == "timeout":
            raise UserError(f"the sandbox did not get healthy in {SANDBOX_STARTUP_S:.0f} s; log: {log}")
        print(f"nemo-eval eval: sandbox ({mode} mode) at {address}; log {log}", file=sys.stderr, flush=True)

    return Service("sandbox", address, wait, lambda: signal_group(proc, signal.SIGTERM))


def start_server(job: EvalJob, runner: StepRunner, cluster: ClusterConfig, watchdog: RunWatchdog,
                 on_container: Callable[[str], None]) -> Service:
    """Launch the inference server (a process, or a container when the cluster config names an image)."""
    server_type = get_server_type(job.server_type)
    model = server_type.model_or_default(job.model)
    if not model:
        raise UserError(f"server type {job.server_type} needs --model (a model path or name)")
    image = cluster.container_for("server", server_type.name)
    args = LaunchArgs(model=model, port=free_port(), gpus=job.server_gpus, nodes=job.server_nodes,
                      extra_args=job.server_args, python="python3" if image else sys.executable)
    log = job.logs / "server.log"
    if image:
        container = ContainerServer(server_type, args, image, log, cluster.mounts, job.env_vars,
                                    job.server_startup_timeout, labels={"nemo-eval.run": watchdog.run_id,
                                                                        "nemo-eval.output-dir": str(job.output_dir)})
        container_id = container.launch()
        watchdog.watch_container(container_id)
        on_container(container_id)
        return Service("server", container.base_url, container.wait_healthy, container.stop_in_background)
    server = LaunchedServer(server_type, args, log, startup_timeout=job.server_startup_timeout,
                            env=dict(runner.env))
    process = server.launch()
    runner.track(process, service=True)

    def wait() -> None:
        server.wait_healthy()
        print(f"nemo-eval eval: {server_type.name} server at {server.base_url}; log {log}", file=sys.stderr, flush=True)

    return Service("server", server.base_url, wait, lambda: signal_group(process, signal.SIGTERM))


def existing_server(address: str) -> Service:
    """A server that is already running (``--server-address``): nothing to start or stop."""
    return Service("server", address, lambda: None, lambda: None)
