#!/usr/bin/env bash
# test.sh - installs the dependencies, builds, and runs the whole test suite
# twice: the optimised build, then AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_FATAL_WARNINGS=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVAE_SANITIZE=ON -DVAE_FATAL_WARNINGS=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ctest --test-dir build-asan --output-on-failure
