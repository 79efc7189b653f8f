# Paperboy. Quick start: `make run`, then `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint format bench bench-matching bench-delivery bench-web clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || [ -x .tools/bin/uv ] || \
		python3 -m pip install --quiet --disable-pip-version-check --target .tools uv
	$(UV) sync --frozen
	@touch $@

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_sample
	$(PY) -m config.devrun

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: bench-matching bench-delivery bench-web

bench-matching: install
	$(PY) benchmarks/bench_matching.py $(ARGS)

bench-delivery: install
	$(PY) benchmarks/bench_delivery.py $(ARGS)

bench-web: install
	$(PY) benchmarks/bench_web.py $(ARGS)

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache
