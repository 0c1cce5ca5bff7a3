"""ciess.per_user: per-user test values beside a run, and the paired bootstrap against ES."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ciess.per_user import PER_USER_METRICS, read_per_user, write_per_user
from ciess.report.paired import interval_report, paired_bootstrap, paired_vs, unpaired


def test_paired_bootstrap_on_hand_values():
    ref = np.array([0.2, 0.4, np.nan, 0.4])
    ours = np.array([0.1, 0.2, 0.5, 0.2])  # half of ref on every user both score
    out = paired_bootstrap(ours, ref, n_boot=200)
    assert out["users"] == 3 and out["delta_pct"] == pytest.approx(-50.0)
    assert out["low"] == pytest.approx(-50.0) and out["high"] == pytest.approx(-50.0)
    ours = 0.5 + np.tile([0.1, -0.1], 250)  # the same mean as ref, user by user different
    noisy = paired_bootstrap(ours, np.full(500, 0.5))
    assert noisy["delta_pct"] == pytest.approx(0.0, abs=1e-9)
    assert noisy["low"] < 0 < noisy["high"] and noisy["high"] - noisy["low"] < 5
    with pytest.raises(ValueError, match="at least two users"):
        paired_bootstrap(np.array([1.0]), np.array([1.0]))


def _run(tmp_path, method, seed, scale):
    path = tmp_path / method / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    base = np.linspace(0.1, 0.5, 50)
    write_per_user(path.with_name("per_user_test.npz"), {m: base * scale for m in PER_USER_METRICS})
    return {"dataset": "toy", "model": "lightgcn", "budget": "c90", "method_label": method,
            "seed": seed, "path": path}


def test_paired_vs_pairs_seeds_and_skips_runs_without_files(tmp_path):
    runs = pd.DataFrame([_run(tmp_path, "ES", 0, 1.0), _run(tmp_path, "ES", 1, 1.0),
                         _run(tmp_path, "MR", 0, 0.9), _run(tmp_path, "MR", 1, 0.9),
                         _run(tmp_path, "MDE", 0, 1.1)])
    (tmp_path / "old" / "seed0").mkdir(parents=True)  # a run written before per-user files
    runs.loc[len(runs)] = {"dataset": "toy", "model": "lightgcn", "budget": "c90",
                           "method_label": "PEP", "seed": 0,
                           "path": tmp_path / "old/seed0/metrics.json"}
    out = paired_vs(runs).set_index(["method", "metric"])
    assert set(out.index.get_level_values("method")) == {"MR", "MDE"}
    assert out.loc[("MR", "recall@20"), "delta_pct"] == pytest.approx(-10.0, abs=1e-4)
    assert out.loc[("MR", "recall@20"), "seeds"] == 2
    assert out.loc[("MDE", "ndcg@20"), "delta_pct"] == pytest.approx(10.0, abs=1e-4)
    assert read_per_user(tmp_path / "old/seed0/metrics.json") is None
    runs.loc[len(runs)] = {**_run(tmp_path, "Sides", 2, 1.0)}  # no ES run at seed 2
    native = {**_run(tmp_path, "ESAPN", 0, 1.0), "budget": "native"}  # ES has no native budget
    missing = unpaired(pd.concat([runs, pd.DataFrame([native])], ignore_index=True))
    assert missing.set_index("method")["reason"].to_dict() == {
        "PEP": "no per-user test values (a record from before 2026-12-04)",
        "Sides": "no ES run at the same seed",
        "ESAPN": "ES not run at this budget: no difference to show"}
    table, lines = interval_report(runs)  # what Table 1 and the fidelity page show
    mr = table.reset_index().set_index("method").loc["MR"]
    assert mr["seeds"] == 2 and mr["recall@20"].startswith("-10.0 (")
    assert lines == ["- toy lightgcn PEP at c90: no per-user test values (a record from before "
                     "2026-12-04)", "- toy lightgcn Sides at c90: no ES run at the same seed"]
