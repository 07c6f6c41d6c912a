"""The agent of one warm jail: started once inside a bubblewrap jail, it runs one execution at a time.

The service starts each jail once (``jails.py``): bubblewrap gives it its own user, network (only
``lo``), pid, ipc, uts and cgroup namespaces, a read-only root with ``/usr`` and read-only ``/dev``,
and an unprivileged uid that no other jail on the host holds. This program is the jail's pid 1. It
creates a user namespace of its own (so it may mount, create namespaces and switch the pid namespace
of its next child; user namespaces below it are forbidden) and forks the *agent* proper, pid 1 of a
pid namespace of its own, which waits on the control socket (a SEQPACKET socket, fd ``argv[1]``).
For each execution the agent

1. forks the *program process* into a new pid namespace (it is pid 1 there), which takes new mount
   and ipc namespaces, mounts one fresh tmpfs of the execution's disk quota on ``/tmp`` and
   ``/dev/shm`` (every place the program can write, capped in total), writes the program there,
   mounts its own ``/proc``, becomes the OOM killer's first choice, sets its CPU limit and execs the
   interpreter with stdin/stdout/stderr from the service, which drops every capability (its uid is
   not root);
2. waits for it until the timeout, then SIGKILLs it (which kills every process of its pid
   namespace), notes whether the tmpfs (handed back as a file descriptor) was full, lets it go and
   reports on the control socket.

Nothing of an execution survives it: its processes die with their pid namespace, its files with its
tmpfs, its SysV IPC with its ipc namespace. The jail itself holds no writable file. One fork of a
small Python process and no namespace setup by bubblewrap per execution: that is why an execution
costs little more than starting Python.

This file runs under the system Python (``python3 -I -S``), standard library only, Python >= 3.9.
"""

import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 2, 4, 8, 4096
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
STAGING = "/run"  # an empty read-only directory of the jail, where each execution's tmpfs is mounted
FULL_BYTES = 64 << 10  # a tmpfs with less free space than this at the end was filled: the disk quota was hit
RLIMITS = {"as": "RLIMIT_AS", "nproc": "RLIMIT_NPROC", "fsize": "RLIMIT_FSIZE",
           "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE", "stack": "RLIMIT_STACK"}

_libc = ctypes.CDLL(None, use_errno=True)
_WORKSPACE_CHILD = None  # the program process's end of the agent's workspace socket pair


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
    """pid 1 of the jail: own namespaces, then the agent as pid 1 of its own pid namespace."""
    control = socket.socket(fileno=int(sys.argv[1]))
    control.set_inheritable(False)
    for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; programs must not inherit that
        signal.signal(number, signal.SIG_DFL)
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", "{0} {0} 1".format(uid))
    _write("/proc/self/gid_map", "{0} {0} 1".format(gid))
    _write("/proc/sys/user/max_user_namespaces", "0")  # no program creates namespaces of its own
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    agent = os.fork()
    if agent == 0:
        try:
            _serve(control)
        finally:
            os._exit(0)
    control.close()
    while True:  # (orphans of the jail come here too)
        try:
            if os.wait()[0] == agent:
                return
        except ChildProcessError:
            return


def _serve(control):
    global _WORKSPACE_CHILD
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # nothing of the agent can be read or traced
    workspace, _WORKSPACE_CHILD = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    own_pid_namespace = os.open("/proc/self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
    no_input = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    settings = {}
    gc.collect()
    gc.freeze()  # fewer copied pages in each fork
    control.send(json.dumps({"ready": True, "python": sys.version.split()[0]}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 8, socket.MSG_CMSG_CLOEXEC)
        except ConnectionError:
            return
        if not message:  # the service closed the socket: the jail ends
            return
        try:
            header_end = message.index(b"\0")
            request = json.loads(message[:header_end].decode())
            if "settings" in request:
                settings = request["settings"]
                _apply_rlimits(settings["rlimits"])
            report = _execute(request, settings, message, header_end + 1, fds, no_input, own_pid_namespace,
                              workspace)
        except Exception as exc:  # noqa: BLE001 - any setup failure is reported, never raised
            report = {"setup_error": "{}: {}".format(type(exc).__name__, exc)}
        finally:
            for fd in fds:
                _close(fd)
        control.send(json.dumps(report).encode())
        _reap_strays()


def _apply_rlimits(rlimits):
    """The limits every program inherits from the agent (the CPU limit is set per program)."""
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, RLIMITS[name]), (value, value))


