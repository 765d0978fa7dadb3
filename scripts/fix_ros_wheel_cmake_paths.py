"""Point the CMake exports of the ROS 2 wheels at this interpreter's real paths.

The wheels were built in an image whose CPython lived under /opt/python/cp3XX-cp3XX; their exported
CMake targets name that image's Python and numpy include directories, which CMake rejects because they
do not exist here. No package rewrites these, so this script does, idempotently, inside the venv.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

BAKED_PREFIX = re.compile(r"/opt/python/cp3\d+-cp3\d+t?")


def replacement_for(tail: str, python_include: str, numpy_include: str) -> str:
    """Real path for the part of a baked path after its prefix."""
    if re.fullmatch(r"/include/python3\.\d+t?", tail):
        return python_include
    if re.fullmatch(r"/lib/python3\.\d+t?/site-packages/numpy/_?core/include", tail):
        return numpy_include
    return sys.prefix + tail


def main() -> int:
    python_include = sysconfig.get_paths()["include"]
    if not (Path(python_include) / "Python.h").is_file():
        print(f"error: no {python_include}/Python.h: install the Python headers (python3-dev)", file=sys.stderr)
        return 1
    numpy_include = numpy.get_include()
    path_re = re.compile(BAKED_PREFIX.pattern + r"([^;\"'\s)]*)")
    changed = 0
    for root in (Path(sys.prefix) / "share", Path(sys.prefix) / "lib" / "cmake"):
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if not path.is_file() or path.stat().st_size > 4_000_000:
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if not BAKED_PREFIX.search(text):
                continue
            fixed = path_re.sub(lambda m: replacement_for(m.group(1), python_include, numpy_include), text)
            path.write_text(fixed)
            changed += 1
    print(f"fixed baked build paths in {changed} file(s) under {sys.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
