"""Checkpoint sweeps of ``nemo-eval eval``: several models in one launch, or every new checkpoint of a run.

``--model A,B,C`` (or ``--model @file``, one per line, ``#`` comments) evaluates each model into
``<output_dir>/<name>/`` — its own outputs, logs and metrics.json, resumable on its own — one after
the other, then summarizes the sweep (:mod:`nemo_eval.metrics.sweep`). ``<name>`` is the last part of
a checkpoint path (one that exists here, or starts with ``/``, ``./``, ``../`` or ``~``: a path on the
cluster), else the model name (``org/name`` -> ``org_name``); characters other than letters, digits and
``. _ - + @`` become ``_``. Every checkpoint's evaluation is planned and checked before the first
starts. With server type ``openai`` all models are served by the one endpoint (e.g. vLLM serving LoRA
adapters under their own names); a launched server type starts one server per checkpoint, in turn.
``sweep.json`` in the output dir lists the checkpoints in order.

``--watch DIR`` evaluates each checkpoint subdir of DIR as it appears (``step_100/``, ``step_200/``,
...) until stopped (Ctrl-C or SIGTERM), polling every ``--watch-interval`` seconds; a subdir counts as
ready once nothing in it changed for one interval. ``sweep.json`` records what was evaluated (and how
it ended), so nothing is evaluated twice, also across restarts; a checkpoint whose evaluation failed
(a server that could not start, ...) is tried again at the next looks, at most ``WATCH_ATTEMPTS`` (3)
times in all (after that, run with ``--model`` naming it). For server type ``openai`` the model name is
the subdir's name; a launched server gets the subdir's path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from nemo_eval.errors import UserError
from nemo_eval.jsonl import atomic_write_text

SWEEP_NAME = "sweep.json"


def parse_models(spec: Optional[str]) -> list[Optional[str]]:
    """``A,B,C`` or ``@file`` -> the model names/paths; ``None`` -> ``[None]`` (the server type's default)."""
    if spec is None:
        return [None]
    if spec.startswith("@"):
        path = Path(spec[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(f"--model {spec}: cannot read {path} ({error.strerror}); give a file listing one model "
                            "per line") from None
        models = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    else:
        models = [part.strip() for part in spec.split(",")]
    models = [m for m in models if m]
    if not models:
        raise UserError(f"--model {spec!r} names no model")
    if len(set(models)) != len(models):
        raise UserError(f"--model {spec!r} names a model twice")
    return models


def checkpoint_name(model: str) -> str:
    """The dir name of a model's results in a sweep (see the module docstring)."""
    path = Path(model).expanduser()
    if path.exists() or model.startswith(("/", "./", "../", "~")):
        name = path.name or path.resolve().name
    else:
        name = model
    return re.sub(r"[^A-Za-z0-9._+@-]", "_", name).strip(".") or "model"


def _names(models: list[str]) -> list[str]:
    names = [checkpoint_name(model) for model in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"--model: several models would share the result dir {', '.join(twice)}; give checkpoints "
                        "with distinct last path parts")
    return names


class SweepRecord:
    """``<output_dir>/sweep.json``: the checkpoints in order, with how each evaluation ended."""

    def __init__(self, output_dir: Path, dry_run: bool = False) -> None:
        self.path, self.dry_run = output_dir / SWEEP_NAME, dry_run
        self.entries: list[dict] = []
        if self.path.is_file():
            try:
                self.entries = list(json.loads(self.path.read_text(encoding="utf-8"))["checkpoints"])
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{self.path} is corrupt (not the record nemo-eval eval writes); fix or remove it") from None

    def get(self, name: str) -> Optional[dict]:
        return next((entry for entry in self.entries if entry["name"] == name), None)

    def note(self, name: str, model: str, status: str, exit_code: Optional[int] = None) -> None:
        entry = self.get(name)
        if entry is None:
            entry = {"name": name}
            self.entries.append(entry)
        if status == "running":
            entry["attempts"] = entry.get("attempts", 0) + 1
        entry.update(model=model, status=status, exit_code=exit_code, time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        if self.dry_run:
            return   # --dry-run writes nothing
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"checkpoints": self.entries}, indent=1) + "\n")


RunOne = Callable[[argparse.Namespace], int]
Plan = Callable[[argparse.Namespace], object]


def checkpoint_args(args: argparse.Namespace, model: str, name: str) -> argparse.Namespace:
    """The flags of one checkpoint's evaluation: its model, its own output dir."""
    return argparse.Namespace(**{**vars(args), "model": model, "output_dir": args.output_dir / name})


def _evaluate(args: argparse.Namespace, record: SweepRecord, model: str, name: str, run_one: RunOne) -> int:
    one = checkpoint_args(args, model, name)
    if not args.dry_run:
        print(f"nemo-eval eval: checkpoint {name} ({model}) -> {one.output_dir}", file=sys.stderr, flush=True)
    record.note(name, model, "running")
    try:
        code = run_one(one)
    except UserError as error:   # this checkpoint cannot run (e.g. its outputs were made by another model)
        print(f"nemo-eval eval: checkpoint {name}: {error}", file=sys.stderr, flush=True)
        code = 2
    record.note(name, model, ("submitted" if getattr(args, "submitted", False) else "done") if code == 0 else "failed",
                code)
    return code


def run_models(args: argparse.Namespace, models: list[str], plan: Plan, run_one: RunOne,
               summarize: Callable[[], None]) -> int:
    """Check every model's evaluation, then evaluate each in turn; 0 only when every one succeeded."""
    names = _names(models)
    for model, name in zip(models, names):
        plan(checkpoint_args(args, model, name))   # a problem: one line, exit 2, before anything starts
    record = SweepRecord(args.output_dir, dry_run=args.dry_run)
    failed = []
    for model, name in zip(models, names):
        if _evaluate(args, record, model, name, run_one) != 0:
            failed.append(name)
    if not args.dry_run:
        summarize()
    if failed:
        print(f"nemo-eval eval: {len(failed)} of {len(models)} checkpoints failed: {', '.join(failed)} "
              "(run the same command again to resume them)", file=sys.stderr)
        return 1
    return 0


class _Stop(Exception):
    pass


def _settled(path: Path, quiet: float) -> bool:
    """Nothing under ``path`` changed in the last ``quiet`` seconds."""
    newest = path.stat().st_mtime
    for root, dirs, files in os.walk(path):
        for entry in dirs + files:
            try:
                newest = max(newest, os.stat(os.path.join(root, entry)).st_mtime)
            except OSError:
                continue
    return time.time() - newest >= quiet


WATCH_ATTEMPTS = 3


def _wanted(entry: Optional[dict]) -> bool:
    """Whether ``--watch`` should (still) evaluate a checkpoint with this record entry."""
    if entry is None or entry.get("status") == "running":
        return True
    return entry.get("status") == "failed" and entry.get("attempts", 1) < WATCH_ATTEMPTS


def watch(args: argparse.Namespace, directory: Path, openai: bool, run_one: RunOne,
          summarize: Callable[[], None]) -> int:
    """Evaluate each new checkpoint subdir of ``directory`` until SIGINT/SIGTERM; 0 when stopped that way."""
    if not directory.is_dir():
        raise UserError(f"--watch {directory} is not a directory; give the dir the training run writes checkpoints to")
    if args.watch_interval <= 0:
        raise UserError("--watch-interval must be > 0 seconds")
    record = SweepRecord(args.output_dir)

    def stop(signum, frame):
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"nemo-eval eval: watching {directory} for checkpoints (every {args.watch_interval:g} s; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    try:
        from nemo_eval.metrics.sweep import natural_key

        while True:
            # new subdirs, one whose evaluation was interrupted (it resumes), one that failed (a few times)
            fresh = sorted((p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
                            and _wanted(record.get(p.name))), key=lambda p: natural_key(p.name))
            evaluated = False
            for path in fresh:
                if not _settled(path, args.watch_interval):
                    continue
                _evaluate(args, record, path.name if openai else str(path.resolve()), path.name, run_one)
                evaluated = True
            if evaluated:
                summarize()
            time.sleep(args.watch_interval)
    except (_Stop, KeyboardInterrupt):
        print("nemo-eval eval: stopped watching", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
