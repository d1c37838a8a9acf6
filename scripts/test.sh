#!/usr/bin/env bash
# test.sh - installs the dependencies, builds, and runs the whole test suite:
# the optimised build, the same under valgrind memcheck, a short fuzzing run,
# then the suite again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_FATAL_WARNINGS=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure
bash scripts/valgrind.sh build
bash scripts/fuzz.sh --seconds 20 --jobs 2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVAE_SANITIZE=ON -DVAE_FATAL_WARNINGS=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ctest --test-dir build-asan --output-on-failure
