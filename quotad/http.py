"""The HTTP endpoint: /metrics (Prometheus), /healthz (process up), /readyz (Redis reachable,
scripts loaded). The operator API (a later issue) mounts its routes on the same application."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from quotad import metrics
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


async def start(
    host: str, port: int, store: QuotaStore, mount: Callable[[web.Application], None] | None = None
) -> tuple[web.AppRunner, int]:
    """Serve the health endpoints and, through ``mount``, the API routes; return runner and port."""
    app = build(store)
    if mount is not None:
        mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True)
    await site.start()
    server = site._server  # the bound port, when port 0 asked for a free one
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound
