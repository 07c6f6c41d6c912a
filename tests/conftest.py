"""Session fixtures: one prepared data directory built through the real CLI, and the sandbox in each mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))  # the tests' helpers

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


# ---- markers (registered in pyproject.toml). Tests that need a system service through a fixture are marked
# here, from the fixtures they use; tests that start one themselves carry the marker in their module.
SERVICE_FIXTURES = {"sandbox_url": "bwrap", "slurm_up": "slurm", "ssh_login": "slurm"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in SERVICE_FIXTURES.items():
            if fixture in names:
                item.add_marker(marker)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("sandbox_mode_url") == "docker":
            item.add_marker("docker")
