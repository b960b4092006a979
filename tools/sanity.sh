#!/usr/bin/env bash
# ansible-test sanity, every test, with no ignore files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"
. "$here/collection-tree.sh"

# The shellcheck sanity test is skipped with a mere warning without it.
ensure_debs shellcheck

python_version="$("$root/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
# ansible-test bootstraps pip in its venvs from a script on a host this
# network cannot reach, unless a cached copy exists: install our offline
# stand-in as that copy, for the pip version this ansible-test pins.
reqs="$(echo "$root"/.venv/lib/python*/site-packages/ansible_test/_internal/python_requirements.py)"
pip_version="$(sed -nE "s/.*pip='([0-9.]+)'.*/\1/p" "$reqs" | head -n1)"
[ -n "$pip_version" ] || die "could not read the pip version ansible-test pins from $reqs"
mkdir -p "$HOME/.ansible/test/cache"
install -m 0644 "$here/get_pip_stub.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

tree="$(collection_tree "$root" sanity)"
[ -z "$(find "$tree/tests" -path '*/sanity/ignore-*.txt' 2>/dev/null)" ] \
  || die "tests/sanity/ignore-*.txt found: this project keeps sanity clean without ignore files."
say "ansible-test sanity (Python $python_version) in $tree"
cd "$tree"
ansible-test sanity --venv --requirements --python "$python_version" --color no
