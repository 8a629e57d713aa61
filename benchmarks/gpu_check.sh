#!/usr/bin/env bash
# The one prepared GPU check (issue 17). On a lent CUDA machine, from the repository root:
#
#     bash benchmarks/gpu_check.sh out/               # < 8 minutes on one GPU
#     bash benchmarks/gpu_check.sh out/ --cpu-smoke   # every step, smallest settings, on CPU
#
# Steps, in this order so that a cut-off still leaves the most important results:
#   1 the gpu-marked tests   2 throughput.py   3 loss_cost.py
#   4 a 4-trial fractional-GPU sweep   5 the paper protocol, RKDO vs I-Con
# Each step's output goes to OUTDIR/logs/<step>.log and its JSON to OUTDIR; each runs under
# `timeout`, capped by what is left of the whole budget (GPU_CHECK_BUDGET_S, default 450 s).
# A failed step is recorded with its exit code in OUTDIR/summary.md and the next one runs.
# The exit status is 0 when every step exited 0, else 1.
set -u

usage() {
    echo "usage: bash benchmarks/gpu_check.sh OUTDIR [--cpu-smoke]" >&2
    exit 2
}
[[ $# -ge 1 && $1 != --* ]] || usage
OUT=$1
shift
SMOKE=0
for arg in "$@"; do
    case $arg in
        --cpu-smoke) SMOKE=1 ;;
        *) usage ;;
    esac
done

mkdir -p "$OUT/logs" || exit 2
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs
STEPS=$OUT/steps.tsv
SUMMARY=$OUT/summary.md
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
if [[ -z ${VIRTUAL_ENV:-} && -f .venv/bin/activate ]]; then
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
PY=${PYTHON:-python}
BUDGET_S=${GPU_CHECK_BUDGET_S:-$((SMOKE ? 600 : 450))}
MIN_STEP_S=20 # a step with less than this left is skipped, not started
STARTED=$(date +%s)
DEADLINE=$((STARTED + BUDGET_S))
: >"$STEPS"

# run_step ID NAME CAP_S COMMAND...: run under `timeout min(CAP_S, budget left)`, log, record.
run_step() {
    local id=$1 name=$2 cap=$3
    shift 3
    local log=$LOGS/$id.log left limit start rc seconds
    left=$((DEADLINE - $(date +%s)))
    if ((left < MIN_STEP_S)); then
        echo "skipped: ${left} s of the ${BUDGET_S} s budget left" >"$log"
        printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$name" skipped 0 0 >>"$STEPS"
        echo "[gpu_check] $id $name: skipped (budget spent)"
        return
    fi
    limit=$((cap < left ? cap : left))
    echo "[gpu_check] $id $name (limit ${limit} s)"
    start=$(date +%s.%N)
    {
        echo "\$ $*"
        timeout --kill-after=20 "$limit" "$@"
    } >"$log" 2>&1
    rc=$?
    seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$name" "$rc" "$seconds" "$limit" >>"$STEPS"
    echo "[gpu_check] $id exit $rc after ${seconds} s"
}

# Step 1 converts pytest's JUnit XML to JSON whatever pytest's exit code. It runs as a child
# bash (exported) so that `timeout` can stop it.
gpu_tests() {
    local rc
    "$PY" -m pytest -m gpu -p no:cacheprovider -rA -v --junitxml="$OUT/01_gpu_tests.xml" \
        tests/training/test_cuda.py tests/objectives/test_cuda_loss.py \
        tests/sweep/test_cuda_memory.py
    rc=$?
    "$PY" benchmarks/gpu_check_summary.py junit "$OUT/01_gpu_tests.xml" "$OUT/01_gpu_tests.json"
    return $rc
}
export -f gpu_tests
export PY OUT

# CPUs per sweep trial: four trials and the driver must fit; at most 2 torch threads each.
cpus_per_trial() {
    awk -v n="$(nproc)" 'BEGIN { c = (n - 2) / 4; if (c > 2) c = 2; if (c < 0.5) c = 0.5;
        printf "%g", (c >= 1 ? int(c) : c) }'
}

