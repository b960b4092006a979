#!/usr/bin/env bash
# make test: what is generated from the sources is current, and the
# execution environment definition turns into a build context.
#   docs/          tools/gen-docs.py --check       (make docs writes it)
#   CHANGELOG.md   antsibull-changelog, in a copy  (make changelog writes it)
#   execution-environment.yml  ansible-builder create, and the collection's
#                  meta/execution-environment.yml as ansible-builder reads it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"
cd "$root"
export ANSIBLE_COLLECTIONS_PATH="$root/collections"

python3 tools/gen-docs.py --check

antsibull-changelog lint
version="$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')"
# The recorded date, not today's: the check must give the same answer on any day.
date="$(python3 tools/changelog-date.py "$version")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
copy="$work/ansible_collections/agentfleet/vps"
mkdir -p "$copy"
cp -a galaxy.yml CHANGELOG.md changelogs meta plugins roles playbooks "$copy/"
(cd "$copy" && ANSIBLE_COLLECTIONS_PATH="$work" \
  antsibull-changelog release --version "$version" --date "$date" --update-existing --use-ansible-doc >"$work/release.log" 2>&1) \
  || { cat "$work/release.log" >&2; die "antsibull-changelog release failed in a copy of the collection"; }
for file in CHANGELOG.md changelogs/changelog.yaml; do
  diff -u "$file" "$copy/$file" >&2 || die "$file is stale: a fragment in changelogs/fragments is not in it; run make changelog and commit."
done
say "CHANGELOG.md is current for $version ($(find changelogs/fragments -name "*.yml" | wc -l) fragments)"

tarball="$(ls build/agentfleet-vps-"$version".tar.gz 2>/dev/null)" || die "build/agentfleet-vps-$version.tar.gz is missing: run make build first."
ansible-builder create -f execution-environment.yml -c "$work/context" --output-filename Containerfile >/dev/null
grep -q 'ansible-galaxy collection install' "$work/context/Containerfile" \
  || die "the execution environment's Containerfile installs no collection"
[ -f "$work/context/_build/collections/$(basename "$tarball")" ] \
  || die "ansible-builder did not put $(basename "$tarball") into the build context"
mkdir "$work/installed"
ANSIBLE_COLLECTIONS_PATH="$work/installed" ansible-galaxy collection install --offline -p "$work/installed" "$tarball" >/dev/null
deps="$(ansible-builder introspect --sanitize "$work/installed")"
grep -q 'openssh-clients.*agentfleet.vps' <<<"$deps" \
  || die "ansible-builder does not read meta/execution-environment.yml from the installed collection"
say "ansible-builder create: build context with $(basename "$tarball") and the collection's dependencies"
