"""Extending nemo-eval from a folder outside the package (``NEMO_EVAL_PLUGINS``), touching no file of it.

One plugin folder adds a benchmark (raw files given as a ``file://`` URL and a plain path), its prompt
config, a server type (the suite's OpenAI-compatible test server, launched for real), an eval type with
its grader and its own setting, and a metrics family with its own column; the test runs them through
list-benchmarks, show-prompt, generate (dry run, then for real), evaluate, compute-metrics,
summarize-results and a Slurm cluster config naming a container for the new server type. All through
the CLI in subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from helpers import REPO, cli_env, run_cli, single_error_line

QUIZ = [
    {"id": "q1", "problem": "Which number is prime? (A) 4 (B) 7 (C) 9", "answer": "B"},
    {"id": "q2", "problem": "Which is a vowel? (A) a (B) k (C) t", "answer": "A"},
    {"id": "q3", "problem": "Which is even? (A) 3 (B) 5 (C) 8", "answer": "C"},
]

CONVERT = '''
import json
from pathlib import Path


def convert(split, raw_dir: Path):
    note = (raw_dir / "note.txt").read_text().strip()
    for row in map(json.loads, (raw_dir / "quiz.jsonl").read_text().splitlines()):
        yield {"id": row["id"], "problem": row["problem"], "expected_answer": row["answer"],
               "options": "ABC", "note": note}
'''

CHOICE_PLUGIN = '''
"""Multiple-choice grading and metrics: a plugin of the test suite."""
import re
from dataclasses import dataclass, field

from nemo_eval.eval_types import EVAL_TYPES, EvalType
from nemo_eval.metrics.families import METRICS, MetricsFamily


@dataclass
class ChoiceSettings:
    choice_letters: str = field(default="ABC", metadata={"help": "letters a choice answer may be"})


def letter(generation, letters):
    found = re.findall(r"\\\\boxed\\{\\s*([A-Z])\\s*\\}", generation or "")
    return found[-1] if found and found[-1] in letters else None


def grade(lines, config):
    graded = []
    for line in lines:
        predicted = letter(line.get("generation"), config.choice_letters)
        graded.append({**line, "predicted_answer": predicted, "is_correct": predicted == line["expected_answer"]})
    return graded


def summarize(lines):
    valid = sum(line.get("predicted_answer") is not None for line in lines)
    return {"valid_letter": round(100 * valid / len(lines), 2) if lines else 0.0}


def check(config):
    return None if config.choice_letters.isalpha() else "++choice_letters must be letters, e.g. ABCD"


EVAL_TYPES.register("choice", EvalType(
    name="choice", description="the letter in \\\\boxed{} against expected_answer", grader=grade,
    required_fields=("id", "problem", "expected_answer", "options"), settings=ChoiceSettings, check=check))
METRICS.register("choice", MetricsFamily(name="choice", description="share of valid letters",
                                         columns=("valid_letter",), summarize=summarize))
'''

SERVER_PLUGIN = '''
"""A launchable server type: the suite's OpenAI-compatible test server."""
import sys

from nemo_eval.inference.server.base import SERVERS, ServerType

SERVERS.register("quizserve", ServerType(
    name="quizserve", description="the test suite's server", needs_gpu=False, health_path="/health",
    command=lambda args: [args.python, {script!r}, "--port", str(args.port), "--answers-jsonl", {answers!r},
                          "--correct-rate", "0.5"]))
