"""prepare-data through the real CLI: counts, schema, idempotence, mirrors and every error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import MIRROR_BENCHMARKS, REPO, cli_env, http_file_server, mirror_dir, run_cli, single_error_line

EXPECTED_COUNTS = {
    ("gsm8k", "test"): 1319, ("gsm8k", "train"): 7473, ("math-500", "test"): 500, ("aime24", "test"): 30,
    ("amc23", "test"): 40, ("svamp", "test"): 1000, ("asdiv", "test"): 2215, ("humaneval", "test"): 164,
    ("mbpp", "test"): 500, ("mbpp", "train"): 374, ("mbpp", "validation"): 90, ("mbpp", "prompt"): 10,
    ("mbpp", "sanitized-test"): 257,
}
CODE = {"humaneval", "mbpp"}


def rows(data_dir: Path, benchmark: str, split: str) -> list[dict]:
    with open(data_dir / benchmark / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize(("benchmark", "split"), sorted(EXPECTED_COUNTS))
def test_counts_and_uniform_schema(prepared_data, benchmark, split):
    items = rows(prepared_data, benchmark, split)
    assert len(items) == EXPECTED_COUNTS[benchmark, split]
    assert len({item["id"] for item in items}) == len(items), "ids must be unique"
    for item in items:
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item["problem"], str) and item["problem"].strip()
        if benchmark in CODE:
            assert item["test"].strip() and item["entry_point"]
            assert item["reference_solution"].strip()
        else:
            assert isinstance(item["expected_answer"], str) and item["expected_answer"].strip()


def test_gsm8k_answers_are_numbers_without_separators(prepared_data):
    items = rows(prepared_data, "gsm8k", "test")
    assert items[0]["expected_answer"] == "18"
    assert all("," not in item["expected_answer"] for item in items)
    raw = [json.loads(line) for line in open(prepared_data / "gsm8k" / "raw" / "test.jsonl", encoding="utf-8")]
    with_separator = [i for i, r in enumerate(raw) if "," in r["answer"].rpartition("####")[2]]
    assert with_separator, "the test split has answers written with thousands separators"
    for index in with_separator:
        assert items[index]["expected_answer"] == raw[index]["answer"].rpartition("####")[2].strip().replace(",", "")
    assert all("<<" not in item["reference_solution"] for item in items)


def test_answers_normalised_per_source(prepared_data):
    amc = {item["id"]: item["expected_answer"] for item in rows(prepared_data, "amc23", "test")}
    assert amc["0"] == "27"  # stored upstream as 27.0
    aime = [item["expected_answer"] for item in rows(prepared_data, "aime24", "test")]
    assert all(answer.isdigit() and not (answer.startswith("0") and answer != "0") for answer in aime)
    asdiv = rows(prepared_data, "asdiv", "test")
    assert asdiv[0]["expected_answer"] == "9" and asdiv[0]["answer_with_unit"] == "9 (apples)"
    svamp = rows(prepared_data, "svamp", "test")
    assert svamp[0]["expected_answer"] == "145"
    assert svamp[0]["problem"].endswith("How big is each group of bananas?")


def test_code_benchmarks_carry_what_the_sandbox_needs(prepared_data):
    human = rows(prepared_data, "humaneval", "test")[0]
    assert human["id"] == "HumanEval/0" and human["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in human["test"]
    assert human["reference_solution"].startswith(human["prompt"])
    mbpp = rows(prepared_data, "mbpp", "test")
    assert mbpp[0]["id"] == "11" and mbpp[-1]["id"] == "510"
    for item in mbpp:
        assert f"{item['entry_point']}(" in item["test"], item["id"]
        assert "\r" not in item["reference_solution"]


def test_reference_code_passes_its_tests(prepared_data, tmp_path):
    """The converted programs are runnable: reference + tests pass for HumanEval and (sampled) MBPP."""
    for item in rows(prepared_data, "humaneval", "test")[:20] + rows(prepared_data, "mbpp", "test")[:20]:
        program = item["reference_solution"] + "\n" + item["test"]
        if "prompt" in item:  # HumanEval calls check() on the entry point
            program += f"\ncheck({item['entry_point']})\n"
        script = tmp_path / "program.py"
        script.write_text(program, encoding="utf-8")
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 0, (item["id"], result.stderr[-500:])


def test_rerun_is_a_noop(prepared_data):
    files = sorted(prepared_data.glob("*/*.jsonl"))
    before = {path: path.stat().st_mtime_ns for path in files}
    result = run_cli("prepare-data", *MIRROR_BENCHMARKS, env=cli_env(prepared_data))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("up to date") == len(MIRROR_BENCHMARKS)
    assert {path: path.stat().st_mtime_ns for path in files} == before


def test_damaged_output_is_rebuilt(tmp_path):
    env = cli_env(tmp_path)
    assert run_cli("prepare-data", "aime24", env=env).returncode == 0
    target = tmp_path / "aime24" / "test.jsonl"
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 2])
    result = run_cli("prepare-data", "aime24", env=env)
    assert result.returncode == 0 and "prepared" in result.stdout
    assert target.read_bytes() == good


def test_unknown_benchmark_lists_known_ones(tmp_path):
    result = run_cli("prepare-data", "gsm9k", env=cli_env(tmp_path))
    assert result.returncode == 2
    line = single_error_line(result.stderr)
    assert "unknown benchmark 'gsm9k'" in line and "gsm8k" in line and "humaneval" in line
    assert not any(tmp_path.iterdir()), "nothing may be written for a bad name"


def test_no_network_and_no_mirror_says_how_to_set_the_mirror(tmp_path):
    closed = "http://127.0.0.1:9"  # nothing listens on the discard port: every download fails fast
    env = cli_env(tmp_path, mirror=None, HTTPS_PROXY=closed, HTTP_PROXY=closed, https_proxy=closed,
                  http_proxy=closed, NO_PROXY="", no_proxy="")
    result = run_cli("prepare-data", "amc23", env=env)
    assert result.returncode == 2
    line = single_error_line(result.stderr)
    assert "cannot get amc23/test.jsonl" in line and "NEMO_EVAL_DATA_MIRROR" in line
    assert not list((tmp_path / "amc23").glob("**/*.jsonl"))


def test_checksum_mismatch_refuses_and_keeps_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "gsm8k").mkdir(parents=True)
    source = Path(mirror_dir() or "") / "gsm8k"
    if not (source / "test.jsonl").is_file():
        pytest.skip("needs the data mirror (NEMO_EVAL_DATA_MIRROR) to build a tampered copy")
    data = (source / "test.jsonl").read_bytes().replace(b"#### 18", b"#### 19", 1)
    (mirror / "gsm8k" / "test.jsonl").write_bytes(data)
    shutil.copy(source / "train.jsonl", mirror / "gsm8k" / "train.jsonl")
    data_dir = tmp_path / "data"
    result = run_cli("prepare-data", "gsm8k", env=cli_env(data_dir, mirror=str(mirror)))
    assert result.returncode == 2
    line = single_error_line(result.stderr)
    assert "checksum mismatch for gsm8k/test.jsonl" in line and "3730d312" in line
    left = [p.name for p in (data_dir / "gsm8k").rglob("*") if p.is_file() and p.name != ".lock"]
    assert left == [], f"nothing may be kept, found {left}"


def test_http_mirror_and_concurrent_runs(tmp_path):
    """A mirror given as a URL, served by a real HTTP server; two racing runs both succeed."""
    if not mirror_dir():
        pytest.skip("needs NEMO_EVAL_DATA_MIRROR to serve")
    with http_file_server(Path(mirror_dir())) as url:
        env = cli_env(tmp_path, mirror=url)
        procs = [subprocess.Popen([sys.executable, "-m", "nemo_eval", "prepare-data", "math-500", "svamp"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert len(rows(tmp_path, "math-500", "test")) == 500
    assert len(rows(tmp_path, "svamp", "test")) == 1000


def test_git_blob_checksum_matches_git(tmp_path):
    """MATH's only published checksum is a git blob id; ours must equal git's."""
    from nemo_eval.datasets.fetch import git_blob_sha1

    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b'{"problem": "1+1", "answer": "2"}\n' * 100)
    expected = subprocess.run(["git", "hash-object", str(sample)], capture_output=True, text=True, check=True).stdout.strip()
    assert git_blob_sha1(sample) == expected


def test_adding_a_benchmark_is_adding_a_folder(tmp_path):
    """A user folder in NEMO_EVAL_EXTRA_BENCHMARKS becomes a benchmark for every command."""
    raw = b'{"q": "What is 2+3?", "a": 5}\n{"q": "What is 7*6?", "a": 42}\n'
    mirror = tmp_path / "mirror" / "tiny"
    mirror.mkdir(parents=True)
    (mirror / "tiny.jsonl").write_bytes(raw)
    folder = tmp_path / "benchmarks" / "tiny"
    folder.mkdir(parents=True)
    import hashlib

    (folder / "benchmark.yaml").write_text(
        "description: Two sums.\nraw_files:\n  - name: tiny.jsonl\n    url: https://example.invalid/tiny.jsonl\n"
        f"    sha256: {hashlib.sha256(raw).hexdigest()}\nsplits: [test]\n", encoding="utf-8")
    (folder / "convert.py").write_text(
        "from nemo_eval.datasets.convert_utils import format_number, read_jsonl\n\n"
        "def convert(split, raw_dir):\n"
        "    for i, row in enumerate(read_jsonl(raw_dir / 'tiny.jsonl')):\n"
        "        yield {'id': str(i), 'problem': row['q'], 'expected_answer': format_number(row['a'])}\n",
        encoding="utf-8")
    env = cli_env(tmp_path / "data", mirror=str(tmp_path / "mirror"), NEMO_EVAL_EXTRA_BENCHMARKS=str(folder.parent))
    listed = run_cli("list-benchmarks", env=env)
    assert listed.returncode == 0 and "tiny" in listed.stdout
    result = run_cli("prepare-data", "tiny", env=env)
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path / "data", "tiny", "test")[1] == {"id": "1", "problem": "What is 7*6?", "expected_answer": "42"}
    shown = run_cli("show-prompt", "tiny", "++index=1", env=env)
    assert shown.returncode == 0 and "What is 7*6?" in shown.stdout


def test_no_data_is_committed():
    tracked = subprocess.run(["git", "ls-files", "datasets"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:  # not a git checkout (e.g. an sdist): check the folder itself
        tracked = [str(p.relative_to(REPO)) for p in (REPO / "datasets").rglob("*") if p.is_file()]
    allowed = {"benchmark.yaml", "convert.py", "README.md"}
    offenders = [path for path in tracked if os.path.basename(path) not in allowed]
    assert offenders == [], f"datasets/ may only hold definitions, found {offenders}"
