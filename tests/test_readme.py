"""The README's quick start and CI stay the same command."""

from helpers import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, "the quick start has exactly two commands"
    assert commands[1] in ci.splitlines(), "the CI must run the README's test command verbatim"


def test_ci_stops_only_what_it_started_and_runs_the_linter():
    ci = "\n".join((REPO / ".ci" / name).read_text(encoding="utf-8") for name in ("run", "start-slurm.sh"))
    code = "\n".join(line.split("#", 1)[0] for line in ci.splitlines())
    assert "pkill" not in code and "killall" not in code, "stop processes by the pid you started them with"
    assert "ruff check" in code and '"$rc" -eq 5' in code
