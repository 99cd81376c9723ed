"""Worker leases: runs that share a database server never share a worker database.

A worker process holds a *lease* on every worker database it uses, for as long as it runs:

* on the server, when dagz knows it (the connection parameters a family gave
  `create_worker_init`; in auto mode, `dagz.auto`, the settings of the worker's connects,
  `note_auto_connect`, held in memory only): PostgreSQL a session-level advisory lock
  (``pg_try_advisory_lock(key)``, `pg_key`: the first 8 bytes of ``sha256("dagz worker " +
  name)``), MariaDB/MySQL ``GET_LOCK('dagz:worker:<name>', 0)`` (`mysql_lock_name`), each on
  one connection per server that the worker keeps open; the server ends the lease when that
  connection ends, so a killed worker leaves none behind;
* Redis and RabbitMQ (`dagz.lease.service`), on the server of the connect being resolved: a
  connection per leased index named ``dagz-lease:i<index>:p<pid>`` (``CLIENT SETNAME``, checked
  with ``CLIENT LIST``), an exclusive queue ``dagz.lease`` in each leased vhost; also ended by
  the server with the worker's connections;
* otherwise (a family whose `worker_init` dagz did not make, so the server is unknown) an
  ``flock`` on a file per database in ``/tmp/dagz-leases`` (``DAGZ_LEASE_DIR``; sticky and
  world-writable, made 0o1777): machine-local only, which the log says. A lock file is removed
  when its lease ends; the directory stays, and a file whose holder was killed stays until the
  next process that takes a lease file there removes it (`_sweep`: free files of its user).

The lease is taken before the worker computes its first rerouted name (the first
`DbConfig.resolve` or `DbConfig.session` of any family, or worker start in the plugin when the
servers are known). xdist worker ``gwK`` of a run with ``n`` workers tries worker number ``K``:
its databases (the rewrite of every base its families name, for that number) must all be free
on every server. When one is leased by another run it tries ``K + n``, ``K + 2n`` … — never
waiting, never sharing — and exports the number it got as ``DAGZ_WORKER`` (the shim reads it at
every connect, children of a test inherit it), with ``DAGZ_WORKER_LEASE=<pid>`` so that a nested
run does not mistake it for its own. A worker database first met later (a base no
`create_worker_init` named) is leased when it is first rerouted; leased by another run, the
connect fails with a ``dagz:`` error.

The key is the worker database's name, not the number alone: runs of unrelated projects (other
base names) on one server keep their numbers.

`in_use_elsewhere` is the guard of everything that drops or rebuilds a worker database (the warm
start's rebuild, ``dagz db drop``): a database whose lease another live process holds is left
alone.

Cluster-wide objects: at lease time each server's roles and prepared transactions (PostgreSQL)
or users (MariaDB) are listed; after each test a one-row signature query tells whether they
changed (then they are listed again, and what appeared is attributed to that test); at the end
of the worker's session what is still there and was not at the start is reported
(`leftovers`), naming the test(s) during which it appeared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagz import _shim, envvars
from dagz._state import STATE, log
from dagz.errors import DagzError, EngineError
from dagz.lease.files import _file_free, _Files, lease_dir
from dagz.lease.server import _engine_name, _Server, _server_id, mysql_lock_name, pg_key
from dagz.lease.service import AmqpLease, RedisLease, Unsupported, held_elsewhere

if TYPE_CHECKING:
    from dagz.config import DbConfig

#: Worker numbers tried (K, K + n, …) before giving up.
MAX_ATTEMPTS = 64

_ENGINES = {_shim.ENGINE_POSTGRES: "postgres", _shim.ENGINE_MYSQL: "mysql"}
#: The families the shim does not see (`dagz.families`), by their `CONFIGS` ids.
_SERVICES = {101: "redis", 102: "rabbitmq"}


# --------------------------------------------------------------------------------------------
# the process's leases


class _Leases:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.local = threading.local()
        self.number: int | None = None
        self.origin = 0
        self.count = 1
        #: (family, worker database) leased by this process.
        self.names: set[tuple[str, str]] = set()
        self.servers: dict[str, _Server] = {}
        self.files = _Files()
        self.fallback_said: set[str] = set()
        #: Service servers (`_service_of` keys) that refused leases, and why.
        self.unsupported: dict[str, str] = {}
        self.exported = False
        #: The summary's words when this worker took another number than its own.
        self.moved_line: str | None = None
        #: object text → tests (or "outside tests") during which it appeared.
        self.appeared: dict[tuple[str, str], list[str]] = {}
        #: Auto mode (`dagz.auto`): per engine, (bases, settings) of the servers connected to.
        self.auto_sources: dict[int, list[tuple[list[str], dict[str, Any]]]] = {}

    def sources(self, cfg: DbConfig) -> list[tuple[list[str], dict[str, Any]]]:
        """(bases, connect settings) per server: `create_worker_init`'s, and in auto mode the
        settings of the connects seen (`note_auto_connect`; held in memory only)."""
        return list(getattr(cfg, "_lease_sources", [])) + list(
            self.auto_sources.get(cfg.engine, [])
        )

    def servers_of(self, cfg: DbConfig) -> list[Any]:
        if cfg.engine in _SERVICES:
            return self._service_of(cfg)
        engine = _ENGINES[cfg.engine]
        out: list[Any] = []
        for _names, kwargs in self.sources(cfg):
            key = _server_id(engine, kwargs)
            server = self.servers.get(key)
            if server is None:
                server = self.servers[key] = _Server(engine, kwargs)
            if server not in out:
                out.append(server)
        return out

    def _service_of(self, cfg: DbConfig) -> list[Any]:
        """The Redis server / RabbitMQ broker of the connect being resolved (none when it
        cannot hold leases: lease files then)."""
        kw = cfg.endpoint_kwargs()  # type: ignore[attr-defined]
        key = f"{_SERVICES[cfg.engine]} {cfg.address(kw)}"  # type: ignore[attr-defined]
        if key in self.unsupported:
            return []
        server = self.servers.get(key)
        if server is None:
            if cfg.engine == 101:
                server = RedisLease(kw)
            else:
                server = AmqpLease(kw, cfg._admin_kwargs(kw), cfg)  # type: ignore[attr-defined]
            self.servers[key] = server
        return [server]

    def take(self, cfg: DbConfig, name: str) -> bool:
        """Leases `name` (a worker database of `cfg`'s family) on each server of the family (a
        lease file when none is known); False, with nothing kept, when any says it is taken."""
        engine = _family_engine(cfg)
        servers = self.servers_of(cfg)
        got: list[Callable[[], None]] = []
        ok = True
        if servers:
            for server in servers:
                had = name in server.held
                try:
                    taken = server.try_take(name)
                except Unsupported as exc:
                    self._unsupported(cfg, server, str(exc))
                    return self.take(cfg, name) if not got else False
                if not taken:
                    ok = False
                    break
                if not had:
                    got.append(lambda s=server: s.give_back(name))
        else:
            self._say_fallback(cfg)
            fname = _file_name(cfg, name)
            had = (engine, fname) in self.files.held
            ok = self.files.try_take(engine, fname)
            if ok and not had:
                got.append(lambda: self.files.give_back(engine, fname))
        if not ok:
            for undo in got:
                undo()
        return ok

    def _unsupported(self, cfg: DbConfig, server: Any, why: str) -> None:
        key = next(k for k, s in self.servers.items() if s is server)
        self.servers.pop(key)
        self.unsupported[key] = why

    def _say_fallback(self, cfg: DbConfig) -> None:
        if cfg.family in self.fallback_said:
            return
        self.fallback_said.add(cfg.family)
        why = next(iter(self.unsupported.values()), "") if cfg.engine in _SERVICES else ""
        reason = (
            f"its server cannot hold them ({why})"
            if why
            else "its worker_init is not dagz's create_worker_init, so dagz does not know its "
            "server"
        )
        line = (
            f"{cfg.family}: {reason}: worker leases are lock files in {lease_dir()} (this "
            "machine only; runs on other machines sharing the server are not kept apart)"
        )
        log(line)
        with STATE.lock:
            STATE.summary.append(line)


_LEASES = _Leases()


def _family_engine(cfg: DbConfig) -> str:
    return _SERVICES.get(cfg.engine) or _ENGINES[cfg.engine]


def _file_name(cfg: DbConfig, name: str) -> str:
    """What a lease file is keyed on: the name, and for Redis/RabbitMQ also the server (an
    index number alone would be the same on every server)."""
    if cfg.engine in _SERVICES:
        return f"{cfg.address(cfg.endpoint_kwargs())} {name}"  # type: ignore[attr-defined]
    return name


def forget_inherited() -> None:
    """A `DAGZ_WORKER` exported by another process's lease (a run started from inside a test of
    a dagz worker) is not this process's: drop it, so this run chooses its own numbers; and
    that worker's fresh names (`DAGZ_RENAME`, dagz.fresh), which would send this run's
    children to the outer run's databases."""
    owner = os.environ.get(envvars.WORKER_LEASE)
    if owner is not None and owner != str(os.getpid()) and not _LEASES.exported:
        os.environ.pop(envvars.WORKER_LEASE, None)
        os.environ.pop(envvars.WORKER, None)
        os.environ.pop(envvars.RENAME, None)


