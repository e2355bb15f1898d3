# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Set-up (virtualenv, install, data) happens on demand. Override TORCH to pick another build,
# e.g. `make TORCH=torch demo` on a CUDA machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.genood-installed

.PHONY: demo test lint format bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/genood reproduce fashion-mnist-vs-mnist --budget quick

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check genood tests benchmarks
	$(VENV)/bin/ruff format --check genood tests benchmarks
	$(PY) -m mypy

format: $(STAMP)
	$(VENV)/bin/ruff format genood tests benchmarks
	$(VENV)/bin/ruff check --fix genood tests benchmarks

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
