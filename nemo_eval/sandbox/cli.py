"""``nemo-eval sandbox start``: run the code-execution sandbox service in the foreground."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Sequence

from nemo_eval.errors import UserError, run_main
from nemo_eval.sandbox.service import DEFAULT_PORT, MODES, SandboxSettings, bwrap_command, check_bwrap_mode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemo-eval sandbox",
        description="The code-execution sandbox: a Flask service (served by gunicorn) that runs untrusted "
                    "code with no network, its own pid namespace, a non-root uid, a read-only filesystem "
                    "except a private /tmp, resource limits and a hard timeout. API: POST /execute, GET /health.")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="run the service in the foreground until Ctrl-C / SIGTERM")
    start.add_argument("--mode", choices=MODES, default="bwrap",
                       help="bwrap: jails on the host (needs root + bubblewrap); docker: inside a container")
    start.add_argument("--host", default="127.0.0.1", help="address to listen on (bwrap mode)")
    start.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    start.add_argument("--workers", type=int, default=SandboxSettings.workers,
                       help="executions served at once (gunicorn workers)")
    start.add_argument("--max-output-chars", type=int, default=20000, help="stdout/stderr kept per execution")
    start.add_argument("--memory-mb", type=int, default=1024, help="address-space limit per execution")
    start.add_argument("--max-timeout", type=float, default=120.0, help="largest timeout a request may ask for")
    start.add_argument("--image", default=None, help="docker mode: the sandbox image (default nemo-eval-sandbox:latest)")
    build = sub.add_parser("build", help="build the sandbox image for docker mode (no registry needed with --make-base)")
    build.add_argument("--make-base", action="store_true",
                       help="first make a Debian base image locally (debootstrap + docker import; needs root)")
    build.add_argument("--base-image", default=None,
                       help="image to build on (default: the --make-base image, else debian:bookworm-slim)")
    build.add_argument("--tag", default=None, help="tag of the result (default nemo-eval-sandbox:latest)")
    return parser


def _build(args: argparse.Namespace) -> int:
    from nemo_eval.sandbox import docker_mode

    base = args.base_image
    if args.make_base:
        print("nemo-eval sandbox: making the base image (debootstrap, about a minute the first time)", file=sys.stderr)
        base = docker_mode.make_base_image()
    tag = docker_mode.build_image(base or "debian:bookworm-slim", args.tag or docker_mode.DEFAULT_IMAGE)
    print(f"nemo-eval sandbox: built {tag} (on {base or 'debian:bookworm-slim'})")
    return 0


def _start_docker(settings: SandboxSettings, image: str | None) -> int:
    import tempfile
    import time

    from nemo_eval.sandbox import SandboxClient, docker_mode

    socket_dir = tempfile.mkdtemp(prefix="nemo-eval-sandbox-")
    os.chmod(socket_dir, 0o755)
    container = docker_mode.run_container(settings, image or docker_mode.DEFAULT_IMAGE, socket_dir,
                                          name=f"nemo-eval-sandbox-{settings.port}")
    relay = docker_mode.SocketRelay(settings.host, settings.port, os.path.join(socket_dir, "sandbox.sock"))
    try:
        relay.start()
        client = SandboxClient(f"http://{settings.host}:{settings.port}", connect_retries=60)
        client.health()
        print(f"nemo-eval sandbox: docker mode (container {container.short_id}: no network, read-only root), "
              f"{settings.workers} workers, listening on http://{settings.host}:{settings.port} "
              "(POST /execute, GET /health)", file=sys.stderr, flush=True)
        while True:
            container.reload()
            if container.status not in ("running", "created"):
                raise UserError(f"the sandbox container stopped ({container.status}); see: docker logs {container.name}")
            time.sleep(1)
    finally:
        relay.stop()
        try:
            container.stop(timeout=5)
        except Exception:  # noqa: BLE001 - already gone
            pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "build":
        return _build(args)
    settings = SandboxSettings(mode=args.mode, host=args.host, port=args.port, workers=args.workers,
                               max_output_chars=args.max_output_chars, memory_mb=args.memory_mb,
                               max_timeout=args.max_timeout)
    if settings.workers < 1:
        raise UserError("--workers must be at least 1")
    if settings.mode == "docker":
        return _start_docker(settings, args.image)
    check_bwrap_mode()
    command = bwrap_command(settings)
    print(f"nemo-eval sandbox: bwrap mode, {settings.workers} workers, listening on "
          f"http://{settings.host}:{settings.port} (POST /execute, GET /health)", file=sys.stderr, flush=True)
    proc = subprocess.Popen(command, env={**os.environ, **settings.environment()})
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=30)
        raise


if __name__ == "__main__":
    raise SystemExit(run_main("nemo-eval sandbox", main))
