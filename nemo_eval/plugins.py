"""Plugins: folders and installed packages that add benchmarks, prompts, server types, eval types and metrics.

Two ways in, both loaded the first time any registry is consulted:

- ``NEMO_EVAL_PLUGINS``: plugin folders (``os.pathsep``-separated). A plugin folder is laid out like
  the repository: ``datasets/<name>/`` (benchmarks), ``prompts/`` (prompt configs, few-shot sets,
  templates), ``cluster_configs/`` (cluster configs); every ``*.py`` file at its top level (not
  starting with ``_``) is imported in name order, and registers server types, eval types and
  metrics families by calling the registries' ``register``.
- The ``nemo_eval.plugins`` entry-point group: each entry point names a module of an installed
  package, imported the same way.

A plugin that fails to import is reported as one warning line naming it; everything else still works.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path

PLUGINS_ENV = "NEMO_EVAL_PLUGINS"
ENTRY_POINT_GROUP = "nemo_eval.plugins"
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


def _entry_points() -> list:
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except TypeError:  # Python 3.10 without the selection interface
        return list(entry_points().get(ENTRY_POINT_GROUP, []))  # type: ignore[attr-defined]


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
    for entry in _entry_points():
        try:
            importlib.import_module(entry.value.split(":")[0])
        except Exception as exc:
            warn(f"plugin {entry.name} ({entry.value}) skipped: {_problem(exc)}")
