"""API errors: one exception type carrying the HTTP status and the JSON error body (R-72)."""

from __future__ import annotations

from aiohttp import web

from quotad.quota.errors import Conflict, LimitExceeded, NotFound, QuotaError


class ApiError(Exception):
    """A refused API call: HTTP status, a stable code, the input at fault and the SPEC rule."""

    def __init__(
        self, status: int, code: str, message: str, *, field: str | None = None, rule: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The error as {"error": {code, field, rule, message}}."""
        body = {"error": {"code": self.code, "field": self.field, "rule": self.rule, "message": self.message}}
        return web.json_response(body, status=self.status, headers=self.headers)


def bad_request(code: str, message: str, field: str | None = None, rule: str | None = None) -> ApiError:
    """400: the request is malformed (JSON, shape, types, id syntax)."""
    return ApiError(400, code, message, field=field, rule=rule)


def unprocessable(code: str, message: str, field: str | None = None, rule: str | None = None) -> ApiError:
    """422: well-formed, but a value is not acceptable."""
    return ApiError(422, code, message, field=field, rule=rule)


def not_found(message: str, field: str | None = None, rule: str | None = None) -> ApiError:
    """404: no such contract or line (also what a customer sees for another contract's ids)."""
    return ApiError(404, "not_found", message, field=field, rule=rule)


def unauthorized(message: str, error: str | None = None) -> ApiError:
    """401 with the Bearer challenge (RFC 6750)."""
    challenge = 'Bearer realm="quotad"' + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def forbidden(message: str) -> ApiError:
    """403: the token is valid but its role may not do this."""
    return ApiError(403, "forbidden", message)


def from_quota_error(exc: QuotaError) -> ApiError:
    """Map a store refusal to its HTTP answer, keeping the field and rule the store named."""
    if isinstance(exc, NotFound):
        if exc.field == "plan":
            return unprocessable("unknown_plan", exc.message, exc.field, exc.rule)
        return not_found(exc.message, exc.field, exc.rule)
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", exc.message, field=exc.field, rule=exc.rule)
    if isinstance(exc, LimitExceeded):
        return unprocessable("limit_exceeded", exc.message, exc.field, exc.rule)
    return unprocessable("invalid_value", exc.message, exc.field, exc.rule)
