"""Security edges: the HTTP port (admin API, bearer tokens) never in clear text beyond loopback,
the config-permission warning, and secrets never in a log line or an error (R-72, R-74)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from quotad import cli
from quotad import config as cfg
from quotad.app import Daemon
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import daemon_config
from tests.reliability.certs import make_ca, make_leaf
from tests.reliability.helpers import QuotadProcess, udp_exchange


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`quotad check-config PATH`, run in this process (the same entry point, without the start-up
    cost of a new interpreter): exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["check-config", str(path)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(["quotad", "check-config", str(path)], code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize(
    ("server", "key"),
    [
        ('bind = "0.0.0.0"', "server.bind"),
        ('bind = "::"', "server.bind"),
        ('http_bind = "0.0.0.0"', "server.http_bind"),
        ('bind = "127.0.0.1"\nhttp_bind = "192.0.2.10"', "server.http_bind"),
    ],
)
def test_r72_http_port_beyond_loopback_without_tls_is_refused_naming_the_key(
    tmp_path: Path, server: str, key: str
) -> None:
    """check-config (and so serve) exits 2 naming the setting and telling both ways out."""
    path = tmp_path / "q.toml"
    path.write_text(f"[server]\n{server}\n")
    out = check_config(path)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("config error:")]
    assert len(lines) == 1 and lines[0].startswith(f"config error: {key}: "), out.stderr
    assert "server.http_tls_cert" in lines[0] and "reverse proxy" in lines[0]


@pytest.mark.parametrize("server", ['bind = "0.0.0.0"\nhttp_bind = "127.0.0.1"', 'http_bind = "::1"', ""])
def test_r72_http_port_on_loopback_is_accepted(tmp_path: Path, server: str) -> None:
    path = tmp_path / "q.toml"
    path.write_text(f"[server]\n{server}\n")
    out = check_config(path)
    assert (out.returncode, out.stdout.strip()) == (0, f"{path}: ok"), out.stderr


def test_r72_serve_refuses_to_start_exposed_without_tls(tmp_path: Path) -> None:
    """`quotad serve` itself: exit 2 before listening, the key named."""
    path = tmp_path / "q.toml"
    path.write_text('[server]\nhttp_bind = "0.0.0.0"\nauth_port = 0\nacct_port = 0\nhttp_port = 0\n'
                    f'[redis]\ndata_dir = "{tmp_path / "data"}"\n')
    out = subprocess.run([sys.executable, "-m", "quotad.cli", "serve", "--config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "config error: server.http_bind: 0.0.0.0 is not a loopback address" in out.stderr


@pytest.mark.parametrize("reuseport", [False, True])
def test_r72_serve_refuses_a_radius_port_another_process_holds(redis_url: str, tmp_path: Path, reuseport: bool) -> None:
    """One worker's RADIUS port is its own: a second quotad on it (or anything else) is refused at
    start, the setting named, even when the holder allows port sharing (SO_REUSEPORT, as several
    workers of one quotad do), instead of silently taking part of the holder's requests."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reuseport:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    path = tmp_path / "q.toml"
    path.write_text(f'[server]\nauth_port = 0\nacct_port = {port}\nhttp_port = 0\n[redis]\nurl = "{redis_url}"\n')
    try:
        out = subprocess.run([sys.executable, "-m", "quotad.cli", "serve", "--config", str(path)],
                             capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert out.returncode == 2, out.stderr
    assert (f"config error: server.acct_port: cannot listen on 127.0.0.1 port {port}: Address already in use"
            in out.stderr), out.stderr
    assert "Traceback" not in out.stderr


def test_r72_tls_files_half_set_or_unloadable_are_named(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"server": {"http_tls_cert": "/x.pem"}})
    assert [k for k, _ in info.value.problems] == ["server.http_tls_key"]
    path = tmp_path / "q.toml"
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("nothing here\n")
    path.write_text(f'[server]\nhttp_bind = "0.0.0.0"\nhttp_tls_cert = "{bogus}"\nhttp_tls_key = "{bogus}"\n')
    out = check_config(path)
    assert out.returncode == 2
    assert out.stderr.startswith("config error: server.http_tls_cert: cannot load certificate"), out.stderr


async def test_r72_http_port_serves_https_beyond_loopback_with_tls(redis_url: str, tmp_path: Path) -> None:
    """With a certificate the port may face the network: HTTPS answers, clear HTTP does not.
    Without one, the daemon refuses to start."""
    ca = make_ca(tmp_path, "ops-ca")
    leaf = make_leaf(tmp_path, ca, "quotad.example", server=True)
    base = daemon_config(redis_url)
    exposed = replace(base, server=replace(base.server, http_bind="0.0.0.0"))
    with pytest.raises(cfg.ConfigError) as info:
        await Daemon(exposed).start()
    assert [k for k, _ in info.value.problems] == ["server.http_bind"]

    config = replace(exposed, server=replace(exposed.server, http_tls_cert=str(leaf.cert), http_tls_key=str(leaf.key)))
    daemon = Daemon(config)
    await daemon.start()
    try:
        context = ssl.create_default_context(cafile=str(ca.cert))

        def fetch(scheme: str) -> bytes:
            url = f"{scheme}://127.0.0.1:{daemon.http_port}/healthz"
            with urllib.request.urlopen(url, timeout=3, context=context if scheme == "https" else None) as resp:
                return bytes(resp.read())

        assert json.loads(await asyncio.to_thread(fetch, "https")) == {"status": "ok"}
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            await asyncio.to_thread(fetch, "http")
    finally:
        await daemon.stop()


