"""The daemon as a user runs it: `quotad demo` as a process on the embedded Redis, attached with
FreeRADIUS's radclient (an independent peer) where installed; SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

QUOTAD = [sys.executable, "-m", "quotad.cli"]


def _wait_ready(http_port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as resp:
                if json.loads(resp.read())["redis"]:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("daemon not ready")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("demo")
    ports = {"auth": free_port(2), "acct": free_port(2), "http": free_port()}
    conf = tmp / "quotad.toml"
    conf.write_text(
        f'[server]\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\nhttp_port = {ports["http"]}\n'
        f'[redis]\ndata_dir = "{tmp / "data"}"\n'
    )
    proc = subprocess.Popen([*QUOTAD, "demo", "--config", str(conf)], stderr=subprocess.PIPE)
    _wait_ready(ports["http"], proc)
    yield {"proc": proc, "tmp": tmp, **ports}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _radclient(port: int, attrs: str, kind: str = "auth") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", kind, "testing123"],
        input=attrs, capture_output=True, text=True, timeout=20,
    )


needs_radclient = pytest.mark.skipif(shutil.which("radclient") is None, reason="radclient not installed")


@needs_radclient
def test_radclient_gets_accept_for_a_demo_line(demo: dict) -> None:
    """R-1/R-2 through FreeRADIUS's radclient: PAP for a demo line → Access-Accept."""
    out = _radclient(
        demo["auth"],
        "User-Name=mio@iij,User-Password=iij,Called-Station-Id=iijmio.jp,"
        "Calling-Station-Id=819000000001,Message-Authenticator=0x00",
    )
    assert "Access-Accept" in out.stdout, out.stdout + out.stderr
    assert "Session-Timeout = 86400" in out.stdout
    assert "Filter-Id = \"high-lte\"" in out.stdout


@needs_radclient
def test_radclient_gets_reject_for_a_wrong_password(demo: dict) -> None:
    out = _radclient(
        demo["auth"],
        "User-Name=mio@iij,User-Password=wrong,Called-Station-Id=iijmio.jp,"
        "Calling-Station-Id=819000000001,Message-Authenticator=0x00",
    )
    assert "Access-Reject" in out.stdout, out.stdout + out.stderr
    assert "Authentication failed" in out.stdout


@needs_radclient
def test_radclient_chap_and_accounting(demo: dict) -> None:
    """CHAP (radclient computes CHAP-Password from the cleartext) and an Accounting-Start."""
    out = _radclient(
        demo["auth"],
        "User-Name=mio@iij,CHAP-Password=iij,Called-Station-Id=iijmio.jp,"
        "Calling-Station-Id=819000000011,Message-Authenticator=0x00",
    )
    assert "Access-Accept" in out.stdout, out.stdout + out.stderr
    out = _radclient(
        demo["acct"],
        "Acct-Status-Type=Start,Acct-Session-Id=rc-1,Calling-Station-Id=819000000011,"
        "NAS-IP-Address=127.0.0.1",
        kind="acct",
    )
    assert "Accounting-Response" in out.stdout, out.stdout + out.stderr


def test_metrics_and_health(demo: dict) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{demo['http']}/healthz", timeout=2) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}
    with urllib.request.urlopen(f"http://127.0.0.1:{demo['http']}/metrics", timeout=2) as resp:
        body = resp.read().decode()
    assert "quotad_radius_requests_total" in body


def test_sigterm_stops_daemon_and_embedded_redis(demo: dict) -> None:
    """Clean shutdown: exit status 0, the embedded redis-server gone, its AOF on disk (R-71)."""
    proc = demo["proc"]
    assert isinstance(proc, subprocess.Popen)
    data = Path(str(demo["tmp"])) / "data"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert not (data / "redis.sock").exists() or not _socket_alive(data / "redis.sock")
    aof = list(data.rglob("*.aof*"))
    assert aof, "append-only file written"


def _socket_alive(path: Path) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
        return True
    except OSError:
        return False