if ((SMOKE)); then
    export CUDA_VISIBLE_DEVICES="" # CPU even on a GPU machine: the gpu tests skip, Ray sees none
    DEVICE=cpu
    THROUGHPUT=(--configs small_cnn-digits-64 --steps 1 --repeats 1 --warmup 0 --workers 0
        --no-memory --threads 1)
    FAST=() # no torch.compile on the CPU: it takes longer than the whole smoke run
    LOSS=(--batches 8 --dim 4 --iters 1 --rounds 1 --no-context --no-compile --threads 1)
    SWEEP=(--gpus-per-trial 0 --set base.model=small_cnn --set base.epochs=1
        --set base.steps_per_epoch=2 --set base.batch_size=32 --set base.synthetic_samples=200)
    PAPER=(--model small_cnn --epochs 1 --steps-per-epoch 2 --batch-size 32
        --synthetic-samples 200)
else
    DEVICE=cuda
    THROUGHPUT=(--configs resnet18-synthetic32-64 resnet18-synthetic32-512 --workers 0 4
        --repeats 5 --warmup 3 --log-every 10)
    FAST=(--compile)
    LOSS=(--iters 20 --rounds 7)
    SWEEP=(--gpus-per-trial 0.25)
    PAPER=()
fi

run_step 00_environment "environment" 60 \
    "$PY" benchmarks/gpu_check_summary.py environment --json-out "$OUT/00_environment.json"
run_step 01_gpu_tests "gpu tests" 150 bash -c gpu_tests
run_step 02_throughput_fp32 "throughput fp32" 90 \
    "$PY" benchmarks/throughput.py --device "$DEVICE" "${THROUGHPUT[@]}" \
    --json-out "$OUT/02_throughput_fp32.json"
run_step 02_throughput_bf16_compile "throughput bf16+compile" 150 \
    "$PY" benchmarks/throughput.py --device "$DEVICE" "${THROUGHPUT[@]}" --precision bf16 \
    "${FAST[@]}" --no-memory --json-out "$OUT/02_throughput_bf16_compile.json"
run_step 03_loss_cost "loss cost" 120 \
    "$PY" benchmarks/loss_cost.py --device "$DEVICE" "${LOSS[@]}" \
    --json-out "$OUT/03_loss_cost.json"
run_step 04_sweep "fractional-GPU sweep" 120 \
    "$PY" benchmarks/gpu_sweep_check.py --workdir "$OUT/sweep" --trials 4 --max-concurrent 4 \
    --cpus-per-trial "$(cpus_per_trial)" "${SWEEP[@]}" --json-out "$OUT/04_sweep.json"
run_step 05_paper_protocol "paper protocol" 120 \
    "$PY" benchmarks/paper_protocol_timing.py --workdir "$OUT/paper" --device "$DEVICE" \
    "${PAPER[@]}" --json-out "$OUT/05_paper_protocol.json"

{
    echo "# GPU check"
    echo
    echo "- mode: $( ((SMOKE)) && echo "cpu-smoke (smallest settings, no GPU)" || echo gpu)"
    if commit=$(git rev-parse --short HEAD 2>/dev/null); then
        git diff --quiet HEAD 2>/dev/null || commit+=" (with uncommitted changes)"
    fi
    echo "- commit: ${commit:-unknown (no git here)}"
    echo "- host: $(hostname), $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- total: $(($(date +%s) - STARTED)) s of a ${BUDGET_S} s budget"
    echo
    echo "| step | what | exit | seconds | limit s | JSON | log |"
    echo "|---|---|---|---|---|---|---|"
    while IFS=$'\t' read -r id name rc seconds limit; do
        json=$(cd "$OUT" && ls "$id"*.json 2>/dev/null | paste -sd ' ' -)
        echo "| $id | $name | $rc | $seconds | $limit | ${json:--} | logs/$id.log |"
    done <"$STEPS"
} >"$SUMMARY"
"$PY" benchmarks/gpu_check_summary.py results "$OUT" >>"$SUMMARY" 2>"$LOGS/summary.log" ||
    echo "(the results part failed: see logs/summary.log)" >>"$SUMMARY"
echo "[gpu_check] wrote $SUMMARY"

failed=$(awk -F'\t' '$3 != "0"' "$STEPS" | wc -l)
exit $((failed > 0))
