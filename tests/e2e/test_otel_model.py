"""The dagz span model in process: real SDK spans through the dagz span processor into a
recorder, their conversion (otel_type, result, kept attributes), the merged trace's lanes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from dagz import trace as _trace
from dagz.otel import SPAN_PROCESSOR, SpanResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode


@pytest.fixture
def recorder() -> Iterator[_trace.Recorder]:
    rec = _trace.Recorder("unit", 0)
    _trace.install(rec)
    try:
        yield rec
    finally:
        _trace.install(None)


@pytest.fixture
def provider() -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SPAN_PROCESSOR)
    return p


def otel_spans(rec: _trace.Recorder) -> list[_trace.Span]:
    rec.drain()
    return [s for s in rec.spans if s.kind == _trace.KIND_OTEL]


def test_spans_become_sub_spans_of_the_open_test(
    recorder: _trace.Recorder, provider: TracerProvider
) -> None:
    tracer = provider.get_tracer("opentelemetry.instrumentation.psycopg2")
    with tracer.start_as_current_span("outside"):
        pass
    test = recorder.open("t.py::test_a", _trace.KIND_TEST, test="t.py::test_a")
    call = recorder.open("test.call", _trace.KIND_CALL)
    long_sql = "SELECT " + ", ".join(f"col{i}" for i in range(100)) + " FROM t"
    with tracer.start_as_current_span(
        "SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite", "db.statement": long_sql}
    ):
        with tracer.start_as_current_span(
            "x", attributes={"db.system": "sqlite", "db.statement": "  insert into t values (1)"}
        ) as inner:
            inner.set_status(Status(StatusCode.ERROR, "boom"))
        done = threading.Event()

        def in_thread() -> None:
            with provider.get_tracer("mine").start_as_current_span("work"):
                pass
            done.set()

        threading.Thread(target=in_thread, name="helper").start()
        assert done.wait(10)
    recorder.close(call)
    recorder.close(test)
    spans = {s.name: s for s in otel_spans(recorder)}
    _trace.link_parents(recorder.spans)
    assert spans["outside"].test is None
    assert spans["outside"].owner == recorder.session.sid
    select = spans["SELECT"]
    assert select.otel_type == "psycopg2.SELECT"
    assert select.test == "t.py::test_a"
    assert select.parent == call.sid
    assert select.result == SpanResult.OK.value
    assert len(select.attrs["db.statement"]) == _trace.STATEMENT_CHARS
    assert select.attrs["db.statement"].endswith("…")
    x = spans["x"]
    assert x.otel_type == "psycopg2.INSERT"
    assert x.result == SpanResult.ERROR.value
    assert x.attrs["error"] == "boom"
    assert x.parent == select.sid  # nested by its OTel parent link
    work = spans["work"]
    assert work.thread == "helper"
    assert work.test == "t.py::test_a"
    assert work.otel_type == "mine.work"


def test_otel_type_and_attributes() -> None:
    assert _trace.short_scope("opentelemetry.instrumentation.requests") == "requests"
    assert _trace.short_scope("") == "otel"
    assert _trace.otel_type_of(
        "opentelemetry.instrumentation.requests", "GET", {"http.method": "get"}
    ) == ("requests.GET")
    assert (
        _trace.otel_type_of("x", "n", {"http.request.method": "POST", "db.operation": "select"})
        == "x.SELECT"
    )
    assert _trace.otel_type_of("x", "n", {"db.statement": "/* c */ -- d\n(select 1)"}) == "x.SELECT"
    assert _trace.otel_type_of("x", "handle", {}) == "x.handle"
    assert _trace.strip_credentials("http://u:p@h:1/x?q=1") == "http://h:1/x?q=1"
    assert _trace.strip_credentials("https://REDACTED:REDACTED@h/") == "https://h/"
    assert _trace.strip_credentials("http://h/x") == "http://h/x"
    kept = _trace.keep_attrs(
        {"http.url": "http://a:b@h/p", "secret": "x", "db.statement": "SELECT\n  1", "n": (1, 2)}
    )
    assert kept == {"http.url": "http://h/p", "db.statement": "SELECT 1"}


def _span(sid: str, start: int, end: int) -> _trace.Span:
    return _trace.Span(sid, None, sid, _trace.KIND_OTEL, start, end, "t", 1, None, None)


def test_overlapping_spans_of_a_thread_get_their_own_lane() -> None:
    lanes = _trace.nest_lanes(
        [_span("a", 0, 100), _span("b", 10, 20), _span("c", 50, 150), _span("d", 120, 130)]
    )
    assert [[s.sid for s in lane] for lane in lanes] == [["a", "b", "d"], ["c"]]


def test_without_a_trace_only_the_numbers_are_kept(provider: TracerProvider) -> None:
    """keep_spans=False (no --dagz-trace): no sub-span objects, the summary still has them."""
    rec = _trace.Recorder("gw3", 3, keep_spans=False)
    _trace.install(rec)
    try:
        tracer = provider.get_tracer("opentelemetry.instrumentation.requests")
        test = rec.open("t.py::test_b", _trace.KIND_TEST, test="t.py::test_b")
        for status in (StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR):
            with tracer.start_as_current_span("GET", attributes={"http.method": "GET"}) as span:
                span.set_status(Status(status))
        rec.close(test)
        rec.finish()
    finally:
        _trace.install(None)
    assert [s for s in rec.spans if s.kind == _trace.KIND_OTEL] == []
    payload = _trace.decode_payload(_trace.encode_payload(rec.payload()))
    assert payload is not None
    lines = _trace.summary_lines([payload])
    assert lines[0].startswith("1 tests on 1 worker(s); 3 OTel sub-spans in tests, 0 outside")
    assert "requests.GET \u00d73" in lines[1]
    assert "(1 error)" in lines[1]
    assert "t.py::test_b [gw3] — 3 sub-spans: requests.GET \u00d73" in lines[3]


def test_past_the_cap_spans_are_counted_not_kept(
    provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_trace.recording, "MAX_OTEL_SPANS", 2)
    rec = _trace.Recorder("main", None)
    _trace.install(rec)
    try:
        test = rec.open("t.py::test_c", _trace.KIND_TEST, test="t.py::test_c")
        for _ in range(3):
            with provider.get_tracer("manual").start_as_current_span("op"):
                pass
        rec.close(test)
        rec.finish()
    finally:
        _trace.install(None)
    assert len([s for s in rec.spans if s.kind == _trace.KIND_OTEL]) == 2
    lines = _trace.summary_lines([_trace.Lane.of_recorder(rec)])
    assert "3 OTel sub-spans in tests" in lines[0]
    assert "1 not in the trace" in lines[0]
    assert "manual.op \u00d73" in lines[1]
