#!/usr/bin/env bash
# test_symbols.sh - what libvae.so shows the world: a versioned soname, the
# vae_ names alone among its exported symbols, and every function vae.h
# declares with VAE_API among them. Prints the exported list.
set -u
LIB=$1     # build/libvae.so
INC=$2     # include/: vae.h and its parts
MAJOR=$3   # the soname's version
NAME=test-symbols
. "$(dirname "$0")/lib.sh"

soname=$(readelf -d "$LIB" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libvae.so.$MAJOR" ] && ok || bad "soname '$soname', not libvae.so.$MAJOR"

nm -D --defined-only "$LIB" | awk '{print $NF}' | sort >"$T/exported"
echo "exported ($(wc -l <"$T/exported")): $(tr '\n' ' ' <"$T/exported")"
others=$(grep -v '^vae_' "$T/exported")
[ -z "$others" ] && ok || bad "exported without the vae_ prefix: $others"
internal=$(grep '^vae__' "$T/exported")
[ -z "$internal" ] && ok || bad "internal vae__ names exported: $internal"

sed -n 's/^VAE_API [^(]*[ *]\(vae_[a-z0-9_]*\)(.*/\1/p' "$INC"/vae.h "$INC"/vae/*.h | sort >"$T/declared"
[ "$(wc -l <"$T/declared")" -gt 50 ] && ok || bad "found only $(wc -l <"$T/declared") VAE_API functions in $INC"
missing=$(comm -23 "$T/declared" "$T/exported")
[ -z "$missing" ] && ok || bad "declared in the headers but not exported: $missing"
report
