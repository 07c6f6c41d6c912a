"""What each page shows, assembled from the catalog: plain data for the templates, no HTML.

Metrics come from a run's ``metrics.json`` when it is at least as new as the generation files,
else they are computed from the graded files (as ``summarize-results`` would, without writing
anything). Comparisons use ``nemo-eval compare``'s paired tests. Results are cached per set of
file stamps, so a page is recomputed only when its files change.
"""

from __future__ import annotations

import math
import queue
import re
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from nemo_eval.errors import UserError
from nemo_eval.metrics.compare import compare_benchmark, per_item_scores
from nemo_eval.metrics.compute import compute_metrics
from nemo_eval.metrics.estimators import wilson_interval
from nemo_eval.metrics.families import family_for, ordered_columns
from nemo_eval.metrics.report import USAGE_KEY
from nemo_eval.metrics.trend_chart import TrendPoint, render_trend_svg
from nemo_eval.run_layout import METRICS_NAME
from nemo_eval.viewer.catalog import (Catalog, OutputFile, Run, as_dict, file_meta, natural_key, open_inside,
                                      read_json_file)
from nemo_eval.viewer.render import generation_pieces, majority_vote, prompt_as_sent
from nemo_eval.viewer.samples import MAX_CACHED_BYTES, MEMORY_PER_FILE_BYTE, SampleCache, text_of

ALPHA = 0.05
BOOTSTRAP_SAMPLES = 10000


def _stamp(paths: list[Path]) -> tuple:
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamps.append((str(path), -1, -1))
    return tuple(stamps)


PENDING = object()  # a result being computed in the background


