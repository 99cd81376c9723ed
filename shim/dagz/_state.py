"""Per-process run state shared by the plugin and the configs (no pytest imports here)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunState:
    #: True while a pytest run with the dagz plugin active is going on in this process.
    active: bool = False
    #: True when this process reroutes (an active run, and not the xdist controller).
    reroute: bool = False
    #: nodeid of the test whose protocol is running (setup → call → teardown), else None.
    current_test: str | None = None
    #: prepare() failures of the current test phase, raised by the plugin after the phase.
    prepare_errors: list[BaseException] = field(default_factory=list)
    #: Databases named once in the log because they were rerouted outside any test.
    announced_outside_tests: set[str] = field(default_factory=set)
    #: Lines for the terminal summary (also sent from xdist workers to the controller).
    summary: list[str] = field(default_factory=list)
    #: Called after any family's configure() (the plugin keeps DAGZ_DISABLE in step).
    on_configure: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)


STATE = RunState()


def log(msg: str) -> None:
    """A `dagz[pid]: …` line on stderr — never through `warnings` (suites run with -W error)."""
    try:
        sys.stderr.write(f"dagz[{os.getpid()}]: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
