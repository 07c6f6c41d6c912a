"""Session fixtures: one prepared data directory built through the real CLI, and the sandbox in each mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import MIRROR_BENCHMARKS, cli_env, run_cli  # noqa: E402
from sandbox_support import require, start_sandbox, stop_sandbox  # noqa: E402

_require = require  # the pipeline tests import it from here


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """Every mirrored benchmark prepared once with ``nemo-eval prepare-data`` into a temporary dir."""
    data_dir = tmp_path_factory.mktemp("data")
    result = run_cli("prepare-data", *MIRROR_BENCHMARKS, env=cli_env(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir


@pytest.fixture(scope="session")
def sandbox_url():
    """The sandbox service in bwrap mode (graders and code execution use it)."""
    require("bwrap")
    proc, url = start_sandbox("bwrap")
    yield url
    stop_sandbox(proc)


@pytest.fixture(scope="session", params=["bwrap", "docker"])
def sandbox_mode_url(request, sandbox_url):
    """The sandbox service in each mode, for the hostile-code tests."""
    if request.param == "bwrap":
        yield "bwrap", sandbox_url
        return
    require("docker")
    proc, url = start_sandbox("docker")
    yield "docker", url
    stop_sandbox(proc)
