"""Auto mode (issue 13): with dagz active and no conftest configuring a family, every database a
worker connects to gets a per-worker copy, made on demand.

Per family, explicit wins: a family configured by a conftest (`configure()`) keeps exactly its
DAGZ semantics; an unconfigured family with an installed driver runs in auto mode, whose rule is
`default_should_reroute` / `default_rewrite_db_name` with no `prepare` (serial-faithful: each
worker's database evolves as the one database of a serial run does). The first rerouted connect
of a worker to base `B` builds `B_jwNN` from `B` with the engine's clone and warm start, using the
settings of that very connect (host, port, user, password, TLS settings), held in memory only.
A base that does not exist is an error naming it. As in the configured path, the worker
leases its worker number before naming its first worker database (`dagz.lease`, on the server
of that connect) and holds each worker database it uses, so concurrent runs never share one.
Names pytest-django makes per xdist worker (`test_<name>_gwN`) are left alone.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagz import _bypass, _callbacks, _shim, fresh, lease
from dagz._state import STATE, log
from dagz.engines import for_engine
from dagz.engines.warm import fresh_requested
from dagz.errors import DagzError

if TYPE_CHECKING:
    from dagz.config import DbConfig

#: The drivers of each family whose presence turns its auto mode on (any one of them).
DRIVERS: dict[int, tuple[str, ...]] = {
    _shim.ENGINE_POSTGRES: ("psycopg", "psycopg2", "asyncpg", "adbc_driver_postgresql"),
    _shim.ENGINE_MYSQL: ("MySQLdb", "pymysql"),
    # `dagz.families`: REDIS_CONFIG (101) and RABBITMQ_CONFIG (102), rerouted by Python hooks.
    101: ("redis",),
    102: ("pika", "amqp", "aiormq"),
}

#: Connect settings the engines use, per family (other libpq keywords pass through as well).
_MYSQL_KEYS = ("host", "user", "passwd", "password", "port", "unix_socket")


@functools.cache
def driver_installed(engine: int) -> bool:
    """Whether a driver of the family is importable (without importing it; asked once)."""
    for name in DRIVERS.get(engine, ()):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def connect_kwargs(engine: int, settings: Mapping[str, str]) -> dict[str, object]:
    """The engine's connect arguments for the settings of a connect (no database name)."""
    if engine == _shim.ENGINE_MYSQL:
        out: dict[str, object] = {k: v for k, v in settings.items() if k in _MYSQL_KEYS}
        if "port" in out:
            try:
                out["port"] = int(str(out["port"]))
            except ValueError:
                del out["port"]
        return out
    return {k: v for k, v in settings.items() if k not in ("dbname", "database") and v != ""}


@dataclass
class _Built:
    """One base's worker database in this worker: built once (or failed once)."""

    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    kwargs: dict[str, object] = field(default_factory=dict)


