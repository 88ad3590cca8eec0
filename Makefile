# The two set-up commands: `make up` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: up test install bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,vast]'
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/tams up

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/query.py
	$(PY) bench/presign.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
