# agentfleet.vps: every target prepares what it needs and is safe to re-run.
#   make demo   deploy the default fleet into the local target container
#   make test   lint, sanity, unit, build, generated files and every molecule scenario

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LOCAL_INVENTORY := inventories/local

.PHONY: help demo test lint sanity unit build generated molecule bench clean distclean \
        venv docker image local-target docs changelog ee

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

venv: ## create .venv from the pinned requirements (reused when unchanged)
	@tools/ensure-venv.sh

docker: ## install docker.io and start dockerd when needed
	@tools/ensure-docker.sh

image: docker ## build agentfleet/bookworm-systemd:local (reused when its recipe is unchanged)
	@tools/build-base-image.sh

local-target: image ## create or reuse the agentfleet-local container
	@tools/local-target.sh up

demo: venv local-target ## deploy the default fleet into agentfleet-local and show it
	ansible-playbook -i $(LOCAL_INVENTORY) playbooks/site.yml
	ansible-playbook -i $(LOCAL_INVENTORY) playbooks/status.yml

test: ## run every test, stopping at the first failure
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory sanity
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory generated
	@$(MAKE) --no-print-directory molecule

# ansible-lint installs this collection into $ANSIBLE_HOME/collections; a
# per-checkout ANSIBLE_HOME keeps another checkout's copy from shadowing it.
lint: venv ## yamllint and ansible-lint (production profile)
	yamllint --strict .
	ANSIBLE_HOME=$(CURDIR)/.ansible ansible-lint

sanity: venv ## ansible-test sanity in a temporary ansible_collections tree
	@tools/sanity.sh

unit: venv ## pytest unit tests under tests/unit
	pytest -q tests/unit

build: venv ## build the collection tarball, install it in a temp path, check ansible-doc
	@tools/build-check.sh

generated: venv ## docs/ and CHANGELOG.md are current; ansible-builder create works (after build)
	@tools/check-generated.sh

docs: venv ## regenerate docs/ from the modules' DOCUMENTATION and the roles' argument specs
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections python3 tools/gen-docs.py

changelog: venv ## fold changelogs/fragments into changelogs/changelog.yaml and CHANGELOG.md
	antsibull-changelog lint
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections antsibull-changelog release --update-existing --use-ansible-doc \
	  --version $$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')

ee: build ## execution environment build context in context/ (ansible-builder create)
	ansible-builder create -f execution-environment.yml -c context --output-filename Containerfile

molecule: venv image ## every molecule scenario
	molecule test --all

bench: venv local-target ## benchmarks under bench/
	@bench/run.sh

clean: ## remove build output, the local target and molecule containers
	rm -rf build context
	@tools/local-target.sh destroy
	-@[ ! -x $(BIN)/molecule ] || $(BIN)/molecule destroy --all >/dev/null

distclean: clean ## also remove .venv and the base image
	rm -rf $(VENV)
	-docker image rm agentfleet/bookworm-systemd:local
