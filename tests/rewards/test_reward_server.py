"""``nemo-eval reward-server`` as a real process on 127.0.0.1: batches in, scores out, bad requests refused."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from helpers import run_cli, single_error_line
from nemo_eval.processes import free_port, poll_until_healthy


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + "/score", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nemo_eval", "reward-server", "--port", str(port), "--timeout", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert poll_until_healthy(url + "/health", 60, proc.poll, interval=0.1) is None, proc.stderr.read()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_batches_of_each_reward(server):
    with urllib.request.urlopen(server + "/health", timeout=10) as answer:
        assert json.loads(answer.read())["isolation"] in ("bwrap", "process")
    status, body = post(server, {"reward": "math", "completions": ["so \\boxed{4}", [{"role": "assistant", "content": "5"}]],
                                 "columns": {"answer": ["4", "4"]}})
    assert (status, body) == (200, {"scores": [1.0, 0.0], "ungraded": 0})
    status, body = post(server, {"reward": "math", "completions": ["\\boxed{1}", "x"], "columns": {"answer": ["1", None]}})
    assert (status, body) == (200, {"scores": [1.0, None], "ungraded": 0})
    status, body = post(server, {"reward": "format", "completions": ["\\boxed{1}", "1"]})
    assert body["scores"] == [1.0, 0.0]
    status, body = post(server, {"reward": {"math": 1.0, "format": 0.5}, "completions": ["\\boxed{4}", "4"],
                                 "columns": {"expected_answer": ["4", "4"]}})
    assert body["scores"] == [1.5, 1.0]
    status, body = post(server, {"reward": "code", "completions": ["def f(x):\n    return x"],
                                 "columns": {"test_list": [["assert f(1) == 1", "assert f(2) == 1"]]}})
    assert body["scores"] == [0.5]
    status, body = post(server, {"reward": "compute_score", "completions": ["#### 3", "\\boxed{2}"],
                                 "columns": {"data_source": ["openai/gsm8k", "math"], "ground_truth": ["3", "3"]}})
    assert body["scores"] == [1.0, 0.0]
    status, body = post(server, {"reward": "math", "completions": ["\\boxed{x^{31}-7x^{17}+5x^{3}-x+1 > 0}"],
                                 "columns": {"answer": ["x > 1"]}})
    assert (status, body) == (200, {"scores": [0.0], "ungraded": 1})   # timed out: 0, and counted


def test_bad_requests_are_400_with_the_reason(server):
    assert post(server, b"not json")[0] == 400
    status, body = post(server, {"reward": "nope", "completions": []})
    assert status == 400 and "unknown reward 'nope'" in body["error"]
    status, body = post(server, {"reward": "math", "completions": ["1"], "columns": {"question": ["q"]}})
    assert status == 400 and "pass one of answer, expected_answer, solution" in body["error"]
    # the server still answers afterwards
    assert post(server, {"completions": ["\\boxed{1}"], "columns": {"answer": ["1"]}})[1]["scores"] == [1.0]


def test_a_port_in_use_is_one_line_error():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("reward-server", "--port", str(taken.getsockname()[1]), timeout=60)
    assert result.returncode == 2 and "pick another --port" in single_error_line(result.stderr)
