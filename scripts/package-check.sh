#!/usr/bin/env bash
# package-check.sh - the Debian package end to end, as a user gets it: made
# from the build directory the README's quick start left (build/; configured
# and built here if missing) and installed by the README's commands; then,
# from a scratch directory with nothing of the tree on any path: vae
# --version, man vae, a one-epoch vae train, and the library example built
# with pkg-config and with examples/cmake (find_package(vae)). Finally the
# package is removed (--keep leaves it). Run as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
step() { echo "==== package-check: $1 ($SECONDS s in)"; }
T=$(mktemp -d /tmp/vae-package-XXXXXX)
MAN_CFG=/etc/dpkg/dpkg.cfg.d/zz-vae-man
cleanup() {
    rm -rf "$T"
    $SUDO rm -f "$MAN_CFG"
    if [ $KEEP = 0 ] && dpkg -s vae >/dev/null 2>&1; then $SUDO apt-get purge -y -qq vae >/dev/null; fi
}
trap cleanup EXIT

if [ ! -f build/CMakeCache.txt ]; then
    step "configure and build"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_FATAL_WARNINGS=ON >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
fi
# Debian's slim images keep dpkg from installing man pages (path-exclude in
# /etc/dpkg/dpkg.cfg.d); let vae's in, for this install only
if grep -qs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    printf 'path-include=/usr/share/man/man1/vae*\npath-include=/usr/share/man/man3/libvae*\n' |
        $SUDO tee "$MAN_CFG" >/dev/null
fi
# an earlier vae would stay: apt-get does not reinstall the same version
if dpkg -s vae >/dev/null 2>&1; then $SUDO apt-get purge -y -qq vae >/dev/null; fi
step "the package, installed by the README's commands"
$SUDO bash scripts/readme.sh run package
dpkg-deb -f build/vae_*.deb Depends

step "from the installed paths alone (in $T)"
cd "$T"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PKG_CONFIG_PATH CMAKE_PREFIX_PATH LD_LIBRARY_PATH
[ "$(command -v vae)" = /usr/bin/vae ] || { echo "package-check: vae is $(command -v vae)" >&2; exit 1; }
vae --version
MANPAGER=cat MANWIDTH=80 man vae | head -12
man -w vae-train libvae
vae train --epochs 1 --quiet --out run
ls run
mkdir -p example/cmake
cp "$ROOT/examples/encode_decode.c" example/
cp "$ROOT/examples/cmake/CMakeLists.txt" example/cmake/
echo "pkg-config --cflags --libs vae: $(pkg-config --cflags --libs vae)"
cc -O2 example/encode_decode.c $(pkg-config --cflags --libs vae) -o encode_decode
./encode_decode /usr/share/datasets/fashion-mnist pkg-config.png | tail -1
ldd encode_decode | grep libvae
cmake -S example/cmake -B example/build >/dev/null
cmake --build example/build >/dev/null
example/build/encode_decode /usr/share/datasets/fashion-mnist cmake.png | tail -1
example/build/encode_decode_static /usr/share/datasets/fashion-mnist cmake-static.png | tail -1
step "done"
