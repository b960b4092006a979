# agentfleet.vps: every target prepares what it needs and is safe to re-run.
#   make demo   deploy the default fleet into the local target container
#   make test   lint, sanity, unit, build, generated files and every molecule scenario
#   make loop SCENARIO=name   the fast loop while developing a role: lint, unit, one scenario

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LOCAL_INVENTORY := inventories/local

.PHONY: help demo test loop lint sanity unit build generated molecule bench clean distclean \
        venv docker image test-images ssh-client local-target docs changelog ee

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

venv: ## create .venv from the pinned requirements (reused when unchanged)
	@tools/ensure-venv.sh

docker: ## install docker.io and start dockerd when needed
	@tools/ensure-docker.sh

image: docker ## build agentfleet/bookworm-systemd:local (reused when its recipe is unchanged)
	@tools/build-base-image.sh bookworm

# Debian 13 for molecule/multihost's SSH host; Node.js and OpenClaw baked
# into agentfleet/bookworm-runtime:local for the scenarios that do not test
# the install itself. Each is reused while its recipe is unchanged.
test-images: venv docker ## build the images molecule starts from (Debian 12 and 13, Debian 12 with the runtime)
	@tools/build-test-images.sh

local-target: image ## create or reuse the agentfleet-local container
	@tools/local-target.sh up

demo: venv local-target ## deploy the default fleet into agentfleet-local and show it
	ansible-playbook -i $(LOCAL_INVENTORY) playbooks/site.yml
	ansible-playbook -i $(LOCAL_INVENTORY) playbooks/status.yml

test: ## run every test, stopping at the first failure; ends with where the time went
	@tools/run-tests.sh

loop: venv test-images ## fast loop for role work: lint, unit and one scenario (SCENARIO=oversight)
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory molecule SCENARIO=$(or $(SCENARIO),oversight)

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
	# The plugin list is read again every time: antsibull keeps it per version, and a plugin added
	# within one version would be missing here but present in a fresh clone (make generated).
	rm -f changelogs/.plugin-cache.yaml
	version=$$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])'); \
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections antsibull-changelog release --update-existing --use-ansible-doc \
	  --version "$$version" --date "$$(python3 tools/changelog-date.py "$$version")"

ee: build ## execution environment build context in context/ (ansible-builder create)
	ansible-builder create -f execution-environment.yml -c context --output-filename Containerfile

ssh-client: # molecule/multihost reaches a host over SSH
	@tools/ensure-ssh-client.sh

molecule: venv test-images ssh-client ## every molecule scenario one after the other, or one: SCENARIO=name
	molecule test $(if $(SCENARIO),-s $(SCENARIO),--all)

bench: venv ssh-client local-target ## benchmarks under bench/ (COMPARE=REV: also REV's re-run, before/after)
	@bench/run.sh $(if $(COMPARE),--compare $(COMPARE))

clean: ## remove build output, the local target and molecule containers
	rm -rf build context
	@tools/local-target.sh destroy
	-@[ ! -x $(BIN)/molecule ] || $(BIN)/molecule destroy --all >/dev/null

distclean: clean ## also remove .venv and the base image
	rm -rf $(VENV)
	-docker image rm agentfleet/bookworm-runtime:local agentfleet/bookworm-systemd:local agentfleet/trixie-systemd:local
