"""The HTTP API under /v1 (SPEC §5): the route table, the per-request edge (auth, errors,
metrics) and setup(), which mounts it all on the daemon's aiohttp application.

The route table is the single source of both the router and the OpenAPI document.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError

from quotad import log
from quotad.api import identity, metrics, openapi, schemas
from quotad.api.auth import Authenticator, Principal, require_operator
from quotad.api.errors import ApiError, from_quota_error
from quotad.api.handlers import Api, LineChange
from quotad.api.publicsafety import PUBLIC_SAFETY_ROUTES
from quotad.api.route import Route
from quotad.config import Config
from quotad.quota.errors import QuotaError
from quotad.quota.store import QuotaStore

_log = log.get("quotad.api")
_PARAM = re.compile(r"\{(\w+)\}")


CORE_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/contracts", Api.create_contract, "Create a contract on a plan (§3, R-10)",
          operator_only=True, body=schemas.NEW_CONTRACT, status=201, response="Contract", conflicts=True),
    Route("GET", "/v1/contracts/{contract_id}", Api.get_contract, "The contract's pool and lines (R-35)",
          response="Contract"),
    Route("POST", "/v1/contracts/{contract_id}/lines", Api.add_line, "Add a line (§3, R-2)",
          operator_only=True, body=schemas.NEW_LINE, status=201, conflicts=True),
    Route("POST", "/v1/contracts/{contract_id}/charges", Api.charge, "Buy coupons of 100 MB (R-11, R-34)",
          body=schemas.CHARGE, status=201, response="Bucket"),
    Route("GET", "/v1/contracts/{contract_id}/charges", Api.list_charges,
          "Charge history of the last 3 months, bundles not listed (R-35)", response="ChargeHistory"),
    Route("GET", "/v1/lines/by-iccid/{iccid}", Api.get_line, "A line by its card's ICCID (R-35)"),
    Route("POST", "/v1/lines/by-iccid/{iccid}/suspend", Api.suspend, "Suspend a line by ICCID (R-30)",
          operator_only=True),
    Route("POST", "/v1/lines/by-iccid/{iccid}/resume", Api.resume, "Resume a line by ICCID (R-30)",
          operator_only=True, conflicts=True),
    Route("GET", "/v1/lines/{msisdn}", Api.get_line, "A line by phone number (R-35)"),
    Route("PUT", "/v1/lines/{msisdn}/coupon", Api.set_coupon, "Coupon switch ON/OFF (R-21, R-31)",
          body=schemas.COUPON),
    Route("POST", "/v1/lines/{msisdn}/suspend", Api.suspend, "Suspend a line (R-30)",
          operator_only=True),
    Route("POST", "/v1/lines/{msisdn}/resume", Api.resume, "Resume a line (R-30)",
          operator_only=True, conflicts=True),
    Route("POST", "/v1/lines/{msisdn}/cards", Api.add_card,
          "Register the line's new card: type change (R-32) or lost/broken replacement (R-33)",
          operator_only=True, body=schemas.NEW_CARD, status=201, response="Card", conflicts=True),
    Route("POST", "/v1/lines/{msisdn}/cards/{iccid}/activate", Api.activate_card,
          "Activate the line's new card; the old card is refused from now on (R-32, R-33)",
          operator_only=True, response="Card", conflicts=True),
    Route("GET", "/v1/lines/{msisdn}/usage", Api.usage,
          "Usage per Japan day for the 3 days before today, high and low speed apart (R-35), and "
          "today's running figures apart from them", response="Usage"),
)
# Feature modules (public safety, identity, ...) define their own tables of Route and are added here.
ROUTES: tuple[Route, ...] = CORE_ROUTES + PUBLIC_SAFETY_ROUTES + identity.IDENTITY_ROUTES
OPENAPI_PATH = "/v1/openapi.json"


def _endpoint(api: Api, auth: Authenticator, route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of a route: authenticate, authorize, run, map errors, count."""

    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        principal: Principal | None = None
        try:
            principal = auth.authenticate(request.headers.get("Authorization"))
            if route.operator_only:
                require_operator(principal)
            response = await route.handler(api, request, principal)
        except ApiError as exc:
            response = exc.response()
        except QuotaError as exc:
            response = from_quota_error(exc).response()
        except (RedisError, OSError) as exc:
            _log.error("api_store_unavailable", route=route.path, method=route.method, error=type(exc).__name__)
            response = ApiError(503, "unavailable", "the data store is unavailable; retry later").response()
        except Exception:
            _log.exception("api_internal_error", route=route.path, method=route.method)
            response = ApiError(500, "internal", "internal error").response()
        _finish(route, principal, response.status, time.perf_counter() - started)
        return response

    return handle


def _finish(route: Route, principal: Principal | None, status: int, seconds: float) -> None:
    metrics.observe(route.path, route.method, status, seconds)
    if route.method != "GET" or status >= 400:
        # The caller is named by role and token index, never by the token itself.
        _log.info("api_request", route=route.path, method=route.method, status=status,
                  who=principal.who if principal else None)


def setup(
    app: web.Application,
    store: QuotaStore,
    config: Config,
    now: Callable[[], float],
    on_line_change: LineChange | None = None,
) -> Authenticator:
    """Mount the /v1 API on app. on_line_change(ref, event) runs after a change that may alter a
    live session ("coupon", "suspend", "resume", "card", and "charge" once per line of the contract).
    Returns the token check, which a configuration reload updates."""
    api = Api(store, config, now, on_line_change)
    auth = Authenticator(config.api.tokens)
    for route in ROUTES:
        # Any segment matches, so an id with a bad character (even a brace) gets our 400, not a bare 404.
        pattern = _PARAM.sub(r"{\1:[^/]+}", route.path)
        app.router.add_route(route.method, pattern, _endpoint(api, auth, route))
    document = openapi.document(ROUTES, OPENAPI_PATH)

    async def serve_openapi(request: web.Request) -> web.Response:
        started = time.perf_counter()
        response = web.json_response(document)
        metrics.observe(OPENAPI_PATH, "GET", response.status, time.perf_counter() - started)
        return response

    app.router.add_route("GET", OPENAPI_PATH, serve_openapi)
    return auth
