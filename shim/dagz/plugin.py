"""The dagz pytest plugin (entry point `pytest11`): options, worker model on pytest-xdist, the
per-test lifecycle, the `dagz_main_worker` marker and its scheduler, header and summary lines."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from dagz import (
    _bypass,
    _shim,
    _startup,
    envvars,
    lease,
    markers,
    reset_rows,
    shard,
    unseen,
    use_check,
)
from dagz._state import STATE, log
from dagz.auto import AUTO, driver_installed, install_driver_hooks
from dagz.config import CONFIGS, MYSQL_CONFIG, PG_CONFIG, on_decision
from dagz.errors import DagzError
from dagz.families import REDIS_CONFIG  # noqa: F401 - Redis/RabbitMQ join CONFIGS (auto mode)

_MAIN_MARK = "dagz_main_worker"
#: Per-run plugin state, in the run's `config.stash`.
#: The run directory this controller created (removed at unconfigure).
_OWNED_RUN_DIR = pytest.StashKey[str]()
#: Activated in this run; the value: as the xdist controller.
_ACTIVATED = pytest.StashKey[bool]()
#: Families the xdist workers reported as configured (conftests below the root are imported by
#: the workers only, during collection).
_WORKER_FAMILIES = pytest.StashKey[set[str]]()
#: Families the xdist workers rerouted in auto mode.
_WORKER_AUTO = pytest.StashKey[set[str]]()
#: (family, base) -> the most sessions a worker saw reach a base it rerouted (dagz.unseen).
_UNSEEN = pytest.StashKey[dict[tuple[str, str], int]]()
#: DAGZ_DISABLE as the user set it, before the plugin added the families it does not reroute.
_USER_DISABLE = pytest.StashKey["str | None"]()
#: pytest_configure has run: options are parsed, the OTel half may be registered.
_CONFIGURED = pytest.StashKey[bool]()
#: The active run's config in this process (dagz.otel.configure() registers the OTel half on it).
_current: list[pytest.Config] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dagz", "dagz: per-worker databases")
    group.addoption("--dagz", action="store_true", default=False, help="activate dagz rerouting")
    group.addoption(
        "--dagz-workers",
        action="store",
        default=None,
        metavar="N|auto",
        help="run N pytest-xdist workers with libdagz.so preloaded into each",
    )
    group.addoption(
        "--dagz-fresh",
        action="store_true",
        default=False,
        help="rebuild every worker database from its base (no warm start from the last run)",
    )
    group.addoption(
        "--dagz-trace",
        action="store",
        default=None,
        metavar="PATH",
        help="write the run's OpenTelemetry sub-spans as Chrome Trace Event JSON (Perfetto)",
    )
    group.addoption(
        "--dagz-no-auto",
        action="store_true",
        default=False,
        help="no auto mode: families no conftest configured are not rerouted",
    )
    group.addoption(
        "--dagz-reset",
        action="store",
        default="none",
        choices=("none", "rows"),
        help="auto mode: 'rows' resets, before each test, the rows of every table the previous "
        "test changed back to the base's (default: none, as a serial run)",
    )
    shard.add_options(group)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _workers_option(config: pytest.Config) -> str | None:
    value = config.getoption("dagz_workers", None)
    if value is None:
        return None
    if value != "auto" and not (value.isdigit() and int(value) >= 1):
        raise pytest.UsageError(
            f"--dagz-workers must be a positive number or 'auto', not {value!r}"
        )
    return str(value)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    """Start-up, before xdist's own cmdline_main turns numprocesses into `tx` (a wrapper):

    * every start-up input is checked here, once, in the process the user started — a broken
      policy file is one error line, not a worker crash loop;
    * `--dagz-workers N` (or `--dagz -n N`): the xdist workers start with the shim preloaded;
    * `--dagz` in a serial run without the shim: the run starts again with it preloaded.
    """
    if not _is_xdist_worker(config) and _active(config):
        _startup.check_startup_inputs()
        workers = _workers_option(config)
        if workers is not None:
            if config.getoption("numprocesses", None):
                raise pytest.UsageError("give either --dagz-workers or -n/--numprocesses, not both")
            config.option.numprocesses = workers if workers == "auto" else int(workers)
        if config.getoption("numprocesses", None) or config.getoption("tx", None):
            _startup.prepend_preload(str(_startup.existing_shim()))
        elif not _shim.PRELOADED:
            _startup.reexec_with_shim(config)
    return (yield)


def _active(config: pytest.Config) -> bool:
    return bool(
        config.getoption("dagz", False) or _workers_option(config) is not None or _shim.PRELOADED
    )


def _worker_count(config: pytest.Config) -> int:
    if _is_xdist_worker(config):
        return int(config.workerinput.get("workercount", 1))
    n = config.getoption("numprocesses", None)
    if isinstance(n, int):
        return n
    if n in ("auto", "logical"):
        return os.cpu_count() or 1
    return 1


def _configured_families() -> list[str]:
    return [c.family for c in CONFIGS.values() if c.configured]


def _check_shim_in_workers(config: pytest.Config) -> None:
    """Several workers + a configured family + no shim = databases shared silently: stop."""
    families = _configured_families()
    if not families or _worker_count(config) <= 1:
        return
    if _is_xdist_worker(config):
        ok = _shim.PRELOADED
    else:
        ok = "libdagz" in os.environ.get("LD_PRELOAD", "")
    if not ok:
        n = _worker_count(config)
        raise pytest.UsageError(
            f"dagz: {', '.join(families)} configured and the run has {n} workers, "
            "but libdagz.so is not "
            f"preloaded into them, so every worker would share one database. Start the run with "
            f"`pytest --dagz-workers {n}` or `LD_PRELOAD=$(dagz shim-path) pytest -n {n}`."
        )


def _export_family_switches() -> None:
    """Children (psql, Python subprocesses) use the shim's declarative policy: make it skip the
    families this worker does not reroute, so a child lands where the test does. The shim reads
    the same variable in this process, so it must be recomputed whenever a conftest (also one
    imported during collection) configures a family."""
    if not _current:
        return
    user = _current[0].stash.setdefault(_USER_DISABLE, os.environ.get(envvars.DISABLE))
    if user is not None and user.strip().lower() in ("1", "true", "all", "yes", "on"):
        return
    off = [
        name
        for name, cfg in (("pg", PG_CONFIG), ("mysql", MYSQL_CONFIG))
        if (cfg.disabled_here() and not AUTO.applies(cfg))
    ]
    parts = [p.strip() for p in (user or "").split(",") if p.strip()] + off
    if parts:
        os.environ[envvars.DISABLE] = ",".join(dict.fromkeys(parts))
    elif envvars.DISABLE in os.environ:
        del os.environ[envvars.DISABLE]


def _is_controller(config: pytest.Config) -> bool:
    """The xdist controller of a distributed run: it runs no tests and is no worker."""
    return not _is_xdist_worker(config) and config.getoption("dist", "no") != "no"


def _keep_everything(engine: int, name: str) -> tuple[int, str]:
    return _shim.CB_KEEP, ""


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Activate before any conftest is imported: a conftest's module-level connect is already
    rerouted in a worker (with worker_init first) and keeps the real name in the controller."""
    ns = early_config.known_args_namespace
    workers = getattr(ns, "dagz_workers", None)
    active = bool(getattr(ns, "dagz", False)) or workers is not None or _shim.PRELOADED
    numprocesses = getattr(ns, "numprocesses", None)
    distributed = bool(numprocesses) or workers is not None or bool(getattr(ns, "tx", None))
    in_worker = envvars.XDIST_WORKER in os.environ
    if active:
        _activate(early_config, controller=distributed and not in_worker)


