"""Sweeps planned without running anything (the quick tier): one launched server per checkpoint, in
turn, each into its own dir; ``--dry-run`` writes nothing; bad model lists are one-line errors."""

from __future__ import annotations

from helpers import cli_env, run_cli, single_error_line


def test_dry_run_plans_one_launched_server_per_checkpoint(tmp_path, prepared_data):
    for step in ("step_1", "step_2"):
        (tmp_path / "run" / step).mkdir(parents=True)
    out = tmp_path / "sweep"
    models = f"{tmp_path / 'run' / 'step_1'},{tmp_path / 'run' / 'step_2'}"
    result = run_cli("eval", "--server-type", "llamacpp", "--model", models, "--benchmarks", "gsm8k:0", "--output-dir",
                     str(out), "--dry-run", env=cli_env(prepared_data))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("launch llamacpp server") == 2
    assert f"launch llamacpp server (model {tmp_path / 'run' / 'step_1'}" in result.stdout
    assert f"++output_dir={out / 'step_2'}" in result.stdout
    assert not out.exists()   # --dry-run writes nothing, not even sweep.json


def test_bad_sweeps_are_one_line_errors(tmp_path, prepared_data):
    base = ["eval", "--server-address", "http://127.0.0.1:9/v1", "--benchmarks", "gsm8k:0", "--output-dir",
            str(tmp_path / "out")]
    cases = [(["--model", "a,b,a"], "names a model twice"),
             (["--model", f"@{tmp_path / 'none.txt'}"], "cannot read"),
             (["--model", " , "], "names no model"),
             (["--watch", str(tmp_path), "--model", "a"], "--watch takes the checkpoints from its directory"),
             (["--watch", str(tmp_path / "nope")], "is not a directory"),
             (["--watch", str(tmp_path), "--dry-run"], "--watch runs until stopped"),
             (["--watch", str(tmp_path), "--watch-interval", "0"], "--watch-interval must be > 0")]
    for extra, message in cases:
        result = run_cli(*base, *extra, env=cli_env(prepared_data))
        assert result.returncode == 2 and message in single_error_line(result.stderr), (extra, result.stderr)


def test_a_sweep_on_slurm_plans_jobs_per_checkpoint_and_checks_all_first(tmp_path, prepared_data):
    from helpers import REPO

    config = tmp_path / "slurm.yaml"
    config.write_text((REPO / "cluster_configs" / "slurm.yaml").read_text().replace("gpus_per_node: 0", "gpus_per_node: 8"))
    out = tmp_path / "sweep"
    models = "/lustre/me/run1/step_1000,/lustre/me/run1/step_2000"   # paths on the cluster, not here
    base = ["eval", "--server-type", "vllm", "--server-gpus", "8", "--model", models, "--benchmarks", "gsm8k:0",
            "--output-dir", str(out), "--dry-run"]
    result = run_cli(*base, "--cluster", str(config), env=cli_env(prepared_data))
    assert result.returncode == 0, result.stderr
    for step in ("step_1000", "step_2000"):
        assert f"# {out / step}/slurm/eval-0.sbatch" in result.stdout and f"/lustre/me/run1/{step}" in result.stdout
    assert not out.exists()
    # a problem every checkpoint shares is one line before anything starts, not one failure per checkpoint
    bad = run_cli(*base, "--cluster", "slurm", env=cli_env(prepared_data))
    assert bad.returncode == 2 and "needs GPUs" in single_error_line(bad.stderr)
