"""Packaging of dagz: the package shim/dagz plus the cdylib libdagz.so, built by setuptools-rust.

libdagz.so is not a CPython extension: the package loads it with ctypes (and users preload it),
so it has no Python binding and no Python ABI. Hence:

* ``Binding.NoBinding``: cargo builds the crate's cdylib, nothing Python-specific is linked in;
* the file keeps its plain name, ``dagz/libdagz.so`` (``_shim.shim_path()`` looks for that name next
  to the package), not ``libdagz.cpython-311-x86_64-linux-gnu.so``;
* the wheel is tagged ``py3-none-<platform>``: any Python 3 on this platform, not ``cp311`` only;
* the copy in the wheel is stripped (``strip -x``: local symbols and debug info go, the exported
  ``dagz_*`` and hook symbols stay); ``target/release/libdagz.so`` is left as cargo built it.

Editable installs (``pip install -e .``, ``make venv``) build the release library in the checkout's
target directory and do not copy it into shim/dagz: the package then uses
``target/release/libdagz.so``, which ``make build`` keeps current (a copy would go stale).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools_rust import Binding, RustExtension, Strip, build_rust

ROOT = Path(__file__).resolve().parent
HEADER = ROOT / "shim" / "dagz.h"
#: The extension's module name: the library lands at dagz/libdagz.so.
LIB_MODULE = "dagz.libdagz"
LIB_FILE = "libdagz.so"

log = logging.getLogger("dagz.setup")


class BuildExt(build_ext):
    """Names the cdylib ``libdagz.so``, not with the interpreter's extension-module suffix."""

    def get_ext_filename(self, fullname: str) -> str:
        if fullname == LIB_MODULE.rsplit(".", 1)[1]:
            return LIB_FILE
        return str(super().get_ext_filename(fullname))


class BuildRust(build_rust):
    """In an editable install the library stays in cargo's target directory (see module doc)."""

    def install_extension(
        self,
        ext: RustExtension,
        dylib_paths: Sequence[tuple[str, str]],
        build_artifact_dir: Path | None,
    ) -> None:
        if self.inplace:
            for _, path in dylib_paths:
                log.info("dagz: editable install uses %s (not copied into the package)", path)
            return
        super().install_extension(ext, list(dylib_paths), build_artifact_dir)  # type: ignore[arg-type]


class BuildPy(build_py):
    """Ships the C header next to the library (dagz/dagz.h); an editable install reads shim/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        dest = Path(self.build_lib) / "dagz"
        dest.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(HEADER), str(dest / HEADER.name))


class BdistWheel(bdist_wheel):
    """``py3-none-<platform>``: the library is loaded with ctypes, any Python 3 can use it."""

    def run(self) -> None:
        # The wheel packs the whole build dir: a module left there by an earlier build (and since
        # deleted from shim/dagz) would ship. Start from an empty one.
        build = self.get_finalized_command("build")
        for stale in {build.build_lib, build.build_platlib}:
            shutil.rmtree(stale, ignore_errors=True)
        super().run()

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    rust_extensions=[
        RustExtension(
            LIB_MODULE,
            path="Cargo.toml",
            binding=Binding.NoBinding,
            py_limited_api=False,
            debug=False,
            strip=Strip.All,
        )
    ],
    cmdclass={
        "build_ext": BuildExt,
        "build_rust": BuildRust,
        "build_py": BuildPy,
        "bdist_wheel": BdistWheel,
    },
    zip_safe=False,
)
