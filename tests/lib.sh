# lib.sh - what the shell tests share; source it after setting NAME:
#   . "$(dirname "$0")/lib.sh"   -> $T (a scratch directory removed on exit),
#   ok / bad MESSAGE (count results), expect_fail, report (the last line).
T=$(mktemp -d "/tmp/vae-$NAME-XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAILED: $*" >&2; }

# expect_fail NAME PATTERN CMD...: non-zero exit, no crash (exit < 128), one
# stderr line matching PATTERN
expect_fail() {
    local name=$1 pat=$2
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    local rc=$? lines
    lines=$(wc -l <"$T/err.txt")
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then bad "$name: exit $rc: $(cat "$T/err.txt")"; return; fi
    if [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: $(cat "$T/err.txt")"; return; fi
    if ! grep -qE -- "$pat" "$T/err.txt"; then bad "$name: message '$(cat "$T/err.txt")' lacks /$pat/"; return; fi
    ok
}

# "N passed, N failed"; the exit status of the test
report() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
