# Two commands for a fresh clone:  `make run` (install everything, open the app with its
# embedded pipeline)  and  `make test` (install everything, run the whole test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install setup run pipeline test test-slow lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,packaging]'
	touch $(STAMP)

install: $(STAMP)

setup: install            ## Maven artifacts (Kafka broker, Spark Kafka connector, Delta)
	$(BIN)/lakewatch setup

run: setup                ## open the desktop app; it starts the embedded pipeline
	$(BIN)/lakewatch

pipeline: setup           ## the whole pipeline headless, until Ctrl+C
	$(BIN)/lakewatch --start-pipeline

test: setup lint          ## the suite: real broker, real Spark, real Delta, real Qt
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

test-slow: setup          ## the long end-to-end tests (kill -9 recovery, bundle build, daemons)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -p no:cacheprovider -m slow $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
