"""``nemo-eval eval`` on a real single-node Slurm (``.ci/start-slurm.sh``): sbatch jobs with srun steps
for sandbox and client, a dependent summarize job, ``--wait`` outcomes; the pyxis/GPU command lines of
configurations that cannot run here, checked in dry runs; cluster-config validation."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli_env, openai_test_server, run_cli, single_error_line


@pytest.fixture(scope="session")
def slurm_up() -> None:
    """A running Slurm whose node takes jobs (waits out a node still completing the jobs of an earlier test)."""
    import time

    deadline = time.monotonic() + 60
    while True:
        probe = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True) if shutil.which("sinfo") else None
        states = set(probe.stdout.split()) if probe is not None and probe.returncode == 0 else set()
        if {"idle", "mix", "alloc"} & states:
            return
        if not states & {"comp", "completing", "mix-", "idle*"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    message = f"Slurm tests need a running Slurm with an idle node (bash .ci/start-slurm.sh); sinfo: {sorted(states)}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _cluster(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(f"executor: slurm\npython: {sys.executable}\nslurm:\n  time: '00:20:00'\n  job_name_prefix: ne-test\n"
                    + extra)
    return path


def test_slurm_eval_end_to_end_with_wait(prepared_data, sandbox_url, slurm_up, tmp_path):
    out = tmp_path / "results"
    answers = tmp_path / "answers.jsonl"
    answers.write_text((prepared_data / "gsm8k" / "test.jsonl").read_text())
    with openai_test_server("--answers-jsonl", str(answers)) as url:
        result = run_cli("eval", "--cluster", str(_cluster(tmp_path)), "--server_address", url, "--model", "test-model",
                         "--benchmarks", "gsm8k:2", "--output_dir", str(out), "--num_jobs", "2", "--wait",
                         "++max_samples=8", env=cli_env(prepared_data), timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout
    assert sorted(p.name for p in (out / "slurm").glob("*.sbatch")) == ["eval-0.sbatch", "eval-1.sbatch", "summarize.sbatch"]
    assert "srun --overlap" in (out / "slurm" / "eval-0.sbatch").read_text()
    metrics = json.loads((out / "metrics.json").read_text())["gsm8k"]
    lines = [json.loads(line) for line in (out / "gsm8k" / "output-greedy.jsonl").read_text().splitlines()]
    right = sum(f"\\boxed{{{line['expected_answer']}}}" in line["generation"] for line in lines)
    assert metrics["greedy"]["num_entries"] == 8 and metrics["greedy"]["accuracy"] == round(100 * right / 8, 2)
    assert "pass@2" in metrics and "greedy" in result.stdout


def test_a_failing_slurm_job_makes_the_launcher_fail(prepared_data, sandbox_url, slurm_up, tmp_path):
    out = tmp_path / "results"
    result = run_cli("eval", "--cluster", str(_cluster(tmp_path)), "--server_address", "http://127.0.0.1:9/v1",
                     "--model", "m", "--benchmarks", "gsm8k:0", "--output_dir", str(out), "--wait",
                     "++max_samples=2", "++server.max_retries=0", env=cli_env(prepared_data), timeout=900)
    assert result.returncode == 1
    assert "(eval-0) ended FAILED; log: " in result.stderr and "(summarize) ended CANCELLED" in result.stderr
    assert not (out / "metrics.json").exists()


def test_dry_run_shows_pyxis_and_multi_node_gpu_server_lines(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    config = _cluster(tmp_path, f"  gpus_per_node: 8\n  partition: batch\n  account: research\n"
                                f"containers:\n  vllm: vllm/vllm-openai:v0.6.3\n  nemo_eval: registry/nemo-eval:1\n"
                                f"mounts: ['{models}:/models']\nenv_vars:\n  HF_HOME: /models/hf\n")
    result = run_cli("eval", "--cluster", str(config), "--server_type", "vllm", "--model", "/models/llama",
                     "--server_gpus", "8", "--server_nodes", "2", "--benchmarks", "math-500:4",
                     "--output_dir", str(tmp_path / "r"), "--num_jobs", "2", "--dry_run")
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=8" in script
    assert "#SBATCH --partition=batch" in script and "#SBATCH --account=research" in script
    assert "export HF_HOME=/models/hf" in script
    assert (f"srun --overlap --nodes=2 --ntasks=2 --container-image=vllm/vllm-openai:v0.6.3 "
            f"--container-mounts={models}:/models python3 -m vllm.entrypoints.openai.api_server --model /models/llama") in script
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2" in script
    assert "--container-image=registry/nemo-eval:1" in script and "python3 -m nemo_eval.pipeline.worker" in script
    assert "--dependency" not in script and "dry run: nothing written, nothing submitted" in script
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra,args,message", [
    ("", ["--server_type", "vllm", "--server_gpus", "8"], "slurm.gpus_per_node: 0"),
    ("mounts: ['/nonexistent/models:/models']\n", [], "mount source /nonexistent/models does not exist"),
    ("ssh_tunnel:\n  host: nohost.invalid\n  job_dir: /tmp/x\n", [], "cannot reach the ssh host nohost.invalid"),
    ("partitions: x\n", [], "unknown key(s) partitions"),
    ("slurm:\n  gpus_per_nod: 2\n", [], "unknown key(s) gpus_per_nod"),
    ("slurm:\n  time: 1:00:00\n", [], "slurm.time must be a quoted string"),
    ("env_vars:\n  FLAG: yes\n", [], "env_vars.FLAG must be a string"),
    ("containers: [x]\n", [], "containers must be a mapping"),
    ("", ["--server_address", "http://x/v1", "--output_dir", "/tmp/a b"], "characters sbatch scripts cannot carry"),
])
def test_cluster_config_problems_are_one_line_errors(tmp_path, extra, args, message):
    config = tmp_path / "c.yaml"
    config.write_text("executor: slurm\n" + extra)
    result = run_cli("eval", "--cluster", str(config), "--benchmarks", "gsm8k:0", "--output_dir", str(tmp_path / "r"),
                     *(args or ["--server_address", "http://x/v1"]))
    assert result.returncode == 2 and message in single_error_line(result.stderr)


def _listening(port: int, proc: subprocess.Popen, seconds: float = 15) -> bool:
    """Whether ``proc`` accepts connections on 127.0.0.1:``port`` within ``seconds`` (False once it has exited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture
def ssh_login(tmp_path_factory):
    """A real sshd on 127.0.0.1 (own host key and config) that lets this user in with a fresh key."""
    if not shutil.which("sshd") or os.geteuid() != 0:
        message = "the ssh_tunnel test needs openssh-server and root (apt-get install openssh-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from helpers import free_port

    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user.pub").read_text())
    os.chmod(folder, 0o700)
    Path("/run/sshd").mkdir(exist_ok=True)
    for _ in range(3):   # the free port can be taken by another run before sshd binds it: then try another
        port = free_port()
        config = folder / "sshd_config"
        config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\nPermitRootLogin yes\n"
                          f"PasswordAuthentication no\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
                          f"StrictModes no\nPidFile {folder / 'sshd.pid'}\nUsePAM no\n")
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
        if _listening(port, proc):
            break
        proc.kill()
        proc.wait(10)
    else:
        pytest.fail("sshd did not start listening on 127.0.0.1 (three free ports tried)")
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} " + (folder / "host.pub").read_text())
    yield {"port": port, "identity": folder / "user", "known_hosts": known}
    proc.terminate()
    proc.wait(10)


