#!/usr/bin/env bash
# Builds agentfleet/<suite>-systemd:local (suite: bookworm = Debian 12,
# the default, or trixie = Debian 13) with debootstrap + docker import (no
# registry is reachable here). The image carries a label with a hash of
# its recipe; a matching image is reused, a stale one is rebuilt.
#   build-base-image.sh [bookworm|trixie]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"

suite="${1:-bookworm}"
case "$suite" in
  bookworm|trixie) ;;
  *) die "build-base-image.sh: suite '$suite' is not supported; use bookworm (Debian 12) or trixie (Debian 13)." ;;
esac
image="agentfleet/$suite-systemd:local"
[ "$suite" != bookworm ] || image="${AGENTFLEET_BASE_IMAGE:-$image}"
mirror="${AGENTFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
recipe_dir="$root/images/debian-systemd"
host_ca=/etc/ssl/certs/ca-certificates.crt

[ -r "$host_ca" ] || die "The build host has no CA bundle at $host_ca; install ca-certificates."

recipe_hash="$( (echo "$suite"; cat "$recipe_dir/packages" "$recipe_dir/customize.sh" "$host_ca" "$0") \
  | sha256sum | cut -c1-16)"

if image_is_current "$image" "$recipe_hash" "base image ($suite)"; then
  exit 0
fi

ensure_debs debootstrap

work="$(mktemp -d /var/tmp/agentfleet-rootfs.XXXXXX)"
rootfs="$work/rootfs"
cleanup() {
  # A debootstrap that died midway can leave /proc or /sys mounted in the
  # tree; unmount first so the removal never reaches the host's files.
  grep -o " $rootfs/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

pkgs="$(grep -v '^#' "$recipe_dir/packages" | xargs | tr ' ' ,)"
debootstrap --variant=minbase --include="$pkgs" "$suite" "$rootfs" "$mirror" \
  >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap of $suite from $mirror failed (log above)."; }

install -m 0644 "$host_ca" "$rootfs/usr/local/share/ca-certificates/agentfleet-build-host.crt"
install -m 0755 "$recipe_dir/customize.sh" "$rootfs/tmp/customize.sh"
chroot "$rootfs" /tmp/customize.sh

tar -C "$rootfs" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change "LABEL agentfleet.recipe=$recipe_hash" \
  - "$image" >/dev/null
say "built $image (recipe $recipe_hash)"
