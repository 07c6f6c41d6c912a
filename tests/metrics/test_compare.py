"""Run comparison: McNemar and bootstrap against hand-worked numbers, and the compare CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.metrics.significance import mcnemar_exact, paired_bootstrap


def test_mcnemar_exact_worked_examples():
    # 2 items right only in A, 10 only in B: n = 12, P[X <= 2] = (1 + 12 + 66) / 4096, doubled
    assert mcnemar_exact(2, 10) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact(10, 2) == mcnemar_exact(2, 10)
    # 1 vs 5: n = 6, P[X <= 1] = (1 + 6) / 64 -> p = 0.21875
    assert mcnemar_exact(1, 5) == pytest.approx(0.21875)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0


def test_paired_bootstrap_interval():
    same = [0.0, 1.0, 0.5, 0.25] * 50
    assert paired_bootstrap(same, same) == (0.0, 0.0, 0.0)
    mean, low, high = paired_bootstrap([0.0] * 100 + [1.0] * 100, [1.0] * 150 + [0.0] * 50)
    assert mean == pytest.approx(0.25) and 0 < low < 0.25 < high
    assert paired_bootstrap([0, 1] * 20, [1, 0] * 20, seed=1) == paired_bootstrap([0, 1] * 20, [1, 0] * 20, seed=1)


def _run(root: Path, greedy: list[bool], samples: list[list[bool]]) -> Path:
    folder = root / "gsm8k"
    folder.mkdir(parents=True)
    rows = lambda flags: "".join(json.dumps({"id": f"q{i}", "is_correct": ok, "predicted_answer": "1" if ok else "2",
                                             "generation": "x"}) + "\n" for i, ok in enumerate(flags))
    (folder / "output-greedy.jsonl").write_text(rows(greedy))
    for seed, flags in enumerate(samples):
        (folder / f"output-rs{seed}.jsonl").write_text(rows(flags))
    return root


def test_compare_cli_reports_deltas_tests_and_flips(tmp_path):
    a = _run(tmp_path / "a", [True] * 20 + [False] * 20, [[i % 2 == 0 for i in range(40)]] * 4)
    b = _run(tmp_path / "b", [True] * 18 + [False] * 2 + [True] * 12 + [False] * 8, [[True] * 40] * 4)
    result = run_cli("compare", str(a), str(b), "--json", str(tmp_path / "cmp.json"), "--bootstrap-samples", "2000")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "cmp.json").read_text())["gsm8k"]
    greedy = next(r for r in report if r["row"] == "greedy")
    assert (greedy["a"], greedy["b"], greedy["delta"]) == (50.0, 75.0, 25.0)
    assert greedy["improved"] == [f"q{i}" for i in range(20, 32)] and greedy["regressed"] == ["q18", "q19"]
    assert greedy["p_value"] == pytest.approx(2 * (1 + 14 + 91) / 2 ** 14, abs=1e-6) and greedy["significant"]
    rows = {r["row"]: r for r in report}
    assert set(rows) == {"greedy", "pass@1[avg-of-4]", "pass@4", "majority@4"}
    assert rows["pass@1[avg-of-4]"]["delta"] == 50.0 and rows["pass@1[avg-of-4]"]["ci_low"] > 0
    assert "12 improved" in result.stdout and "2 regressed" in result.stdout and "exact McNemar" in result.stdout


def test_compare_with_nothing_in_common_is_a_one_line_error(tmp_path):
    a = _run(tmp_path / "a", [True], [])
    (tmp_path / "b" / "math").mkdir(parents=True)
    (tmp_path / "b" / "math" / "output-greedy.jsonl").write_text(json.dumps({"id": "x", "is_correct": True}) + "\n")
    result = run_cli("compare", str(a), str(tmp_path / "b"))
    assert result.returncode == 2 and "share no benchmark" in single_error_line(result.stderr)
