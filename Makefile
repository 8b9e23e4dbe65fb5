# Two commands matter: `make run` and `make test`. Everything else is a step they call.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_DIR := models/whisper-base
WORKERS ?= 1
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test test-backend lint format bench soak worker clean

AXE := node_modules/axe-core/axe.min.js

install: $(STAMP) $(MODEL_DIR)/.verified $(AXE)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[worker,gateway,client,bench,dev]"
	@touch $(STAMP)

$(MODEL_DIR)/.verified: $(STAMP)
	$(PY) -m asr.embedded_model $(MODEL_DIR)

# axe-core for the browser tests' accessibility checks (tests/e2e); node_modules/ is ignored
$(AXE):
	npm install --no-save --no-audit --no-fund --prefix . axe-core@4

run: install
	$(PY) -m launcher.local_stack --workers $(WORKERS) --host $(HOST) --port $(PORT)

worker: install
	$(PY) -m asr --host $(HOST)

test: install
	$(PY) -m pytest -m "not slow" --durations=25 $(PYTEST_ARGS)

# The model-level tests (marker `backend`) on the CPU backend CTranslate2 does not pick here:
# oneDNN on an Intel CPU, MKL on an AMD one; timeouts stretched for it (tests/backend.py).
test-backend: install
	env $$($(PY) -m tests.backend) $(PY) -m pytest -m "backend and not slow" --durations=15 $(PYTEST_ARGS)

soak: install
	$(PY) -m pytest -m slow --durations=10 $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) models .pytest_cache .ruff_cache