def number() -> int | None:
    """The worker number this process leased (None: none yet)."""
    return _LEASES.number


def describe() -> str | None:
    """``gw1 → worker 5 (worker 1 is leased by another run)``-style words, once leased."""
    return _LEASES.moved_line


def note_auto_connect(cfg: DbConfig, base: str, settings: dict[str, Any]) -> None:
    """Auto mode (`dagz.auto`): a connect of `cfg`'s family to `base` on the server of
    `settings` (the engine's connect arguments), so that `_plan` leases its worker database
    there. Held in memory only."""
    sid = _server_id(_ENGINES[cfg.engine], settings)
    with _LEASES.lock:
        sources = _LEASES.auto_sources.setdefault(cfg.engine, [])
        for names, kwargs in sources:
            if _server_id(_ENGINES[cfg.engine], kwargs) == sid:
                if base not in names:
                    names.append(base)
                return
        sources.append(([base], dict(settings)))


def _rewrite(cfg: DbConfig) -> Callable[[str, Any], object] | None:
    """The rule that names `cfg`'s worker databases in this process: the conftest's (or the
    service families' auto rule), SQL auto mode's `default_rewrite_db_name`, or None."""
    conf = cfg.active_conf()
    if conf is not None:
        return None if cfg.disabled_here() else conf.rewrite_db_name
    from dagz.auto import AUTO

    return cfg.default_rewrite_db_name if AUTO.applies(cfg) else None


