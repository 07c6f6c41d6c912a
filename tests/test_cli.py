"""Every entry point explains itself with --help; unknown commands are one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.cli import SUBCOMMANDS

MODULES = ["nemo_eval.pipeline.eval", "nemo_eval.pipeline.compute_metrics", "nemo_eval.pipeline.summarize_results",
           "nemo_eval.pipeline.compare", "nemo_eval.metrics.compute_metrics", "nemo_eval.metrics.summarize_results",
           "nemo_eval.metrics.compare", "nemo_eval.inference.generate", "nemo_eval.evaluation.evaluate", "nemo_eval.datasets.prepare",
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


# ---- bad input: one line saying what is wrong and what to do, a non-zero exit, no traceback, nothing
# ---- already written changed (the table in docs/cli.md lists these cases)

def _files(folder) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _bad_input_cases(tmp_path, data_dir):
    """(name, arguments, message) for every case; files they need are made under ``tmp_path``."""
    import json

    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "latin1.jsonl").write_bytes(b'{"id": "1", "problem": "caf\xe9"}\n')
    (tmp_path / "dupes.jsonl").write_text('{"id": "a", "problem": "1+1"}\n{"id": "a", "problem": "2+2"}\n')
    (tmp_path / "inputs.jsonl").write_text('{"id": "a", "problem": "1+1", "expected_answer": "2"}\n')
    (tmp_path / "no-generation").mkdir()
    (tmp_path / "no-generation" / "output-greedy.jsonl").write_text('{"id": "a", "problem": "1+1", "expected_answer": "2"}\n')
    graded = {"id": "a", "problem": "1+1", "expected_answer": "2", "generation": "2", "is_correct": True}
    (tmp_path / "dupe-metrics").mkdir()
    (tmp_path / "dupe-metrics" / "output-greedy.jsonl").write_text((json.dumps(graded) + "\n") * 2)
    corrupt = tmp_path / "corrupt" / "out.jsonl"
    corrupt.parent.mkdir()
    corrupt.write_text('{"id": "a", "generation": "2"}\n')
    corrupt.with_name("out.jsonl.meta.json").write_text('{"settings": {"inp')
    generate = ["generate", "++server.base_url=http://127.0.0.1:9/v1", f"++data_dir={data_dir}"]
    return [
        ("output dir is a file", ["eval", "--server_address", "http://127.0.0.1:9/v1", "--benchmarks", "gsm8k:0",
                                  "--output_dir", str(tmp_path / "a-file" / "r"), "--dry_run"],
         "cannot be created: " + str(tmp_path / "a-file") + " is a file, not a directory"),
        ("output dir is a file (generate)", generate + ["++benchmark=gsm8k", f"++output_dir={tmp_path / 'a-file'}"],
         "is a file, not a directory"),
        ("input is not UTF-8", generate + [f"++input_file={tmp_path / 'latin1.jsonl'}", f"++output_file={tmp_path / 'o.jsonl'}"],
         "latin1.jsonl:1 is not valid UTF-8 (byte 0xe9 at column 28); save the file as UTF-8"),
        ("input is a directory", generate + [f"++input_file={tmp_path / 'a-dir'}", f"++output_file={tmp_path / 'o.jsonl'}"],
         "is a directory; give the path of a JSONL file"),
        ("duplicate ids", generate + [f"++input_file={tmp_path / 'dupes.jsonl'}", f"++output_file={tmp_path / 'o.jsonl'}"],
         "id 'a' is on items 1 and 2; ids must be unique"),
        ("max_samples < -1", generate + ["++benchmark=gsm8k", f"++output_dir={tmp_path / 'o'}", "++max_samples=-5"],
         "++max_samples must be -1 (all items) or a number of items"),
        ("negative temperature", generate + ["++benchmark=gsm8k", f"++output_dir={tmp_path / 'o'}",
                                             "++inference.temperature=-1"], "++inference.temperature must be >= 0"),
        ("top_p out of range", generate + ["++benchmark=gsm8k", f"++output_dir={tmp_path / 'o'}", "++inference.top_p=1.5"],
         "++inference.top_p must be in (0, 1]"),
        ("corrupt .meta.json", generate + [f"++input_file={tmp_path / 'inputs.jsonl'}", f"++output_file={corrupt}"],
         "out.jsonl.meta.json is corrupt"),
        ("evaluate lines without generation",
         ["evaluate", f"++prediction_jsonl_files=[{tmp_path / 'no-generation' / 'output-greedy.jsonl'}]"],
         "output-greedy.jsonl:1 has no 'generation' field"),
        ("evaluate a directory", ["evaluate", f"++prediction_jsonl_files=[{tmp_path / 'a-dir'}]"], "is a directory"),
        ("greedy metrics with duplicate ids",
         ["compute-metrics", "--prediction_jsonl_files", str(tmp_path / "dupe-metrics" / "output-greedy.jsonl")],
         "id 'a' appears twice"),
        ("eval: max_samples < -1", ["eval", "--server_address", "http://127.0.0.1:9/v1", "--benchmarks", "gsm8k:0",
                                    "--output_dir", str(tmp_path / "never"), "++max_samples=-5"], "++max_samples must be -1"),
        ("eval: negative temperature", ["eval", "--server_address", "http://127.0.0.1:9/v1", "--benchmarks", "gsm8k:0",
                                        "--output_dir", str(tmp_path / "never"), "++inference.temperature=-1"],
         "++inference.temperature must be >= 0"),
        ("eval: unreachable server", ["eval", "--server_address", "http://127.0.0.1:9/v1", "--benchmarks", "gsm8k:0",
                                      "--output_dir", str(tmp_path / "never")],
         "cannot reach the server at http://127.0.0.1:9/v1"),
        ("deleting a setting", ["show-prompt", "gsm8k", "~index"], "settings cannot be deleted"),
    ]


def test_bad_input_is_one_line_and_changes_nothing(prepared_data, tmp_path):
    from helpers import cli_env

    cases = _bad_input_cases(tmp_path, prepared_data)
    env = cli_env(prepared_data)
    for name, args, message in cases:
        before = _files(tmp_path)
        result = run_cli(*args, env=env)
        assert result.returncode == 2, f"{name}: exit {result.returncode}\n{result.stderr}"
        line = single_error_line(result.stderr)
        assert message in line, f"{name}: {line}"
        assert _files(tmp_path) == before, f"{name}: files changed"
        assert not (tmp_path / "never").exists(), name


def test_plus_key_sets_an_existing_setting(prepared_data):
    from helpers import cli_env

    one = run_cli("show-prompt", "gsm8k", "+index=2", "--format", "json", env=cli_env(prepared_data))
    two = run_cli("show-prompt", "gsm8k", "++index=2", "--format", "json", env=cli_env(prepared_data))
    assert one.returncode == 0, one.stderr
    assert one.stdout == two.stdout


def test_stop_strings_with_newlines_on_the_command_line(prepared_data, tmp_path):
    """docs/generation.md: ++inference.stop='["Q:","\\n\\n"]' sends two newlines, not a backslash and an n."""
    import json

    from helpers import cli_env

    result = run_cli("generate", "++benchmark=gsm8k", f"++output_dir={tmp_path}", "++dry_run=true",
                     '++inference.stop=["Q:","\\n\\n"]', env=cli_env(prepared_data))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout.split("\n", 1)[1])
    assert body["stop"][-2:] == ["Q:", "\n\n"]


def _as_nobody(command: list[str], tmp_path) -> subprocess.CompletedProcess:
    """Run the CLI as uid 65534 (permissions apply; root bypasses them)."""
    import os
    import sysconfig
    from pathlib import Path

    from helpers import REPO

    import sys

    same = Path("/usr/bin/python3").exists() and subprocess.run(
        ["/usr/bin/python3", "-c", f"import sys; sys.exit(sys.version_info[:2] != {tuple(sys.version_info[:2])})"]).returncode == 0
    if os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists() or not same:
        pytest.skip("needs root, setpriv and a system python3 of this version to run the CLI as another user "
                    "(this interpreter sits under /root)")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "NEMO_EVAL_DATA_DIR": str(tmp_path / "nobody-data"),
           "PYTHONPATH": f"{REPO}:{sysconfig.get_paths()['purelib']}"}
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-m",
                           "nemo_eval", *command], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def shared_tmp():
    """A folder every user can reach (pytest's own tmp_path sits under a root-only folder)."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="nemo-eval-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_unwritable_output_dir_is_one_line(shared_tmp):
    import os

    from helpers import openai_test_server

    tmp_path = shared_tmp
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    with openai_test_server() as url:
        result = _as_nobody(["eval", "--server_address", url, "--benchmarks", "gsm8k:0", "--output_dir",
                             str(locked / "r")], tmp_path)
    line = single_error_line(result.stderr)
    assert result.returncode == 2 and f"cannot create output dir {locked / 'r'}: Permission denied" in line
    metrics = tmp_path / "graded"
    metrics.mkdir()
    (metrics / "gsm8k").mkdir()
    (metrics / "gsm8k" / "output-greedy.jsonl").write_text('{"id": "a", "generation": "2", "is_correct": true}\n')
    os.chmod(metrics, 0o555)
    result = _as_nobody(["summarize-results", str(metrics)], tmp_path)        # metrics.json cannot be written
    line = single_error_line(result.stderr.replace(result.stdout, ""))
    assert result.returncode == 2 and "Permission denied" in line and "Traceback" not in result.stderr


def test_flags_are_dashed_and_their_underscore_spelling_is_an_alias(tmp_path):
    """One spelling (dashes) in --help; the underscore spelling of any flag still works (docs/cli.md)."""
    shown = run_cli("eval", "--help").stdout
    assert "--output-dir OUTPUT_DIR" in shown and "--output_dir" not in shown.split("options:", 1)[1].split("\n  -")[0]
    outputs = []
    for spelling in (["--server-address", "--output-dir", "--dry-run", "--num-jobs=2"],
                     ["--server_address", "--output_dir", "--dry_run", "--num_jobs=2"]):
        address, output_dir, dry_run, jobs = spelling
        result = run_cli("eval", address, "http://127.0.0.1:8000", "--benchmarks", "gsm8k:0",
                         output_dir, str(tmp_path / "r"), dry_run, jobs)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


def test_the_parser_respells_only_its_own_flags():
    from nemo_eval.arguments import Parser

    parser = Parser(prog="p")
    parser.add_argument("--data-dir")
    parser.add_argument("--server_args", default="")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args(["--data_dir", "d", "--server-args=--max_model_len 8", "--", "--data_dir"])
    assert (args.data_dir, args.server_args, args.rest) == ("d", "--max_model_len 8", ["--data_dir"])
