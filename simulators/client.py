"""A RADIUS client for the simulators: one UDP socket, 256 Identifiers, retransmission of the very
same datagram on silence (RFC 5080 §2.2.1), replies verified before they count.

``request(build)`` takes a function ``identifier → (datagram, request authenticator)`` so the
packet is built only once an Identifier is free, and returns an :class:`Exchange`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from quotad.radius import packet as rp
from simulators.wire import verify_reply

Builder = Callable[[int], tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Exchange:
    """How one request ended: ``reply`` (verified) or None with ``error`` ("timeout", …)."""

    reply: rp.Packet | None
    error: str | None
    latency: float  # seconds from the first send to the reply (or to giving up)
    attempts: int


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: RadiusClient) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner._received(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: the timeout handles it
        pass


class RadiusClient:
    """Requests to one server port; ``timeout`` per attempt, ``retries`` retransmissions."""

    def __init__(
        self, host: str, port: int, secret: bytes, timeout: float = 2.0, retries: int = 2, bind: str = "127.0.0.1"
    ) -> None:
        self.server = (host, port)
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.bind = bind
        self._transport: asyncio.DatagramTransport | None = None
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for ident in range(256):
            self._free.put_nowait(ident)
        self._pending: dict[int, tuple[bytes, asyncio.Future[rp.Packet]]] = {}
        self.bad_replies: dict[str, int] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(self.bind, 0))
        self._transport = cast(asyncio.DatagramTransport, transport)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def request(self, build: Builder) -> Exchange:
        ident = await self._free.get()
        try:
            return await self._exchange(ident, build)
        finally:
            self._pending.pop(ident, None)
            self._free.put_nowait(ident)

    async def _exchange(self, ident: int, build: Builder) -> Exchange:
        datagram, authenticator = build(ident)
        future: asyncio.Future[rp.Packet] = asyncio.get_running_loop().create_future()
        self._pending[ident] = (authenticator, future)
        started = time.perf_counter()
        for attempt in range(1, self.retries + 2):
            if self._transport is None:
                return Exchange(None, "closed", time.perf_counter() - started, attempt - 1)
            self._transport.sendto(datagram, self.server)
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), self.timeout)
            except TimeoutError:
                continue
            return Exchange(reply, None, time.perf_counter() - started, attempt)
        return Exchange(None, "timeout", time.perf_counter() - started, self.retries + 1)

    def _received(self, data: bytes) -> None:
        try:
            pkt = rp.decode(data)
        except rp.PacketError:
            self._bad("malformed")
            return
        pending = self._pending.get(pkt.identifier)
        if pending is None or pending[1].done():
            self._bad("unmatched")
            return
        reason = verify_reply(pkt, pending[0], self.secret)
        if reason is not None:
            self._bad(reason)
            return
        pending[1].set_result(pkt)

    def _bad(self, reason: str) -> None:
        self.bad_replies[reason] = self.bad_replies.get(reason, 0) + 1
