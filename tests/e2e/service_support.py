"""Redis and RabbitMQ helpers of the e2e tests: a private redis-server (its indexes are the
test's own, whatever else uses the machine's Redis) and the RabbitMQ management API."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from support import unique_name

MQ_API = "http://127.0.0.1:15672"
_AUTH = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}

#: Helpers of the inner projects' tests: a barrier all 4 workers reach, JSON lines to $DZ_OUT.
BARRIER = """
import json, os, time
from pathlib import Path

def barrier(name, n=4, timeout=60):
    d = Path(os.environ["DZ_OUT"]).parent / name
    d.mkdir(exist_ok=True)
    (d / os.environ.get("PYTEST_XDIST_WORKER", "gw0")).touch()
    deadline = time.monotonic() + timeout
    while len(list(d.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(list(d.iterdir()))

def emit(**event):
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps(event) + "\\n")
"""


@pytest.fixture
def private_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """A redis-server on a free port (`databases 16`, or the test's indirect parameter; no
    persistence, in the test's tmp dir)."""
    databases = int(getattr(request, "param", 16))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    data = tmp_path / "redis"
    data.mkdir()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
    argv += ["--save", "", "--appendonly", "no", "--databases", str(databases)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def keyspace(port: int) -> dict[int, int]:
    """index -> keys, as the server says (INFO keyspace)."""
    client = redis.Redis(port=port)
    try:
        info = client.info("keyspace")
    finally:
        client.close()
    return {int(k[2:]): int(v["keys"]) for k, v in info.items()}


def mq_api(method: str, path: str, body: object = None) -> Any:  # noqa: ANN401 - JSON
    data = None if body is None else json.dumps(body).encode()
    headers = {**_AUTH, "content-type": "application/json"}
    req = urllib.request.Request(MQ_API + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=15) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def drop_vhosts(prefix: str) -> None:
    """Deletes every vhost whose name starts with `prefix` (a dz_ run name)."""
    assert prefix.startswith("dz_"), prefix
    for vh in mq_api("GET", "/api/vhosts"):
        if vh["name"].startswith(prefix):
            mq_api("DELETE", f"/api/vhosts/{urllib.parse.quote(vh['name'], safe='')}")


def make_vhost(name: str) -> None:
    """Creates vhost `name` (a dz_ run name) with all permissions for guest."""
    assert name.startswith("dz_"), name
    quoted = urllib.parse.quote(name, safe="")
    mq_api("PUT", f"/api/vhosts/{quoted}", {"description": "dagz e2e"})
    perms = {"configure": ".*", "write": ".*", "read": ".*"}
    mq_api("PUT", f"/api/permissions/{quoted}/guest", perms)


@pytest.fixture
def vhost_prefix() -> Iterator[str]:
    """A ``dz_`` run name; every vhost starting with it is deleted at the end."""
    prefix = unique_name("mq")
    try:
        yield prefix
    finally:
        drop_vhosts(prefix)
