"""CPU per request of quotad's own code, without the sockets (docs/benchmarks.md).

Runs the real daemon in this process (embedded Redis, the pipelining client), provisions
``--lines`` lines, and feeds radload-shaped requests straight to the RADIUS protocol objects,
closed loop at ``--window`` in flight; replies are taken from a stand-in transport. It prints
the process CPU time per request, and the embedded Redis's (from /proc, in clock ticks: use a
large ``--n``). Under ``valgrind --tool=callgrind`` the difference between two
runs of different ``--n`` gives instructions per request, a figure that does not move when the
machine is shared:

    valgrind --tool=callgrind python -m simulators.cpuprobe --kinds pap --lines 500 --warm 600 --n 300
    valgrind --tool=callgrind python -m simulators.cpuprobe --kinds pap --lines 500 --warm 600 --n 1300

The index cache lifetime is raised so that a slow (instrumented) run sees the cached lookups a
full-speed run sees.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import uvloop

from quotad import config as cfgmod
from quotad.app import Daemon
from quotad.radius import packet as rp
from quotad.radius.server import RadiusProtocol
from simulators import bench

SECRET = b"testing123"
USER, PASSWORD, APN = b"mio@iij", b"iij", b"iijmio.jp"
NAS_IP = bytes((127, 0, 0, 1))


def request(kind: str, seq: int, lines: int) -> bytes:
    """The request radload sends as its ``seq``-th (bench/radload.c, build())."""
    msisdn = b"8190%08d" % (seq % lines)
    ident = seq & 255
    if kind == "interim":  # not radload's: one live session a line, each report 100 kB more (a steady Interim)
        line, nth = seq % lines, seq // lines + 1
        attrs = [
            rp.attr(rp.USER_NAME, USER), rp.attr(rp.NAS_IP_ADDRESS, NAS_IP), rp.attr_int(rp.ACCT_STATUS_TYPE, 3),
            rp.attr(rp.ACCT_SESSION_ID, b"i%015x" % line), rp.attr(rp.CALLED_STATION_ID, APN),
            rp.attr(rp.CALLING_STATION_ID, msisdn), rp.attr_int(rp.FRAMED_IP_ADDRESS, 0x0A000000 | line),
            rp.attr_int(rp.ACCT_INPUT_OCTETS, 20000 * nth), rp.attr_int(rp.ACCT_OUTPUT_OCTETS, 80000 * nth),
            rp.attr_int(rp.ACCT_SESSION_TIME, 60 * nth), rp.attr_int(rp.EVENT_TIMESTAMP, int(time.time())),
        ]
        return rp.encode_request(rp.ACCOUNTING_REQUEST, ident, SECRET, b"".join(attrs), message_authenticator=False)[0]
    if kind == "acct":
        used = seq % 3 != 0
        attrs = [
            rp.attr(rp.USER_NAME, USER), rp.attr(rp.NAS_IP_ADDRESS, NAS_IP),
            rp.attr_int(rp.ACCT_STATUS_TYPE, (1, 3, 2)[seq % 3]), rp.attr(rp.ACCT_SESSION_ID, b"%016x" % (seq // 3)),
            rp.attr(rp.CALLED_STATION_ID, APN), rp.attr(rp.CALLING_STATION_ID, msisdn),
            rp.attr_int(rp.FRAMED_IP_ADDRESS, 0x0A000000 | (seq & 0xFFFFFF)), rp.attr_int(rp.SERVICE_TYPE, 2),
            rp.attr_int(rp.NAS_PORT_TYPE, 18), rp.attr_int(rp.ACCT_INPUT_OCTETS, 123456 if used else 0),
            rp.attr_int(rp.ACCT_OUTPUT_OCTETS, 654321 if used else 0),
            rp.attr_int(rp.ACCT_SESSION_TIME, 60 if used else 0), rp.attr_int(rp.EVENT_TIMESTAMP, int(time.time())),
            rp.attr_int(rp.ACCT_DELAY_TIME, 0),
        ]
        return rp.encode_request(rp.ACCOUNTING_REQUEST, ident, SECRET, b"".join(attrs), message_authenticator=False)[0]
    authenticator = os.urandom(16)
    if kind == "chap":
        challenge, chap_id = os.urandom(16), bytes((ident,))
        credentials = rp.attr(rp.CHAP_PASSWORD, chap_id + hashlib.md5(chap_id + PASSWORD + challenge).digest())
        credentials += rp.attr(rp.CHAP_CHALLENGE, challenge)
    else:
        credentials = rp.pap_attr(PASSWORD, SECRET, authenticator)
    attrs = [
        rp.attr(rp.USER_NAME, USER), credentials, rp.attr(rp.NAS_IP_ADDRESS, NAS_IP), rp.attr_int(rp.SERVICE_TYPE, 2),
        rp.attr_int(rp.FRAMED_PROTOCOL, 1), rp.attr_int(rp.NAS_PORT_TYPE, 18), rp.attr(rp.CALLED_STATION_ID, APN),
        rp.attr(rp.CALLING_STATION_ID, msisdn),
    ]
    return rp.encode_request(rp.ACCESS_REQUEST, ident, SECRET, b"".join(attrs), authenticator=authenticator)[0]


class Generator:
    """Stands in for the protocol's transport: every reply sends the next request."""

    def __init__(self, proto: RadiusProtocol, kind: str, lines: int, total: int, window: int, first: int = 0) -> None:
        self.proto, self.total = proto, total
        # built before timing; from sequence number ``first`` on, so a run does not replay the
        # warm-up's accounting sessions (radload's session id is its sequence number / 3)
        self.packets = [request(kind, first + seq, lines) for seq in range(total + window)]
        self.seq = self.replies = 0
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies += 1
        if self.replies >= self.total:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.loop.call_soon(self.fire)

    def is_closing(self) -> bool:
        return False

    def fire(self) -> None:
        seq = self.seq
        self.seq += 1
        self.proto.datagram_received(self.packets[seq], ("127.0.0.1", 20000 + (seq >> 8) % 40000))


