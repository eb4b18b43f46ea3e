# One entry point for every routine task. `make help` lists them.
SHELL := /bin/bash
STACK ?= dev
VENV := venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BOOTSTRAP_PYTHON ?= python3

.PHONY: help setup preview test lint bench image image-smoke clean

help:
	@echo "make setup              create venv/ with the Pulumi program, dev tools and the plugin (editable)"
	@echo "make preview STACK=dev  offline plan of a stack under Pulumi's mock engine (no CLI, no credentials)"
	@echo "make scan STACK=dev     checkov over build/<stack>/manifests (its own venv in build/tools/)"
	@echo "make test               installs the Debian packages the tests use (as root), then ruff, mypy and"
	@echo "                        the whole pytest suite"
	@echo "make lint               ruff and mypy only"
	@echo "make bench              run every benchmark in bench/ (prints tables, writes bench/results/*.json)"
	@echo "make image              build the plugin and tools images from plugin_image/Dockerfile"
	@echo "make image-smoke        run the built images: the plugin against a kubelet stand-in, the tools"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml plugin_image/pyproject.toml
	@$(BOOTSTRAP_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "ack-rdma needs \
	Python >= 3.11; $(BOOTSTRAP_PYTHON) is $$($(BOOTSTRAP_PYTHON) -V 2>&1). Pass BOOTSTRAP_PYTHON=python3.11 \
	(or newer)." >&2; exit 2; }
	@bash scripts/system-packages.sh setup
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements-dev.txt
	touch $@

setup: $(STAMP)

preview: $(STAMP)
	$(PY) -m offline_engine.plan --stack $(STACK)

.PHONY: scan
scan:
	scripts/scan-manifests.sh build/$(STACK)/manifests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd plugin_image && ../$(VENV)/bin/mypy

# The system packages first: the suite runs libibverbs, pyverbs and perftest for real and fails without them.
test: test-packages lint
	$(VENV)/bin/pytest

.PHONY: test-packages
test-packages:
	@bash scripts/system-packages.sh test

bench: $(STAMP)
	@set -e; for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f; done

image:
	@bash scripts/system-packages.sh image
	bash plugin_image/scripts/build.sh

image-smoke:
	@bash scripts/system-packages.sh image
	bash plugin_image/scripts/smoke.sh

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache .ruff_cache
