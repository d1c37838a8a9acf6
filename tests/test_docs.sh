#!/usr/bin/env bash
# test_docs.sh - --help, the man pages, the bash completion and the README
# agree: every command vae --help lists has its man page, is in vae(1), the
# completion and the README; every option its --help lists is in its man
# page and its completion.
set -u
VAE=$1    # build/vae
SHARE=$2  # build/share (what the build wrote with vae --write-docs)
README=$3
NAME=test-docs
. "$(dirname "$0")/lib.sh"

MAN=$SHARE/man/man1
COMP=$SHARE/bash-completion/completions/vae
has_word() { grep -qE -- "(^|[^a-z-])$1([^a-z-]|\$)"; } # has_word WORD <text
roff() { sed 's/\\-/-/g' "$1"; }                          # roff source, hyphens plain

commands=$("$VAE" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ { on = 0 }')
[ "$(echo "$commands" | wc -w)" -ge 11 ] && ok || bad "vae --help lists only: $commands"
[ -s "$MAN/vae.1" ] && ok || bad "no vae.1"
[ -s "$SHARE/man/man3/libvae.3" ] && ok || bad "no libvae.3"
grep -q "vae_model_train_step," "$SHARE/man/man3/libvae.3" && ok || bad "libvae.3 lacks the functions"
for c in $commands; do
    page=$MAN/vae-$c.1
    [ -s "$page" ] || { bad "no man page vae-$c.1"; continue; }
    roff "$MAN/vae.1" | grep -q "vae-$c" && ok || bad "vae.1 does not list $c"
    grep -qE "\`(vae )?$c[\` ]" "$README" && ok || bad "README.md does not list $c"
    words=$(grep "^        $c) words=" "$COMP")
    [ -n "$words" ] && ok || bad "the completion lacks $c"
    # the flags at the start of --help's lines, and those a heading lists
    flags=$("$VAE" "$c" --help | grep -oE -- '^  --?[a-z][a-z0-9-]*|, --?[a-z][a-z0-9-]*' | sed 's/^[ ,]*//')
    text=$(roff "$page")
    for f in $flags --help; do
        has_word "$f" <<<"$text" && ok || bad "vae-$c.1 lacks $f"
        has_word "$f" <<<"$words" && ok || bad "the completion of $c lacks $f"
    done
done
# the completion completes: commands, then a command's flags
. "$COMP"
COMP_WORDS=(vae tr) && COMP_CWORD=1 && _vae
[ "${COMPREPLY[*]}" = "train traverse" ] && ok || bad "completing 'vae tr': ${COMPREPLY[*]}"
COMP_WORDS=(vae train --epo) && COMP_CWORD=2 && _vae
[ "${COMPREPLY[*]}" = "--epochs" ] && ok || bad "completing 'vae train --epo': ${COMPREPLY[*]}"
report
