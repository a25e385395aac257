"""atheris harness: the UDP edge, RadiusProtocol.datagram_received, with a real client table and
reply cache and a handler that answers whatever it admits (fuzz/targets.py).

    .venv/bin/pip install atheris
    .venv/bin/python -m fuzz.fuzz_edge fuzz/corpus -max_total_time=600

Inputs come from source 127.0.0.1 with the secret testing123, so seeds signed with it reach the
Message-Authenticator and Request Authenticator checks, the duplicate cache and the handler."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from fuzz.targets import EdgeTarget


def main() -> None:
    from quotad import log

    log.setup("warning")  # drops are logged at info: millions of inputs, no need to see them
    atheris.Setup(sys.argv, EdgeTarget())
    atheris.Fuzz()


if __name__ == "__main__":
    main()
