# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PY := var/venv/bin/python

.PHONY: demo test unit integration venv up down status clean

## demo: install what is missing, start the stack, run the pipeline end to end (Ctrl-C stops all).
demo: venv
	var/venv/bin/gaitstream demo

## test: install what is missing, start the real services, run every test (unit + integration).
test: venv
	$(PY) -m pytest tests -v --durations=15

unit: venv
	$(PY) -m pytest tests/unit -q

integration: venv
	$(PY) -m pytest tests/integration -v

venv:
	bash stack/venv.sh

up:
	stack/up
down:
	stack/down
status:
	stack/status
