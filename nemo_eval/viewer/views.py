"""What each page shows, assembled from the catalog: plain data for the templates, no HTML.

Metrics come from a run's ``metrics.json`` when it is at least as new as the generation files,
else they are computed from the graded files (as ``summarize-results`` would, without writing
anything). Comparisons use ``nemo-eval compare``'s paired tests. Results are cached per set of
file stamps, so a page is recomputed only when its files change.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional

from nemo_eval.errors import UserError
from nemo_eval.metrics.compare import compare_benchmark, per_item_scores
from nemo_eval.metrics.compute import compute_metrics
from nemo_eval.metrics.estimators import wilson_interval
from nemo_eval.metrics.families import family_for, ordered_columns
from nemo_eval.metrics.trend_chart import TrendPoint, render_trend_svg
from nemo_eval.run_layout import METRICS_NAME
from nemo_eval.viewer.catalog import Catalog, OutputFile, Run, file_meta, natural_key, read_json_file
from nemo_eval.viewer.render import generation_pieces, majority_vote, prompt_as_sent
from nemo_eval.viewer.samples import MAX_CACHED_BYTES, SampleCache

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


class _Memo:
    """Results keyed by the stamps of the files they were computed from (bounded)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._values: dict[Any, Any] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                return self._values[key]
        value = compute()
        with self._lock:
            if len(self._values) >= self._size:
                self._values.pop(next(iter(self._values)))
            self._values[key] = value
        return value


