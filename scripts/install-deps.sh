#!/usr/bin/env bash
# install-deps.sh [--test | --bench] - Debian 12 packages vae builds, tests and trains with.
# Run as root or with sudo available. With --test (scripts/test.sh) also what
# the browser test of `vae serve` needs: Debian's chromium and node, and npm's
# puppeteer-core at the version tests/browser/package-lock.json pins, into
# tests/browser/node_modules. With --bench also what the benchmarks' PyTorch
# twins (bench/*.sh, scripts/*_twin.py) run on: Debian's python3-torch and
# python3-numpy (not for the tests: they skip the twins without them). Nothing
# is fetched at run time.
set -euo pipefail
case ${1:-} in
--test | --bench | '') ;;
*) echo "install-deps.sh: unknown argument '$1' (use --test, --bench, or nothing)" >&2; exit 2 ;;
esac
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake libopenblas-dev libopenblas-openmp-dev libdnnl-dev zlib1g-dev libpng-dev \
    pkg-config libcairo2-dev fonts-dejavu-core \
    dataset-fashion-mnist time clang libclang-rt-14-dev libomp-dev valgrind >/dev/null
# vae serve: libmicrohttpd (the HTTP server), curl (tests/test_serve.sh)
$SUDO apt-get install -y -qq --no-install-recommends libmicrohttpd-dev curl >/dev/null
# the package check (scripts/package-check.sh): cpack's dependency scan
# (dpkg-shlibdeps, file) and man to read the installed pages
$SUDO apt-get install -y -qq --no-install-recommends dpkg-dev file man-db >/dev/null
# MPI for data-parallel training (mpirun -np N vae train; tests/test_mpi.sh)
$SUDO apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev >/dev/null
if [ "${1:-}" = --test ]; then
    $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
    # node and npm: Debian's, unless the machine already has a node with its npm
    command -v npm >/dev/null || $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    npm ci --prefix "$(dirname "$0")/../tests/browser" --no-audit --no-fund --loglevel=error >/dev/null
fi
if [ "${1:-}" = --bench ]; then
    # the twins: Debian's PyTorch (1.13, on OpenBLAS and oneDNN) for /usr/bin/python3
    $SUDO apt-get install -y -qq --no-install-recommends python3-torch python3-numpy >/dev/null
fi
