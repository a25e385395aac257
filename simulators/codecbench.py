"""The RADIUS codec alone: what one PAP or accounting request costs in ``radius/packet.py``.

Per request, the codec calls the request path makes (``radius/server`` and ``aaa/``): decode,
Message-Authenticator (PAP) or Request Authenticator (accounting), the handler's attribute
lookups, the PAP password, and the reply with its authenticators (docs/benchmarks.md,
"Compiled codec"). Prints µs a request for the codec that runs (compiled or plain Python,
``QUOTAD_PURE=1`` for the latter). Under ``valgrind --tool=callgrind`` the difference of two
``--n`` gives instructions a request:

    valgrind --tool=callgrind python -m simulators.codecbench --kinds pap --n 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import time

from quotad.radius import packet as rp
from simulators.cpuprobe import SECRET, request

ACCEPT_ATTRS = (rp.attr_int(rp.SESSION_TIMEOUT, 86400) + rp.attr_int(rp.IDLE_TIMEOUT, 7200)
                + rp.attr_int(rp.ACCT_INTERIM_INTERVAL, 600) + rp.attr(rp.CLASS, b"quotad1;c-000001;819000000001;s")
                + rp.attr(rp.FILTER_ID, b"high-lte") + rp.attr_vsa(rp.VENDOR_QUOTAD, 3, b"high-lte")
                + rp.attr_int(rp.FRAMED_IP_ADDRESS, 0x64400001))


def pap(data: bytes) -> bytes:
    pkt = rp.decode(data)
    if not rp.verify_message_authenticator(pkt, SECRET):
        raise AssertionError("Message-Authenticator")
    pkt.get_int(rp.SERVICE_TYPE)
    pkt.get(rp.CLASS)
    pkt.get(rp.STATE)
    pkt.get_str(rp.ACCT_SESSION_ID)
    pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC)
    pkt.get(rp.CALLED_STATION_ID)
    if pkt.get(rp.USER_NAME) != b"mio@iij":
        raise AssertionError("User-Name")
    if rp.decrypt_password(pkt.get(rp.USER_PASSWORD) or b"", SECRET, pkt.authenticator) != b"iij":
        raise AssertionError("User-Password")
    pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI)
    pkt.get_str(rp.CALLING_STATION_ID)
    pkt.get(rp.NAS_IP_ADDRESS)
    rp.tgpp_rat_type(pkt)
    return rp.encode_response(rp.ACCESS_ACCEPT, pkt.identifier, pkt.authenticator, SECRET, ACCEPT_ATTRS,
                              pkt.get_all(rp.PROXY_STATE))


def acct(data: bytes) -> bytes:
    pkt = rp.decode(data)
    if not rp.verify_request_authenticator(pkt, SECRET):
        raise AssertionError("Request Authenticator")
    pkt.get_int(rp.ACCT_STATUS_TYPE)
    pkt.get(rp.CLASS)
    pkt.get_str(rp.ACCT_SESSION_ID)
    pkt.vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI)
    pkt.get_str(rp.CALLING_STATION_ID)
    pkt.get(rp.NAS_IP_ADDRESS)
    pkt.get(rp.FRAMED_IP_ADDRESS)
    pkt.get_int(rp.ACCT_SESSION_TIME)
    pkt.get_str(rp.CALLED_STATION_ID)
    pkt.get_int(rp.EVENT_TIMESTAMP)
    pkt.get_int(rp.ACCT_DELAY_TIME)
    rp.octets64(pkt.get_int(rp.ACCT_INPUT_OCTETS), pkt.get_int(rp.ACCT_INPUT_GIGAWORDS))
    rp.octets64(pkt.get_int(rp.ACCT_OUTPUT_OCTETS), pkt.get_int(rp.ACCT_OUTPUT_GIGAWORDS))
    return rp.encode_response(rp.ACCOUNTING_RESPONSE, pkt.identifier, pkt.authenticator, SECRET, b"",
                              pkt.get_all(rp.PROXY_STATE), message_authenticator=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.codecbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="pap,acct")
    parser.add_argument("--n", type=int, default=20000, help="requests a run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the fastest is printed")
    args = parser.parse_args(argv)
    print(f"codec: {rp.IMPLEMENTATION}" + (" (QUOTAD_PURE set)" if os.environ.get("QUOTAD_PURE") else ""))
    for kind in args.kinds.split(","):
        fn = acct if kind == "acct" else pap
        packets = [request(kind, seq, 500) for seq in range(256)]
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for i in range(args.n):
                fn(packets[i & 255])
            best = min(best, time.perf_counter() - start)
        print(f"{kind}: {best / args.n * 1e6:.2f} µs a request (best of {args.repeat} runs of {args.n})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
