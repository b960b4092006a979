#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs docker.io when absent and
# starts dockerd when nothing is listening. CI machines have neither.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"

log=/var/log/agentfleet-dockerd.log

ensure_debs docker.io

if docker info >/dev/null 2>&1; then
  say "docker engine is running"
  exit 0
fi

if [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; then
  say "docker engine not running: starting docker.service"
  systemctl start docker.service || true
else
  # No init system to ask (sandboxes, CI runners): run dockerd ourselves,
  # detached so it outlives this make invocation.
  say "docker engine not running: starting dockerd (log: $log)"
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
  dockerd_pid=$!
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    say "docker engine started"
    exit 0
  fi
  # A dockerd that already exited will not come up by waiting longer.
  if [ -n "${dockerd_pid:-}" ] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
    break
  fi
  sleep 1
done

die "The Docker engine could not be started, so the local target and the molecule
scenarios cannot run. This project boots systemd inside a Docker container to
stand in for a VPS; that needs a working dockerd running as root with cgroups
and overlay or vfs storage available. Last lines of $log:
$(tail -n 15 "$log" 2>/dev/null || echo '(no log)')
Fix the engine (or run on a machine where 'dockerd' starts as root) and re-run."
