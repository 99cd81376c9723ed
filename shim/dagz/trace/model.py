"""The dagz span model: span kinds, `SpanResult`, `Span` and its wire format (a row of
`WIRE_FIELDS`, what a worker sends to the controller)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

#: Version of the payload format a worker sends to the controller.
PAYLOAD_VERSION = 3
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
