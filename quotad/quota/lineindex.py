"""The card and number index (R-2): which line an IMSI, MSISDN or ICCID belongs to.

The request path looks lines up here (cached for ``index_cache_seconds``); provisioning claims
index keys here before it writes a line or a card. The index keys live in other slots than the
contract, so a change claims them first (pending, with a short expiry), writes its own slot with
one script, and then commits the claims, or releases them if anything failed: nothing is left
half-written (keys.py has the values: ``<contract>\\t<msisdn>[\\t<token or retired>]``).
"""

from __future__ import annotations

import time

from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.errors import Conflict
from quotad.quota.model import LineRef, QuotaSettings
from quotad.quota.runner import ScriptRunner


class LineIndex:
    """Cached lookups of the index, and claims on it."""

    def __init__(self, runner: ScriptRunner, settings: QuotaSettings) -> None:
        self.runner = runner
        self.settings = settings
        # index key → (expiry, contract_id, msisdn), "" for an unknown card: only str and float,
        # which the cyclic garbage collector stops tracking, so the cache's size (up to
        # index_cache_entries) never lengthens a collection's pause.
        self.cache: dict[str, tuple[float, str, str]] = {}

    async def find_line(self, imsi: str | None, msisdn: str | None) -> LineRef | None:
        """R-2: the line of a card's IMSI when given, else of the MSISDN; None if unknown. A
        replaced card's IMSI still gives its line: the attach script refuses it (card_replaced).

        Answers (unknown ones too) are remembered for ``index_cache_seconds``."""
        if imsi:
            key = k.imsi_index(imsi)
        elif msisdn:
            key = k.msisdn_index(msisdn)
        else:
            return None
        now = time.monotonic()
        cached = self.cache.get(key)
        if cached is not None and cached[0] > now:
            return LineRef(cached[1], cached[2]) if cached[1] else None
        raw = await self.runner.get(key)
        found = k.parse_card_index(lua.text(raw)) if raw is not None else None
        ref = LineRef(*found) if found else None
        if self.settings.index_cache_seconds > 0:
            if len(self.cache) >= self.settings.index_cache_entries:
                self.cache.clear()
            expiry = now + self.settings.index_cache_seconds
            self.cache[key] = (expiry, ref.contract_id, ref.msisdn) if ref else (expiry, "", "")
        return ref

    def forget(self, *keys: str) -> None:
        """Drop cached lookups (this process changed the index)."""
        for key in keys:
            self.cache.pop(key, None)

    async def claim(self, claims: list[tuple[str, str]], pending: str) -> list[str]:
        """Claim index keys (key, field) for ``pending``, expiring; on a taken one release the
        others and refuse, naming the field."""
        ttl_ms = self.settings.claim_ttl_seconds * 1000
        claimed: list[str] = []
        try:
            for key, field in claims:
                if not await self.runner.client.set(key, pending, nx=True, px=ttl_ms):
                    raise Conflict(f"{field} is already in use", field=field, rule="R-2")
                claimed.append(key)
        except BaseException:
            await self.release(claimed, pending)
            raise
        return claimed

    async def commit(self, keys: list[str], pending: str, owner: str) -> None:
        """Claimed keys name their owner for good (no expiry)."""
        await self.compare_and_set(keys, pending, owner)

    async def release(self, keys: list[str], pending: str) -> None:
        """Give claimed keys back (deleted, if still ours)."""
        await self.compare_and_set(keys, pending, "")

    async def compare_and_set(self, keys: list[str], expected: str, new: str) -> None:
        """Each key that holds ``expected`` is set to ``new`` ('' deletes it) (index_cas.lua)."""
        for key in keys:
            await self.runner.run("index_cas", [key], lua.cas_argv(expected, new))
