# Two commands do everything on a fresh machine (each sets up first when needed):
#   make sweep [ARGS="dataset=digits trials=8 ..."]   run a sweep (default: Fashion-MNIST)
#   make test                                         run the test suite
VENV := .venv
STAMP := $(VENV)/.dnn-sweep-installed

.PHONY: setup sweep test test-fast lint mlflow-ui bench bench-short

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

sweep: $(STAMP)
	$(VENV)/bin/sweep $(ARGS)

# Two pytest-xdist workers, each test module whole on one (tests/conftest.py says why);
# `PYTEST_ARGS="-n 0"` runs it serially.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -ra --durations=20 -n 2 --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# No Ray, no training (checked: tests/conftest.py), fewer Hypothesis examples: ~2 minutes.
test-fast: $(STAMP)
	DNN_SWEEP_TEST_FAST=1 $(VENV)/bin/python -m pytest -ra -m "not slow" --durations=20 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

bench: $(STAMP)
	$(VENV)/bin/python -m bench $(ARGS)

bench-short: $(STAMP)
	$(VENV)/bin/python -m bench --short $(ARGS)
