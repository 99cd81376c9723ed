"""`dagz.integ.otel`: the same module object as `dagz.otel` (see there)."""

from __future__ import annotations

import sys

import dagz.otel

sys.modules[__name__] = dagz.otel
