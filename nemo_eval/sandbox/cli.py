"""``nemo-eval sandbox start|build``: run the code-execution sandbox in the foreground; build its image.

``start`` announces "listening on ..." only once the service answers; when it cannot start (port in
use, a refused state directory, no image, no bubblewrap, ...) it prints one line saying what is
wrong and what to do, and exits 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Sequence

from nemo_eval.arguments import Parser
from nemo_eval.errors import UserError, run_main
from nemo_eval.sandbox.service import DEFAULT_PORT, SANDBOX_MODES, SandboxSettings, run_bwrap_mode, service_modules


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nemo-eval sandbox",
        description="The code-execution sandbox: an HTTP service that runs untrusted code in warm bubblewrap "
                    "jails with no network, their own pid namespace, a uid no other jail on the host holds, a "
                    "read-only filesystem except a private size-capped /tmp, a memory+pids cgroup, rlimits and a "
                    "hard timeout. API: POST /execute, GET /health.")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="run the service in the foreground until Ctrl-C / SIGTERM")
    start.add_argument("--mode", choices=SANDBOX_MODES.names(), default="bwrap",
                       help="; ".join(f"{name}: {mode.description}" for name, mode in SANDBOX_MODES.items()))
    start.add_argument("--host", default="127.0.0.1", help="address to listen on")
    start.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    start.add_argument("--workers", type=int, default=SandboxSettings.workers,
                       help="executions run at once (warm jails)")
    start.add_argument("--max-queue", type=int, default=SandboxSettings.max_queue,
                       help="executions that may wait for a jail; beyond that: HTTP 503 with Retry-After")
    start.add_argument("--max-output-chars", type=int, default=20000, help="stdout/stderr kept per execution")
    start.add_argument("--memory-mb", type=int, default=1024, help="RAM per execution, its files included")
    start.add_argument("--disk-mb", type=int, default=256, help="total size of the files an execution writes")
    start.add_argument("--max-timeout", type=float, default=120.0, help="largest timeout a request may ask for")
    start.add_argument("--image", default=None,
                       help="docker mode: the sandbox image (default nemo-eval-sandbox:<digest of this code>)")
    build = sub.add_parser("build", help="build the sandbox image for docker mode (no registry needed with --make-base)")
    build.add_argument("--make-base", action="store_true",
                       help="first make a Debian base image locally (debootstrap + docker import; needs root)")
    build.add_argument("--base-image", default=None,
                       help="image to build on (default: the --make-base image if it exists here, else "
                            "debian:bookworm-slim, which needs a registry)")
    build.add_argument("--tag", default=None, help="tag of the result (default nemo-eval-sandbox:<digest of this code>)")
    return parser


def _build(args: argparse.Namespace) -> int:
    from nemo_eval.sandbox import docker_image

    base = args.base_image
    if args.make_base:
        print("nemo-eval sandbox: making the base image (debootstrap, about a minute the first time)", file=sys.stderr)
        base = docker_image.make_base_image()
    elif base is None and docker_image.image_exists(docker_image.BASE_IMAGE):
        base = docker_image.BASE_IMAGE  # made here before: no registry needed
    tag = docker_image.build_image(base or "debian:bookworm-slim", args.tag)
    print(f"nemo-eval sandbox: built {tag} (on {base or 'debian:bookworm-slim'})")
    return 0


def _announce(settings: SandboxSettings, what: str) -> None:
    print(f"nemo-eval sandbox: {what}, listening on http://{settings.host}:{settings.port} "
          "(POST /execute, GET /health)", file=sys.stderr, flush=True)


def _start_docker(settings: SandboxSettings, image: str | None) -> int:
    from nemo_eval.docker_client import docker_client, existing_container
    from nemo_eval.sandbox import docker_mode as dm

    stop = dm.StopSignals()
    client = docker_client()
    image = image or dm.default_image()
    dm.checked_image(client, image)
    server, hostuids = service_modules(), sys.modules["nemo_eval_sandbox.hostuids"]
    try:
        listener = server.listen_tcp(settings.host, settings.port)
    except hostuids.StartupError as exc:
        raise UserError(str(exc)) from None
    name = f"nemo-eval-sandbox-{settings.port}"
    container = lease = None
    socket_dir, cgroup_dirs = "", {}
    try:
        dm.reap_dead_owners(client)
        if existing_container(client, name) is not None:
            raise UserError(f"a container named {name} already exists (another sandbox start on port "
                            f"{settings.port}?); stop it, or remove it: docker rm -f {name}")
        lock_dir = dm.ensure_uid_lock_dir()
        socket_dir = dm.prepare_socket_dir(settings.port)
        cgroup_dirs = dm.delegated_cgroups(settings.workers)
        container = dm.run_container(settings, image, name, socket_dir, cgroup_dirs, lock_dir)
        log = dm.ContainerLog(container)
        lease = dm.take_lease(os.path.join(socket_dir, "lease.sock"), listener, log)
        listener.close()  # the service holds it now: when the container goes, so does the port
        dm.wait_healthy(f"http://{settings.host}:{settings.port}", log, stop)
        log.start_echo()
        _announce(settings, f"docker mode (container {container.short_id}: no network, read-only root), "
                            f"{settings.workers} workers")
        dm.watch(log, stop)
        return 1
    finally:
        listener.close()
        if lease is not None:
            lease.close()  # the service sees the lease end and stops by itself
        if container is not None:
            dm.remove_when_gone(container)
        if socket_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)
        for path in cgroup_dirs.values():
            sys.modules["nemo_eval_sandbox.cgroups"].remove_tree(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "build":
        return _build(args)
    settings = SandboxSettings(mode=args.mode, host=args.host, port=args.port, workers=args.workers,
                               max_output_chars=args.max_output_chars, memory_mb=args.memory_mb,
                               disk_mb=args.disk_mb, max_timeout=args.max_timeout, max_queue=args.max_queue)
    if settings.workers < 1:
        raise UserError("--workers must be at least 1")
    if not 0 < settings.port < 65536:
        raise UserError(f"--port must be in 1-65535 (got {settings.port})")
    if settings.mode == "docker":
        return _start_docker(settings, args.image)
    return run_bwrap_mode(settings, lambda note: _announce(settings, f"bwrap mode, {note}"))


if __name__ == "__main__":
    raise SystemExit(run_main("nemo-eval sandbox", main))
