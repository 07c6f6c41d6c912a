"""The viewer in a real browser (Playwright driving the system Chromium): runs produced by a real
``nemo-eval eval`` (sandbox + test server), filtered to wrong answers, one opened with its extracted
answer highlighted, two runs compared and a flipped item followed, and model output carrying script
that renders as text and never runs.

Set ``NEMO_EVAL_SCREENSHOTS=DIR`` to keep the screenshots (docs/images/ holds the ones docs/viewer.md shows).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import cli_env, openai_test_server, run_cli
from viewer_runs import XSS, serve, write_run

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if CHROMIUM is None:
        missing.append("Chromium (apt-get install chromium)")
    if missing:
        message = f"browser tests need {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _eval_run(prepared_data: Path, out: Path, correct_rate: str) -> None:
    answers = out.parent.parent.parent / f"answers-{out.name}.jsonl"
    answers.write_text((prepared_data / "gsm8k" / "test.jsonl").read_text())
    with openai_test_server("--answers-jsonl", str(answers), "--correct-rate", correct_rate) as url:
        result = run_cli("eval", "--server-type", "openai", "--server-address", url.removesuffix("/v1"),
                         "--model", "test-model", "--benchmarks", "gsm8k:2", "--output-dir", str(out),
                         "++max_samples=40", env=cli_env(prepared_data), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def _shot(page, tmp_path: Path, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=full_page)
    keep = os.environ.get("NEMO_EVAL_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", Path(keep) / f"viewer-{name}.png")


def test_browse_filter_open_compare_and_no_script_runs(prepared_data, sandbox_url, tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    root = tmp_path / "runs"
    _eval_run(prepared_data, root / "checkpoints" / "step_100", "0.3")
    _eval_run(prepared_data, root / "checkpoints" / "step_200", "0.7")
    write_run(root / "hostile", "gsm8k", ["xss", "correct"])
    with serve(root) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

        page.goto(url + "/")
        assert page.locator("tr.run").count() == 3
        _shot(page, tmp_path, "runs")
        page.locator('tr[data-run="checkpoints/step_100"] a', has_text="gsm8k").click()
        page.locator('a.filter[data-status="wrong"]').click()
        assert "status=wrong" in page.url
        rows = page.locator("tr.sample")
        assert rows.count() > 0 and all("wrong" in rows.nth(i).inner_text() for i in range(rows.count()))
        _shot(page, tmp_path, "samples", full_page=False)
        rows.first.locator("a.sample-link").click()
        predicted = page.locator("#predicted").inner_text()
        assert page.locator("#verdict").inner_text() == "wrong"
        highlighted = page.locator("pre.generation mark.extracted").first
        assert highlighted.is_visible() and highlighted.inner_text() == predicted
        assert page.locator(".prompt .message").count() >= 1
        _shot(page, tmp_path, "sample")

        page.goto(url + "/")
        page.check('input[value="checkpoints/step_100"]')
        page.check('input[value="checkpoints/step_200"]')
        page.click('button[value="compare"]')
        assert "/compare?" in page.url
        page.wait_for_selector("text=exact McNemar", timeout=60000)      # the page reloads itself until computed
        _shot(page, tmp_path, "compare")
        flip = page.locator("p.flips.improved a.flip").first
        flipped_id = flip.inner_text()
        flip.click()
        assert page.locator("h1").inner_text().endswith(flipped_id)
        sides = page.locator(".column")
        assert "wrong" in sides.nth(0).inner_text() and "correct" in sides.nth(1).inner_text()

        page.goto(url + "/trend?group=checkpoints")
        assert page.locator("section.chart svg").count() >= 1
        _shot(page, tmp_path, "trend")

        page.goto(url + "/samples?run=hostile&benchmark=gsm8k")
        page.locator("a.sample-link").first.click()
        assert XSS in page.locator("pre.generation").first.inner_text()       # shown as text
        assert page.evaluate("window.__xss") is None and dialogs == []          # and never run
        assert page.locator("pre.generation script, pre.generation img").count() == 0
        browser.close()
