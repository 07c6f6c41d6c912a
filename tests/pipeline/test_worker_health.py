"""The Slurm job's client step waits for a launched server on its server type's ``health_path`` (from the
server registry, plugins' included), not on a fixed path: the real worker against a real HTTP server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli_env, http_file_server

PLUGIN = '''
from nemo_eval.inference.server.base import SERVERS, ServerType

SERVERS.register("pathserve", ServerType(name="pathserve", description="health on its own path", needs_gpu=False,
                                         health_path={path!r}, command=lambda args: ["true"]))
'''


def _worker(tmp_path: Path, health_path: str, root: str) -> subprocess.CompletedProcess:
    plugin = tmp_path / f"plugin{len(health_path)}"
    plugin.mkdir()
    (plugin / "pathserve.py").write_text(PLUGIN.format(path=health_path))
    job = tmp_path / "job.json"
    job.write_text('{"output_dir": "%s", "runs": [], "server_type": "pathserve"}' % (tmp_path / "out"))
    return subprocess.run([sys.executable, "-m", "nemo_eval.pipeline.worker", "--job", str(job), "--runs", "",
                           "--sandbox", root, "--server", root + "/v1", "--launched-server", "--startup-timeout", "2"],
                          env=cli_env(tmp_path / "data", NEMO_EVAL_PLUGINS=str(plugin)), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def site(tmp_path):
    files = tmp_path / "site"
    (files / "ready" / "now").mkdir(parents=True)
    (files / "health").write_text("ok")  # the sandbox's health check
    (files / "ready" / "now" / "index.html").write_text("ok")
    with http_file_server(files) as root:
        yield root


def test_the_worker_polls_the_server_types_health_path(site, tmp_path):
    result = _worker(tmp_path, "/ready/now/", site)
    assert result.returncode == 0, result.stderr


def test_a_health_path_that_never_answers_names_its_url(site, tmp_path):
    result = _worker(tmp_path, "/v1/models", site)  # what the worker used to poll: not this server type's path
    assert result.returncode == 2
    assert f"the server at {site}/v1/models did not answer within 2 s" in result.stderr.splitlines()[-1]
