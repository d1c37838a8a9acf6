#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs each for a while.
#
# usage: bash scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]
#   --seconds N  time per target [30]
#   --jobs J     targets run side by side [1]
#   TARGET       idx safetensors checkpoint roundtrip csv png json [all]
# Each target starts from a scratch copy of tests/fuzz/corpus/TARGET (the
# committed seeds never grow) with its dictionary. Prints executions, final
# coverage and the outcome per target; a crash's input is kept under
# build-fuzz/artifacts/ and the script exits 1. Needs clang, libclang-rt-14-dev, libomp-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=30
JOBS=1
TARGETS=()
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    idx | safetensors | checkpoint | roundtrip | csv | png | json) TARGETS+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(idx safetensors checkpoint roundtrip csv png json)
case $SECONDS_PER$JOBS in *[!0-9]*) echo "fuzz.sh: --seconds and --jobs take whole numbers" >&2; exit 2 ;; esac
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang libclang-rt-14-dev libomp-dev)" >&2; exit 2; }

BUILD=build-fuzz
CC=clang cmake -S . -B "$BUILD" -DVAE_FUZZ=ON -DVAE_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]/#/fuzz_}" >/dev/null
ART=$PWD/$BUILD/artifacts
mkdir -p "$ART"

# Scratch on tmpfs when there is one: every input is written to a file.
BASE=/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then BASE=/dev/shm; fi
WORK=$(mktemp -d "$BASE/vae-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

run_one() { # run_one TARGET: fuzzes, then writes WORK/TARGET.result
    local t=$1 dict=()
    case $t in
    idx) dict=(-dict=tests/fuzz/idx.dict) ;;
    safetensors | checkpoint) dict=(-dict=tests/fuzz/safetensors.dict) ;;
    csv) dict=(-dict=tests/fuzz/csv.dict) ;;
    png) dict=(-dict=tests/fuzz/png.dict) ;;
    json) dict=(-dict=tests/fuzz/json.dict) ;;
    esac
    mkdir -p "$WORK/$t/corpus" "$WORK/$t/tmp"
    cp tests/fuzz/corpus/"$t"/* "$WORK/$t/corpus/"
    local rc=0 pid
    # -timeout: an input taking 20 s is a finding (a DoS), not something to wait out
    TMPDIR=$WORK/$t/tmp OMP_NUM_THREADS=1 "$BUILD/tests/fuzz/fuzz_$t" "${dict[@]}" \
        -max_total_time="$SECONDS_PER" -max_len=65536 -rss_limit_mb=2048 -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$ART/$t-" "$WORK/$t/corpus" >"$WORK/$t.log" 2>&1 &
    pid=$!
    wait "$pid" || rc=$?
    # libomp registers each process in /dev/shm and only a clean exit unregisters it
    rm -f "/dev/shm/__KMP_REGISTERED_LIB_${pid}_0"
    local execs cov crash
    # final stats on a clean exit; after a crash, the last status line's #N
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log" | tail -1) || true
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$WORK/$t.log" | tail -1) || true
    cov=$(grep -o 'cov: [0-9]*' "$WORK/$t.log" | tail -1 | cut -d' ' -f2) || true
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$WORK/$t.log" | tail -1) || true
    printf '%s %s %s %s %s\n' "$t" "${execs:-?}" "${cov:-?}" "$rc" "${crash:--}" >"$WORK/$t.result"
    if [ "$rc" -ne 0 ]; then cp "$WORK/$t.log" "$ART/$t.log"; fi
}

echo "fuzzing ${TARGETS[*]} for ${SECONDS_PER}s each, $JOBS at a time"
running=0
for t in "${TARGETS[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

failed=0
printf '%-12s %12s %7s  %s\n' target executions cov result
for t in "${TARGETS[@]}"; do
    read -r name execs cov rc crash <"$WORK/$t.result"
    if [ "$rc" -eq 0 ]; then
        printf '%-12s %12s %7s  %s\n' "$name" "$execs" "$cov" ok
        continue
    fi
    failed=1
    printf '%-12s %12s %7s  %s\n' "$name" "$execs" "$cov" "CRASH (exit $rc): $crash"
    grep -m1 -E '^==[0-9]+==ERROR|runtime error|^fuzz: |ERROR: libFuzzer' "$ART/$t.log" | sed 's/^/    /' || true
    echo "    log: $ART/$t.log; reproduce: $BUILD/tests/fuzz/fuzz_$t $crash"
done
exit $failed
