"""RabbitMQ as a dagz engine: the virtual hosts dagz makes for workers.

A worker vhost is created through the management HTTP API (``http://HOST:15672``, the connecting
user's credentials) with the tag ``dagz`` and a description naming its application vhost and
worker; when the API cannot be reached, ``rabbitmqctl`` on this machine does the same. A vhost
without the ``dagz`` tag is never changed or deleted.

Emptying a vhost (`truncate`, the body of `prepare`) deletes its queues (not the worker's lease
queue ``dagz.lease``) and the exchanges declared in it (not the default and ``amq.*`` ones):
connections stay open. Deleting and recreating the vhost is the other way (`recreate`);
bench/redis_hook_cost.py measures both.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from dagz.engines.base import Owned, Stamp, redact
from dagz.errors import EngineError

NAME = "rabbitmq"
TAG = "dagz"
MANAGEMENT_PORT = 15672
#: The exclusive queue that holds a worker vhost's lease (`dagz.lease.service`).
LEASE_QUEUE = "dagz.lease"
_LOCAL = ("127.0.0.1", "localhost", "::1", "")


class _Api:
    """The management API of one server, as one user."""

    def __init__(self, kw: dict[str, Any]) -> None:
        self.kw = kw
        host = kw.get("host") or "127.0.0.1"
        port = kw.get("management_port") or MANAGEMENT_PORT
        self.base = kw.get("management_url") or f"http://{host}:{port}"
        self.user = str(kw.get("user") or kw.get("username") or "guest")
        password = str(kw.get("password") if kw.get("password") is not None else "guest")
        token = base64.b64encode(f"{self.user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "content-type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=self.headers
        )
        with urllib.request.urlopen(req, timeout=15) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _why(exc: BaseException, api: _Api) -> str:
    """The missing permission or plugin, in words."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 401:
            return (
                f"user {api.user!r} cannot log into the RabbitMQ management API at {api.base} "
                "(wrong password, or the user lacks the 'management' tag)"
            )
        if exc.code == 403:
            return (
                f"user {api.user!r} may not create virtual hosts: it needs the 'administrator' "
                f"tag (rabbitmqctl set_user_tags {api.user} administrator)"
            )
        return f"the management API at {api.base} answered HTTP {exc.code} {exc.reason}"
    return (
        f"the RabbitMQ management API at {api.base} is not reachable ({exc}); enable it with "
        "`rabbitmq-plugins enable rabbitmq_management`"
    )


def _describe(logical: str, worker: int) -> str:
    return f"dagz: worker {worker} copy of vhost {logical!r}; created {_now()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ensure_vhost(kw: dict[str, Any], vhost: str, logical: str, worker: int) -> bool:
    """The worker vhost exists, tagged dagz, and the user may use it. True when it existed
    (an earlier run's: the caller empties it). Refused when a vhost of that name is not dagz's."""
    api = _Api(kw)
    try:
        return _ensure_api(api, vhost, logical, worker)
    except urllib.error.HTTPError as exc:
        if exc.code not in (401, 403):
            raise EngineError(
                f"creating RabbitMQ vhost {vhost!r} failed: {_why(exc, api)}"
            ) from None
        api_error = _why(exc, api)
    except (urllib.error.URLError, OSError) as exc:
        api_error = _why(exc, api)
    return _ensure_ctl(kw, vhost, logical, worker, api_error)


def _ensure_api(api: _Api, vhost: str, logical: str, worker: int) -> bool:
    try:
        info = api.call("GET", f"/api/vhosts/{_q(vhost)}")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        info = None
    if info is not None:
        _check_tagged(vhost, info.get("tags") or info.get("metadata", {}).get("tags") or [])
    else:
        body = {"description": _describe(logical, worker), "tags": TAG}
        api.call("PUT", f"/api/vhosts/{_q(vhost)}", body)
    perms = {"configure": ".*", "write": ".*", "read": ".*"}
    api.call("PUT", f"/api/permissions/{_q(vhost)}/{_q(api.user)}", perms)
    return info is not None


def _check_tagged(vhost: str, tags: object) -> None:
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    if TAG not in list(tags or []):  # type: ignore[call-overload]
        raise EngineError(
            f"RabbitMQ vhost {vhost!r} exists and was not made by dagz (no 'dagz' tag): "
            "refusing to use it as a worker vhost; rename it or change rewrite_db_name"
        )


