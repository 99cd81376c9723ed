"""The dagz e2e suite's own collection stops here.

``site/`` is a small Django project (apps ``shop`` and ``ledger``, two aliases and a mirror, a
``RunPython`` migration per app that records each execution in a file outside the databases):
``test_django.py`` copies it to a tmp dir and runs pytest-django on it under dagz. Collected by
the suite itself, its conftest would configure dagz inside the suite's own processes.
"""

collect_ignore = ["site"]
