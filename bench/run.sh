#!/usr/bin/env bash
# Runs every benchmark against the local target; called by `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
python bench/fleet_rerun.py "$@"
echo
python bench/config_change.py
echo
python bench/audit_scale.py
