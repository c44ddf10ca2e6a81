# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv (Python 3.11+) and installs Clerk into it first.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

.PHONY: demo test bench install
install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/clerk demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python -m bench.backfill
