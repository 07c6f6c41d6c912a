"""The agent of one warm jail: pid 1 inside a bubblewrap jail, started once, runs many executions.

The service starts each jail once (``jails.py``): bubblewrap gives it its own user, network (only
``lo``), pid, ipc, uts and cgroup namespaces, a read-only root with ``/usr`` and read-only ``/dev``,
and an unprivileged uid that no other jail on the host holds. This program then waits on its
control socket (a SEQPACKET socket whose fd number is ``argv[1]``) for executions. For each one it
forks a *supervisor*, which

1. creates a fresh user, mount, pid, ipc and uts namespace nested in the jail's (so it may mount);
2. mounts one fresh tmpfs of the execution's disk quota and binds it on ``/tmp`` and ``/dev/shm``:
   every place the program can write, capped in total, and gone when the execution ends;
3. writes the program there and forks the *program process*: pid 1 of the new pid namespace, with
   its own ``/proc``, no way to create further user namespaces, rlimits, the OOM killer's first
   choice, stdin/stdout/stderr from the service; it execs the interpreter, which drops every
   capability (its uid is not root);
4. waits for it until the timeout, then SIGKILLs it (which kills every process of its pid
   namespace), notes whether the tmpfs was full, reports on the control socket and exits.

Nothing of an execution survives it: its processes die with their pid namespace, its files with its
tmpfs, its SysV IPC with its ipc namespace. The jail itself holds no writable file.

This file runs under the system Python (``python3 -I -S``), standard library only, Python >= 3.9.
"""

import ctypes
import json
import os
import resource
import select
import signal
import socket
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 2, 4, 8, 4096
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
STAGING = "/run"  # an empty read-only directory of the jail, where the execution's tmpfs is mounted first
FULL_BYTES = 64 << 10  # a tmpfs with less free space than this at the end was filled: the disk quota was hit

RLIMITS = {"cpu": "RLIMIT_CPU", "as": "RLIMIT_AS", "nproc": "RLIMIT_NPROC", "fsize": "RLIMIT_FSIZE",
           "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE", "stack": "RLIMIT_STACK"}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, "{}: {}".format(what, os.strerror(errno)))


def _mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), "mount " + target)


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def main():
    control = socket.socket(fileno=int(sys.argv[1]))
    for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; programs must not inherit that
        signal.signal(number, signal.SIG_DFL)
    control.send(json.dumps({"ready": True, "python": sys.version.split()[0]}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 8)
        except ConnectionError:
            return
        if not message:  # the service closed the socket: the jail ends
            return
        request = json.loads(message.decode())
        supervisor = os.fork()
        if supervisor == 0:
            try:
                _supervise(control, request, fds)
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        os.waitpid(supervisor, 0)
        _reap_strays()


def _reap_strays():
    """pid 1 adopts orphans: reap any that ended (normally there are none)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _supervise(control, request, fds):
    """One execution (in a fork of the agent): namespaces, files, the program, the report."""
    code_fd, stdin_fd, stdout_fd, stderr_fd = fds
    report = {}
    try:
        report = _run_execution(request, code_fd, stdin_fd, stdout_fd, stderr_fd)
    except Exception as exc:  # noqa: BLE001 - any setup failure is reported, never raised into the agent
        report = {"setup_error": "{}: {}".format(type(exc).__name__, exc)}
    try:
        control.send(json.dumps(report).encode())
    finally:
        os._exit(0)


def _run_execution(request, code_fd, stdin_fd, stdout_fd, stderr_fd):
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", "{0} {0} 1".format(uid))
    _write("/proc/self/gid_map", "{0} {0} 1".format(gid))
    quota = int(request["disk_bytes"])
    _mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV,
           "size={},nr_inodes={},mode=0755,uid={},gid={}".format(quota, int(request["inodes"]), uid, gid))
    for name, target in (("tmp", "/tmp"), ("shm", "/dev/shm")):
        os.mkdir(os.path.join(STAGING, name), 0o700)
        _mount(os.path.join(STAGING, name), target, None, MS_BIND)
    _check(_libc.umount2(STAGING.encode(), MNT_DETACH), "umount " + STAGING)
    with open(os.path.join("/tmp", request["file"]), "wb") as program_file:
        while True:
            chunk = os.read(code_fd, 1 << 20)
            if not chunk:
                break
            program_file.write(chunk)
    os.close(code_fd)
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    program = os.fork()
    if program == 0:
        os.close(error_read)
        try:
            _start_program(request, stdin_fd, stdout_fd, stderr_fd, error_write)
        except BaseException as exc:  # noqa: BLE001 - told to the supervisor through the pipe
            os.write(error_write, "{}: {}".format(type(exc).__name__, exc).encode()[:4000])
        os._exit(127)
    for fd in (stdin_fd, stdout_fd, stderr_fd, error_write):
        os.close(fd)
    timed_out = _wait(program, float(request["timeout"]))
    _, status = os.waitpid(program, 0)
    start_error = os.read(error_read, 4096).decode("utf-8", "replace")
    if start_error:
        return {"setup_error": "cannot start the program: " + start_error}
    space = os.statvfs("/tmp")
    full = space.f_bavail * space.f_frsize < FULL_BYTES or space.f_favail == 0
    return {"return_code": os.waitstatus_to_exitcode(status), "timed_out": timed_out, "disk_full": full}


def _wait(pid, timeout):
    """Wait for ``pid`` to end; SIGKILL it at ``timeout`` seconds. True if it had to be killed."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(timeout * 1000):
            return False
        os.kill(pid, signal.SIGKILL)  # pid 1 of its namespace: the kernel kills every process in it
        return True
    finally:
        os.close(pidfd)


def _start_program(request, stdin_fd, stdout_fd, stderr_fd, error_fd):
    """In the program process (pid 1 of the new pid namespace): last setup, then exec."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _write("/proc/sys/user/max_user_namespaces", "0")  # the program cannot nest namespaces of its own
    _write("/proc/self/oom_score_adj", "1000")  # if memory runs out, the program goes first
    os.setsid()
    for name, value in request["rlimits"].items():
        resource.setrlimit(getattr(resource, RLIMITS[name]), (value, value))
    os.chdir("/tmp")
    for fd, target in ((stdin_fd, 0), (stdout_fd, 1), (stderr_fd, 2)):
        os.dup2(fd, target, inheritable=True)
    os.closerange(3, error_fd)
    os.closerange(error_fd + 1, 1 << 16)
    os.execve(request["argv"][0], request["argv"], request["env"])


if __name__ == "__main__":
    main()
