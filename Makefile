# Two entry points, both from a fresh machine with Python 3.11:
#   make demo   create .venv, install olmp, run the main job
#   make test   create .venv, install olmp with dev tools, lint and run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/olmp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# The test tools and the optional extras the suite covers (ONNX, the solver backends), on
# top of what the demo needs.
$(VENV)/.dev: $(BIN)/olmp
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/olmp
	$(BIN)/olmp demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
