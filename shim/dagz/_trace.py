"""The dagz span model, its recorder, the Chrome Trace Event writer and the terminal summary.

No pytest and no OpenTelemetry imports here: the OTel span processor (`dagz.otel`) only hands
finished OTel spans to the `Recorder` of this process (an O(1) append, nothing else), and the
pytest half (`dagz._otel_plugin`) opens and closes the dagz spans (session, test, setup, fixture,
`test.call`, teardown) and converts the handed-over OTel spans at the end of each test.

A recorded run is a list of *payloads*, one per process that ran tests (an xdist worker, or the
single pytest process): plain dicts, lists, strings and numbers, so that a worker can send its
payload to the controller through ``config.workeroutput``. The controller merges them into one
trace (`chrome_trace`) and one summary (`summary_lines`).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: Version of the payload format a worker sends to the controller.
PAYLOAD_VERSION = 2
#: The columns of a span row in a payload (`Span.to_wire`).
WIRE_FIELDS = (
    "id",
    "parent",
    "name",
    "kind",
    "start",
    "end",
    "thread",
    "tident",
    "test",
    "owner",
    "otel_type",
    "result",
    "attrs",
    "otel_parent",
)
#: OTel sub-spans kept per process for a trace; past it they are only counted (the summary says
#: how many the trace lacks).
MAX_OTEL_SPANS = 200_000
#: `db.statement` / `db.query.text` are kept up to this many characters.
STATEMENT_CHARS = 200
#: Other string attributes are kept up to this many characters.
ATTR_CHARS = 500

KIND_SESSION = "session"
KIND_TEST = "test"
KIND_SETUP = "setup"
KIND_CALL = "call"
KIND_TEARDOWN = "teardown"
KIND_FIXTURE = "fixture"
KIND_OTEL = "otel"


class SpanResult(str, enum.Enum):  # noqa: UP042 - StrEnum is 3.11+, dagz supports 3.10
    """Result of a dagz span: OTel status OK/UNSET → OK, ERROR → ERROR (a failed test → ERROR)."""

    OK = "OK"
    ERROR = "ERROR"


class Span:
    """One dagz span. Times are ``time.time_ns()`` (the clock OTel uses), so the spans of all the
    workers of a run share one time axis."""

    __slots__ = (
        "attrs",
        "end_ns",
        "kind",
        "name",
        "otel_parent",
        "otel_type",
        "owner",
        "parent",
        "result",
        "sid",
        "start_ns",
        "test",
        "thread",
        "tident",
    )

    def __init__(
        self,
        sid: str,
        parent: str | None,
        name: str,
        kind: str,
        start_ns: int,
        end_ns: int,
        thread: str,
        tident: int,
        test: str | None,
        owner: str | None,
        *,
        otel_type: str | None = None,
        result: str = SpanResult.OK.value,
        attrs: dict[str, Any] | None = None,
        otel_parent: str | None = None,
    ) -> None:
        #: Span id: ``<lane>.<n>`` for dagz spans, the 16-hex OTel span id for OTel spans.
        self.sid = sid
        #: Id of the parent span (a dagz span, or the OTel parent when it was recorded in the
        #: same test), None for the session span.
        self.parent = parent
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        #: Name and ident of the thread the span ended in (dagz spans: the pytest thread).
        self.thread = thread
        self.tident = tident
        #: nodeid of the test this span belongs to; None: the session (outside any test).
        self.test = test
        #: Id of the test span (or session span) this span belongs to.
        self.owner = owner
        #: OTel spans: short instrumentation scope + operation (``psycopg2.SELECT``).
        self.otel_type = otel_type
        self.result = result
        self.attrs: dict[str, Any] = attrs if attrs is not None else {}
        #: OTel spans: the OTel parent span id (16 hex), whatever test it belongs to.
        self.otel_parent = otel_parent

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    def to_wire(self) -> list[Any]:
        """The span as a row of `WIRE_FIELDS` (compact in JSON)."""
        return [
            self.sid,
            self.parent,
            self.name,
            self.kind,
            self.start_ns,
            self.end_ns,
            self.thread,
            self.tident,
            self.test,
            self.owner,
            self.otel_type,
            self.result,
            self.attrs,
            self.otel_parent,
        ]

    @classmethod
    def from_wire(cls, row: Sequence[Any]) -> Span:
        (sid, parent, name, kind, start, end, thread, tident, test, owner) = row[:10]
        otel_type, result, attrs, otel_parent = row[10:14]
        return cls(
            sid,
            parent,
            name,
            kind,
            start,
            end,
            thread,
            tident,
            test,
            owner,
            otel_type=otel_type,
            result=result,
            attrs=attrs,
            otel_parent=otel_parent,
        )

    def __repr__(self) -> str:
        return f"Span({self.kind} {self.name!r} {self.duration_ns / 1e6:.3f}ms test={self.test!r})"


# -- OTel span conversion (duck-typed on the SDK's ReadableSpan) ---------------------------------

_SCOPE_PREFIXES = ("opentelemetry.instrumentation.", "opentelemetry.contrib.", "opentelemetry.")
_FIRST_WORD = re.compile(r"^\s*(?:(?:/\*.*?\*/|--[^\n]*(?:\n|$))\s*)*\(*\s*([A-Za-z]+)", re.DOTALL)
_STATEMENT_KEYS = ("db.statement", "db.query.text")
_URL_KEYS = ("http.url", "url.full")
_DB_NAME_KEYS = ("db.name", "db.namespace")
_KEPT_KEYS = frozenset(
    {
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.user",
        "db.operation",
        "db.operation.name",
        "db.sql.table",
        "db.collection.name",
        "net.peer.name",
        "net.peer.port",
        "server.address",
        "server.port",
        "http.method",
        "http.request.method",
        "http.status_code",
        "http.response.status_code",
        "http.route",
        "http.target",
        "http.scheme",
        "url.path",
        "url.scheme",
        "error.type",
        "rpc.system",
        "rpc.service",
        "rpc.method",
        "messaging.system",
        "messaging.operation",
        "messaging.destination.name",
    }
)


def short_scope(scope: str) -> str:
    """``opentelemetry.instrumentation.psycopg2`` → ``psycopg2``; other scope names as they are."""
    for prefix in _SCOPE_PREFIXES:
        if scope.startswith(prefix) and len(scope) > len(prefix):
            return scope[len(prefix) :]
    return scope or "otel"


def operation_of(name: str, attrs: Mapping[str, Any]) -> str:
    """The operation part of `otel_type`: the DB operation (or the statement's first word), the
    HTTP method, the RPC method, else the span name."""
    for key in ("db.operation.name", "db.operation"):
        value = attrs.get(key)
        if value:
            return str(value).split()[0].upper()
    for key in _STATEMENT_KEYS:
        stmt = attrs.get(key)
        if isinstance(stmt, str):
            m = _FIRST_WORD.match(stmt)
            if m:
                return m.group(1).upper()
    for key in ("http.request.method", "http.method"):
        value = attrs.get(key)
        if value:
            return str(value).upper()
    for key in ("rpc.method", "messaging.operation"):
        value = attrs.get(key)
        if value:
            return str(value)
    return name[:64] if name else "span"


def otel_type_of(scope: str, name: str, attrs: Mapping[str, Any]) -> str:
    return f"{short_scope(scope)}.{operation_of(name, attrs)}"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def strip_credentials(url: str) -> str:
    """``http://user:pw@host/x`` → ``http://host/x`` (also the REDACTED:REDACTED form)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rsplit("@", 1)[-1] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return shorten(value, ATTR_CHARS)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value[:32]]
    return shorten(str(value), ATTR_CHARS)


_STATEMENT = 1
_URL = 2
_KEEP = 3
_HANDLING: dict[str, int] = {
    **dict.fromkeys(_KEPT_KEYS, _KEEP),
    **dict.fromkeys(_STATEMENT_KEYS, _STATEMENT),
    **dict.fromkeys(_URL_KEYS, _URL),
}


def _plain_dict(attrs: Any) -> dict[str, Any]:
    """The attributes as a plain dict (the SDK's BoundedAttributes keeps one inside)."""
    if not attrs:
        return {}
    inner = getattr(attrs, "_dict", None)
    if type(inner) is dict:
        return inner
    return dict(attrs)


def _attributes_of(otel: Any) -> dict[str, Any]:
    """The span's attributes without a copy when it is the SDK's span (read-only use)."""
    private = getattr(otel, "_attributes", None)
    if private is not None:
        inner = getattr(private, "_dict", None)
        if type(inner) is dict:
            return inner
    return _plain_dict(otel.attributes)


def keep_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The key attributes of an OTel span, shortened, credentials removed."""
    out: dict[str, Any] = {}
    handling = _HANDLING
    for key, value in attrs.items():
        how = handling.get(key)
        if how is None:
            continue
        if how == _KEEP:
            if type(value) is str:
                out[key] = value if len(value) <= ATTR_CHARS else shorten(value, ATTR_CHARS)
            elif type(value) in (int, bool, float):
                out[key] = value
            else:
                out[key] = _jsonable(value)
        elif how == _STATEMENT:
            text = str(value)
            if "\n" in text or "  " in text or "\t" in text:
                text = " ".join(text.split())
            out[key] = text if len(text) <= STATEMENT_CHARS else shorten(text, STATEMENT_CHARS)
        else:
            out[key] = shorten(strip_credentials(str(value)), ATTR_CHARS)
    return out


class DbNames:
    """Logical ↔ physical database names of this worker, from the rerouting configs (cached)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[str, str] | None] = {}

    def resolve(self, system: Any, name: Any) -> tuple[str, str] | None:
        """(logical, physical) when `name` is, or is rerouted to, a per-worker database."""
        key = (system, name)
        try:
            return self._cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable attribute values
            return None
        try:
            found = self._resolve(str(system), str(name))
        except Exception:
            found = None
        self._cache[key] = found
        return found

    @staticmethod
    def _resolve(system: str, name: str) -> tuple[str, str] | None:
        from dagz._state import STATE
        from dagz.config import MYSQL_CONFIG, PG_CONFIG

        system = system.lower()
        if system in ("postgresql", "postgres", "pg"):
            cfg = PG_CONFIG
        elif system in ("mysql", "mariadb"):
            cfg = MYSQL_CONFIG
        else:
            return None
        if not cfg.configured or not name:
            return None
        # The span names the database the client reports: with the shim that is already the
        # per-worker (physical) name.
        suffix = cfg.session().suffix
        if suffix and name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name
        if not STATE.reroute or cfg.disabled_here() or not cfg.should_reroute(name):
            return None
        physical = cfg.reroute_db(name)
        return (name, physical) if physical != name else None


