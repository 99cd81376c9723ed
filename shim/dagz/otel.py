"""`dagz.otel` (also `dagz.integ.otel`): OpenTelemetry spans as dagz sub-spans.

Call once from the root ``conftest.py``::

    import dagz.otel

    dagz.otel.configure(dd=False)

While the dagz pytest plugin is active, every OTel span that ends during a test — in any thread of
the worker, e.g. a live server thread answering the test — becomes a sub-span of that test
(spans ending outside any test belong to the session), with ``otel_type`` = short instrumentation
scope + operation (``psycopg2.SELECT``, ``requests.GET``) and a `SpanResult` from its status.
``pytest --dagz-trace=PATH`` writes the whole run as Chrome Trace Event JSON (open it in Perfetto);
the terminal summary lists the slowest tests with their sub-spans by ``otel_type``.

``configure`` is a no-op when the plugin is not active in this process (a plain ``python``
process, or pytest without ``--dagz``/``--dagz-workers``/the shim). The root conftest is imported
before the plugin's ``pytest_configure`` decides whether it is active, so the request is kept and
applied when the plugin activates; nothing at all changes before that.

Needs the ``otel`` extra: ``pip install 'dagz[otel]'`` (opentelemetry-api, -sdk, -instrumentation).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagz._state import STATE, log
from dagz.trace import recording as _recording
from dagz.trace.model import SpanResult

_MISSING_MSG = (
    "dagz.otel needs the OpenTelemetry packages opentelemetry-api, opentelemetry-sdk and "
    "opentelemetry-instrumentation: install them with `pip install 'dagz[otel]'`"
)

try:
    from opentelemetry import trace as _trace_api
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace import Span as _SdkSpan
except ImportError as _exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(f"{_MISSING_MSG} ({_exc})") from _exc
if importlib.util.find_spec("opentelemetry.instrumentation.auto_instrumentation") is None:
    raise ImportError(f"{_MISSING_MSG} (opentelemetry-instrumentation is missing)")

__all__ = [
    "SPAN_PROCESSOR",
    "DagzSpanProcessor",
    "SpanResult",
    "configure",
    "is_configured",
]

#: The environment variable OpenTelemetry's auto-instrumentation reads its exclusions from.
DISABLED_INSTRUMENTATIONS_ENV = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"

_get_ident = threading.get_ident
_current_thread = threading.current_thread


class DagzSpanProcessor(SpanProcessor):
    """Hands every finished span to this process's dagz recorder.

    ``on_start`` does nothing; ``on_end`` is one deque append (no lock, no I/O, no conversion:
    the recorder converts at the end of each test, in the pytest thread). Neither ever raises
    into the application."""

    def on_start(self, span: _SdkSpan, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            rec = _recording.RECORDER
            if rec is not None:
                rec.pending.append((span, rec.sink, _get_ident(), _current_thread().name))
        except Exception:
            pass

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


#: The one processor dagz attaches to every tracer provider it sees.
SPAN_PROCESSOR = DagzSpanProcessor()


@dataclass(frozen=True)
class _Request:
    start_provider: bool
    auto_instrument: bool
    instrument_logging: bool


_lock = threading.RLock()
_pending: _Request | None = None
_applied: _Request | None = None
_auto_instrumented = False
_original_set_tracer_provider: Callable[[Any], None] | None = None
_attached: weakref.WeakSet[Any] = weakref.WeakSet()
_attached_ids: set[int] = set()


def configure(
    *,
    dd: bool,
    start_provider: bool = True,
    auto_instrument: bool = True,
    instrument_logging: bool = False,
) -> None:
    """Mirror OpenTelemetry spans into dagz (call once, from the root conftest).

    - ``dd`` (required): must be False. ``dd=True`` raises `ValueError`: when ``ddtrace`` is
      importable (the Datadog integration is not supported), and also when it is not (there is
      nothing to integrate with).
    - ``start_provider``: create and set an SDK ``TracerProvider`` if none is set; either way the
      dagz span processor is attached to the global provider (when it is an SDK provider).
    - ``auto_instrument``: run OpenTelemetry's ``auto_instrumentation.initialize()`` (every
      installed instrumentation, plus a distro/configurator if one is installed). It runs before
      the provider check, so a configurator's own provider is kept and gets the processor.
    - ``instrument_logging=False``: add ``logging`` to ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
      first, so OTel does not replace the logging module's record factory/format.

    ``trace.set_tracer_provider`` is patched, so any provider set later gets the processor too.
    No-op (nothing is changed) unless the dagz pytest plugin is active in this process; called
    before the plugin activates (at root-conftest import), the request is applied when it does.
    """
    _check_dd(dd)
    for name, value in (
        ("start_provider", start_provider),
        ("auto_instrument", auto_instrument),
        ("instrument_logging", instrument_logging),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"dagz.otel.configure(): {name} must be True or False, got {value!r}")
    request = _Request(start_provider, auto_instrument, instrument_logging)
    global _pending  # noqa: PLW0603 - module-level request applied when the plugin activates
    with _lock:
        _pending = request
    if STATE.active:
        # configure() from a conftest loaded after pytest_configure: the plugin registers the
        # OTel half now (it is only registered when OTel or a trace is asked for).
        from dagz import plugin

        plugin.ensure_otel_plugin()
    _apply_if_active()


def requested() -> bool:
    """True once `configure` was called in this process (applied or waiting for the plugin)."""
    return _pending is not None or _applied is not None


def is_configured() -> bool:
    """True once a `configure` request has been applied in this process."""
    return _applied is not None


def _ddtrace_importable() -> bool:
    if "ddtrace" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("ddtrace") is not None
    except (ImportError, ValueError):
        return False


def _check_dd(dd: object) -> None:
    if not isinstance(dd, bool):
        raise TypeError(f"dagz.otel.configure(): dd must be True or False, got {dd!r}")
    if not dd:
        return
    if _ddtrace_importable():
        raise ValueError(
            "dagz: dagz.otel.configure(dd=True): the Datadog (ddtrace) integration is not "
            "supported; ddtrace is importable here, but dagz only mirrors OpenTelemetry spans. "
            "Pass dd=False."
        )
    raise ValueError(
        "dagz: dagz.otel.configure(dd=True) is not supported (and ddtrace is not installed): "
        "pass dd=False."
    )


def _apply_if_active() -> bool:
    """Apply the pending request when the dagz plugin is active in this process."""
    global _pending, _applied  # noqa: PLW0603
    with _lock:
        request = _pending
        if request is None or not STATE.active:
            return False
        _pending = None
        _apply(request)
        _applied = request
    return True


def _on_plugin_active() -> None:
    """Called by the dagz OTel plugin when it is registered (in ``pytest_configure``)."""
    _apply_if_active()


def _apply(request: _Request) -> None:
    if not request.instrument_logging:
        _disable_logging_instrumentation()
    _patch_set_tracer_provider()
    if request.auto_instrument:
        _auto_instrument()
    provider = _trace_api.get_tracer_provider()
    if request.start_provider and isinstance(provider, _trace_api.ProxyTracerProvider):
        _trace_api.set_tracer_provider(TracerProvider())
        provider = _trace_api.get_tracer_provider()
    _attach(provider)


def _disable_logging_instrumentation() -> None:
    current = os.environ.get(DISABLED_INSTRUMENTATIONS_ENV, "")
    parts = [p.strip() for p in current.split(",") if p.strip()]
    if "logging" not in parts and "*" not in parts:
        os.environ[DISABLED_INSTRUMENTATIONS_ENV] = ",".join([*parts, "logging"])


def _patch_set_tracer_provider() -> None:
    global _original_set_tracer_provider  # noqa: PLW0603
    if _original_set_tracer_provider is not None:
        return
    original = _trace_api.set_tracer_provider

    @functools.wraps(original)
    def set_tracer_provider(tracer_provider: Any) -> None:
        original(tracer_provider)
        _attach(tracer_provider)

    set_tracer_provider.__dagz_original__ = original  # type: ignore[attr-defined]
    _original_set_tracer_provider = original
    _trace_api.set_tracer_provider = set_tracer_provider


def _attach(provider: Any) -> bool:
    """Add the dagz processor to `provider` once (SDK providers; others are skipped)."""
    try:
        add = getattr(provider, "add_span_processor", None)
        if add is None:
            return False
        with _lock:
            try:
                if provider in _attached:
                    return True
            except TypeError:
                if id(provider) in _attached_ids:
                    return True
            add(SPAN_PROCESSOR)
            try:
                _attached.add(provider)
            except TypeError:
                _attached_ids.add(id(provider))
        return True
    except Exception as exc:
        log(f"otel: could not attach the span processor to {type(provider).__name__}: {exc}")
        return False


def _auto_instrument() -> None:
    global _auto_instrumented  # noqa: PLW0603
    if _auto_instrumented:
        return
    _auto_instrumented = True
    from opentelemetry.instrumentation.auto_instrumentation import initialize

    initialize()
