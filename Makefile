# Two commands: `make demo` (the main job) and `make test` (the test suite).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.sia-installed
DEVSTAMP:= $(VENV)/.sia-dev-installed
SIA_OUT ?= runs/demo

.PHONY: demo test venv dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	# CPU build of torch first: on these machines pip finds it on disk; a loose
	# `torch` requirement would otherwise pull a multi-GB CUDA wheel.
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(DEVSTAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)
dev: $(DEVSTAMP)

demo: $(STAMP)
	$(BIN)/sia demo --out $(SIA_OUT)

test: $(DEVSTAMP)
	# pytest exit 5 (no tests collected) is not a failure of the code under test
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf $(VENV) runs
