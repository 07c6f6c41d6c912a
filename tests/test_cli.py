"""Every entry point explains itself with --help; unknown commands are one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.cli import SUBCOMMANDS

MODULES = ["nemo_eval.pipeline.eval", "nemo_eval.pipeline.compute_metrics", "nemo_eval.pipeline.summarize_results",
           "nemo_eval.inference.generate", "nemo_eval.evaluation.evaluate", "nemo_eval.datasets.prepare",
           "nemo_eval.prompts.show_prompt", "nemo_eval.datasets.list_benchmarks"]


def test_top_level_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_subcommand_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and len(result.stdout.splitlines()) > 3


@pytest.mark.parametrize("module", MODULES)
def test_module_help(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_console_script_is_installed():
    import shutil
    from pathlib import Path

    beside_python = Path(sys.executable).parent / "nemo-eval"  # where pip puts it in a virtualenv
    script = str(beside_python) if beside_python.exists() else shutil.which("nemo-eval")
    assert script, "the nemo-eval console script is not installed"
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.startswith("nemo-eval ")


def test_unknown_command():
    result = run_cli("evall")
    assert result.returncode == 2 and "unknown command" in single_error_line(result.stderr)


def test_generate_rejects_dash_options_with_a_hint():
    result = run_cli("generate", "--benchmarks", "gsm8k")
    assert result.returncode == 2 and "++key=value" in single_error_line(result.stderr)