_NAME_CACHE: dict[Any, str] = {}
_TYPE_CACHE: dict[tuple[str, str, Any], str] = {}
_OP_KEYS = (
    "db.operation.name",
    "db.operation",
    *_STATEMENT_KEYS,
    "http.request.method",
    "http.method",
)


def _enum_name(value: Any) -> str:
    """`StatusCode.ERROR` → "ERROR", `SpanKind.CLIENT` → "CLIENT" (cached: enum `.name` is slow)."""
    try:
        return _NAME_CACHE[value]
    except KeyError:
        name = str(getattr(value, "name", value))
        _NAME_CACHE[value] = name
        return name
    except TypeError:
        return str(getattr(value, "name", value))


def _otel_type_cached(scope: str, name: str, raw: Mapping[str, Any]) -> str:
    # The operation comes from the first of these attributes that is set (or the name).
    op_source: Any = None
    for key in _OP_KEYS:
        value = raw.get(key)
        if value:
            op_source = value if type(value) is str and len(value) <= 64 else None
            break
    if op_source is None:
        return otel_type_of(scope, name, raw)
    key3 = (scope, name, op_source)
    cached = _TYPE_CACHE.get(key3)
    if cached is None:
        cached = otel_type_of(scope, name, raw)
        if len(_TYPE_CACHE) < 10_000:
            _TYPE_CACHE[key3] = cached
    return cached


