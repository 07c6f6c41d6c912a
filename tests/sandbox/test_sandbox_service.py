"""Hostile code against the real sandbox service, in both modes: every attack is contained with a
clear status, nothing leaks into the next execution, and the service keeps answering meanwhile."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers import cli_env, run_cli, single_error_line
from nemo_eval.sandbox import SandboxClient, SandboxUnavailable
from sandbox_support import jail_uids, program_processes

FILL = "i = 0\nwhile True:\n    open(f'{DIR}/f{i}', 'wb').write(b'x' * (16 << 20))\n    i += 1"


def run(url, code, timeout=3.0, language="python", std_input=""):
    return SandboxClient(url).execute(code, language=language, timeout=timeout, std_input=std_input)


def test_plain_python_bash_and_stdin(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    assert run(sandbox_url, "print(6 * 7)") | {"wall_time": 0} == {
        "process_status": "completed", "stdout": "42\n", "stderr": "", "return_code": 0,
        "stdout_truncated": False, "stderr_truncated": False, "wall_time": 0}
    assert run(sandbox_url, "echo $((6*7))", language="bash")["stdout"] == "42\n"
    assert run(sandbox_url, "print(input()[::-1])", std_input="olleh")["stdout"] == "hello\n"
    failed = run(sandbox_url, "raise SystemExit(3)")
    assert failed["process_status"] == "completed" and failed["return_code"] == 3


def test_runs_as_an_unprivileged_user_that_sees_only_its_own_processes(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    code = ("import os, subprocess\nchild = subprocess.Popen(['sleep', '5'])\n"
            "print(os.getuid(), os.getpid(), child.pid, sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    uid, pid, child, pids = run(sandbox_url, code)["stdout"].split(" ", 3)
    assert int(uid) in jail_uids(sandbox_url) and pids.strip() == str(sorted([int(pid), int(child)]))


def test_a_program_holds_no_file_descriptor_but_its_stdio(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    code = "import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
    for std_input in ("", "some input"):  # (stdin from /dev/null or from the request)
        result = run(sandbox_url, code, std_input=std_input)
        # 0-2, and the descriptor listdir itself had open
        assert result["stdout"] == "[0, 1, 2, 3]\n", result


# The jail's agent (pid 1 of the jail's pid namespace, the program's parent) cannot be signalled, traced,
# read or seen by a program: each attempt fails, and the next execution runs as usual.
AGAINST_THE_AGENT = [
    ("signal pid 1", "import os, signal\nfor s in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):\n"
     "    os.kill(1, s)\nimport time\ntime.sleep(0.3)\nprint('sent')"),
    ("kill every process", "import os, time\ntry:\n    os.kill(-1, 9)\nexcept ProcessLookupError:\n    pass  # none but "
     "itself\ntime.sleep(0.3)\nprint('sent')"),
    ("trace pid 1", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
     "print('attached' if libc.ptrace(16, 1, 0, 0) == 0 else 'sent')"),
    ("read the agent's memory", "try:\n    open('/proc/1/mem', 'rb').read(16)\n    print('read')\n"
     "except OSError:\n    print('sent')"),
    ("lower the agent's limits", "import resource\ntry:\n    resource.prlimit(1, resource.RLIMIT_NOFILE, (3, 3))\n"
     "    print('lowered')\nexcept OSError:\n    print('sent')"),
    ("leave a secret in a kernel keyring", "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
     "libc.syscall.restype = ctypes.c_long\nadd_key = {'x86_64': 248, 'aarch64': 217}[os.uname().machine]\n"
     "print('stored' if libc.syscall(add_key, b'user', b'leak', b'secret', 6, ctypes.c_int(-4)) >= 0 else 'sent')"),
    ("read the agent's environment", "try:\n    print(open('/proc/1/environ').read() or 'sent')\n"
     "except OSError:\n    print('sent')"),
]


@pytest.mark.parametrize("name,code", AGAINST_THE_AGENT, ids=[case[0] for case in AGAINST_THE_AGENT])
def test_a_program_cannot_reach_the_agent(sandbox_mode_url, name, code):
    _, sandbox_url = sandbox_mode_url
    for _ in range(3):  # the same jail (or its siblings) serve again as before
        result = run(sandbox_url, code)
        assert (result["process_status"], result["stdout"]) in {("completed", "sent\n")}, (name, result)
    assert run(sandbox_url, "print(6 * 7)")["stdout"] == "42\n"


# (name, code, timeout, status, evidence in stderr). Memory cases get time to reach the limit: filling
# 1 GiB takes 0.6-2.5 s on these VMs (fresh pages are faulted in from the hypervisor), more under load.
HOSTILE = [
    ("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", 3, "timeout", ""),
    ("memory bomb", "x = bytearray(8 << 30)", 3, "completed", "MemoryError"),
    ("growing memory", "a = []\nwhile True:\n    a.append(' ' * 10**7)", 60, "memory_limit", ""),
    ("memory in files and RAM together", "x = bytearray(900 << 20)\n" + FILL.replace("{DIR}", "/tmp"), 60,
     "memory_limit", ""),
    ("infinite loop", "while True:\n    pass", 3, "timeout", ""),
    ("sleep past the timeout", "import time\ntime.sleep(60)", 3, "timeout", ""),
    ("write outside /tmp", "open('/usr/evil', 'w')", 3, "completed", "Read-only file system"),
    ("write the jail's root", "open('/evil', 'wb').write(b'x' * (1 << 30))", 3, "completed", "Read-only file system"),
    ("write /dev", "open('/dev/evil', 'wb').write(b'x' * (1 << 30))", 3, "completed", "Read-only file system"),
    ("fill /tmp", FILL.replace("{DIR}", "/tmp"), 30, "disk_limit", "No space left on device"),
    ("fill /dev/shm", FILL.replace("{DIR}", "/dev/shm"), 30, "disk_limit", "No space left on device"),
    ("fill the work dir", FILL.replace("{DIR}", "."), 30, "disk_limit", "No space left on device"),
    ("write the home dir", "import os\nopen(os.path.expanduser('~') + '/../../root/evil', 'w')", 3, "completed", "Error"),
    ("read the host's home", "import os\nprint(os.listdir('/root'))", 3, "completed", "No such file or directory"),
    ("read /etc/shadow", "print(open('/etc/shadow').read())", 3, "completed", "No such file or directory"),
    ("connect to another loopback address", "import socket\nsocket.create_connection(('127.0.0.2', 80), timeout=2)",
     3, "completed", "Connection refused"),
    # one file past the quota is the same disk_limit as many (it used to stop at a smaller per-file
    # limit with "File too large" and end as `completed`)
    ("one file past the disk quota", "open('/tmp/big', 'wb').write(b'0' * (300 << 20))", 10, "disk_limit", "Error"),
    ("one file past the quota, error caught", "try:\n    open('/tmp/big', 'wb').write(b'0' * (300 << 20))\n"
     "except OSError as exc:\n    print(exc)", 10, "disk_limit", ""),
    ("nested user namespace", "import ctypes\nif ctypes.CDLL(None).unshare(0x10000000) == 0:\n    print('escaped')\n"
     "raise SystemExit('refused')", 3, "completed", "refused"),
]


@pytest.mark.parametrize("name,code,timeout,status,evidence", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_code_is_contained(sandbox_mode_url, name, code, timeout, status, evidence):
    _, sandbox_url = sandbox_mode_url
    result = run(sandbox_url, code, timeout=timeout)
    assert result["process_status"] == status, (name, result)
    assert evidence in result["stderr"], (name, result["stderr"][-300:])
    assert "escaped" not in result["stdout"]
    if status == "timeout":
        assert result["return_code"] is None
    time.sleep(0.1)
    assert program_processes(jail_uids(sandbox_url)) == [], f"{name} left processes behind"
    assert requests.get(sandbox_url + "/health", timeout=10).json()["status"] == "ok"


def test_sixty_four_threads_fit_in_the_limits(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    code = ("import threading, time\nthreads = [threading.Thread(target=time.sleep, args=(0.3,)) for _ in range(64)]\n"
            "for t in threads:\n    t.start()\nfor t in threads:\n    t.join()\nprint(len(threads))")
    result = run(sandbox_url, code, timeout=20)
    assert (result["process_status"], result["stdout"]) == ("completed", "64\n"), result


def test_a_deep_tree_of_locked_directories_is_no_problem(sandbox_mode_url):
    """Cleanup used to be shutil.rmtree over the work dir: deep trees broke it (HTTP 500, dirs left)."""
    mode, sandbox_url = sandbox_mode_url
    code = ("import os\nfor i in range(20000):\n    os.mkdir('d')\n    os.chdir('d')\n    if i % 1000 == 0:\n"
            "        open('f', 'w').close()\n        os.chmod('f', 0)\nos.chdir('/tmp/d')\nos.chmod('.', 0)\nprint('built')")
    for _ in range(3):
        result = run(sandbox_url, code, timeout=60)
        assert (result["process_status"], result["stdout"]) == ("completed", "built\n"), result
    assert run(sandbox_url, "import os\nprint(os.listdir('/tmp'))")["stdout"] == "['main.py']\n"
    assert requests.get(sandbox_url + "/health", timeout=10).json()["status"] == "ok"


def test_the_jail_has_no_network_but_its_own_loopback(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    code = "import socket\nprint(socket.if_nameindex())\nprint(open('/proc/net/route').read().splitlines()[1:])"
    result = run(sandbox_url, code)
    assert result["stdout"] == "[(1, 'lo')]\n[]\n", result  # no interface but lo, no IPv4 route at all


def test_huge_output_is_capped_and_marked_keeping_head_and_tail(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    code = ("import sys\nsys.stdout.write('START')\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n"
            "    sys.stdout.write(chunk)\nprint('END')\nprint('end', file=sys.stderr)")
    result = run(sandbox_url, code, timeout=20)
    assert result["process_status"] == "completed" and result["return_code"] == 0
    assert len(result["stdout"]) == 1000 and result["stdout_truncated"] is True
    assert result["stdout"].startswith("STARTxxx") and result["stdout"].endswith("xxxEND\n")
    assert result["stderr"] == "end\n" and result["stderr_truncated"] is False


def test_binary_and_invalid_utf8_output(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    result = run(sandbox_url, "import sys\nsys.stdout.buffer.write(bytes(range(256)) + b'\\xff\\xfe')")
    assert result["process_status"] == "completed"
    assert result["stdout"].startswith("\x00\x01\x02") and "\ufffd" in result["stdout"]


def test_nothing_leaks_into_the_next_execution(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    first = run(sandbox_url, "import subprocess, sys\nopen('/tmp/secret', 'w').write('1')\n"
                             "open('/dev/shm/secret', 'w').write('1')\n"
                             "import ctypes\nctypes.CDLL(None).shmget(1234, 1 << 20, 0o1666)\n"
                             "subprocess.Popen(['sleep', '1000'])\nsubprocess.Popen(['sh', '-c', 'sleep 1000 &'])\nprint('ok')")
    assert first["stdout"] == "ok\n"
    time.sleep(0.2)
    assert program_processes(jail_uids(sandbox_url)) == [], "background processes die with the execution"
    for _ in range(8):  # whichever jail serves it
        result = run(sandbox_url, "import os\nprint(os.listdir('/tmp'), os.listdir('/dev/shm'), "
                                  "open('/proc/sysvipc/shm').read().splitlines()[1:])")
        assert result["stdout"] == "['main.py'] [] []\n"


def test_cannot_signal_other_processes(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    result = run(sandbox_url, f"import os\ntry:\n    os.kill({os.getpid()}, 9)\nexcept OSError as e:\n    print(type(e).__name__)")
    assert result["stdout"] == "ProcessLookupError\n"  # the test process is not even visible


def test_keeps_answering_while_workers_are_busy(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    client = SandboxClient(sandbox_url, max_concurrency=8)
    with ThreadPoolExecutor(2) as pool:
        hogs = [pool.submit(client.execute, "while True:\n    pass", "python", 4.0) for _ in range(2)]
        time.sleep(0.3)
        quick = client.execute_many([{"code": f"print({i})"} for i in range(20)])
        assert [r["stdout"] for r in quick] == [f"{i}\n" for i in range(20)]
        assert not any(h.done() for h in hogs), "the quick ones were served while the hogs ran"
        assert [h.result()["process_status"] for h in hogs] == ["timeout", "timeout"]


def test_unreachable_sandbox_names_the_address():
    with pytest.raises(SandboxUnavailable, match=r"cannot reach the sandbox at http://127.0.0.1:9 "):
        SandboxClient("http://127.0.0.1:9", connect_retries=2).execute("print(1)")


def test_start_refuses_without_bubblewrap(tmp_path):
    env = cli_env(tmp_path, PATH=str(tmp_path))  # no bwrap on this PATH
    result = run_cli("sandbox", "start", "--port", "1", env=env)
    assert result.returncode == 2 and "apt-get install bubblewrap" in single_error_line(result.stderr)


def test_docker_mode_runs_without_network_on_a_read_only_root(sandbox_mode_url):
    mode, sandbox_url = sandbox_mode_url
    if mode != "docker":
        pytest.skip("docker mode only")
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True).stdout.split()
    port = sandbox_url.rsplit(":", 1)[1]
    inspect = subprocess.run(["docker", "inspect", "-f", "{{.HostConfig.NetworkMode}} {{.HostConfig.ReadonlyRootfs}} "
                              "{{.HostConfig.PidsLimit}}", f"nemo-eval-sandbox-{port}"], capture_output=True, text=True)
    assert f"nemo-eval-sandbox-{port}" in names
    assert inspect.stdout.split() == ["none", "true", "4096"]


@pytest.mark.docker
def test_docker_mode_without_an_image_says_how_to_build_it(tmp_path):
    import shutil

    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("needs a Docker engine")
    result = run_cli("sandbox", "start", "--mode", "docker", "--image", "nemo-eval-no-such-image:x", "--port", "1")
    assert result.returncode == 2 and "nemo-eval sandbox build" in single_error_line(result.stderr)


def test_cannot_reach_a_server_listening_on_the_hosts_loopback(sandbox_mode_url):
    """A server of this test listens on the host's 127.0.0.1: the jail must not reach it."""
    _, sandbox_url = sandbox_mode_url
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from the host
        result = run(sandbox_url, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert result["process_status"] == "completed" and result["return_code"] == 1
    assert "Connection refused" in result["stderr"]


def test_output_just_over_the_cap_keeps_its_end(sandbox_mode_url):
    """Between the cap and twice the cap, the end of the output must survive (graders look there)."""
    _, sandbox_url = sandbox_mode_url
    result = run(sandbox_url, "print('x' * 1500)\nprint('THE-END')")
    assert result["stdout_truncated"] is True and len(result["stdout"]) == 1000
    assert result["stdout"].startswith("xxx") and result["stdout"].endswith("xxx\nTHE-END\n")


@pytest.mark.bwrap
def test_an_insecure_state_dir_is_refused(tmp_path):
    """A state directory someone else could write to would let them aim root's file operations anywhere."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    result = run_cli("sandbox", "start", "--port", "1", env=cli_env(tmp_path, SANDBOX_STATE_DIR=str(planted)))
    line = single_error_line(result.stderr)
    assert result.returncode == 2 and "refusing the sandbox state directory" in line and "listening" not in line
