"""Builds the daemon from a Config and runs it: Redis (embedded or given), store, handlers,
RADIUS listeners, the HTTP endpoint; clean shutdown on SIGTERM/SIGINT; configuration reload on
SIGHUP (quotad.reload says what a reload may change).

quotad's own code imports it only from the CLI and from each worker process (quotad.workers),
and only inside functions. The simulators import it to run a daemon in their own process: the
virtual-time scenario runner and the CPU probe use ``Daemon``, and ``quotad-sim provision`` uses
the settings helpers. Tests use it too.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from quotad import api, http, log, metrics, reload
from quotad.aaa.access import AccessHandler, Apn
from quotad.aaa.accounting import AccountingHandler
from quotad.aaa.profiles import EncodedProfile, encode_profiles
from quotad.aaa.publicsafety import PublicSafetyAaa
from quotad.aaa.sessions import SessionControl
from quotad.api.auth import Authenticator
from quotad.clock import Clock, SystemClock
from quotad.config import Config, ConfigError
from quotad.policy.plans import Plan, PlanCatalog
from quotad.publicsafety.store import PublicSafetyStore
from quotad.quota import resp
from quotad.quota.cluster import RedisCluster as ClusterClient
from quotad.quota.embedded import EmbeddedRedis
from quotad.quota.fastredis import FastRedis
from quotad.quota.model import QuotaSettings
from quotad.quota.store import QuotaStore
from quotad.radius import packet as rp
from quotad.radius.clients import Client, ClientTable
from quotad.radius.coa import DynamicAuthClient
from quotad.radius.dictionary import Dictionary
from quotad.radius.radsec import RadsecServer, server_context
from quotad.radius.replycache import ReplyCache
from quotad.radius.server import Limits, RadiusProtocol, listen
from quotad.sampler import PoolSampler
from quotad.speedtimer import SpeedTimer

_log = log.get("quotad.app")


def catalog_from(config: Config) -> PlanCatalog:
    return PlanCatalog(
        {
            name: Plan(name, p.max_lines, p.bundle_bytes, p.low_limit_3day_bytes)
            for name, p in config.plans.items()
        }
    )


def quota_settings_from(config: Config) -> QuotaSettings:
    q = config.quota
    return QuotaSettings(
        slice_bytes=q.slice_bytes,
        timezone=q.timezone,
        coupon_unit_bytes=q.coupon_unit_bytes,
        max_units_per_month=q.max_units_per_month,
        ip_range=q.ip_range,
        lease_seconds=q.lease_seconds,
        # Session records are kept as long as reports are accepted (ReportOutcome.TOO_OLD).
        session_ttl_seconds=q.max_report_age_seconds,
        stopped_ttl_seconds=q.max_report_age_seconds,
        max_report_rate_bps=q.max_report_rate_bps,
        max_report_slack_bytes=q.max_report_slack_bytes,
    )


def client_table_from(config: Config) -> ClientTable:
    return ClientTable([
        (c.address, Client(c.name, str(c.secret).encode(), c.coa_port or config.coa.port, str(c.coa_secret).encode()))
        for c in config.clients
    ])


def _redis_client(cfg: Config, url: str) -> Any:
    if cfg.redis.cluster:
        return ClusterClient.from_url(
            url, max_connections=max(cfg.redis.max_connections, 100),
            socket_timeout=cfg.redis.timeout, socket_connect_timeout=cfg.redis.timeout,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=cfg.redis.max_connections, timeout=cfg.redis.timeout,
        socket_timeout=cfg.redis.timeout, socket_connect_timeout=cfg.redis.timeout,
    )
    return aioredis.Redis(connection_pool=pool)


def _coa_secrets(clients: ClientTable) -> Callable[[str], tuple[bytes, int] | None]:
    def lookup(address: str) -> tuple[bytes, int] | None:
        client = clients.find(address)
        return None if client is None else (client.coa_secret or client.secret, client.coa_port)

    return lookup


def coa_client_from(config: Config, clients: ClientTable, now: Callable[[], float]) -> DynamicAuthClient:
    """The RFC 5176 client of the [coa] settings, sending from server.bind."""
    c = config.coa
    return DynamicAuthClient(
        _coa_secrets(clients), timeout=c.timeout, retries=c.retries, max_pending=c.max_pending,
        bind_host=config.server.bind, max_timeout=c.max_timeout, backoff=c.backoff, now=now,
    )


def profiles_from(config: Config) -> dict[str, EncodedProfile]:
    """Encode the speed profiles (raises ProfileError naming the bad key)."""
    return encode_profiles(config.profiles, Dictionary.load())


def validate(config: Config) -> None:
    """Checks that need more than the file itself (dictionary names in profile templates, the HTTP
    port's exposure and TLS files)."""
    profiles_from(config)
    host, key = http_bind(config)
    s = config.server
    http.check_exposure(host, bool(s.http_tls_cert), key)
    if s.http_tls_cert:
        http.tls_context(s.http_tls_cert, s.http_tls_key)
    if config.radsec.enabled:
        server_context(config.radsec)


def http_bind(config: Config) -> tuple[str, str]:
    """The HTTP port's address and the setting it comes from."""
    if config.server.http_bind:
        return config.server.http_bind, "server.http_bind"
    return config.server.bind, "server.bind"


@dataclass
class Daemon:
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    embedded: EmbeddedRedis | None = None
    store: QuotaStore | None = None
    redis: Any = None
    fast: FastRedis | None = None
    auth: RadiusProtocol | None = None
    acct: RadiusProtocol | None = None
    coa: DynamicAuthClient | None = None
    sessions: SessionControl | None = None
    auth_port: int = 0
    acct_port: int = 0
    http_port: int = 0
    radsec: RadsecServer | None = None
    radsec_port: int = 0
    _transports: list[asyncio.DatagramTransport] = field(default_factory=list)
    _http: web.AppRunner | None = None
    _authenticator: Authenticator | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    speed_timer: SpeedTimer | None = None
    # How often the speed timer checks whether a Japan midnight's walk is due (it also wakes at
    # each midnight). 0: it does not run by itself; virtual-time runs and tests call its tick.
    speed_timer_seconds: float = 15.0
    _sampler: asyncio.Future[None] | None = None
    _pool_sampler: asyncio.Future[None] | None = None
    _speed_timer: asyncio.Future[None] | None = None
    # The last Redis health check (start, then a PING every 5 s): Status-Server is answered only
    # while it is True, so that gateways fail over to another server while this one cannot serve.
    redis_ok: bool = True
    # The embedded Redis died and could not be started again: the daemon stops and exits 1.
    failed: bool = False
    _next_redis_check: float = 0.0

    async def start(self) -> None:
        """Start Redis (if embedded), the store, the listeners and HTTP."""
        cfg = self.config
        url = cfg.redis.url or self._start_embedded()
        self.redis = _redis_client(cfg, url)
        # The hot path pipelines over one connection (single Redis); a cluster goes through redis-py.
        self.fast = None if cfg.redis.cluster else FastRedis(url, cfg.redis.timeout)
        catalog = catalog_from(cfg)
        self.store = QuotaStore(self.redis, quota_settings_from(cfg), catalog, self.fast)
        await self.store.load_scripts()
        metrics.REDIS_UP.set(1)  # it just answered; the gauge sampler checks it from now on
        self.redis_ok = True
        profiles = profiles_from(cfg)
        clients = client_table_from(cfg)
        self.coa = coa_client_from(cfg, clients, self.clock.now)
        await self.coa.start()
        self.sessions = SessionControl(self.store, catalog, profiles, self.coa, self.clock.now)
        apns = [Apn.from_settings(a) for a in cfg.apns]
        speeds = self.sessions.speeds
        ps = PublicSafetyAaa(cfg.publicsafety, PublicSafetyStore(self.redis, cfg.quota.timezone), self.store, profiles,
                             self.clock.now, speeds)
        access = AccessHandler(apns, self.store, speeds, profiles, self.clock.now, ps)
        accounting = AccountingHandler(self.store, speeds, self.clock.now, ps)
        limits = Limits(cfg.server.max_inflight, cfg.server.rcvbuf_bytes)
        cache = ReplyCache(cfg.server.duplicate_window)
        self.auth = RadiusProtocol(rp.ACCESS_REQUEST, access.handle, clients, cache, limits, self.ready)
        self.acct = RadiusProtocol(rp.ACCOUNTING_REQUEST, accounting.handle, clients, cache, limits, self.ready)
        self._sampler = asyncio.ensure_future(self._sample_gauges())
        pools = PoolSampler(self.store, self.clock.now, cfg.server.sample_seconds, cfg.server.sample_limit)
        self._pool_sampler = asyncio.ensure_future(pools.run())
        self.speed_timer = SpeedTimer(self.store, self.sessions, self.clock.now, poll=self.speed_timer_seconds or 15.0)
        if self.speed_timer_seconds > 0:
            self._speed_timer = asyncio.ensure_future(self.speed_timer.run())
        self.auth_port = await self._listen("server.auth_port", cfg.server.auth_port, self.auth)
        self.acct_port = await self._listen("server.acct_port", cfg.server.acct_port, self.acct)
        # --- RadSec (RFC 6614): the same handlers behind a TLS listener -------------------------
        if cfg.radsec.enabled:
            self.radsec = RadsecServer(cfg.radsec, access.handle, accounting.handle, ready=self.ready)
            self.radsec_port = await self.radsec.start(cfg.server.bind, cfg.radsec.port)
            _log.info("radsec_started", port=self.radsec_port, clients=sorted(cfg.radsec.clients))
        # --- end RadSec -------------------------------------------------------------------------
        sessions, store = self.sessions, self.store

        def mount(app: web.Application) -> None:
            self._authenticator = api.setup(app, store, cfg, self.clock.now, sessions.on_line_change)

        host, key = http_bind(cfg)
        tls = http.tls_context(cfg.server.http_tls_cert, cfg.server.http_tls_key) if cfg.server.http_tls_cert else None
        self._http, self.http_port = await http.start(
            host, cfg.server.http_port, self.store, mount, tls=tls, bind_key=key
        )
        _log.info(
            "started", auth_port=self.auth_port, acct_port=self.acct_port, http_port=self.http_port,
            redis="embedded" if self.embedded else "external", codec=rp.IMPLEMENTATION,
            resp=resp.IMPLEMENTATION,
        )

    def ready(self) -> bool:
        """Whether this process can serve requests: Redis answered its last health check."""
        return self.redis_ok

    async def _sample_gauges(self, redis_check_seconds: float = 5.0) -> None:
        """Gauges sampled once a second rather than touched per packet (and valid with workers);
        quotad_redis_up and ``redis_ok`` from a PING every ``redis_check_seconds`` (the gauge also
        on each /readyz)."""
        loop = asyncio.get_running_loop()
        while True:
            inflight = sum(p.inflight for p in (self.auth, self.acct) if p is not None)
            metrics.RADIUS_INFLIGHT.set(inflight)
            if self.sessions is not None:
                metrics.SPEED_PUSH_PENDING.set(self.sessions.pending)
            if self.store is not None and loop.time() >= self._next_redis_check:
                self._next_redis_check = loop.time() + redis_check_seconds
                up = await self.store.ping()
                metrics.REDIS_UP.set(1 if up else 0)
                if up != self.redis_ok:
                    self.redis_ok = up
                    if up:
                        _log.info("redis_reachable", detail="Status-Server is answered again")
                    else:
                        _log.warning("redis_unreachable", detail="Status-Server goes unanswered until Redis answers")
            await asyncio.sleep(1.0)

    def _start_embedded(self) -> str:
        self.embedded = EmbeddedRedis(
            data_dir=Path(self.config.redis.data_dir).resolve(), appendfsync=self.config.redis.appendfsync
        )
        url = self.embedded.start()
        _log.info(
            "embedded_redis_started", data_dir=str(self.embedded.data_dir), binary=self.embedded.binary,
            appendfsync=self.embedded.appendfsync,
        )
        loop = asyncio.get_running_loop()
        self.embedded.watch(lambda event: loop.call_soon_threadsafe(self._embedded_event, event))
        return url

    def _embedded_event(self, event: str) -> None:
        """From the embedded Redis's watcher (quota/embedded.py), on the event loop: ``died``:
        not ready at once (Status-Server unanswered, /readyz 503) rather than at the next health
        check; ``restarted``: check now, so readiness returns within a second; ``failed``: it
        cannot be started again, so stop and exit 1 for the service manager to restart quotad."""
        if event == "died":
            self.redis_ok = False
            metrics.REDIS_UP.set(0)
        elif event == "restarted":
            self._next_redis_check = 0.0
        elif event == "failed":
            self.failed = True
            self.request_stop()

    async def _listen(self, key: str, port: int, protocol: RadiusProtocol) -> int:
        """Listen on a RADIUS port; a port that cannot be had stops the start, naming its setting
        (with one worker the port is this process's alone: a second quotad on it is refused, not
        handed part of the requests; radius.server.listen)."""
        server = self.config.server
        try:
            transport, bound = await listen(server.bind, port, protocol, server.workers)
        except OSError as exc:
            raise ConfigError([(key, f"cannot listen on {server.bind} port {port}: {exc.strerror or exc}")]) from exc
        self._transports.append(transport)
        return bound

    def apply(self, new: Config) -> None:
        """Take the settings of ``new`` that a reload may change (``reload.RELOADABLE``: clients and
        their secrets and CoA ports, API tokens, log level); every other setting keeps its running
        value. Called from the event loop, so it runs between two datagrams: a datagram is checked
        against the old table or the new one, and a request already verified keeps its Client,
        whose secret signs its reply. A CoA under way keeps the secret it was sent with."""
        merged = reload.merge(self.config, new)
        clients = client_table_from(merged)
        for proto in (self.auth, self.acct):
            if proto is not None:
                proto.clients = clients
        if self.coa is not None:
            self.coa.use_secrets(_coa_secrets(clients))
        if self._authenticator is not None:
            self._authenticator.update(merged.api.tokens)
        if merged.server.log_level != self.config.server.log_level:
            log.setup(merged.server.log_level)
        self.config = merged

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        await self._stopping.wait()

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop reading, answer what is in progress, close Redis, stop the embedded server."""
        for task in (self._sampler, self._pool_sampler, self._speed_timer):
            if task is not None:
                task.cancel()
        for proto in (self.auth, self.acct):
            if proto is not None:
                await proto.drain(drain_timeout)
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        if self.radsec is not None:  # RadSec (RFC 6614)
            await self.radsec.close(drain_timeout)
        if self.sessions is not None:
            await self.sessions.drain(drain_timeout)
        if self.coa is not None:
            await self.coa.close()
        if self._http is not None:
            await self._http.cleanup()
        if self._speed_timer is not None:  # a walk cut short releases its lock (bounded: 1 s)
            await asyncio.wait({self._speed_timer}, timeout=2.0)
        if self.fast is not None:
            await self.fast.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.embedded is not None:
            self.embedded.stop()
        _log.info("stopped")


async def run(
    config: Config, before_serving: list[object] | None = None, *,
    reloader: reload.Reloader | None = None, control: socket.socket | None = None,
) -> int:
    """Run until SIGTERM or SIGINT; the exit status (1: the embedded Redis could not be kept
    running). With ``reloader`` (one process: ``serve`` with one worker, ``demo``), SIGHUP
    reloads the file. With ``control`` (a worker), the supervisor sends the configuration of each
    reload over it."""
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    reloads = reload.Reloads(daemon.apply, reloader, control)
    if reloader is not None:
        loop.add_signal_handler(signal.SIGHUP, reloads.on_sighup)
        if reload.take_held():
            reloads.on_sighup()
    if control is not None:
        control.setblocking(False)
        loop.add_reader(control.fileno(), reloads.on_control)
    try:
        await daemon.start()
        reloads.started()
        for hook in before_serving or []:
            await hook(daemon)  # type: ignore[operator]
        settle_heap()
        await daemon.wait()
    finally:
        if control is not None:
            loop.remove_reader(control.fileno())
        await daemon.stop()
        await _cancel_leftovers()
    return 1 if daemon.failed else 0


def settle_heap() -> None:
    """Move everything built at start (modules, dictionaries, config, scripts: most of the heap)
    out of the cyclic garbage collector's reach. Without it every full collection scans them all
    again, a pause of up to ~200 ms measured under load; with it a full collection scans only what
    requests left behind. From then on each collection is timed (quotad_gc_pause_seconds)."""
    gc.collect()
    gc.freeze()
    metrics.time_gc_pauses()


async def _cancel_leftovers(timeout: float = 2.0) -> None:
    """Cancel tasks still running after stop (bounded): shutdown must never hang on one."""
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leftovers:
        task.cancel()
    if not leftovers:
        return
    _, pending = await asyncio.wait(leftovers, timeout=timeout)
    if pending:
        _log.warning("tasks_not_cancelled", tasks=[repr(t.get_coro()) for t in pending][:10])
