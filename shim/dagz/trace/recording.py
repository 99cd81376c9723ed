"""The recording of this process: the `Recorder` (dagz spans opened and closed by the pytest
thread, OTel spans handed over by any thread and converted at the end of each test) and the
process-wide `RECORDER` the span processor hands spans to."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from dagz.trace.convert import (
    OUTCOME_4XX,
    OUTCOME_ERROR,
    DbNames,
    attributes_of,
    otel_outcome,
    otel_to_span,
    otel_type_cached,
)
from dagz.trace.model import (
    KIND_OTEL,
    KIND_SESSION,
    KIND_TEST,
    PAYLOAD_VERSION,
    WIRE_FIELDS,
    Span,
)

#: OTel sub-spans kept per process for a trace; past it they are only counted (the summary says
#: how many the trace lacks).
MAX_OTEL_SPANS = 200_000


class Recorder:
    """The spans of this process. The pytest thread opens and closes dagz spans; any thread may
    hand over a finished OTel span with `on_otel_end` (a deque append: thread-safe, no I/O)."""

    def __init__(
        self, lane: str, worker_num: int | None = None, *, keep_spans: bool = True
    ) -> None:
        self.lane = lane
        #: True: every OTel span is kept as a sub-span (for a trace file). False: only the
        #: summary's numbers are kept (count, time, errors and 4xx per test and `otel_type`).
        self.keep_spans = keep_spans
        #: owner (test or session span id) → otel_type → [count, total ns, errors, 4xx]
        #: (see `dagz.trace.convert.outcome`).
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
        raw = attributes_of(otel)
        otel_type = otel_type_cached(scope, otel.name, raw)
        start = otel.start_time or 0
        end = otel.end_time or start
        kind = otel_outcome(otel, raw)
        error = 1 if kind == OUTCOME_ERROR else 0
        http_4xx = 1 if kind == OUTCOME_4XX else 0
        per_owner = self.stats.get(sink.owner or "")
        if per_owner is None:
            per_owner = self.stats[sink.owner or ""] = {}
        entry = per_owner.get(otel_type)
        if entry is None:
            per_owner[otel_type] = [1, end - start, error, http_4xx]
        else:
            entry[0] += 1
            entry[1] += end - start
            entry[2] += error
            entry[3] += http_4xx
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