def otel_to_span(
    otel: Any, sink: Span, tident: int, thread: str, db_names: DbNames | None = None
) -> Span:
    """A finished OTel `ReadableSpan` as a dagz sub-span of `sink` (the innermost dagz span that
    was open when it ended)."""
    scope_obj = otel.instrumentation_scope
    scope = (scope_obj.name or "") if scope_obj is not None else ""
    raw = _attributes_of(otel)
    status = otel.status
    name = otel.name
    error = _enum_name(status.status_code) == "ERROR"
    attrs = keep_attrs(raw) if raw else {}
    if scope:
        attrs["otel.scope"] = scope
    attrs["otel.kind"] = _enum_name(otel.kind)
    if error:
        if status.description:
            attrs["error"] = shorten(str(status.description), ATTR_CHARS)
        for event in otel.events or ():
            if event.name == "exception" and event.attributes:
                for key in ("exception.type", "exception.message"):
                    if key in event.attributes:
                        attrs[key] = shorten(str(event.attributes[key]), ATTR_CHARS)
                break
    if db_names is not None and raw:
        system = raw.get("db.system") or raw.get("db.system.name")
        if system:
            db = raw.get("db.name") or raw.get("db.namespace")
            if db:
                names = db_names.resolve(system, db)
                if names is not None:
                    attrs["dagz.db.logical"], attrs["dagz.db.physical"] = names
    parent = otel.parent
    start = otel.start_time or otel.end_time or sink.start_ns
    end = otel.end_time or start
    return Span(
        f"{otel.context.span_id:016x}",
        sink.sid,
        name,
        KIND_OTEL,
        start,
        end,
        thread,
        tident,
        sink.test,
        sink.owner,
        otel_type=_otel_type_cached(scope, name, raw),
        result=_ERROR if error else _OK,
        attrs=attrs,
        otel_parent=f"{parent.span_id:016x}" if parent is not None else None,
    )


