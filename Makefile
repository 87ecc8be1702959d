# Set-up and everyday tasks. `make demo` and `make test` create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf trafficlens-lake
	$(BIN)/trafficlens analyze sample_logs/shop-week.log.gz --ranges sample_logs/ranges --robots sample_logs/robots --lake trafficlens-lake

# A worker per core and one more (tests wait on Spark's JVM, the browser and the dashboard's server
# much of the time), each file whole on one worker (its module fixtures built once).
test: $(STAMP)
	$(BIN)/python -m pytest -n $$($(BIN)/python -c 'import os; print((os.cpu_count() or 1) + 1)') --dist loadfile

# Lint, format check, types and the layer contract (cli/dashboards -> report -> classify -> ingest -> store).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	status=0; $(BIN)/python benchmarks/bench_ingest.py || status=1; \
	$(BIN)/python benchmarks/bench_classify.py || status=1; \
	$(BIN)/python benchmarks/bench_report.py || status=1; exit $$status

clean:
	rm -rf trafficlens-lake .pytest_cache
