# The two commands of the README. Each builds the virtualenv it needs by itself.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: up down test

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/eucadb up

down: $(STAMP)
	$(VENV)/bin/eucadb down

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
