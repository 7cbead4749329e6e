# The two commands: `make run` and `make test`. Everything else is setup they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint typecheck unit integration schemas lock bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

# The main job: the local server on the embedded SQLite default, with the demo bank loaded.
run: $(STAMP)
	CENTLI_BACKEND=$${CENTLI_BACKEND:-sqlite} $(BIN)/centli serve --load-demo --port $${PORT:-8080}

demo: $(STAMP)
	$(BIN)/centli demo

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check centli tests
	$(BIN)/ruff format --check centli tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict centli

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .centli
