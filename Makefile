# `make run` and `make test` work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# Debian packages the tests need: installed with apt-get where missing (as root), else named.
DEB_PACKAGES := faketime

.PHONY: install system-packages run test test-dates lint bench docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "the tests need these Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

run: install
	$(BIN)/ledger serve

lint: install
	$(BIN)/ruff format --check ledger tests bench
	$(BIN)/ruff check ledger tests bench
	$(BIN)/mypy ledger

# The suite, then its SQLite half with the clock ten years on: no test may depend on today's date.
test: lint system-packages
	$(BIN)/pytest
	$(BIN)/python -m tests.support.shifted '+3650 days' -q

# The SQLite half of the suite at two later dates (make test runs the second).
test-dates: install system-packages
	$(BIN)/python -m tests.support.shifted '+400 days' -q
	$(BIN)/python -m tests.support.shifted '+3650 days' -q

# Rewrites the reference pages drawn from the code (docs/EVENTS.md).
docs: install
	$(BIN)/python -m ledger.reference

bench: install
	$(BIN)/python bench/append.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
