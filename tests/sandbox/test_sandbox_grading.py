"""Grading through the real sandbox never aborts a whole file because of one item: hostile programs
are graded (wrong) with their execution status, items the sandbox cannot run are recorded, counted,
retried by the next run and make the exit code 1, and every other item is graded."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli

DEEP_TREE = "import os\nfor _ in range(20000):\n    os.mkdir('d')\n    os.chdir('d')\nos.chdir('/tmp')\n"
FILL_DISK = "i = 0\nwhile True:\n    open(f'/tmp/f{i}', 'wb').write(b'x' * (16 << 20))\n    i += 1\n"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _evaluate(path: Path, sandbox_url: str):
    return run_cli("evaluate", f"++prediction_jsonl_files=[{path}]", f"++sandbox_address={sandbox_url}",
                   "++max_concurrency=4", "++timeout=30")


def test_hostile_and_unrunnable_items_cost_nobody_else_their_grade(prepared_data, sandbox_url, tmp_path):
    items = [json.loads(line) for line in (prepared_data / "humaneval" / "test.jsonl").read_text().splitlines()[:6]]
    generations = [
        items[0]["canonical_solution"],
        items[1]["canonical_solution"] + "\n" + DEEP_TREE,  # passes; its deep tree once broke the cleanup
        "    pass\n" + FILL_DISK,                            # disk_limit
        "    return '\ud800'\n",                             # a lone surrogate, which no UTF-8 file can hold
        "    pass\n" + "#" * 1_000_001,                      # too long: the sandbox refuses it
        items[5]["canonical_solution"],
    ]
    path = tmp_path / "humaneval" / "output-greedy.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({**item, "generation": generation}) + "\n"
                            for item, generation in zip(items, generations)))
    result = _evaluate(path, sandbox_url)
    assert result.returncode == 1, result.stderr
    assert "graded 6 of 6 lines; 3 correct" in result.stderr and "1 could not be graded" in result.stderr
    rows = _rows(path)
    assert [r["is_correct"] for r in rows] == [True, True, False, False, False, True]
    assert rows[2]["execution_status"] == "disk_limit"
    assert rows[3]["execution_status"] == "completed" and "grading_error" not in rows[3]
    assert rows[4]["execution_status"] == "error" and rows[4]["grading_error"] == "sandbox error"
    assert "longer than" in rows[4]["execution_error"]
    again = _evaluate(path, sandbox_url)  # only the item that could not be graded is tried again
    assert again.returncode == 1 and "graded 1 of 6 lines" in again.stderr and "1 could not be graded" in again.stderr
