#!/usr/bin/env bash
# Configure and build linspec into ./build (incremental). Extra args go to cmake, e.g. -DLINSPEC_CUDA=OFF.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${LINSPEC_BUILD_DIR:-$ROOT/build}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >"$BUILD.cmake.log" 2>&1 || {
  cat "$BUILD.cmake.log"; exit 1; }
ninja -C "$BUILD" -j"$(nproc)"
