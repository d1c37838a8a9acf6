#!/usr/bin/env bash
# install-deps.sh - Debian 12 packages vae builds, tests and trains with.
# Run as root or with sudo available. Nothing else is fetched, ever.
set -euo pipefail
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
