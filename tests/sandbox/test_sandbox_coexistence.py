"""Several sandbox services on one host, in both modes, under load at once: no service ever touches
another's executions (they used to share uids and kill each other's programs on every uid claim)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nemo_eval.sandbox import SandboxClient
from sandbox_support import require, sandbox_service, start_sandbox, stop_sandbox

PROGRAM = "import os, time\ntime.sleep(0.3)\nprint(os.getuid())"


def load(url: str, executions: int) -> list[dict]:
    return SandboxClient(url, max_concurrency=8).execute_many([{"code": PROGRAM, "timeout": 30}] * executions)


@pytest.mark.docker
def test_services_in_both_modes_never_touch_each_others_executions(sandbox_url, tmp_path):
    require("docker")
    # a second bwrap service as a new user would start it, in another work directory (which used to
    # mean another uid lock directory), and a third that starts and stops while the load runs
    other_env = {**os.environ, "SANDBOX_WORK_ROOT": str(tmp_path / "other-root")}
    with sandbox_service("docker") as (_, docker_url), sandbox_service("bwrap", env=other_env) as (_, bwrap_url):
        stop_churn = threading.Event()

        def churn() -> int:
            rounds = 0
            while not stop_churn.is_set():
                proc, _ = start_sandbox("bwrap", env=other_env)
                stop_sandbox(proc)
                rounds += 1
            return rounds

        with ThreadPoolExecutor(4) as pool:
            churner = pool.submit(churn)
            loads = {name: pool.submit(load, url, 48) for name, url in
                     (("bwrap", sandbox_url), ("docker", docker_url), ("bwrap-2", bwrap_url))}
            results = {name: future.result() for name, future in loads.items()}
            stop_churn.set()
            assert churner.result() >= 1
    uids = {}
    for name, runs in results.items():
        bad = [r for r in runs if (r["process_status"], r["return_code"]) != ("completed", 0)]
        assert not bad, f"{name}: {len(bad)} of {len(runs)} executions were disturbed, e.g. {bad[0]}"
        uids[name] = {int(r["stdout"]) for r in runs}
    names = list(uids)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert not uids[first] & uids[second], f"{first} and {second} ran programs as the same uid"
