#!/usr/bin/env bash
# The images molecule starts from: the Debian 12 and 13 base images, built
# side by side (debootstrap mostly waits on the mirror), then the Debian 12
# runtime image on top of the first. Each is reused while its recipe holds.
#   build-test-images.sh [base|runtime]   only the base images, or only the
#                                         runtime image (default: all)
set -euo pipefail
what="${1:-all}"
case "$what" in all | base | runtime) ;; *) echo "usage: $0 [base|runtime]" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"

if [ "$what" = runtime ]; then
  exec "$here/build-runtime-image.sh"
fi

# Once, before the two builds: two apt-get runs at once would fight over
# dpkg's lock.
ensure_debs debootstrap
log="$(mktemp /tmp/agentfleet-trixie-image.XXXXXX.log)"
"$here/build-base-image.sh" trixie >"$log" 2>&1 &
trixie=$!
bookworm_rc=0
"$here/build-base-image.sh" bookworm || bookworm_rc=$?
trixie_rc=0
wait "$trixie" || trixie_rc=$?
cat "$log"
rm -f "$log"
[ "$bookworm_rc" -eq 0 ] || die "the Debian 12 base image could not be built (above)."
[ "$trixie_rc" -eq 0 ] || die "the Debian 13 base image could not be built (above)."
[ "$what" = base ] || "$here/build-runtime-image.sh"
