# The two commands: `make run` and `make test`. Everything else is setup they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run reset demo test lambda-package deploy-check lint typecheck unit integration schemas lock bench \
	bench-local-server bench-capacity simulate clean

$(STAMP): pyproject.toml requirements.lock
	@echo "centli: setting up $(VENV): the pinned dependencies of the local runtime and the tests (first run only, about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --disable-pip-version-check --upgrade "pip>=24"
	@$(BIN)/python -m pip install -qq --disable-pip-version-check -c requirements.lock -e ".[dev,local]"
	@touch $(STAMP)
	@echo "centli: $(VENV) is ready"

# The main job: the local runtime on the embedded SQLite default, with the demo bank loaded.
run: $(STAMP)
	@$(BIN)/centli serve --load-demo --port $${PORT:-8080} $${MCP_USER:+--mcp-user $${MCP_USER}}

# Start the local bank afresh (deletes the SQLite file; `make run` loads the demo bank again).
reset: $(STAMP)
	@$(BIN)/centli reset --yes

# The local runtime over HTTP beside a trivial stdlib server (needs wrk: apt-get install wrk).
bench-local-server: $(STAMP)
	$(BIN)/python bench/local_server.py

demo: $(STAMP)
	$(BIN)/centli demo

# The confirmation-page test drives the OS's own Chromium (never a browser vendor's download).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	@echo "centli: installing Chromium from the OS packages (the confirmation-page test drives it)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM) lint typecheck deploy-check
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

# Every benchmark in bench/ (bench/run_all.py lists them; never part of `make test`), into BENCHMARKS.md
# (QUICK=1 for a smoke run).
bench: $(STAMP)
	PYTHONPATH=. $(BIN)/python bench/run_all.py $(if $(QUICK),--quick,)

# The deterministic whole-system simulation: 20 seeds on each local backend (CI runs a smaller fixed budget).
simulate: $(STAMP)
	$(BIN)/centli simulate --seed 1 --seeds $${SEEDS:-20} --steps $${STEPS:-200} --backend memory --backend sqlite

# Re-pin every dependency to what is installed now (after changing pyproject.toml).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

# The capacity model on this code, then on the layout before issue 9 (the negative control).
CAPACITY_BASELINE ?= f53e7d1
bench-capacity: $(STAMP)
	PYTHONPATH=. $(BIN)/python bench/capacity.py
	PYTHONPATH=. $(BIN)/python bench/capacity.py --code-ref $(CAPACITY_BASELINE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .centli

# Offline checks of the deployment: the template lints clean (cfn-lint ships the Bedrock and AgentCore
# resource schemas) and embeds the committed agent schemas (`centli schemas` regenerates both).
deploy-check: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/centli schemas --check

# The Lambda bundle that template.yaml's CodeUri points at: runtime dependencies
# (pinned by requirements.lock, wheels for the Lambda platform) plus the package.
LAMBDA_DIR := build/lambda
LAMBDA_PLATFORM ?= manylinux2014_aarch64
LAMBDA_PYTHON ?= 3.12
lambda-package: $(STAMP)
	rm -rf $(LAMBDA_DIR) && mkdir -p $(LAMBDA_DIR)
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > build/runtime-requirements.txt
	$(BIN)/python -m pip install --quiet --target $(LAMBDA_DIR) -c requirements.lock -r build/runtime-requirements.txt \
		--platform $(LAMBDA_PLATFORM) --python-version $(LAMBDA_PYTHON) --implementation cp --only-binary=:all:
	$(BIN)/python -m pip install --quiet --target $(LAMBDA_DIR) --no-deps .
	@du -sh $(LAMBDA_DIR)

# Regenerate what is generated from the operation table: agent schemas and example events.
schemas: $(STAMP)
	$(BIN)/centli schemas
	$(BIN)/centli events
