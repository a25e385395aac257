"""Coroutines driven without an asyncio Task (quotad.stepper): the RADIUS hot path's requests."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
import uvloop

from quotad import stepper
from quotad.radius import packet as rp
from quotad.radius.clients import Client, ClientTable
from quotad.radius.replycache import ReplyCache
from quotad.radius.server import Limits, RadiusProtocol

SECRET = b"testing123"


class Ends:
    """Collects the steppers handed to on_done."""

    def __init__(self) -> None:
        self.done: list[stepper.Stepper] = []

    def __call__(self, s: stepper.Stepper) -> None:
        self.done.append(s)


async def test_returns_without_waiting_finishes_inside_start() -> None:
    async def quick() -> int:
        return 7

    ends = Ends()
    s = stepper.start(quick(), ends)
    assert s.done() and s.result() == 7
    assert ends.done == [s]


async def test_result_after_awaiting_several_futures() -> None:
    loop = asyncio.get_running_loop()
    first, second, third = loop.create_future(), loop.create_future(), loop.create_future()
    second.set_result("b")  # already done: no wait at all
    seen: list[Any] = []

    async def handler() -> str:
        seen.append(await first)
        seen.append(await second)
        seen.append(await third)
        return "".join(seen)

    ends = Ends()
    s = stepper.start(handler(), ends)
    assert not s.done()
    first.set_result("a")
    loop.call_later(0.01, third.set_result, "c")
    await asyncio.sleep(0.05)
    assert seen == ["a", "b", "c"]
    assert s.result() == "abc" and ends.done == [s]


async def test_exception_is_kept_and_reported_to_the_loop() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    future = loop.create_future()

    async def failing() -> None:
        await future
        raise ValueError("boom")

    s = stepper.start(failing())
    future.set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert isinstance(s.exception(), ValueError)
    with pytest.raises(ValueError, match="boom"):
        s.result()
    assert [type(c["exception"]) for c in reported] == [ValueError]
    loop.set_exception_handler(None)


async def test_exception_from_an_awaited_future_is_thrown_in() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()

    async def catching() -> str:
        try:
            await future
        except KeyError as exc:
            return f"caught {exc.args[0]}"
        return "not raised"

    s = stepper.start(catching())
    future.set_exception(KeyError("k"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert s.result() == "caught k"


async def test_cancel_while_waiting_runs_finally_and_cancels_the_waiter() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    cleaned: list[str] = []

    async def waiting() -> None:
        try:
            await future
        finally:
            cleaned.append("finally")

    ends = Ends()
    s = stepper.start(waiting(), ends)
    assert s.cancel() is True
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert future.cancelled() and s.cancelled() and s.done()
    assert cleaned == ["finally"] and ends.done == [s]
    assert s.cancel() is False


async def test_cancel_during_a_bare_yield_is_thrown_in_at_the_next_step() -> None:
    async def yielding() -> str:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    s = stepper.start(yielding())
    s.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert s.result() == "cancelled" and s.cancelling() == 1


async def test_is_the_current_task_while_stepping_and_restores_the_callers() -> None:
    seen: list[Any] = []
    outer = asyncio.current_task()

    async def looking() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())

    s = stepper.start(looking())
    assert asyncio.current_task() is outer
    await asyncio.sleep(0.01)
    assert seen == [s, s]


async def test_asyncio_timeout_works_inside() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()

    async def bounded() -> str:
        try:
            async with asyncio.timeout(0.01):
                await never
        except TimeoutError:
            return "timed out"
        return "answered"

    s = stepper.start(bounded())
    await asyncio.sleep(0.05)
    assert s.result() == "timed out" and s.cancelling() == 0


async def test_runs_in_its_own_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")

    async def setting() -> str:
        var.set("inside")
        await asyncio.sleep(0)
        return var.get()

    s = stepper.start(setting())
    await asyncio.sleep(0.01)
    assert s.result() == "inside" and var.get() == "outside"


def test_on_uvloop() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        async def handler() -> int:
            await asyncio.sleep(0.001)
            return await future + 1

        s = stepper.start(handler())
        loop.call_later(0.005, future.set_result, 41)
        await asyncio.sleep(0.05)
        return [s.result()]

    assert uvloop.run(main()) == [42]


# --- the server drives each request with one ----------------------------------------------------


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))

    def is_closing(self) -> bool:
        return False


def _protocol(handler: Any) -> tuple[RadiusProtocol, Transport, ReplyCache]:
    cache = ReplyCache(window=10)
    clients = ClientTable([("127.0.0.1", Client("gw", SECRET))])
    proto = RadiusProtocol(rp.ACCESS_REQUEST, handler, clients, cache, Limits())
    transport = Transport()
    proto.transport = transport  # type: ignore[assignment]
    return proto, transport, cache


def _request(identifier: int) -> bytes:
    data, _ = rp.encode_request(rp.ACCESS_REQUEST, identifier, SECRET, rp.attr(rp.USER_NAME, b"u"))
    return data


async def test_server_answers_after_the_handler_waited() -> None:
    loop = asyncio.get_running_loop()
    redis_reply: asyncio.Future[bytes] = loop.create_future()

    async def handler(pkt: rp.Packet, client: Client) -> bytes:
        await redis_reply
        return rp.encode_response(rp.ACCESS_ACCEPT, pkt.identifier, pkt.authenticator, client.secret)

    proto, transport, _ = _protocol(handler)
    proto.datagram_received(_request(1), ("127.0.0.1", 5000))
    assert proto.inflight == 1 and not transport.sent
    redis_reply.set_result(b"ok")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert proto.inflight == 0 and len(transport.sent) == 1 and not proto.running
    assert transport.sent[0][0][0] == rp.ACCESS_ACCEPT


async def test_drain_cancels_requests_unanswered_at_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[bytes] = loop.create_future()
    quick: asyncio.Future[bytes] = loop.create_future()

    async def handler(pkt: rp.Packet, client: Client) -> bytes:
        return await (never if pkt.identifier == 1 else quick)

    proto, transport, cache = _protocol(handler)
    proto.datagram_received(_request(1), ("127.0.0.1", 5000))
    proto.datagram_received(_request(2), ("127.0.0.1", 5000))
    loop.call_later(0.01, quick.set_result, b"reply")
    await proto.drain(0.1)
    assert never.cancelled()
    assert [data for data, _ in transport.sent] == [b"reply"]
    assert proto.inflight == 0 and not proto.running and len(cache) == 1  # the cancelled one is forgotten
    proto.datagram_received(_request(3), ("127.0.0.1", 5000))  # closing: not taken
    assert proto.inflight == 0


async def test_drain_returns_at_once_when_idle() -> None:
    async def handler(pkt: rp.Packet, client: Client) -> bytes:
        return b"reply"

    proto, transport, _ = _protocol(handler)
    proto.datagram_received(_request(1), ("127.0.0.1", 5000))
    assert transport.sent == [(b"reply", ("127.0.0.1", 5000))]
    await asyncio.wait_for(proto.drain(5.0), 0.5)