'''


def make_plugin(root: Path) -> Path:
    """The plugin folder (and, next to it, the benchmark's raw files)."""
    source = root / "source"
    source.mkdir()
    quiz = source / "quiz.jsonl"
    quiz.write_text("".join(json.dumps(row) + "\n" for row in QUIZ))
    note = source / "note.txt"
    note.write_text("from a plain path\n")
    plugin = root / "plugin"
    bench = plugin / "datasets" / "quiz"
    bench.mkdir(parents=True)
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()  # noqa: E731
    (bench / "benchmark.yaml").write_text(
        "description: a three-question quiz\nlicense: CC0\nraw_files:\n"
        f"  - name: quiz.jsonl\n    url: {quiz.as_uri()}\n    sha256: {digest(quiz)}\n"
        f"  - name: note.txt\n    url: {note}\n    sha256: {digest(note)}\n"
        "defaults:\n  prompt_config: quiz/letter\n  eval_type: choice\n  metrics_type: choice\n"
        "  tokens_to_generate: 16\n")
    (bench / "convert.py").write_text(CONVERT)
    (plugin / "prompts" / "quiz").mkdir(parents=True)
    (plugin / "prompts" / "quiz" / "letter.yaml").write_text(
        'description: answer with one letter\nsystem: ""\nuser: |-\n  {problem}\n  Put the letter in \\boxed{{}}.\n')
    answers = source / "answers.jsonl"
    answers.write_text("".join(json.dumps({"problem": r["problem"], "expected_answer": r["answer"]}) + "\n" for r in QUIZ))
    (plugin / "choice.py").write_text(CHOICE_PLUGIN)
    (plugin / "quizserve.py").write_text(SERVER_PLUGIN.format(script=str(REPO / "tests" / "support" / "openai_test_server.py"),
                                                              answers=str(answers)))
    return plugin


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("plugin")
    return cli_env(root / "data", NEMO_EVAL_PLUGINS=str(make_plugin(root)))


def ok(*args: str, env: dict[str, str], **kwargs) -> str:
    result = run_cli(*args, env=env, **kwargs)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    return result.stdout


def test_a_plugin_folder_adds_every_kind_of_thing(plugin_env, tmp_path):
    listing = ok("list-benchmarks", env=plugin_env)
    assert any(line.split()[:2] == ["quiz", "choice"] for line in listing.splitlines()), listing
    assert "gsm8k" in listing

    prepared = ok("prepare-data", "quiz", env=plugin_env)  # file:// URL and plain path, checksums verified
    assert "quiz: prepared (test 3)" in prepared
    prompt = ok("show-prompt", "quiz", "++index=1", env=plugin_env)
    assert "Which is a vowel? (A) a (B) k (C) t\nPut the letter in \\boxed{}." in prompt

    out = tmp_path / "out"
    dry = ok("generate", "++benchmark=quiz", f"++output_dir={out}", "++server.server_type=quizserve",
             "++dry_run=true", env=plugin_env)
    assert "# 3 items" in dry and not (out / "quiz" / "output-greedy.jsonl").exists()
    assert "quizserve (the test suite's server)" in ok("generate", "--help", env=plugin_env)
    ok("generate", "++benchmark=quiz", f"++output_dir={out}", "++server.server_type=quizserve",
       "++server.model=test-model", env=plugin_env, timeout=120)
    output = out / "quiz" / "output-greedy.jsonl"
    assert (out / "logs" / "server-quizserve.log").is_file()

    assert "++choice_letters='ABC'" in ok("evaluate", "--help", env=plugin_env)
    bad = run_cli("evaluate", f"++prediction_jsonl_files=[{output}]", "++choice_letters=1", env=plugin_env)
    assert bad.returncode == 2 and "++choice_letters must be letters" in single_error_line(bad.stderr)
    ok("evaluate", f"++prediction_jsonl_files=[{output}]", env=plugin_env)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert all(line["is_correct"] == (line["predicted_answer"] == line["expected_answer"]) for line in lines)
    correct = sum(line["is_correct"] for line in lines)
    valid = sum(line["predicted_answer"] is not None for line in lines)

    table = ok("compute-metrics", "--prediction_jsonl_files", str(output), env=plugin_env)
    assert table.splitlines()[0].split(" | ")[-1].strip() == "valid_letter"
    summary = ok("summarize-results", str(out), env=plugin_env)
    assert "valid_letter" in summary.splitlines()[0]
    metrics = json.loads((out / "metrics.json").read_text())["quiz"]["greedy"]
    assert metrics["valid_letter"] == round(100 * valid / 3, 2) and metrics["accuracy"] == round(100 * correct / 3, 2)

    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(f"executor: slurm\npython: {sys.executable}\ncontainers:\n  quizserve: registry/quizserve:1\n"
                       f"env_vars:\n  NEMO_EVAL_PLUGINS: {plugin_env['NEMO_EVAL_PLUGINS']}\n")
    script = ok("eval", "--cluster", str(cluster), "--server_type", "quizserve", "--model", "m", "--benchmarks",
                "quiz:0", "--output_dir", str(tmp_path / "r"), "--dry_run", env=plugin_env)
    assert f"--container-image=registry/quizserve:1 python3 {REPO / 'tests' / 'support' / 'openai_test_server.py'}" in script


def test_without_the_plugin_its_names_are_unknown_and_say_how_to_add_them(tmp_path):
    env = cli_env(tmp_path / "data")
    result = run_cli("evaluate", "++prediction_jsonl_files=[x.jsonl]", "++eval_type=choice", env=env)
    assert result.returncode == 2
    assert "unknown eval type 'choice'" in single_error_line(result.stderr)
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("executor: slurm\ncontainers:\n  quizserve: registry/quizserve:1\n")
    result = run_cli("eval", "--cluster", str(cluster), "--benchmarks", "gsm8k:0", "--output_dir",
                     str(tmp_path / "r"), "--dry_run", env=env)
    line = single_error_line(result.stderr)
    assert "containers: unknown key(s) quizserve" in line and "vllm" in line


def test_a_broken_benchmark_folder_is_named_once_and_breaks_nothing_else(prepared_data, tmp_path):
    broken = tmp_path / "extra" / "mcq"
    broken.mkdir(parents=True)
    (broken / "benchmark.yaml").write_text("raw_files: [{name: a, url: x, sha256: '0'}]\ndefaults: {eval_type: mcq}\n")
    (broken / "convert.py").write_text("def convert(split, raw_dir):\n    return []\n")
    env = cli_env(prepared_data, NEMO_EVAL_EXTRA_BENCHMARKS=str(tmp_path / "extra"))
    listing = run_cli("list-benchmarks", env=env)
    assert listing.returncode == 0 and "gsm8k" in listing.stdout and "mcq" not in listing.stdout
    warning = single_error_line(listing.stderr)
    assert warning.startswith("nemo-eval: warning: benchmark mcq skipped:") and "eval_type 'mcq' is not registered" in warning
    assert run_cli("prepare-data", "gsm8k", env=env).returncode == 0
    used = run_cli("prepare-data", "mcq", env=env)
    assert used.returncode == 2 and "benchmark mcq cannot be used:" in used.stderr.splitlines()[-1]


def test_a_plugin_that_fails_to_import_is_one_warning(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "bad.py").write_text("import no_such_module_here\n")
    result = run_cli("list-benchmarks", env=cli_env(tmp_path / "data", NEMO_EVAL_PLUGINS=str(plugin)))
    assert result.returncode == 0 and "gsm8k" in result.stdout
    warning = single_error_line(result.stderr)
    assert warning.startswith(f"nemo-eval: warning: plugin {plugin / 'bad.py'} skipped: ModuleNotFoundError")


def test_a_missing_file_url_says_which_file_not_no_network(tmp_path):
    bench = tmp_path / "extra" / "local"
    bench.mkdir(parents=True)
    (bench / "benchmark.yaml").write_text(
        f"raw_files:\n  - name: a.jsonl\n    url: {(tmp_path / 'gone.jsonl').as_uri()}\n    sha256: '00'\n")
    (bench / "convert.py").write_text("def convert(split, raw_dir):\n    return []\n")
    result = run_cli("prepare-data", "local", env=cli_env(tmp_path / "data", mirror=None,
                                                          NEMO_EVAL_EXTRA_BENCHMARKS=str(tmp_path / "extra")))
    line = single_error_line(result.stderr)
    assert f"{(tmp_path / 'gone.jsonl').as_uri()}: no such file" in line and "no network" not in line
    assert "file:///absolute/path or a plain path" in line
