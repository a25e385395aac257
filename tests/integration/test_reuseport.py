"""R-73: several workers share a RADIUS port, and one gateway socket's requests reach all of them.

Real sockets in one SO_REUSEPORT group on loopback, the kernel choosing the receiver: with the
kernel's hash alone every datagram of one source socket lands on one worker's socket; with
quotad's filter (quotad.radius.reuseport) socket = Identifier mod workers.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest

from quotad.radius.reuseport import BPF_ALU_MOD_K, BPF_LD_B_ABS, BPF_RET_A, program, spread_by_identifier
from quotad.radius.server import listen

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_ATTACH_REUSEPORT_CBPF is Linux's")


def _group(n: int) -> list[socket.socket]:
    socks: list[socket.socket] = []
    port = 0
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        port = sock.getsockname()[1]
        sock.settimeout(2)
        socks.append(sock)
    return socks


def _send_from_one_socket(port: int, identifiers: range) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for ident in identifiers:
            client.sendto(bytes([1, ident, 0, 20]) + bytes(16), ("127.0.0.1", port))


def _drain(sock: socket.socket) -> list[int]:
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(sock.recv(64)[1])
        except BlockingIOError:
            return got


def test_the_filter_takes_the_identifier_mod_workers() -> None:
    assert program(3) == [(BPF_LD_B_ABS, 0, 0, 1), (BPF_ALU_MOD_K, 0, 0, 3), (BPF_RET_A, 0, 0, 0)]
    with pytest.raises(ValueError, match="workers"):
        program(1)


def test_without_the_filter_one_source_socket_reaches_one_worker() -> None:
    socks = _group(2)
    try:
        _send_from_one_socket(socks[0].getsockname()[1], range(40))
        time.sleep(0.1)  # loopback delivers at once; a margin for a loaded machine
        counts = sorted(len(_drain(s)) for s in socks)
        assert counts == [0, 40]
    finally:
        for s in socks:
            s.close()


def test_with_the_filter_identifiers_spread_over_the_workers() -> None:
    socks = _group(3)
    try:
        assert spread_by_identifier(socks[-1], 3) is True
        _send_from_one_socket(socks[0].getsockname()[1], range(60))
        time.sleep(0.1)  # loopback delivers at once; a margin for a loaded machine
        assert [_drain(s) for s in socks] == [list(range(k, 60, 3)) for k in range(3)]
    finally:
        for s in socks:
            s.close()


class _Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.identifiers: list[int] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.identifiers.append(data[1])


async def test_listen_spreads_when_told_the_number_of_workers() -> None:
    first, second = _Recorder(), _Recorder()
    t1, port = await listen("127.0.0.1", 0, first, workers=2)  # type: ignore[arg-type]
    t2, _ = await listen("127.0.0.1", port, second, workers=2)  # type: ignore[arg-type]
    try:
        _send_from_one_socket(port, range(16))
        for _ in range(50):
            if len(first.identifiers) + len(second.identifiers) == 16:
                break
            await asyncio.sleep(0.02)
        assert first.identifiers == list(range(0, 16, 2))
        assert second.identifiers == list(range(1, 16, 2))
    finally:
        t1.close()
        t2.close()
