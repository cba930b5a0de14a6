# Two commands on a fresh machine (Python 3.11+), each sets itself up:
#   make study   - runs the four studies on the embedded digits dataset and writes the report
#   make test    - runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/default

.PHONY: venv study train test bench clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

venv: $(VENV)/.installed

study: venv
	$(PY) benchmark.py --config=configs/studies/all.py --workdir=$(WORKDIR)

train: venv
	$(PY) train.py --config=configs/base.py --workdir=runs/base

test: venv
	$(PY) -m pytest -n 2 tests

clean:
	rm -rf runs
