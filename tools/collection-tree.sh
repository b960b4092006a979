# Lays out the checkout as <tmp>/<purpose>/ansible_collections/agentfleet/vps,
# the path ansible-test and ansible-galaxy expect; prints that path. It lies
# outside the checkout: inside it, ansible-test would follow the checkout's
# git (where the copy is ignored) and find no files to test.
# shellcheck shell=bash
collection_tree() {
  local root="$1" purpose="$2" dest
  local base="${TMPDIR:-/tmp}/agentfleet-vps-$purpose"
  dest="$base/ansible_collections/agentfleet/vps"
  rm -rf "$base"
  mkdir -p "$dest"
  # Tracked and new (not ignored) files: what a commit would contain.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^collections/' \
    | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' \
    | tar --null -T - -cf -) | tar -C "$dest" -xf -
  printf '%s\n' "$dest"
}
