"""SIGHUP reloads the configuration of the running daemon, as an operator adds a gateway: `quotad
serve` as a process (one worker, and two behind the supervisor) and `quotad demo`, real Redis, real
UDP. A new gateway is answered after the reload and not before, a steady stream from the old one
runs through the reload with every request answered, a bad file is refused and the old
configuration kept, API tokens change, settings that need a restart are named and wait for it, and
a request in progress keeps the secret it was verified with."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from quotad.radius import packet as rp
from tests.conftest import free_port
from tests.reliability.gateway import provision
from tests.reliability.helpers import QuotadProcess, sample, scrape, wait_for

CONTRACT = "reload-c1"
LINE = "819300000001"
SECRET_A = b"testing123"  # the gateway on 127.0.0.1, configured from the start
SECRET_B = b"pgw2-secret-7f3a9c"  # the gateway on 127.0.0.2, added by a reload
TOKEN_1 = "operator-token-first-0001"
TOKEN_2 = "operator-token-added-0002"


def config_text(q: QuotadProcess, redis_url: str, workers: int, clients: list[tuple[str, str, str]],
                tokens: list[str], server: str = "", redis: str = "") -> str:
    text = (f'[server]\nworkers = {workers}\nauth_port = {q.auth}\nacct_port = {q.acct}\nhttp_port = {q.http}\n'
            f'{server}\n[redis]\nurl = "{redis_url}"\n{redis}\n')
    for name, address, secret in clients:
        text += f'[[clients]]\nname = "{name}"\naddress = "{address}"\nsecret = "{secret}"\n'
    for token in tokens:
        text += f'[[api.tokens]]\ntoken = "{token}"\nrole = "operator"\n'
    return text


A = ("pgw1", "127.0.0.1/32", SECRET_A.decode())
B = ("pgw2", "127.0.0.2/32", SECRET_B.decode())


def access_request(secret: bytes, identifier: int, nas_ip: str, msisdn: str = LINE) -> tuple[bytes, bytes]:
    """A PAP Access-Request with Message-Authenticator, built with quotad's codec."""
    authenticator = os.urandom(16)
    attrs = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.pap_attr(b"iij", secret, authenticator)
             + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp") + rp.attr(rp.CALLING_STATION_ID, msisdn.encode())
             + rp.attr(rp.NAS_IP_ADDRESS, socket.inet_aton(nas_ip)))
    return rp.encode_request(rp.ACCESS_REQUEST, identifier, secret, attrs, authenticator=authenticator,
                             message_authenticator=True)


def ask(port: int, source: str, secret: bytes, identifier: int, msisdn: str = LINE) -> rp.Packet | None:
    """One Access-Request from ``source``; its reply, verified with ``secret`` (None: no reply)."""
    datagram, auth = access_request(secret, identifier, source, msisdn)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(10)
        sock.sendto(datagram, ("127.0.0.1", port))
        try:
            reply = rp.decode(sock.recv(4096))
        except TimeoutError:
            return None
    assert reply.identifier == identifier
    assert rp.verify_response_authenticator(reply, auth, secret)
    assert rp.verify_message_authenticator(reply, secret, auth) is True
    return reply


def dropped(q: QuotadProcess, source: str, secret: bytes, reason: str) -> None:
    """A request from ``source`` is dropped: counted under ``reason``, and nothing comes back."""
    before = sample(scrape(q.http), "quotad_radius_dropped_total", reason=reason)
    datagram, _ = access_request(secret, 99, source)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(datagram, ("127.0.0.1", q.auth))
        wait_for(lambda: sample(scrape(q.http), "quotad_radius_dropped_total", reason=reason) == before + 1,
                 20, f"a drop counted as {reason}")
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # a drop is never answered
            sock.recv(4096)


def api_status(q: QuotadProcess, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{q.http}/v1/contracts/{CONTRACT}",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def events(q: QuotadProcess, name: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in q.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == name]


def hup(q: QuotadProcess, text: str | None = None) -> dict[str, object]:
    """Write the file (if given), send SIGHUP to the main process, wait for its config_reload line."""
    assert q.proc is not None
    if text is not None:
        q.config.write_text(text)
    seen = len(events(q, "config_reload"))
    q.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(events(q, "config_reload")) == seen + 1, 30, "the config_reload line")
    assert q.proc.poll() is None
    return events(q, "config_reload")[-1]