async def probe(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="quotad-probe-"))
    quotad = bench.Quotad(workdir, 1)
    config = cfgmod.load(quotad.config)
    # A Redis under valgrind answers ~50 times slower: a longer timeout keeps its calls from failing
    # (a failed call would be retried and counted twice).
    config = dataclasses.replace(config, redis=dataclasses.replace(config.redis, timeout=args.redis_timeout))
    daemon = Daemon(config)
    await daemon.start()
    assert daemon.store is not None and daemon.auth is not None and daemon.acct is not None
    index = daemon.store.index  # the lookups of the request path (quota.lineindex)
    index.settings = dataclasses.replace(index.settings, index_cache_seconds=1e6)
    redis_pids = [daemon.embedded.process.pid] if daemon.embedded and daemon.embedded.process else []
    try:
        await asyncio.to_thread(bench.provision, quotad, args.lines)
        for kind in args.kinds.split(","):
            proto = daemon.acct if kind in ("acct", "interim") else daemon.auth
            transport = proto.transport
            first = 0
            for phase, total in (("warm-up", args.warm or args.lines), ("run", args.n)):
                gen = Generator(proto, kind, args.lines, total, args.window, first)
                first += -(-(total + args.window) // 3) * 3  # the next phase's sessions start afresh
                proto.transport = gen  # type: ignore[assignment]
                cpu, wall, redis = time.process_time(), time.perf_counter(), bench.cpu_seconds(redis_pids)
                for _ in range(args.window):
                    gen.fire()
                await gen.done
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                redis = bench.cpu_seconds(redis_pids) - redis
                await asyncio.sleep(0.2)  # the last requests' replies
                if phase == "run":
                    print(f"{kind}: {cpu / total * 1e6:.1f} µs CPU a request, {total / wall:.0f} requests/s; "
                          f"Redis {redis / total * 1e6:.1f} µs a request", flush=True)
            proto.transport = transport
    finally:
        await daemon.stop(1.0)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.cpuprobe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="pap,chap,acct",
                        help="of pap, chap, acct (radload's), interim (a steady Interim of a live session)")
    parser.add_argument("--n", type=int, default=30000, help="requests measured, per kind")
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--warm", type=int, default=0, help="requests before measuring (default: --lines)")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--redis-timeout", type=float, default=2.0, help="redis.timeout (raise it under valgrind)")
    uvloop.run(probe(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
