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
95% interval, and the number of replications.  The replications run through joblib
(``python -m validation --only claims_type1 --backend dask`` runs them on a Dask cluster).
Full run: 1,000 replications per selection; ``quick``: 20.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cips_stats import power

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
    return table


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True).to_string())
