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
