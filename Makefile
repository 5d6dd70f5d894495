# The commands the README names. Python 3.11 and make are all a fresh machine needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall when the dependency pins change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
SPARK_STAMP := $(STAMP)-spark
# Test workers: the suite waits on servers, subprocesses and the JVM as much as it computes.
WORKERS ?= 2

.PHONY: install demo test test-spark test-quick lint check-defs dev dbt-build clean

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# The spark extra (dbt-spark, pyspark: about 350 MB) only where the tests need it.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,spark]'
	touch $@

install: $(STAMP)

## Generate 1M demo events, import them, build the warehouse through Dagster, print a summary.
demo: $(STAMP)
	$(BIN)/leadron demo

## The whole test suite (what CI runs): lint and format check, the Dagster definitions, then pytest on
## $(WORKERS) workers (a test file stays on one worker), the Spark build included.
test: $(SPARK_STAMP) lint check-defs
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder

## The Spark build on both engines alone (tests/test_spark_build.py).
test-spark: $(SPARK_STAMP)
	$(BIN)/python -m pytest -m spark

## ruff: lint and format check (configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## `dg check defs`: every area under orchestration/defs loads (on a throwaway LEADRON_HOME).
check-defs: $(STAMP)
	LEADRON_HOME=$$(mktemp -d) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg check defs

## The inner loop: everything but the slow tests (whole pipeline builds, servers under load). CI runs `make test`.
test-quick: $(STAMP) lint
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow and not spark"

## The Dagster UI on the same warehouse (LEADRON_HOME, default ./.leadron).
dev: $(STAMP)
	umask 077 ; export DAGSTER_HOME=$${DAGSTER_HOME:-$${LEADRON_HOME:-$(CURDIR)/.leadron}/dagster} ; \
	$(BIN)/python -c 'from leadron.settings import get_settings; from orchestration.runner import ensure_dagster_home; ensure_dagster_home(get_settings())' ; \
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg dev

## dbt on its own, on the same warehouse.
dbt-build: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dbt build --profiles-dir dbt_project

clean:
	rm -rf .leadron dbt_project/target target logs .pytest_cache