class Stream(threading.Thread):
    """A gateway's steady stream: one Access-Request after another from one socket, each waiting
    for its answer (no retransmission, so a request quotad dropped is a request lost)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.sent = self.accepted = self.lost = 0

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(10)
            while not self.stop.is_set():
                identifier = self.sent % 256
                datagram, auth = access_request(SECRET_A, identifier, "127.0.0.1")
                sock.sendto(datagram, ("127.0.0.1", self.port))
                self.sent += 1
                try:
                    reply = rp.decode(sock.recv(4096))
                except TimeoutError:
                    self.lost += 1
                    continue
                if (reply.identifier == identifier and reply.code == rp.ACCESS_ACCEPT
                        and rp.verify_response_authenticator(reply, auth, SECRET_A)):
                    self.accepted += 1


def udp_sockets(port: int) -> int:
    """How many UDP sockets are bound to ``port`` (one per worker, SO_REUSEPORT)."""
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(f":{port:04X}"))


@pytest.fixture
def quotad(tmp_path: Path, redis_url: str) -> Iterator[QuotadProcess]:
    asyncio.run(provision(redis_url, CONTRACT, [LINE]))
    q = QuotadProcess(tmp_path, redis_url=redis_url)
    yield q
    if q.proc is not None and q.proc.poll() is None:
        q.kill()


def start(q: QuotadProcess, workers: int) -> None:
    q.start()
    wait_for(lambda: len(events(q, "started")) == workers, 30, "every worker started")


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_adds_a_gateway_and_a_token_without_losing_a_request(
    quotad: QuotadProcess, redis_url: str, workers: int,
) -> None:
    q = quotad
    first = config_text(q, redis_url, workers, [A], [TOKEN_1])
    q.config.write_text(first)
    start(q, workers)

    # A log rotator's SIGHUP: the file is what runs; quotad goes on (it used to end at once).
    line = hup(q)
    assert {k: line[k] for k in ("outcome", "applied", "restart_needed", "problems", "clients", "tokens")} == {
        "outcome": "unchanged", "applied": [], "restart_needed": [], "problems": [], "clients": 1, "tokens": 1}
    assert ask(q.auth, "127.0.0.1", SECRET_A, 1) is not None

    # Before the reload the second gateway is unknown, its token refused.
    dropped(q, "127.0.0.2", SECRET_B, "unknown_client")
    assert (api_status(q, TOKEN_1), api_status(q, TOKEN_2)) == (200, 401)

    # The reload adds both while the first gateway's stream runs through it.
    stream = Stream(q.auth)
    stream.start()
    try:
        wait_for(lambda: stream.accepted >= 30, 30, "the stream to run")
        line = hup(q, config_text(q, redis_url, workers, [A, B], [TOKEN_1, TOKEN_2]))
        at_reload = stream.accepted
        wait_for(lambda: stream.accepted >= at_reload + 30, 30, "the stream to run on after the reload")
    finally:
        stream.stop.set()
        stream.join(30)
    assert {k: line[k] for k in ("outcome", "applied", "restart_needed", "problems", "clients", "tokens")} == {
        "outcome": "ok", "applied": ["clients", "api.tokens"], "restart_needed": [], "problems": [],
        "clients": 2, "tokens": 2}
    if workers > 1:
        assert line["workers"] == workers  # every worker confirmed before the line was written
    assert (stream.lost, stream.accepted) == (0, stream.sent)

    # The new gateway is answered, by every worker (requests go to worker Identifier mod workers),
    # each reply signed with its own secret; the old one still is.
    for identifier in range(8):
        reply = ask(q.auth, "127.0.0.2", SECRET_B, identifier)
        assert reply is not None and reply.code == rp.ACCESS_ACCEPT
    reply = ask(q.auth, "127.0.0.1", SECRET_A, 9)
    assert reply is not None and reply.code == rp.ACCESS_ACCEPT
    assert (api_status(q, TOKEN_1), api_status(q, TOKEN_2)) == (200, 200)

    # A bad file (an empty secret) is refused with its key and reason; everything stays as it was.
    line = hup(q, config_text(q, redis_url, workers, [A, ("pgw2", "127.0.0.2/32", "")], [TOKEN_2]))
    assert {k: line[k] for k in ("outcome", "applied", "restart_needed", "problems", "clients", "tokens")} == {
        "outcome": "invalid", "applied": [], "restart_needed": [],
        "problems": ["clients[1].secret: must not be empty"], "clients": 2, "tokens": 2}
    assert line["level"] == "warning"
    reply = ask(q.auth, "127.0.0.2", SECRET_B, 10)
    assert reply is not None and reply.code == rp.ACCESS_ACCEPT
    assert (api_status(q, TOKEN_1), api_status(q, TOKEN_2)) == (200, 200)

    # A setting that needs a restart is named and waits; the reloadable part is applied: the
    # first token is withdrawn, and at log level warning a drop is counted but no longer logged.
    line = hup(q, config_text(q, redis_url, workers, [A, B], [TOKEN_2],
                              server='max_inflight = 100\nlog_level = "warning"'))
    assert {k: line[k] for k in ("outcome", "applied", "restart_needed", "problems", "clients", "tokens")} == {
        "outcome": "restart_required", "applied": ["server.log_level", "api.tokens"],
        "restart_needed": ["server.max_inflight"], "problems": [], "clients": 2, "tokens": 1}
    assert (api_status(q, TOKEN_1), api_status(q, TOKEN_2)) == (401, 200)
    logged = len(events(q, "radius_drop"))
    dropped(q, "127.0.0.3", SECRET_B, "unknown_client")
    assert len(events(q, "radius_drop")) == logged

    samples = scrape(q.http)
    assert {o: sample(samples, "quotad_config_reloads_total", outcome=o)
            for o in ("ok", "unchanged", "restart_required", "invalid")} == {
        "ok": 1.0, "unchanged": 1.0, "restart_required": 1.0, "invalid": 1.0}
    assert sample(samples, "quotad_radius_dropped_total", reason="unknown_client") == 2.0
    log = q.log.read_text()
    for secret in (SECRET_B.decode(), TOKEN_1, TOKEN_2):
        assert secret not in log

    if workers > 1:  # a worker that replaces a dead one starts with the reloaded configuration
        victim = q.children()[0]
        os.kill(victim, signal.SIGKILL)
        # At log level warning now, it logs no `started`: wait for its socket on the port instead.
        wait_for(lambda: victim not in q.children() and len(q.children()) == workers
                 and udp_sockets(q.auth) == workers, 30, "the replacement worker")
        for identifier in range(8):
            reply = ask(q.auth, "127.0.0.2", SECRET_B, 20 + identifier)
            assert reply is not None and reply.code == rp.ACCESS_ACCEPT
        assert api_status(q, TOKEN_1) == 401
    assert q.kill(signal.SIGTERM) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_request_in_progress_keeps_the_secret_it_was_verified_with(
    quotad: QuotadProcess, redis_url: str, workers: int,
) -> None:
    """The gateway's secret changes while one of its requests waits for Redis: the reply is
    signed with the secret the request was verified with; the next request needs the new one."""
    q = quotad
    q.config.write_text(config_text(q, redis_url, workers, [A], [], redis="timeout = 60.0"))
    start(q, workers)
    pause = sync_redis.Redis.from_url(redis_url)
    datagram, auth = access_request(SECRET_A, 42, "127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(30)
        try:
            pause.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # scripts wait; the request with them
            sock.sendto(datagram, ("127.0.0.1", q.auth))
            wait_for(lambda: sample(scrape(q.http), "quotad_radius_inflight_requests") == 1, 20,
                     "the request in progress")
            line = hup(q, config_text(q, redis_url, workers, [("pgw1", "127.0.0.1/32", "testing456")], [],
                                      redis="timeout = 60.0"))
            assert (line["outcome"], line["applied"]) == ("ok", ["clients[0].secret"])
        finally:
            pause.execute_command("CLIENT", "UNPAUSE")
            pause.close()
        reply = rp.decode(sock.recv(4096))
    assert reply.code == rp.ACCESS_ACCEPT
    assert rp.verify_response_authenticator(reply, auth, SECRET_A)
    assert not rp.verify_response_authenticator(reply, auth, b"testing456")
    dropped(q, "127.0.0.1", SECRET_A, "bad_authenticator")
    reply = ask(q.auth, "127.0.0.1", b"testing456", 43)
    assert reply is not None and reply.code == rp.ACCESS_ACCEPT
    assert q.kill(signal.SIGTERM) == 0


def test_demo_reloads_on_sighup(tmp_path: Path) -> None:
    """`quotad demo` (one process, embedded Redis, demo lines) takes a new gateway on SIGHUP."""
    ports = {"auth": free_port(socket.SOCK_DGRAM), "acct": free_port(socket.SOCK_DGRAM), "http": free_port()}
    conf = tmp_path / "quotad.toml"
    base = (f'[server]\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\nhttp_port = {ports["http"]}\n'
            f'[redis]\ndata_dir = "{tmp_path / "data"}"\n')
    conf.write_text(base)
    conf.chmod(0o600)
    log = tmp_path / "demo.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", "demo", "--config", str(conf)], stderr=err)
    try:
        wait_for(lambda: "quotad demo is running" in log.read_text(), 30, "the demo banner")
        conf.write_text(base + '[[clients]]\nname = "localhost"\naddress = "127.0.0.1/32"\nsecret = "testing123"\n'
                        f'[[clients]]\nname = "pgw2"\naddress = "127.0.0.2/32"\nsecret = "{SECRET_B.decode()}"\n')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: '"config_reload"' in log.read_text(), 30, "the config_reload line")
        line = next(json.loads(ln) for ln in log.read_text().splitlines() if '"config_reload"' in ln)
        assert (line["outcome"], line["applied"], line["clients"]) == ("ok", ["clients"], 2)
        for identifier in range(2):
            reply = ask(ports["auth"], "127.0.0.2", SECRET_B, identifier, msisdn="819000000001")
            assert reply is not None and reply.code == rp.ACCESS_ACCEPT
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
