# dcaas.cluster: every target sets up what it needs; re-runs are quick.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
COLLECTIONS := build/collections
COLL_LINK   := $(COLLECTIONS)/ansible_collections/dcaas/cluster
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)
export PYTHONPATH := $(CURDIR)/$(COLLECTIONS)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup venv images nova vm lint sanity unit integration molecule test bench docs demo destroy clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(COLL_LINK):
	@mkdir -p $(dir $@) && ln -sfn $(CURDIR) $@

$(VENV)/.stamp: requirements-dev.txt
	@echo "[venv] installing pinned tools into $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.stamp $(COLL_LINK) ## Python venv with pinned versions

setup: venv ## host packages, podman configuration and API service
	@bash hack/setup-host.sh

images: setup ## build the local cloud's images (no registry needed)
	@bash hack/build-images.sh
	@bash hack/build-test-image.sh

nova: venv ## the real Nova API from PyPI, in its own venv
	@bash hack/nova/setup.sh

vm: setup ## QEMU and the cached VM image for the kernel-NFS test
	@bash hack/vm/setup.sh
	@bash hack/vm/build-image.sh >/dev/null

lint: venv ## ruff, ansible-lint (production profile)
	ruff check .
	ruff format --check .
	ansible-lint --profile production

sanity: venv ## ansible-test sanity on a copy of the collection
	@bash hack/sanity.sh

unit: venv ## unit and property tests (no containers)
	pytest -q -m "not integration" -n 2

integration: images nova vm ## tests with real podman, Slurm and Nova
	pytest -q -m integration tests/unit tests/integration

molecule: images ## every Molecule scenario (create, converge, idempotence, verify, destroy)
	@test -e $(COLL_LINK) || { mkdir -p $(dir $(COLL_LINK)) && ln -sfn $(CURDIR) $(COLL_LINK); }
	@for s in $$(cd molecule && ls -d */ | tr -d /); do \
	  echo "[molecule] scenario $$s"; \
	  molecule test -s $$s || exit 1; \
	done

test: setup images nova vm lint sanity ## everything CI runs
	pytest -q -n 2 --dist loadfile tests/unit tests/integration -p no:cacheprovider
	$(MAKE) --no-print-directory molecule

demo: images ## deploy the Basic architecture locally, run jobs, watch workers come and go
	$(PY) hack/demo.py $(DEMO_ARGS)

destroy: venv ## remove everything `make demo` made
	ansible-playbook playbooks/destroy.yml

bench: venv ## policy decision time (and the trace-driven simulator, where present)
	$(PY) tools/bench.py --decide
	$(PY) tools/bench.py $(if $(FULL),--full --workers 2)

docs: venv ## check that every plugin's documentation renders
	ansible-doc dcaas.cluster.scale > /dev/null
	ansible-doc dcaas.cluster.cluster_info > /dev/null
	ansible-doc -t inventory dcaas.cluster.dynamic_cluster > /dev/null
	@echo "[docs] ok"

clean: ## remove build products (not the venvs)
	rm -rf build tests/output .pytest_cache
