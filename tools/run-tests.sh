#!/usr/bin/env bash
# make test: setup and the images, then the static checks (lint, sanity,
# unit, build, generated) as one lane beside the molecule scenarios; no new
# scenario starts after a failure. Ends with a table of where the time went
# (setup, each stage, each molecule scenario), also on failure.
#   MOLECULE_JOBS=N   molecule scenarios run N at a time (default 2, which
#                     fits 2 cores: each lane is mostly waiting on gateways);
#                     each scenario's output is printed whole when it ends.
set -euo pipefail
failed=""
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"
cd "$root" || exit 1

jobs="${MOLECULE_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "MOLECULE_JOBS=$jobs must be a positive number."
logs="$(mktemp -d /tmp/agentfleet-test.XXXXXX)"
names=() secs=() results=() failed_logs=()
suite_start=$SECONDS

record() { names+=("$1"); secs+=("$2"); results+=("$3"); }

table() {
  local i total=$((SECONDS - suite_start))
  printf '\n==> where the time of make test went\n'
  printf '  %-28s %7s  %s\n' stage seconds result
  for i in "${!names[@]}"; do
    printf '  %-28s %7d  %s\n' "${names[$i]}" "${secs[$i]}" "${results[$i]}"
  done
  printf '  %-28s %7d\n' "total (wall clock)" "$total"
}

