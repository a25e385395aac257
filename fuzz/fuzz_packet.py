"""atheris harness: the RADIUS decoder and the accessors handlers use (fuzz/targets.py).

    .venv/bin/pip install atheris
    .venv/bin/python -m fuzz.fuzz_packet fuzz/corpus -max_total_time=600 -rss_limit_mb=2048

libFuzzer options follow the corpus directory; new inputs it finds are written there (copy it
first to keep the shipped seeds as they are). A crash is saved as ./crash-<hash>; replay it with
`python -m fuzz.fuzz_packet crash-<hash>`."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from fuzz.targets import packet_target


def main() -> None:
    atheris.Setup(sys.argv, packet_target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
