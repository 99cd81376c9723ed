# dagz — build, test and lint entry points.
#
#   make deps    the system packages (scripts/deps.sh: one list; apt-get as root, else a message)
#   make servers PostgreSQL, MariaDB, Redis, RabbitMQ and its management API answer (scripts/servers.sh:
#                as root it starts what is down, else it names the command); e2e, bench and
#                scripts/demo.sh run it
#   make build   cargo build --release  -> target/release/libdagz.so
#   make wheel   dist/dagz-<version>-py3-none-<platform>.whl (setuptools-rust, stripped libdagz.so)
#   make venv    .venv (test/lint tools + drivers) and .venv-src (psycopg2 built from source)
#   make test    build + venv + cargo test --release + end-to-end pytest suite (tests/e2e)
#   make e2e     only the end-to-end suite (builds the shim and the venvs first), then checks that
#                it left nothing on the servers or in /tmp (scripts/leftovers.py)
#   make lint    cargo fmt --check, cargo clippy -D warnings, Rust size limits, the C ABI check
#                (scripts/abi_check.sh: header vs library vs Python vs Rust), ruff check, ruff format --check
#   make bench   runs bench/run when it exists
#   make demo    the example suite (examples/shop): serial, on 4 dagz workers (trace on), and without dagz
#   make fuzz    cargo fuzz on the pure conninfo/USE rewriters for FUZZ_SECONDS (default 60)
#
# The venvs are guarded by stamp files: `make venv` is a no-op unless a requirements file changed
# (or a venv was deleted).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
CARGO ?= cargo
VENV := .venv
VENV_SRC := .venv-src
REQ := scripts/requirements-test.txt
REQ_SRC := scripts/requirements-src.txt
REQ_DEMO := examples/requirements.txt
VENV_DEMO_STAMP := $(VENV)/.dagz-demo-stamp
VENV_STAMP := $(VENV)/.dagz-stamp
VENV_SRC_STAMP := $(VENV_SRC)/.dagz-stamp
PHASE := scripts/phase.sh
SHIM := target/release/libdagz.so
# The e2e tests are subprocess-bound (psql, python children): more workers than cores pays off.
E2E_WORKERS ?= 4
E2E_ARGS ?=
PIP_FLAGS := --disable-pip-version-check --no-input --quiet
# make fuzz: seconds of fuzzing. Seeds in fuzz/corpus/rewrite (committed, read-only for the run);
# what the fuzzer finds goes to fuzz/corpus-work/rewrite (ignored), crashes to fuzz/artifacts.
FUZZ_SECONDS ?= 60
# make wheel: cargo's target dir for the wheel's build, apart from target/release (make build).
WHEEL_TARGET_DIR ?= target/wheel

.PHONY: deps servers build wheel venv test cargo-test e2e lint fmt bench demo demo-clean clean-venv fuzz fuzz-mysql

deps:
	@scripts/deps.sh

servers: deps
	@scripts/servers.sh

build: deps
	@$(PHASE) "build: cargo build --release (libdagz.so)" $(CARGO) build --release --quiet

# The installable wheel: setuptools-rust builds the cdylib (no Python binding) and ships it stripped
# as dagz/libdagz.so; installing it needs no Rust toolchain. Old dist/dagz-*.whl are removed first.
wheel: deps
	@rm -f dist/dagz-*.whl
	@$(PHASE) "wheel: pip wheel . -w dist (libdagz.so built by setuptools-rust)" \
		env CARGO=$(CARGO) CARGO_TARGET_DIR=$(WHEEL_TARGET_DIR) \
		$(PYTHON) -m pip wheel $(PIP_FLAGS) --no-deps -w dist .
	@ls -l dist/dagz-*.whl

venv: $(VENV_STAMP) $(VENV_SRC_STAMP)

# What the demo runs: the example's requirements and the dagz package itself, editable (the
# plugin, `dagz shim-path`; the shim it finds is target/release/libdagz.so, built by `make build`).
$(VENV_DEMO_STAMP): $(REQ_DEMO) pyproject.toml setup.py | deps
	@test -x $(VENV)/bin/python || $(PHASE) "venv: python -m venv $(VENV)" $(PYTHON) -m venv $(VENV)
	@$(PHASE) "venv: pip install -r $(REQ_DEMO) -e . (into $(VENV))" \
		$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r $(REQ_DEMO) -e .
	@touch $@

