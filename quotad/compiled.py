"""A module of the hot path built two ways from one source: Cython's extension, or plain Python.

The source is a plain Python file (``radius/_packet.py``, ``quota/_resp.py``); at install
``setup.py`` has Cython compile it, with the C types of the ``.pxd`` beside it, into an extension
module of the same name. Its public module (``radius/packet.py``, ``quota/resp.py``) makes a
``Build`` of it, which loads the extension, or the plain source when there is no extension
(no C compiler), when ``QUOTAD_PURE=1`` is set, or when the extension is older than its source
(edited since the last ``make install``), and re-exports the names of the one chosen. Nothing
else imports the source module: in one process a class of it must be one class (a compiled and
a plain ``Encoded`` are two).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType


class Build:
    """Which build of the module ``name`` (``package._source``) this process runs, chosen once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._plain_name = f"{name}_py"
        package, _, self._stem = name.rpartition(".")
        self._package = importlib.import_module(package)
        self._dir = Path(self._package.__file__ or "").parent
        self.module, self.implementation = self._choose()
        self.compiled = self.implementation == "cython"

    def _load_source(self, name: str) -> ModuleType:
        """The source executed as plain Python under ``name``, whatever is built beside it."""
        spec = importlib.util.spec_from_file_location(name, self._dir / f"{self._stem}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before it runs: dataclasses look their module up
        spec.loader.exec_module(module)
        return module

    def _stale(self, module: ModuleType) -> bool:
        """In a source tree, a compiled module older than its source (or its declarations) runs old code.

        Only there: an installed package has no ``.pxd``, and its files' times are those of the
        install, in no particular order.
        """
        sources = [self._dir / f"{self._stem}{suffix}" for suffix in (".py", ".pxd")]
        if not sources[1].exists():
            return False
        built = Path(module.__file__ or "").stat().st_mtime
        return any(src.stat().st_mtime > built for src in sources)

    def _choose(self) -> tuple[ModuleType, str]:
        if os.environ.get("QUOTAD_PURE"):
            return self._load_source(self.name), "python (QUOTAD_PURE set)"
        module = importlib.import_module(self.name)
        if (module.__file__ or "").endswith(".py"):
            return module, "python (not compiled)"
        if self._stale(module):
            del sys.modules[self.name]
            module = self._load_source(self.name)
            setattr(self._package, self._stem, module)  # `from package import _source` finds this one too
            return module, f"python (compiled module older than {self._stem}.py: run make install)"
        return module, "cython"

    def plain(self) -> ModuleType:
        """The plain Python module (the compiled one's tests run against it too)."""
        loaded = sys.modules.get(self.name)
        if loaded is not None and (loaded.__file__ or "").endswith(".py"):
            return loaded
        return sys.modules.get(self._plain_name) or self._load_source(self._plain_name)

    def running(self) -> ModuleType:
        """The module this process runs (compiled, or plain Python)."""
        return self.module