class _Memo:
    """Results keyed by the stamps of the files they were computed from (bounded, oldest dropped first).

    Slow results (metrics of unsummarized runs, bootstrap tests) are computed by one background thread:
    a page asking for one that is not ready gets :data:`PENDING` and says so, instead of holding the request.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._values: dict[Any, Any] = {}
        self._pending: set[Any] = set()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # A daemon thread (not an executor, whose threads are joined at exit): stopping the viewer never
        # waits for a computation nobody will see.
        threading.Thread(target=self._work, name="viewer-compute", daemon=True).start()

    def _work(self) -> None:
        while True:
            key, compute = self._queue.get()
            self._compute(key, compute)

    def _store(self, key: Any, value: Any) -> None:
        with self._lock:
            self._pending.discard(key)
            while len(self._values) >= self._size:
                self._values.pop(next(iter(self._values)))
            self._values[key] = value

    def get(self, key: Any, compute: Callable[[], Any], background: bool = False) -> Any:
        """The value for ``key``: cached, computed now, or (``background``) PENDING while it is computed.

        Raises:
            UserError: what ``compute`` raised (also when it was computed in the background).
        """
        with self._lock:
            if key in self._values:
                value = self._values[key]
                if isinstance(value, UserError):
                    raise value
                return value
            if background and key in self._pending:
                return PENDING
            if background:
                self._pending.add(key)
        if background:
            self._queue.put((key, compute))
            return PENDING
        value = self._compute(key, compute)
        if isinstance(value, UserError):
            raise value
        return value

    def _compute(self, key: Any, compute: Callable[[], Any]) -> Any:
        try:
            value = compute()
        except UserError as exc:
            value = exc
        except Exception as exc:  # noqa: BLE001 - shown on the page, never a crashed worker
            value = UserError(f"cannot compute this: {type(exc).__name__}: {exc}")
        self._store(key, value)
        return value


class Views:
    """Page data for one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.samples = SampleCache(opener=lambda path: open_inside(catalog, path))
        self._metrics = _Memo(size=100_000)  # small values: one per (run, benchmark)
        self._slow = _Memo(size=256)  # comparisons

    def warm(self) -> None:
        """Index the most recently written finished files ahead of the first request for them (within half
        the cache's budget), and compute the metrics of runs without a current metrics.json, so that opening
        a 50,000-sample file or a folder of hundreds of runs is as fast as paging."""
        found = []
        for run in self.catalog.runs().values():
            self.run_metrics(run, background=True)
            for output in run.files():
                if output.in_progress:
                    continue  # still growing: indexed when asked for
                try:
                    stat = output.path.stat()
                except OSError:
                    continue
                found.append((stat.st_mtime_ns, stat.st_size, output.paths))
        budget = MAX_CACHED_BYTES // (2 * MEMORY_PER_FILE_BYTE)
        for _, size, paths in sorted(found, key=lambda entry: entry[:2], reverse=True):
            budget -= size
            if budget < 0:
                break
            if not self.samples.cached(paths):
                try:
                    self.samples.get(paths)
                except (OSError, ValueError):
                    continue

    # ----- runs and their metrics

    def run_metrics(self, run: Run, background: bool = True) -> dict[str, dict[str, Any]]:
        """``{benchmark: {"rows": {row: values}, "columns": [...], "shown": [...], "headline": [...],
        "source": str, "note": str, "pending": bool}}``."""
        metrics_file = run.path / METRICS_NAME
        stored = read_json_file(self.catalog, metrics_file) or {}
        try:
            stored_at = metrics_file.stat().st_mtime_ns if stored else -1
        except OSError:
            stored_at = -1
        result = {}
        for benchmark, files in run.benchmarks.items():
            family = family_for(benchmark)
            columns = ordered_columns([family])
            finished = [f.path for f in files if not f.in_progress]
            stamp = _stamp(finished)
            newest = max((s[2] for s in stamp), default=-1)
            entry: dict[str, Any] = {"columns": columns, "rows": {}, "source": "", "note": "", "pending": False}
            if isinstance(stored.get(benchmark), dict) and stored_at >= newest and len(finished) == len(files):
                entry.update(rows=stored[benchmark], source=METRICS_NAME)
            elif finished and all(self.catalog.inside(path) for path in finished):
                try:
                    rows = self._metrics.get(("metrics", stamp, family.name),
                                             lambda f=finished, n=family.name: compute_metrics(f, n), background)
                    if rows is PENDING:
                        entry.update(pending=True, note="computing the metrics from the graded files")
                    else:
                        entry.update(rows=rows, source="computed from the graded files")
                except UserError as exc:
                    entry["note"] = str(exc)
            if any(f.in_progress for f in files):
                entry["note"] = (entry["note"] + "; " if entry["note"] else "") + "generation in progress"
            result[benchmark] = entry
        for benchmark, rows in stored.items():  # benchmarks whose files were moved away
            if benchmark not in result and isinstance(rows, dict):
                columns = ordered_columns([family_for(benchmark)])
                result[benchmark] = {"columns": columns, "rows": rows, "source": METRICS_NAME,
                                     "note": "no generation files here", "pending": False}
        for entry in result.values():
            rows = as_dict(entry["rows"])
            entry["usage"] = as_dict(rows.get(USAGE_KEY))
            entry["rows"] = {str(name): row for name, row in rows.items() if isinstance(row, dict) and name != USAGE_KEY}
            rows = list(entry["rows"].values())
            entry["shown"] = [c for c in entry["columns"] if any(c in row for row in rows)]
            entry["headline"] = _headline(list(entry["rows"]))
        return result

    # ----- one sample

    def sample(self, run: Run, benchmark: str, item_id: str, chosen: str = "",
               position: Optional[int] = None) -> Optional[dict[str, Any]]:
        """Everything about one item of one run: each seed's line, the prompt, the majority vote.

        ``position`` picks among lines sharing the id (a file with duplicate ids). Files that vanish meanwhile
        (a run finishing) are left out.
        """
        files = run.benchmarks.get(benchmark, [])
        seeds = []
        for output in files:
            try:
                index = self.samples.get(output.paths)
                row = index.row(item_id, position if output.name == chosen or not chosen else None)
            except OSError:
                continue
            if row is None:
                continue
            meta = file_meta(self.catalog, output)
            record = as_dict(meta.get("prompt_record"))
            pieces, marked = generation_pieces(row.get("generation"), row.get("predicted_answer"),
                                               record.get("code_execution"))
            prompt, prompt_note = prompt_as_sent(meta, row)
            reasoning = row.get("reasoning")
            seeds.append({"file": output, "row": row, "pieces": pieces, "answer_marked": marked, "prompt": prompt,
                          "prompt_note": prompt_note, "request": as_dict(as_dict(meta.get("settings")).get("request")),
                          "reasoning": text_of(reasoning) if reasoning else "", "duplicates": index.duplicate_ids})
        if not seeds:
            return None
        current = next((s for s in seeds if s["file"].name == chosen), seeds[0])
        sampled = [s["row"] for s in seeds if s["file"].seed is not None]
        return {"seeds": seeds, "current": current, "vote": majority_vote(sampled) if len(sampled) > 1 else None}

    # ----- comparing two runs

    def compare(self, a: Run, b: Run) -> dict[str, Any]:
        """Per benchmark both runs have: compare's rows (deltas, paired tests, flipped ids), or a note. The
        tests run in the background (bootstraps over thousands of items take seconds): ``pending`` until done."""
        out: dict[str, Any] = {}
        for benchmark in [name for name in a.benchmarks if name in b.benchmarks]:
            paths_a = [f.path for f in a.benchmarks[benchmark] if not f.in_progress]
            paths_b = [f.path for f in b.benchmarks[benchmark] if not f.in_progress]
            if not paths_a or not paths_b:
                out[benchmark] = {"note": "generation in progress", "results": [], "pending": False}
                continue
            if not all(self.catalog.inside(path) for path in paths_a + paths_b):
                continue
            key = ("compare", _stamp(paths_a), _stamp(paths_b))
            try:
                results = self._slow.get(key, lambda x=paths_a, y=paths_b: compare_benchmark(
                    per_item_scores(x), per_item_scores(y), ALPHA, BOOTSTRAP_SAMPLES), background=True)
            except UserError as exc:
                out[benchmark] = {"note": str(exc), "results": [], "pending": False}
                continue
            if results is PENDING:
                out[benchmark] = {"note": "computing the paired tests", "results": [], "pending": True}
            else:
                out[benchmark] = {"note": "" if results else "no metric with items in common", "results": results,
                                  "pending": False}
        return out

    # ----- trends over runs

    def trend(self, runs: list[Run]) -> tuple[list[dict[str, Any]], bool]:
        """One chart per (benchmark, metric row) that at least two of ``runs`` have, runs in natural order;
        and whether some runs' metrics are still being computed."""
        runs = sorted(runs, key=lambda r: natural_key(r.id))
        metrics = {run.id: self.run_metrics(run) for run in runs}
        pending = any(entry["pending"] for m in metrics.values() for entry in m.values())
        charts = []
        benchmarks = sorted({b for m in metrics.values() for b in m})
        for benchmark in benchmarks:
            rows = list(dict.fromkeys(r for m in metrics.values() for r in m.get(benchmark, {}).get("rows", {})))
            for row in rows:
                points = []
                for run in runs:
                    values = metrics[run.id].get(benchmark, {}).get("rows", {}).get(row)
                    value = values.get("accuracy") if isinstance(values, dict) else None
                    if not _percent(value):
                        continue
                    low, high = _interval(values)
                    points.append(TrendPoint(run.name, float(value), low, high))
                if len(points) < 2:
                    continue
                best = max(range(len(points)), key=lambda i: points[i].value)
                points[best].marked = True
                charts.append({"benchmark": benchmark, "row": row, "points": points,
                               "svg": render_trend_svg(f"{benchmark} {row} accuracy", points, y_label="accuracy (%)")})
        return charts, pending