def _targets(cfg: DbConfig, bases: list[str], num: int, count: int) -> list[str]:
    from dagz.config import Session

    rewrite = _rewrite(cfg)
    if rewrite is None:
        return []
    # Families the shim does not know (Redis, RabbitMQ) name workers `_jwNN` themselves.
    suffix = _shim.policy_suffix(cfg.engine, num) if cfg.engine in _ENGINES else f"_jw{num:02}"
    session = Session(num, count, suffix)
    names = []
    for base in bases:
        new = cfg._checked_name(rewrite(base, session), base)
        if new != base and new not in names:
            names.append(new)
            if cfg.engine in _SERVICES:
                cfg._logical[new] = base  # type: ignore[attr-defined]
    return names


def ensure(cfg: DbConfig | None, name: str | None) -> None:
    """Takes this worker's leases once, before its first rerouted name is computed (`name`: the
    database a connect of `cfg`'s family asks for, when a connect triggers it)."""
    leases = _LEASES
    if leases.number is not None or getattr(leases.local, "busy", False):
        return
    with leases.lock:
        if leases.number is not None:
            return
        leases.local.busy = True
        try:
            _choose(cfg, name)
        finally:
            leases.local.busy = False


def _plan(first: DbConfig | None, name: str | None) -> list[tuple[DbConfig, list[str]]]:
    """(family, its base names) for every family that reroutes in this process."""
    from dagz.config import CONFIGS

    plan = []
    for cfg in CONFIGS.values():
        if _rewrite(cfg) is None:
            continue
        bases: list[str] = []
        for names, _kw in _LEASES.sources(cfg):
            bases += [b for b in names if b not in bases]
        if cfg is first and name and name not in bases:
            bases.append(name)
        if bases:
            plan.append((cfg, bases))
    return plan


