# Forward Pass: every command a reader, a student or an instructor needs.
# `make book` and `make test` are the two that matter; both create .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
VENV_STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# nbgrader shells out to `alembic` when it first creates a gradebook: keep the venv's bin on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help venv test lint pytest release references grade lab bench bench-grade clean

help:
	@echo "make book            build the web book into _build/html (reader edition: solutions folded)"
	@echo "make test            run every check: ruff (lint, format), unit, parity, notebooks, grading, book in a browser"
	@echo "make book-class      build the class edition (for graded courses: no solutions) into _build/class/html"
	@echo "make book-instructor build the instructor edition (solutions, hidden tests) into _build/instructor/html"
	@echo "make serve           build the reader edition and serve it on http://localhost:8000 (the live model needs http)"
	@echo "make lab             open the chapters in JupyterLab"
	@echo "make release         regenerate chapters/ (student notebooks) from solutions/ with nbgrader"
	@echo "make references      regenerate the graders' reference outputs from lib"
	@echo "make grade SUBMISSIONS=dir-or-zip [OUT=grading]   autograde a class into the gradebook OUT"
	@echo "make bench           lib vs PyTorch on GPT-2-small-shaped weights"
	@echo "make bench-grade     parallel grading vs plain nbgrader on a synthetic class"

# ---- environment ---------------------------------------------------------------------------
# requirements.lock names every package, so it installs without resolving (--no-deps). That is
# how it leaves out rfc3987-syntax, which jupyter-events asks for through jsonschema's format-nongpl
# extra: it compiles 35 Lark grammars whenever jsonschema is imported (by nbformat: every grader
# command, every book build), 1-2 s of CPU each time, for IRI formats no notebook schema uses.
$(VENV_STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --no-deps -r requirements.lock
	$(PIP) uninstall --quiet --quiet --yes rfc3987-syntax lark  # from a venv made before it was left out
	$(PIP) install --quiet --no-deps -e .
	touch $@

# PyTorch is pinned exactly (a CPU build) and only the tests and benchmarks use it.
$(TEST_STAMP): $(VENV_STAMP) requirements-test.lock
	$(PIP) install --quiet -r requirements-test.lock
	touch $@

venv: $(VENV_STAMP)

# ---- checks --------------------------------------------------------------------------------
# pytest on one worker more than the cores, each running whole groups of tests (tests/conftest.py
# says which and why one more);
# `make test PYTEST_WORKERS=` runs them all in one process.
PYTEST_WORKERS ?= -n $(shell expr $$(nproc) + 1)

test: $(TEST_STAMP) book-assets
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_WORKERS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# ---- course --------------------------------------------------------------------------------
release: $(VENV_STAMP)
	$(PY) -m grader release

references: $(VENV_STAMP)
	$(PY) -m grader references

SUBMISSIONS ?= submissions
OUT ?= grading
# Feedback pages load MathJax from beside them, copied from book/_static (book-assets).
grade: $(VENV_STAMP) book-assets
	$(PY) -m grader autograde $(SUBMISSIONS) --out $(OUT)

# As root (a container, a CI machine) JupyterLab refuses to start without --allow-root: say so and pass it.
LAB_ARGS ?=
lab: $(VENV_STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "note: running JupyterLab as root with --allow-root (fine in a container; on a shared machine, run it as your own user)"; \
	fi
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) chapters/

bench: $(TEST_STAMP)
	$(PY) benchmarks/bench_lib.py

bench-grade: $(VENV_STAMP)
	$(PY) benchmarks/bench_grade.py

clean:
	rm -rf _build .pytest_cache grading

-include book/book.mk
