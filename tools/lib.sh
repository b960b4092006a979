# Shared helpers for the tools/ scripts; sourced, never executed.
# shellcheck shell=bash

say() { printf '==> %s\n' "$*"; }
die() { printf '\nERROR: %s\n\n' "$*" >&2; exit 1; }

# Installs Debian packages only when one of them is missing, so a second
# run of any make target does not touch apt at all.
ensure_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "Debian packages ${missing[*]} are missing and only root can install them."
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed; check the Debian mirror in /etc/apt/sources.list*."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed."
}

# True when IMAGE carries the label agentfleet.recipe=KEY, i.e. was built
# from the recipe the caller hashed; says so, or says what will be built.
#   image_is_current IMAGE KEY "base image"
image_is_current() {
  local image="$1" key="$2" what="$3" current
  current="$(docker image inspect -f '{{ index .Config.Labels "agentfleet.recipe" }}' "$image" 2>/dev/null || true)"
  if [ "$current" = "$key" ]; then
    say "$what $image is up to date (recipe $key): reusing it"
    return 0
  elif [ -z "$current" ]; then
    say "$what $image is missing: building it (recipe $key)"
  else
    say "$what $image was built from recipe $current, recipe is now $key: rebuilding it"
  fi
  return 1
}
