"""Cluster configs: where and how the launcher runs things (``cluster_configs/<name>.yaml``).

Chosen by ``--cluster`` (a bundled name or a YAML path), else ``NEMO_EVAL_CONFIG``, else ``local``.
Everything is validated before anything is launched; each problem is a one-line error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml

from nemo_eval.errors import UserError, reject_unknown_keys
from nemo_eval.resources import bundled_dir

EXECUTORS = ("local",)
SANDBOX_MODES = ("bwrap", "docker")


@dataclass(frozen=True)
class ClusterConfig:
    """One cluster config.

    Attributes:
        name: The file it came from (for messages).
        executor: ``local`` (child processes on this machine).
        sandbox_mode: How the launcher starts the sandbox: ``bwrap`` or ``docker``.
        env_vars: Environment variables for every step.
    """

    name: str
    executor: str = "local"
    sandbox_mode: str = "bwrap"
    env_vars: dict[str, str] = field(default_factory=dict)


def _find(name: str) -> Path:
    candidate = Path(name).expanduser()
    if candidate.suffix in (".yaml", ".yml") or os.sep in name:
        if not candidate.is_file():
            raise UserError(f"cluster config {candidate} does not exist")
        return candidate
    bundled = bundled_dir("cluster_configs") / f"{name}.yaml"
    if not bundled.is_file():
        known = sorted(p.stem for p in bundled_dir("cluster_configs").glob("*.yaml"))
        raise UserError(f"unknown cluster config {name!r}; known: {', '.join(known)} (or give a path to a YAML file)")
    return bundled


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
    if executor == "slurm":
        raise UserError(f"{path}: the slurm executor is not available in this version of nemo-eval yet; "
                        "use a local cluster config (executor: local)")
    if executor not in EXECUTORS:
        raise UserError(f"{path}: executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")
    if data.get("sandbox_mode", "bwrap") not in SANDBOX_MODES:
        raise UserError(f"{path}: sandbox_mode must be one of {', '.join(SANDBOX_MODES)}")
    env_vars = data.get("env_vars") or {}
    if not isinstance(env_vars, dict) or not all(isinstance(k, str) for k in env_vars):
        raise UserError(f"{path}: env_vars must be a mapping NAME: value")
    return ClusterConfig(name=str(path), executor=executor, sandbox_mode=data.get("sandbox_mode", "bwrap"),
                         env_vars={k: str(v) for k, v in env_vars.items()})
