"""Daemon.apply, the swap a reload makes in each process, on a daemon with real sockets: the CoA
client sends to the port and with the secret of the new client table (a client's coa_port and
coa_secret, and coa.port for a client without its own), while the settings that need a restart keep
their running values."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

from quotad.radius import packet as rp
from quotad.radius.coa import Outcome, SessionTarget
from tests.conftest import free_port
from tests.integration.daemon_fixture import SECRET, daemon_config, running_daemon


class CoaPort(asyncio.DatagramProtocol):
    """A gateway's RFC 5176 port that ACKs what verifies with its secret and keeps it."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.received: list[rp.Packet] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = rp.decode(data)
        if not rp.verify_request_authenticator(pkt, self.secret):
            return
        self.received.append(pkt)
        reply = rp.encode_response(rp.COA_ACK, pkt.identifier, pkt.authenticator, self.secret, b"")
        self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


async def listen(secret: bytes) -> tuple[CoaPort, asyncio.BaseTransport, int]:
    port = free_port(socket.SOCK_DGRAM)
    protocol = CoaPort(secret)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: protocol, local_addr=("127.0.0.1", port))
    return protocol, transport, port


TARGET = SessionTarget("gw-1", "127.0.0.1")


async def test_apply_moves_coa_to_the_new_port_and_secret(redis_url: str) -> None:
    old, old_transport, old_port = await listen(SECRET)
    new, new_transport, new_port = await listen(b"coa-secret-new")
    default, default_transport, default_port = await listen(SECRET)
    config = daemon_config(redis_url, coa_port=old_port)
    try:
        async with running_daemon(config) as d:
            assert d.coa is not None
            assert await d.coa.coa(TARGET, b"") == Outcome("coa", "ack", None, 1)
            assert len(old.received) == 1

            client = replace(config.clients[0], coa_port=new_port, coa_secret="coa-secret-new")
            d.apply(replace(config, clients=(client,), server=replace(config.server, max_inflight=7)))
            assert await d.coa.coa(TARGET, b"") == Outcome("coa", "ack", None, 1)
            assert (len(old.received), len(new.received)) == (1, 1)
            assert d.config.server.max_inflight == config.server.max_inflight  # needs a restart

            # A client without its own CoA port follows coa.port.
            client = replace(config.clients[0], coa_port=0)
            d.apply(replace(config, clients=(client,), coa=replace(config.coa, port=default_port)))
            assert await d.coa.coa(TARGET, b"") == Outcome("coa", "ack", None, 1)
            assert (len(old.received), len(new.received), len(default.received)) == (1, 1, 1)

            # A gateway no longer configured gets no CoA.
            d.apply(replace(config, clients=()))
            assert await d.coa.coa(TARGET, b"") == Outcome("coa", "error", None, 0)
    finally:
        for transport in (old_transport, new_transport, default_transport):
            transport.close()
