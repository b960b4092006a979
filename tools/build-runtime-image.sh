#!/usr/bin/env bash
# Builds agentfleet/bookworm-runtime:local: the base image plus the pinned
# Node.js, npm and OpenClaw, installed by the runtime role itself
# (images/runtime/install.yml). Most molecule scenarios start from it so
# they do not each unpack a 650 MB OpenClaw; molecule/upgrade and the
# Debian 13 host of molecule/multihost start from a base image and prove
# the install from scratch. The image is keyed like the base image: a label
# holds a hash of the base image, the pinned versions and the install code;
# a matching image is reused, a stale one is rebuilt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"
cd "$root"

base="agentfleet/bookworm-systemd:local"
image="agentfleet/bookworm-runtime:local"
builder="agentfleet-build-runtime"
# The settings molecule deploys with (the extra CA file among them), so the
# image holds the same files a scenario's converge would write.
settings=inventories/local/group_vars/fleet.yml

base_id="$(docker image inspect -f '{{ .Id }}' "$base" 2>/dev/null)" \
  || die "base image $base is missing: run make image first."
versions="$(python3 - <<'PY'
import yaml
fleet = yaml.safe_load(open("roles/fleet/defaults/main.yml"))
runtime = yaml.safe_load(open("roles/runtime/defaults/main.yml"))
print(fleet["fleet_node_version"], runtime["runtime_npm_version"], fleet["fleet_openclaw_version"])
PY
)"
key="$( (echo "$base_id $versions"; cat images/runtime/install.yml roles/runtime/tasks/read.yml roles/runtime/tasks/node.yml \
  roles/runtime/tasks/openclaw.yml roles/runtime/tasks/commands.yml roles/runtime/vars/main.yml roles/runtime/defaults/main.yml \
  roles/fleet/defaults/main.yml \
  roles/runtime/templates/*.j2 "$settings" "$0") | sha256sum | cut -c1-16)"

say "runtime image: node, npm, openclaw $versions"
if image_is_current "$image" "$key" "runtime image"; then
  exit 0
fi

docker rm -f "$builder" >/dev/null 2>&1 || true
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
mkdir -p .cache/npm
# No systemd needed to unpack files; npm's cache is shared with molecule.
docker run --detach --name "$builder" --volume "$root/.cache/npm:/root/.npm" \
  "$base" sleep infinity >/dev/null
log="$(mktemp /tmp/agentfleet-runtime-image.XXXXXX.log)"
ANSIBLE_COLLECTIONS_PATH="$root/collections" ansible-playbook -i "$builder," \
  -e ansible_connection=community.docker.docker -e "@$settings" images/runtime/install.yml >"$log" 2>&1 \
  || { tail -n 40 "$log" >&2; die "installing the runtime into $image failed (log: $log)."; }
# The cache is a mount, not part of the image.
docker exec "$builder" rm -rf /tmp/* /root/.npm/_logs 2>/dev/null || true
docker commit --change 'CMD ["/lib/systemd/systemd"]' \
  --change "LABEL agentfleet.recipe=$key" "$builder" "$image" >/dev/null
rm -f "$log"
say "built $image (recipe $key)"
