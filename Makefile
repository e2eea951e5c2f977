# Set-up and entry points. Every target creates/uses .venv/ in the repository root.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[qat,keras_cv,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python tools/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The quick tier first, so a plain failure shows in minutes; then the slow end-to-end checks.
test: lint
	$(VENV)/bin/pytest -q -n 2 -m "not slow" tests
	$(VENV)/bin/pytest -q -n 2 -m slow tests

clean:
	rm -rf $(VENV) build *.egg-info
