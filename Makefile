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

test: lint
	$(VENV)/bin/pytest -q -n 2 tests

clean:
	rm -rf $(VENV) build *.egg-info
