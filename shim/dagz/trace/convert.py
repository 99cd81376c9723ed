"""OTel span → dagz sub-span: `otel_type` (short scope + operation), the kept attributes
(shortened, credentials removed), the logical/physical database names; duck-typed on the OTel
SDK's ``ReadableSpan`` (no OpenTelemetry import here)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dagz.trace.model import ATTR_CHARS, KIND_OTEL, STATEMENT_CHARS, Span, SpanResult

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


def plain_dict(attrs: Any) -> dict[str, Any]:
    """The attributes as a plain dict (the SDK's BoundedAttributes keeps one inside)."""
    if not attrs:
        return {}
    inner = getattr(attrs, "_dict", None)
    if type(inner) is dict:
        return inner
    return dict(attrs)


def attributes_of(otel: Any) -> dict[str, Any]:
    """The span's attributes without a copy when it is the SDK's span (read-only use)."""
    private = getattr(otel, "_attributes", None)
    if private is not None:
        inner = getattr(private, "_dict", None)
        if type(inner) is dict:
            return inner
    return plain_dict(otel.attributes)


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
        elif system == "redis" and "dagz.families" in sys.modules:
            # the span names the logical index (redis-py's `db`); the physical one is computed
            cfg = sys.modules["dagz.families"].REDIS_CONFIG
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


def enum_name(value: Any) -> str:
    """`StatusCode.ERROR` → "ERROR", `SpanKind.CLIENT` → "CLIENT" (cached: enum `.name` is slow)."""
    try:
        return _NAME_CACHE[value]
    except KeyError:
        name = str(getattr(value, "name", value))
        _NAME_CACHE[value] = name
        return name
    except TypeError:
        return str(getattr(value, "name", value))


def otel_type_cached(scope: str, name: str, raw: Mapping[str, Any]) -> str:
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
    raw = attributes_of(otel)
    status = otel.status
    name = otel.name
    error = enum_name(status.status_code) == "ERROR"
    attrs = keep_attrs(raw) if raw else {}
    if scope:
        attrs["otel.scope"] = scope
    attrs["otel.kind"] = enum_name(otel.kind)
    if error and status.description:
        attrs["error"] = shorten(str(status.description), ATTR_CHARS)
    exception = exception_of(otel)
    if exception:
        attrs.update(exception)
    if db_names is not None and raw:
        system = raw.get("db.system") or raw.get("db.system.name")
        if system:
            db = raw.get("db.name") or raw.get("db.namespace")
            if db is None and raw.get("db.redis.database_index") is not None:
                db = str(raw["db.redis.database_index"])
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
        otel_type=otel_type_cached(scope, name, raw),
        result=_ERROR if error else _OK,
        attrs=attrs,
        otel_parent=f"{parent.span_id:016x}" if parent is not None else None,
    )


_OK = SpanResult.OK.value
_ERROR = SpanResult.ERROR.value

# -- what a span counts as in the summary ------------------------------------------------------

#: An OTel span that ended well.
OUTCOME_OK = 0
#: A real error: span status ERROR, an HTTP 5xx answer, an exception.
OUTCOME_ERROR = 1
#: An HTTP 4xx answer: the client was told no, which a test may well expect.
OUTCOME_4XX = 2
_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
_EXCEPTION_KEYS = ("exception.type", "exception.message")


def _events_of(otel: Any) -> Sequence[Any]:
    """The span's events without a copy when it is the SDK's span (read-only use)."""
    private = getattr(otel, "_events", None)
    if private is None:
        return otel.events or ()
    # the SDK's BoundedList copies itself under a lock to iterate: its deque does not
    return getattr(private, "_dq", private)  # type: ignore[no-any-return]


def exception_of(otel: Any) -> dict[str, str]:
    """``exception.type`` and ``exception.message`` of the span's first exception event
    (shortened); empty when it has none."""
    for event in _events_of(otel):
        if event.name == "exception" and event.attributes:
            found = event.attributes
            return {k: shorten(str(found[k]), ATTR_CHARS) for k in _EXCEPTION_KEYS if k in found}
    return {}


def http_status(attrs: Mapping[str, Any]) -> int | None:
    """The HTTP status code of a span (either semantic-conventions name), None when it has none."""
    for key in _HTTP_STATUS_KEYS:
        value = attrs.get(key)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def outcome(error_status: bool, attrs: Mapping[str, Any], exception: bool) -> int:
    """`OUTCOME_4XX` when the span carries an HTTP status 400-499, whatever its status (an HTTP
    client span gets status ERROR for a 4xx answer); else `OUTCOME_ERROR` for status ERROR, an
    HTTP status 500-599 or an exception; else `OUTCOME_OK`."""
    code = http_status(attrs) if attrs else None
    if code is not None and 400 <= code <= 499:
        return OUTCOME_4XX
    if error_status or exception or (code is not None and 500 <= code <= 599):
        return OUTCOME_ERROR
    return OUTCOME_OK


def otel_outcome(otel: Any, raw: Mapping[str, Any]) -> int:
    """`outcome` of a finished OTel span whose attributes are `raw`."""
    error_status = enum_name(otel.status.status_code) == "ERROR"
    return outcome(error_status, raw, bool(exception_of(otel)))


def span_outcome(span: Span) -> int:
    """`outcome` of a kept sub-span (from its result and kept attributes: the HTTP status codes
    and the exception's type and message are kept)."""
    exception = any(key in span.attrs for key in _EXCEPTION_KEYS)
    return outcome(span.result == _ERROR, span.attrs, exception)
