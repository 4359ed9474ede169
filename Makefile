# Two commands matter: `make lab` (set up, then open JupyterLab on the first notebook) and
# `make test` (set up, then lint + unit tests + every notebook under strict nbval + every notebook in
# real JupyterLab and Chromium).
# Set-up is incremental: the venv is rebuilt only when a requirements file or pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Keep Jupyter's config, data and runtime files inside the repo: nothing is registered outside it.
export JUPYTER_CONFIG_DIR := $(CURDIR)/.jupyter-local/config
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter-local/runtime
export JUPYTERLAB_SETTINGS_DIR := $(CURDIR)/.jupyter-local/lab-settings
export JUPYTERLAB_WORKSPACES_DIR := $(CURDIR)/.jupyter-local/lab-workspaces
export IPYTHONDIR := $(CURDIR)/.jupyter-local/ipython
export MPLCONFIGDIR := $(CURDIR)/.jupyter-local/matplotlib
export PYTHONDONTWRITEBYTECODE := 1

STAGES := $(BIN)/python tools/test_stages.py
# The static site's Jupyter Book lives in its own venv (requirements-site.txt), built on first use.
SITE_ENV := build/site-env
SITE_STAMP := $(SITE_ENV)/.installed

.PHONY: setup lab test lint unit browser notebooks-test notebooks nav bench lock site site-env site-lock site-test system-packages clean upgrade-check upgrade-check-test

setup: $(STAMP)
	@mkdir -p $(JUPYTER_CONFIG_DIR) $(JUPYTER_RUNTIME_DIR) $(JUPYTERLAB_SETTINGS_DIR) \
		$(JUPYTERLAB_WORKSPACES_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

lab: setup
	$(BIN)/python tools/lab.py

# What the lessons and tests start from PATH (Debian/Ubuntu; the dev container runs this on create).
SYSTEM_PACKAGES := redis-server nginx chromium
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		echo "installing:$$missing"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	else echo "system packages present: $(SYSTEM_PACKAGES)"; fi

# The stages' commands live in tools/test_stages.py; `make test` ends with one timing line per stage.
test: setup site-env
	$(STAGES)

lint: setup
	$(STAGES) lint

unit: setup
	$(STAGES) unit

# Strict nbval over every notebook, then a second run of each in the same kernel.
notebooks-test: setup
	$(STAGES) notebooks

# Every notebook in real JupyterLab + Chromium (skipped without chromium, except in CI).
browser: setup site-env
	$(STAGES) browser

# Re-execute notebooks in place and store fresh outputs (NB=01_handshake_and_accept.ipynb for one).
notebooks: setup
	$(BIN)/python tools/notebooks.py refresh $(NB)

# The static site of the series from the stored outputs (nothing is executed): build/site/index.html.
site: site-env
	$(SITE_ENV)/bin/python tools/site.py build

# The site's browser test alone (the browser stage of `make test` runs it too).
site-test: setup site-env
	$(BIN)/python -m pytest tests/browser/test_site.py

site-env: $(SITE_STAMP)

$(SITE_STAMP): requirements-site.txt constraints-site.txt
	@test -x $(SITE_ENV)/bin/python || $(PYTHON) -m venv $(SITE_ENV)
	$(SITE_ENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-site.txt -c constraints-site.txt
	@touch $(SITE_STAMP)

# After changing requirements-site.txt: install it, then record every resulting version.
site-lock:
	@test -x $(SITE_ENV)/bin/python || $(PYTHON) -m venv $(SITE_ENV)
	$(SITE_ENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-site.txt
	@{ echo "# Every package of the site's venv, pinned (installs use it as a constraints file). Regenerate: make site-lock"; \
	   $(SITE_ENV)/bin/python -m pip freeze --disable-pip-version-check; } > constraints-site.txt

nav: setup
	$(BIN)/python tools/notebooks.py nav

# The upgrade radar: which lessons would the newest lesson libraries change? PKG="redis==8.1.0" tries exactly
# these versions; NB="07_fastapi_broadcasting.ipynb ..." limits the notebooks. Exit 1 when a lesson changed.
upgrade-check: setup
	$(BIN)/python tools/upgrade_check.py --pkg "$(PKG)" $(if $(NB),--notebooks $(NB))

# The radar's known case, for real (slow: a venv with redis 8.1.0 and lesson 07 under strict nbval in it).
upgrade-check-test: setup
	$(BIN)/python -m pytest tests/upgrade

bench: setup
	$(BIN)/python -m bench.servers
	$(BIN)/python -m bench.fanout

# After changing requirements*.txt: install them, then record every resulting version.
lock:
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@{ echo "# Every installed package, pinned: installs use it as a constraints file so transitive versions"; \
	   echo "# cannot drift. Regenerate after changing requirements*.txt: make lock"; \
	   $(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check; } > constraints.txt

clean:
	rm -rf $(VENV) .jupyter-local build .upgrade-check
