"""The viewer's web application: read-only pages over the runs of a :class:`Catalog`.

Every view has its own URL built from query parameters (``/run?id=``, ``/samples?run=&benchmark=&file=&status=&q=&page=``,
``/sample?run=&benchmark=&id=``, ``/compare?a=&b=``, ``/compare/item?...``, ``/trend?group=`` or
``/trend?runs=&runs=``), so any page can be bookmarked and shared.

Safety: model output is untrusted. Templates autoescape everything and nothing is marked safe
except the chart SVG, whose texts the chart module escapes. A Content-Security-Policy forbids any
script, so even a missed escape could not run one. Only GET is served; files are found by the
catalog (never from a path in the URL); requests whose Host header is not the address the viewer
was started on are refused when it listens on loopback (no DNS rebinding from a web page).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Optional

from flask import Flask, abort, redirect, render_template, request, url_for
from markupsafe import Markup

from nemo_eval import __version__
from nemo_eval.viewer.catalog import Catalog, Run, natural_key, run_summary
from nemo_eval.viewer.samples import STATUSES
from nemo_eval.viewer.views import Views, output_label

PER_PAGE = 50
MAX_PER_PAGE = 500
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
WARM_SECONDS = 5.0
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _int(value: Optional[str], default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high) if value is not None else default
    except ValueError:
        return default


def _keep_warm(views: Views, interval: float = WARM_SECONDS) -> None:
    """Index new and changed files in the background, for as long as the viewer runs."""
    while True:
        try:
            views.warm()
        except Exception:  # noqa: BLE001 - a file that cannot be indexed now is indexed (and reported) on request
            pass
        time.sleep(interval)


def create_app(roots: list[Path], host: str = "127.0.0.1", port: Optional[int] = None,
               warm: bool = True) -> Flask:
    """The viewer for the runs under ``roots``.

    Args:
        roots: Served directories.
        host: The address it is served on (on loopback, Host headers must name a loopback address).
        port: The port it is served on (None: any, for tests that use Flask's client).
        warm: Index the generation files in a background thread before they are asked for.
    """
    catalog = Catalog(roots)
    views = Views(catalog)
    if warm:
        threading.Thread(target=_keep_warm, args=(views,), name="viewer-warm", daemon=True).start()
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config["CATALOG"] = catalog
    app.config["VIEWER_PORT"] = port
    app.jinja_env.globals.update(STATUSES=STATUSES, version=__version__, output_label=output_label)
    # JSON as plain text (autoescaped like any other text); Jinja's tojson would show '<' as \u003c.
    app.jinja_env.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False)
    # Served on a loopback address, only loopback names are accepted in Host headers (a web page cannot
    # reach it through a DNS name rebound to 127.0.0.1); served on another address, any name is.
    wildcard = host not in LOOPBACK_NAMES and host != "::1"
    allowed = set(LOOPBACK_NAMES)

    @app.before_request
    def check_request() -> None:
        if request.method not in ("GET", "HEAD"):
            abort(405)
        if wildcard:
            return
        name, _, given_port = request.host.rpartition(":") if not request.host.endswith("]") else (request.host, "", "")
        if not name:
            name, given_port = request.host, ""
        expected_port = app.config["VIEWER_PORT"]
        if name not in allowed or (expected_port and given_port and given_port != str(expected_port)):
            abort(400, description="unexpected Host header")

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def find_run(run_id: Optional[str]) -> Run:
        run = catalog.run(run_id or "")
        if run is None:
            abort(404, description=f"no run {run_id!r} under the served directories")
        return run

    @app.get("/")
    def runs_page():
        runs = catalog.runs()
        summaries = {run_id: run_summary(catalog, run) for run_id, run in runs.items()}
        metrics = {run_id: views.run_metrics(run) for run_id, run in runs.items()}
        pending = any(entry["pending"] for m in metrics.values() for entry in m.values())
        groups: dict[str, list[str]] = {}
        for run in runs.values():
            groups.setdefault(run.group, []).append(run.id)
        groups = {g: ids for g, ids in groups.items() if len(ids) > 1}
        return render_template("runs.html", runs=runs, summaries=summaries, metrics=metrics, groups=groups,
                               roots=catalog.roots, pending=pending,
                               refresh=pending or any(s["in_progress"] for s in summaries.values()))

    @app.get("/select")
    def select():
        chosen = request.args.getlist("runs")
        if request.args.get("action") == "compare":
            if len(chosen) != 2:
                abort(400, description="choose exactly two runs to compare")
            return redirect(url_for("compare_page", a=chosen[0], b=chosen[1]))
        if len(chosen) < 2:
            abort(400, description="choose at least two runs for a trend")
        return redirect(url_for("trend_page", runs=chosen))

    @app.get("/run")
    def run_page():
        run = find_run(request.args.get("id"))
        metrics = views.run_metrics(run)
        return render_template("run.html", run=run, summary=run_summary(catalog, run), metrics=metrics,
                               refresh=any(entry["pending"] for entry in metrics.values()))

    @app.get("/samples")
    def samples_page():
        run = find_run(request.args.get("run"))
        benchmark = request.args.get("benchmark", "")
        files = run.benchmarks.get(benchmark)
        if not files:
            abort(404, description=f"run {run.id!r} has no benchmark {benchmark!r}")
        output = run.file(benchmark, request.args.get("file", "")) or files[0]
        status = request.args.get("status", "")
        if status and status not in STATUSES:
            abort(400, description=f"unknown status filter {status!r}; use one of {', '.join(STATUSES)}")
        text = request.args.get("q", "")
        per_page = _int(request.args.get("per_page"), PER_PAGE, 1, MAX_PER_PAGE)
        page = _int(request.args.get("page"), 1, 1, 10**9)
        try:
            index = views.samples.get(output.paths)
        except OSError:
            abort(404, description="the file changed while you looked (a run finished?); reload the run page")
        rows, total = index.query(status, text, page, per_page)
        pages = max(1, -(-total // per_page))
        return render_template("samples.html", run=run, benchmark=benchmark, files=files, output=output,
                               status=status, q=text, rows=rows, total=total, page=page, pages=pages,
                               per_page=per_page, counts=index.counts(), bad_lines=index.bad_lines,
                               duplicates=index.duplicate_ids)

    @app.get("/sample")
    def sample_page():
        run = find_run(request.args.get("run"))
        benchmark = request.args.get("benchmark", "")
        item_id = request.args.get("id", "")
        position = _int(request.args.get("n"), -1, -1, 10**9)
        data = views.sample(run, benchmark, item_id, request.args.get("file", ""), position if position >= 0 else None)
        if data is None:
            abort(404, description=f"no item {item_id!r} of {benchmark!r} in run {run.id!r}")
        return render_template("sample.html", run=run, benchmark=benchmark, item_id=item_id, **data)

    @app.get("/compare")
    def compare_page():
        a, b = find_run(request.args.get("a")), find_run(request.args.get("b"))
        comparison = views.compare(a, b)
        return render_template("compare.html", a=a, b=b, comparison=comparison,
                               refresh=any(entry["pending"] for entry in comparison.values()))

    @app.get("/compare/item")
    def compare_item_page():
        a, b = find_run(request.args.get("a")), find_run(request.args.get("b"))
        benchmark, item_id = request.args.get("benchmark", ""), request.args.get("id", "")
        sides = [(run, views.sample(run, benchmark, item_id)) for run in (a, b)]
        if all(data is None for _, data in sides):
            abort(404, description=f"no item {item_id!r} of {benchmark!r} in either run")
        return render_template("compare_item.html", a=a, b=b, benchmark=benchmark, item_id=item_id, sides=sides)

    @app.get("/trend")
    def trend_page():
        runs = catalog.runs()
        group = request.args.get("group")
        if group is not None:
            chosen = [run for run in runs.values() if run.group == group]
        else:
            chosen = [find_run(run_id) for run_id in request.args.getlist("runs")]
        if len(chosen) < 2:
            abort(404, description="a trend needs at least two runs")
        chosen = sorted(chosen, key=lambda run: natural_key(run.id))
        charts, pending = views.trend(chosen)
        return render_template("trend.html", group=group, runs=chosen, charts=charts, refresh=pending,
                               svgs=[Markup(chart["svg"]) for chart in charts])  # escaped by trend_chart

    @app.errorhandler(400)
    @app.errorhandler(404)
    @app.errorhandler(405)
    def error_page(error: Any):
        return render_template("error.html", error=error), error.code

    return app
