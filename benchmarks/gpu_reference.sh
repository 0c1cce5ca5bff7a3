#!/usr/bin/env bash
# One-shot GPU reference: everything a GPU machine can tell us in <= 8 minutes, in one folder.
#
#   benchmarks/gpu_reference.sh OUT_DIR          # the GPU run: CUDA, MovieLens-1M
#   benchmarks/gpu_reference.sh OUT_DIR smoke    # the same steps on the CPU, MovieLens-100K,
#                                                # quick-sized (what the test suite runs)
#
# Needs the repository, its .venv (`make setup`) and, for MovieLens-1M, the data mirror
# ($CIESS_DATA_MIRROR; without it the data rule downloads). Steps, each with its own time
# limit so that a slow step cannot starve the rest:
#   1. nvidia-smi and the CUDA tests (tests/test_devices.py, tests/test_propagation.py)
#   2. unit costs on the device (benchmarks/device_timings.py): a LightGCN epoch, a full-ranking
#      evaluation, one CIESS iteration at the paper's 5 epochs
#   3. the reference profile on the device: Full and ES first, then MR, PEP and a short CIESS
#      search (LightGCN, G + random walk) until the time runs out
#   4. a reference snapshot of whatever finished (python -m ciess.report.snapshot), in OUT_DIR/snapshot
# Everything (logs, timings, metrics, the profile used) is written under OUT_DIR.
set -uo pipefail
exec < /dev/null  # no step may wait on a terminal (timeout runs each in a background group)
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:?usage: gpu_reference.sh OUT_DIR [smoke]}"
MODE="${2:-gpu}"
PY="$REPO/.venv/bin/python"
export PATH="$REPO/.venv/bin:$PATH"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
START=$(date +%s)
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/steps.log"; }
# A step past its limit gets SIGTERM, its whole process group (Snakemake's jobs too) SIGKILL 15 s
# later: a job that does not end on SIGTERM cannot hold the script past its limits.
bounded() { local limit="$1"; shift; timeout --kill-after=15 "$limit" "$@"; }

case "$MODE" in
  gpu)   DEVICE=cuda; DATASET=ml-1m  # worst case 90+60+90+120+90+30 s = 8 min (+15 s a killed step)
         T_TESTS=90; T_DATA=60; T_TIMINGS=90; T_FIRST=120; T_REST=90; T_SNAP=30
         SEARCH_EPOCHS=5
         MODE_KEYS="ciess: {episodes: 3, iterations: 5, budget: {unit: epochs, value: 5}}";;
  smoke) DEVICE=cpu; DATASET=ml-100k    # T_REST short: the step only has to run and be cut
         # ~60 s in all on 2 idle cores (8+6+6+12+30+1 s); the limits allow a loaded machine
         # 10-20x that, and sum to 14 min with the kills, under the test's 20 min
         T_TESTS=180; T_DATA=120; T_TIMINGS=120; T_FIRST=240; T_REST=30; T_SNAP=60
         SEARCH_EPOCHS=0.5
         MODE_KEYS="train: {eval_every: 10, patience: 2, max_batches: 30}
ciess: {episodes: 1, iterations: 2, budget: {unit: batches, value: 2}}
methods:
  pep: {params: {threshold_init: -6.0, s_lr: 0.05, max_steps: 1000, batch_size: 2048,
                 model_lr: 1.0e-3}}";;
  *)     echo "mode must be gpu or smoke, got '$MODE'" >&2; exit 2;;
esac

log "mode $MODE: device $DEVICE, dataset $DATASET, output $OUT"
if command -v nvidia-smi >/dev/null; then nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
else echo "nvidia-smi: not present on this machine" > "$OUT/nvidia-smi.txt"; fi
"$PY" - > "$OUT/torch.txt" 2>&1 <<'EOF'
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device 0:", torch.cuda.get_device_name(0))
EOF

log "1/4 device tests"
(cd "$REPO" && bounded "$T_TESTS" "$PY" -m pytest -q -rs -p no:cacheprovider \
   tests/test_devices.py tests/test_propagation.py) > "$OUT/tests.log" 2>&1
log "    tests exit $? ($(tail -1 "$OUT/tests.log"))"

RUN="$OUT/run"
mkdir -p "$RUN" && ln -sfn "$REPO/config" "$RUN/config"
# over config/reference.yaml: the device and dataset, and a short CIESS search, the paper's (two files, since
# each YAML file can hold one `ciess:` block)
printf '%s\n' "# gpu_reference.sh $MODE" "datasets: [$DATASET]" "device: $DEVICE" "threads: 2" \
  "$MODE_KEYS" > "$OUT/profile.yaml"
printf '%s\n' "ciess:" \
  "  studies: {main_models: [lightgcn], ablation_models: [], lambda_models: [], interval_models: []," \
  "            recipe_models: []}" \
  "  main_recipe: null" \
  "  selection: {l: 2}" > "$OUT/search.yaml"
SMK=("$PY" -m snakemake -s "$REPO/Snakefile" --directory "$RUN" --cores 2 --keep-going)
CONF=(--configfile "$REPO/config/reference.yaml" "$OUT/profile.yaml" "$OUT/search.yaml")
MANIFEST="results/data/$DATASET/split/manifest.json"

log "2/4 unit costs on $DEVICE"
bounded "$T_DATA" "${SMK[@]}" "$MANIFEST" "${CONF[@]}" > "$OUT/snakemake-data.log" 2>&1
bounded "$T_TIMINGS" "$PY" "$REPO/benchmarks/device_timings.py" --manifest "$RUN/$MANIFEST" \
  --device "$DEVICE" --search-epochs "$SEARCH_EPOCHS" --out "$OUT/timings.json" \
  > "$OUT/timings.log" 2>&1
log "    timings exit $?: $(tr -d '\n ' < "$OUT/timings.json" 2>/dev/null | cut -c1-300)"

log "3/4 reference profile on $DEVICE: Full and ES first"
FIRST=("results/runs/$DATASET/lightgcn/full/dense/seed0/metrics.json")
for b in 80 90 95; do FIRST+=("results/runs/$DATASET/lightgcn/es/c$b/seed0/metrics.json"); done
bounded "$T_FIRST" "${SMK[@]}" "${FIRST[@]}" "${CONF[@]}" > "$OUT/snakemake-first.log" 2>&1
log "    Full + ES exit $?"
log "    then MR, PEP and the CIESS search, as far as $T_REST s allow"
bounded "$T_REST" "${SMK[@]}" all --omit-from aggregate_results "${CONF[@]}" \
  > "$OUT/snakemake-rest.log" 2>&1
log "    rest exit $? (124 = stopped by its time limit, 137 = killed 15 s after)"

log "4/4 snapshot of what finished"
(cd "$REPO" && bounded "$T_SNAP" "$PY" -m ciess.report.snapshot "$RUN/results" "$OUT/snapshot" --profile "$OUT/profile.yaml") \
  > "$OUT/snapshot.log" 2>&1
log "    snapshot exit $?: $(tail -1 "$OUT/snapshot.log")"
log "done in $(( $(date +%s) - START )) s"
