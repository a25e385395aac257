"""`quotad demo` prints API tokens a new user can use at once (issue 17): the real demo process,
the tokens read from its start-up banner, and the HTTP API called with them. The operator token
sees every contract; the customer token its own contract (demo-family) and 404 for any other.
The tokens are kept per data directory (the same after a restart) and accepted by nothing but
the demo: `quotad serve` on the same data directory refuses them, and no config file may hold one.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.test_daemon_process import _wait_ready

QUOTAD = [sys.executable, "-m", "quotad.cli"]
TOKEN = r"quotad-demo-[0-9a-f]{32}"


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def banner(self, timeout: float = 20.0) -> str:
        """The start-up output up to the banner's last line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if "Stop: Ctrl-C" in text:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"quotad demo exited: {text}")
            time.sleep(0.05)
        raise AssertionError("no banner: " + "".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=15) == 0


def start(command: str, conf: Path) -> Demo:
    proc = subprocess.Popen([*QUOTAD, command, "--config", str(conf)], stderr=subprocess.PIPE, text=True)
    demo = Demo(proc)
    threading.Thread(target=demo.read, daemon=True).start()
    return demo


def call(port: int, path: str, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def conf(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    http = free_port()
    path = tmp_path / "quotad.toml"
    path.write_text(
        f'[server]\nauth_port = {free_port(2)}\nacct_port = {free_port(2)}\nhttp_port = {http}\n'
        f'[redis]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    path.chmod(0o600)
    yield path, http


def tokens_of(banner: str) -> tuple[str, str]:
    operator = re.search(rf"^  operator: +({TOKEN})  \(kept in (\S+)\)$", banner, re.M)
    customer = re.search(rf"^  customer of demo-family: +({TOKEN})  \(kept in (\S+)\)$", banner, re.M)
    assert operator and customer, banner
    return operator.group(1), customer.group(1)


def test_the_printed_tokens_open_the_api(conf: tuple[Path, int]) -> None:
    path, http = conf
    demo = start("demo", path)
    try:
        banner = demo.banner()
        _wait_ready(http, demo.proc)
        operator, customer = tokens_of(banner)
        data = path.parent / "data"
        assert f"(kept in {data / 'demo-operator.token'})" in banner
        assert f"(kept in {data / 'demo-customer.token'})" in banner
        assert (f'curl -H "Authorization: Bearer $(cat {data / "demo-operator.token"})" '
                f"http://127.0.0.1:{http}/v1/contracts/demo-family") in banner
        # the log says where the tokens are, never what they are
        logged = [json.loads(ln) for ln in demo.lines if ln.startswith("{")]
        assert [e for e in logged if e["event"] == "demo_tokens"] == [{
            "operator_file": str(data / "demo-operator.token"), "customer_file": str(data / "demo-customer.token"),
            "customer_contract": "demo-family", "event": "demo_tokens", "level": "info",
            "timestamp": next(e["timestamp"] for e in logged if e["event"] == "demo_tokens"),
        }]
        assert not any(operator in ln or customer in ln for ln in demo.lines if ln.startswith("{"))
        for name, token in (("operator", operator), ("customer", customer)):
            kept = data / f"demo-{name}.token"
            assert kept.read_text() == token + "\n"
            assert kept.stat().st_mode & 0o777 == 0o600

        status, body = call(http, "/v1/contracts/demo-light", operator)
        assert (status, body["id"], body["plan"]) == (200, "demo-light", "light_start")
        status, body = call(http, "/v1/contracts/demo-family", customer)
        assert status == 200
        assert [ln["msisdn"] for ln in body["lines"]] == ["819000000001", "819000000002", "819000000003"]
        status, body = call(http, "/v1/lines/819000000002", customer)
        assert (status, body["contract_id"]) == (200, "demo-family")
        assert call(http, "/v1/contracts/demo-light", customer) == (404, {"error": {
            "code": "not_found", "field": "contract_id", "rule": "R-35", "message": "no contract demo-light"}})
        assert call(http, "/v1/lines/819000000011", customer) == (404, {"error": {
            "code": "not_found", "field": "msisdn", "rule": "R-35", "message": "no line with msisdn 819000000011"}})
        assert call(http, "/v1/contracts/demo-family", None)[0] == 401
    finally:
        demo.stop()

    # kept per data directory: the next start prints the same tokens
    again = start("demo", path)
    try:
        assert tokens_of(again.banner()) == (operator, customer)
    finally:
        again.stop()

    # `quotad serve` on the same data directory does not accept them
    serve = start("serve", path)
    try:
        _wait_ready(http, serve.proc)
        status, body = call(http, "/v1/contracts/demo-family", operator)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        assert call(http, "/v1/contracts/demo-family", customer)[0] == 401
    finally:
        serve.stop()


def test_a_config_file_may_not_hold_a_demo_token(tmp_path: Path) -> None:
    path = tmp_path / "quotad.toml"
    path.write_text('[[api.tokens]]\ntoken = "quotad-demo-0123456789abcdef0123456789abcdef"\nrole = "operator"\n')
    path.chmod(0o600)
    out = subprocess.run([*QUOTAD, "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr == ("config error: api.tokens[0].token: a quotad-demo-… token is made by `quotad demo` for "
                          "itself and accepted nowhere else: choose another token\n")
