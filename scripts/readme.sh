#!/usr/bin/env bash
# readme.sh - keeps the README's commands true: CI runs them as written.
#
# usage: bash scripts/readme.sh show NAME     print the command block NAME
#        bash scripts/readme.sh run NAME      run it with bash -e in the repository root
#        bash scripts/readme.sh check-example the README's library excerpt is
#                                             examples/encode_decode.c's, line for line
# A block NAME is the ```sh fence right after the line <!-- ci:NAME --> in README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
README=$ROOT/README.md

block() { # the first fenced block after <!-- ci:$1 -->
    awk -v tag="<!-- ci:$1 -->" '
        $0 == tag { armed = 1; next }
        armed && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$README"
}

case ${1:-} in
show | run)
    [ $# -eq 2 ] || { echo "readme.sh: $1 needs a block name" >&2; exit 2; }
    cmds=$(block "$2")
    [ -n "$cmds" ] || { echo "readme.sh: README.md has no block <!-- ci:$2 -->" >&2; exit 1; }
    if [ "$1" = show ]; then printf '%s\n' "$cmds"; exit 0; fi
    cd "$ROOT"
    echo "readme.sh: running the README's '$2' commands:"
    printf '  %s\n' "$cmds"
    bash -euo pipefail -c "$cmds"
    ;;
check-example)
    # the excerpt, and the example's lines between its markers, each without
    # the indent of its first line
    want=$(sed -n '/\/\* example:begin \*\//,/\/\* example:end \*\//p' "$ROOT/examples/encode_decode.c" |
        sed '1d;$d' | sed 's/^    //')
    got=$(awk '/<!-- example:begin -->/ { on = 1; next } /<!-- example:end -->/ { on = 0 }
               on && !/^```/' "$README")
    if [ "$want" != "$got" ]; then
        echo "readme.sh: README.md's library example is not examples/encode_decode.c's (between its"
        echo "example:begin/end markers); copy it over. The difference (README first):"
        diff <(printf '%s\n' "$got") <(printf '%s\n' "$want") || true
        exit 1
    fi
    echo "README.md's library example matches examples/encode_decode.c"
    ;;
*)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    [ "${1:-}" = -h ] || [ "${1:-}" = --help ]
    ;;
esac
