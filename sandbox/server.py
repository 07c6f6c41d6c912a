"""The sandbox service: a Flask app that runs untrusted code through ``jail.py``.

API:
    POST /execute  {"generated_code": str, "language": "python"|"bash" (default python),
                    "timeout": seconds (default 10), "std_input": str (default "")}
        -> {"process_status": "completed"|"timeout"|"error", "stdout", "stderr", "return_code",
            "stdout_truncated", "stderr_truncated", "wall_time"}
    GET  /health   -> {"status": "ok", ...limits, "workers", "cpus"}

Malformed requests get a 400 with ``{"error": ...}``. Served by gunicorn
(``gunicorn --chdir sandbox server:app``); settings come from ``SANDBOX_*`` environment variables
(see ``limits_from_env``). Standard library + Flask only, so it runs unchanged in the container.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields

from flask import Flask, jsonify, request

from jail import LANGUAGES, Limits, UidPool, execute

MAX_CODE_CHARS = 1_000_000
DEFAULT_TIMEOUT = 10.0


def limits_from_env() -> Limits:
    """``SANDBOX_MEMORY_MB=2048`` etc.: every :class:`Limits` field, upper-cased, prefixed ``SANDBOX_``."""
    values = {}
    for f in fields(Limits):
        raw = os.environ.get(f"SANDBOX_{f.name.upper()}")
        if raw is not None:
            values[f.name] = type(getattr(Limits(), f.name))(raw)
    return Limits(**values)


def create_app(limits: Limits | None = None) -> Flask:
    limits = limits or limits_from_env()
    pool = UidPool(limits)
    # how many executions run at once and on how many CPUs: clients size their batches by it
    capacity = {"workers": int(os.environ.get("SANDBOX_WORKERS") or 0) or None, "cpus": len(os.sched_getaffinity(0))}
    app = Flask("nemo-eval-sandbox")

    def bad(message: str):
        return jsonify({"error": message}), 400

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "languages": sorted(LANGUAGES), **asdict(limits), **capacity})

    @app.post("/execute")
    def run():
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return bad("the body must be a JSON object")
        code = payload.get("generated_code")
        if not isinstance(code, str):
            return bad("'generated_code' (a string) is required")
        if len(code) > MAX_CODE_CHARS:
            return bad(f"'generated_code' is longer than {MAX_CODE_CHARS} characters")
        language = payload.get("language", "python")
        if language not in LANGUAGES:
            return bad(f"'language' must be one of {', '.join(sorted(LANGUAGES))}")
        timeout = payload.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= limits.max_timeout:
            return bad(f"'timeout' must be a number of seconds in (0, {limits.max_timeout:g}]")
        std_input = payload.get("std_input", "")
        if not isinstance(std_input, str):
            return bad("'std_input' must be a string")
        return jsonify(execute(code, language, float(timeout), std_input, limits, pool))

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(error):
        return jsonify({"error": str(error)}), error.code

    return app


app = create_app()
