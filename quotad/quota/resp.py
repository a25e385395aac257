"""RESP encoding of the hot path's Redis commands (quota.fastredis): the public module.

The code is in ``_resp.py``, plain Python and the one source, built like the RADIUS codec
(``radius/packet.py``, ``quotad.compiled``): Cython's extension of it when installed, with the
C types of ``_resp.pxd``, else the plain module. ``IMPLEMENTATION`` says which runs. Import
``Encoded`` from here, never from ``_resp``: ``encode_command`` knows a run by its class, and a
compiled and a plain ``Encoded`` are two classes.
"""

from __future__ import annotations

from quotad.compiled import Build

_BUILD = Build("quotad.quota._resp")
IMPLEMENTATION, COMPILED = _BUILD.implementation, _BUILD.compiled
plain = _BUILD.plain  # the plain Python module (the compiled one's tests run against it too)
running = _BUILD.running  # the module this process runs (compiled, or plain Python)

from quotad.quota._resp import Encoded, encode_command, flat  # noqa: E402  (from the module chosen)

__all__ = ["COMPILED", "IMPLEMENTATION", "Encoded", "encode_command", "flat", "plain", "running"]
