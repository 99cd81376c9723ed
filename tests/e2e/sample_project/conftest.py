"""The dagz e2e suite's own collection stops here.

``myproject/`` is a sample *user* project: the acceptance tests (``test_plugin_*.py``) copy it into
a temporary directory and run pytest on that copy in a subprocess. Collected in place, its root
``conftest.py`` would configure dagz inside the e2e suite's own processes and its tests would run
against nothing, so the suite never looks inside.
"""

collect_ignore = ["myproject"]
