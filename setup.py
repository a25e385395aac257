"""The compiled modules: Cython builds each plain Python source of the hot path (its C types in
the .pxd beside it): the RADIUS codec, quotad/radius/_packet.py, and the RESP encoder,
quotad/quota/_resp.py.

Everything else about the package is in pyproject.toml. Each extension is optional: without
Cython, without a C compiler or Python's headers, or with QUOTAD_PURE=1 set at install time,
quotad installs and runs the same code as plain Python (quotad --version says which runs).
"""

import os

from setuptools import Extension, setup

COMPILED = {"quotad.radius._packet": "the RADIUS codec", "quotad.quota._resp": "the RESP encoder"}


def ext_modules() -> list[Extension]:
    if os.environ.get("QUOTAD_PURE"):
        print(f"QUOTAD_PURE set: {' and '.join(COMPILED.values())} are left plain Python")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print(f"warning: Cython not found; {' and '.join(COMPILED.values())} run as plain Python")
        return []
    # The .py's annotations are for mypy; the C types are those of the .pxd.
    directives = {"language_level": 3, "annotation_typing": False}
    built = []
    for name, what in COMPILED.items():
        ext = Extension(name, [name.replace(".", "/") + ".py"])
        try:
            built += cythonize([ext], build_dir="build/cython", compiler_directives=directives, quiet=True)
        except Exception as exc:  # Cython's CompileError: a bug to fix, but never a failed install
            print(f"warning: Cython could not translate {what} ({exc}); it runs as plain Python")
    for each in built:
        each.optional = True  # no C compiler or no Python.h: a warning, and the plain module (cythonize drops it)
    return built


setup(ext_modules=ext_modules())
