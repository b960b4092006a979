# Lays out the checkout as build/<purpose>/ansible_collections/agentfleet/vps,
# the path ansible-test and ansible-galaxy expect; prints that path.
# shellcheck shell=bash
collection_tree() {
  local root="$1" purpose="$2" dest
  dest="$root/build/$purpose/ansible_collections/agentfleet/vps"
  rm -rf "$root/build/$purpose"
  mkdir -p "$dest"
  # Tracked and new (not ignored) files: what a commit would contain.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^collections/' \
    | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' \
    | tar --null -T - -cf -) | tar -C "$dest" -xf -
  printf '%s\n' "$dest"
}
