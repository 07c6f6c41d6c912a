"""Token, time and cost totals of a benchmark's generation files, for summaries and metrics.json.

``metrics.json[benchmark]["usage"]`` holds :func:`nemo_eval.inference.accounting.usage_totals` over all
the benchmark's files (greedy and every seed), with the cost when the files' meta records prices. It is
not a metrics row: tables, CSV exports and comparisons leave it out (:data:`USAGE_KEY`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nemo_eval.inference.accounting import Prices, usage_totals
from nemo_eval.jsonl import read_jsonl
from nemo_eval.metrics.report import USAGE_KEY
from nemo_eval.run_layout import meta_path

__all__ = ["USAGE_KEY", "file_usage", "usage_table"]
COLUMNS = ("answered", "input_tokens", "generated_tokens", "reasoning_tokens", "cached", "request_seconds", "cost")


def _prices(path: Path) -> Prices:
    try:
        meta = json.loads(meta_path(path).read_text(encoding="utf-8"))
        prices = meta.get("prices_per_million_tokens") or {}
        return Prices(prices.get("input"), prices.get("output"))
    except (OSError, ValueError, AttributeError):
        return Prices()


def file_usage(paths: list[Path]) -> dict[str, Any]:
    """Totals over every line of ``paths`` (each file priced by its own meta)."""
    totals: dict[str, Any] = {}
    for path in paths:
        for key, value in usage_totals(read_jsonl(path), _prices(path)).items():
            totals[key] = round(totals.get(key, 0) + value, 6)
    return totals


def usage_table(usage: dict[str, dict[str, Any]]) -> str:
    """Benchmarks as rows, the totals as columns, and the run's total last."""
    columns = [c for c in COLUMNS if any(c in totals for totals in usage.values())]
    total = {c: round(sum(totals.get(c, 0) for totals in usage.values()), 6) for c in columns}
    rows = [[name] + [_cell(totals.get(c)) for c in columns] for name, totals in usage.items()]
    rows.append(["total"] + [_cell(total[c]) for c in columns])
    header = ["usage"] + list(columns)
    widths = [max(len(line[i]) for line in [header] + rows) for i in range(len(header))]
    render = lambda cells: " | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)  # noqa: E731
                                      for i, (cell, w) in enumerate(zip(cells, widths)))
    return "\n".join([render(header), "-+-".join("-" * w for w in widths)] + [render(line) for line in rows])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)
