# `make run` and `make test` work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/ledger serve

lint: install
	$(BIN)/ruff format --check ledger tests bench
	$(BIN)/ruff check ledger tests bench
	$(BIN)/mypy ledger

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/append.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