_OK = SpanResult.OK.value
_ERROR = SpanResult.ERROR.value


# -- the recorder of this process -----------------------------------------------------------------


class Recorder:
    """The spans of this process. The pytest thread opens and closes dagz spans; any thread may
    hand over a finished OTel span with `on_otel_end` (a deque append: thread-safe, no I/O)."""

    def __init__(
        self, lane: str, worker_num: int | None = None, *, keep_spans: bool = True
    ) -> None:
        self.lane = lane
        #: True: every OTel span is kept as a sub-span (for a trace file). False: only the
        #: summary's numbers are kept (count, time and errors per test and `otel_type`).
        self.keep_spans = keep_spans
        #: owner (test or session span id) → otel_type → [count, total ns, errors].
        self.stats: dict[str, dict[str, list[int]]] = {}
        self.worker_num = worker_num
        self.pid = os.getpid()
        self.main_ident = threading.get_ident()
        self.main_thread = threading.current_thread().name
        self._ids = itertools.count(1)
        self.spans: list[Span] = []
        self.stack: list[Span] = []
        #: Finished OTel spans not converted yet: (span, sink, thread ident, thread name).
        self.pending: deque[tuple[Any, Span, int, str]] = deque()
        self.db_names = DbNames()
        self.otel_count = 0
        self.dropped = 0
        self.convert_errors = 0
        self.session = self.open("session", KIND_SESSION, attrs={"lane": lane, "pid": self.pid})
        #: The innermost open dagz span: where an OTel span ending now belongs.
        self.sink: Span = self.session

    def _new_id(self) -> str:
        return f"{self.lane}.{next(self._ids)}"

    def open(
        self,
        name: str,
        kind: str,
        test: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> Span:
        """Open a dagz span under the innermost open one (call from the pytest thread)."""
        parent = self.stack[-1] if self.stack else None
        sid = self._new_id()
        if test is None and parent is not None:
            test = parent.test
        if kind in (KIND_TEST, KIND_SESSION):
            owner = sid
        else:
            owner = parent.owner if parent is not None else sid
        span = Span(
            sid,
            parent.sid if parent is not None else None,
            name,
            kind,
            time.time_ns(),
            0,
            self.main_thread,
            self.main_ident,
            test,
            owner,
            attrs=attrs,
        )
        self.stack.append(span)
        self.sink = span
        return span

    def close(self, span: Span, result: str | None = None) -> None:
        """Close `span` (and any span opened inside it and left open)."""
        now = time.time_ns()
        if span in self.stack:
            while self.stack:
                top = self.stack.pop()
                if top.end_ns == 0:
                    top.end_ns = now
                    self.spans.append(top)
                if top is span:
                    break
        elif span.end_ns == 0:
            span.end_ns = now
            self.spans.append(span)
        if result is not None:
            span.result = result
        self.sink = self.stack[-1] if self.stack else self.session

    def on_otel_end(self, span: Any) -> None:
        """Hand over a finished OTel span (any thread)."""
        self.pending.append(
            (span, self.sink, threading.get_ident(), threading.current_thread().name)
        )

    def drain(self) -> None:
        """Convert the handed-over OTel spans (pytest thread, at the end of each test)."""
        pending = self.pending
        while True:
            try:
                otel, sink, tident, thread = pending.popleft()
            except IndexError:
                return
            if not self.keep_spans:
                try:
                    self._count(otel, sink)
                except Exception:
                    self.convert_errors += 1
                continue
            if self.otel_count >= MAX_OTEL_SPANS:
                # past the cap a span is only counted: the summary stays whole, the trace not
                self.dropped += 1
                try:
                    self._count(otel, sink)
                except Exception:
                    self.convert_errors += 1
                continue
            try:
                self.spans.append(otel_to_span(otel, sink, tident, thread, self.db_names))
                self.otel_count += 1
            except Exception:
                self.convert_errors += 1

    def _count(self, otel: Any, sink: Span) -> None:
        """The summary's numbers for one OTel span (no sub-span kept)."""
        scope_obj = otel.instrumentation_scope
        scope = (scope_obj.name or "") if scope_obj is not None else ""
        otel_type = _otel_type_cached(scope, otel.name, _attributes_of(otel))
        start = otel.start_time or 0
        end = otel.end_time or start
        error = 1 if _enum_name(otel.status.status_code) == "ERROR" else 0
        per_owner = self.stats.get(sink.owner or "")
        if per_owner is None:
            per_owner = self.stats[sink.owner or ""] = {}
        entry = per_owner.get(otel_type)
        if entry is None:
            per_owner[otel_type] = [1, end - start, error]
        else:
            entry[0] += 1
            entry[1] += end - start
            entry[2] += error
        self.otel_count += 1

    def finish(self) -> None:
        """Close every open span (the session last) and convert what is pending."""
        while self.stack:
            self.close(self.stack[0])
        self.drain()

    def payload(self) -> dict[str, Any]:
        """This process's recording as plain data (see `encode_payload`)."""
        self.drain()
        link_parents(self.spans)
        return {
            "version": PAYLOAD_VERSION,
            "lane": self.lane,
            "worker_num": self.worker_num,
            "pid": self.pid,
            "main_thread": self.main_thread,
            "dropped": self.dropped,
            "convert_errors": self.convert_errors,
            "fields": list(WIRE_FIELDS),
            "spans": [s.to_wire() for s in self.spans],
            "stats": self.stats,
        }


def encode_payload(payload: Mapping[str, Any]) -> str:
    """One JSON string: what a worker puts in ``config.workeroutput`` (execnet moves one string
    far faster than a tree of small dicts and lists)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def decode_payload(data: Any) -> dict[str, Any] | None:
    """A payload from ``node.workeroutput`` (None when it is missing or not ours)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict) or data.get("version") != PAYLOAD_VERSION:
        return None
    if not isinstance(data.get("spans"), list):
        return None
    return data


