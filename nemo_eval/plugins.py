"""Plugins: folders outside the package that add benchmarks, prompts, cluster configs, server types,
eval types and metrics families.

``NEMO_EVAL_PLUGINS`` lists plugin folders (``os.pathsep``-separated). A plugin folder is laid out
like the repository: ``datasets/<name>/`` (benchmarks), ``prompts/`` (prompt configs, few-shot sets,
templates), ``cluster_configs/`` (cluster configs), found through :func:`nemo_eval.resources.search_path`;
every ``*.py`` file at its top level (not starting with ``_``) is imported in name order the first
time any registry is consulted, and registers server types, eval types and metrics families by
calling the registries' ``register``. An installed package plugs in the same way: a folder holding a
one-line module that imports it. (Python entry points are not scanned: reading every installed
package's metadata would cost each command and step about 0.1 s.)

A plugin that fails to import is reported as one warning line naming it; everything else still works.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path

PLUGINS_ENV = "NEMO_EVAL_PLUGINS"
_loaded: list[bool] = []  # non-empty once plugins were imported in this process


def plugin_folders() -> list[Path]:
    """The folders listed in ``NEMO_EVAL_PLUGINS``, in order."""
    return [Path(p).expanduser() for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p.strip()]


def warn(message: str) -> None:
    """One warning line on stderr (for things that are skipped, not fatal)."""
    print(f"nemo-eval: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


def _problem(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _import_file(path: Path) -> None:
    name = "nemo_eval_plugin_" + "".join(c if c.isalnum() else "_" for c in f"{path.parent.name}_{path.stem}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def load_plugins() -> None:
    """Import every plugin module once per process; a failing one is a warning naming it."""
    if _loaded:
        return
    _loaded.append(True)
    for folder in plugin_folders():
        if not folder.is_dir():
            warn(f"{PLUGINS_ENV} names {folder}, which is not a directory; skipped")
            continue
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                _import_file(path)
            except Exception as exc:  # a broken plugin must not break unrelated commands
                warn(f"plugin {path} skipped: {_problem(exc)}")
