# The README's two set-up commands: `make demo` and `make test`. Each creates .venv if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lakescore-installed

.PHONY: demo test lint install check-java clean bench

install: $(STAMP)

# pyproject.toml allows Python 3.11-3.12 (the pins need 3.11; 3.13 is not tested): say so before pip
# fails on a 3.13, and name a .venv made by another Python, which pip would go on failing in.
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))

# A .venv made without Debian's python3-venv has python but no pip: the next run, once the
# package is installed, completes it with the .venv's own Python (already checked above).

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory check-java
	@test -x $(BIN)/python || $(PYTHON) -c '$(SUPPORTED)' || { echo "lakescore needs Python 3.11 or 3.12; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run again with PYTHON=python3.12 (or another supported one)." >&2; exit 1; }
	@test ! -x $(BIN)/python || $(BIN)/python -c '$(SUPPORTED)' || { echo "$(VENV) was made with $$($(BIN)/python --version 2>&1), which lakescore does not support: remove it (make clean) and run again with a Python 3.11 or 3.12 (PYTHON=python3.12)." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/pip || $(BIN)/python -m ensurepip --upgrade --default-pip >/dev/null || { echo "$(VENV) has no pip, and Python's ensurepip is missing: install python3-venv (Debian, Ubuntu) and run again." >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Spark runs $JAVA_HOME/bin/java when JAVA_HOME is set, else java on PATH: check the same one.
check-java:
	@j=$${JAVA_HOME:+$$JAVA_HOME/bin/}java; \
	 command -v "$$j" >/dev/null 2>&1 || { echo "lakescore needs Java 17 or newer (Spark runs on the JVM): install a JDK 17+ and put java on PATH, or set JAVA_HOME (found no $$j)." >&2; exit 1; }; \
	 v=$$("$$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	 if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then echo "lakescore needs Java 17 or newer; found: $$("$$j" -version 2>&1 | head -1)" >&2; exit 1; fi

demo: check-java $(STAMP)
	$(BIN)/lakescore demo

test: check-java $(STAMP)
	$(BIN)/ruff check src tests jobs notebooks bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests jobs notebooks bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) lakehouse spark-warehouse metastore_db derby.log

# Throughput and memory against the reference scorers (see bench/README.md); ROWS=1000000|2000000|8000000
ROWS ?= 2000000
bench: check-java $(STAMP)
	$(BIN)/python bench/run.py --rows $(ROWS)
