"""The RESP encoder alone: what encoding one account.lua call costs (``quota/resp.py``).

The call is the one the store makes for cpuprobe's accounting requests (quota/store.py,
runner.ScriptRunner.send): the EVALSHA run, the key count, the session's keys as one run and
the event day's key, the clock and gateway runs and eight values; 14 arguments, 4 of them
Encoded runs, 28 in RESP. Prints ns an encode for the plain Python module and, where it is
built, the compiled one, in the same process (docs/benchmarks.md, "A compiled RESP encoder"):

    python -m simulators.respbench
"""

from __future__ import annotations

import argparse
import functools
import timeit
from types import ModuleType
from typing import Any

from quotad.quota import lua, resp
from quotad.quota.model import LineRef, QuotaSettings
from quotad.quota.runner import ClockRun, ScriptCalendar, line_keys, session_run

NOW = 1796325200.0  # 2026-12-03 12:33:20 UTC
SHA = "eb28d64c733126c255b95546004eca06614a106f"


def account_call() -> tuple[Any, ...]:
    """encode_command's arguments for an accounting Start of cpuprobe's first line."""
    calendar = ScriptCalendar(QuotaSettings().timezone)
    line = line_keys(LineRef("sim-0", "819000000000"), calendar.window(NOW))
    sid = "127.0.0.1/0000000000000000"
    run = session_run(line, sid)
    keys = [run, line["today"]]
    args = lua.account_argv(ClockRun(calendar).at(NOW), resp.Encoded("127.0.0.1", "127.0.0.1"), sid, 1, 0, 0,
                            "10.0.0.0", "0000000000000000", int(NOW), 0)
    return (resp.Encoded("EVALSHA", SHA), len(keys) + run.count - 1, *keys, *args)


def runs_of(module: ModuleType, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` with each run made one of ``module``'s (a build knows only its own Encoded)."""
    return tuple(module.Encoded.from_parts(a.values, a.resp, a.text) if isinstance(a, resp.Encoded) else a
                 for a in args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulators.respbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200000, help="encodes a run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the fastest is printed")
    args = parser.parse_args(argv)
    call = account_call()
    builds = [("plain Python", resp.plain())] + ([("compiled", resp.running())] if resp.COMPILED else [])
    print(f"RESP encoder: {resp.IMPLEMENTATION}; {len(call)} arguments, {len(resp.flat(list(call)))} in RESP")
    expected = resp.plain().encode_command(runs_of(resp.plain(), call))
    for name, module in builds:
        encode, built = module.encode_command, runs_of(module, call)
        if encode(built) != expected:
            raise AssertionError(f"{name}: not the plain module's bytes")
        best = min(timeit.repeat(functools.partial(encode, built), number=args.n, repeat=args.repeat))
        print(f"{name}: {best / args.n * 1e9:.0f} ns an encode (best of {args.repeat} runs of {args.n})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
