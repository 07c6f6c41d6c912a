"""Starting and stopping the sandbox for real: a start that cannot work says why in one line (and
never claims to listen), nothing outlives ``sandbox start`` however it dies (kill -9 included), what
a crashed service left is reclaimed by the next one, and images are tagged by their code."""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import free_port, run_cli, single_error_line
from sandbox_support import (jail_uids, own_cgroup, process_start_time, program_processes, require, start_sandbox,
                             stderr_of, stop_sandbox)


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=pytest.mark.bwrap),
                                  pytest.param("docker", marks=pytest.mark.docker)])
def test_a_busy_port_is_one_line_and_exit_2(mode):
    require(mode)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("sandbox", "start", "--mode", mode, "--port", str(port), timeout=120)
    line = single_error_line(result.stderr)
    assert result.returncode == 2 and f"127.0.0.1:{port}" in line and "--port" in line and "listening" not in line


@pytest.mark.bwrap
def test_a_bad_setting_is_one_line_and_exit_2():
    require("bwrap")
    result = run_cli("sandbox", "start", "--port", str(free_port()), "--disk-mb", "0")
    assert result.returncode == 2 and "disk-mb must be positive" in single_error_line(result.stderr)


def _wait_until(predicate, patience: float = 60.0) -> bool:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _containers(port: int) -> list[str]:
    return subprocess.run(["docker", "ps", "-a", "--filter", f"name=^nemo-eval-sandbox-{port}$", "--format",
                           "{{.Names}}"], capture_output=True, text=True).stdout.split()


def _socket_dirs(port: int) -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), f"nemo-eval-sandbox-sockets-{os.getuid()}", f"{port}-*"))


@pytest.mark.docker
def test_docker_container_and_socket_dir_die_with_a_sigkilled_start():
    require("docker")
    proc, url = start_sandbox("docker")
    port = int(url.rsplit(":", 1)[1])
    assert _containers(port) and _socket_dirs(port)
    uids = jail_uids(url)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.unlink(proc.stderr_path)
    assert _wait_until(lambda: not _containers(port)), "the container outlived its sandbox start"
    assert _wait_until(lambda: not _socket_dirs(port)), "the socket directory was left behind"
    assert _wait_until(lambda: not program_processes(uids))


@pytest.mark.docker
def test_docker_sigterm_stops_cleanly_and_a_custom_tag_works():
    require("docker")
    tag = f"nemo-eval-sandbox-test:{os.getpid()}"
    built = run_cli("sandbox", "build", "--base-image", "nemo-eval-sandbox-base:bookworm", "--tag", tag, timeout=600)
    assert built.returncode == 0, built.stderr
    try:
        proc, url = start_sandbox("docker", "--image", tag)
        port = int(url.rsplit(":", 1)[1])
        owner = json.loads(subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "nemo-eval.sandbox.owner"}}',
                                           f"nemo-eval-sandbox-{port}"], capture_output=True, text=True).stdout)
        assert owner["pid"] == proc.pid and owner["socket_dir"] in _socket_dirs(port)
        assert stop_sandbox(proc) == 143
        assert not _containers(port) and not _socket_dirs(port)
        assert not [path for path in owner["cgroups"].values() if os.path.exists(path)], "cgroups left behind"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.mark.docker
def test_images_are_tagged_by_the_digest_of_their_code():
    require("docker")  # builds this code's image under its default tag
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from nemo_eval.sandbox.docker_image import DIGEST_LABEL, default_image, source_digest

    assert default_image() == f"nemo-eval-sandbox:{source_digest()}"
    label = subprocess.run(["docker", "inspect", "-f", f'{{{{index .Config.Labels "{DIGEST_LABEL}"}}}}', default_image()],
                           capture_output=True, text=True).stdout.strip()
    assert label == source_digest()