def link_parents(spans: Iterable[Span]) -> None:
    """An OTel span whose OTel parent was recorded in the same test (or both outside tests) gets
    that parent; otherwise it stays under the dagz span that was open when it ended."""
    spans = list(spans)
    owners = {s.sid: s.owner for s in spans if s.kind == KIND_OTEL}
    for s in spans:
        if (
            s.kind == KIND_OTEL
            and s.otel_parent is not None
            and owners.get(s.otel_parent, "") == s.owner
        ):
            s.parent = s.otel_parent


RECORDER: Recorder | None = None
_install_lock = threading.Lock()


def install(recorder: Recorder | None) -> None:
    """Make `recorder` the one OTel spans of this process go to (None: record nothing)."""
    global RECORDER  # noqa: PLW0603 - the process-wide recorder the span processor reads
    with _install_lock:
        RECORDER = recorder


# -- merged output ----------------------------------------------------------------------------


class Lane:
    """One process's recording, parsed: its payload's metadata and its spans."""

    __slots__ = ("lane", "main_thread", "payload", "spans", "worker_num")

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload
        self.lane = str(payload.get("lane", "?"))
        num = payload.get("worker_num")
        self.worker_num = num if isinstance(num, int) else None
        self.main_thread = payload.get("main_thread")
        self.spans = [Span.from_wire(row) for row in payload.get("spans", ())]

    @classmethod
    def of_recorder(cls, rec: Recorder) -> Lane:
        """This process's lane, without the round trip through rows."""
        rec.drain()
        link_parents(rec.spans)
        meta = {
            "version": PAYLOAD_VERSION,
            "lane": rec.lane,
            "worker_num": rec.worker_num,
            "pid": rec.pid,
            "main_thread": rec.main_thread,
            "dropped": rec.dropped,
            "convert_errors": rec.convert_errors,
            "stats": rec.stats,
        }
        lane = cls(meta)
        lane.spans = list(rec.spans)
        return lane


