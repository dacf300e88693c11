# Two entry points for a fresh machine: `make demo` and `make test` (see README).
SHELL := /bin/bash
# python3.12 may be a pyenv shim that only works with its version selected; fall back to the binary.
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do \
	  "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: demo test lint install clean docs docs-check

$(STAMP): pyproject.toml setup.py
	@test -n "$(PYTHON312)" || { echo "error: python3.12 not found; install Python 3.12 (TorchGeo 0.10 needs it)"; exit 1; }
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rs-metapeft demo

test: $(STAMP)
	$(PY) -m pytest -q

# The documentation site (mkdocs-material + mkdocstrings), built strictly: a broken link, reference
# or generated table fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet -d site

# Check the built site: no Sphinx role left as raw text, no repeated or file-name headings (every
# page); then, in headless Chromium (installed from Debian if missing), that the main pages'
# headings and figures render and their tables fit the page; screenshots go to docs/_build_check/.
docs-check: docs
	$(PY) docs/scripts/check_site.py site docs/_build_check

lint: $(STAMP)
	$(VENV)/bin/ruff check rs_metapeft tests benchmarks docs/scripts

clean:
	rm -rf $(VENV) runs data/demo
