"""Where the non-Python files nemo-eval needs at run time are found.

``prompts/``, ``datasets/``, ``cluster_configs/`` and ``sandbox/`` live at the repository root.
A wheel carries them inside the package as ``nemo_eval/_bundled/<name>`` (see pyproject.toml),
so a regular install works without the source tree; an editable install or a checkout uses the
root folders directly. Users add their own after the bundled ones: the folders of a per-kind
``NEMO_EVAL_EXTRA_*`` variable, then ``<plugin>/<name>/`` of every plugin folder in
``NEMO_EVAL_PLUGINS`` (see :mod:`nemo_eval.plugins`).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCE_NAMES = ("prompts", "datasets", "cluster_configs", "sandbox")

# Extra folders users can add, os.pathsep-separated, searched after the bundled ones.
EXTRA_DIRS_ENV = {
    "prompts": "NEMO_EVAL_EXTRA_PROMPTS",
    "datasets": "NEMO_EVAL_EXTRA_BENCHMARKS",
    "cluster_configs": "NEMO_EVAL_EXTRA_CLUSTER_CONFIGS",
}


def bundled_dir(name: str) -> Path:
    """Return the folder holding the bundled resource ``name`` (one of RESOURCE_NAMES)."""
    if name not in RESOURCE_NAMES:
        raise ValueError(f"unknown resource folder {name!r}")
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"nemo-eval's {name}/ folder is missing from {_PACKAGE_DIR}; the installation is broken, reinstall nemo-eval")


def search_path(name: str) -> list[Path]:
    """The bundled folder for ``name``, then user folders from its environment variable, then plugins'."""
    from nemo_eval.plugins import plugin_folders

    paths = [bundled_dir(name)]
    env = EXTRA_DIRS_ENV.get(name)
    if env and os.environ.get(env):
        paths += [Path(p).expanduser() for p in os.environ[env].split(os.pathsep) if p]
    if name in EXTRA_DIRS_ENV:
        paths += [folder / name for folder in plugin_folders()]
    return paths
