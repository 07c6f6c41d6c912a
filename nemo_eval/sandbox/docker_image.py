"""The docker-mode image: built without a registry, tagged by the digest of the service code in it.

``make_base_image`` debootstraps a Debian root filesystem (cached as a tarball) and imports it;
``build_image`` builds ``sandbox/Dockerfile`` on it. The default tag is
``nemo-eval-sandbox:<digest>``, the digest of the files the image is built from, so checkouts of
different code on one host never fight over a tag; every image also carries the digest as a label,
and ``sandbox start`` refuses an image built from other code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from nemo_eval.docker_client import docker_client
from nemo_eval.errors import UserError
from nemo_eval.resources import bundled_dir

REPOSITORY = "nemo-eval-sandbox"
BASE_IMAGE = "nemo-eval-sandbox-base:bookworm"
# Flask and gunicorn are no longer used; they stay so that this base image (and its cached root
# filesystem) remains the one earlier versions build under the same tag on a shared host.
BASE_PACKAGES = "python3,python3-flask,python3-sympy,gunicorn,bubblewrap"
DIGEST_LABEL = "nemo-eval.sandbox-digest"


def source_files() -> list[Path]:
    """The files the image is built from (what its digest covers)."""
    folder = bundled_dir("sandbox")
    return [folder / "Dockerfile"] + sorted((folder / "nemo_eval_sandbox").glob("*.py"))


def source_digest() -> str:
    """Digest of the service code baked into the image (an image from other code is stale)."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def default_image() -> str:
    """``nemo-eval-sandbox:<digest>``: this code's image."""
    return f"{REPOSITORY}:{source_digest()}"


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


def build_image(base_image: str, tag: str | None = None) -> str:
    """``docker build`` of ``sandbox/Dockerfile`` on ``base_image``; returns the tag (default: :func:`default_image`)."""
    tag = tag or default_image()
    client = docker_client()
    try:
        client.images.build(path=str(bundled_dir("sandbox")), tag=tag, buildargs={"BASE_IMAGE": base_image},
                            pull=False, rm=True, labels={DIGEST_LABEL: source_digest()})
    except Exception as exc:  # noqa: BLE001 - the SDK raises several types; all mean "build failed"
        hint = "; without a registry, make the base image here: nemo-eval sandbox build --make-base" \
            if "registry" in str(exc) or "pull" in str(exc) else ""
        raise UserError(f"building {tag} from {base_image} failed: {' '.join(str(exc).split())[:300]}{hint}") from None
    return tag


def image_exists(image: str) -> bool:
    """Whether the Docker engine has ``image`` locally."""
    try:
        docker_client().images.get(image)
    except Exception:  # noqa: BLE001 - not found, or no engine: either way not usable here
        return False
    return True


def checked_image(client, image: str):
    """The image object, or a one-line error when it is missing or holds other sandbox code."""
    try:
        found = client.images.get(image)
    except Exception:  # noqa: BLE001
        raise UserError(f"no sandbox image {image!r}; build it with: nemo-eval sandbox build --make-base") from None
    if (found.labels or {}).get(DIGEST_LABEL) != source_digest():
        raise UserError(f"sandbox image {image!r} holds other sandbox code than this nemo-eval; rebuild it: "
                        "nemo-eval sandbox build --make-base" + (f" --tag {image}" if image != default_image() else ""))
    return found
