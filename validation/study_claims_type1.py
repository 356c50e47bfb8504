"""Type I error of the claim tests on CIPS-scale surveys simulated with no support effect.

Every replication simulates a survey with ``cs.simulate`` at the published scale of the repeated
countries (17 countries surveyed twice, 262 officials and 202 private-sector respondents per country
and iteration on average, common drift 0.05 latent SD, ``support_effect = 0``), estimates the
indicators (200 bootstrap replicates), differences them (:func:`cips_stats.change.cell_changes`) and
audits the claim against the true support table (:func:`cips_stats.claims.audit`, all tests, point
and FDR rules, 2,000 within-country permutations).  Two ways of choosing the supported factors:

* ``selection="random"``: every test should reject at about 5% (4-6% is the target);
* ``selection="baseline"``: each country's lowest factors at iteration 1 are supported, so regression
  to the mean makes them "improve" with no support effect: the unadjusted comparisons over-reject,
  the baseline-adjusted one (ANCOVA) should not.

Reported per selection, group, rule and test: the rejection rate at 5%, its Monte Carlo SE and Wilson
95% interval, and the number of replications (``claims_type1.csv``); and, side by side, the rate with
random and with baseline selection of each test (``claims_type1_wide.csv``, :func:`wide`): the
unadjusted comparisons over-reject under baseline selection, the baseline-adjusted ANCOVA much less.
Runs made separately (other seeds) are pooled by adding their rejections and replications
(:func:`pool`).  The replications run through joblib
(``python -m validation --only claims_type1 --backend dask`` runs them on a Dask cluster).
Full run: 1,000 replications per selection; ``quick``: 20.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cips_stats import power
from cips_stats.power import _wilson

RESULTS = Path(__file__).resolve().parent / "results"
TESTS = ("permutation", "cmh", "fisher", "gee", "mixed", "welch", "did", "ancova")


def run(quick: bool = False, *, n_sim: int | None = None, backend: Any = "loky", n_jobs: int | None = None,
        folder: str | Path = RESULTS, seed: int = 20240201) -> pd.DataFrame:
    """Rejection rates of every claim test under no support effect (random and baseline selection)."""
    n = n_sim if n_sim is not None else (20 if quick else 1000)
    res = power.simulate_claim(n_countries=17, n_officials=262, n_private=202, support_effect=0.0,
                               selection=["random", "baseline"], n_sim=n, n_boot=200, n_perm=2000,
                               rules=("point", "fdr"), tests=TESTS, seed=seed, backend=backend, n_jobs=n_jobs)
    table = res.table.copy()
    table["target"] = "4-6%"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wide(table).to_csv(folder / "claims_type1_wide.csv", index=False)
    return table


KEYS = ["n_countries", "n_officials", "n_private", "support_effect", "selection", "group", "rule", "test"]


def pool(*tables: pd.DataFrame) -> pd.DataFrame:
    """Pool rejection-rate tables of independent runs (other seeds) of the same design.

    Rejections (``rejection_rate * n_sim``) and replications add up; the rate, its Monte Carlo SE, the
    Wilson interval and the mean estimate (weighted by replications) are recomputed.
    """
    t = pd.concat(tables, ignore_index=True)
    t = t.assign(rejections=np.rint(t["rejection_rate"] * t["n_sim"]), est_sum=t["mean_estimate"] * t["n_sim"])
    g = t.groupby(KEYS, sort=False, dropna=False)[["rejections", "n_sim", "est_sum"]].sum().reset_index()
    k, n = g["rejections"].to_numpy(float), g["n_sim"].to_numpy(float)
    g["rejection_rate"] = k / n
    g["se"] = np.sqrt(g["rejection_rate"] * (1 - g["rejection_rate"]) / n)
    g["ci_low"], g["ci_high"] = _wilson(k, n)
    g["mean_estimate"] = g["est_sum"] / n
    g["n_sim"] = g["n_sim"].astype(int)
    g["target"] = "4-6%"
    return g[KEYS + ["rejection_rate", "se", "ci_low", "ci_high", "n_sim", "mean_estimate", "target"]]


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """Rate with random and with baseline selection side by side, per group, rule and test (percent).

    ``in_target_random``: the rate with random selection is within 4-6%; ``consistent_with_5_random``:
    the Wilson 95% interval of that rate contains 5% (the Monte Carlo error of a few hundred
    replications is about 1-1.3 points).
    """
    t = table.assign(rate_pct=100 * table["rejection_rate"])
    w = t.pivot_table(index=["group", "rule", "test"], columns="selection",
                      values=["rate_pct", "n_sim", "ci_low", "ci_high"], aggfunc="first")
    w.columns = [f"{a}_{b}" for a, b in w.columns]
    w = w.reset_index()
    for sel in ("random", "baseline"):
        for c in ("rate_pct", "n_sim", "ci_low", "ci_high"):
            if f"{c}_{sel}" not in w.columns:
                w[f"{c}_{sel}"] = np.nan
    w["in_target_random"] = w["rate_pct_random"].between(4, 6)
    w["consistent_with_5_random"] = (w["ci_low_random"] <= 0.05) & (0.05 <= w["ci_high_random"])
    return w[["group", "rule", "test", "rate_pct_random", "n_sim_random", "rate_pct_baseline", "n_sim_baseline",
              "in_target_random", "consistent_with_5_random"]]
