"""The dagz e2e suite's own collection stops here.

``app/`` is the warm-start sample *user* project: ``test_warm_run.py`` runs pytest on it in a
subprocess (in place, with its own base temp dir and events file per run). Collected by the suite
itself, its conftest would configure dagz inside the suite's own processes.
"""

collect_ignore = ["app"]