def test_submit_over_ssh_tunnel(prepared_data, sandbox_url, slurm_up, ssh_login, tmp_path):
    out = tmp_path / "remote-results"
    job_dir = tmp_path / "jobs"
    config = _cluster(tmp_path, f"ssh_tunnel:\n  host: 127.0.0.1\n  user: root\n  port: {ssh_login['port']}\n"
                                f"  job_dir: {job_dir}\n  identity_file: {ssh_login['identity']}\n"
                                f"  ssh_args: ['-o', 'UserKnownHostsFile={ssh_login['known_hosts']}']\n")
    answers = tmp_path / "answers.jsonl"
    answers.write_text((prepared_data / "gsm8k" / "test.jsonl").read_text())
    env = cli_env(prepared_data)
    with openai_test_server("--answers-jsonl", str(answers)) as url:
        result = run_cli("eval", "--cluster", str(config), "--server_address", url, "--model", "test-model",
                         "--benchmarks", "gsm8k:0", "--output_dir", str(out), "--wait", "++max_samples=4",
                         env=env, timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout
    assert (job_dir / "code" / "nemo_eval" / "pipeline" / "worker.py").is_file()         # the code was copied
    assert (job_dir / "code" / "nemo_eval" / "_bundled" / "prompts").is_dir()
    assert f"export PYTHONPATH={job_dir}/code" in (out / "slurm" / "eval-0.sbatch").read_text()
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["greedy"]["num_entries"] == 4


def test_sigterm_while_waiting_cancels_the_jobs(prepared_data, slurm_up, tmp_path):
    import signal
    import time

    with openai_test_server("--delay", "30") as url:
        proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "eval", "--cluster", str(_cluster(tmp_path)),
                                 "--server_address", url, "--model", "test-model", "--benchmarks", "gsm8k:0",
                                 "--output_dir", str(tmp_path / "r"), "--wait", "++max_samples=2"],
                                env=cli_env(prepared_data), stderr=subprocess.PIPE, text=True)
        line = proc.stderr.readline()
        assert "submitted eval jobs" in line, line
        ids = [token.strip(",") for token in line.split() if token.strip(",").isdigit()]
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
        assert "cancelled the Slurm jobs" in proc.stderr.read()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = subprocess.run(["scontrol", "show", "job", "-o", *ids], capture_output=True, text=True).stdout
        if states.count("JobState=CANCELLED") == len(ids):
            break
        time.sleep(1)
    assert states.count("JobState=CANCELLED") == len(ids), states


