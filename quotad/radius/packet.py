"""Sans-I/O RADIUS codec for the hot path (RFC 2865, 2866, 2869, 3579, 5176): the public module.

The code is in ``_packet.py``, plain Python and the one source. When the package is built
(``pip install``) Cython compiles it, with the C types of ``_packet.pxd``, into an extension
module of the same name, which this module loads (``quotad.compiled``); without a C compiler,
with ``QUOTAD_PURE=1`` in the environment, or when the extension is older than its source
(edited since the last ``make install``), the plain Python module runs instead. Both behave
alike, and the codec tests run against each (docs/benchmarks.md, "Compiled codec").
``IMPLEMENTATION`` says which runs.
"""

from __future__ import annotations

from quotad.compiled import Build

_BUILD = Build("quotad.radius._packet")
IMPLEMENTATION, COMPILED = _BUILD.implementation, _BUILD.compiled
plain = _BUILD.plain  # the plain Python codec module (the compiled one's tests run against it too)
running = _BUILD.running  # the codec module this process runs (compiled, or plain Python)

from quotad.radius._packet import *  # noqa: E402, F403  (the codec's names, from the module chosen)
from quotad.radius.attrtypes import *  # noqa: E402, F403  (attribute numbers)
