"""Configuration reload on SIGHUP: which settings may change while quotad serves, and what a new
file changes.

A reload reads the file again and validates it as startup does (``config.load`` and
``app.validate``). A bad file changes nothing. Otherwise the settings in ``RELOADABLE`` take the
file's values; every other setting keeps its running value until a restart, and the reload names
the ones the file changed. Those settings are bound to sockets, the Redis connection or objects
built once at start (ports, workers, Redis, quotas, plans, profiles, APNs, RadSec, CoA timers).

The pure part (``changed``, ``needs_restart``, ``merge``, ``plan``) is tested without processes;
``Reloader`` adds reading the file, ``report`` the log line and the counter. The process that
receives SIGHUP decides (the supervisor with ``server.workers`` > 1, else the daemon itself);
applying the result is ``app.Daemon.apply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import pickle
import signal
import socket
import struct
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

from quotad import config as cfg
from quotad import log

# What a reload applies. A key is reloadable if it is one of these or lies under one
# ("clients[2].secret" under "clients"). Anything not listed needs a restart.
RELOADABLE: tuple[str, ...] = ("clients", "coa.port", "api.tokens", "server.log_level")

OK = "ok"  # the file's changes are all in effect
UNCHANGED = "unchanged"  # the file is the running configuration (a log rotator's SIGHUP)
RESTART_REQUIRED = "restart_required"  # reloadable changes applied; others wait for a restart
INVALID = "invalid"  # the file was refused: nothing changed
OUTCOMES: tuple[str, ...] = (OK, UNCHANGED, RESTART_REQUIRED, INVALID)


def changed(old: object, new: object, prefix: str = "") -> list[str]:
    """The keys whose values differ, as the file spells them: ``server.auth_port``,
    ``clients[1].secret``, ``plans.family_share.bundle_bytes``. A list of another length is named
    whole (``clients``), a table entry added or removed by its name (``plans.gold``)."""
    if is_dataclass(old) and is_dataclass(new) and type(old) is type(new):
        keys: list[str] = []
        for f in fields(old):
            keys += changed(getattr(old, f.name), getattr(new, f.name), f"{_dotted(prefix)}{f.name}")
        return keys
    if isinstance(old, dict) and isinstance(new, dict):
        keys = []
        for name in sorted(set(old) | set(new), key=str):
            key = f"{prefix}.{name}"
            if name not in old or name not in new:
                keys.append(key)
            else:
                keys += changed(old[name], new[name], key)
        return keys
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new) and \
            any(is_dataclass(item) for item in old):
        keys = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            keys += changed(a, b, f"{prefix}[{i}]")
        return keys
    return [] if old == new else [prefix]


def _dotted(prefix: str) -> str:
    return prefix + "." if prefix else ""


def reloadable(key: str) -> bool:
    """Whether a reload applies a change of this key."""
    return any(key == r or key.startswith((r + ".", r + "[")) for r in RELOADABLE)


def needs_restart(keys: list[str]) -> list[str]:
    """The keys among ``keys`` that a reload does not apply."""
    return [k for k in keys if not reloadable(k)]


def merge(running: cfg.Config, new: cfg.Config) -> cfg.Config:
    """``running`` with the reloadable settings of ``new``."""
    return replace(
        running,
        clients=new.clients,
        coa=replace(running.coa, port=new.coa.port),
        api=replace(running.api, tokens=new.api.tokens),
        server=replace(running.server, log_level=new.server.log_level),
    )


@dataclass(frozen=True, slots=True)
class Result:
    """What one reload decided. ``config``: the configuration in effect after it (the file's
    view: for ``invalid`` the running one). ``applied``: the reloadable keys that changed;
    ``restart``: the changed keys that wait for a restart; ``problems``: (key, reason) of a
    refused file."""

    outcome: str
    config: cfg.Config
    applied: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def applies(self) -> bool:
        """Whether the processes must take ``config`` (something reloadable changed)."""
        return bool(self.applied)


def plan(running: cfg.Config, new: cfg.Config) -> Result:
    """Compare a valid new configuration with the running one."""
    keys = changed(running, new)
    restart = needs_restart(keys)
    applied = [k for k in keys if reloadable(k)]
    if not keys:
        outcome = UNCHANGED
    elif restart:
        outcome = RESTART_REQUIRED
    else:
        outcome = OK
    return Result(outcome, merge(running, new), tuple(applied), tuple(restart))


def invalid(running: cfg.Config, problems: list[tuple[str, str]]) -> Result:
    return Result(INVALID, running, problems=tuple(problems))


class Reloader:
    """Reads the file again on each ``reload()``; remembers the configuration in effect.

    ``path`` None: the built-in defaults (``quotad serve`` without ``--config``), which never
    change. ``validate``: the checks beyond the file (``app.validate``: profile attributes, TLS
    files, the HTTP port's exposure); a ConfigError or a ProfileError refuses the file."""

    def __init__(self, path: str | Path | None, running: cfg.Config,
                 validate: Callable[[cfg.Config], None],
                 extend: Callable[[cfg.Config], cfg.Config] | None = None) -> None:
        """``extend``: what the process adds to every configuration it reads (`quotad demo`: its
        API tokens, which no file may hold)."""
        self.path = None if path is None else str(path)
        self.running = running
        self._validate = validate
        self._extend = extend
        # Not at the top: workers.py imports this module before PROMETHEUS_MULTIPROC_DIR is set,
        # and prometheus_client must not be imported before it.
        from quotad import metrics

        self._counters = {outcome: metrics.CONFIG_RELOADS.labels(outcome) for outcome in OUTCOMES}

    def reload(self) -> Result:
        """Load, validate and compare the file; the running configuration becomes the result's."""
        from quotad.aaa.profiles import ProfileError

        try:
            new = cfg.load(self.path) if self.path is not None else cfg.Config()
            if self._extend is not None:
                new = self._extend(new)
            self._validate(new)
        except cfg.ConfigError as exc:
            return invalid(self.running, exc.problems)
        except ProfileError as exc:
            return invalid(self.running, [(exc.key, str(exc).removeprefix(f"{exc.key}: "))])
        result = plan(self.running, new)
        self.running = result.config
        return result

    def report(self, result: Result, **extra: object) -> None:
        """One log line and one count per reload (after it is in effect). Keys and reasons only:
        a reason never holds a secret's value (config validation does not show them)."""
        self._counters[result.outcome].inc()
        config = result.config
        line = dict(
            outcome=result.outcome, path=self.path, applied=list(result.applied), restart_needed=list(result.restart),
            problems=[f"{key}: {reason}" for key, reason in result.problems],
            clients=len(config.clients), tokens=len(config.api.tokens), log_level=config.server.log_level, **extra,
        )
        logger = log.get("quotad.reload")
        if result.outcome in (OK, UNCHANGED):
            logger.info("config_reload", **line)
        else:
            logger.warning("config_reload", **line)


# The settings of Config that a reload applies, for the documentation test and the operator's eye.
def reloadable_settings() -> list[str]:
    """Every leaf setting of Config (``server.auth_port``, ``clients``...) that a reload applies."""
    return [key for key in _leaves(cfg.Config) if reloadable(key)]


def restart_settings() -> list[str]:
    """Every leaf setting of Config that needs a restart."""
    return [key for key in _leaves(cfg.Config) if not reloadable(key)]


def _leaves(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for f in fields(cls):
        hint = hints[f.name]
        key = f"{_dotted(prefix)}{f.name}"
        if isinstance(hint, type) and is_dataclass(hint):
            keys += _leaves(hint, key)
        else:
            keys.append(key)
    return keys


# --- the supervisor's channel to each worker (server.workers > 1) -----------------------------
# The supervisor decides a reload once and sends the configuration in effect to every worker over
# a socket pair made at fork: a frame is (sequence, length, pickled Config). A worker applies it
# and answers with the sequence. Both ends are the same program, forked: pickle is safe here.

_FRAME = struct.Struct(">II")
ACK = struct.Struct(">I")


def frame(sequence: int, config: cfg.Config) -> bytes:
    body = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(sequence, len(body)) + body


class Frames:
    """Splits what a worker reads from its channel into (sequence, Config) frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, cfg.Config]]:
        self._buffer += data
        frames: list[tuple[int, cfg.Config]] = []
        while len(self._buffer) >= _FRAME.size:
            sequence, length = _FRAME.unpack_from(self._buffer)
            end = _FRAME.size + length
            if len(self._buffer) < end:
                break
            config = pickle.loads(bytes(self._buffer[_FRAME.size:end]))
            del self._buffer[:end]
            frames.append((sequence, config))
        return frames


# --- a SIGHUP before the process is ready ------------------------------------------------------
# SIGHUP's default action ends the process. From the start of `serve`/`demo` until the reload
# handler is in place, a SIGHUP is only remembered; the handler, once installed, reloads for it.

_held = False


def hold_sighup() -> None:
    def remember(_signum: int, _frame: object) -> None:
        global _held
        _held = True

    signal.signal(signal.SIGHUP, remember)


def take_held() -> bool:
    """Whether a SIGHUP came while held (and forget it)."""
    global _held
    held, _held = _held, False
    return held


class Reloads:
    """Reloads of a running daemon (``apply``: app.Daemon.apply): from the file on SIGHUP (one
    process), or pushed by the supervisor (a worker). One that comes while the daemon starts is
    applied once it has started."""

    def __init__(self, apply: Callable[[cfg.Config], None], reloader: Reloader | None,
                 control: socket.socket | None) -> None:
        self.apply = apply
        self.reloader = reloader
        self.control = control
        self.frames = Frames()
        self.waiting: list[Callable[[], None]] = []
        self.running = False

    def started(self) -> None:
        self.running = True
        for action in self.waiting:
            action()
        self.waiting.clear()

    def _when_running(self, action: Callable[[], None]) -> None:
        if self.running:
            action()
        else:
            self.waiting.append(action)

    def on_sighup(self) -> None:
        self._when_running(self._reload)

    def _reload(self) -> None:
        assert self.reloader is not None
        result = self.reloader.reload()
        if result.applies:
            self.apply(result.config)
        self.reloader.report(result)

    def on_control(self) -> None:
        assert self.control is not None
        try:
            data = self.control.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the supervisor is gone
            asyncio.get_running_loop().remove_reader(self.control.fileno())
            return
        for sequence, config in self.frames.feed(data):
            self._when_running(functools.partial(self._apply_pushed, sequence, config))

    def _apply_pushed(self, sequence: int, config: cfg.Config) -> None:
        assert self.control is not None
        self.apply(config)
        with contextlib.suppress(OSError):  # the supervisor is gone or stopped waiting
            self.control.send(ACK.pack(sequence))
