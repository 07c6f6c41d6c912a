"""Rendering metrics: aligned tables, CSV rows, per-example rows.

Which columns exist, and in which order, is the metrics families' business
(:func:`nemo_eval.metrics.families.ordered_columns`); a column no row has is left out.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

USAGE_KEY = "usage"  # metrics.json's token/cost totals of a benchmark: not a metrics row


def table(benchmark: str, rows: dict[str, dict[str, Any]], order: Sequence[str]) -> str:
    """One aligned table: a line per row (greedy, majority@k, pass@k ...), a column per metric in ``order``."""
    rows = {name: row for name, row in rows.items() if name != USAGE_KEY}
    columns = [c for c in order if any(c in r for r in rows.values())]
    header = [benchmark] + columns
    body = [[name] + ["" if row.get(c) is None else str(row[c]) for c in columns] for name, row in rows.items()]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    render = lambda cells: " | ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))
    return "\n".join([render(header), "-+-".join("-" * w for w in widths)] + [render(line) for line in body])


def metrics_csv(metrics: dict[str, dict[str, dict[str, Any]]], order: Sequence[str]) -> str:
    """``benchmark,row,<columns in order>`` lines for every benchmark's rows."""
    metrics = {benchmark: {name: row for name, row in rows.items() if name != USAGE_KEY}
               for benchmark, rows in metrics.items()}
    columns = [c for c in order if any(c in row for rows in metrics.values() for row in rows.values())]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["benchmark", "row"] + columns)
    for benchmark, rows in metrics.items():
        for name, row in rows.items():
            writer.writerow([benchmark, name] + ["" if row.get(c) is None else row[c] for c in columns])
    return out.getvalue()


def per_example_csv(files: dict[str, list[Path]], load) -> str:
    """One row per line of every file: benchmark, file, id, problem, expected, predicted, correct, tokens."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["benchmark", "file", "id", "problem", "expected_answer", "predicted_answer", "is_correct",
                     "num_generated_tokens"])
    for benchmark, paths in files.items():
        for path in paths:
            for line in load(path):
                writer.writerow([benchmark, path.name, line.get("id"), line.get("problem"), line.get("expected_answer"),
                                 line.get("predicted_answer"), line.get("is_correct"), line.get("num_generated_tokens")])
    return out.getvalue()
