#!/usr/bin/env bash
# Creates .venv from the pinned requirements, or reuses it when the
# requirements have not changed since it was built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
. "$here/lib.sh"

venv="$root/.venv"
# The Makefile puts .venv/bin first on PATH; the venv is built from the
# system Python, never from itself (it is deleted below when out of date).
PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$venv/bin" | paste -sd: -)"
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
# uv installs the same pinned requirements as pip in seconds instead of
# half a minute (every fresh clone, so every CI run, pays it before any
# test starts). pip stays the fallback: uv does not read pip's own
# configuration (indexes, find-links), so a network that only works
# through that still gets its venv.
uv_version="0.13.9"
want="$(cat "$root/requirements.txt" "$root/requirements-test.txt" <(echo "uv $uv_version") | sha256sum | cut -c1-16)"

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  say "python venv .venv matches the pinned requirements ($want): reusing it"
  exit 0
fi

command -v "$python" >/dev/null || die "$python not found; install Python 3.11 or newer."
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$python" --version) is too old: ansible-core 2.19 needs Python 3.11 or newer."
# Debian splits venv/ensurepip out of python3.
"$python" -c 'import ensurepip, venv' 2>/dev/null || ensure_debs python3-venv

if [ -d "$venv" ]; then
  say "python venv .venv is out of date with the requirements: rebuilding it"
  rm -rf "$venv"
else
  say "python venv .venv is missing: creating it from the pinned requirements"
fi
"$python" -m venv "$venv"
# pip's output goes to a log: on this network it warns about every
# unreachable extra index, which buries anything that matters.
log="$venv/pip-install.log"
if { "$venv/bin/pip" install "uv==$uv_version" \
     && UV_NATIVE_TLS=1 "$venv/bin/uv" pip install --python "$venv/bin/python" -r "$root/requirements-test.txt"; } >"$log" 2>&1; then
  say "installed with uv $uv_version"
else
  say "uv could not install the requirements (see $log): installing them with pip"
  if ! { "$venv/bin/pip" install --upgrade pip && "$venv/bin/pip" install -r "$root/requirements-test.txt"; } >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip could not install requirements-test.txt into .venv (last lines above, all in $log)."
  fi
fi
echo "$want" > "$stamp"
say "python venv .venv ready"
