"""Several worker processes on one port (SO_REUSEPORT): every request answered once, /metrics adds
all workers up, a dead worker is replaced, SIGTERM stops them all and the embedded Redis (R-73)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from quotad.quota.embedded import is_server_name
from quotad.radius import packet as rp
from tests.conftest import free_port
from tests.e2e.test_daemon_process import _wait_ready
from tests.integration.daemon_fixture import SECRET, access_request


def _workers(supervisor: int) -> list[int]:
    """The supervisor's quotad children (not the embedded Redis or Valkey server)."""
    out = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in out if not is_server_name(_comm(pid))]


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except FileNotFoundError:  # reaped between pgrep and here
        return "redis (gone)"


def _sample(body: str, key: str) -> float | None:
    line = [ln for ln in body.splitlines() if ln.startswith(key)]
    return float(line[0].rsplit(" ", 1)[1]) if line else None


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    ports = {"auth": free_port(socket.SOCK_DGRAM), "acct": free_port(socket.SOCK_DGRAM), "http": free_port()}
    conf = tmp_path / "quotad.toml"
    conf.write_text(
        f'[server]\nworkers = 2\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\n'
        f'http_port = {ports["http"]}\n[redis]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", "demo", "--config", str(conf)],
                            stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ports["http"], proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    # demo provisioned the lines (single worker); now serve them with two workers
    proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", "serve", "--config", str(conf)],
                            stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ports["http"], proc)
        time.sleep(0.5)  # both workers bound
        answered = 0
        for i in range(40):  # 40 source ports: the kernel spreads them over the workers
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                datagram, auth = access_request(identifier=i)
                sock.sendto(datagram, ("127.0.0.1", ports["auth"]))
                reply = rp.decode(sock.recv(4096))
                assert rp.verify_response_authenticator(reply, auth, SECRET)
                answered += reply.code == rp.ACCESS_ACCEPT
        assert answered == 40
        # one gateway socket, as most gateways send, its requests spread over both
        # workers by Identifier (the spread itself: tests/integration/test_reuseport.py). Here: a
        # retransmission keeps its Identifier, so it reaches the worker that answered it, which
        # resends its cached reply byte for byte and counts it, instead of processing it again.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            for i in range(64):
                datagram, auth = access_request(identifier=100 + i)
                sock.sendto(datagram, ("127.0.0.1", ports["auth"]))
                first = sock.recv(4096)
                assert rp.decode(first).code == rp.ACCESS_ACCEPT
                sock.sendto(datagram, ("127.0.0.1", ports["auth"]))
                assert sock.recv(4096) == first
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['http']}/metrics", timeout=2) as resp:
            body = resp.read().decode()
        assert _sample(body, 'quotad_radius_requests_total{kind="access",outcome="accept"}') == 104.0
        assert _sample(body, 'quotad_radius_duplicates_total{action="resent"}') == 64.0
        # a worker that dies is replaced
        workers = _workers(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (len(_workers(proc.pid)) < 2 or workers[0] in _workers(proc.pid)):
            time.sleep(0.1)
        assert len(_workers(proc.pid)) == 2 and workers[0] not in _workers(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