def lanes_of(payloads: Iterable[Mapping[str, Any] | Lane]) -> list[Lane]:
    """Parsed lanes, workers in number order first."""
    lanes = [p if isinstance(p, Lane) else Lane(p) for p in payloads]
    return sorted(lanes, key=lambda ln: (ln.worker_num is None, ln.worker_num or 0, ln.lane))


def nest_lanes(spans: Iterable[Span]) -> list[list[Span]]:
    """Split the spans of one thread into lanes in which complete events nest strictly (what a
    Trace Event viewer needs): overlapping-but-not-nested spans (async code) go to another lane."""
    lanes: list[list[Span]] = []
    stacks: list[list[int]] = []
    for s in sorted(spans, key=lambda s: (s.start_ns, -s.end_ns)):
        start, end = s.start_ns, s.end_ns
        for lane, stack in zip(lanes, stacks, strict=True):
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or stack[-1] >= end:
                stack.append(end)
                lane.append(s)
                break
        else:
            lanes.append([s])
            stacks.append([end])
    return lanes


def _event_args(s: Span) -> dict[str, Any]:
    args = dict(s.attrs)
    args["id"] = s.sid
    args["result"] = s.result
    if s.parent is not None:
        args["parent"] = s.parent
    if s.test is not None:
        args["test"] = s.test
    if s.kind == KIND_OTEL:
        args["otel_type"] = s.otel_type
        args["span_name"] = s.name
        args["thread"] = s.thread
        if s.otel_parent is not None and s.otel_parent != s.parent:
            args["otel_parent"] = s.otel_parent
    return args


