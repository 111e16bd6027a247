#!/usr/bin/env bash
# Issue 18 in one command, on a GPU machine: (a) the CUDA tests, (b) the GPU benchmark rows,
# (c) the λ experiment of figure 03 at the paper's scale, (e) `--compile` rows only if the total
# budget still has room, then (d) a one-screen summary of it all. Each step runs under `timeout`
# with its own budget; a step that fails or runs out of time does not stop the next.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh            # the GPU run (OUT: default a temp dir)
#   OUT=/some/dir bash benchmarks/gpu_check.sh --dry-run  # the same steps, tiny, on the CPU
#
# Writes to $OUT (at most 8 files, as the device tool brings back): results-cuda.json,
# results-cuda-compile.json (step e), lipschitz_control.png / .json (provenance: settings,
# precision, summary per λ, findings, SPEC §9 read-outs) / _histories.csv, summary.txt and
# gpu_check.log (everything printed).
#
# Budgets in seconds (environment): TESTS_BUDGET_S 60, BENCH_BUDGET_S 180, LAMBDA_BUDGET_S 300
# (its fits stop 45 s before, to write what exists), COMPILE_BUDGET_S 120, TOTAL_BUDGET_S 540
# (step e runs only if that much is still left of it).
# LAMBDA_PRECISION (fp32|bf16) and LAMBDA_TF32 (default|on|off) override the choice made from
# the benchmark's accuracy rows. The paper's images: $DIPSPEC_DATA_MIRROR if set, else the first
# of shared/paper-data, .paper-data, ../shared/paper-data that exists; else embedded stand-ins,
# said so in one line and recorded in the provenance. DIPSPEC_COMMIT=<hash> names the commit
# where the checkout has no .git (the device machine). PYTHON: the interpreter (python3).
# STEPS="lambda" (any of tests benchmark lambda compile) reruns only those steps, e.g. a retry
# with a larger LAMBDA_BUDGET_S; a missing results-cuda.json means float32 for the λ run.
set -u -o pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
dry=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$arg' (use --dry-run or --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_work.XXXXXX")
PY=${PYTHON:-python3}
source benchmarks/gpu_env.sh
dipspec_env
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
tee_pid=$!

find_paper_data

echo "paper images: ${DIPSPEC_DATA_MIRROR:-$NO_PAPER_DATA: embedded stand-ins, recorded as image_fallbacks}"
versions=$("$PY" -c 'import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__,
      "cuda", torch.cuda.is_available())')
echo "OUT=$OUT  commit=${DIPSPEC_COMMIT:-unknown}  $versions"

if [ "$dry" = 1 ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  device=cpu
  tests_budget=${TESTS_BUDGET_S:-60} bench_budget=${BENCH_BUDGET_S:-60}
  lambda_budget=${LAMBDA_BUDGET_S:-60} total_budget=${TOTAL_BUDGET_S:-240}
  bench_args=(--sizes 64 --channels 8 --quick --repeats 1 --warmup 0 --no-memory --no-options
              --batched-sizes 64 --batched-iterations 2 --batched-repeats 1
              --fit-accuracy-sizes --threads 1)
  lambda_args=(--dry-run)
else
  device=cuda
  tests_budget=${TESTS_BUDGET_S:-60} bench_budget=${BENCH_BUDGET_S:-180}
  lambda_budget=${LAMBDA_BUDGET_S:-300} total_budget=${TOTAL_BUDGET_S:-540}
  # no row 9 (whole CPU-oriented fits at 64², 2000 steps each): row 7 checks the GPU options
  bench_args=(--sizes 256 512 --fit-accuracy-sizes)
  lambda_args=()
fi
compile_budget=${COMPILE_BUDGET_S:-120}
started=$SECONDS

# step NAME BUDGET COMMAND...: run under timeout (SIGTERM at BUDGET, SIGKILL 20 s later)
step() {
  local name=$1 budget=$2 t0=$SECONDS code
  shift 2
  echo; echo "=== $name (budget ${budget} s): $*"
  timeout -k 20 "$budget" "$@"
  code=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$code" "$((SECONDS - t0))" "$budget" >>"$WORK/steps.tsv"
  echo "=== $name: exit $code after $((SECONDS - t0)) s"
}
skip() {
  printf '%s\t-\t0\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/steps.tsv"
  echo "=== $1: skipped: $3"
}
wanted=" ${STEPS:-tests benchmark lambda compile} "
want() { [[ "$wanted" == *" $1 "* ]] || { skip "$1" "$2" "not in STEPS=${STEPS:-}"; false; }; }

# (a) the CUDA tests: every test with "cuda" in its name (they skip without CUDA). No
# --doctest-modules / --nbval-lax (pyproject's addopts): the device has no nbval.
mapfile -t test_files < <(grep -l -i cuda tests/test_*.py | grep -v test_gpu_scripts)
want tests "$tests_budget" && step tests "$tests_budget" bash -c "set -o pipefail; $PY -m pytest -q -rs -o addopts='' \
  -p no:nbval -p no:cacheprovider -k cuda ${test_files[*]} 2>&1 | tee '$WORK/cuda_tests.txt'"

# (b) the benchmark: rows 1-8 at 256² and 512², with the GPU options' accuracy rows (row 7)
want benchmark "$bench_budget" && step benchmark "$bench_budget" "$PY" benchmarks/run.py --device "$device" "${bench_args[@]}" \
  --tf32 --bf16 --channels-last --out "$OUT/results-cuda.json"

# (c) figure 03 at the paper's scale: bf16 / TF32 only if (b)'s accuracy rows passed
read -r -a precision < <("$PY" benchmarks/gpu_summary.py options "$OUT/results-cuda.json")
[ "${#precision[@]}" -eq 4 ] || precision=(--precision fp32 --tf32 default)
[ -n "${LAMBDA_PRECISION:-}" ] && precision[1]=$LAMBDA_PRECISION
[ -n "${LAMBDA_TF32:-}" ] && precision[3]=$LAMBDA_TF32
want lambda "$lambda_budget" && step lambda "$lambda_budget" "$PY" benchmarks/paper_figures.py lipschitz_control \
  --out "$OUT" --device "$device" "${precision[@]}" ${lambda_args[@]+"${lambda_args[@]}"} \
  --budget-s "$((lambda_budget - 45 > 10 ? lambda_budget - 45 : 10))"

# (e) torch.compile rows, only if the total budget has room for them
left=$((total_budget - (SECONDS - started)))
if ! want compile "$compile_budget"; then
  :
elif [ "$device" != cuda ]; then
  skip compile "$compile_budget" "--compile is measured on CUDA only"
elif [ "$left" -lt "$compile_budget" ]; then
  skip compile "$compile_budget" "${left} s of the ${total_budget}-s total budget left"
else
  step compile "$compile_budget" "$PY" benchmarks/run.py --device cuda --sizes 512 --compile \
    --no-options --batched-sizes --fit-accuracy-sizes --out "$OUT/results-cuda-compile.json"
fi

# (d) one screen
echo
"$PY" benchmarks/gpu_summary.py summary "$OUT" "$WORK"
code=$?
exec 1>&- 2>&-
wait "$tee_pid"  # the log is complete when the script returns
exit "$code"
