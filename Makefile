# The README's two set-up commands: `make demo` and `make test`. Each creates .venv if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lakescore-installed

.PHONY: demo test lint install check-java clean bench

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory check-java
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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
bench: $(STAMP)
	$(BIN)/python bench/run.py --rows $(ROWS)
