#!/usr/bin/env bash
# make test: every stage in order, stopping at the first failure, then a
# table of where the time went (setup, each stage, each molecule scenario).
#   MOLECULE_JOBS=N   molecule scenarios run N at a time (default 2, which
#                     fits 2 cores: each lane is mostly waiting on gateways);
#                     each scenario's output is printed whole when it ends.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"
cd "$root" || exit 1

jobs="${MOLECULE_JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "MOLECULE_JOBS=$jobs must be a positive number."
logs="$(mktemp -d /tmp/agentfleet-test.XXXXXX)"
names=() secs=() results=()
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

finish() {
  table
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
# The images only molecule needs are built (or found current) beside the
# checks: on a fresh machine their debootstraps mostly wait on the mirror.
images() {
  local start=$SECONDS rc=0
  make --no-print-directory test-images >"$logs/images.log" 2>&1 || rc=$?
  echo $((SECONDS - start)) >"$logs/images.seconds"
  return "$rc"
}
images &
images_pid=$!
for name in lint sanity unit build generated; do
  stage "$name" make --no-print-directory "$name"
done
images_rc=0
wait "$images_pid" || images_rc=$?
cat "$logs/images.log"
if [ "$images_rc" -eq 0 ]; then
  record "images (beside the checks)" "$(cat "$logs/images.seconds")" passed
else
  record "images (beside the checks)" "$(cat "$logs/images.seconds")" FAILED
  finish 1 "make test-images"
fi

# Longest first (as measured), so the last lane to finish does not start late.
order=(default hostile upgrade watchdog multihost small_fleet oversight preflight)
scenarios=()
for name in "${order[@]}"; do
  if [ -f "molecule/$name/molecule.yml" ]; then scenarios+=("$name"); fi
done
for file in molecule/*/molecule.yml; do
  name="$(basename "$(dirname "$file")")"
  [[ " ${scenarios[*]} " == *" $name "* ]] || scenarios+=("$name")
done

declare -A pid_of=() started=()
failed="" passed=0
reap() {
  local name pid rc
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
      failed="${failed:+$failed, }$name"
    fi
  done
}

say "molecule: ${#scenarios[@]} scenarios, $jobs at a time: ${scenarios[*]}"
for name in "${scenarios[@]}"; do
  while [ "${#pid_of[@]}" -ge "$jobs" ]; do
    sleep 2
    reap
  done
  [ -z "$failed" ] || break
  started[$name]=$SECONDS
  molecule test -s "$name" >"$logs/$name.log" 2>&1 &
  pid_of[$name]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do
  sleep 2
  reap
done
[ -z "$failed" ] || finish 1 "molecule $failed"
# Only a run in which every scenario reported success passes.
[ "$passed" -eq "${#scenarios[@]}" ] || finish 1 "molecule ($passed of ${#scenarios[@]} scenarios passed)"
finish 0 ""
