"""Cluster configs: where and how the launcher runs things (``cluster_configs/<name>.yaml``).

Chosen by ``--cluster`` (a bundled name or a YAML path), else ``NEMO_EVAL_CONFIG``, else ``local``.
Everything is validated before anything is launched; each problem is a one-line error. The
bundled ``local.yaml`` and ``slurm.yaml`` document every field. Sandbox modes and container roles
come from the registries: ``containers:`` takes ``nemo_eval``, ``sandbox``, ``server`` (any server
type) and the name of every launchable server type, plugins' included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from nemo_eval.errors import UserError, reject_unknown_keys
from nemo_eval.inference.server import SERVERS
from nemo_eval.resources import search_path
from nemo_eval.sandbox.service import SANDBOX_MODES

EXECUTORS = ("local", "slurm")
CONTAINER_RUNTIMES = ("pyxis", "oci")
STEP_ROLES = ("nemo_eval", "sandbox", "server")  # containers for nemo-eval's steps, the sandbox, any server


def container_roles() -> list[str]:
    """The keys ``containers:`` accepts: the step roles and every launchable server type."""
    return [*STEP_ROLES, *(name for name, server in SERVERS.items() if server.launchable)]


@dataclass(frozen=True)
class SlurmSettings:
    """``slurm:`` section: what every sbatch script asks for."""

    account: Optional[str] = None
    partition: Optional[str] = None
    time: str = "04:00:00"
    gpus_per_node: int = 0
    job_name_prefix: str = "nemo-eval"
    extra_sbatch_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class SshTunnel:
    """``ssh_tunnel:`` section: submit from a laptop; code is copied to ``job_dir`` on the cluster."""

    host: str
    job_dir: str
    user: Optional[str] = None
    identity_file: Optional[str] = None
    port: Optional[int] = None
    ssh_args: tuple[str, ...] = ()  # extra ssh options, e.g. ["-o", "ProxyJump=bastion"]

    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def ssh_command(self) -> list[str]:
        command = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"] + (["-p", str(self.port)] if self.port else [])
        if self.identity_file:
            command += ["-i", str(Path(self.identity_file).expanduser())]
        return command + list(self.ssh_args) + [self.destination()]


@dataclass(frozen=True)
class ClusterConfig:
    """One validated cluster config (see ``cluster_configs/slurm.yaml`` for every field)."""

    name: str
    executor: str = "local"
    sandbox_mode: str = "bwrap"
    env_vars: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)
    container_runtime: str = "pyxis"
    mounts: tuple[str, ...] = ()
    python: str = sys.executable
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    ssh_tunnel: Optional[SshTunnel] = None

    def container_for(self, role: str, server_type: Optional[str] = None) -> Optional[str]:
        if role == "server":
            return self.containers.get(server_type or "") or self.containers.get("server")
        return self.containers.get(role)


def _find(name: str) -> Path:
    candidate = Path(name).expanduser()
    if candidate.suffix in (".yaml", ".yml") or os.sep in name:
        if not candidate.is_file():
            raise UserError(f"cluster config {candidate} does not exist")
        return candidate
    folders = search_path("cluster_configs")
    for folder in folders:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})
    raise UserError(f"unknown cluster config {name!r}; known: {', '.join(known)} (or give a path to a YAML file)")


def _section(path: Path, data: dict[str, Any], key: str, cls: type) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise UserError(f"{path}: {key} must be a mapping")
    reject_unknown_keys(f"{path} {key}", value, {f.name for f in fields(cls)})
    return value


def _check_mounts(path: Path, mounts: Any, remote: bool) -> tuple[str, ...]:
    if not isinstance(mounts, list) or not all(isinstance(m, str) for m in mounts):
        raise UserError(f"{path}: mounts must be a list of 'host_path:container_path' strings")
    for mount in mounts:
        source, _, target = mount.partition(":")
        if not source or not target:
            raise UserError(f"{path}: mount {mount!r} must look like host_path:container_path")
        if not remote and not Path(source).expanduser().exists():
            raise UserError(f"{path}: mount source {source} does not exist (fix the path or create it)")
    return tuple(mounts)


def load_cluster_config(name: Optional[str]) -> ClusterConfig:
    """The validated config named by ``--cluster``, ``NEMO_EVAL_CONFIG`` or the default ``local``."""
    path = _find(name or os.environ.get("NEMO_EVAL_CONFIG") or "local")
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of settings")
    reject_unknown_keys(str(path), data, {f.name for f in fields(ClusterConfig)} - {"name"})
    executor = data.get("executor", "local")
    if executor not in EXECUTORS:
        raise UserError(f"{path}: executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")
    if data.get("sandbox_mode", "bwrap") not in SANDBOX_MODES:
        raise UserError(f"{path}: sandbox_mode must be one of {', '.join(SANDBOX_MODES.names())}")
    env_vars = data.get("env_vars") or {}
    if not isinstance(env_vars, dict):
        raise UserError(f"{path}: env_vars must be a mapping NAME: value")
    for key, value in env_vars.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UserError(f"{path}: env_vars.{key} must be a string (quote it in the YAML: {key}: \"...\")")
    containers = data.get("containers") or {}
    if not isinstance(containers, dict) or not all(isinstance(v, str) or v is None for v in containers.values()):
        raise UserError(f"{path}: containers must be a mapping role: image")
    containers = {k: v for k, v in containers.items() if v}
    reject_unknown_keys(f"{path} containers", containers, container_roles())
    if "nemo_eval" in containers and executor == "local":
        raise UserError(f"{path}: the local executor runs nemo-eval's own steps as processes here; containers.nemo_eval "
                        "is for executor: slurm (remove it)")
    runtime = data.get("container_runtime", "pyxis")
    if runtime not in CONTAINER_RUNTIMES:
        raise UserError(f"{path}: container_runtime must be one of {', '.join(CONTAINER_RUNTIMES)} (got {runtime!r})")
    if runtime == "oci" and not data.get("ssh_tunnel"):
        for role, bundle in containers.items():
            if not (Path(str(bundle)).expanduser() / "config.json").is_file():
                raise UserError(f"{path}: containers.{role} must be an OCI bundle directory (with config.json) for "
                                f"container_runtime: oci; {bundle} is not one")
    slurm = _section(path, data, "slurm", SlurmSettings)
    tunnel_data = data.get("ssh_tunnel")
    tunnel = None
    if tunnel_data:
        tunnel_data = _section(path, data, "ssh_tunnel", SshTunnel)
        if not tunnel_data.get("host") or not tunnel_data.get("job_dir"):
            raise UserError(f"{path}: ssh_tunnel needs host and job_dir")
        tunnel = SshTunnel(**{**tunnel_data, "ssh_args": tuple(str(a) for a in tunnel_data.get("ssh_args") or ())})
    extra = slurm.get("extra_sbatch_args") or []
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise UserError(f"{path}: slurm.extra_sbatch_args must be a list of strings, e.g. [\"--exclusive\"]")
    if not isinstance(slurm.get("time", "04:00:00"), str):
        raise UserError(f"{path}: slurm.time must be a quoted string like \"04:00:00\" (unquoted, YAML reads 1:00:00 "
                        "as a number of seconds)")
    gpus = slurm.get("gpus_per_node", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise UserError(f"{path}: slurm.gpus_per_node must be a whole number >= 0")
    for key in ("account", "partition", "job_name_prefix"):
        if slurm.get(key) is not None and not isinstance(slurm[key], str):
            raise UserError(f"{path}: slurm.{key} must be a string")
    settings = SlurmSettings(**{**slurm, "extra_sbatch_args": tuple(extra)})
    return ClusterConfig(name=str(path), executor=executor, sandbox_mode=data.get("sandbox_mode", "bwrap"),
                         env_vars={str(k): str(v) for k, v in env_vars.items()}, containers=containers,
                         container_runtime=runtime,
                         mounts=_check_mounts(path, data.get("mounts") or [], remote=tunnel is not None),
                         python=str(data.get("python") or (sys.executable if tunnel is None else "python3")),
                         slurm=settings, ssh_tunnel=tunnel)


def check_ssh(tunnel: SshTunnel) -> None:
    """A one-line error when the ssh host cannot be reached non-interactively."""
    try:
        result = subprocess.run(tunnel.ssh_command() + ["true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"cannot reach the ssh host {tunnel.destination()} ({type(exc).__name__}); check ssh_tunnel") from None
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"cannot reach the ssh host {tunnel.destination()}: {detail[:200]}; check ssh_tunnel "
                        "(host, user, identity_file) and that key-based login works")
