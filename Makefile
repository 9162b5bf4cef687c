# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install lock lint demo test ui benchmark benchmark-marts benchmark-ten-years benchmark-latency benchmark-cohort clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

lock:  ## re-resolve pyproject.toml's ranges in a fresh environment and pin the result in requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ head -n 2 requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^retrostride'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

lint: install  ## ruff: lint and format check (configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: install  ## generate a sample export, import it through Dagster, show the results, write the HTML report
	$(BIN)/retrostride demo

test: lint  ## lint, then the test suite on two pytest-xdist workers (installs chromium, chromium-driver and postgresql first when missing: .ci/system-packages.sh)
	.ci/system-packages.sh
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

ui: install  ## the Dagster UI and daemon on workspace.yaml
	$(BIN)/retrostride ui

benchmark: install
	$(BIN)/python benchmarks/decode_corpus.py

benchmark-marts: install  ## mart query times on a synthetic 10-year warehouse, views against tables
	$(BIN)/python benchmarks/marts_10_years.py

benchmark-ten-years: install  ## ten years of three athletes imported end to end (export cached in benchmarks/.cache)
	$(BIN)/python benchmarks/ten_years.py

benchmark-latency: install  ## inbox → SQL through the real daemon, one import, one query (benchmarks/latency.py)
	$(BIN)/python benchmarks/latency.py

benchmark-cohort: install  ## athletes × years with 1 and 2 runs at once, embedded and PostgreSQL + S3; one new file into 1 vs 10 years
	.ci/system-packages.sh
	$(BIN)/python benchmarks/cohort.py

clean:
	rm -rf $(VENV) data inbox
