"""Address leases (R-5): private IPv4 addresses leased to sessions on the IP pool's slot
(ip_*.lua), and this process's memo of the leases it renewed lately (quota.renewals), which lets
a steady session skip the lease script."""

from __future__ import annotations

import ipaddress

from quotad.quota import keys as k
from quotad.quota import lua
from quotad.quota.model import ACCT_INTERIM, ACCT_START, AccountingReport, QuotaSettings
from quotad.quota.renewals import RenewalMemo
from quotad.quota.resp import Encoded
from quotad.quota.runner import Call, ScriptRunner


def address_text(address: int) -> str:
    """Dotted quad of an address the lease scripts keep as an integer."""
    if not 0 <= address <= 0xFFFFFFFF:
        raise ValueError(f"{address} is not an IPv4 address")
    return f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"


def address_int(address: str) -> int:
    """The integer of a dotted quad the codec made (aaa.values.ipv4_text)."""
    a, b, c, d = address.split(".")
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


class AddressLeases:
    """The IP pool of ``settings.ip_range`` (less its network and broadcast addresses)."""

    def __init__(self, runner: ScriptRunner, settings: QuotaSettings) -> None:
        net = ipaddress.ip_network(settings.ip_range)
        if net.version != 4 or net.num_addresses < 4:
            raise ValueError(f"ip_range {settings.ip_range!r} must be an IPv4 network of 4 or more addresses")
        self.runner = runner
        self.lease_seconds = settings.lease_seconds
        self.first = int(net.network_address) + 1  # skip the network address
        self.count = net.num_addresses - 2  # ... and the broadcast address
        self.keys = k.IpPoolKeys(str(net)).all()
        # Arguments that never change, encoded once for the hot path's script calls.
        self.pool = Encoded(*self.keys)
        self._span = Encoded(self.first, self.count)
        # Leases this process renewed lately (quota.renewals).
        self.renewals = RenewalMemo(settings.lease_seconds, settings.lease_memo_entries)
        self._notes_epoch = -1  # the fast client's connection epoch the notes were taken under

    def in_range(self, address: int) -> bool:
        return self.first <= address < self.first + self.count

    def alloc_call(self, owner: str, now: float) -> Call:
        """The script call that leases an address to ``owner`` (or renews the one it holds)."""
        return ("ip_alloc", self.pool, lua.ip_alloc_argv(owner, repr(now), repr(now + self.lease_seconds), self._span))

    def renewal_due(self, report: AccountingReport, owner: str) -> bool:
        """A report's lease renewal: on Start/Interim, unless this process renewed the lease within
        a quarter of its length (quota.renewals). A Stop releases the lease once it is counted: a
        late Stop of an earlier session under the same id must not take the address of the live
        one. ``owner``: the report's session (keys.session_owner)."""
        return report.status in (ACCT_START, ACCT_INTERIM) and self.renewals.due(owner, report.now)

    def holder_read(self, owner: str) -> tuple[str, str, str]:
        """The plain read of the address ``owner`` holds (None: it holds none).

        The lease scripts run only after it finds one. Many sessions hold no address of quotad's
        pool (their gateway assigns addresses itself, or they were first named by a report), and a
        script call costs Redis ~20 µs however little it does, a plain HGET ~1 µs
        (docs/benchmarks.md). A read that finds none is as good as the script at that instant: a
        lease made after it is one made after the renewal or release."""
        return ("HGET", self.keys[2], owner)

    def renew_call(self, owner: str, now: float) -> Call:
        """The script call that renews ``owner``'s lease for ``lease_seconds`` from ``now``."""
        return ("ip_renew", self.pool, lua.ip_renew_argv(owner, repr(now + self.lease_seconds)))

    def noted(self, owner: str, now: float) -> tuple[tuple[str, str] | None, int | None]:
        """The (address, generation) this process noted for the owner, and the connection epoch
        a new note would be taken under; no notes without the pipelining client (quota.renewals)."""
        fast = self.runner.fast
        if fast is None:
            return None, None
        epoch = fast.epoch
        if epoch != self._notes_epoch:
            self.renewals.clear()
            self._notes_epoch = epoch
            return None, epoch
        return self.renewals.lease(owner, now), epoch

    async def release(self, owner: str) -> None:
        """Give the owner's address back to the pool now (if it holds one: holder_read)."""
        self.renewals.forget(owner)
        if await self.runner.command(*self.holder_read(owner)) is None:
            return
        await self.runner.run("ip_release", self.pool, lua.ip_release_argv(owner))

    async def adopt(self, owner: str, now: float, address: int, line: str) -> str | None:
        """The session ``owner`` takes over ``address`` from another session of its line (whose
        owners start with ``line``); the previous owner, or None (ip_adopt.lua)."""
        old = lua.optional_text(await self.runner.run(
            "ip_adopt", self.pool, lua.ip_adopt_argv(owner, repr(now + self.lease_seconds), address, line)))
        if old:
            self.renewals.forget(old)
            self.renewals.renewed(owner, now)
        return old

    async def address_of(self, owner: str) -> str | None:
        """The dotted quad leased to the owner, if any."""
        leased = await self.runner.client.hget(self.keys[2], owner)
        return address_text(int(lua.text(leased))) if leased is not None else None
