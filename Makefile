# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests need (servers they start themselves), installed by .ci/system-packages.sh
SYSTEM_PACKAGES += postgresql

.PHONY: install system-packages demo test ui benchmark benchmark-marts benchmark-ten-years benchmark-cohort clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: install  ## generate a sample export, import it through Dagster, show the results
	$(BIN)/retrostride demo

system-packages:  ## the Debian packages of SYSTEM_PACKAGES that are missing (as root, or with sudo)
	bash .ci/system-packages.sh $(SYSTEM_PACKAGES)

test: install system-packages  ## run the test suite
	$(BIN)/python -m pytest -q

ui: install  ## the Dagster UI and daemon on workspace.yaml
	$(BIN)/retrostride ui

benchmark: install
	$(BIN)/python benchmarks/decode_corpus.py

benchmark-marts: install  ## mart query times on a synthetic 10-year warehouse, views against tables
	$(BIN)/python benchmarks/marts_10_years.py

benchmark-ten-years: install  ## ten years of three athletes imported end to end (export cached in benchmarks/.cache)
	$(BIN)/python benchmarks/ten_years.py

benchmark-cohort: install system-packages  ## athletes × years with 1 and 2 runs at once, embedded and PostgreSQL + S3; one new file into 1 vs 10 years
	$(BIN)/python benchmarks/cohort.py

clean:
	rm -rf $(VENV) data inbox
