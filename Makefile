# Every target bootstraps .venv from this project's own files; nothing is installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench chaos soak docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m opencdp.demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python scripts/run_tests.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --events 100000 --seconds 60 --outage 30

# not in `make test`: a relay (--workers 2 --ingest-only) and two workers on Redis, 10 minutes
# at 80 % of the capacity it measures first; figures in docs/relay.md
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes 10 --fraction 0.8

# the site, into site/ (offline, --strict; `make test` builds it too: tests/docs/test_site.py)
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build dist site .mypy_cache .ruff_cache
