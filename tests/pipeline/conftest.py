"""Fixtures of the pipeline tests: a running Slurm."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def slurm_up() -> None:
    probe = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True) if shutil.which("sinfo") else None
    if probe is None or probe.returncode != 0 or not {"idle", "mix", "alloc"} & set(probe.stdout.split()):
        message = "Slurm tests need a running Slurm with an idle node (bash .ci/start-slurm.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
