"""Acceptance: ``pip install .`` of the repository into a fresh virtualenv builds the shim with
cargo and ships it inside the package; ``dagz shim-path`` prints that copy (inside the venv's
site-packages), and ``pytest --dagz-workers 2`` on the sample project passes with it.

The venv is built once per run (shared by the xdist workers of this suite under a file lock) in
pytest's tmp dir, from a copy of the working tree without build products, with cargo's target
directory in the tmp dir too, so the build neither reuses nor disturbs ``target/``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    SampleProject,
    assert_passed,
    child_env,
    landing_problems,
    lifecycle_problems,
    run_process,
    sample_project,
)

from support import REPO_ROOT

BUILD_TIMEOUT_S = 600.0
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
#: What `pip install .` must not see: VCS data, build products, local venvs and caches.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    "target",
    ".venv",
    ".venv-src",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.so",
)


def _shared_dir(factory: pytest.TempPathFactory) -> Path:
    """The run's tmp dir shared by all xdist workers (the parent of each worker's basetemp)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _build_venv(root: Path) -> Path:
    src = root / "src"
    shutil.copytree(REPO_ROOT, src, ignore=_NOT_SOURCE)
    venv = root / "venv"
    python = venv / "bin" / "python"
    env = child_env({"CARGO_TARGET_DIR": str(root / "cargo-target")})
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), *PIP, str(src)],
        [str(python), *PIP, "psycopg[binary]"],
    ]
    for argv in steps:
        rc, out, err, seconds = run_process(argv, env, root, timeout=BUILD_TIMEOUT_S)
        if rc != 0:
            raise RuntimeError(
                f"{argv} failed (rc={rc}, {seconds:.0f}s)\n{out[-4000:]}\n{err[-8000:]}"
            )
    return python


@pytest.fixture(scope="session")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with dagz installed by ``pip install <repo>`` (built once per run)."""
    root = _shared_dir(tmp_path_factory) / "dagz-fresh-venv"
    root.mkdir(exist_ok=True)
    done, failed = root / "done", root / "failed"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists() and not failed.exists():
            try:
                python = _build_venv(root)
            except (RuntimeError, OSError) as exc:
                failed.write_text(str(exc))
            else:
                done.write_text(str(python))
    if failed.exists():
        pytest.fail(f"building the fresh venv failed:\n{failed.read_text()}", pytrace=False)
    return Path(done.read_text())


def _site_packages(python: Path) -> Path:
    rc, out, err, _ = run_process(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        child_env(),
        python.parent,
        timeout=60,
    )
    assert rc == 0, err
    return Path(out.strip()).resolve()


def test_shim_path_inside_site_packages(installed_venv: Path) -> None:
    site = _site_packages(installed_venv)
    venv = installed_venv.parent.parent
    assert site.is_relative_to(venv.resolve()), (site, venv)
    rc, out, err, _ = run_process(
        [str(installed_venv.parent / "dagz"), "shim-path"], child_env(), venv, timeout=60
    )
    assert rc == 0, f"{out}\n{err}"
    shim = Path(out.strip())
    assert shim.is_file(), out
    assert shim.resolve().is_relative_to(site / "dagz"), (shim, site)
    assert shim.name == "libdagz.so"
    # the package itself is the installed copy, not the source tree's
    rc, out, err, _ = run_process(
        [str(installed_venv), "-c", "import dagz; print(dagz.__file__)"], child_env(), venv, 60
    )
    assert rc == 0, err
    assert Path(out.strip()).resolve().is_relative_to(site), out


@pytest.fixture
def venv_sample(tmp_path: Path, installed_venv: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path, python=installed_venv) as project:
        yield project


def test_dagz_workers_in_fresh_venv(venv_sample: SampleProject, installed_venv: Path) -> None:
    base = venv_sample.dbs.base
    run = venv_sample.run("--dagz-workers", "2", files=["test_rows_psycopg.py"], families="pg")
    assert_passed(run, at_least=12)
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg",)) == [], run.describe()
    site = _site_packages(installed_venv)
    shims = {e["shim"] for e in run.of("worker_init")}
    assert len(run.of("worker_init")) == 2, run.describe()
    assert all(s and Path(s).resolve().is_relative_to(site) for s in shims), shims
