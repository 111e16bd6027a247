#!/usr/bin/env bash
# Issue 19 in one command, on a GPU machine, within a budget (default 540 s, calibration
# included): (a) `dipspec table architectures` at the poster's settings (DIP width 256 for 4000
# steps, Linear-128 and Linear-2048 2000, ReLUNet 20 000; the nine denoising images ×4 smaller;
# 3, 2 or 1 seeds: the most that leave room for the rest), (b) figure 05 (automatic stopping,
# 3 images, 10 000 iterations), (c) figure 04 (σ sweep, 10 000), (d) figure 01 (FBC of plain
# DIP, 5000). Each part is sized from a measured per-step time and skipped, with the reason
# printed, when it does not fit what is left (benchmarks/paper_scale.py).
#
#   OUT=/some/dir bash benchmarks/paper_scale.sh             # the GPU run (OUT: default a temp dir)
#   OUT=/some/dir bash benchmarks/paper_scale.sh --dry-run   # the same steps, tiny, on the CPU
#
# Writes to $OUT: plan.json (calibration, estimates, decisions, exit codes, times),
# summary.txt, paper_scale.log (everything printed) and paper_scale.tar.gz (table/architectures.*
# — or the journal of finished fits if the table was stopped — and figures/<figure>.png, .json,
# _histories.csv). Environment: BUDGET_S (540), MAX_SEEDS (3), PYTHON (python3), and, as for
# gpu_check.sh, DIPSPEC_DATA_MIRROR (else shared/paper-data, .paper-data, ../shared/paper-data)
# and DIPSPEC_COMMIT. The table needs the paper's nine images (the CLI has no stand-ins): without
# them it is skipped and said so; the figures then use embedded stand-ins, recorded as such.
set -u -o pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) args+=(--dry-run) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "paper_scale.sh: unknown argument '$arg' (use --dry-run or --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/paper_scale.XXXXXX")}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
source benchmarks/gpu_env.sh
dipspec_env
[ "${#args[@]}" -gt 0 ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec > >(tee -a "$OUT/paper_scale.log") 2>&1
tee_pid=$!

find_paper_data

echo "paper images: ${DIPSPEC_DATA_MIRROR:-$NO_PAPER_DATA: no table, the figures on embedded stand-ins}"
echo "OUT=$OUT  commit=${DIPSPEC_COMMIT:-unknown}"

budget=${BUDGET_S:-540}
# the planner stops each part itself; this only catches a planner that hangs
timeout -k 20 "$((budget + 60))" "$PY" benchmarks/paper_scale.py --out "$OUT" \
  --budget-s "$budget" --max-seeds "${MAX_SEEDS:-3}" --python "$PY" ${args[@]+"${args[@]}"}
code=$?
exec 1>&- 2>&-
wait "$tee_pid"
exit "$code"