def _activate(config: pytest.Config, *, controller: bool) -> None:
    """Marks this process active and registers the shim's decision callback (once a run)."""
    if _ACTIVATED in config.stash:
        return
    config.stash[_ACTIVATED] = controller
    _current[:] = [config]
    lease.forget_inherited()  # a DAGZ_WORKER leased by an outer run's worker is not ours
    STATE.active = True
    # The controller of a distributed run is no worker: its connects (conftest code, base
    # migrations) use the real names and never touch gw0's database or run worker_init/prepare.
    STATE.reroute = not controller
    _startup.check_startup_inputs()
    if not _shim.PRELOADED:
        return
    if controller:
        _shim.set_decision_callback(_keep_everything)
    else:
        AUTO.enabled = _auto_requested(config)
        AUTO.reset_rows = _option(config, "dagz_reset", "none") == "rows"
        if AUTO.enabled:
            for engine in CONFIGS:
                if driver_installed(engine):
                    install_driver_hooks(engine)
        _shim.set_decision_callback2(on_decision)
        use_check.install()
        STATE.on_configure.append(_export_family_switches)
        _export_family_switches()
    _bypass.callback_registered = True


def _auto_requested(config: pytest.Config) -> bool:
    """Auto mode asked for: dagz active and no --dagz-no-auto (also before options are parsed)."""
    ns = getattr(config, "known_args_namespace", None)
    if ns is not None and getattr(ns, "dagz_no_auto", False):
        return False
    try:
        return not config.getoption("dagz_no_auto", False)
    except ValueError:
        return True