def _flows(
    spans: Sequence[Span], track_of: Mapping[str, tuple[int, dict[str, Any]]], pid: int, base: int
) -> list[dict[str, Any]]:
    """Flow arrows (``ph: "s"``/``"f"``) from an OTel parent to its child on another thread (the
    client's GET → the server thread's span), so a viewer draws the link across tracks."""
    flows: list[dict[str, Any]] = []
    for s in spans:
        if s.kind != KIND_OTEL or s.parent is None or s.parent != s.otel_parent:
            continue
        parent = track_of.get(s.parent)
        child = track_of.get(s.sid)
        if parent is None or child is None or parent[0] == child[0]:
            continue
        p_event, c_event = parent[1], child[1]
        # the start sits inside the parent's slice, at the child's start when it can
        start = min(max(c_event["ts"], p_event["ts"]), p_event["ts"] + p_event["dur"])
        flow_id = base + len(flows) // 2 + 1
        common = {"name": "parent", "cat": "otel.link", "id": flow_id, "pid": pid}
        flows.append({"ph": "s", **common, "tid": parent[0], "ts": start})
        flows.append({"ph": "f", **common, "tid": child[0], "ts": c_event["ts"], "bp": "e"})
    return flows


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "args": args}


def chrome_trace(payloads: Iterable[Mapping[str, Any] | Lane]) -> dict[str, Any]:
    """The run as Chrome Trace Event JSON: one process lane (``pid``) per worker, one ``tid`` per
    thread (and nesting lane), complete events (``ph: "X"``) with ``ts``/``dur`` in µs, metadata
    events (``ph: "M"``) naming the lanes, flow events (``ph: "s"``/``"f"``) for OTel parent
    links that cross threads."""
    lanes = lanes_of(payloads)
    t0 = min((s.start_ns for ln in lanes for s in ln.spans), default=0)
    events: list[dict[str, Any]] = []
    for pid, ln in enumerate(lanes, start=1):
        events.append(_meta("process_name", pid, 0, {"name": f"dagz {ln.lane}"}))
        events.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
        threads: dict[tuple[int, str], list[Span]] = {}
        for s in ln.spans:
            threads.setdefault((s.tident, s.thread), []).append(s)

        def thread_key(
            item: tuple[tuple[int, str], list[Span]], main: Any = ln.main_thread
        ) -> tuple[int, int]:
            (_, name), members = item
            is_main = name == main or any(m.kind == KIND_SESSION for m in members)
            return (0 if is_main else 1, min(m.start_ns for m in members))

        tid = 0
        track_of: dict[str, tuple[int, dict[str, Any]]] = {}
        for (_, thread_name), members in sorted(threads.items(), key=thread_key):
            for index, lane_spans in enumerate(nest_lanes(members)):
                tid += 1
                label = thread_name if index == 0 else f"{thread_name} (overlap {index})"
                events.append(_meta("thread_name", pid, tid, {"name": label}))
                events.append(_meta("thread_sort_index", pid, tid, {"sort_index": tid}))
                for s in lane_spans:
                    ts = round((s.start_ns - t0) / 1000.0, 3)
                    end = round((max(s.end_ns, s.start_ns) - t0) / 1000.0, 3)
                    event = {
                        "ph": "X",
                        "name": s.otel_type if s.kind == KIND_OTEL and s.otel_type else s.name,
                        "cat": s.kind,
                        "ts": ts,
                        "dur": round(end - ts, 3),
                        "pid": pid,
                        "tid": tid,
                        "args": _event_args(s),
                    }
                    events.append(event)
                    track_of[s.sid] = (tid, event)
        events.extend(_flows(ln.spans, track_of, pid, len(events)))
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "dagz",
            "t0_unix_ns": t0,
            "workers": [ln.lane for ln in lanes],
        },
    }


def write_chrome_trace(path: Path, payloads: Iterable[Mapping[str, Any] | Lane]) -> int:
    """Write the trace (atomically); returns the number of complete events."""
    trace = chrome_trace(payloads)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(trace, fh, separators=(",", ":"), ensure_ascii=False)
    tmp.replace(path)
    return sum(1 for e in trace["traceEvents"] if e["ph"] == "X")


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f}ms"


Stats = dict[str, list[int]]


