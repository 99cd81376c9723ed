"""`PG_CONFIG` / `MYSQL_CONFIG`: the DB-rerouting API of a database family.

The decision and the lifecycle (`worker_init` once per worker and family, `prepare` once per test
and rerouted database) live in `DbConfig.resolve`, which both the shim's decision callback (every
connect made through libpq / the MySQL client, however deep inside a C extension) and the
Python-level driver hooks (PyMySQL, asyncpg, psycopg's pure-Python implementation) call.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagz import _bypass, _callbacks, _shim, fresh, lease
from dagz._state import STATE, log
from dagz.auto import AUTO
from dagz.engines import for_engine
from dagz.engines.base import Outcome
from dagz.engines.warm import fresh_requested, parse_stamp
from dagz.errors import DagzError, EngineError

RewriteFn = Callable[[str, "Session"], str]
ShouldRerouteFn = Callable[[str], bool]
PrepareFn = Callable[[str], None] | None
WorkerInitFn = Callable[[int], None] | None

_REQUIRED = ("rewrite_db_name", "should_reroute", "prepare")


@dataclass(frozen=True)
class Session:
    """What `rewrite_db_name(db_name, session)` gets."""

    worker_num: int
    worker_count: int
    suffix: str

    @property
    def is_main_worker(self) -> bool:
        return self.worker_num == 0


@dataclass(frozen=True)
class _Conf:
    rewrite_db_name: RewriteFn
    should_reroute: ShouldRerouteFn
    prepare: PrepareFn
    worker_init: WorkerInitFn
    single_worker_disable: bool
    main_worker_bypass: bool


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


_MISSING: Any = _Missing()


class DbConfig:
    """The rerouting configuration of one database family (PostgreSQL or MySQL)."""

    def __init__(self, family: str, engine: int, max_len: int) -> None:
        self.family = family
        self.engine = engine
        self.max_len = max_len
        self._conf: _Conf | None = None
        #: Guards the bookkeeping below; never held while user code (a callback) runs.
        self._lock = threading.RLock()
        self._worker_init: _callbacks.Step | None = None
        self._prepared: dict[str, _callbacks.Step] = {}
        self._manual: set[str] = set()
        self._rerouted: set[str] = set()
        self.worker_init_calls = 0
        #: (bases, connect_kwargs) of every `create_worker_init`: the servers and names the
        #: worker leases (`dagz.lease`).
        self._lease_sources: list[tuple[list[str], dict[str, Any]]] = []
        #: Worker databases of this process known to be dagz's (made by `create_worker_init`
        #: here, or whose stamp `_check_own_database` read).
        self._made: set[str] = set()
        #: Names that are per-worker already (Django's test databases, dagz.integ.django): kept.
        self.kept_names: set[str] = set()

    # -- the DAGZ API ---------------------------------------------------------------------------

    def default_rewrite_db_name(self, db_name: str, session: Session) -> str:
        """`{db}_jw{N:02}` (or the policy file's template)."""
        return _shim.policy_render(self.engine, db_name, session.worker_num)

    def default_should_reroute(self, db_name: str) -> bool:
        """Everything but empty names, system databases and names already rerouted."""
        return _shim.policy_decide(self.engine, db_name)[0]

    def configure(
        self,
        rewrite_db_name: RewriteFn = _MISSING,
        should_reroute: ShouldRerouteFn = _MISSING,
        prepare: PrepareFn = _MISSING,
        *,
        worker_init: WorkerInitFn = None,
        single_worker_disable: bool = False,
        main_worker_bypass: bool = False,
    ) -> None:
        """Activates rerouting for this family (call once, at conftest import)."""
        given = {
            "rewrite_db_name": rewrite_db_name,
            "should_reroute": should_reroute,
            "prepare": prepare,
        }
        missing = [k for k in _REQUIRED if given[k] is _MISSING]
        if missing:
            raise TypeError(
                f"{self.family}.configure() missing required argument(s): "
                + ", ".join(repr(m) for m in missing)
            )
        for name in ("rewrite_db_name", "should_reroute"):
            if not callable(given[name]):
                raise TypeError(
                    f"{self.family}.configure(): {name} must be callable, got {given[name]!r}"
                )
        for name, fn in (("prepare", prepare), ("worker_init", worker_init)):
            if fn is not None and not callable(fn):
                raise TypeError(
                    f"{self.family}.configure(): {name} must be callable or None, got {fn!r}"
                )
        with self._lock:
            if self._conf is not None:
                log(
                    f"{self.family}.configure() called again: "
                    "the new configuration replaces the old one"
                )
            self._conf = _Conf(
                rewrite_db_name,
                should_reroute,
                prepare,
                worker_init,
                bool(single_worker_disable),
                bool(main_worker_bypass),
            )
        # Configuring a family hooks all its installed drivers the shim cannot see (asyncpg,
        # PyMySQL, psycopg's Python implementation), not only those the conftest imported.
        from dagz.integ import _pyhooks

        _pyhooks.install_family(self.engine)
        for notify in list(STATE.on_configure):
            notify()

    @property
    def configured(self) -> bool:
        return self._conf is not None

    def active_conf(self) -> _Conf | None:
        """The rules this family reroutes by now: the conftest's (`configure`), or None (SQL
        auto mode decides in `dagz.auto`; the service families override this)."""
        return self._conf

    def get_manual_init_db_name(self, name: str) -> str:
        """The per-worker form of `name`, marked as prepared for the current test only."""
        new = self._target(name)
        if new is None:
            return name
        self._ensure_worker_init()
        new = fresh.renamed(self.engine, name) or new  # worker_init may have used a fresh name
        with self._lock:
            self._manual.add(new)
            self._rerouted.add(new)
        return new

    def get_manual_init_db_url(self, url: str) -> str:
        db = _shim.url_get_db(url)
        if db is None:
            return url
        new = self.get_manual_init_db_name(db)
        return url if new == db else _shim.url_set_db(url, new)

    @contextmanager
    def bypass(self) -> Iterator[None]:
        """No rerouting in this thread / asyncio task while inside (nestable)."""
        with _bypass.bypass():
            yield

    def maybe_reroute(self, name: str) -> str:
        """The name a connect to `name` must use now, running `worker_init`/`prepare` as a real
        connect would."""
        new = self.resolve(name)
        return name if new is None else new

    def maybe_reroute_uri(self, uri: str) -> str:
        db = _shim.url_get_db(uri)
        if db is None:
            return uri
        new = self.resolve(db)
        return uri if new is None else _shim.url_set_db(uri, new)

    def should_reroute(self, name: str) -> bool:
        conf = self._conf
        fn = conf.should_reroute if conf is not None else self.default_should_reroute
        return bool(fn(name))

    def reroute_db(self, name: str) -> str:
        """The rewrite alone, no checks."""
        conf = self._conf
        fn = conf.rewrite_db_name if conf is not None else self.default_rewrite_db_name
        renamed = fresh.renamed(self.engine, name)  # its usual copy could not be rebuilt
        return renamed or self._checked_name(fn(name, self.session()), name)

    def truncate(self, db_name: str, **connect_kwargs: Any) -> list[str]:
        """Empties every user table of `db_name` — only a per-worker database of this worker
        that dagz made (`_check_own_database`)."""
        self._check_own_database(db_name, "truncate", connect_kwargs)
        with _bypass.hard_bypass():
            return for_engine(self.engine).truncate(db_name, **connect_kwargs)

    # -- lifecycle ------------------------------------------------------------------------------

    def session(self) -> Session:
        if STATE.reroute and self._conf is not None and not self.disabled_here():
            lease.ensure(self, None)  # the worker number is leased before any name is made
        return self._session()

    def _session(self) -> Session:
        num, count = _shim.worker()
        return Session(num, count, _shim.policy_suffix(self.engine, num))

    def disabled_here(self, worker: tuple[int, int] | None = None) -> bool:
        """single_worker_disable with one worker, or main_worker_bypass on worker 0."""
        conf = self.active_conf()
        if conf is None:
            return True
        num, count = _shim.worker() if worker is None else worker
        return (conf.single_worker_disable and count <= 1) or (conf.main_worker_bypass and num == 0)

    def name_size(self, name: str) -> int:
        """What the server's name limit (`max_len`) counts: MariaDB/MySQL characters,
        PostgreSQL bytes."""
        return len(name) if self.engine == _shim.ENGINE_MYSQL else len(name.encode())

    def _checked_name(self, new: object, old: str) -> str:
        if not isinstance(new, str):
            raise DagzError(
                f"{self.family} rewrite_db_name({old!r}) returned {type(new).__name__}, not str"
            )
        if not new or "\0" in new:
            raise DagzError(
                f"{self.family} rewrite_db_name({old!r}) returned an unusable name {new!r}"
            )
        size = self.name_size(new)
        unit = "character" if self.engine == _shim.ENGINE_MYSQL else "byte"
        if size > self.max_len:
            raise DagzError(
                f"{self.family} rewrite_db_name({old!r}) returned {new!r}: "
                f"{size} {unit}s, over the {self.max_len}-{unit} limit"
            )
        return new

    def _target(self, name: str) -> str | None:
        """The rerouted name for `name`, or None when this connect is not rerouted."""
        conf = self._conf
        if conf is None or not STATE.reroute or self.disabled_here(_shim.worker()):
            return None
        if not name or name in self.kept_names or fresh.is_fresh(self.engine, name):
            return None
        if not conf.should_reroute(name):
            return None
        lease.ensure(self, name)  # may change the worker number: the session is read after it
        new = fresh.renamed(self.engine, name) or self._checked_name(
            conf.rewrite_db_name(name, self._session()), name
        )
        if new == name:
            return None
        lease.hold(self, new)
        return new

    def resolve(self, name: str, settings: Mapping[str, str] | None = None) -> str | None:
        """Decision + lifecycle for one connect. None: connect to `name` unchanged. `settings`:
        the connect's own (host, port, user, password, …), for auto mode's on-demand build."""
        if _bypass.is_bypassed() or _callbacks.owned_by_callback():
            return None
        if self.active_conf() is None:
            return AUTO.resolve(self, name, settings)
        try:
            new = self._target(name)
        except DagzError:
            raise
        except Exception as exc:
            raise DagzError(
                f"{self.family} rerouting of {name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if new is None:
            return None
        self._ensure_worker_init()
        renamed = fresh.renamed(self.engine, name)  # worker_init may have had to use a fresh name
        if renamed is not None and renamed != new:
            new = renamed
            lease.hold(self, new)
        with self._lock:
            self._rerouted.add(new)
        self._maybe_prepare(new)
        return new

    def _ensure_worker_init(self) -> None:
        step = self._worker_init
        if step is not None and step.done.is_set() and step.error is None:
            return
        with self._lock:
            step = self._worker_init
            first = step is None
            if first:
                step = self._worker_init = _callbacks.Step()
        assert step is not None
        if first:
            self._run_worker_init(step)
        elif not step.done.is_set():
            step.wait()
        if step.error is not None:
            err = step.error
            raise DagzError(
                f"{self.family} worker_init failed earlier: {type(err).__name__}: {err}"
            )

    def _run_worker_init(self, step: _callbacks.Step) -> None:
        conf = self._conf
        try:
            if conf is not None and conf.worker_init is not None:
                num = self.session().worker_num
                self.worker_init_calls += 1
                try:
                    with _callbacks.running(), _bypass.bypass():
                        conf.worker_init(num)
                except BaseException as exc:
                    step.error = exc
                    msg = f"{self.family} worker_init({num}) failed: {type(exc).__name__}: {exc}"
                    log(msg)
                    STATE.summary.append(msg)
                    raise DagzError(msg) from exc
        finally:
            step.done.set()

    def _maybe_prepare(self, new: str) -> None:
        conf = self._conf
        if conf is None:
            return
        with STATE.lock:
            test = STATE.current_test
            if test is None:
                if new not in STATE.announced_outside_tests:
                    STATE.announced_outside_tests.add(new)
                    msg = f"{self.family}: connect outside any test went to {new} (not prepared)"
                    log(msg)
                    STATE.summary.append(msg)
                return
        with self._lock:
            if new in self._manual or conf.prepare is None:
                return
            step = self._prepared.get(new)
            first = step is None
            if first:
                step = self._prepared[new] = _callbacks.Step()
        assert step is not None
        if not first:
            step.wait()  # another thread of this test runs it: connect once it is done
            if step.error is not None:  # never used unprepared, in this test
                raise DagzError(f"{self.family} prepare({new!r}) failed earlier in this test")
            return
        try:
            with _callbacks.running(), _bypass.bypass():
                conf.prepare(new)
        except BaseException as exc:
            step.error = exc
            with STATE.lock:
                STATE.prepare_errors.append(exc)
            raise DagzError(
                f"{self.family} prepare({new!r}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            step.done.set()

    def start_test(self) -> None:
        """Called by the plugin when a test starts: prepared and manual-init marks are per test."""
        with self._lock:
            self._prepared.clear()
            self._manual.clear()

    def _check_own_database(
        self, db_name: str, what: str, connect_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Refuses (`DagzError`, one line) unless `db_name` is a per-worker database of this
        worker that dagz made: its name is this worker's (rerouted here, or with this worker's
        suffix) and — with `connect_kwargs`, the server to ask — `create_worker_init` made it in
        this process, or its stamp (`dagz.engines.warm`) is final and names a base whose worker
        name here is `db_name`. A user database that merely has the suffix (``legacy_jw01``)
        is never touched."""
        session = self.session()
        with self._lock:
            known = db_name in self._rerouted
            made = db_name in self._made
        if not (known or (session.suffix and db_name.endswith(session.suffix))):
            raise DagzError(
                f"{self.family}.{what}({db_name!r}) refused: not a per-worker database of worker "
                f"{session.worker_num} (expected a name ending in {session.suffix!r})"
            )
        if made or connect_kwargs is None:
            return
        with _bypass.hard_bypass():
            exists, comment = for_engine(self.engine).comment_of(db_name, **connect_kwargs)
        stamp = parse_stamp(comment)
        if stamp is not None and stamp.complete and self.reroute_db(stamp.base) == db_name:
            with self._lock:
                self._made.add(db_name)
            return
        why = (
            "it does not exist"
            if not exists
            else "it carries no dagz stamp"
            if stamp is None
            else "its dagz stamp is not final (half-built)"
            if not stamp.complete
            else f"its dagz stamp names base {stamp.base!r}, whose copy here is another name"
        )
        raise DagzError(
            f"{self.family}.{what}({db_name!r}) refused: {why}; dagz {what}s only the worker "
            "databases it made (create_worker_init stamps them)"
        )

    def create_worker_init(
        self, db_names: list[str], *, empty_if_missing: bool = False, **connect_kwargs: Any
    ) -> Callable[[int], None]:
        """A `worker_init` that makes each per-worker database a copy of its base.

        Warm start (`dagz.engines.warm`): a per-worker database left by an earlier run is kept when
        its stamp and its own schema fingerprint match the base's current fingerprint (its rows
        are then reset to the base's); otherwise, or with ``--dagz-fresh`` (``DAGZ_FRESH=1``),
        it is dropped and cloned again. The dagz log says which, per worker and base.

        A base that does not exist is an error naming it (nothing is created), unless
        `empty_if_missing` (for suites that migrate in a session fixture): then the worker
        database is created empty, and the log says so.
        """
        names = list(db_names)
        source = (names, dict(connect_kwargs))
        self._lease_sources.append(source)

        def worker_init(worker_num: int) -> None:
            engine = for_engine(self.engine)
            rebuild = fresh_requested()
            for base in names:

                def provision(target: str, base: str = base) -> Outcome:
                    with _bypass.hard_bypass():
                        return engine.provision(
                            base,
                            target,
                            fresh=rebuild,
                            empty_if_missing=empty_if_missing,
                            **connect_kwargs,
                        )

                # A copy that cannot be rebuilt (a blocker dagz may not remove): a fresh name.
                target, outcome = fresh.provision_or_fresh(
                    self, base, self.reroute_db(base), provision, connect_kwargs
                )
                if outcome.action == "missing":
                    raise EngineError(
                        f'dagz: {self.family} worker_init: base database "{base}" does not exist'
                        f" on {_server(engine.NAME, connect_kwargs)} — create and migrate it"
                        " first, or pass empty_if_missing=True to create_worker_init for suites"
                        " that migrate in a session fixture"
                    )
                with self._lock:
                    self._made.add(target)
                if outcome.action == "empty":
                    what = f'created empty: base "{base}" does not exist (empty_if_missing=True)'
                else:
                    what = f"{outcome.describe()} from {base}"
                line = f"{self.family}: worker {worker_num}: {target} {what}"
                log(line)
                with STATE.lock:
                    STATE.summary.append(line)

        # Where the worker leases its databases (also read through `_lease_sources` when the
        # conftest wraps this function in one of its own).
        worker_init.dagz_lease_source = source  # type: ignore[attr-defined]
        return worker_init


def _server(engine: str, connect_kwargs: dict[str, Any]) -> str:
    """``host:port`` of the server `connect_kwargs` name (from a conninfo too; never more)."""
    dsn = str(connect_kwargs.get("dsn") or connect_kwargs.get("conninfo") or "")
    found = {k: v for k, v in re.findall(r"\b(host|port)\s*=\s*([^\s']+)", dsn)}
    host = connect_kwargs.get("host") or found.get("host") or "the default host"
    port = connect_kwargs.get("port") or found.get("port") or _DEFAULT_PORTS.get(engine, "")
    return f"{host}:{port}" if port else str(host)


#: The servers' default ports, for messages.
_DEFAULT_PORTS = {"postgres": "5432", "mysql": "3306"}


_callbacks.install()
PG_CONFIG = DbConfig("PG_CONFIG", _shim.ENGINE_POSTGRES, 63)
MYSQL_CONFIG = DbConfig("MYSQL_CONFIG", _shim.ENGINE_MYSQL, 64)
CONFIGS = {_shim.ENGINE_POSTGRES: PG_CONFIG, _shim.ENGINE_MYSQL: MYSQL_CONFIG}


def on_decision(
    engine: int, name: str, settings: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """The shim's decision callback (runs inside a connect of any thread; never raises)."""
    cfg = CONFIGS.get(engine)
    if cfg is None or not STATE.reroute or (cfg._conf is None and not AUTO.applies(cfg)):
        return _shim.CB_KEEP, ""
    try:
        new = cfg.resolve(name, settings)
    except DagzError as exc:
        return _shim.CB_ERROR, str(exc)
    except BaseException as exc:
        return _shim.CB_ERROR, f"dagz: {type(exc).__name__}: {exc}"
    if new is None:
        return _shim.CB_KEEP, ""
    return _shim.CB_REROUTE, new
