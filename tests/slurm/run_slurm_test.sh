#!/usr/bin/env bash
# The SLURM test: a real single-node SLURM cluster on this machine runs the quick profile through
# Snakemake's SLURM executor (profiles/slurm); every job must go through sbatch and complete, and
# the results must equal a local run's.
#
#   tests/slurm/run_slurm_test.sh [REFERENCE_WORKDIR]
#
# REFERENCE_WORKDIR holds a finished local run of the quick profile (default: the repository,
# after `make quick`). Needs root and Debian's packages (tests/slurm/cluster.sh). Writes its
# working directory, the Snakemake log and the daemons' logs under $CIESS_SLURM_TEST_DIR
# (default: a new folder in /tmp), and stops the cluster on exit, whatever happened.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
reference=$(cd "${1:-$repo}" && pwd)
root=${CIESS_SLURM_TEST_DIR:-$(mktemp -d /tmp/ciess-slurm-test.XXXXXX)}
mkdir -p "$root"
root=$(cd "$root" && pwd)
state="$root/cluster" work="$root/run" log="$root/snakemake.log"
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=$(command -v python3)
# Rules call tools (papermill, jupyter) by name, as under an activated environment; sbatch
# passes this PATH on to the jobs.
export PATH="$(dirname "$python"):$PATH"

cleanup() { "$repo/tests/slurm/cluster.sh" stop "$state" || true; }
trap cleanup EXIT

[ -f "$reference/results/tables/results.csv" ] || {
  echo "no finished local run in $reference (run 'make quick' first)" >&2; exit 2; }

"$repo/tests/slurm/cluster.sh" start "$state" >/dev/null
rm -rf "$work" && mkdir -p "$work"
ln -s "$repo/config" "$work/config"

echo "SLURM test: quick profile through sbatch in $work (log: $log)"
start=$(date +%s)
# --slurm-status-command squeue: this cluster has no accounting database (sacct needs slurmdbd);
# its MinJobAge keeps finished jobs visible to squeue. --slurm-no-account: no accounts here.
"$python" -m snakemake all -s "$repo/Snakefile" --directory "$work" \
  --profile "$repo/profiles/slurm" --jobs 8 \
  --slurm-no-account --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 2 --slurm-keep-successful-logs \
  >"$log" 2>&1 || { tail -n 60 "$log"; echo "the SLURM run failed (log: $log)" >&2; exit 1; }
echo "SLURM run finished in $(( $(date +%s) - start )) s"

grep -m 5 "has been submitted with SLURM jobid" "$log"
echo "..."
"$python" "$repo/tests/check_slurm_log.py" "$log" "$work"
"$python" "$repo/tests/run_comparison.py" "$reference" "$work"
echo "SLURM test passed"