def _choose(first: DbConfig | None, name: str | None) -> None:
    leases = _LEASES
    forget_inherited()
    plan = _plan(first, name)
    if not plan:
        return  # nothing known to lease yet: the first rerouted connect does it
    origin, count = _shim.worker()
    count = max(count, 1)
    blocked: list[int] = []
    for attempt in range(MAX_ATTEMPTS):
        num = origin + attempt * count
        taken: list[tuple[DbConfig, str]] = []
        free = True
        for cfg, bases in plan:
            for target in _targets(cfg, bases, num, count):
                if not leases.take(cfg, target):
                    free = False
                    break
                taken.append((cfg, target))
            if not free:
                break
        if free:
            _settle(num, origin, count, taken, blocked)
            return
        for cfg, target in taken:
            _give_back(cfg, target)
        blocked.append(num)
    raise DagzError(
        f"dagz: no free worker number for this worker: {', '.join(map(str, blocked))} are all "
        "leased by other live runs on the same server(s); end some of them, or use fewer "
        "workers"
    )


def _give_back(cfg: DbConfig, target: str) -> None:
    servers = _LEASES.servers_of(cfg)
    for server in servers:
        server.give_back(target)
    if not servers:
        _LEASES.files.give_back(_family_engine(cfg), _file_name(cfg, target))


def _settle(
    num: int, origin: int, count: int, taken: list[tuple[DbConfig, str]], blocked: list[int]
) -> None:
    leases = _LEASES
    leases.number, leases.origin, leases.count = num, origin, count
    leases.names |= {(cfg.family, target) for cfg, target in taken}
    os.environ[envvars.WORKER] = str(num)
    os.environ[envvars.WORKER_LEASE] = str(os.getpid())
    leases.exported = True
    who = os.environ.get(envvars.XDIST_WORKER) or "this run"
    where = ", ".join(sorted({s.label for s in leases.servers.values() if s.held})) or "files"
    if blocked:
        them = (
            f"worker {blocked[0]} is leased by another run"
            if len(blocked) == 1
            else f"workers {', '.join(map(str, blocked))} are leased by other runs"
        )
        line = f"{who} → worker {num} ({them})"
        leases.moved_line = line
        with STATE.lock:
            STATE.summary.append(line)
        log(f"{line}; DAGZ_WORKER={num}")
    else:
        log(f"{who}: worker {num} leased ({where})")
    for server in leases.servers.values():
        if server.held:
            server.refresh()


def hold(cfg: DbConfig, target: str) -> None:
    """Leases `target` (a rerouted name just computed) if this process does not hold it yet;
    another live run holding it fails the connect."""
    leases = _LEASES
    if (cfg.family, target) in leases.names or leases.number is None:
        return
    with leases.lock:
        if (cfg.family, target) in leases.names:
            return
        if not leases.take(cfg, target):
            hint = (
                "Name every base in create_worker_init([...]) so that the worker number is "
                "chosen for all of them at once."
                if cfg.engine not in _SERVICES and cfg.active_conf() is not None
                else "In auto mode the number is chosen for the databases a worker connects to "
                "first, and another run holds this later one's copy: run them one at a time."
                if cfg.engine not in _SERVICES
                else "The other run uses this number for this family only; run it with the "
                "other families too, or one run at a time."
            )
            raise DagzError(
                f"dagz: {cfg.family}: {target} is in use by a live run (another process holds "
                f"its worker lease); this worker is worker {leases.number} already, for the "
                f"databases it met first. {hint}"
            )
        leases.names.add((cfg.family, target))


def held(engine: int | str, name: str) -> bool:
    """Whether this process holds the lease on worker database `name` of `engine`."""
    eng = _engine_name(engine)
    with _LEASES.lock:
        return any(s.engine == eng and name in s.held for s in _LEASES.servers.values()) or (
            (eng, name) in _LEASES.files.held
        )


