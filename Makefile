# Two commands matter: `make run` starts the system, `make test` checks everything.
# Everything is installed into .venv from uv.lock; uv itself comes from PyPI into .tools.

PYTHON ?= python3
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
UV := .tools/bin/uv
BIN := .venv/bin
SERVICES := shop-common auth-service product-service api-gateway
PYTEST := $(BIN)/pytest

.PHONY: run test install lint fmt typecheck test-unit test-integration test-e2e test-images bench clean rotate-keys

run: install
	$(BIN)/python scripts/run.py

test: install lint typecheck
	$(PYTEST) -q -ra $(PYTEST_ARGS) $(SERVICES) tests

install: .venv/.installed

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode compiled at install, as in the images: a process that compiles its libraries
# itself (no .pyc yet, or PYTHONDONTWRITEBYTECODE set) holds 3-16 MB more, and starts 1 s
# of CPU later (docs/decisions/service-memory.md).
.venv/.installed: $(UV) uv.lock pyproject.toml $(addsuffix /pyproject.toml,$(SERVICES)) Makefile
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy $(addsuffix /src,$(SERVICES))
	for dir in $(SERVICES); do \
		if [ -d $$dir/tests ]; then (cd $$dir && ../$(BIN)/mypy --config-file ../pyproject.toml tests) || exit 1; fi; \
	done
	$(BIN)/mypy --config-file pyproject.toml tests test-support scripts bench
	MYPYPATH=deploy/images $(BIN)/mypy --config-file pyproject.toml deploy/images

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-unit: install
	$(PYTEST) -q $(addsuffix /tests/unit,auth-service product-service api-gateway)

test-integration: install
	$(PYTEST) -q $(addsuffix /tests/integration,auth-service product-service api-gateway)

test-e2e: install
	$(PYTEST) -q tests/e2e

# The images built from the Dockerfiles and docker-compose.yml's stack run for real, then
# checked through the published port (docs/decisions/deploy-image-test.md). The engine: a
# running Docker Engine, else podman from Debian, installed by install-engine.sh.
test-images: install
	engine="$$(bash deploy/images/install-engine.sh $(CURDIR)/.tools)" \
		&& $(BIN)/python deploy/images/stack_test.py --engine "$$engine" $(ARGS)

# A new auth signing key; every auth-service replica signs with it within 60 s, and the
# JWKS keeps the older keys while their tokens may still be live.
rotate-keys: install
	$(BIN)/python -m auth_service keys rotate

# The performance benchmark (issue 7): `make bench`, `make bench ARGS=--quick`,
# `make bench ARGS="--catalog 1000000"`; BENCH_URL measures a system already running.
bench: install
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf .venv .tools