def _close(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def _reap_strays():
    """pid 1 adopts orphans: reap any that ended (normally there are none)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _execute(request, settings, message, offset, fds, no_input, own_pid_namespace, workspace):
    """One execution. fds: stdout, stderr (and program, stdin when they did not fit in the message).

    ``workspace`` is our end of a socket pair on which the program process hands back its tmpfs (a
    file descriptor of it), so that we can tell whether it was full once the program is gone.
    """
    program_bytes, stdin_bytes = request["program_bytes"], request["stdin_bytes"]
    if program_bytes >= 0:
        program = memoryview(message)[offset:offset + program_bytes]
        data = message[offset + program_bytes:offset + program_bytes + stdin_bytes]
        stdin_fd = _memfd(data) if data else os.dup(no_input)
    else:
        program = _read_all(fds[2])
        stdin_fd = os.dup(fds[3])
    try:
        pid, start_error = _fork_program(request, settings, program, stdin_fd, fds[0], fds[1], own_pid_namespace)
    finally:
        for fd in fds[:2] + [stdin_fd]:  # only the program holds its stdio now
            _close(fd)
    timed_out = _wait(pid, float(request["timeout"]))
    _, status = os.waitpid(pid, 0)
    full = _was_full(workspace)
    if start_error:
        return {"setup_error": "cannot start the program: " + start_error}
    return {"return_code": os.waitstatus_to_exitcode(status), "timed_out": timed_out, "disk_full": full}


def _was_full(workspace):
    """Whether the tmpfs the program process handed back (if it got that far) is full; then let it go."""
    try:
        _, fds, _, _ = socket.recv_fds(workspace, 16, 1, socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    full = False
    for fd in fds:
        space = os.fstatvfs(fd)
        full = space.f_bavail * space.f_frsize < FULL_BYTES or space.f_favail == 0
        os.close(fd)  # the last reference: the tmpfs and everything in it are freed now
    return full


def _memfd(data):
    fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _fork_program(request, settings, program, stdin_fd, stdout_fd, stderr_fd, own_pid_namespace):
    """Fork the program process as pid 1 of a new pid namespace; its stdio comes from ours.

    Returns its pid and what went wrong before it could exec ("" if nothing). Until then we only wait:
    pages we wrote while it still shared them would have to be copied.
    """
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    for fd, target in ((stdin_fd, 0), (stdout_fd, 1), (stderr_fd, 2)):
        os.dup2(fd, target, inheritable=True)
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    try:
        pid = os.fork()
        if pid == 0:
            try:
                _start_program(request, settings, program)
            except BaseException as exc:  # noqa: BLE001 - told to the agent through the pipe
                os.write(error_write, "{}: {}".format(type(exc).__name__, exc).encode()[:4000])
            os._exit(127)
        os.close(error_write)
        error_write = -1
        start_error = os.read(error_read, 4096)  # returns at its exec (the pipe closes) or its failure
    finally:
        _close(error_read)
        if error_write >= 0:
            _close(error_write)
        _check(_libc.setns(own_pid_namespace, CLONE_NEWPID), "setns")  # our next child is ours again
        for fd, target in zip(saved, (0, 1, 2)):
            os.dup2(fd, target, inheritable=True)
            os.close(fd)
    return pid, start_error.decode("utf-8", "replace")


def _start_program(request, settings, program):
    """In the program process (pid 1 of its pid namespace): its own mounts, limits, then exec."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    uid, gid = os.getuid(), os.getgid()
    _mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV, "size={},nr_inodes={},mode=0755,uid={},gid={}".format(
        int(settings["disk_bytes"]), int(settings["inodes"]), uid, gid))
    for name, target in (("tmp", "/tmp"), ("shm", "/dev/shm")):  # one quota for both
        os.mkdir(os.path.join(STAGING, name), 0o700)
        _mount(os.path.join(STAGING, name), target, None, MS_BIND)
    language = settings["languages"][request["language"]]
    with open(os.path.join("/tmp", language["file"]), "wb") as program_file:
        program_file.write(program)
    workspace = os.open(STAGING, os.O_PATH | os.O_CLOEXEC)
    socket.send_fds(_WORKSPACE_CHILD, [b"w"], [workspace])
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _write("/proc/self/oom_score_adj", "1000")  # if memory runs out, the program goes first
    os.setsid()
    os.chdir("/tmp")
    cpu = int(request["cpu"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    os.execve(language["argv"][0], language["argv"], settings["env"])


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


if __name__ == "__main__":
    main()
