# CylinderWatch — the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: demo test install assets migrate seed serve sim lint typecheck bench clean-test-dbs services

## install Python packages (with dev extras, at the versions of requirements.lock) and the front-end assets
install:
	$(PIP) install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	$(MAKE) assets

## npm packages (Leaflet, the chart library, ...) copied into dashboard/static/vendor
assets:
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; \
	 elif [ -f package.json ]; then npm install --no-audit --no-fund --loglevel=error; fi
	@if [ -f dashboard/build_assets.py ]; then $(PYTHON) dashboard/build_assets.py; fi

## start PostgreSQL, Redis and Mosquitto if they are not running
services:
	@bash scripts/services.sh

## one command: install, migrate, seed a demo city (if empty), serve, simulate devices
demo: install services
	cylwatch demo

## the whole test suite against the real services (fresh database per session)
test: services
	$(PYTHON) -m pytest $(PYTEST_ARGS)

migrate:
	cylwatch migrate
seed:
	cylwatch seed --demo --if-empty
serve:
	cylwatch serve
sim:
	cylwatch sim

## ruff, strict typing and the import boundaries of docs/ARCHITECTURE.md
lint:
	ruff check .
	mypy server ingest realtime dashboard big_screen device_sim
	lint-imports
	deptry .
	npx eslint dashboard/static big_screen/static
typecheck:
	mypy server ingest realtime dashboard big_screen device_sim

## benchmarks of DESIGN §10 (long: minutes each); figures go to docs/BENCHMARKS.md
bench:
	$(PYTHON) bench/lookup.py
	$(PYTHON) bench/export.py
	$(PYTHON) bench/ingest.py
	$(PYTHON) bench/fill_auth.py
	$(PYTHON) bench/ws_fanout.py

## drop databases left behind by interrupted test sessions
clean-test-dbs:
	psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'cylwatch_test_%'" \
	  | while read db; do psql -h 127.0.0.1 -U postgres -c "DROP DATABASE \"$$db\"" >/dev/null; done
