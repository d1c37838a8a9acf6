#!/usr/bin/env bash
# test.sh - installs the dependencies, builds, and runs the whole test suite:
# the optimised build, its C tests and picture and server tests under valgrind
# memcheck (scripts/valgrind.sh), a short fuzzing run,
# then the suite again under AddressSanitizer + UBSan (about 35 minutes on 2
# cores). With --quick: builds and runs the C unit tests and the example only
# (ctest label 'quick', about a minute), without installing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
case ${1:-} in
--quick)
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_FATAL_WARNINGS=ON >/dev/null
    cmake --build build -j"$JOBS"
    exec ctest --test-dir build -L quick -j"$JOBS" --output-on-failure ;;
'') ;;
*) echo "test.sh: unknown argument '$1' (use --quick, or nothing for the full suite)" >&2; exit 2 ;;
esac
step() { echo "==== $1 ($(date +%T), $SECONDS s in)"; }
step "dependencies"
bash scripts/install-deps.sh --test
export VAE_REQUIRE_BROWSER=1 # the browser test runs (tests/serve_browser.sh), never skips
step "optimised build and ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_FATAL_WARNINGS=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure
step "valgrind memcheck"
bash scripts/valgrind.sh build
step "fuzzing"
bash scripts/fuzz.sh --seconds 20 --jobs 2
step "AddressSanitizer + UBSan build and ctest"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVAE_SANITIZE=ON -DVAE_FATAL_WARNINGS=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ctest --test-dir build-asan --output-on-failure