def in_use_elsewhere(engine: int | str, name: str, connect_kwargs: dict[str, Any]) -> bool:
    """Whether another live process holds the lease on worker database `name` (on the server of
    `connect_kwargs`, or in a lease file of this machine). Dropping or rebuilding it must then
    wait for that run to end."""
    eng = _engine_name(engine)
    if held(eng, name):
        return False
    if eng in _SERVICES.values():
        return held_elsewhere(eng, name, connect_kwargs)
    if not _file_free(eng, name):
        return True
    from dagz._bypass import hard_bypass
    from dagz.engines import for_engine
    from dagz.engines.base import close_quietly

    with hard_bypass():
        if eng == "mysql":
            conn = for_engine(eng).connect(None, **connect_kwargs)
        else:
            conn = _Server(eng, connect_kwargs)._connect()
        try:
            cur = conn.cursor()
            if eng == "mysql":
                cur.execute("SELECT IS_FREE_LOCK(%s)", (mysql_lock_name(name),))
                free = cur.fetchall()[0][0] in (1, True)
            else:
                key = pg_key(name)
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                free = bool(cur.fetchall()[0][0])
                if free:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    cur.fetchall()
            cur.close()
        finally:
            close_quietly(conn)
    return not free


def refuse_if_in_use(engine: int | str, name: str, what: str, connect_kwargs: Any) -> None:
    """The guard before dropping/rebuilding `name`: an `EngineError` when another live run
    holds its lease."""
    if in_use_elsewhere(engine, name, dict(connect_kwargs)):
        raise EngineError(
            f"dagz: {what}: {name!r} is in use by a live run (another process holds its worker "
            "lease): left alone"
        )


# --------------------------------------------------------------------------------------------
# cluster-wide objects


def after_test(nodeid: str) -> None:
    """Notes the cluster-wide objects that appeared during test `nodeid` (one signature query
    per server; a listing only when it changed)."""
    _look(nodeid)


def _look(during: str) -> None:
    leases = _LEASES
    if leases.number is None:
        return
    with leases.lock:
        for server in leases.servers.values():
            if not server.held:
                continue
            try:
                appeared = server.refresh()
            except DagzError as exc:
                log(str(exc))
                continue
            for obj in appeared:
                leases.appeared.setdefault((server.label, obj), []).append(during)


def leftovers() -> list[tuple[str, str]]:
    """(object on its server, during what it appeared) for every cluster-wide object that is
    there now and was not when the lease was taken."""
    leases = _LEASES
    worker = os.environ.get(envvars.XDIST_WORKER) or "this run"
    _look(f"{worker}, outside any test")
    out = []
    with leases.lock:
        for server in leases.servers.values():
            if server.start is None:
                continue
            family = "PG_CONFIG" if server.engine == "postgres" else "MYSQL_CONFIG"
            for obj in sorted(server.objects - server.start):
                during = leases.appeared.get((server.label, obj), [f"{worker}, outside any test"])
                tests = [d if "outside" in d else f"{d} ({worker})" for d in during]
                out.append((f"{family}: {obj} on {server.label}", "; ".join(tests)))
    return out


def leftover_lines(items: list[tuple[str, str]]) -> list[str]:
    """One summary line per object (the workers' attributions joined)."""
    merged: dict[str, list[str]] = {}
    for obj, during in items:
        whos = merged.setdefault(obj, [])
        for part in during.split("; "):
            if part not in whos:
                whos.append(part)
    lines = []
    for obj, whos in merged.items():
        tests = [w for w in whos if "outside" not in w]
        by = "left by a test" if tests else "left by this run"
        lines.append(
            f"{obj} {by} (cluster-wide, not per database): appeared during {', '.join(whos)}; "
            "drop it in the test, or mark the test @pytest.mark.dagz_node_mutex"
        )
    return lines


def release() -> None:
    """Ends every lease of this process (at the end of its session)."""
    leases = _LEASES
    with leases.lock:
        for server in leases.servers.values():
            server.close()
        leases.servers.clear()
        leases.files.close()
        leases.names.clear()
        leases.appeared.clear()
        leases.auto_sources.clear()
        if leases.exported and os.environ.get(envvars.WORKER_LEASE) == str(os.getpid()):
            os.environ.pop(envvars.WORKER_LEASE, None)
            os.environ.pop(envvars.WORKER, None)
        leases.exported = False
        leases.number = None
        leases.moved_line = None
