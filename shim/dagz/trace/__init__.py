"""dagz spans: the span model, its recording, the merge of the workers' recordings, the Chrome
Trace Event writer and the terminal summary.

No pytest and no OpenTelemetry imports here: the OTel span processor (`dagz.otel`) only hands
finished OTel spans to the `Recorder` of this process (an O(1) append, nothing else), and the
pytest half (`dagz._otel_plugin`) opens and closes the dagz spans (session, test, setup, fixture,
`test.call`, teardown) and converts the handed-over OTel spans at the end of each test.

A recorded run is a list of *payloads*, one per process that ran tests (an xdist worker, or the
single pytest process): plain dicts, lists, strings and numbers, so that a worker can send its
payload to the controller through ``config.workeroutput``. The controller merges them into one
trace (`chrome_trace`) and one summary (`summary_lines`).

Modules, one concern each:

- `dagz.trace.model`: span kinds, `SpanResult`, `Span` and its wire format.
- `dagz.trace.convert`: a finished OTel span as a dagz sub-span (`otel_type`, kept attributes).
- `dagz.trace.recording`: the `Recorder` of this process; `recording.RECORDER` is the one the
  span processor hands spans to (set with `install`; read it there, it is not copied here).
- `dagz.trace.merge`: payloads (encode, decode) and their `Lane`s.
- `dagz.trace.chrome`: the Chrome Trace Event writer.
- `dagz.trace.summary`: the terminal summary.
"""

from __future__ import annotations

from dagz.trace.chrome import chrome_trace, nest_lanes, write_chrome_trace
from dagz.trace.convert import (
    DbNames,
    keep_attrs,
    operation_of,
    otel_to_span,
    otel_type_of,
    short_scope,
    shorten,
    strip_credentials,
)
from dagz.trace.merge import Lane, decode_payload, encode_payload, lanes_of
from dagz.trace.model import (
    ATTR_CHARS,
    KIND_CALL,
    KIND_FIXTURE,
    KIND_OTEL,
    KIND_SESSION,
    KIND_SETUP,
    KIND_TEARDOWN,
    KIND_TEST,
    PAYLOAD_VERSION,
    STATEMENT_CHARS,
    WIRE_FIELDS,
    Span,
    SpanResult,
)
from dagz.trace.recording import MAX_OTEL_SPANS, Recorder, install, link_parents
from dagz.trace.summary import summary_lines

__all__ = [
    "ATTR_CHARS",
    "KIND_CALL",
    "KIND_FIXTURE",
    "KIND_OTEL",
    "KIND_SESSION",
    "KIND_SETUP",
    "KIND_TEARDOWN",
    "KIND_TEST",
    "MAX_OTEL_SPANS",
    "PAYLOAD_VERSION",
    "STATEMENT_CHARS",
    "WIRE_FIELDS",
    "DbNames",
    "Lane",
    "Recorder",
    "Span",
    "SpanResult",
    "chrome_trace",
    "decode_payload",
    "encode_payload",
    "install",
    "keep_attrs",
    "lanes_of",
    "link_parents",
    "nest_lanes",
    "operation_of",
    "otel_to_span",
    "otel_type_of",
    "short_scope",
    "shorten",
    "strip_credentials",
    "summary_lines",
    "write_chrome_trace",
]
