"""Sans-I/O RADIUS codec for the hot path (RFC 2865, 2866, 2869, 3579, 5176): the public module.

The code is in ``_packet.py``, plain Python and the one source. When the package is built
(``pip install``) Cython compiles it, with the C types of ``_packet.pxd``, into an extension
module of the same name, which this module loads; without a C compiler, with ``QUOTAD_PURE=1``
in the environment, or when the extension is older than its source (edited since the last
``make install``), the plain Python module runs instead. Both behave alike, and the codec tests
run against each (docs/benchmarks.md, "Compiled codec"). ``IMPLEMENTATION`` says which runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).parent
_NAME = "quotad.radius._packet"
_PLAIN_NAME = "quotad.radius._packet_py"


def _load_source(name: str) -> ModuleType:
    """``_packet.py`` executed as plain Python under ``name``, whatever is built beside it."""
    spec = importlib.util.spec_from_file_location(name, _HERE / "_packet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before it runs: dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _stale(module: ModuleType) -> bool:
    """In a source tree, a compiled module older than its source (or its declarations) runs old code.

    Only there: an installed package has no ``_packet.pxd``, and its files' times are those of
    the install, in no particular order.
    """
    if not (_HERE / "_packet.pxd").exists():
        return False
    built = Path(module.__file__ or "").stat().st_mtime
    return any((_HERE / src).stat().st_mtime > built for src in ("_packet.py", "_packet.pxd"))


def plain() -> ModuleType:
    """The plain Python codec module (the compiled one's tests run against it too)."""
    loaded = sys.modules.get(_NAME)
    if loaded is not None and (loaded.__file__ or "").endswith(".py"):
        return loaded
    return sys.modules.get(_PLAIN_NAME) or _load_source(_PLAIN_NAME)


def running() -> ModuleType:
    """The codec module this process runs (compiled, or plain Python)."""
    return _impl


def _choose() -> tuple[ModuleType, str]:
    if os.environ.get("QUOTAD_PURE"):
        return _load_source(_NAME), "python (QUOTAD_PURE set)"
    from quotad.radius import _packet

    if (_packet.__file__ or "").endswith(".py"):
        return _packet, "python (not compiled)"
    if _stale(_packet):
        del sys.modules[_NAME]
        return _load_source(_NAME), "python (compiled module older than _packet.py: run make install)"
    return _packet, "cython"


_impl, IMPLEMENTATION = _choose()
COMPILED = IMPLEMENTATION == "cython"

from quotad.radius._packet import *  # noqa: E402, F403  (the codec's names, from the module chosen)
from quotad.radius.attrtypes import *  # noqa: E402, F403  (attribute numbers)