# Everything the tests, linters and benchmarks use besides.
$(VENV_STAMP): $(REQ) $(VENV_DEMO_STAMP)
	@$(PHASE) "venv: pip install -r $(REQ) (test tools and drivers)" \
		$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r $(REQ)
	@touch $@

# psycopg2 from the sdist, compiled against the system libpq (pg_config from libpq-dev).
$(VENV_SRC_STAMP): $(REQ_SRC) | deps
	@test -x $(VENV_SRC)/bin/python || $(PYTHON) -m venv $(VENV_SRC)
	@$(PHASE) "venv: psycopg2 from source into $(VENV_SRC) (tests of the system libpq)" \
		$(VENV_SRC)/bin/python -m pip install $(PIP_FLAGS) --no-binary psycopg2 -r $(REQ_SRC)
	@touch $@

cargo-test: deps
	@$(PHASE) "cargo fmt --check" $(CARGO) fmt --check
	@$(PHASE) "cargo clippy -D warnings" $(CARGO) clippy --quiet --all-targets -- -D warnings
	@$(PHASE) "cargo test --release" $(CARGO) test --release --quiet

# The suite's names on the servers start with a run prefix (dz_ + 6 random hex) that
# scripts/leftovers.py makes and hands to pytest (DAGZ_E2E_RUN), and the suite gets a TMPDIR of its
# own (/tmp/<prefix>.XXXXXX, removed at the end), where its machine-local lease files go too
# (DAGZ_LEASE_DIR; else /tmp/dagz-leases was made). leftovers.py lists both servers and the
# dagz-run-* folders before and after the suite and fails the target if the run left or removed
# anything (its docstring says what counts). pytest's own failure keeps its exit code.
e2e: build venv servers
	@snap=$$(mktemp target/e2e-snapshot.XXXXXX); \
	run=$$($(VENV)/bin/python scripts/leftovers.py snapshot "$$snap") || { rm -f "$$snap"; exit 2; }; \
	tmp=$$(mktemp -d "/tmp/$$run.XXXXXX"); \
	rc=0; \
	DAGZ_E2E_RUN=$$run TMPDIR=$$tmp DAGZ_LEASE_DIR=$$tmp/dagz-leases $(PHASE) "e2e: pytest -n $(E2E_WORKERS) tests/e2e (names $${run}_*)" \
		$(VENV)/bin/python -m pytest -n $(E2E_WORKERS) tests/e2e $(E2E_ARGS) || rc=$$?; \
	$(PHASE) "e2e: leftovers check (databases on both servers, RabbitMQ vhosts, dagz-run-* folders)" \
		$(VENV)/bin/python scripts/leftovers.py compare "$$snap" --tmp "$$tmp" || { [ $$rc -ne 0 ] || rc=1; }; \
	rm -rf "$$snap" "$$tmp"; \
	exit $$rc

test: build venv cargo-test e2e

lint: $(VENV_STAMP) build
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	scripts/rust_size_check.sh
	$(VENV)/bin/python scripts/py_size_check.py
	scripts/abi_check.sh
	$(VENV)/bin/python scripts/check_doc_paths.py docs/ARCHITECTURE.md README.md
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV_STAMP)
	$(CARGO) fmt
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: build venv servers
	if [ -x bench/run ]; then bench/run; else echo "bench: no bench/run yet, nothing to do"; fi

demo: build $(VENV_DEMO_STAMP)
	@scripts/demo.sh

# Drops what `make demo` left on the servers (the example's bases and their worker copies) and
# removes target/demo (scripts/demo.sh --clean).
demo-clean: $(VENV_DEMO_STAMP)
	@scripts/demo.sh --clean

clean-venv:
	rm -rf $(VENV) $(VENV_SRC)

# Only a stable toolchain here: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its -Z sanitizer flags.
fuzz:
	$(CARGO) fuzz --help >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus-work/rewrite
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run rewrite fuzz/corpus-work/rewrite fuzz/corpus/rewrite -- -max_total_time=$(FUZZ_SECONDS)

# The MySQL statement classifier (src/core/mysql_sql, issue 12) for FUZZ_SECONDS; seeds in
# fuzz/corpus/mysql_classify, findings in fuzz/corpus-work/mysql_classify (ignored).
fuzz-mysql:
	$(CARGO) fuzz --help >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus-work/mysql_classify
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run mysql_classify fuzz/corpus-work/mysql_classify fuzz/corpus/mysql_classify -- -max_total_time=$(FUZZ_SECONDS)