def _percent(value: Any) -> bool:
    """A finite number in 0-100 (metrics files come from disk: anything else is not charted)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 <= value <= 100


def _headline(rows: list[str]) -> list[str]:
    """The rows a one-line summary shows: greedy, pass@1 averaged over seeds, majority@k and pass@k at the
    largest k (the other pass@j rows are on the run page)."""
    passes = [(int(match.group(1)), row) for row in rows if (match := re.fullmatch(r"pass@([0-9]+)", row))]
    largest = max(passes)[1] if passes else None
    return [row for row in rows if row == "greedy" or row.startswith(("pass@1[", "majority@"))
            or (row == largest and row != "pass@1") or not row.startswith(("pass@", "majority@", "greedy"))]


def _interval(values: dict[str, Any]) -> tuple[Optional[float], Optional[float]]:
    """The row's own 95% interval, else a Wilson interval over its items (sampled rows have none)."""
    low, high = values.get("ci95_low"), values.get("ci95_high")
    if _percent(low) and _percent(high):
        return float(low), float(high)
    total = values.get("num_entries")
    if isinstance(total, int) and not isinstance(total, bool) and total > 0:
        low, high = wilson_interval(values["accuracy"] / 100 * total, total)
        return round(100 * low, 2), round(100 * high, 2)
    return None, None


def output_label(output: OutputFile) -> str:
    return output.label + (" (in progress)" if output.in_progress else "")
