"""Builds libdagz.so with cargo and ships it inside the `dagz` package (`pip install .`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildShim(build_py):
    """Runs `cargo build --release` and copies the cdylib and its header into the package."""

    def run(self) -> None:
        super().run()
        cargo = os.environ.get("CARGO", "cargo")
        subprocess.run([cargo, "build", "--release", "--lib"], cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        dest = Path(self.build_lib) / "dagz"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target / "release" / "libdagz.so", dest / "libdagz.so")
        shutil.copy2(ROOT / "shim" / "dagz.h", dest / "dagz.h")


class BinaryDistribution(Distribution):
    """The wheel carries a native library: never tag it pure."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildShim}, distclass=BinaryDistribution)
