"""docs/public-safety.md cannot drift from the API: it has an example request for every
public-safety route, and each one, sent in the document's order to a real daemon on a fresh Redis,
is accepted (the route's 2xx) with an answer that conforms to /v1/openapi.json."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from quotad import config as cfg
from quotad.api.publicsafety import PUBLIC_SAFETY_ROUTES
from quotad.api.route import Route
from quotad.app import Daemon
from quotad.config import Secret
from tests.integration.daemon_fixture import daemon_config, running_daemon
from tests.openapi_check import response_problems

DOC = Path(__file__).resolve().parents[2] / "docs" / "public-safety.md"
BLOCK = re.compile(r"^```http\n(.*?)^```", re.S | re.M)
TOKEN = "operator-token-0123456789abcdef"


def examples() -> list[tuple[str, str, Any]]:
    """(method, path, body or None) of every ```http block of the document, in its order."""
    out = []
    for block in BLOCK.findall(DOC.read_text()):
        first, _, rest = block.partition("\n")
        method, path = first.split()
        out.append((method, path, json.loads(rest) if rest.strip() else None))
    return out


def route_of(method: str, path: str) -> Route:
    for route in PUBLIC_SAFETY_ROUTES:
        pattern = re.sub(r"\{\w+\}", "[^/]+", route.path)
        if route.method == method and re.fullmatch(pattern, path):
            return route
    raise AssertionError(f"{method} {path}: no public-safety route")


def test_the_document_has_an_example_of_every_route_with_its_body() -> None:
    found = examples()
    assert len(found) >= len(PUBLIC_SAFETY_ROUTES)
    routes = [route_of(method, path) for method, path, _ in found]
    assert {(r.method, r.path) for r in routes} == {(r.method, r.path) for r in PUBLIC_SAFETY_ROUTES}
    for (method, path, body), route in zip(found, routes, strict=True):
        assert (body is None) == (route.body is None), f"{method} {path}"


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    """A daemon on a fresh Redis; its clock on 10 November 2026, 12:00 Japan time (not a month's last day)."""
    tokens = (cfg.TokenSettings(token=Secret(TOKEN), role="operator"),)
    async with running_daemon(replace(daemon_config(redis_url), api=cfg.ApiSettings(tokens=tokens))) as d:
        yield d


async def test_every_example_of_the_document_is_accepted_in_order(daemon: Daemon) -> None:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.get("/v1/openapi.json") as resp:
            doc = await resp.json()
        for method, path, body in examples():
            route = route_of(method, path)
            async with http.request(method, path, json=body) as resp:
                answer = await resp.json()
                assert resp.status == route.status, f"{method} {path}: {resp.status} {answer}"
            assert response_problems(answer, doc, route.path, method, route.status) == [], f"{method} {path}"
