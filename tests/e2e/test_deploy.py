"""deploy/quotad.service: systemd accepts it, its command lines are ones quotad accepts, its stop
timeout covers quotad's bounded drain, and the daemon run as the unit runs it keeps the embedded
Redis in the state directory, reloads on ExecReload's signal and exits 0 on SIGTERM."""

from __future__ import annotations

import inspect
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from quotad import cli
from quotad.app import Daemon, _cancel_leftovers
from quotad.quota.embedded import EmbeddedRedis, aof_files
from quotad.radius.radsec import RadsecServer
from tests.conftest import free_port
from tests.e2e.test_daemon_process import _wait_ready
from tests.reliability.helpers import wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "quotad.service"
INSTALLED = "/opt/quotad/bin/quotad"


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as section → [(key, value)] (keys may repeat), comments and blank lines skipped."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"line {number} outside a section: {raw}"
        key, sep, value = line.partition("=")
        assert sep, f"line {number} is not key=value: {raw}"
        current.append((key.strip(), value.strip()))
    return sections


def settings(section: str) -> dict[str, str]:
    entries = parse_unit(UNIT.read_text())[section]
    keys = [k for k, _ in entries]
    assert len(keys) == len(set(keys)), f"a key repeats in [{section}]"
    return dict(entries)


def test_unit_has_the_operational_settings() -> None:
    assert set(parse_unit(UNIT.read_text())) == {"Unit", "Service", "Install"}
    service = settings("Service")
    expected = {
        "User": "quotad", "Group": "quotad",
        "StateDirectory": "quotad", "ConfigurationDirectory": "quotad", "WorkingDirectory": "/var/lib/quotad",
        "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes",
        "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "Restart": "on-failure", "LimitNOFILE": "65536",
        "KillSignal": "SIGTERM", "KillMode": "mixed", "TimeoutStopSec": "120",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # SIGHUP reloads (tests/e2e/test_reload.py)
    assert settings("Install") == {"WantedBy": "multi-user.target"}


def test_unit_needs_no_capability_for_the_default_ports() -> None:
    """CapabilityBoundingSet is empty: every port quotad binds by default is above 1024."""
    from quotad.config import Config

    config = Config()
    assert min(config.server.auth_port, config.server.acct_port, config.server.http_port, config.radsec.port) > 1024


def test_exec_start_is_accepted_by_quotad() -> None:
    service = settings("Service")
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == INSTALLED
    args = cli._parser().parse_args(argv[1:])
    assert (args.command, args.func, args.config) == ("serve", cli.cmd_serve, "/etc/quotad/quotad.toml")
    assert Path(args.config).parent == Path("/etc") / service["ConfigurationDirectory"]
    pre = shlex.split(service["ExecStartPre"])
    assert pre[0] == INSTALLED
    check = cli._parser().parse_args(pre[1:])
    assert (check.command, check.func, check.path) == ("check-config", cli.cmd_check_config, args.config)


def _default(func: object, name: str) -> float:
    value = inspect.signature(func).parameters[name].default  # type: ignore[arg-type]
    assert isinstance(value, (int, float))
    return float(value)


def test_stop_timeout_covers_the_drain() -> None:
    """Worst case of every bounded step of a stop, one after the other (app.Daemon.stop): the two UDP
    listeners, RadSec (drain, then 2 s for its connections), the CoA/Disconnect requests in flight,
    the HTTP runner, the leftover tasks, the embedded Redis's flush."""
    drain = _default(Daemon.stop, "drain_timeout")
    radsec = _default(RadsecServer.close, "drain_timeout") + 2.0
    http = _default(web.BaseRunner.__init__, "shutdown_timeout")
    worst = 2 * drain + radsec + drain + http + _default(_cancel_leftovers, "timeout") + \
        _default(EmbeddedRedis.stop, "timeout")
    assert worst == 94.0
    assert float(settings("Service")["TimeoutStopSec"]) > worst


def test_sysusers_creates_the_unit_user() -> None:
    lines = [ln for ln in (DEPLOY / "quotad.sysusers").read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 1
    kind, name, ident, *rest = shlex.split(lines[0])
    assert (kind, name, ident) == ("u", settings("Service")["User"], "-")
    assert rest[-1] == settings("Service")["WorkingDirectory"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    """systemd parses every line (it exits 0 even on unknown keys, so its output must be empty). The
    installed path is replaced by this environment's quotad, which systemd checks is executable.
    Warnings about the host's own units (e.g. an installed freeradius.service's deprecated keys,
    which systemd reports while loading the targets) are not about quotad's and are left out."""
    quotad = Path(sys.executable).parent / "quotad"
    assert quotad.is_file()
    unit = tmp_path / "quotad.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(quotad)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    host_units = ("/lib/systemd/", "/usr/lib/systemd/", "/etc/systemd/", "/run/systemd/")
    about_ours = [line for line in out.stderr.splitlines() if not line.startswith(host_units)]
    assert (out.returncode, out.stdout, about_ours) == (0, "", [])


def test_daemon_runs_as_the_unit_runs_it(tmp_path: Path) -> None:
    """ExecStart's command from WorkingDirectory with the shipped config's data_dir: the embedded
    Redis keeps its append-only files under the working (state) directory; ExecReload's command
    reloads (the process goes on); SIGTERM exits 0."""
    state = tmp_path / "state"
    state.mkdir()
    ports = {"auth": free_port(socket.SOCK_DGRAM), "acct": free_port(socket.SOCK_DGRAM), "http": free_port()}
    conf = tmp_path / "quotad.toml"
    conf.write_text(
        f'[server]\nauth_port = {ports["auth"]}\nacct_port = {ports["acct"]}\nhttp_port = {ports["http"]}\n'
    )
    conf.chmod(0o640)
    argv = shlex.split(settings("Service")["ExecStart"].replace("/etc/quotad/quotad.toml", str(conf)))
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "quotad.cli", *argv[1:]], cwd=state, stderr=err)
    try:
        _wait_ready(ports["http"], proc)
        reload = shlex.split(settings("Service")["ExecReload"].replace("$MAINPID", str(proc.pid)))
        assert subprocess.run(reload, timeout=10).returncode == 0
        wait_for(lambda: '"event": "config_reload"' in log.read_text(), 20, "the reload's log line")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=float(settings("Service")["TimeoutStopSec"])) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = log.read_text()
    assert '"outcome": "unchanged"' in events
    assert '"event": "stopped"' in events
    assert aof_files(state / "data"), "the append-only file(s) of the embedded Redis"
