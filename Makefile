# memberflow: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
INSTALL_STAMP := $(VENV)/.installed
PACKAGES := memberflow_events memberflow_platform member_svc points_svc tier_svc campaign_svc analytics_svc
PYPROJECTS := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: help install infra-up infra-down infra-status test test-unit lint format schemas \
        validate-deploy up down status clean dlq-redrive analytics-rebuild points-reconcile bench \
        chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)" || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"

$(INSTALL_STAMP): $(PYPROJECTS) | $(UV)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

install: $(INSTALL_STAMP) ## install every package (pinned, uv workspace) into .venv

infra-up: ## start Kafka (KRaft), PostgreSQL and Redis on private ports (idempotent)
	infra/infra.sh up

infra-down: ## stop the local infrastructure
	infra/infra.sh down

infra-status: ## show what is running
	infra/infra.sh status

test: install infra-up ## install, start the infrastructure, run every test
	infra/infra.sh ensure-chromium
	$(PY) -m pytest -q

test-unit: install ## tests without infrastructure
	$(PY) -m pytest -q tests/unit

lint: install ## ruff (lint + format check), mypy, generated docs up to date
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(addprefix -p ,$(PACKAGES))
	$(VENV)/bin/mypy --explicit-package-bases tests demo bench chaos
	$(PY) -m memberflow_events.schemas docs/events --check

format: install ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: install ## regenerate docs/events (JSON Schemas, AsyncAPI) from libs/events
	$(PY) -m memberflow_events.schemas docs/events

dlq-redrive: install ## republish dead letters of SERVICE (e.g. SERVICE=points-svc) to their topics
	@test -n "$(SERVICE)" || { echo "usage: make dlq-redrive SERVICE=points-svc [DRY_RUN=1]"; exit 2; }
	$(PY) -m memberflow_events.redrive $(SERVICE) $(if $(DRY_RUN),--dry-run,)

analytics-rebuild: install ## rebuild analytics-svc's projections from the retained event history
	infra/platform.sh run analytics $(PY) -m analytics_svc.rebuild

points-reconcile: install ## check every points balance against its ledger and lots (exit 1 on drift)
	infra/platform.sh run points $(PY) -m points_svc.reconcile

bench: install infra-up ## benchmarks: bench/results/<date>.json and a table (QUICK=1 smoke run, ONLY=a,b)
	$(PY) -m bench.run $(if $(QUICK),--quick,) $(if $(ONLY),--only $(ONLY),)

chaos: install ## faults under load on a private platform, then verify (SHORT=1: the CI form)
	$(PY) -m chaos.run $(if $(SHORT),--short,)

validate-deploy: install ## validate docker-compose.yml and deploy/k8s offline
	deploy/validate.sh

up: install ## the whole platform: infrastructure, five services, demo data
	infra/platform.sh up

down: ## stop the services and the infrastructure
	infra/platform.sh down

status: ## what is running
	infra/platform.sh status

clean: ## remove the virtualenv and local state (data of the local infrastructure too)
	-infra/infra.sh down
	rm -rf $(VENV) .local
