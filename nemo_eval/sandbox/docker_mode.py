"""Docker mode: the sandbox service inside a container with no network and a read-only root; every
execution inside it is still jailed exactly as in bwrap mode.

With no network there is no port to publish: this process binds ``127.0.0.1:<port>`` on the host,
connects to the container's ``lease.sock`` (in a bind-mounted host directory) and hands the
listening socket over; the service accepts on it directly, so no relay stands between clients and
the service.

The container never outlives ``sandbox start``: that connection is a *lease* — this process keeps it
open, and the service stops, removing its socket directory, as soon as it closes, which the kernel
does however this process dies (``kill -9`` included). Containers carry their owner (host, pid, start time, boot id) as labels, and a starting
``sandbox start`` removes the containers, socket directories and cgroups of owners that are gone.

Shared with bwrap mode through bind mounts: the host-wide uid lock directory (so no two jails on
the host ever share a uid), and, when this process may create cgroups, a cgroup directory per
controller for the container's jails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque

from nemo_eval.docker_client import docker_client, engine_error, is_running, remove_container, stream_logs
from nemo_eval.errors import Terminated, UserError
from nemo_eval.sandbox.docker_image import BASE_IMAGE, DIGEST_LABEL, checked_image, default_image  # noqa: F401
from nemo_eval.sandbox.service import SandboxSettings, service_modules

LABEL = "nemo-eval.sandbox.owner"  # JSON: host, pid, start, boot, socket_dir, cgroups
IN_CONTAINER_SOCKETS = "/run/nemo-eval-sockets"
IN_CONTAINER_STATE = "/run/nemo-eval-sandbox"
IN_CONTAINER_CGROUPS = "/run/nemo-eval-cgroup"
HOST_STATE_DIR = "/run/nemo-eval-sandbox"


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as handle:
        return handle.read().strip()


def owner_record() -> dict:
    """Who owns a container or socket directory made now: this process, identified across pid reuse."""
    cgroups = sys.modules.get("nemo_eval_sandbox.cgroups") or _service_cgroups()
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": cgroups.process_start_time(os.getpid()),
            "boot": _boot_id()}


def _service_cgroups():
    service_modules()
    return sys.modules["nemo_eval_sandbox.cgroups"]


def owner_gone(record: dict) -> bool:
    """True only when the owner is certainly dead (same host; other boot, or no such pid/start time)."""
    if record.get("host") != socket.gethostname():
        return False
    if record.get("boot") != _boot_id():
        return True
    return _service_cgroups().process_start_time(int(record.get("pid", 0))) != record.get("start")


def socket_parent() -> str:
    """Where the socket directories of this user's sandboxes live (bind-mounted into each container)."""
    path = os.path.join(tempfile.gettempdir(), f"nemo-eval-sandbox-sockets-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        info = os.lstat(path)
        if not os.path.isdir(path) or os.path.islink(path) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise UserError(f"refusing {path}: it must be a directory of yours that nobody else can write; "
                            "remove it") from None
    return path


def reap_dead_owners(client) -> None:
    """Remove containers, socket directories and cgroups whose ``sandbox start`` died without cleaning up."""
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        try:
            record = json.loads(container.labels.get(LABEL, "{}"))
        except ValueError:
            continue
        if owner_gone(record):
            remove_container(container)
            _remove_leftovers(record)
    parent = socket_parent()
    for name in os.listdir(parent):
        try:
            with open(os.path.join(parent, name, "owner.json")) as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        if owner_gone(record):
            _remove_leftovers({**record, "socket_dir": os.path.join(parent, name)})


def _remove_leftovers(record: dict) -> None:
    if record.get("socket_dir"):
        shutil.rmtree(record["socket_dir"], ignore_errors=True)
    for path in (record.get("cgroups") or {}).values():
        _service_cgroups().remove_tree(path)


def delegated_cgroups(jails: int) -> dict[str, str]:
    """Per-controller cgroup directories for the container's jails, or {} when we may not create them."""
    if os.geteuid() != 0:
        return {}
    cgroups = _service_cgroups()
    try:
        return cgroups.host_instance_dirs(os.getpid(), jails, cpu=True)
    except cgroups.CgroupsUnavailable as exc:
        print(f"nemo-eval sandbox: warning: {exc}; the container's jails fall back to rlimits", file=sys.stderr)
        return {}


def ensure_uid_lock_dir() -> str:
    """The host-wide uid lock directory (made here when root; otherwise the Docker engine creates it)."""
    state_dir = os.environ.get("SANDBOX_STATE_DIR", HOST_STATE_DIR)
    if os.geteuid() == 0:
        service_modules()
        secure = sys.modules["nemo_eval_sandbox.hostuids"]
        try:
            secure.secure_dir(state_dir, 0o711)
            secure.secure_dir(os.path.join(state_dir, "uid-locks"), 0o700)
        except secure.StartupError as exc:
            raise UserError(str(exc)) from None
    return os.path.join(state_dir, "uid-locks")


def run_container(settings: SandboxSettings, image: str, name: str, socket_dir: str, cgroup_dirs: dict[str, str],
                  lock_dir: str):
    """Start the service container: no network, read-only root, the lease, the shared uid locks."""
    client = docker_client()
    checked_image(client, image)
    instance = os.path.basename(socket_dir)
    inside = f"{IN_CONTAINER_SOCKETS}/{instance}"
    command = ["python3", "-m", "nemo_eval_sandbox", "--lease", f"{inside}/lease.sock", "--cleanup-dir", inside]
    environment = {**settings.environment(), "SANDBOX_STATE_DIR": IN_CONTAINER_STATE}
    binds = {os.path.dirname(socket_dir): {"bind": IN_CONTAINER_SOCKETS, "mode": "rw"},
             lock_dir: {"bind": f"{IN_CONTAINER_STATE}/uid-locks", "mode": "rw"}}
    for controller, path in cgroup_dirs.items():
        binds[path] = {"bind": f"{IN_CONTAINER_CGROUPS}/{controller}", "mode": "rw"}
    if cgroup_dirs:
        environment["SANDBOX_CGROUP_ROOT"] = IN_CONTAINER_CGROUPS
        memory_mb = 2048  # the service alone: the jails have cgroups (limits, CPU weight) of their own
        cpu_shares = 1024
    else:  # everything in the container's cgroups: as much CPU weight as the jails as processes would have
        memory_mb = (settings.memory_mb + 64) * settings.workers + 2048
        cpu_shares = min(262144, 1024 * (settings.workers + 1))
    api = client.api
    host_config = api.create_host_config(
        network_mode="none", read_only=True, tmpfs={"/tmp": "rw,size=64m"}, pids_limit=4096, mem_limit=f"{memory_mb}m",
        cpu_shares=cpu_shares,
        auto_remove=True, security_opt=["seccomp=unconfined"], binds=binds)
    # bubblewrap mounts /proc for each jail: the CLI's "--security-opt systempaths=unconfined" is this
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    labels = {LABEL: json.dumps({**owner_record(), "socket_dir": socket_dir, "cgroups": cgroup_dirs}),
              DIGEST_LABEL: checked_image(client, image).labels.get(DIGEST_LABEL, "")}
    try:
        created = api.create_container(image, command=command, name=name, host_config=host_config, labels=labels,
                                       environment=environment, volumes=[b["bind"] for b in binds.values()])
        api.start(created["Id"])
    except Exception as exc:  # noqa: BLE001 - engine errors of every kind: one line for the user
        raise engine_error("start the sandbox container", exc) from None
    return client.containers.get(created["Id"])


class ContainerLog:
    """The container's log, copied to our stderr (the launcher's sandbox.log) by a daemon thread; the
    last lines are kept for error messages (an auto-removed container takes its log with it)."""

    def __init__(self, container) -> None:
        self.container = container
        self.lines: deque[str] = deque(maxlen=20)
        self.echo = False  # until the service is up, a failure is reported as one line, not as its log
        threading.Thread(target=self._copy, daemon=True).start()

    def _copy(self) -> None:
        stream_logs(self.container, self._take)

    def _take(self, chunk: bytes) -> None:
        text = chunk.decode("utf-8", "replace")
        self.lines.extend(line for line in text.splitlines() if line.strip())
        if self.echo:
            sys.stderr.write(text)
            sys.stderr.flush()

    def start_echo(self) -> None:
        """From now on copy the log; of what came before, only the warnings."""
        for line in list(self.lines):
            if "warning:" in line:
                print(line, file=sys.stderr)
        self.echo = True

    def failure(self, what: str) -> str:
        """One line: the service's own error line when it wrote one, else ``what`` and its last line."""
        time.sleep(0.2)  # let the copier catch the last words
        for line in reversed(self.lines):
            if "error:" in line:
                return line.split("error:", 1)[1].strip()
        last = self.lines[-1] if self.lines else ""
        return f"{what}{': ' + last if last else ''}; see: docker logs {self.container.name}"


def take_lease(path: str, listener: socket.socket, log: ContainerLog, patience: float = 60.0) -> socket.socket:
    """Connect to the container's lease socket, hand over ``listener`` (the service serves on it), and keep
    the connection: the container lives while it is open."""
    deadline = time.monotonic() + patience
    while True:
        lease = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lease.connect(path)
            socket.send_fds(lease, [b"listener"], [listener.fileno()])
            lease.set_inheritable(False)
            return lease
        except OSError:
            lease.close()
        if not is_running(log.container) or time.monotonic() > deadline:
            raise UserError(log.failure("the sandbox container did not start"))
        time.sleep(0.05)


def remove_when_gone(container, patience: float = 30.0) -> None:
    """Wait for the (auto-removed) container to disappear, forcing it after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            container.reload()
        except Exception:  # noqa: BLE001 - gone
            return
        time.sleep(0.1)
    remove_container(container)


class StopSignals:
    """SIGTERM/SIGINT as a flag checked between steps, as well as the usual exception.

    A signal handler's exception is lost when the handler happens to run inside a ``__del__`` or a
    garbage-collector callback (the docker SDK and HTTP clients create plenty of such objects); the
    flag is not, so a stop request is never missed.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._on_signal)

    def _on_signal(self, number: int, frame: object) -> None:
        self.received.append(number)
        self.check()

    def check(self) -> None:
        if self.received:
            raise Terminated() if self.received[0] == signal.SIGTERM else KeyboardInterrupt()


def wait_healthy(url: str, log: ContainerLog, stop: StopSignals) -> None:
    """Until ``/health`` answers; a one-line error when the container ends first."""
    import requests

    while True:
        stop.check()
        try:
            if requests.get(url + "/health", timeout=5).json().get("status") == "ok":
                return
        except (requests.RequestException, ValueError):
            pass
        if not is_running(log.container):
            raise UserError(log.failure("the sandbox container stopped"))
        time.sleep(0.1)


def watch(log: ContainerLog, stop: StopSignals) -> None:
    """Return never; a one-line error once the container stops (or the stop signal's exception)."""
    while is_running(log.container):
        stop.check()
        time.sleep(1)
    raise UserError(log.failure("the sandbox container stopped"))


def prepare_socket_dir(port: int) -> str:
    """This instance's socket directory (with its owner record, for reaping after a crash)."""
    path = tempfile.mkdtemp(prefix=f"{port}-", dir=socket_parent())
    with open(os.path.join(path, "owner.json"), "w") as handle:
        json.dump(owner_record(), handle)
    return path