class Views:
    """Page data for one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.samples = SampleCache()
        self._memo = _Memo()

    def warm(self) -> None:
        """Index the most recently written finished files ahead of the first request for them (within half
        the cache's budget), so opening a 50,000-sample file is as fast as paging it."""
        found = []
        for run in self.catalog.runs().values():
            for output in run.files():
                if output.in_progress:
                    continue  # still growing: indexed when asked for
                try:
                    stat = output.path.stat()
                except OSError:
                    continue
                found.append((stat.st_mtime_ns, stat.st_size, output.path))
        budget = MAX_CACHED_BYTES // 2
        for _, size, path in sorted(found, reverse=True):
            budget -= size
            if budget < 0:
                break
            if not self.samples.cached(path):
                try:
                    self.samples.get(path)
                except (OSError, ValueError):
                    continue

    # ----- runs and their metrics

    def run_metrics(self, run: Run) -> dict[str, dict[str, Any]]:
        """``{benchmark: {"rows": {row: values}, "columns": [...], "source": str, "note": str}}``."""
        metrics_file = run.path / METRICS_NAME
        stored = read_json_file(self.catalog, metrics_file) or {}
        stored_at = metrics_file.stat().st_mtime_ns if stored else -1
        result = {}
        for benchmark, files in run.benchmarks.items():
            family = family_for(benchmark)
            columns = ordered_columns([family])
            finished = [f.path for f in files if not f.in_progress]
            stamp = _stamp(finished)
            newest = max((s[2] for s in stamp), default=-1)
            entry: dict[str, Any] = {"columns": columns, "rows": {}, "source": "", "note": ""}
            if isinstance(stored.get(benchmark), dict) and stored_at >= newest and len(finished) == len(files):
                entry.update(rows=stored[benchmark], source=METRICS_NAME)
            elif finished:
                try:
                    entry.update(rows=self._memo.get(("metrics", stamp, family.name),
                                                     lambda f=finished, n=family.name: compute_metrics(f, n)),
                                 source="computed from the graded files")
                except UserError as exc:
                    entry["note"] = str(exc)
            if any(f.in_progress for f in files):
                entry["note"] = (entry["note"] + "; " if entry["note"] else "") + "generation in progress"
            result[benchmark] = entry
        for benchmark, rows in stored.items():  # benchmarks whose files were moved away
            if benchmark not in result and isinstance(rows, dict):
                columns = ordered_columns([family_for(benchmark)])
                result[benchmark] = {"columns": columns, "rows": rows, "source": METRICS_NAME,
                                     "note": "no generation files here"}
        for entry in result.values():
            rows = [row for row in entry["rows"].values() if isinstance(row, dict)]
            entry["rows"] = {name: row for name, row in entry["rows"].items() if isinstance(row, dict)}
            entry["shown"] = [c for c in entry["columns"] if any(c in row for row in rows)]
            entry["headline"] = _headline(list(entry["rows"]))
        return result

    # ----- one sample

    def sample(self, run: Run, benchmark: str, item_id: str, chosen: str = "") -> Optional[dict[str, Any]]:
        """Everything about one item of one run: each seed's line, the prompt, the majority vote."""
        files = run.benchmarks.get(benchmark, [])
        seeds = []
        for output in files:
            index = self.samples.get(output.path)
            row = index.row(item_id)
            if row is None:
                continue
            meta = file_meta(self.catalog, output)
            markers = (meta.get("prompt_record") or {}).get("code_execution")
            pieces, marked = generation_pieces(row.get("generation"), row.get("predicted_answer"), markers)
            prompt, prompt_note = prompt_as_sent(meta, row)
            seeds.append({"file": output, "row": row, "pieces": pieces, "answer_marked": marked, "prompt": prompt,
                          "prompt_note": prompt_note, "settings": meta.get("settings") or {},
                          "reasoning": row.get("reasoning")})
        if not seeds:
            return None
        current = next((s for s in seeds if s["file"].name == chosen), seeds[0])
        sampled = [s["row"] for s in seeds if s["file"].seed is not None]
        return {"seeds": seeds, "current": current, "vote": majority_vote(sampled) if len(sampled) > 1 else None}

    # ----- comparing two runs

    def compare(self, a: Run, b: Run) -> dict[str, Any]:
        """Per benchmark both runs have: compare's rows (deltas, paired tests, flipped ids), or a note."""
        out: dict[str, Any] = {}
        for benchmark in [name for name in a.benchmarks if name in b.benchmarks]:
            paths_a = [f.path for f in a.benchmarks[benchmark] if not f.in_progress]
            paths_b = [f.path for f in b.benchmarks[benchmark] if not f.in_progress]
            key = ("compare", _stamp(paths_a), _stamp(paths_b))
            try:
                results = self._memo.get(key, lambda x=paths_a, y=paths_b: compare_benchmark(
                    per_item_scores(x), per_item_scores(y), ALPHA, BOOTSTRAP_SAMPLES))
            except UserError as exc:
                out[benchmark] = {"note": str(exc), "results": []}
                continue
            out[benchmark] = {"note": "" if results else "no metric with items in common", "results": results}
        return out

    # ----- trends over runs

    def trend(self, runs: list[Run]) -> list[dict[str, Any]]:
        """One chart per (benchmark, metric row) that at least two of ``runs`` have, runs in natural order."""
        runs = sorted(runs, key=lambda r: natural_key(r.id))
        metrics = {run.id: self.run_metrics(run) for run in runs}
        charts = []
        benchmarks = sorted({b for m in metrics.values() for b in m})
        for benchmark in benchmarks:
            rows = list(dict.fromkeys(r for m in metrics.values() for r in m.get(benchmark, {}).get("rows", {})))
            for row in rows:
                points = []
                for run in runs:
                    values = metrics[run.id].get(benchmark, {}).get("rows", {}).get(row)
                    if not isinstance(values, dict) or not isinstance(values.get("accuracy"), (int, float)):
                        continue
                    low, high = _interval(values)
                    points.append(TrendPoint(run.name, float(values["accuracy"]), low, high))
                if len(points) < 2:
                    continue
                best = max(range(len(points)), key=lambda i: points[i].value)
                points[best].marked = True
                charts.append({"benchmark": benchmark, "row": row, "points": points,
                               "svg": render_trend_svg(f"{benchmark} {row} accuracy", points, y_label="accuracy (%)")})
        return charts


def _headline(rows: list[str]) -> list[str]:
    """The rows a one-line summary shows: greedy, pass@1 averaged over seeds, majority@k and pass@k at the
    largest k (the other pass@j rows are on the run page)."""
    passes = [row for row in rows if row.startswith("pass@") and row[5:].isdigit()]
    largest = max(passes, key=lambda row: int(row[5:]), default=None)
    return [row for row in rows if row == "greedy" or row.startswith(("pass@1[", "majority@"))
            or (row == largest and row != "pass@1") or not row.startswith(("pass@", "majority@", "greedy"))]


def _interval(values: dict[str, Any]) -> tuple[Optional[float], Optional[float]]:
    """The row's own 95% interval, else a Wilson interval over its items (sampled rows have none)."""
    if isinstance(values.get("ci95_low"), (int, float)) and isinstance(values.get("ci95_high"), (int, float)):
        return float(values["ci95_low"]), float(values["ci95_high"])
    total = values.get("num_entries")
    if isinstance(total, int) and total > 0:
        low, high = wilson_interval(values["accuracy"] / 100 * total, total)
        return round(100 * low, 2), round(100 * high, 2)
    return None, None


def output_label(output: OutputFile) -> str:
    return output.label + (" (in progress)" if output.in_progress else "")