def _add(stats: Stats, otel_type: str, count: int, ns: int, errors: int) -> None:
    entry = stats.get(otel_type)
    if entry is None:
        stats[otel_type] = [count, ns, errors]
    else:
        entry[0] += count
        entry[1] += ns
        entry[2] += errors


def _types_text(stats: Stats, limit: int = 6) -> str:
    """``psycopg2.SELECT ×3 1.2ms, requests.GET ×1 5.0ms (1 error)``, most time first."""  # noqa: RUF002
    ordered = sorted(stats.items(), key=lambda item: (-item[1][1], item[0]))
    parts = []
    for otel_type, (count, ns, errors) in ordered[:limit]:
        err = f" ({errors} error{'s' if errors != 1 else ''})" if errors else ""
        parts.append(f"{otel_type} ×{count} {_ms(ns)}{err}")  # noqa: RUF001
    if len(ordered) > limit:
        parts.append(f"+{len(ordered) - limit} more")
    return ", ".join(parts)


def _collect(lanes: Sequence[Lane]) -> tuple[list[tuple[Span, str]], dict[str, Stats], set[str]]:
    """(test spans with their lane, sub-span numbers per owner, the test spans' ids)."""
    tests: list[tuple[Span, str]] = []
    per_owner: dict[str, Stats] = {}
    test_owners: set[str] = set()
    for ln in lanes:
        for owner, stats in (ln.payload.get("stats") or {}).items():
            into = per_owner.setdefault(owner, {})
            for otel_type, (count, ns, errors) in stats.items():
                _add(into, otel_type, count, ns, errors)
        for s in ln.spans:
            if s.kind == KIND_TEST:
                tests.append((s, ln.lane))
                test_owners.add(s.sid)
            elif s.kind == KIND_OTEL:
                error = 1 if s.result == SpanResult.ERROR.value else 0
                stats = per_owner.setdefault(s.owner or "", {})
                _add(stats, s.otel_type or "otel", 1, s.duration_ns, error)
    return tests, per_owner, test_owners


def summary_lines(payloads: Iterable[Mapping[str, Any] | Lane], top: int = 10) -> list[str]:
    """The slowest tests with their sub-span count and time per `otel_type`."""
    lanes = lanes_of(payloads)
    tests, per_owner, test_owners = _collect(lanes)
    dropped = sum(int(ln.payload.get("dropped", 0) or 0) for ln in lanes)
    in_tests: Stats = {}
    outside: Stats = {}
    for owner, stats in per_owner.items():
        into = in_tests if owner in test_owners else outside
        for otel_type, (count, ns, errors) in stats.items():
            _add(into, otel_type, count, ns, errors)
    n_in = sum(v[0] for v in in_tests.values())
    n_out = sum(v[0] for v in outside.values())
    lines = [
        f"{len(tests)} tests on {len(lanes)} worker(s); {n_in} OTel sub-spans in tests, "
        f"{n_out} outside tests"
        + (f"; {dropped} not in the trace (over {MAX_OTEL_SPANS} per worker)" if dropped else "")
    ]
    if n_in or n_out:
        everything: Stats = {}
        for stats in (in_tests, outside):
            for otel_type, (count, ns, errors) in stats.items():
                _add(everything, otel_type, count, ns, errors)
        lines.append(f"by otel_type: {_types_text(everything, limit=12)}")
    if tests:
        slowest = heapq.nlargest(top, tests, key=lambda t: t[0].duration_ns)
        lines.append(f"slowest {len(slowest)} tests:")
        for span, lane in slowest:
            stats = per_owner.get(span.sid, {})
            count = sum(v[0] for v in stats.values())
            noun = "sub-span" if count == 1 else "sub-spans"
            detail = f"{count} {noun}" + (f": {_types_text(stats)}" if stats else "")
            mark = " FAILED" if span.result == SpanResult.ERROR.value else ""
            lines.append(f"  {span.duration_ns / 1e9:8.3f}s {span.name} [{lane}]{mark} — {detail}")
    return lines