@pytest.mark.bwrap
def test_a_crashed_services_leftovers_are_reclaimed_by_the_next_start():
    require("bwrap")
    proc, url = start_sandbox("bwrap")
    leftover = os.path.join(own_cgroup("memory"), f"nemo-eval-sandbox-{proc.pid}-{process_start_time(proc.pid)}")
    assert os.path.isdir(leftover)
    uids = jail_uids(url)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.unlink(proc.stderr_path)
    assert _wait_until(lambda: not program_processes(uids))  # its jails died with it
    assert os.path.isdir(leftover), "a SIGKILLed service cannot clean up after itself"
    second, _ = start_sandbox("bwrap")
    try:
        assert not os.path.exists(leftover), "the next start reclaims what the dead one left"
    finally:
        assert stop_sandbox(second) == 143
    mine = os.path.join(own_cgroup("memory"), f"nemo-eval-sandbox-{second.pid}-")
    assert not glob.glob(mine + "*"), "a service stopped by SIGTERM removes its own cgroups"


@pytest.mark.bwrap
def test_start_with_python_m_nemo_eval_sandbox_module(tmp_path):
    """The service package also runs on its own (as in the container): same one-line errors."""
    require("bwrap")
    sandbox_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "sandbox")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run([sys.executable, "-m", "nemo_eval_sandbox", "--port", str(taken.getsockname()[1])],
                                cwd=sandbox_dir, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "choose another --port" in single_error_line(result.stderr)


@pytest.mark.bwrap
def test_without_cgroups_it_says_so_and_rlimits_still_contain_everything(tmp_path):
    """Where no cgroup can be created (here: an unusable delegated directory) the service warns and
    falls back to rlimits: memory per process, processes per uid; threads still fit."""
    require("bwrap")
    env = {**os.environ, "SANDBOX_CGROUP_ROOT": str(tmp_path / "no-cgroups")}
    proc, url = start_sandbox("bwrap", env=env)
    try:
        from nemo_eval.sandbox import SandboxClient

        client = SandboxClient(url)
        assert client.health()["cgroups"].startswith("unavailable")
        growing = client.execute("a = []\nwhile True:\n    a.append(' ' * 10**7)", timeout=60)
        assert growing["process_status"] == "completed" and "MemoryError" in growing["stderr"], growing
        bomb = client.execute("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                              timeout=3)
        assert bomb["process_status"] == "timeout"
        threads = client.execute("import threading, time\nts = [threading.Thread(target=time.sleep, args=(0.3,)) "
                                 "for _ in range(64)]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint(len(ts))",
                                 timeout=20)
        assert threads["stdout"] == "64\n", threads
        assert _wait_until(lambda: not program_processes(jail_uids(url)))
        stderr = stderr_of(proc)
        assert "warning:" in stderr and "cgroup" in stderr
    finally:
        stop_sandbox(proc)


@pytest.mark.docker
def test_a_starting_docker_sandbox_reaps_what_dead_owners_left():
    """A container and a socket directory whose sandbox start died on this boot (a pid that no longer
    runs) are removed by the next start, whatever its port."""
    require("docker")
    from nemo_eval.sandbox.docker_image import default_image
    from nemo_eval.sandbox.docker_mode import LABEL, socket_parent

    with open("/proc/sys/kernel/random/boot_id") as handle:
        boot = handle.read().strip()
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that ran on this host and is gone
    orphan_dir = tempfile.mkdtemp(prefix="1-", dir=socket_parent())
    record = {"host": socket.gethostname(), "pid": dead.pid, "start": 1, "boot": boot, "socket_dir": orphan_dir,
              "cgroups": {}}
    with open(os.path.join(orphan_dir, "owner.json"), "w") as handle:
        json.dump(record, handle)
    name = f"nemo-eval-sandbox-orphan-{os.getpid()}"
    created = subprocess.run(["docker", "run", "-d", "--name", name, "--network", "none", "--label",
                              f"{LABEL}={json.dumps(record)}", default_image(), "sleep", "600"],
                             capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    try:
        proc, _ = start_sandbox("docker")
        assert stop_sandbox(proc) == 143
        gone = subprocess.run(["docker", "ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Names}}"],
                              capture_output=True, text=True).stdout.split()
        assert gone == [] and not os.path.exists(orphan_dir)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
