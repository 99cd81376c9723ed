# dagz — build, test and lint entry points.
#
#   make build   cargo build --release  -> target/release/libdagz.so
#   make venv    .venv (test/lint tools + drivers) and .venv-src (psycopg2 built from source)
#   make test    build + venv + cargo test --release + end-to-end pytest suite (tests/e2e)
#   make e2e     only the end-to-end suite (builds the shim and the venvs first)
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
VENV_STAMP := $(VENV)/.dagz-stamp
VENV_SRC_STAMP := $(VENV_SRC)/.dagz-stamp
SHIM := target/release/libdagz.so
# The e2e tests are subprocess-bound (psql, python children): more workers than cores pays off.
E2E_WORKERS ?= 4
E2E_ARGS ?=
PIP_FLAGS := --disable-pip-version-check --no-input --quiet
# make fuzz: seconds of fuzzing. Seeds in fuzz/corpus/rewrite (committed, read-only for the run);
# what the fuzzer finds goes to fuzz/corpus-work/rewrite (ignored), crashes to fuzz/artifacts.
FUZZ_SECONDS ?= 60

.PHONY: build venv test cargo-test e2e lint fmt bench demo clean-venv fuzz

build:
	$(CARGO) build --release

venv: $(VENV_STAMP) $(VENV_SRC_STAMP)

# The dagz package itself, editable: the plugin, `dagz shim-path`, and the e2e tests import it
# (the shim it finds is target/release/libdagz.so, built by `make build`).
$(VENV_STAMP): $(REQ) pyproject.toml setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r $(REQ)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e .
	touch $@

# psycopg2 from the sdist, compiled against the system libpq (pg_config from libpq-dev).
$(VENV_SRC_STAMP): $(REQ_SRC)
	test -x $(VENV_SRC)/bin/python || $(PYTHON) -m venv $(VENV_SRC)
	$(VENV_SRC)/bin/python -m pip install $(PIP_FLAGS) --no-binary psycopg2 -r $(REQ_SRC)
	touch $@

cargo-test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --release

e2e: build venv
	$(VENV)/bin/python -m pytest -n $(E2E_WORKERS) tests/e2e $(E2E_ARGS)

test: build venv cargo-test e2e

lint: $(VENV_STAMP) build
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	scripts/rust_size_check.sh
	scripts/abi_check.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV_STAMP)
	$(CARGO) fmt
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench:
	if [ -x bench/run ]; then bench/run; else echo "bench: no bench/run yet, nothing to do"; fi

demo: build venv
	scripts/demo.sh

clean-venv:
	rm -rf $(VENV) $(VENV_SRC)

# Only a stable toolchain here: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its -Z sanitizer flags.
fuzz:
	$(CARGO) fuzz --help >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus-work/rewrite
	RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run rewrite fuzz/corpus-work/rewrite fuzz/corpus/rewrite -- -max_total_time=$(FUZZ_SECONDS)
