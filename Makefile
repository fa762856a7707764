# The two commands of the README: `make demo` (the main job) and `make test`.
.PHONY: setup demo test bench
PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m vsdpo.cli demo

test: setup
	$(PY) -m pytest tests

bench: setup
	$(PY) bench/loss.py
