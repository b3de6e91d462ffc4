# The commands of the README: `make run` (the analysis), `make lab` (open the notebooks) and
# `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet --no-input
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: install install-spark data run run-spark run-graph lab notebooks test lint bench lock clean

install: $(STAMP)

# Rebuilt whenever the lock or the package metadata changes.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the locked environment into $(VENV) (log: $(VENV)/install.log) ..."
	@$(PIP) install -r requirements.lock > $(VENV)/install.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/install.log; exit 1; }
	@$(PIP) install --no-deps --no-build-isolation -e . >> $(VENV)/install.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/install.log; exit 1; }
	@$(PY) -P -c "import lastfm_rec" || { echo "error: lastfm_rec did not install"; exit 1; }
	@touch $@

# The optional Spark extra (pyspark, pinned in requirements-spark.lock); it needs Java 17+.
install-spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP) requirements-spark.lock
	@echo "Installing the Spark extra into $(VENV) (about 1 minute the first time) ..."
	@$(PIP) install -r requirements-spark.lock >> $(VENV)/install.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/install.log; exit 1; }
	@touch $@

data: install
	@$(VENV)/bin/lastfm-rec data

run: data
	@$(PY) -m lastfm_rec.reports notebooks --out reports

# JupyterLab on the project folder, so rec_sheets/ is in its file browser, opening on notebooks/;
# its python3 kernel is this environment's Python (.venv). tests/test_lab.py starts these options.
LAB_OPTIONS := --ServerApp.root_dir=. --ContentsManager.preferred_dir=notebooks
lab: data
	@$(VENV)/bin/jupyter lab $(LAB_OPTIONS) $(if $(filter 0,$(shell id -u)),--allow-root)

# Notebook 07 (Spark against implicit at 1x and 10x synthetic data, about 5 minutes).
run-spark: data install-spark
	@$(PY) -m lastfm_rec.reports notebooks --only 07 --out reports

# Notebook 08 (LightGCN and SocialLGN trained on the papers' protocol, about half an hour).
run-graph: data
	@$(PY) -m lastfm_rec.reports notebooks --only 08 --out reports --timeout 7200

# Refresh the outputs stored in the committed notebooks (after a library change).
notebooks: data
	@$(PY) -m lastfm_rec.reports notebooks --out notebooks --no-html

lint: install
	@$(PY) -m ruff check .

test: lint install-spark
	@$(PY) -m pytest

bench: data
	@$(PY) bench/run.py

# Regenerate requirements.lock from requirements.in in a throw-away environment.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	{ head -2 requirements.lock; .lock-venv/bin/pip freeze --all | grep -vE '^(pip|wheel)=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