def _oci_bundle(folder: Path, repo: Path) -> Path:
    """An OCI bundle from the sandbox's Debian base image, sharing the host network, with the checkout
    (and its virtualenv) and /tmp bind-mounted."""
    from nemo_eval.sandbox.docker_mode import BASE_IMAGE

    rootfs = folder / "rootfs"
    rootfs.mkdir(parents=True)
    created = subprocess.run(["docker", "create", BASE_IMAGE, "true"], capture_output=True, text=True, check=True)
    container = created.stdout.strip()
    try:
        exported = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=exported.stdout, check=True)
        exported.wait()
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    subprocess.run(["runc", "spec"], cwd=folder, check=True)
    spec = json.loads((folder / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = False
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    for path in (str(repo), "/tmp"):
        spec["mounts"].append({"destination": path, "type": "bind", "source": path, "options": ["rbind", "rw"]})
    (folder / "config.json").write_text(json.dumps(spec))
    return folder


def test_slurm_oci_container_runtime_for_real(prepared_data, sandbox_url, slurm_up, tmp_path):
    """container_runtime: oci: the client and summarize steps run inside an OCI bundle via srun --container."""
    from conftest import _require
    from helpers import REPO

    if not shutil.which("runc") or not Path("/etc/slurm/oci.conf").is_file():
        message = "the OCI test needs runc and /etc/slurm/oci.conf (bash .ci/start-slurm.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    _require("docker")  # the bundle's root filesystem comes from the sandbox base image
    bundle = _oci_bundle(tmp_path / "bundle", REPO)
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    config = _cluster(tmp_path, f"container_runtime: oci\ncontainers:\n  nemo_eval: {bundle}\n"
                                f"env_vars:\n  PYTHONPATH: '{REPO}:{site}'\n")
    out = tmp_path / "results"
    answers = tmp_path / "answers.jsonl"
    answers.write_text((prepared_data / "gsm8k" / "test.jsonl").read_text())
    with openai_test_server("--answers-jsonl", str(answers)) as url:
        result = run_cli("eval", "--cluster", str(config), "--server_address", url, "--model", "test-model",
                         "--benchmarks", "gsm8k:0", "--output_dir", str(out), "--wait", "++max_samples=4",
                         env=cli_env(prepared_data), timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"--container={bundle}" in (out / "slurm" / "eval-0.sbatch").read_text()
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["greedy"]["num_entries"] == 4


def test_a_dead_sandbox_step_fails_the_job_at_once_and_a_second_submission_is_refused(prepared_data, slurm_up, tmp_path):
    """The sandbox step dies (docker mode with no reachable engine): the job fails at once instead of
    its client waiting out the startup timeout; submitting again while it is queued is refused."""
    import time

    config = _cluster(tmp_path, "sandbox_mode: docker\n")
    out = tmp_path / "r"
    env = {**cli_env(prepared_data), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}   # exported into the job
    args = ["eval", "--cluster", str(config), "--server_address", "http://127.0.0.1:9/v1", "--model", "m",
            "--benchmarks", "gsm8k:0", "--output_dir", str(out), "++max_samples=2"]
    first = run_cli(*args, env=env, timeout=300)
    assert first.returncode == 0, first.stderr                       # submitted, not waited for
    ids = json.loads((out / "slurm" / "submitted.json").read_text())
    deadline = time.monotonic() + 120
    text = ""
    while time.monotonic() < deadline and "the sandbox step ended" not in text:
        time.sleep(1)
        text = "".join(p.read_text() for p in (out / "logs").glob("slurm-eval-0-*.out"))
    subprocess.run(["scancel", *ids["eval"], ids["summarize"]], capture_output=True)
    assert "the sandbox step ended" in text and "sandbox-eval-0.log" in text


def test_submitting_again_while_earlier_jobs_are_queued_is_refused(prepared_data, slurm_up, tmp_path):
    config = _cluster(tmp_path, "  extra_sbatch_args: ['--hold']\n")           # the jobs stay pending
    out = tmp_path / "r"
    args = ["eval", "--cluster", str(config), "--server_address", "http://127.0.0.1:9/v1", "--model", "m",
            "--benchmarks", "gsm8k:0", "--output_dir", str(out), "++max_samples=2"]
    first = run_cli(*args, env=cli_env(prepared_data))
    assert first.returncode == 0, first.stderr
    ids = json.loads((out / "slurm" / "submitted.json").read_text())
    try:
        again = run_cli(*args, env=cli_env(prepared_data))
        line = single_error_line(again.stderr)
        assert again.returncode == 2 and f"is in use by Slurm jobs {' '.join(ids['eval'] + [ids['summarize']])}" in line
        assert "submitted from host" in line and "scancel" in line
        with openai_test_server() as url:                                             # a local run too
            local = [a for a in args if a not in (str(config), "--cluster")]
            local[local.index("http://127.0.0.1:9/v1")] = url
            local = run_cli(*local, env=cli_env(prepared_data))
        assert local.returncode == 2 and "is in use by Slurm jobs" in single_error_line(local.stderr)
    finally:
        subprocess.run(["scancel", *ids["eval"], ids["summarize"]], capture_output=True)
