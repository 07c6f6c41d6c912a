"""Docker mode: the sandbox service inside a container with no network, a read-only root, and
pids/memory limits; every execution inside it is still jailed by bubblewrap.

With no network there is no port to publish: gunicorn listens on a unix socket in a bind-mounted
host directory, and :class:`SocketRelay` forwards a TCP port on 127.0.0.1 to it, so clients talk
HTTP as in bwrap mode. Images are built without a registry: ``make_base_image`` debootstraps a
Debian root filesystem (cached as a tarball) and imports it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

from nemo_eval.errors import UserError
from nemo_eval.resources import bundled_dir
from nemo_eval.sandbox.service import SandboxSettings

DEFAULT_IMAGE = "nemo-eval-sandbox:latest"
BASE_IMAGE = "nemo-eval-sandbox-base:bookworm"
BASE_PACKAGES = "python3,python3-flask,python3-sympy,gunicorn,bubblewrap"


def docker_client():
    """A docker SDK client, or a one-line error saying how to get an engine."""
    try:
        import docker
        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable engine"
        raise UserError(f"cannot talk to a Docker engine ({type(exc).__name__}); install and start one "
                        "(apt-get install docker.io; dockerd), or use --mode bwrap") from None


def _debian_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def make_base_image(tag: str = BASE_IMAGE, suite: str = "bookworm") -> str:
    """Debootstrap a minimal Debian with the service's packages and import it as ``tag`` (cached)."""
    client = docker_client()
    if shutil.which("debootstrap") is None:
        raise UserError("making the base image needs debootstrap: apt-get install debootstrap")
    mirror = os.environ.get("NEMO_EVAL_DEBIAN_MIRROR") or _debian_mirror()
    key = hashlib.sha256(f"{suite} {BASE_PACKAGES} {mirror}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nemo-eval" / f"rootfs-{suite}-{key}.tar"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="nemo-eval-rootfs-", dir="/var/tmp"))
        try:
            result = subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", suite, str(root),
                                     mirror], capture_output=True, text=True)
            if result.returncode != 0:
                raise UserError(f"debootstrap failed ({result.stderr.strip().splitlines()[-1:]}); check the Debian "
                                f"mirror {mirror} (set NEMO_EVAL_DEBIAN_MIRROR)")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/man", "usr/share/locale"):
                shutil.rmtree(root / junk, ignore_errors=True)
            subprocess.run(["tar", "-C", str(root), "-cf", f"{cache}.tmp", "."], check=True)
            os.replace(f"{cache}.tmp", cache)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    repository, _, version = tag.partition(":")
    with open(cache, "rb") as tarball:
        client.api.import_image_from_data(tarball.read(), repository=repository, tag=version or "latest",
                                          changes=["ENV LANG=C.UTF-8"])
    return tag


DIGEST_LABEL = "nemo-eval.sandbox-digest"


def source_digest() -> str:
    """Digest of the service code baked into the image (an image from other code is stale)."""
    digest = hashlib.sha256()
    for name in ("Dockerfile", "jail.py", "server.py"):
        digest.update((bundled_dir("sandbox") / name).read_bytes())
    return digest.hexdigest()[:16]


def build_image(base_image: str, tag: str = DEFAULT_IMAGE) -> str:
    """``docker build`` of ``sandbox/Dockerfile`` on ``base_image``; returns the tag."""
    client = docker_client()
    try:
        client.images.build(path=str(bundled_dir("sandbox")), tag=tag, buildargs={"BASE_IMAGE": base_image},
                            pull=False, rm=True, labels={DIGEST_LABEL: source_digest()})
    except Exception as exc:  # noqa: BLE001 - the SDK raises several types; all mean "build failed"
        raise UserError(f"building {tag} from {base_image} failed: {' '.join(str(exc).split())[:300]}") from None
    return tag


class SocketRelay:
    """Forward 127.0.0.1:``port`` to a unix socket, in a background thread."""

    def __init__(self, host: str, port: int, socket_path: str) -> None:
        self.host, self.port, self.socket_path = host, port, socket_path
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: Optional[BaseException] = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise UserError(f"cannot listen on {self.host}:{self.port}: {self._error}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def run_container(settings: SandboxSettings, image: str, socket_dir: str, name: str):
    """Start the service container: no network, read-only root, pids/memory limits, bwrap allowed."""
    client = docker_client()
    try:
        found = client.images.get(image)
    except Exception:  # noqa: BLE001
        raise UserError(f"no sandbox image {image!r}; build it with: nemo-eval sandbox build --make-base") from None
    if (found.labels or {}).get(DIGEST_LABEL) != source_digest():
        raise UserError(f"sandbox image {image!r} holds other sandbox code than this nemo-eval; rebuild it: "
                        "nemo-eval sandbox build --make-base")
    command = ["gunicorn", "--bind", "unix:/run/sandbox/sandbox.sock", "--umask", "0", "--workers",
               str(settings.workers), "--timeout", str(int(settings.max_timeout) + 60), "--log-level", "warning",
               "server:app"]
    api = client.api
    host_config = api.create_host_config(
        network_mode="none", read_only=True, tmpfs={"/tmp": "rw,exec,size=4g"}, pids_limit=4096,
        mem_limit=f"{settings.memory_mb * settings.workers + 1024}m", auto_remove=True,
        security_opt=["seccomp=unconfined"], binds={socket_dir: {"bind": "/run/sandbox", "mode": "rw"}})
    # bubblewrap mounts /proc for each jail: the CLI's "--security-opt systempaths=unconfined" is this
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    try:
        api.remove_container(name, force=True)  # a container left by a start that was SIGKILLed
    except Exception:  # noqa: BLE001 - usually: no such container
        pass
    try:
        created = api.create_container(image, command=command, name=name, host_config=host_config,
                                       environment=settings.environment(), volumes=["/run/sandbox"])
        api.start(created["Id"])
    except Exception as exc:  # noqa: BLE001 - engine errors of every kind: one line for the user
        raise UserError(f"cannot start the sandbox container: {' '.join(str(exc).split())[:300]}") from None
    return client.containers.get(created["Id"])
