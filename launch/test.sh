#!/usr/bin/env bash
# One command: install dependencies, build, run every test, end with the ctest summary.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/launch/setup.sh"
bash "$ROOT/launch/build.sh"
cd "${LINSPEC_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure -j"$(nproc)" --timeout 1200