# The failing tests and assertions of each failed scenario, at the very end
# of the output: a CI page that keeps only the end still says what failed.
digest() {
  local log
  for log in "${failed_logs[@]}"; do
    [ -f "$log" ] || continue
    printf '\n==> what failed in %s (its whole output is above)\n' "$(basename "$log" .log)"
    sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^ *[│└┌] \{0,1\}//' "$log" | awk '
      /short test summary info/ { summary = 1; next }
      summary && /^=+ / { summary = 0 }
      summary && /^(FAILED|ERROR)/ { name = 1; print; next }
      name { print; name = 0; next }
      /^E  / && errors < 6 { print; errors++; more = 2; next }
      more && /^  / { print; more--; next }
      { more = 0 }
      /^fatal: \[/ && fatals < 4 { print; fatals++; msg = 3; next }
      msg && /msg/ { print; msg = 0 }
      msg { msg-- }' | cut -c1-240 | head -40
  done
}

finish() {
  table
  [ "$1" -eq 0 ] || digest
  rm -rf "$logs"
  [ "$1" -eq 0 ] || printf '\nERROR: make test failed in %s (output above).\n' "$2" >&2
  exit "$1"
}

stage() {
  local name="$1" start=$SECONDS
  shift
  if "$@"; then
    record "$name" $((SECONDS - start)) passed
  else
    record "$name" $((SECONDS - start)) FAILED
    finish 1 "$name"
  fi
}

stage setup make --no-print-directory venv docker ssh-client

# The static checks run as one lane beside the molecule scenarios: they
# need no container, and the scenarios spend much of their time waiting
# on gateways. Their output is printed whole when they end; a failed check
# stops new scenarios from starting and fails the run.
checks() {
  local name start rc
  for name in lint sanity unit build generated; do
    start=$SECONDS rc=0
    make --no-print-directory "$name" || rc=$?
    printf '%s %d %s\n' "$name" $((SECONDS - start)) "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)" >>"$logs/checks.tsv"
    [ "$rc" -eq 0 ] || return "$rc"
  done
}
checks >"$logs/checks.log" 2>&1 &
checks_pid=$!
checks_done=""
reap_checks() {
  local rc=0 name sec result
  [ -z "$checks_done" ] || return 0
  if [ "${1:-}" != wait ] && kill -0 "$checks_pid" 2>/dev/null; then return 0; fi
  wait "$checks_pid" || rc=$?
  checks_done=$rc
  printf '\n==> static checks (beside molecule, rc=%d)\n' "$rc"
  cat "$logs/checks.log"
  while read -r name sec result; do record "$name (beside molecule)" "$sec" "$result"; done <"$logs/checks.tsv"
  [ "$rc" -eq 0 ] || failed="${failed:+$failed, }static checks"
}

# The base images molecule starts from are built, or found current, first;
# the runtime image (Node.js and OpenClaw baked in) is built beside the
# scenarios that start from a base image (they install the runtime
# themselves), and the others wait for it.
stage "base images" tools/build-test-images.sh base
tools/build-test-images.sh runtime >"$logs/runtime-image.log" 2>&1 &
runtime_pid=$! runtime_start=$SECONDS runtime_state=building
reap_runtime() {
  local rc=0
  [ "$runtime_state" = building ] || return 0
  if [ "${1:-}" != wait ] && kill -0 "$runtime_pid" 2>/dev/null; then return 0; fi
  wait "$runtime_pid" || rc=$?
  printf '\n==> runtime image (beside molecule, rc=%d)\n' "$rc"
  cat "$logs/runtime-image.log"
  if [ "$rc" -eq 0 ]; then
    runtime_state=ready
    record "runtime image (beside molecule)" $((SECONDS - runtime_start)) passed
  else
    runtime_state=failed
    record "runtime image (beside molecule)" $((SECONDS - runtime_start)) FAILED
    failed="${failed:+$failed, }runtime image"
  fi
}
# A scenario starts from the runtime image (.config/molecule/config.yml)
# unless it names only base images for its platforms.
needs_runtime() {
  grep -q 'image: agentfleet/bookworm-runtime:local' "molecule/$1/molecule.yml" \
    || ! grep -q 'image: agentfleet/[a-z]*-systemd:local' "molecule/$1/molecule.yml"
}

# The order: longest first, each next one to the lane that frees first
# (the scenarios' times in the full run of 2026-12-03: oversight 750 s,
# small_fleet 747, default 709, upgrade 624, hostile 602, multihost 392,
# preflight 144). Every scenario is CPU-bound and two share two cores, so
# the order moves the total by the last lane's idle tail, not more. A
# scenario that needs the runtime image is passed over until it is built,
# so on a cold run preflight, the one that starts from a base image, goes
# first; on a warm run the image's check takes seconds and is waited for
# (below), so the order holds.
order=(oversight small_fleet default upgrade hostile multihost preflight)
scenarios=()
for name in "${order[@]}"; do
  if [ -f "molecule/$name/molecule.yml" ]; then scenarios+=("$name"); fi
done
for file in molecule/*/molecule.yml; do
  name="$(basename "$(dirname "$file")")"
  [[ " ${scenarios[*]} " == *" $name "* ]] || scenarios+=("$name")
done

# Each molecule action's seconds (tools/phase-clock.py) under the
# scenario's row: converge, idempotence and verify weigh differently in
# each scenario.
phases() {
  local action sec
  [ -f "$logs/$1.phases" ] || return 0
  while read -r action sec; do record "  $action" "$sec" ""; done <"$logs/$1.phases"
}

declare -A pid_of=() started=()
passed=0
reap() {
  local name pid rc
  reap_checks
  for name in "${!pid_of[@]}"; do
    pid="${pid_of[$name]}"
    if kill -0 "$pid" 2>/dev/null; then continue; fi
    rc=0
    wait "$pid" || rc=$?
    unset "pid_of[$name]"
    printf '\n==> molecule scenario %s (%d s, rc=%d)\n' "$name" $((SECONDS - started[$name])) "$rc"
    cat "$logs/$name.log"
    if [ "$rc" -eq 0 ]; then
      record "molecule $name" $((SECONDS - started[$name])) passed
      passed=$((passed + 1))
    else
      record "molecule $name" $((SECONDS - started[$name])) FAILED
      failed_logs+=("$logs/$name.log")
      failed="${failed:+$failed, }molecule $name"
    fi
    phases "$name"
  done
}

next_scenario() {
  local i
  next=""
  for i in "${!pending[@]}"; do
    if needs_runtime "${pending[$i]}" && [ "$runtime_state" != ready ]; then continue; fi
    next="${pending[$i]}"
    unset "pending[$i]"
    pending=("${pending[@]}")
    return 0
  done
}

say "molecule: ${#scenarios[@]} scenarios, $jobs at a time: ${scenarios[*]}"
pending=("${scenarios[@]}")
# A current runtime image is found in seconds: wait that long, so a warm
# run keeps the order instead of starting preflight first.
while [ "$runtime_state" = building ] && [ $((SECONDS - runtime_start)) -lt 20 ]; do
  sleep 1
  reap_runtime
done
while [ "${#pending[@]}" -gt 0 ]; do
  reap
  reap_runtime
  [ -z "$failed" ] || break
  next=""
  [ "${#pid_of[@]}" -ge "$jobs" ] || next_scenario
  if [ -z "$next" ]; then
    sleep 2
    continue
  fi
  started[$next]=$SECONDS
  (set -o pipefail; molecule test -s "$next" 2>&1 | python3 tools/phase-clock.py "$logs/$next.phases") >"$logs/$next.log" &
  pid_of[$next]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do
  sleep 2
  reap
done
reap_runtime wait
reap_checks wait
[ -z "$failed" ] || finish 1 "$failed"
# Only a run in which every scenario reported success passes.
[ "$passed" -eq "${#scenarios[@]}" ] || finish 1 "molecule ($passed of ${#scenarios[@]} scenarios passed)"
finish 0 ""
