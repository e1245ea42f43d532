# callpulse: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DURATION ?= 90
SPEED ?= 120

.PHONY: demo test unit lint bench kafka-up kafka-down test-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## Simulated call centre → pipeline → DuckDB, with a live terminal wallboard.
demo: $(STAMP)
	$(BIN)/callpulse demo --duration $(DURATION) --speed $(SPEED)

## Lint, then every test, with the real services they need (installed and started by the project's scripts).
test: lint test-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

## Every test that needs no service (no Kafka, Prometheus or Chromium). CALLPULSE_NO_SERVICES makes
## the service helpers refuse to start one, so a test that needs one but lacks its marker fails here.
unit: $(STAMP)
	CALLPULSE_NO_SERVICES=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m "not kafka and not prometheus and not chromium"

test-deps: $(STAMP)
	PYTHON=$(BIN)/python scripts/setup-test-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check pipeline metrics dashboards devtools tests scripts
	$(BIN)/ruff format --check pipeline metrics dashboards devtools tests scripts
	$(BIN)/mypy pipeline metrics dashboards devtools

bench: $(STAMP)
	$(BIN)/python -m devtools.bench $(BENCH_ARGS)

kafka-up: $(STAMP)
	$(BIN)/python scripts/kafka.py up

kafka-down: $(STAMP)
	$(BIN)/python scripts/kafka.py down

clean:
	rm -rf $(VENV) data bench-out
