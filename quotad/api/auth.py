"""Bearer-token access (R-30 … R-36): operators may do everything, a customer only its own contract.

Tokens are compared in constant time against every configured token (no early exit), and never
leave this module: a caller is known by its role and the token's index ("operator#0").
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from quotad.api.errors import forbidden, unauthorized
from quotad.config import TokenSettings

OPERATOR = "operator"
CUSTOMER = "customer"


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling: role, the contract a customer is bound to, and a loggable name."""

    role: str
    contract: str
    who: str

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def may_see(self, contract_id: str) -> bool:
        """Operators see every contract, a customer only its own."""
        return self.is_operator or hmac.compare_digest(self.contract.encode(), contract_id.encode())


class Authenticator:
    """Resolves an Authorization header to a Principal, or raises a 401 ApiError."""

    def __init__(self, tokens: tuple[TokenSettings, ...]) -> None:
        self.update(tokens)

    def update(self, tokens: tuple[TokenSettings, ...]) -> None:
        """Take a new token list (a configuration reload). One assignment: a request is checked
        against the old list or the new one, never a mix; a request already authenticated keeps
        its Principal."""
        self._tokens = [
            (str(t.token).encode(), Principal(t.role, t.contract, f"{t.role}#{i}"))
            for i, t in enumerate(tokens) if t.token
        ]

    def authenticate(self, header: str | None) -> Principal:
        """The caller of a request bearing this Authorization header."""
        if not header:
            raise unauthorized("an Authorization: Bearer token is required")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_request")
        given = presented.strip().encode()
        found: Principal | None = None
        for token, principal in self._tokens:
            if hmac.compare_digest(token, given) and found is None:
                found = principal
        if found is None:
            raise unauthorized("the token is not valid", "invalid_token")
        return found


def require_operator(principal: Principal) -> None:
    """403 for a customer on an operator-only route."""
    if not principal.is_operator:
        raise forbidden("this operation is for operators only")
