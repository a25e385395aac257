"""The HTTP endpoint: /metrics (Prometheus), /healthz (process up), /readyz (Redis reachable,
scripts loaded). The operator API mounts its routes on the same application.

The port carries bearer tokens and the admin API, so it is never served in clear text beyond the
host: on a non-loopback address it needs TLS (``server.http_tls_cert``/``http_tls_key``), or it
stays on loopback behind a TLS reverse proxy; otherwise quotad refuses to start.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from quotad import metrics
from quotad.config import ConfigError
from quotad.quota.store import QuotaStore

STORE_KEY = web.AppKey("store", QuotaStore)


async def _metrics(request: web.Request) -> web.Response:
    body = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    reachable = await store.ping()
    metrics.REDIS_UP.set(1 if reachable else 0)
    scripts = reachable and await store.scripts_loaded()
    ready = reachable and scripts
    body = {"status": "ready" if ready else "not ready", "redis": reachable, "scripts": scripts}
    return web.json_response(body, status=200 if ready else 503)


def build(store: QuotaStore) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[STORE_KEY] = store
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


def check_exposure(host: str, tls: bool, key: str = "server.bind") -> None:
    """ConfigError unless the HTTP port stays on loopback or is served over TLS."""
    if tls or ipaddress.ip_address(host).is_loopback:
        return
    raise ConfigError([(key, (
        f"{host} is not a loopback address and the HTTP port (admin API, bearer tokens, /metrics) has no TLS: "
        "set server.http_tls_cert and server.http_tls_key to serve HTTPS, or set server.http_bind = \"127.0.0.1\" "
        "and put a TLS-terminating reverse proxy (nginx, HAProxy, Envoy) in front of it"
    ))])


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The HTTPS server context (TLS 1.2 or later); ConfigError naming the key if it cannot load."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([("server.http_tls_cert", f"cannot load certificate {cert!r} with key {key!r}: {exc}")]) \
            from exc
    return context


async def start(
    host: str, port: int, store: QuotaStore, mount: Callable[[web.Application], None] | None = None,
    *, tls: ssl.SSLContext | None = None, bind_key: str = "server.bind",
) -> tuple[web.AppRunner, int]:
    """Serve the health endpoints and, through ``mount``, the API routes (HTTPS with ``tls``); return
    runner and port. Refuses (ConfigError) a non-loopback ``host`` without TLS."""
    check_exposure(host, tls is not None, bind_key)
    app = build(store)
    if mount is not None:
        mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True, ssl_context=tls)
    await site.start()
    server = site._server  # the bound port, when port 0 asked for a free one
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound
