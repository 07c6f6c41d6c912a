"""A regular (non-editable) wheel install finds its prompts, benchmark definitions and configs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO, cli_env


@pytest.mark.slow
def test_wheel_install_works_outside_the_source_tree(tmp_path, prepared_data):
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheel_dir), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheel_dir.glob("nemo_eval-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nemo_eval/_bundled/prompts/generic/math.yaml" in names
    assert "nemo_eval/_bundled/datasets/gsm8k/benchmark.yaml" in names
    assert "nemo_eval/viewer/templates/sample.html" in names and "nemo_eval/viewer/static/viewer.css" in names
    assert not [n for n in names if n.endswith((".jsonl", ".gz", ".xml"))], "no data in the wheel"

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = cli_env(prepared_data, PYTHONPATH=str(site))
    where = subprocess.run([sys.executable, "-c", "import nemo_eval.resources as r; print(r.bundled_dir('prompts'))"],
                           env=env, cwd=tmp_path, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(site)), where.stdout
    shown = subprocess.run([sys.executable, "-m", "nemo_eval", "show-prompt", "mbpp", "++prompt_template=chatml"],
                           env=env, cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "<|im_start|>user" in shown.stdout and "similar_elements" in shown.stdout
    assert os.path.isdir(site / "nemo_eval" / "_bundled" / "cluster_configs")
