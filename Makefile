# One command to set up and run the main job (`make export`), one to run the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VARIANT ?= 560m
TARGET ?= all
OUT ?= artifacts

.PHONY: setup export native test test-all clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

setup: $(VENV)/.installed

# The main job: export a variant to every target, gate it on parity, write the manifest.
export: setup
	$(VENV)/bin/vmf-info --variant $(VARIANT)
	$(VENV)/bin/vmf-export --variant $(VARIANT) --target $(TARGET) --out $(OUT) --force

# Build the native runtime (runtimes/) into runtimes/build against the executorch wheel.
native: setup
	$(PY) -m vmf_deploy.native_build

test: setup
	$(PY) -m pytest -q

# Heavy matrices (64-frame exports of every variant, full benchmarks) are marked `slow`.
test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
