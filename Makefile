# irisq — `make run` starts the whole stack, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.irisq-installed
ALGORITHM ?= logistic_regression
PARAMS ?=

.PHONY: install run test lint browser audit train screenshots clean-var

# A venv from the machine's Python, with uv inside it; uv then installs from the lock file.
$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Every extra, so both `run` and `test` have what they need; --inexact keeps uv itself.
$(STAMP): $(BIN)/uv pyproject.toml uv.lock
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv sync --frozen --inexact --all-extras --python $(BIN)/python
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m devstack.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

test: install lint browser
	$(BIN)/pytest

# Known vulnerabilities in every locked dependency (PyPI's advisory data; needs its JSON API,
# which this project's CI machines cannot reach: run it where they can).
audit: install
	mkdir -p var
	$(BIN)/uv export --frozen --all-extras --no-emit-project --no-hashes --quiet -o var/audit-requirements.txt
	$(BIN)/pip-audit --strict --progress-spinner off --no-deps --disable-pip -r var/audit-requirements.txt

# Train from a shell against the running stack: make train ALGORITHM=svc PARAMS="C=2 kernel=linear"
train: install
	$(BIN)/python -m worker.train_cli --algorithm $(ALGORITHM) $(foreach p,$(PARAMS),--param $(p))

# The README's pictures, from the running stack (`make run` in another terminal).
screenshots: install browser
	$(BIN)/python -m devstack.screenshots

# Forget every job, model and run of the local stack (stop `make run` first).
clean-var:
	rm -rf var