def _option(config: pytest.Config, name: str, default: object) -> object:
    """An option's value, also before the command line is fully parsed."""
    ns = getattr(config, "known_args_namespace", None)
    if ns is not None and hasattr(ns, name):
        return getattr(ns, name)
    try:
        return config.getoption(name, default)
    except ValueError:
        return default


def _auto_families(config: pytest.Config) -> list[str]:
    """Families that run in auto mode unless a conftest configures them."""
    if not _active(config) or not _auto_requested(config):
        return []
    return [c.family for c in CONFIGS.values() if not c.configured and driver_installed(c.engine)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{_MAIN_MARK}: run this test on worker 0 (gw0) only")
    config.addinivalue_line(
        "markers",
        f"{markers.NODE_MUTEX}: run this test while no other test runs on any worker "
        "(cluster-wide state: roles, prepared transactions, global settings)",
    )
    if config.getoption("dagz_fresh", False):
        # Read by create_worker_init's worker_init; exported before xdist starts the workers.
        os.environ[envvars.FRESH] = "1"
    # Before the activity check: a plain `pytest -n 2` of a project that configured a family
    # must stop too, not share its databases.
    _check_shim_in_workers(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "dagz-xdist")
    # --dagz-shard K/N (and the CI's variables when active): dagz.shard.
    config.pluginmanager.register(shard.ShardPlugin(config, active=_active(config)), "dagz-shard")
    if not _active(config):
        if config.getoption("dagz_trace", None):
            raise pytest.UsageError(
                "dagz: --dagz-trace needs dagz active: add --dagz or --dagz-workers N"
            )
        return
    _activate(config, controller=_is_controller(config))
    if config.pluginmanager.hasplugin("django"):  # pytest-django: migrate once, clone per worker
        from dagz.integ import django as _django

        _django.register(config)
    if (
        not _is_xdist_worker(config)
        and _worker_count(config) > 1
        and envvars.RUN_DIR not in os.environ
    ):
        os.environ[envvars.RUN_DIR] = tempfile.mkdtemp(prefix="dagz-run-")
        config.stash[_OWNED_RUN_DIR] = os.environ[envvars.RUN_DIR]
    _register_otel(config)


def _register_otel(config: pytest.Config) -> None:
    """The OpenTelemetry half (test spans, sub-spans, trace output) is its own plugin object,
    registered only when a trace is asked for or `dagz.otel.configure()` was called: otherwise it
    would cost every test its span bookkeeping for nothing."""
    config.stash[_CONFIGURED] = True
    otel = sys.modules.get("dagz.otel")
    if config.getoption("dagz_trace", None) or (otel is not None and otel.requested()):
        ensure_otel_plugin()


def ensure_otel_plugin() -> None:
    """Registers the OTel half once, in the active run of this process."""
    if not _current or not STATE.active or _CONFIGURED not in _current[0].stash:
        return  # a conftest's configure() before pytest_configure: registered from there
    config = _current[0]
    if config.pluginmanager.get_plugin("dagz-otel") is None:
        from dagz._otel_plugin import OtelPlugin

        config.pluginmanager.register(OtelPlugin(config), "dagz-otel")


def pytest_unconfigure(config: pytest.Config) -> None:
    use_check.end_run()
    lease.release()
    STATE.active = False
    STATE.reroute = False
    AUTO.enabled = False
    AUTO.reset_rows = False
    AUTO.reset()
    reset_rows.close_all()
    _current.clear()
    path = config.stash.get(_OWNED_RUN_DIR, None)
    if path is not None:
        del config.stash[_OWNED_RUN_DIR]
        shutil.rmtree(path, ignore_errors=True)
        if os.environ.get(envvars.RUN_DIR) == path:
            del os.environ[envvars.RUN_DIR]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Families configured by conftests below the root are known only after collection (in the
    workers: the controller never imports those conftests)."""
    config = session.config
    try:
        _check_shim_in_workers(config)
    except pytest.UsageError as exc:
        if not _is_xdist_worker(config):
            raise
        # Raised here, xdist would report an internal error per worker; the controller ends
        # the run with this one line instead (see _XdistHooks.pytest_testnodedown).
        config.workeroutput[_STARTUP_ERROR] = str(exc)
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


_STARTUP_ERROR = "dagz_startup_error"


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _active(config):
        return ["dagz: inactive (use --dagz-workers N, --dagz, or preload libdagz.so)"]
    shim = _shim.preloaded_path() if _shim.PRELOADED else None
    n = _worker_count(config)
    if _is_controller(config):
        ids = "gw0" if n == 1 else f"gw0 … gw{n - 1}"
        where = f"{n} worker{'s' if n != 1 else ''} ({ids}), each with the shim preloaded"
    else:
        where = f"serial run, shim {'preloaded' if shim else 'NOT preloaded'}"
    lines = [f"dagz {_shim.version()}: {where}; families: {_families_text(config)}"]
    if lease.describe():
        lines.append(f"dagz: {lease.describe()}")
    if not _configured_families() and not _auto_families(config):
        lines.append(NOTHING_CONFIGURED)
    return lines


#: Said at start (header) and in the summary when no conftest configured any family.
NOTHING_CONFIGURED = (
    "dagz: rerouting is OFF: no conftest configured a database family (PG_CONFIG, MYSQL_CONFIG), "
    "so every worker uses the same databases; configure one in conftest.py "
    "(README: 'With pytest: a 10-line conftest')"
)


def _families_text(config: pytest.Config) -> str:
    auto = set(_auto_families(config))
    parts = []
    for cfg in CONFIGS.values():
        if cfg.configured:
            parts.append(f"{cfg.family} (conftest)")
        elif cfg.family in auto:
            parts.append(f"{cfg.family} (auto unless a conftest configures it)")
    return ", ".join(parts) or "none configured"


def _auto_line(families: set[str]) -> str:
    return (
        f"dagz: auto mode for {', '.join(sorted(families))}: no conftest configured "
        "them, so each worker got its own copy of every database it connected to "
        "(--dagz-no-auto turns this off)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, Any, Any]:
    if not STATE.active:
        return (yield)
    with STATE.lock:
        STATE.current_test = item.nodeid
        STATE.prepare_errors.clear()
    for cfg in CONFIGS.values():
        cfg.start_test()
    use_check.begin_test()
    marks = {m.name for m in item.iter_markers() if m.name.startswith("dagz_")}
    markers.set_current(marks)
    exclusive = markers.NODE_MUTEX in marks
    try:
        with markers.node_lock(os.environ.get(envvars.RUN_DIR), exclusive):
            return (yield)
    finally:
        with STATE.lock:
            STATE.current_test = None
        lease.after_test(item.nodeid)  # cluster-wide objects that appeared during the test


def _phase() -> Generator[None, Any, Any]:
    """Runs one test phase; a prepare() failure during it becomes the phase's error."""
    try:
        result = yield
    except BaseException:
        err = _take_prepare_error()
        if err is not None:
            raise err from None
        raise
    err = _take_prepare_error()
    if err is not None:
        raise err
    return result


def _take_prepare_error() -> BaseException | None:
    """A prepare() failure, or a guarded call reached without its marker, in this phase."""
    with STATE.lock:
        errs = list(STATE.prepare_errors)
        STATE.prepare_errors.clear()
    if not errs and markers.violations:
        errs = [pytest.fail.Exception(markers.violations[0], pytrace=False)]
        markers.violations.clear()
    return errs[0] if errs else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    if AUTO.reset_rows and STATE.reroute:
        reset_rows.before_test()  # a failure (DagzError) is the test's setup error
    return (yield from _phase())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _phase())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, Any, Any]:
    return (yield from _phase())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """xdist workers record which tests must run on worker 0, for the controller's scheduler."""
    run_dir = os.environ.get(envvars.RUN_DIR)
    if not _is_xdist_worker(config) or not run_dir:
        return
    marked = [item.nodeid for item in items if item.get_closest_marker(_MAIN_MARK) is not None]
    worker = config.workerinput.get("workerid", "gw?")
    path = Path(run_dir) / f"main-worker-tests.{worker}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marked))
    tmp.replace(path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    config = terminalreporter.config
    if not STATE.active and not _active(config):
        return
    lines = list(STATE.summary) + lease.leftover_lines(config.stash.get(_LEFTOVERS, []))
    configured = _configured_families() or config.stash.get(_WORKER_FAMILIES, set())
    auto_used = AUTO.used | config.stash.get(_WORKER_AUTO, set())
    if auto_used and not _is_xdist_worker(config):
        lines.insert(0, _auto_line(auto_used))
        unseen_found = dict(config.stash.get(_UNSEEN, {}))
        for family, base, count in unseen.finish():
            unseen_found[(family, base)] = max(count, unseen_found.get((family, base), 0))
        lines += [unseen.warning(f, b, n) for (f, b), n in sorted(unseen_found.items())]
    elif not configured and not _is_xdist_worker(config) and not _auto_families(config):
        lines.insert(0, NOTHING_CONFIGURED)
    if lines:
        terminalreporter.section("dagz")
        for line in lines:
            terminalreporter.write_line(line)


class _XdistHooks:
    """Hooks that exist only when pytest-xdist is installed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if not STATE.active or config.getoption("dist") not in ("load", "no"):
            return None
        from dagz.scheduler import MainWorkerScheduling

        return MainWorkerScheduling(config, log)

    @pytest.hookimpl(tryfirst=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", None) or {}
        startup = out.get(_STARTUP_ERROR) or _startup.dagz_startup_error(error)
        if startup is not None:
            # A worker that cannot start would be replaced and fail again, up to xdist's
            # restart limit: end the run with the one line that says why.
            pytest.exit(startup, returncode=pytest.ExitCode.USAGE_ERROR)
        for line in out.get("dagz_summary", []):
            if line not in STATE.summary:
                STATE.summary.append(line)
        families = self.config.stash.setdefault(_WORKER_FAMILIES, set())
        families.update(out.get("dagz_families", []))
        left = self.config.stash.setdefault(_LEFTOVERS, [])
        left += [(str(obj), str(during)) for obj, during in out.get("dagz_leftovers", [])]
        self.config.stash.setdefault(_WORKER_AUTO, set()).update(out.get("dagz_auto", []))
        found = self.config.stash.setdefault(_UNSEEN, {})
        for family, base, count in out.get("dagz_unseen", []):
            found[(family, base)] = max(count, found.get((family, base), 0))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A worker takes its worker leases as it starts, when its conftests named the servers
    (else at its first rerouted connect): `dagz.lease`."""
    if STATE.reroute:
        # A failure here (a broken rewrite_db_name, a server down) is reported where it
        # matters, by each connect that needs the lease: it tries again.
        with contextlib.suppress(Exception):
            lease.ensure(None, None)


#: Cluster-wide objects the workers found left at their end: (object, during what).
_LEFTOVERS = pytest.StashKey[list[tuple[str, str]]]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if STATE.reroute and lease.number() is not None:
        try:
            left = lease.leftovers()
        except DagzError as exc:
            left = []
            log(str(exc))
        config.stash.setdefault(_LEFTOVERS, []).extend(left)
        if _is_xdist_worker(config):
            config.workeroutput["dagz_leftovers"] = left
            config.stash[_LEFTOVERS] = []  # the controller reports them, once per object
    if _is_xdist_worker(config):
        config.workeroutput["dagz_summary"] = list(STATE.summary)
        config.workeroutput["dagz_families"] = _configured_families()
        config.workeroutput["dagz_auto"] = sorted(AUTO.used)
        config.workeroutput["dagz_unseen"] = [list(x) for x in unseen.finish()]


__all__ = ["log"]
