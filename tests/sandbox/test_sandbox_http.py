"""The service's HTTP front under abuse, in both modes: malformed requests get a JSON 400, half-open
and slow clients never stall it, /health answers while every jail is busy, and a full queue gets a
clear 503 that the client rides out."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from nemo_eval.sandbox import SandboxClient
from sandbox_support import sandbox_service

DEEP = b'{"generated_code": "1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize("body,message", [
    (b"not json", "JSON object"),
    (b"[1, 2]", "JSON object"),
    (DEEP, "nested too deeply"),
    (b"\xff\xfe{}", "JSON object"),
    (b'{"language": "python"}', "generated_code"),
    (b'{"generated_code": 5}', "generated_code"),
    (b'{"generated_code": "1", "language": "cobol"}', "language"),
    (b'{"generated_code": "1", "language": ["python"]}', "language"),
    (b'{"generated_code": "1", "language": {"a": 1}}', "language"),
    (b'{"generated_code": "1", "timeout": -1}', "timeout"),
    (b'{"generated_code": "1", "timeout": "3"}', "timeout"),
    (b'{"generated_code": "1", "timeout": true}', "timeout"),
    (b'{"generated_code": "1", "timeout": 100000}', "timeout"),
    (b'{"generated_code": "1", "std_input": 5}', "std_input"),
    (b'{"generated_code": "print(\\"\\ud800\\")"}', "lone surrogate"),
    (b'{"generated_code": "1", "std_input": "\\udfff"}', "lone surrogate"),
    (b'{"generated_code": "' + b"x" * 1_000_001 + b'"}', "longer than"),
])
def test_malformed_requests_get_400_with_a_json_error(sandbox_mode_url, body, message):
    _, sandbox_url = sandbox_mode_url
    response = requests.post(sandbox_url + "/execute", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and message in response.json()["error"], response.text[:300]
    assert requests.get(sandbox_url + "/health", timeout=10).json()["status"] == "ok"


def raw(url: str, data: bytes) -> tuple[int, dict]:
    """Send raw bytes; return the status code and the JSON body of the answer."""
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    while head.split()[1].startswith(b"1"):  # an interim answer (100 Continue): the real one follows
        head, _, body = body.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("data,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"POST /execute HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST /execute HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST /execute HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /execute HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413),
    (b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
    (b"GET /execute HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
])
def test_malformed_http_gets_a_json_error(sandbox_mode_url, data, status):
    _, sandbox_url = sandbox_mode_url
    code, body = raw(sandbox_url, data)
    assert code == status and body["error"]


def test_chunked_and_100_continue_requests_work(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    payload = json.dumps({"generated_code": "print(7)"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    code, body = raw(sandbox_url, b"POST /execute HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                  + chunked)
    assert code == 200 and body["stdout"] == "7\n"
    code, body = raw(sandbox_url, b"POST /execute HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n"
                                  b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
    assert code == 200 and body["stdout"] == "7\n"


def test_half_open_and_slow_clients_do_not_stall_it(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    host, port = sandbox_url.rsplit("/", 1)[1].split(":")
    stalled = []
    try:
        for i in range(50):
            sock = socket.create_connection((host, int(port)), timeout=10)
            if i % 3 == 0:
                sock.sendall(b"POST /execute HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"generated")  # body never ends
            elif i % 3 == 1:
                sock.sendall(b"GET /hea")  # request line never ends
            stalled.append(sock)  # (the rest connect and say nothing)
        assert requests.get(sandbox_url + "/health", timeout=5).json()["status"] == "ok"  # the old one hung 40 s
        assert SandboxClient(sandbox_url).execute("print(1)")["stdout"] == "1\n"
    finally:
        for sock in stalled:
            sock.close()


def test_health_answers_while_every_jail_is_busy_and_requests_queue(sandbox_mode_url):
    _, sandbox_url = sandbox_mode_url
    client = SandboxClient(sandbox_url, max_concurrency=40)
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(client.execute_many, [{"code": "import time\ntime.sleep(1)\nprint('slept')", "timeout": 30}
                                                 for _ in range(40)])
        for _ in range(50):  # until the load is queued up behind the busy jails
            health = requests.get(sandbox_url + "/health", timeout=5).json()
            assert health["status"] == "ok", health
            if health["busy"] == health["workers"] and health["queued"] > 0:
                break
            time.sleep(0.2)
        assert health["queued"] > 0, health
        assert [r["stdout"] for r in load.result()] == ["slept\n"] * 40


@pytest.mark.bwrap
def test_a_full_queue_answers_503_with_retry_after_and_the_client_waits_its_turn():
    with sandbox_service("bwrap", "--workers", "1", "--max-queue", "1") as (_, url):
        slow = {"generated_code": "import time\ntime.sleep(2)\nprint('done')", "timeout": 10}
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: requests.post(url + "/execute", json=slow, timeout=30), range(3)))
        busy = [a for a in answers if a.status_code == 503]
        assert busy and all("busy" in a.json()["error"] and a.headers["Retry-After"] for a in busy)
        assert all(a.json()["stdout"] == "done\n" for a in answers if a.status_code == 200)
        results = SandboxClient(url, max_concurrency=4).execute_many([{"code": "print(1)"} for _ in range(6)])
        assert [r["stdout"] for r in results] == ["1\n"] * 6  # 503s were waited out, none surfaced
