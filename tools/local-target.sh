#!/usr/bin/env bash
# The built-in local target: a systemd container standing in for a VPS.
#   local-target.sh up       create agentfleet-local, or reuse it when present
#   local-target.sh destroy  remove it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"

name="${AGENTFLEET_LOCAL_NAME:-agentfleet-local}"
image="${AGENTFLEET_BASE_IMAGE:-agentfleet/bookworm-systemd:local}"

# The flags that let systemd run as PID 1 without --privileged; they are
# the same ones .config/molecule/config.yml gives every scenario's platform.
run_flags=(
  --detach --name "$name" --hostname "$name"
  --cap-add SYS_ADMIN --security-opt seccomp=unconfined
  --cgroupns=host --volume /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /run/lock --env container=docker
  # systemd shuts down cleanly on SIGRTMIN+3, not on docker's SIGTERM
  --stop-signal SIGRTMIN+3
  --label agentfleet.role=local-target
)

wait_for_systemd() {
  local state=""
  for _ in $(seq 1 60); do
    state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$state" in
      running|degraded) say "$name: systemd is $state"; return 0 ;;
    esac
    sleep 1
  done
  docker logs --tail 30 "$name" >&2 || true
  die "systemd in container $name did not finish booting (last state: '${state:-none}')."
}

up() {
  local status
  status="$(docker inspect -f '{{ .State.Status }}' "$name" 2>/dev/null || true)"
  case "$status" in
    running)
      say "local target $name exists and is running: reusing it" ;;
    "")
      say "local target $name is absent: creating it from $image"
      docker run "${run_flags[@]}" "$image" /lib/systemd/systemd >/dev/null ;;
    *)
      say "local target $name exists ($status): starting it"
      docker start "$name" >/dev/null ;;
  esac
  wait_for_systemd
}

destroy() {
  if docker inspect "$name" >/dev/null 2>&1; then
    docker rm -f "$name" >/dev/null
    say "removed local target $name"
  else
    say "local target $name is absent: nothing to remove"
  fi
}

case "${1:-}" in
  up) up ;;
  destroy) destroy ;;
  *) die "usage: $0 up|destroy" ;;
esac
