"""Generation through a real forward proxy (tests/support/forward_proxy.py): http targets as absolute-URI
requests, https targets in a CONNECT tunnel (the test server serving TLS with a certificate made here),
proxy credentials, NO_PROXY, and the lower-case variables; every request is checked to have gone through it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, cli_env, openai_test_server, run_cli, single_error_line
from nemo_eval.processes import free_port

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy", "ALL_PROXY")


def _start_proxy(log: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/support/forward_proxy.py"), "--port", str(port),
                             "--log", str(log), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the proxy did not start")


def _env(prepared_data: Path, **proxy: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env(prepared_data).items() if k not in PROXY_VARS}
    return {**env, **proxy}


def _generate(env, url, output, items=6):
    return run_cli("generate", "++benchmark=gsm8k", f"++output_file={output}", f"++server.base_url={url}",
                   f"++max_samples={items}", env=env)


def test_http_through_the_proxy_with_credentials_and_no_proxy(prepared_data, tmp_path):
    log = tmp_path / "proxy.log"
    proxy, port = _start_proxy(log, "--user", "eval", "--password", "s3cret:/@")
    try:
        with openai_test_server() as url:
            # lower-case variables win over upper-case ones, as in curl and requests
            env = _env(prepared_data, http_proxy=f"http://eval:s3cret%3A%2F%40@127.0.0.1:{port}",
                       HTTP_PROXY="http://127.0.0.1:9")
            result = _generate(env, url, tmp_path / "out.jsonl")
            assert result.returncode == 0, result.stderr[-1500:]
            lines = log.read_text().splitlines()
            posts = [line for line in lines if line.startswith("POST ")]
            assert len(posts) == 6 and all(line.startswith(f"POST {url}/chat/completions") for line in posts)
            assert "GET " + url + "/models" in lines and not any(line.startswith("DENIED") for line in lines)
            # NO_PROXY names the server: nothing goes through the proxy
            log.write_text("")
            host = url.split("//")[1].split(":")[0]
            bypass = _generate({**env, "no_proxy": host}, url, tmp_path / "direct.jsonl")
            assert bypass.returncode == 0 and log.read_text() == ""
            # wrong credentials: the proxy's 407 is one clear error, not a traceback
            denied = _generate(_env(prepared_data, http_proxy=f"http://eval:wrong@127.0.0.1:{port}"), url,
                               tmp_path / "denied.jsonl")
            assert denied.returncode == 2 and "407" in single_error_line(denied.stderr)
    finally:
        proxy.terminate()
        proxy.wait()


def test_https_goes_through_a_connect_tunnel(prepared_data, tmp_path):
    if subprocess.run(["openssl", "version"], capture_output=True).returncode != 0:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                           str(cert), "-days", "1", "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    port = free_port()
    server = subprocess.Popen([sys.executable, str(REPO / "tests/support/openai_test_server.py"), "--port", str(port),
                               "--tls-cert", str(cert), "--tls-key", str(key)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "proxy.log"
    proxy, proxy_port = _start_proxy(log)
    try:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"https://localhost:{port}/v1"
        env = _env(prepared_data, HTTPS_PROXY=f"127.0.0.1:{proxy_port}", SSL_CERT_FILE=str(cert))
        result = _generate(env, url, tmp_path / "out.jsonl")
        assert result.returncode == 0, result.stderr[-1500:]
        tunnels = log.read_text().splitlines()
        assert tunnels and all(line == f"CONNECT localhost:{port}" for line in tunnels)   # the proxy saw no request
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 6
    finally:
        for proc in (proxy, server):
            proc.terminate()
            proc.wait()
