"""Where Slurm commands run: here (a login node) or on the cluster over ssh (``ssh_tunnel``).

:class:`LocalShell` runs ``sbatch``/``scontrol`` here and writes files directly. :class:`SshShell`
runs them on the tunnel host with key-based, non-interactive ssh, writes files through ``cat``,
and uploads nemo-eval's own code (the package with its bundled prompts, datasets, sandbox and
cluster configs) to ``<job_dir>/code``, which the job scripts put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import Optional

from nemo_eval.errors import UserError
from nemo_eval.pipeline.cluster_config import SshTunnel
from nemo_eval.resources import RESOURCE_NAMES, bundled_dir

PACKAGE_DIR = Path(__file__).resolve().parent.parent


class LocalShell:
    """Slurm commands and files on this machine."""

    code_dir: Optional[str] = None

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise UserError(f"{argv[0]} is not installed here: run on a Slurm login node, or set ssh_tunnel in the "
                            "cluster config") from None

    def write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def read(self, path: Path) -> str:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def upload_code(self) -> None:
        return None


class SshShell:
    """Slurm commands and files on the ``ssh_tunnel`` host."""

    def __init__(self, tunnel: SshTunnel) -> None:
        self.tunnel = tunnel
        self.code_dir = f"{tunnel.job_dir.rstrip('/')}/code"

    def _ssh(self, command: str, stdin: Optional[bytes] = None, timeout: float = 120) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.tunnel.ssh_command() + [command], input=stdin, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"ssh {self.tunnel.destination()} did not answer in {timeout:.0f} s") from None

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        result = self._ssh(shlex.join(argv), timeout=timeout)
        return subprocess.CompletedProcess(argv, result.returncode, result.stdout.decode(errors="replace"),
                                           result.stderr.decode(errors="replace"))

    def write(self, path: Path, text: str) -> None:
        target = shlex.quote(str(path))
        result = self._ssh(f"mkdir -p {shlex.quote(str(path.parent))} && cat > {target}", stdin=text.encode())
        if result.returncode != 0:
            raise UserError(f"cannot write {path} on {self.tunnel.destination()}: "
                            f"{result.stderr.decode(errors='replace').strip()[:200]}")

    def read(self, path: Path) -> str:
        result = self._ssh(f"cat {shlex.quote(str(path))} 2>/dev/null")
        return result.stdout.decode(errors="replace")

    def upload_code(self) -> None:
        """Copy nemo-eval's package (with its bundled folders) to ``<job_dir>/code``."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            skip = lambda info: None if "__pycache__" in info.name or info.name.endswith(".pyc") else info
            archive.add(PACKAGE_DIR, arcname="nemo_eval", filter=lambda info: None if "/_bundled" in info.name else skip(info))
            for name in RESOURCE_NAMES:
                archive.add(bundled_dir(name), arcname=f"nemo_eval/_bundled/{name}", filter=skip)
        code = shlex.quote(self.code_dir)
        result = self._ssh(f"rm -rf {code} && mkdir -p {code} && tar -xzf - -C {code}", stdin=buffer.getvalue(),
                           timeout=600)
        if result.returncode != 0:
            raise UserError(f"cannot copy nemo-eval to {self.code_dir} on {self.tunnel.destination()}: "
                            f"{result.stderr.decode(errors='replace').strip()[:200]}")
