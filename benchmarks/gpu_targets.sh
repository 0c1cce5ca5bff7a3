#!/usr/bin/env bash
# Runs a list of Snakemake targets on a GPU machine within a deadline and brings back their
# results (never weights): the way a short GPU lease turns into reference results.
#
#   benchmarks/gpu_targets.sh OUT_DIR DEADLINE_S TARGETS_FILE PRIORITY_FILE CONFIGFILE...
#
#   TARGETS_FILE   one Snakemake target per line (metrics JSONs), '#' comments allowed
#   PRIORITY_FILE  the targets to schedule first (Snakemake --prioritize), same format; may be empty
#   CONFIGFILE...  the profile and its overlays, e.g. config/reference.yaml gpu.yaml, where the
#                  overlay says `device: cuda` and, for jobs sharing one GPU, `gpu: 0` per job
#
# What it can find in .gpu/ (ignored by git; built on the developer's machine):
#   site.tgz     Snakemake with its dependencies, and RecBole with colorlog and texttable (the
#                models import RecBole), for the machine's own Python when it has none:
#                `pip install --target site --no-deps --python-version 3.12 --only-binary=:all:
#                --platform manylinux2014_x86_64 ...` of the pins in requirements/ (a package
#                published only as a source archive, e.g. connection_pool, copied from .venv),
#                then `tar czf .gpu/site.tgz site`
#   results.tgz  results to start from (the split, finished searches with the Full run they
#                read), packed with `tar czf` so that modification times survive the copy
# The data preparation, the diagnostics and the reports may not run (--allowed-rules): a job that
# would redo the carried split fails instead of spending the lease. TIMINGS=0 skips the unit
# costs; SNAKEMAKE_ARGS adds arguments (e.g. "--resources gpu=3" to cap the training jobs that
# share the GPU with the searches when the overlay gives training jobs gpu: 1 and searches 0).
# Steps: LightGCN's unit costs alone on the machine (benchmarks/device_timings.py), the CUDA
# tests (in the background), the targets
# (Snakemake, --keep-going, stopped with SIGINT at the deadline so that no half-written output
# is left), then OUT_DIR/results.tgz with every metrics JSON, mask, search log and job log, and
# OUT_DIR/logs.tgz with this script's own logs (tests, unit costs, Snakemake). DEVICE=cpu (and
# PYTHON, CORES) make the same run on a CPU, as the test suite does on MovieLens-100K.
set -uo pipefail
exec < /dev/null  # no step may wait on a terminal (timeout runs each in a background group)
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:?usage: gpu_targets.sh OUT_DIR DEADLINE_S TARGETS_FILE PRIORITY_FILE CONFIGFILE...}"
DEADLINE="${2:?deadline in seconds}"
TARGETS="${3:?targets file}"
PRIORITY="${4:?priority file (may be empty)}"
shift 4
CONFIGS=("$@")
[ "${#CONFIGS[@]}" -gt 0 ] || { echo "gpu_targets.sh: name at least one config file" >&2; exit 2; }
PY="${PYTHON:-python3}"
CORES="${CORES:-12}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT/logs" && OUT="$(cd "$OUT" && pwd)"
LOGS="$OUT/logs"   # packed into logs.tgz at the end: a lease brings back at most 8 files
START=$(date +%s)
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/steps.log"; }
targets_of() { grep -v '^\s*#' "$1" | grep -v '^\s*$' || true; }
cd "$REPO"

if ! "$PY" -c "import snakemake" 2>/dev/null; then
  [ -f .gpu/site.tgz ] || { log "no Snakemake for $PY and no .gpu/site.tgz"; exit 3; }
  mkdir -p /tmp/gpu-site && tar xzf .gpu/site.tgz -C /tmp/gpu-site
  export PYTHONPATH="/tmp/gpu-site/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if [ -f .gpu/results.tgz ]; then tar xzf .gpu/results.tgz; log "unpacked .gpu/results.tgz"; fi
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, snakemake; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'snakemake', snakemake.__version__)" 2>&1 | tee "$LOGS/versions.txt"

# Fail fast: a workflow that cannot even plan (a missing package, a bad config) must not hold
# a GPU lease while a caller waits for it (2026-12-04: a missing RecBole, hidden here, cost a
# lease 8 minutes of a fixed wait).
if ! "$PY" -m snakemake -n $(targets_of "$TARGETS") --configfile "${CONFIGS[@]}" --cores "$CORES" \
     --rerun-triggers mtime ${SNAKEMAKE_ARGS:-} > "$LOGS/dry-run.log" 2>&1; then
  log "the dry run failed; nothing was trained. Its end:"
  tail -n 15 "$LOGS/dry-run.log" | tee -a "$OUT/steps.log"
  cp "$OUT/steps.log" "$LOGS/" && tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -r "$LOGS"
  exit 4
fi
log "dry run: $(grep -E '^total ' "$LOGS/dry-run.log" | tr -s ' ') jobs planned"
if [ "${TIMINGS:-1}" = 1 ]; then
  MANIFEST=$(targets_of "$TARGETS" | head -1 | sed -E 's#results/runs/([^/]+)/.*#results/data/\1/split/manifest.json#')
  log "unit costs of LightGCN on $DEVICE, alone on the machine (at most 90 s)"
  timeout -k 15 90 "$PY" benchmarks/device_timings.py --manifest "$MANIFEST" --device "$DEVICE" \
    --out "$LOGS/timings-lightgcn.json" > "$LOGS/timings-lightgcn.log" 2>&1
  log "    exit $?: $(tr -d '\n ' < "$LOGS/timings-lightgcn.json" 2>/dev/null | cut -c1-200)"
fi
log "background: the CUDA tests"
(timeout -k 15 240 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_devices.py \
   tests/test_propagation.py > "$LOGS/cuda-tests.log" 2>&1; echo "exit $?" >> "$LOGS/cuda-tests.log") &
TESTS=$!

N=$(targets_of "$TARGETS" | wc -l)
log "targets: $N, deadline ${DEADLINE}s, $CORES jobs at a time"
PRIO=$(targets_of "$PRIORITY")
ALLOWED=$("$PY" -m snakemake --list-rules --configfile "${CONFIGS[@]}" 2>"$LOGS/list-rules.log" \
  | grep -v -E '^(all|fetch_dataset|preprocess_dataset|split_dataset|size_response|aggregate_results|render_.*)$')
timeout -s INT -k 30 "$DEADLINE" "$PY" -m snakemake $(targets_of "$TARGETS") \
  --configfile "${CONFIGS[@]}" --cores "$CORES" --keep-going --rerun-triggers mtime \
  --scheduler greedy --allowed-rules $ALLOWED ${PRIO:+--prioritize $PRIO} ${SNAKEMAKE_ARGS:-} \
  > "$LOGS/snakemake.log" 2>&1
log "snakemake exit $? (124/130 = stopped at the deadline)"
wait "$TESTS"
DONE=$(for t in $(targets_of "$TARGETS"); do [ -f "$t" ] && echo "$t"; done | wc -l)
log "finished targets: $DONE of $N"
tar czf "$OUT/results.tgz" --exclude='*.pt' --exclude='results/data' \
  $(ls -d results/runs results/masks results/search results/logs 2>/dev/null)
log "results: $(du -h "$OUT/results.tgz" | cut -f1) in results.tgz; done in $(( $(date +%s) - START )) s"
cp "$OUT/steps.log" "$LOGS/" && tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -r "$LOGS"
