"""The read views the API serves (R-35): a contract's pool and lines, a line's usage by day, the
charge history. Reads only (view.lua maintains the pool lazily, as every contract script does)."""

from __future__ import annotations

import asyncio
import json

from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.errors import NotFound
from quotad.quota.model import Charge, ContractView, DayUsage, LineRef, LineView
from quotad.quota.runner import ScriptRunner


class QuotaViews:
    """What the API shows of contracts and lines."""

    def __init__(self, runner: ScriptRunner) -> None:
        self.runner = runner
        self.client = runner.client

    async def contract_view(self, contract_id: str, now: float) -> ContractView:
        """R-35: the pool by bucket and each line's held data, switch, status and live sessions."""
        ck = k.ContractKeys(contract_id)
        args = lua.clock_argv(repr(float(now)), self.runner.calendar.month(now))
        pool = lua.view_reply(await self.runner.run("view", ck.pool_keys(), args))
        if pool is None:
            raise NotFound(f"no contract {contract_id}", field="contract_id", rule="R-35")
        msisdns = sorted(lua.text(m) for m in await self.client.smembers(ck.lines))
        lines = await asyncio.gather(*(self._line_view(ck, m) for m in msisdns))
        return ContractView(contract_id=contract_id, plan=pool.plan, start_date=pool.start_date,
                            pool=sum(b.left for b in pool.buckets), buckets=pool.buckets, lines=list(lines))

    async def _line_view(self, ck: k.ContractKeys, msisdn: str) -> LineView:
        raw = await self.client.hgetall(ck.line(msisdn))
        f = {lua.text(a): lua.text(b) for a, b in raw.items()}
        live = await self.client.scard(ck.live(msisdn))
        return LineView(msisdn=msisdn, iccid=f.get("iccid", ""), imsi=f.get("imsi", ""),
                        card_type=f.get("card_type", ""), voice=f.get("voice") == "1",
                        status=f.get("status", ""), coupon_on=f.get("coupon") == "1",
                        held=int(f.get("held") or 0), speed=f.get("speed", ""),
                        overrun=int(f.get("overrun") or 0), sessions=int(live))

    async def line_usage(self, ref: LineRef, day_keys: list[str]) -> list[DayUsage]:
        """R-35: the line's usage on each given Japan day ("YYYYMMDD"), high and low speed apart."""
        ck = k.ContractKeys(ref.contract_id)
        rows = await asyncio.gather(
            *(self.client.hmget(ck.usage(ref.msisdn, day), ["high", "low"]) for day in day_keys)
        )
        return [DayUsage(day=d, high=int(lua.text(hi) or 0), low=int(lua.text(lo) or 0))
                for d, (hi, lo) in zip(day_keys, rows, strict=True)]

    async def charges(self, contract_id: str, since: float) -> list[Charge]:
        """R-35: the charge history from since, oldest first (bundles are not charges)."""
        ck = k.ContractKeys(contract_id)
        out = []
        for raw in await self.client.zrangebyscore(ck.charges, since, "+inf"):
            bucket_id, _, body = lua.text(raw).partition("|")
            entry = json.loads(body)
            out.append(Charge(at=float(entry["at"]), units=int(entry["units"]), who=str(entry["who"]),
                              bucket_id=bucket_id))
        return out
