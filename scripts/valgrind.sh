#!/usr/bin/env bash
# valgrind.sh [BUILD_DIR [TEST...]] - runs the test suite of a normal (non-sanitizer)
# build under valgrind memcheck: every C test, and the shell tests with the
# vae binary wrapped in valgrind. Any memcheck error or leak (definite,
# indirect or possible) fails the test; tests/valgrind.supp holds the few
# reports that are inside libgomp/ld.so and not ours, each with its reason.
# TEST names a subset (test_cli.sh, train, ...). Prints PASS/FAIL per test, then "N passed, N failed"; exits non-zero on a
# failure and keeps the logs of failing runs.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd) || exit 2
DATA=$ROOT/tests/data
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$B/vae" ] || { echo "valgrind.sh: no $B/vae; build first (cmake --build $B)" >&2; exit 2; }

LOGS=$(mktemp -d /tmp/vae-valgrind-XXXXXX)
export OMP_NUM_THREADS=2
# OpenBLAS picks its kernel from CPUID; under valgrind that is Haswell, whose
# FMA sgemm kernel valgrind emulates ~6x slower than the AVX one (test_train:
# 280 s vs 45 s). The kernel is OpenBLAS's; our code runs unchanged.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Sandybridge}
# Likewise oneDNN's JIT: its AVX kernels (test_train 39 s; AVX2 took over 200 s).
export ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX}
VG=(valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99
    --track-origins=yes --num-callers=30 --suppressions="$ROOT/tests/valgrind.supp")

pass=0 fail=0

# bad_logs DIR: the logs in DIR that report errors (a log with no summary is
# a process killed on purpose, e.g. by SIGKILL in test_resume.sh: not an error)
bad_logs() {
    local f
    for f in "$1"/*.log; do
        [ -e "$f" ] || continue
        grep -q "ERROR SUMMARY: [1-9]" "$f" && echo "$f"
    done
}

# report NAME DIR RC: PASS when the test exited 0 and no log has errors
report() {
    local name=$1 dir=$2 rc=$3 bad
    bad=$(bad_logs "$dir")
    if [ "$rc" -eq 0 ] && [ -z "$bad" ]; then
        pass=$((pass + 1))
        echo "PASS $name"
        return
    fi
    fail=$((fail + 1))
    echo "FAIL $name (exit $rc${bad:+; memcheck errors})"
    local f k=0
    for f in $bad; do
        k=$((k + 1))
        [ $k -gt 3 ] && { echo "---- ... and $(($(echo "$bad" | wc -l) - 3)) more logs with errors in $dir"; break; }
        echo "---- $f ($(grep -m1 'Command:' "$f" | sed 's/.*Command: //'))"
        # the error and leak records: what follows the banner
        sed -n '/Parent PID/,$p' "$f" | tail -n +2 | head -60
    done
    [ -s "$dir/test.out" ] && { echo "---- test output (tail)"; tail -20 "$dir/test.out"; }
}

# Valgrind runs a process's threads one at a time, on one core: the tests run
# side by side, JOBS at a time (default: the cores), longest first, and are
# reported in that order once all have ended.
JOBS=${VALGRIND_JOBS:-$(nproc)}
# The shell tests here are the pictures (every picture command, training
# included) and the server (its threads); the others run under ASan + UBSan
# only, to keep CI under 45 minutes: under valgrind test_cli.sh took 1741 s
# and test_cli_eval.sh 523 s (2026-12-06, one core each), bad_inputs.sh is
# 255 runs of error paths. Each can still be run here by name.
# Not here either: test_signals.sh and test_crash.sh (hundreds of runs and SIGKILLs
# timed against a fast vae: under valgrind a start takes seconds, the kills
# land elsewhere and a killed process leaves no memcheck summary to check),
# test_mpi.sh (mpirun's own processes).
# In the order of their time under memcheck (vq about 600 s, grad 375,
# test_pictures.sh 340), so the jobs end together.
TESTS=(vq grad test_pictures.sh test_serve.sh train eval score flow_ref prior_ref hvae_ref vq_ref shard gemm images ref conv lik idx safetensors latent pca)
EXTRA="test_cli.sh test_cli_eval.sh bad_inputs.sh test_resume.sh test_images.sh test_reliability.sh"
if [ $# -gt 1 ]; then
    shift
    for t in "$@"; do
        case " ${TESTS[*]} $EXTRA " in *" $t "*) ;; *) echo "valgrind.sh: no test '$t' (one of: ${TESTS[*]} $EXTRA)" >&2; exit 2 ;; esac
    done
    TESTS=("$@")
fi

# The shell tests: vae is a wrapper that execs valgrind (so signals reach vae
# and the exit status is vae's, or 99 on memcheck errors) and logs to a file
# per process: the tests count stderr lines. An error in an expected failure
# keeps its non-zero exit, so the logs are checked afterwards.
export GEN=$B/gen_images # the shell tests' image generator (not under valgrind: a test tool)
# The shell tests start vae 480 times; under valgrind, oneDNN generating its
# gemm:jit kernels in each process doubled a small training run (13 s vs 6 s).
# They run on OpenBLAS here; the C tests cover the oneDNN path.
run_one() { # NAME: runs it, leaving "rc seconds [vae runs]" in its log directory
    local t=$1 d=$LOGS/${1%.sh} start=$SECONDS rc
    mkdir -p "$d"
    case $t in
    *.sh)
        {
            echo '#!/usr/bin/env bash'
            printf 'exec'
            printf ' %q' "${VG[@]}" "--log-file=$d/%p.log" "$B/vae"
            echo ' "$@"'
        } >"$d/vae"
        chmod +x "$d/vae"
        VAE_GEMM=blas bash "$ROOT/tests/$t" "$d/vae" "$DATA" "$B/png_check" >"$d/test.out" 2>&1 # png_check: test_pictures.sh
        rc=$?
        echo "$rc $((SECONDS - start)) $(ls "$d"/*.log 2>/dev/null | wc -l)" >"$d/result" ;;
    *)
        if [ -x "$B/test_$t" ]; then
            "${VG[@]}" --log-file="$d/%p.log" "$B/test_$t" "$DATA" >"$d/test.out" 2>&1 # test_grad ignores DATA
            rc=$?
        else
            echo "not built: $B/test_$t" >"$d/test.out"
            rc=127
        fi
        echo "$rc $((SECONDS - start))" >"$d/result" ;;
    esac
}
for t in "${TESTS[@]}"; do
    [ "${t%.sh}" != "$t" ] && [ ! -f "$ROOT/tests/$t" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    run_one "$t" &
done
wait
for t in "${TESTS[@]}"; do
    d=$LOGS/${t%.sh}
    [ -f "$d/result" ] || continue
    read -r rc secs runs <"$d/result"
    case $t in
    *.sh) report "$t ($runs vae runs, $secs s)" "$d" "$rc" ;;
    *) report "test_$t ($secs s)" "$d" "$rc" ;;
    esac
done

echo "$pass passed, $fail failed"
if [ "$fail" -eq 0 ]; then
    rm -rf "$LOGS"
else
    echo "logs kept in $LOGS"
fi
[ "$fail" -eq 0 ]
