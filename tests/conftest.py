"""Session fixtures: one prepared data directory built through the real CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import MIRROR_BENCHMARKS, cli_env, run_cli  # noqa: E402


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """Every mirrored benchmark prepared once with ``nemo-eval prepare-data`` into a temporary dir."""
    data_dir = tmp_path_factory.mktemp("data")
    result = run_cli("prepare-data", *MIRROR_BENCHMARKS, env=cli_env(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir
