"""The agent of one warm jail: started once inside a bubblewrap jail, it runs one execution at a time.

The service starts each jail once (``jails.py``): bubblewrap gives it its own user, network (only
``lo``), pid, ipc, uts and cgroup namespaces, a read-only root with ``/usr`` and read-only ``/dev``,
and an unprivileged uid that no other jail on the host holds. This program is the jail's pid 1. It
creates a user namespace of its own (so it may mount and create namespaces; user namespaces below it
are forbidden) and forks the *agent* proper, pid 1 of a pid namespace of its own, which mounts a
``/proc`` of that namespace (``hidepid=invisible``: a program sees its own processes only; the agent
is not dumpable, so it is neither visible, readable nor traceable), installs a seccomp filter that it
and every program inherit (no ``prlimit`` on another process, no kernel keyrings, no syscall of another
ABI) and waits on the control socket (a SEQPACKET socket, fd ``argv[1]``). For each execution the agent

1. takes a fresh mount namespace (a copy of the jail's clean mounts) and a fresh ipc namespace, mounts
   one tmpfs of the execution's disk quota on ``/tmp`` and ``/dev/shm`` (every place a program can
   write, capped in total) and writes the program there;
2. starts the interpreter with ``posix_spawn`` (no copy of the agent is made), in a session of its own,
   with stdin/stdout/stderr from the service; exec drops every capability (its uid is not root); then
   makes it the OOM killer's first choice;
3. waits for it until the timeout and SIGKILLs it then; SIGKILLs every other process of the pid
   namespace (``kill(-1)``: all but pid 1, which is the agent), notes whether the tmpfs was full,
   returns to the clean mounts (the execution's mount and ipc namespaces, and its tmpfs, are freed)
   and reports on the control socket.

Nothing of an execution survives it: its processes are killed, its files go with its tmpfs, its SysV
IPC with its ipc namespace. A program cannot signal the agent (pid 1 of its namespace gets no signal
from inside that it has no handler for, and it has none). The jail itself holds no writable file. No
namespace setup by bubblewrap and no fork of a Python process per execution: that is why an execution
costs little more than starting Python.

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
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 2, 4, 8, 4096
PR_SET_DUMPABLE = 4
STAGING = "/run"  # an empty read-only directory of the jail, where each execution's tmpfs is mounted
FULL_BYTES = 64 << 10  # a tmpfs with less free space than this at the end was filled: the disk quota was hit
RLIMITS = {"as": "RLIMIT_AS", "nproc": "RLIMIT_NPROC", "fsize": "RLIMIT_FSIZE",
           "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE", "stack": "RLIMIT_STACK"}

_libc = ctypes.CDLL(None, use_errno=True)
PROGRAM_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)  # not ignored by programs as by us


# Syscalls a program must not make, as (syscall numbers of) each architecture: prlimit64 on another
# process (the agent: same uid, so the kernel would let a program lower the agent's limits for every
# later execution), and the kernel keyrings (they belong to the uid and outlive an execution).
SECCOMP_ARCHES = {  # machine: (AUDIT_ARCH_*, prlimit64, (keyctl, add_key, request_key))
    "x86_64": (0xC000003E, 302, (250, 248, 249)),
    "aarch64": (0xC00000B7, 261, (219, 217, 218)),
}
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
X32_SYSCALL_BIT = 0x40000000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _install_seccomp():
    """A seccomp filter on the agent, inherited by every program: the syscalls above fail (EPERM / ENOSYS);
    so does any syscall of another ABI (32-bit, x32), whose numbers the filter does not know."""
    machine = os.uname().machine
    if machine not in SECCOMP_ARCHES:
        raise OSError(0, "no seccomp filter for machine {} (known: {})".format(machine, ", ".join(SECCOMP_ARCHES)))
    arch, prlimit64, keyrings = SECCOMP_ARCHES[machine]
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    deny, no_sys, allow = SECCOMP_RET_ERRNO | 1, SECCOMP_RET_ERRNO | 38, SECCOMP_RET_ALLOW
    program = [
        (ld, 0, 0, 4),                      # 0: arch
        (jeq, 1, 0, arch),                  # 1: native -> 3
        (ret, 0, 0, deny),                  # 2
        (ld, 0, 0, 0),                      # 3: syscall number
        (jge, 0, 1, X32_SYSCALL_BIT),       # 4: x32 -> 5, else 6
        (ret, 0, 0, deny),                  # 5
        (jeq, 0, 3, prlimit64),             # 6: prlimit64 -> 7, else 10
        (ld, 0, 0, 16),                     # 7: its pid (low 32 bits of the first argument)
        (jeq, 4, 0, 0),                     # 8: pid 0 (itself) -> 13 allow
        (ret, 0, 0, deny),                  # 9
        (jeq, 3, 0, keyrings[0]),           # 10: keyctl -> 14
        (jeq, 2, 0, keyrings[1]),           # 11: add_key -> 14
        (jeq, 1, 0, keyrings[2]),           # 12: request_key -> 14
        (ret, 0, 0, allow),                 # 13
        (ret, 0, 0, no_sys),                # 14
    ]
    filters = (_SockFilter * len(program))(*[_SockFilter(*instruction) for instruction in program])
    prog = _SockFprog(len(program), filters)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "prctl(SECCOMP)")


def _own_limits():
    """This process's resource limits (a program must not be able to change them: checked after each run)."""
    return [resource.getrlimit(getattr(resource, name)) for name in sorted(set(RLIMITS.values()) | {"RLIMIT_CPU"})]


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
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # nothing of the agent can be read, traced or seen in /proc
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # pid 1 gets no signal from its namespace it has no handler for
    # a /proc of this pid namespace, where a program sees its own processes only (the agent is not ptrace-readable)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
    base_mounts = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    no_input = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    _install_seccomp()
    settings = {}
    limits = _own_limits()
    control.send(json.dumps({"ready": True, "python": sys.version.split()[0]}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 8)
        except ConnectionError:
            return
        for fd in fds:  # (recv_fds ignores MSG_CMSG_CLOEXEC): the program gets only its stdio
            os.set_inheritable(fd, False)
        if not message:  # the service closed the socket: the jail ends
            return
        report = {}
        try:
            header_end = message.index(b"\0")
            request = json.loads(message[:header_end].decode())
            if "settings" in request:
                settings = request["settings"]
                _apply_rlimits(settings["rlimits"])
                limits = _own_limits()
            report = _execute(request, settings, message, header_end + 1, fds, no_input)
        except Exception as exc:  # noqa: BLE001 - any setup failure is reported, never raised
            report = {"setup_error": "{}: {}".format(type(exc).__name__, exc)}
        finally:
            for fd in fds:
                _close(fd)
            _kill_the_rest()  # what the program left running (and, after a failure, the program itself)
            if "return_code" in report:  # its tmpfs, now that nothing can write to it any more
                report["disk_full"] = _was_full()
            _check(_libc.setns(base_mounts, CLONE_NEWNS), "setns")  # the execution's mounts and tmpfs are freed
        if _own_limits() != limits:  # (the seccomp filter forbids it): never serve with limits a program chose
            control.send(json.dumps(dict(report, retire=True)).encode())  # this result stands; the jail ends
            return
        control.send(json.dumps(report).encode())


def _apply_rlimits(rlimits):
    """The limits every program inherits from the agent."""
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


def _execute(request, settings, message, offset, fds, no_input):
    """One execution. fds: stdout, stderr (and program, stdin when they did not fit in the message)."""
    program_bytes, stdin_bytes = request["program_bytes"], request["stdin_bytes"]
    if program_bytes >= 0:
        program = memoryview(message)[offset:offset + program_bytes]
        data = message[offset + program_bytes:offset + program_bytes + stdin_bytes]
        stdin_fd = _memfd(data) if data else os.dup(no_input)
    else:
        program = _read_all(fds[2])
        stdin_fd = os.dup(fds[3])
    try:
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")  # a copy of the clean mounts; no SysV IPC
        try:
            _mount_workspace(settings)
            language = settings["languages"][request["language"]]
            with open(os.path.join("/tmp", language["file"]), "wb") as program_file:
                program_file.write(program)
            pid = _spawn(language["argv"], settings["env"], (stdin_fd, fds[0], fds[1]))
        except OSError as exc:
            return {"setup_error": "cannot start the program: {}".format(exc)}
    finally:
        for fd in fds[:2] + [stdin_fd]:  # only the program holds its stdio now
            _close(fd)
    timed_out = _wait(pid, float(request["timeout"]))
    _, status = os.waitpid(pid, 0)
    return {"return_code": os.waitstatus_to_exitcode(status), "timed_out": timed_out}


def _mount_workspace(settings):
    """One fresh tmpfs of the disk quota, on ``/tmp`` and ``/dev/shm`` (every place a program can write)."""
    uid, gid = os.getuid(), os.getgid()
    _mount("tmpfs", STAGING, "tmpfs", MS_NOSUID | MS_NODEV, "size={},nr_inodes={},mode=0755,uid={},gid={}".format(
        int(settings["disk_bytes"]), int(settings["inodes"]), uid, gid))
    for name, target in (("tmp", "/tmp"), ("shm", "/dev/shm")):  # one quota for both
        os.mkdir(os.path.join(STAGING, name), 0o700)
        _mount(os.path.join(STAGING, name), target, None, MS_BIND)


def _spawn(argv, env, stdio):
    """Start the program (posix_spawn: no copy of this process) in its own session, at ``/tmp``.

    The wall-clock timeout is what bounds it (there is no CPU-time limit: the agent could only set one
    on itself, or on the program with prlimit, which the seccomp filter forbids).
    """
    os.chdir("/tmp")
    try:
        pid = os.posix_spawn(argv[0], argv, env, setsid=True, setsigdef=PROGRAM_DEFAULT_SIGNALS,
                             setsigmask=(), file_actions=[(os.POSIX_SPAWN_DUP2, fd, target)
                                                          for target, fd in enumerate(stdio)])
    finally:
        os.chdir("/")
    try:  # it starts before this takes hold; it only matters once memory runs out
        _write("/proc/{}/oom_score_adj".format(pid), "1000")  # if memory runs out, the program goes first
    except (ProcessLookupError, FileNotFoundError, PermissionError):
        pass  # it has ended already (the /proc files of a process that has ended belong to root)
    return pid


def _kill_the_rest():
    """SIGKILL every process of the jail but this one (what the program left running), and reap them.

    As pid 1 of the jail's pid namespace, ``kill(-1)`` reaches all the others; repeated until none is left,
    so that a process forked while the first signal went out dies too.
    """
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            break
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    _reap_strays()


def _was_full():
    """Whether the execution's tmpfs is (nearly) full: the disk quota was hit."""
    space = os.statvfs(STAGING)
    return space.f_bavail * space.f_frsize < FULL_BYTES or space.f_favail == 0


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


def _wait(pid, timeout):
    """Wait for ``pid`` to end; SIGKILL it at ``timeout`` seconds. True if it had to be killed."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(timeout * 1000):
            return False
        os.kill(pid, signal.SIGKILL)
        return True
    finally:
        os.close(pidfd)


if __name__ == "__main__":
    main()
