"""Where a search's executed masks lie against the budgets, episode by episode.

    python -m ciess.search.trajectory results/search/<ds>/<model>/<search>/seed0/search_log.csv
    python -m ciess.search.trajectory results/logs/ciess_search/<ds>/<model>/<search>/seed0.log

(the second: a search still running or stopped, read from its job log's per-iteration lines)
prints, per episode, the executed sparsity (mean, min, max), the mean sizes, the mean
validation AVG and how many iterations met each budget; with ``policy_sparsity`` in the log
(searches from 2026-12 on) also the noise-free policy's sparsity, which says whether the agents
themselves reach a budget or only their exploration does.
"""
from __future__ import annotations

import argparse
import re
import sys

import pandas as pd

BUDGETS = (80, 90, 95)


ITERATION_LINE = re.compile(
    r"episode (?P<episode>\d+)(?:/\d+)? iteration (?P<iteration>\d+)(?:/\d+)?(?: \(\d+/\d+\))?: "
    r"mean size user (?P<mean_action_user>"
    r"[\d.]+) item (?P<mean_action_item>[\d.]+), sparsity (?P<sparsity>[\d.]+), val AVG "
    r"(?P<val_avg_user>[\d.]+)")


def read_job_log(path) -> pd.DataFrame:
    """The per-iteration lines a search writes to its job log (ciess.search.search), as the
    search log's columns: what exists of a search that has not finished."""
    rows = [{k: float(v) for k, v in m.groupdict().items()}
            for m in map(ITERATION_LINE.search, open(path, errors="replace")) if m]
    if not rows:
        raise ValueError(f"{path}: no search iteration lines")
    out = pd.DataFrame(rows)
    out[["episode", "iteration"]] = out[["episode", "iteration"]].astype(int)
    return out


def per_episode(log: pd.DataFrame, budgets=BUDGETS) -> pd.DataFrame:
    agg = {"iterations": ("iteration", "size"), "sparsity_mean": ("sparsity", "mean"),
           "sparsity_min": ("sparsity", "min"), "sparsity_max": ("sparsity", "max"),
           "size_user": ("mean_action_user", "mean"), "size_item": ("mean_action_item", "mean"),
           "val_avg": ("val_avg_user", "mean"), "val_avg_max": ("val_avg_user", "max")}
    if "policy_sparsity" in log:
        agg["policy_sparsity"] = ("policy_sparsity", "mean")
    out = log.groupby("episode").agg(**agg)
    for c in budgets:
        out[f"met_c{c}"] = (log["sparsity"] >= c / 100).groupby(log["episode"]).sum().astype(int)
    return out


def settled(table: pd.DataFrame, last: int = 10) -> str:
    """One sentence: where the last ``last`` episodes lie and which budgets they still meet."""
    tail = table.tail(last)
    met = [c for c in BUDGETS if tail[f"met_c{c}"].sum() > 0]
    first = {c: table.index[table[f"met_c{c}"] > 0].tolist() for c in BUDGETS}
    spans = ", ".join(f"{c}%: episodes {v[0]}-{v[-1]}" if v else f"{c}%: never"
                      for c, v in first.items())
    return (f"last {len(tail)} episodes: executed sparsity {tail['sparsity_mean'].mean():.3f} "
            f"(min {tail['sparsity_min'].min():.3f}, max {tail['sparsity_max'].max():.3f}); "
            f"budgets met there: {', '.join(f'{c}%' for c in met) or 'none'}; "
            f"iterations meeting each budget came from {spans}")


def verdict(log: pd.DataFrame, budgets=BUDGETS, last: int = 10) -> str:
    """One reader's sentence on a search log: for a budget-held search, how sizes and the search's
    own score moved between the first and the last episode held at each budget; otherwise where
    the budgets were met and where the last ``last`` episodes settle."""
    ep = log.groupby("episode").agg(user=("mean_action_user", "mean"),
                                    item=("mean_action_item", "mean"),
                                    score=("val_avg_user", "mean"),
                                    held=("held_budget", "first") if "held_budget" in log
                                    else ("episode", lambda x: float("nan")))
    if ep["held"].notna().any():
        parts = []
        for b, g in ep[ep["held"].notna()].groupby("held"):
            a, z = g.iloc[0], g.iloc[-1]
            parts.append(f"at {b:.0f}% (episodes {g.index[0]}–{g.index[-1]}) users "
                         f"{a['user']:.1f} → {z['user']:.1f}, items {a['item']:.1f} → "
                         f"{z['item']:.1f}, score {a['score']:.3f} → {z['score']:.3f} (best "
                         f"{g['score'].max():.3f} in episode {g['score'].idxmax()})")
        return ("Every executed mask is held at its episode's budget; mean sizes and the search's "
                "own score (validation AVG after the per-iteration budget) from the first to the "
                "last episode at each budget: " + "; ".join(parts) + ".")
    table = per_episode(log, budgets)
    tail = table.tail(last)
    spans = [f"{c}% in episodes {v[0]}–{v[-1]}" if v else f"{c}% never"
             for c in budgets for v in [table.index[table[f"met_c{c}"] > 0].tolist()]]
    met = [f"{c}%" for c in budgets if tail[f"met_c{c}"].sum() > 0]
    return (f"Executed masks met {', '.join(spans)}; the last {len(tail)} episodes settle at "
            f"{100 * tail['sparsity_mean'].mean():.1f}% sparsity (max "
            f"{100 * tail['sparsity_max'].max():.1f}%) and meet "
            f"{', '.join(met) if met else 'no budget: what is selected comes from earlier episodes'}.")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("search_log")
    p.add_argument("--last", type=int, default=10, help="episodes that count as settled")
    args = p.parse_args(argv)
    log = read_job_log(args.search_log) if args.search_log.endswith(".log") \
        else pd.read_csv(args.search_log)
    table = per_episode(log)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string())
    print(settled(table, args.last))
    return 0


if __name__ == "__main__":
    sys.exit(main())
