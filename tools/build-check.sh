#!/usr/bin/env bash
# Builds the collection tarball the way Galaxy would, installs it into a
# temporary path and checks that ansible-doc finds every role and module
# from the installed copy (not from this checkout).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"

out="$root/build"
mkdir -p "$out"
rm -f "$out"/agentfleet-vps-*.tar.gz
ansible-galaxy collection build --force --output-path "$out" "$root" >/dev/null
tarball="$(echo "$out"/agentfleet-vps-*.tar.gz)"
[ -f "$tarball" ] || die "ansible-galaxy collection build produced no tarball in $out"
say "built $(basename "$tarball")"

# Nothing of the development tooling may ship.
leaked="$(tar -tzf "$tarball" | grep -E '^(tests|molecule|tools|images|bench|\.ci|collections|\.venv)/' || true)"
[ -z "$leaked" ] || die "build_ignore is missing entries; the tarball contains: $leaked"

install_dir="$(mktemp -d)"
trap 'rm -rf "$install_dir"' EXIT
# Only the temporary install may be visible to ansible-galaxy and ansible-doc.
printf '[defaults]\n' > "$install_dir/ansible.cfg"
export ANSIBLE_CONFIG="$install_dir/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$install_dir"
ansible-galaxy collection install --offline -p "$install_dir" "$tarball" >/dev/null
say "installed into $install_dir"


for role in "$root"/roles/*/; do
  name="agentfleet.vps.$(basename "$role")"
  ansible-doc -t role "$name" >/dev/null || die "ansible-doc cannot render role $name from the installed tarball"
  say "ansible-doc renders role $name"
done
for module in "$root"/plugins/modules/*.py; do
  [ -e "$module" ] || continue
  name="agentfleet.vps.$(basename "$module" .py)"
  ansible-doc -t module "$name" >/dev/null || die "ansible-doc cannot render module $name from the installed tarball"
  say "ansible-doc renders module $name"
done