# --- config file permissions -------------------------------------------------------------------

SECRETS_TOML = """
[[clients]]
name = "pgw"
address = "10.0.0.0/8"
secret = "s3cret-of-the-pgw"
[[api.tokens]]
token = "tok-abcdefghijklmnop"
role = "operator"
"""


@pytest.mark.parametrize(
    ("mode", "body", "warned"),
    [(0o644, SECRETS_TOML, True), (0o604, SECRETS_TOML, True), (0o600, SECRETS_TOML, False),
     (0o640, SECRETS_TOML, False), (0o644, '[server]\nlog_level = "info"\n', False)],
)
def test_r72_world_readable_config_with_secrets_is_warned_about(
    tmp_path: Path, mode: int, body: str, warned: bool
) -> None:
    """A file other users can read, holding secrets: a warning naming the keys (never the values)
    and the fix; no warning for 600/640 or for a file without secrets."""
    path = tmp_path / "q.toml"
    path.write_text(body)
    path.chmod(mode)
    out = check_config(path)
    assert out.returncode == 0, out.stderr
    if not warned:
        assert out.stderr == ""
        return
    assert out.stderr == (
        f"warning: {path} holds secrets (clients[0].secret, api.tokens[0].token) and is readable by every user "
        f"(mode {mode:o}): chmod 600 {path} (or 640 with a group quotad runs in)\n"
    )
    assert "s3cret-of-the-pgw" not in out.stderr and "tok-abcdefghijklmnop" not in out.stderr


def test_r72_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "q.toml"
    path.write_text('[[clients]]\nname = "pgw"\naddress = "10.0.0.0/8"\nsecret = 987654321\n')
    path.chmod(0o600)
    out = check_config(path)
    assert out.returncode == 2
    assert "987654321" not in out.stderr
    assert "clients[0].secret: must be a string, got a value of another type (not shown: a secret)" in out.stderr


# --- secrets never logged ------------------------------------------------------------------------


def test_r74_secrets_never_logged_even_at_debug(tmp_path: Path) -> None:
    """quotad serve at log level debug, driven through accepts, rejects, drops and API calls with
    good and bad tokens: neither the client secret, the APN password, a password a SIM tried, nor
    a token appears in anything quotad writes."""
    secret, apn_password, token, tried = "cl13nt-s3cret-xyz", "apn-pa55word-xyz", "tok-0123456789abcdef", "wr0ng-try"
    extra = (f'[[clients]]\nname = "lo"\naddress = "127.0.0.1/32"\nsecret = "{secret}"\n'
             f'[[apns]]\nname = "iijmio.jp"\nuser = "mio@iij"\npassword = "{apn_password}"\n'
             f'[[api.tokens]]\ntoken = "{token}"\nrole = "operator"\n')
    quotad = QuotadProcess(tmp_path, extra=extra)
    quotad.config.write_text(quotad.config.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    quotad.start()
    try:
        key = secret.encode()
        for password in (apn_password.encode(), tried.encode()):
            authenticator = os.urandom(16)
            attrs = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.pap_attr(password, key, authenticator)
                     + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp") + rp.attr(rp.CALLING_STATION_ID, b"819000000001"))
            datagram, _ = rp.encode_request(rp.ACCESS_REQUEST, 1, key, attrs, authenticator=authenticator)
            assert udp_exchange(quotad.auth, datagram, timeout=3) is not None  # Reject: no such SIM here
            wrong_key, _ = rp.encode_request(rp.ACCESS_REQUEST, 2, b"not-the-secret", attrs,
                                             authenticator=authenticator)
            assert udp_exchange(quotad.auth, wrong_key, timeout=0.3) is None
        for bearer in (token, token + "-forged", ""):
            request = urllib.request.Request(f"http://127.0.0.1:{quotad.http}/v1/contracts/none",
                                             headers={"Authorization": f"Bearer {bearer}"})
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(request, timeout=3)
            assert info.value.code in (401, 404)
            assert token not in info.value.read().decode()
    finally:
        assert quotad.kill(signal.SIGTERM) == 0
    log = quotad.log.read_text()
    assert '"event": "radius_drop"' in log or "radius_drop" in log  # the drops were logged...
    assert "access_reject" in log
    for value in (secret, apn_password, token, tried):
        assert value not in log, value  # ...but no secret with them