class AutoMode:
    """The auto mode of this process (a worker, or a serial run)."""

    def __init__(self) -> None:
        #: Set by the plugin: dagz active and no --dagz-no-auto.
        self.enabled = False
        #: --dagz-reset=rows: the rows the previous test changed are reset before each test.
        self.reset_rows = False
        self._lock = threading.Lock()
        self._built: dict[tuple[int, str, str], _Built] = {}
        #: Families that rerouted in auto mode in this process (for the summary).
        self.used: set[str] = set()
        #: Called after a rerouted resolve with (config, base, target, kwargs): per-test work.
        self.after_resolve: list[Callable[[DbConfig, str, str, dict[str, object]], None]] = []

    def applies(self, cfg: DbConfig) -> bool:
        """Whether `cfg`'s connects are decided by auto mode in this process now."""
        return (
            self.enabled and STATE.reroute and not cfg.configured and driver_installed(cfg.engine)
        )

    def families(self, configs: Mapping[int, DbConfig]) -> list[str]:
        """The unconfigured families auto mode covers (a driver installed)."""
        if not self.enabled:
            return []
        return [
            c.family for c in configs.values() if not c.configured and driver_installed(c.engine)
        ]

    def target(
        self, cfg: DbConfig, name: str, settings: Mapping[str, str] | None = None
    ) -> str | None:
        """The worker database for `name`, or None when auto mode leaves it alone. As
        `DbConfig._target`: the worker number is leased first (`dagz.lease`, on the server of
        this connect's `settings`), then the name made for it is held."""
        if (
            not name
            or name in cfg.kept_names  # made per worker by another tool (dagz.integ.django)
            or fresh.is_fresh(cfg.engine, name)
            # the shim's policy: also leaves `…_gwN` (pytest-django's per-worker databases)
            or not cfg.default_should_reroute(name)
        ):
            return None
        if settings is not None:
            lease.note_auto_connect(cfg, name, connect_kwargs(cfg.engine, settings))
        lease.ensure(cfg, name)  # may change the worker number: the session is read after it
        renamed = fresh.renamed(cfg.engine, name)  # its usual copy could not be rebuilt
        new = renamed or cfg._checked_name(cfg.default_rewrite_db_name(name, cfg.session()), name)
        if new == name:
            return None
        lease.hold(cfg, new)
        return new

    def resolve(self, cfg: DbConfig, name: str, settings: Mapping[str, str] | None) -> str | None:
        """Decision and on-demand build for one connect of an unconfigured family."""
        if not self.applies(cfg):
            return None
        try:
            new = self.target(cfg, name, settings or {})
        except DagzError:
            raise
        except Exception as exc:
            raise DagzError(
                f"{cfg.family} rerouting of {name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if new is None:
            return None
        kwargs = self._ensure_built(cfg, name, new, settings or {})
        new = fresh.renamed(cfg.engine, name) or new  # the build may have needed a fresh name
        with cfg._lock:
            cfg._rerouted.add(new)
        self.used.add(cfg.family)
        for hook in list(self.after_resolve):
            hook(cfg, name, new, kwargs)
        return new

    def _ensure_built(
        self, cfg: DbConfig, base: str, target: str, settings: Mapping[str, str]
    ) -> dict[str, object]:
        # The target too: a worker number moved by a lease (`dagz.lease`) is another copy.
        key = (cfg.engine, base, target)
        with self._lock:
            built = self._built.get(key)
            first = built is None
            if built is None:
                built = self._built[key] = _Built()
        if first:
            try:
                built.kwargs = connect_kwargs(cfg.engine, settings)
                self._build(cfg, base, target, built)
            finally:
                built.done.set()
        elif not built.done.is_set():
            built.done.wait()
        if built.error is not None:
            raise DagzError(built.error)
        return built.kwargs

    def _build(self, cfg: DbConfig, base: str, target: str, built: _Built) -> None:
        num = cfg.session().worker_num
        engine = for_engine(cfg.engine)
        try:
            with _callbacks.running(), _bypass.bypass(), _bypass.hard_bypass():
                target, outcome = fresh.provision_or_fresh(
                    cfg,
                    base,
                    target,
                    lambda t: engine.provision(base, t, fresh=fresh_requested(), **built.kwargs),
                    built.kwargs,
                )
                if outcome.action == "empty":
                    engine.drop(target, **built.kwargs)  # dagz made it just now
                    raise DagzError(
                        f"dagz: auto mode: database {base!r} does not exist, so worker {num} "
                        f"gets no copy of it ({target!r}): create {base!r} before the tests "
                        "connect to it, or list it under `skip` in a DAGZ_POLICY file"
                    )
                if self.reset_rows:
                    from dagz import reset_rows

                    reset_rows.manage(cfg.engine, base, target, built.kwargs)
        except BaseException as exc:
            text = str(exc) if isinstance(exc, DagzError) else f"{type(exc).__name__}: {exc}"
            if not text.startswith("dagz:"):
                text = f"dagz: {text}"
            built.error = f"{text} ({cfg.family}, auto mode)"
            log(built.error)
            with STATE.lock:
                STATE.summary.append(built.error)
            return
        line = f"{cfg.family}: worker {num}: {target} {outcome.describe()} from {base} (auto mode)"
        log(line)
        with STATE.lock:
            STATE.summary.append(line)
        from dagz import unseen

        unseen.watch(cfg.family, cfg.engine, base, built.kwargs)

    def reset(self) -> None:
        """Forgets what was built (a new run in the same process)."""
        with self._lock:
            self._built.clear()
        self.used.clear()


AUTO = AutoMode()

#: Python-level driver hooks (the drivers the shim cannot see), by the module that triggers them.
_HOOKED_MODULES: dict[int, tuple[tuple[str, str], ...]] = {
    _shim.ENGINE_POSTGRES: (
        ("psycopg.pq.pq_ctypes", "install_psycopg_python"),
        ("asyncpg.connect_utils", "install_asyncpg"),
        ("adbc_driver_postgresql", "install_adbc_postgresql"),
    ),
    _shim.ENGINE_MYSQL: (("pymysql.connections", "install_pymysql"),),
    # Redis and RabbitMQ: the hooks of `dagz.integ.redis` / `.pika` / `.kombu` / `.aio_pika`,
    # installed right after the driver's package is imported (its modules are imported by then).
    101: (("redis", "dagz.integ.redis:install"),),
    102: (
        ("pika", "dagz.integ.pika:install"),
        ("amqp", "dagz.integ.kombu:install"),
        ("aiormq", "dagz.integ.aio_pika:install"),
    ),
}
#: module name -> installer name, for modules not imported yet.
_PENDING: dict[str, str] = {}


def _install(installer: str) -> None:
    """`installer`: a function of `dagz.integ._pyhooks`, or ``module:function``."""
    module, _, name = installer.rpartition(":")
    if not module:
        module = "dagz.integ._pyhooks"
    install = getattr(importlib.import_module(module), name, None)
    # None: `module` is being imported right now (`from dagz.integ.redis import REDIS_CONFIG`
    # imports redis first): it installs its hooks itself when its import ends.
    if install is not None:
        install()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a driver hook right after its module is imported: importing every driver up front
    would cost each worker up to seconds (psycopg's ctypes implementation, asyncpg)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        installer = _PENDING.get(fullname)
        if installer is None:
            return None
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            if _PENDING.pop(fullname, None) is not None:
                _install(installer)

        loader.exec_module = exec_module
        return spec


_FINDER = _AfterImport()


def install_driver_hooks(engine: int) -> None:
    """The family's Python-level driver hooks: now for the drivers already imported, at their
    import for the others (a driver not installed is never imported)."""
    for module, installer in _HOOKED_MODULES.get(engine, ()):
        if module in sys.modules:
            _install(installer)
        else:
            _PENDING[module] = installer
    if _PENDING and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def settings_of(**given: Any) -> dict[str, str]:
    """Connect settings from a Python driver's arguments (None and empty values dropped)."""
    return {k: str(v) for k, v in given.items() if v is not None and v != ""}
