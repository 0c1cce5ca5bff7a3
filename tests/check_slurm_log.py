"""Check a Snakemake log of a SLURM run: every job went through sbatch and completed there.

    python tests/check_slurm_log.py SNAKEMAKE_LOG WORKDIR

Checks, each failing with a message that names what is wrong:
- every job Snakemake started (``rule X:`` blocks) has a line
  ``Job N has been submitted with SLURM jobid M``, and there is at least one; jobs on the submit
  host (``localrule X:``) are only ``all`` and the rules the workflow marks ``localrule: True``;
- the run ended with ``k of k steps (100%) done``;
- SLURM itself (``squeue --states=all``) lists every one of those jobs as COMPLETED;
- every metrics JSON under WORKDIR/results/runs names, as its ``slurm_job_id``, a job of this run;
  the one exception is a gap record (``status: not_reached``, written on the submit host by
  ciess_select when a search never reached a budget), which must carry no trained numbers.
Prints the table of Snakemake job -> SLURM job id -> rule.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

RULE_RE = re.compile(r"^(local)?(?:rule|checkpoint) (\S+):$")
JOBID_RE = re.compile(r"^\s+jobid: (\d+)$")
SUBMIT_RE = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
DONE_RE = re.compile(r"^(\d+) of (\d+) steps \(100%\) done$")
REPO = Path(__file__).resolve().parents[1]


def workflow_local_rules(repo: Path = REPO, configfiles: tuple[Path, ...] = ()) -> set[str]:
    """The rules the workflow itself marks ``localrule: True`` (read by loading the Snakefile,
    with ``configfiles`` over its own)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=1),
                                config_settings=ConfigSettings(configfiles=configfiles),
                                snakefile=repo / "Snakefile", workdir=repo)
        return set(workflow._workflow._localrules)  # Snakemake keeps them in this one set


def parse_log(text: str) -> tuple[dict, dict, dict, bool]:
    """-> (remote jobs {jobid: rule}, local jobs {jobid: rule}, {jobid: slurm id}, finished)."""
    remote, local, submitted = {}, {}, {}
    pending = None
    finished = False
    for line in text.splitlines():
        m = RULE_RE.match(line)
        if m:
            pending = (bool(m.group(1)), m.group(2))
            continue
        m = JOBID_RE.match(line)
        if m and pending is not None:
            (local if pending[0] else remote)[int(m.group(1))] = pending[1]
            pending = None
            continue
        m = SUBMIT_RE.search(line)
        if m:
            submitted[int(m.group(1))] = m.group(2)
        m = DONE_RE.match(line.strip())
        if m and m.group(1) == m.group(2):
            finished = True
    return remote, local, submitted, finished


def slurm_states(ids) -> dict[str, str]:
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T"],
                         capture_output=True, text=True, check=True).stdout
    states = dict(line.split("|", 1) for line in out.split() if "|" in line)
    return {i: states.get(i, "not listed by squeue") for i in ids}


def placement_problems(remote: dict, local: dict, submitted: dict,
                       local_rules: set[str]) -> list[str]:
    """Jobs that should have gone through sbatch and did not (from ``parse_log``); only ``all``
    and ``local_rules`` may run on the submit host."""
    allowed = {"all", *local_rules}
    problems = []
    if not remote:
        problems.append("no job was started through the SLURM executor")
    for jobid, rule in sorted(remote.items()):
        if jobid not in submitted:
            problems.append(f"job {jobid} ({rule}) ran without an sbatch submission")
    for jobid, rule in sorted(local.items()):
        if rule not in allowed:
            problems.append(f"job {jobid} ({rule}) ran on the submit host, not through SLURM")
    return problems


def record_problems(records: dict[str, dict], job_ids: set[str]) -> list[str]:
    """Metrics records ({path: record}) that no SLURM job of this run wrote. A gap record
    (status not_reached) is written on the submit host and must hold no trained numbers."""
    problems = []
    for path, record in records.items():
        if record.get("status") == "not_reached":
            trained = sorted({"valid", "test", "train"} & record.keys())
            if trained:
                problems.append(f"{path}: a not_reached record carries trained numbers {trained}")
            continue
        job = record.get("slurm_job_id")
        if job not in job_ids:
            problems.append(f"{path}: slurm_job_id {job!r} is not a job of this run")
    return problems


def check(log_path: Path, workdir: Path) -> list[str]:
    remote, local, submitted, finished = parse_log(log_path.read_text())
    problems = placement_problems(remote, local, submitted, workflow_local_rules())
    if not finished:
        problems.append("the log does not end with 'k of k steps (100%) done'")
    for slurm_id, state in slurm_states(submitted.values()).items():
        if state != "COMPLETED":
            problems.append(f"SLURM job {slurm_id}: state {state}")
    runs = sorted((workdir / "results/runs").glob("**/metrics.json"))
    if not runs:
        problems.append(f"no metrics JSON under {workdir}/results/runs")
    records = {str(p.relative_to(workdir)): json.loads(p.read_text()) for p in runs}
    problems += record_problems(records, set(submitted.values()))
    gaps = sum(r.get("status") == "not_reached" for r in records.values())
    print(f"{'snakemake job':>14}  {'SLURM job':>9}  rule")
    for jobid, rule in sorted(remote.items(), key=lambda kv: int(submitted.get(kv[0], 0))):
        print(f"{jobid:>14}  {submitted.get(jobid, '-'):>9}  {rule}")
    print(f"{len(remote)} jobs started, {len(submitted)} submitted with sbatch, "
          f"{len(local)} on the submit host ({', '.join(sorted(set(local.values())))}), "
          f"{len(runs) - gaps} metrics files carry a SLURM job id of this run, {gaps} are gap "
          "records (budget not reached)")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(Path(argv[0]), Path(argv[1]))
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
