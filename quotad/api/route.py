"""One API operation of the /v1 table (the router and the OpenAPI document are both built from it).

Feature modules define tuples of Route with their own handlers; quotad.api.routes adds them to ROUTES.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from quotad.api import schemas

if TYPE_CHECKING:
    from quotad.api.auth import Principal
    from quotad.api.handlers import Api

Handler = Callable[["Api", web.Request, "Principal"], Awaitable[web.Response]]


@dataclass(slots=True, frozen=True)
class Route:
    """One API operation: where, who may call it, what it takes and answers (for OpenAPI)."""

    method: str
    path: str
    handler: Handler
    summary: str
    operator_only: bool = False
    body: schemas.Body | None = None
    status: int = 200
    response: str = "Line"
    conflicts: bool = False  # may answer 409
    # JSON Schema of `response` when the feature module defines it (else openapi.COMPONENTS has it).
    response_schema: dict[str, Any] | None = None
