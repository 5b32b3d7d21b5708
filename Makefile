# Developer and CI entry points. See `make help`.
#
#   make run                 dev server on 127.0.0.1:$PORT (default 5000)
#   make test                pytest on SQLite, then on a throwaway PostgreSQL
#   make test PYTEST_ARGS="-x -k decision"
#   make test-sqlite / make test-postgres   one backend only
#   make bench BENCH_ARGS="..."
#   make clean
#
# Each recipe runs as one bash script (.ONESHELL) with -euo pipefail.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
TRANSLATIONS := portal/translations
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help venv translations run test test-sqlite test-postgres system-packages bench clean

help:
	@echo "targets: venv translations run test test-sqlite test-postgres bench clean"
	@echo "  make test PYTEST_ARGS='-x -k decision'   make run PORT=5001   make bench BENCH_ARGS='...'"

# --- environment ----------------------------------------------------------

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@if [ ! -x $(VPY) ]; then
		echo "+ $(PYTHON) -m venv $(VENV)"
		$(PYTHON) -m venv $(VENV)
	fi
	echo "+ $(VENV)/bin/pip install -e '.[test]'"
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

translations: venv
	@shopt -s nullglob
	catalogs=($(TRANSLATIONS)/*/LC_MESSAGES/*.po)
	if [ -d $(TRANSLATIONS) ] && [ $${#catalogs[@]} -gt 0 ]; then
		$(VENV)/bin/pybabel compile -d $(TRANSLATIONS)
	else
		echo "translations: no catalogues under $(TRANSLATIONS), nothing to compile"
	fi

instance/secret_key:
	@umask 077
	mkdir -p instance
	$(PYTHON) -c 'import secrets, sys; sys.stdout.write(secrets.token_hex(32))' > $@.tmp
	chmod 600 $@.tmp
	mv $@.tmp $@
	echo "created $@"

# Debian packages needed by the tests (chromium, postgresql). Needs root only
# when something is missing.
system-packages:
	@if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
		sudo scripts/ensure-system-packages.sh
	else
		scripts/ensure-system-packages.sh
	fi

# --- run --------------------------------------------------------------------

# DATABASE_URL from the environment is passed through untouched (default:
# SQLite under instance/, chosen by the app). The demo PKI (examples/demo_pki.py:
# CAs, CRLs, a trust list, seal certificates and keys) is generated once under
# instance/demo-pki/, its CRLs refreshed when older than a month; the portal
# trusts it unless PORTAL_TRUST_LIST names another trust list.
DEMO_PKI := $(CURDIR)/instance/demo-pki

# The portal's own key that signs the audit chain's checkpoints (not in git, like the secret key).
instance/audit_signing_key.pem: | venv
	@umask 077
	mkdir -p instance
	$(VPY) -c 'import sys; from audit.checkpoints import generate_private_key_pem; sys.stdout.buffer.write(generate_private_key_pem())' > $@.tmp
	chmod 600 $@.tmp
	mv $@.tmp $@
	echo "created $@"

run: venv translations instance/secret_key instance/audit_signing_key.pem
	$(FLASK) db upgrade
	$(FLASK) demo load
	$(VPY) -m examples.demo_pki $(DEMO_PKI) --portal http://127.0.0.1:$${PORT:-5000}
	export PORTAL_TRUST_LIST="$${PORTAL_TRUST_LIST:-$(DEMO_PKI)/trust-list.toml}"
	echo "trust list: $$PORTAL_TRUST_LIST"
	exec $(FLASK) run --host 127.0.0.1 --port $${PORT:-5000}

# --- tests ------------------------------------------------------------------

# Both runs always happen; `make test` fails if either failed. The throwaway
# cluster is stopped (and its directory removed) whatever happens.
# PORTAL_DATABASE_URL (which db.py prefers) is unset so that DATABASE_URL alone
# picks the backend: unset -> SQLite, set -> the throwaway PostgreSQL.
test: system-packages venv translations
	@sqlite_rc=0; pg_rc=0
	echo "=== pytest on SQLite (DATABASE_URL unset) ==="
	env -u DATABASE_URL -u PORTAL_DATABASE_URL $(VPY) -m pytest $(PYTEST_ARGS) || sqlite_rc=$$?
	echo "=== pytest on PostgreSQL (throwaway cluster) ==="
	export PG_THROWAWAY_STATE=$$(mktemp /tmp/portal-pg-state.XXXXXX)
	rm -f "$$PG_THROWAWAY_STATE"
	trap 'out=$$(scripts/pg-throwaway.sh stop 2>&1) || printf "%s\n" "$$out" >&2' EXIT
	trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
	url=$$(scripts/pg-throwaway.sh start)
	echo "DATABASE_URL=$$url"
	env -u PORTAL_DATABASE_URL DATABASE_URL="$$url" $(VPY) -m pytest $(PYTEST_ARGS) || pg_rc=$$?
	if [ $$sqlite_rc -ne 0 ] || [ $$pg_rc -ne 0 ]; then
		echo "=== FAILED: pytest exit $$sqlite_rc on SQLite, $$pg_rc on PostgreSQL ===" >&2
		exit 1
	fi

test-sqlite: venv translations
	env -u DATABASE_URL -u PORTAL_DATABASE_URL $(VPY) -m pytest $(PYTEST_ARGS)

test-postgres: system-packages venv translations
	@export PG_THROWAWAY_STATE=$$(mktemp /tmp/portal-pg-state.XXXXXX)
	rm -f "$$PG_THROWAWAY_STATE"
	trap 'out=$$(scripts/pg-throwaway.sh stop 2>&1) || printf "%s\n" "$$out" >&2' EXIT
	trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
	url=$$(scripts/pg-throwaway.sh start)
	echo "DATABASE_URL=$$url"
	env -u PORTAL_DATABASE_URL DATABASE_URL="$$url" $(VPY) -m pytest $(PYTEST_ARGS)

# --- misc -------------------------------------------------------------------

bench: venv
	$(VPY) bench/decisions.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info .ruff_cache .mypy_cache
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	if [ -d $(TRANSLATIONS) ]; then find $(TRANSLATIONS) -name '*.mo' -delete; fi
