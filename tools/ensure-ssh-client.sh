#!/usr/bin/env bash
# molecule/multihost reaches one host over SSH, as an operator reaches a VPS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
ensure_debs openssh-client
