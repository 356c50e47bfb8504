"""Power of the within-country permutation test (and CMH, DiD) against the true support effect.

Surveys are simulated with ``cs.simulate`` (supported factors chosen at random, 3 of 10 per country,
common drift 0.05 latent SD) for true support effects of 0 to 0.4 latent SD and for 10, 17 and 25
countries surveyed twice (262 officials and 202 private-sector respondents per country and iteration
on average); each survey is audited with :func:`cips_stats.claims.audit` (point rule, 2,000
permutations).  The table gives the rejection rate at 5% (power; type I error at effect 0) with its
Monte Carlo SE and Wilson interval: how many countries it takes to tell a true support effect from
the common drift.  Replications run through joblib (``--backend dask`` for a Dask cluster).
Full run: 200 replications per design point; ``quick``: 10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cips_stats import power

RESULTS = Path(__file__).resolve().parent / "results"


def run(quick: bool = False, *, n_sim: int | None = None, backend: Any = "loky", n_jobs: int | None = None,
        folder: str | Path = RESULTS, seed: int = 20240202) -> pd.DataFrame:
    """Power curve of the claim tests against ``support_effect`` and the number of countries."""
    n = n_sim if n_sim is not None else (10 if quick else 200)
    effects = [0.0, 0.2, 0.4] if quick else [0.0, 0.1, 0.2, 0.3, 0.4]
    countries = [17] if quick else [10, 17, 25]
    res = power.simulate_claim(n_countries=countries, n_officials=262, n_private=202, support_effect=effects,
                               selection="random", n_sim=n, n_boot=200, n_perm=2000, rules=("point",),
                               tests=("permutation", "cmh", "did"), seed=seed, backend=backend, n_jobs=n_jobs)
    return res.table


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True).to_string())
