"""The OpenTelemetry half of the dagz pytest plugin (registered by `dagz.plugin` when dagz is
active): test spans with setup/fixture, `test.call` and teardown children; the recording of
this process (OTel sub-spans arrive through `dagz.otel`'s span processor); the per-worker
payload sent to the controller; the merged `--dagz-trace` file and the terminal summary.

Works without OpenTelemetry installed (then a trace has the test spans only): `dagz.otel` is
touched only when the conftest imported it.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from dagz import trace as _trace
from dagz._state import log
from dagz.trace import recording as _recording
from dagz.trace.model import (
    KIND_CALL,
    KIND_FIXTURE,
    KIND_OTEL,
    KIND_SETUP,
    KIND_TEARDOWN,
    KIND_TEST,
    Span,
    SpanResult,
)
from dagz.trace.recording import Recorder

#: Key of this plugin's payload in ``config.workeroutput`` / ``node.workeroutput``.
WORKEROUTPUT_KEY = "dagz_otel"
#: How many of the slowest tests the terminal summary lists.
SUMMARY_TOP = 10

_PHASES = {
    "setup": (KIND_SETUP, "setup"),
    "call": (KIND_CALL, "test.call"),
    "teardown": (KIND_TEARDOWN, "teardown"),
}


def _worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    return str(workerinput.get("workerid", "gw?"))


class OtelPlugin:
    """pytest hooks of the OTel half; one per pytest process in which dagz is active."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        worker = _worker_id(config)
        self.is_worker = worker is not None
        num: int | None = None
        if worker is not None and worker[2:].isdigit():
            num = int(worker[2:])
        lane = worker if worker is not None else "main"
        trace_opt = config.getoption("dagz_trace", None)
        # Without a trace file only the summary's numbers are kept per OTel span.
        self.recorder = Recorder(lane, num, keep_spans=bool(trace_opt))
        _trace.install(self.recorder)
        self.trace_path: Path | None = None
        if trace_opt:
            path = Path(str(trace_opt)).expanduser()
            self.trace_path = path if path.is_absolute() else config.invocation_params.dir / path
        self.remote: list[dict[str, Any]] = []
        self.lost: list[str] = []
        self.lines: list[str] = []
        self._phase_spans: dict[str, Span] = {}
        self._test_span: Span | None = None
        otel = sys.modules.get("dagz.otel")
        if otel is not None:
            try:
                otel._on_plugin_active()
            except Exception as exc:
                log(
                    f"otel: dagz.otel.configure() could not be applied: {type(exc).__name__}: {exc}"
                )

    # -- the spans of a test ----------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        rec = self.recorder
        span = rec.open(
            item.nodeid,
            KIND_TEST,
            test=item.nodeid,
            attrs={"nodeid": item.nodeid, "worker": rec.lane},
        )
        self._test_span = span
        self._phase_spans = {}
        try:
            return (yield)
        finally:
            span.attrs.setdefault("outcome", "passed")
            rec.close(span)
            self._test_span = None
            self._phase_spans = {}
            try:
                rec.drain()
            except Exception as exc:
                log(f"otel: converting spans failed: {type(exc).__name__}: {exc}")

    def _phase(self, when: str) -> Generator[None, Any, Any]:
        kind, name = _PHASES[when]
        span = self.recorder.open(name, kind)
        self._phase_spans[when] = span
        try:
            return (yield)
        except BaseException:
            span.result = SpanResult.ERROR.value
            raise
        finally:
            self.recorder.close(span)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase("setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase("call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        return (yield from self._phase("teardown"))

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
        if self._test_span is None:
            return (yield)
        span = self.recorder.open(
            f"fixture {fixturedef.argname}",
            KIND_FIXTURE,
            attrs={"fixture": fixturedef.argname, "scope": fixturedef.scope},
        )
        try:
            return (yield)
        except (pytest.skip.Exception, pytest.xfail.Exception):
            raise
        except BaseException:
            span.result = SpanResult.ERROR.value
            raise
        finally:
            self.recorder.close(span)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The phase's outcome (a skip is not an error; xfail is recorded as such)."""
        phase = self._phase_spans.get(report.when)
        test = self._test_span
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        if phase is not None:
            phase.attrs["outcome"] = outcome
            phase.result = SpanResult.ERROR.value if report.failed else SpanResult.OK.value
        if test is None:
            return
        if report.failed:
            test.result = SpanResult.ERROR.value
            if test.attrs.get("outcome") not in ("failed", "error"):
                test.attrs["outcome"] = "failed" if report.when == "call" else "error"
        elif "outcome" not in test.attrs and (report.when == "call" or report.skipped):
            test.attrs["outcome"] = outcome

    # -- the end of the run ---------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        rec = self.recorder
        try:
            rec.finish()
        except Exception as exc:
            log(f"otel: finishing the recording failed: {type(exc).__name__}: {exc}")
        if self.is_worker:
            try:
                out = self.config.workeroutput  # type: ignore[attr-defined]
                out[WORKEROUTPUT_KEY] = _trace.encode_payload(rec.payload())
            except Exception as exc:
                log(f"otel: could not send this worker's spans: {type(exc).__name__}: {exc}")
            return
        try:
            self._finish_controller()
        except Exception as exc:
            self.lines.append(f"trace output failed: {type(exc).__name__}: {exc}")

    def _finish_controller(self) -> None:
        lanes = [_trace.Lane(p) for p in self.remote]
        own = _trace.Lane.of_recorder(self.recorder)
        # Under xdist the controller runs no test: its lane is kept only when it recorded spans.
        if (
            not lanes
            or own.payload.get("stats")
            or any(s.kind in (KIND_TEST, KIND_OTEL) for s in own.spans)
        ):
            lanes.append(own)
        otel = sys.modules.get("dagz.otel")
        otel_on = otel is not None and bool(otel.is_configured())
        sub_spans = any(ln.payload.get("stats") for ln in lanes) or any(
            s.kind == KIND_OTEL for ln in lanes for s in ln.spans
        )
        if self.trace_path is None and not otel_on and not sub_spans:
            return
        self.lines = _trace.summary_lines(lanes, top=SUMMARY_TOP)
        self.lines.extend(self.lost)
        if self.trace_path is not None:
            try:
                n = _trace.write_chrome_trace(self.trace_path, lanes)
            except OSError as exc:
                self.lines.append(f"could not write the trace to {self.trace_path}: {exc}")
            else:
                self.lines.append(
                    f"trace: {self.trace_path} ({n} spans): open it in Perfetto, "
                    "https://ui.perfetto.dev → Open trace file"
                )

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Controller: a worker finished (or died); take its spans."""
        out = getattr(node, "workeroutput", None) or {}
        payload = _trace.decode_payload(out.get(WORKEROUTPUT_KEY))
        name = getattr(node, "gateway", None)
        worker = str(getattr(name, "id", "worker"))
        if payload is not None:
            if not any(
                p.get("lane") == payload.get("lane") and p.get("pid") == payload.get("pid")
                for p in self.remote
            ):
                self.remote.append(payload)
        else:
            self.lost.append(
                f"{worker}: no spans received" + (f" (worker down: {error})" if error else "")
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines or self.is_worker:
            return
        terminalreporter.section("dagz otel")
        for line in self.lines:
            terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if _recording.RECORDER is self.recorder:
            _trace.install(None)