def _ctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise FileNotFoundError("rabbitmqctl not found")
    done = subprocess.run(
        [exe, "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError((done.stderr or done.stdout).strip().splitlines()[-1:] or "failed")
    return done.stdout


def _ensure_ctl(kw: dict[str, Any], vhost: str, logical: str, worker: int, api_error: str) -> bool:
    if str(kw.get("host") or "127.0.0.1") not in _LOCAL:
        raise EngineError(f"cannot create RabbitMQ vhost {vhost!r}: {api_error}")
    try:
        rows = json.loads(_ctl("list_vhosts", "name", "tags", "--formatter", "json") or "[]")
        found = [r for r in rows if r.get("name") == vhost]
        if found:
            _check_tagged(vhost, found[0].get("tags"))
        else:
            _ctl("add_vhost", vhost, "--description", _describe(logical, worker), "--tags", TAG)
        user = str(kw.get("user") or kw.get("username") or "guest")
        _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(
            f"cannot create RabbitMQ vhost {vhost!r}: {api_error}; rabbitmqctl on this machine "
            f"failed too: {exc}"
        ) from None
    return bool(found)


def empty(kw: dict[str, Any], vhost: str) -> list[str]:
    """Deletes the vhost's queues and its own exchanges (one DELETE each). Returns their names."""
    api = _Api(kw)
    gone: list[str] = []
    try:
        for q in api.call("GET", f"/api/queues/{_q(vhost)}?columns=name") or []:
            if q["name"] == LEASE_QUEUE:
                continue  # the worker's lease (dagz.lease.service), not the tests'
            api.call("DELETE", f"/api/queues/{_q(vhost)}/{_q(q['name'])}")
            gone.append(q["name"])
        for ex in api.call("GET", f"/api/exchanges/{_q(vhost)}?columns=name") or []:
            name = ex["name"]
            if name and not name.startswith("amq."):
                api.call("DELETE", f"/api/exchanges/{_q(vhost)}/{_q(name)}")
                gone.append(name)
    except (urllib.error.URLError, OSError) as exc:
        raise EngineError(f"emptying RabbitMQ vhost {vhost!r} failed: {_why(exc, api)}") from None
    return gone


def recreate(kw: dict[str, Any], vhost: str, logical: str, worker: int) -> None:
    """Deletes the (dagz) vhost and creates it again: empty, but its connections are closed."""
    drop(vhost, **kw)
    ensure_vhost(kw, vhost, logical, worker)


def _owned_rows(kw: dict[str, Any]) -> list[dict[str, Any]]:
    api = _Api(kw)
    try:
        rows = api.call("GET", "/api/vhosts") or []
    except (urllib.error.URLError, OSError) as exc:
        raise EngineError(f"listing RabbitMQ vhosts failed: {_why(exc, api)}") from None
    return [r for r in rows if TAG in (r.get("tags") or r.get("metadata", {}).get("tags") or [])]


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """The vhosts tagged dagz; `size` is the number of messages they hold."""
    kw = dict(connect_kwargs)
    out = []
    for row in _owned_rows(kw):
        desc = str(row.get("description") or row.get("metadata", {}).get("description") or "")
        base, created = "?", None
        if "vhost " in desc:
            base = desc.split("vhost ", 1)[1].split(";", 1)[0]
        if "created " in desc:
            try:
                created = datetime.fromisoformat(desc.rsplit("created ", 1)[1].strip())
            except ValueError:
                created = None
        stamp = Stamp(base.strip("'"), "vhost", created)
        out.append(Owned(str(row["name"]), stamp, int(row.get("messages") or 0)))
    return out


def drop(db_name: str, **connect_kwargs: object) -> None:
    """Deletes a dagz vhost (refused for a vhost without the dagz tag)."""
    kw = dict(connect_kwargs)
    api = _Api(kw)
    try:
        info = api.call("GET", f"/api/vhosts/{_q(db_name)}")
        _check_tagged(db_name, info.get("tags") or [])
        api.call("DELETE", f"/api/vhosts/{_q(db_name)}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return
        raise EngineError(
            redact(f"dropping RabbitMQ vhost {db_name!r} failed: {_why(exc, api)}", kw)
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise EngineError(f"dropping RabbitMQ vhost {db_name!r} failed: {_why(exc, api)}") from None


def truncate(db_name: str, **connect_kwargs: object) -> list[str]:
    return empty(dict(connect_kwargs), db_name)
