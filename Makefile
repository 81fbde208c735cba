# Every target does its own set-up: a virtualenv in .venv, built from the project's own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv test lint typecheck unit demo bench corpus fuzz image image-test clean

help:
	@echo "make demo   - run check against the embedded simulator (incident scenario)"
	@echo "make test   - lint, type-check and run every test"
	@echo "make bench  - Fleet Guard against its peers (BENCH_ARGS='--fleet issue': the big fleet)"
	@echo "make corpus - precision/recall of each advisory on real error messages (tests/corpus)"
	@echo "make image  - build the resource image with buildah (needs root)"
	@echo "make image-plain - prove a build with no build arguments labels the image right"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check lib tests bench scripts
	$(BIN)/ruff format --check lib tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/fleet-guard demo

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The stdin properties of tests/contract/test_stdin_properties.py with 10,000 examples each
# (make test runs a few hundred); slow, so run it before a release, not on every change.
fuzz: $(STAMP)
	FLEET_GUARD_HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q tests/contract/test_stdin_properties.py

corpus: $(STAMP)
	$(BIN)/python scripts/corpus_report.py

# The resource image (Dockerfile), built and tested with buildah; both need root. docs/image.md.
IMAGE ?= localhost/fleet-guard:latest

image:
	IMAGE=$(IMAGE) scripts/image/build.sh

image-test: $(STAMP)
	IMAGE=$(IMAGE) VENV_PYTHON=$(BIN)/python scripts/image/test.sh

# `buildah bud .` with no build arguments, as an operator runs it; checks the labels it gets.
image-plain:
	scripts/image/plain.sh

.PHONY: image-plain image-lock
image-lock:
	scripts/image/lock.sh

clean:
	rm -rf $(VENV) build dist lib/*.egg-info .pytest_cache .mypy_cache .ruff_cache
