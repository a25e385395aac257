"""The compiled RADIUS codec: Cython builds quotad/radius/_packet.py (its types in _packet.pxd).

Everything else about the package is in pyproject.toml. The extension is optional: without
Cython, without a C compiler or Python's headers, or with QUOTAD_PURE=1 set at install time,
quotad installs and runs the same code as plain Python (quotad --version says which runs).
"""

import os

from setuptools import Extension, setup


def ext_modules() -> list[Extension]:
    if os.environ.get("QUOTAD_PURE"):
        print("QUOTAD_PURE set: the RADIUS codec is left plain Python")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython not found; the RADIUS codec runs as plain Python")
        return []
    ext = Extension("quotad.radius._packet", ["quotad/radius/_packet.py"])
    # The .py's annotations are for mypy; the C types are those of _packet.pxd.
    directives = {"language_level": 3, "annotation_typing": False}
    try:
        built = cythonize([ext], build_dir="build/cython", compiler_directives=directives, quiet=True)
    except Exception as exc:  # Cython's CompileError: a bug to fix, but never a failed install
        print(f"warning: Cython could not translate the RADIUS codec ({exc}); it runs as plain Python")
        return []
    for each in built:
        each.optional = True  # no C compiler or no Python.h: a warning, and the plain module (cythonize drops it)
    return built


setup(ext_modules=ext_modules())
