"""Every environment variable dagz reads or sets, by name, in one place.

The shim (Rust) reads the first group itself at every connect; the Python package reads and
sets the rest. Children of a test inherit all of them.
"""

from __future__ import annotations

# -- read by libdagz.so (and mirrored here for the Python side) ---------------------------------
#: Worker number N (decimal); overrides PYTEST_XDIST_WORKER.
WORKER = "DAGZ_WORKER"
#: Number of workers; overrides PYTEST_XDIST_WORKER_COUNT.
WORKER_COUNT = "DAGZ_WORKER_COUNT"
#: Path of the TOML policy file.
POLICY = "DAGZ_POLICY"
#: `1`/`true`/`all`: reroute nothing; `pg`, `mysql`, `pg,mysql`: those engines off.
DISABLE = "DAGZ_DISABLE"
#: Per-database overrides of the rerouted name, `pg:base=fresh,mysql:base2=fresh2`: set by a
#: worker whose usual worker database could not be rebuilt (dagz.fresh).
RENAME = "DAGZ_RENAME"
#: `off`, `error`, `warn`, `info`, `debug`.
LOG = "DAGZ_LOG"
#: Set by pytest-xdist in its workers: `gwN`, and the number of workers.
XDIST_WORKER = "PYTEST_XDIST_WORKER"
XDIST_WORKER_COUNT = "PYTEST_XDIST_WORKER_COUNT"

# -- the Python package -------------------------------------------------------------------------
#: Where libdagz.so is (overrides the packaged copy and a checkout's build).
SHIM = "DAGZ_SHIM"
#: The run's directory (main-worker test lists, the base-read cache), made by the controller.
RUN_DIR = "DAGZ_RUN_DIR"
#: `1`: rebuild every worker database (`--dagz-fresh`).
FRESH = "DAGZ_FRESH"
#: Set when a serial `pytest --dagz` started itself again with the shim preloaded.
REEXEC = "DAGZ_REEXEC"
#: The pid of the process whose worker lease exported DAGZ_WORKER (dagz.lease); a run started
#: from inside a test of that process chooses its own numbers.
WORKER_LEASE = "DAGZ_WORKER_LEASE"
#: The directory of machine-local lease files (default /tmp/dagz-leases), for families whose
#: server dagz does not know.
LEASE_DIR = "DAGZ_LEASE_DIR"
#: How many worker databases are provisioned at once per server (`dagz.engines.slots`): N,
#: `auto` (2 per server core); unset or 0: no bound.
PROVISION_SLOTS = "DAGZ_PROVISION_SLOTS"
