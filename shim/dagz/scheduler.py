"""xdist scheduling that sends `@pytest.mark.dagz_main_worker` tests to worker 0 (gw0).

Workers write the node ids of marked tests into `$DAGZ_RUN_DIR` during collection (before they
report their collection), so the file is complete when the controller schedules. Whenever any
node is given tests, every pending marked test goes to gw0 first; other nodes never get one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadScheduling

from dagz import envvars


class MainWorkerScheduling(LoadScheduling):
    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._main: set[int] | None = None

    def _main_indexes(self) -> set[int]:
        if self._main is None:
            names: set[str] = set()
            run_dir = os.environ.get(envvars.RUN_DIR)
            if run_dir:
                for f in Path(run_dir).glob("main-worker-tests.*.json"):
                    names.update(json.loads(f.read_text()))
            coll = self.collection or []
            self._main = {i for i, nodeid in enumerate(coll) if nodeid in names}
        return self._main

    def _gw0(self) -> Any:
        for node in self.nodes:
            if node.gateway.id == "gw0":
                return node
        return None

    def _send_tests(self, node: Any, num: int) -> None:
        main = self._main_indexes()
        gw0 = self._gw0()
        if not main or gw0 is None:
            super()._send_tests(node, num)
            return
        pending_main = [i for i in self.pending if i in main]
        if pending_main:
            self.pending[:] = [i for i in self.pending if i not in main]
            self.node2pending[gw0].extend(pending_main)
            gw0.send_runtest_some(pending_main)
            if node is gw0:
                num -= len(pending_main)
        if num > 0:
            super()._send_tests(node, num)
