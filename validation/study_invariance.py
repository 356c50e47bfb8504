"""Type I error and power of the invariance ladder (``cs.factor.invariance``).

Each replication draws two groups of ``n`` respondents from a two-factor model
(3 + 3 continuous indicators, loadings .6-.8, factor correlation .4, residual
variances making item variances 1; group 2 has latent means +0.3 and latent variances
1.2, which invariance allows).  Two conditions:

* ``invariant``: loadings, intercepts and residual variances equal in both groups;
  every difference test should reject at its nominal 5% rate, and Chen's criteria
  should almost never reject;
* ``biased_intercept``: item y5's intercept is 0.5 (half a standard deviation) higher
  in group 2; the scalar step should be rejected and the partial search should free
  ``y5~1`` first.

For each estimator (ML, and MLR on the same data) the table reports, per step
(metric, scalar, strict): the rejection rate of the difference test at .05 with its
binomial Monte Carlo standard error, the rejection rate by Chen's criteria, and for the
biased condition the share of replications whose first freed constraint is ``y5~1``
and whose final level is partial scalar or above.

Target: the invariant-condition rejection rates of the difference tests within
.05 ± 2 MC SE.  Full run: 200 replications under invariance and 60 with the planted bias,
ML and MLR.  ``run(quick=True)``: 30 and 15 replications, ML only.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
MODEL = "f1 =~ y1 + y2 + y3\nf2 =~ y4 + y5 + y6"
LAMBDA = np.array([[0.8, 0.0], [0.7, 0.0], [0.6, 0.0], [0.0, 0.8], [0.0, 0.7], [0.0, 0.6]])
PHI = np.array([[1.0, 0.4], [0.4, 1.0]])


def simulate_groups(rng: np.random.Generator, n: int, *, bias: float = 0.0) -> pd.DataFrame:
    """Two groups from the two-factor model; ``bias`` shifts y5's intercept in group 2."""
    theta = 1.0 - np.sum(LAMBDA**2, axis=1)
    frames = []
    for g, (mean, scale) in enumerate([(0.0, 1.0), (0.3, np.sqrt(1.2))]):
        eta = rng.multivariate_normal(np.full(2, mean), PHI * scale**2, size=n)
        y = eta @ LAMBDA.T + rng.normal(size=(n, 6)) * np.sqrt(theta)
        if g == 1:
            y[:, 4] += bias
        frames.append(pd.DataFrame(y, columns=[f"y{i}" for i in range(1, 7)]).assign(grp=f"g{g + 1}"))
    return pd.concat(frames, ignore_index=True)


def _one(seed: int, n: int, bias: float, estimator: str) -> dict:
    inv = importlib.import_module("cips_stats.factor.invariance")
    rng = np.random.default_rng(seed)
    df = simulate_groups(rng, n, bias=bias)
    chain = inv.invariance(df, group="grp", model=MODEL, estimator=estimator, partial=False)
    out = {}
    for lv in ("metric", "scalar", "strict"):
        out[f"p_{lv}"] = float(chain.table.loc[lv, "p_value"])
        out[f"chen_reject_{lv}"] = chain.table.loc[lv, "verdict"] == "rejected"
    if bias:
        part = inv.invariance(df, group="grp", model=MODEL, estimator=estimator, partial=True)
        out["first_freed"] = part.freed[0] if part.freed else ""
        out["level_supported"] = part.level_supported
    return out


def run(quick: bool = False, *, folder: str | Path = RESULTS) -> pd.DataFrame:
    """Run the study; write ``<folder>/invariance.csv`` (quick: ``invariance_quick.csv``)."""
    n = 300
    estimators = ("ML",) if quick else ("ML", "MLR")
    rows = []
    t0 = time.perf_counter()
    for est in estimators:
        for cond, bias in (("invariant", 0.0), ("biased_intercept", 0.5)):
            reps = (30 if bias == 0 else 15) if quick else (200 if bias == 0 else 60)
            res = pd.DataFrame([_one(1000 * (bias > 0) + r, n, bias, est) for r in range(reps)])
            for lv in ("metric", "scalar", "strict"):
                rej = float((res[f"p_{lv}"] < 0.05).mean())
                row = {"estimator": est, "condition": cond, "step": lv, "n_per_group": n, "replications": reps,
                       "reject_rate_chi2": rej,
                       "mc_se": float(np.sqrt(0.05 * 0.95 / reps)) if bias == 0 else float(np.sqrt(rej * (1 - rej) / reps)),
                       "reject_rate_chen": float(res[f"chen_reject_{lv}"].mean())}
                if bias:
                    row["first_freed_is_planted"] = float((res["first_freed"] == "y5~1").mean())
                    row["partial_scalar_or_above"] = float(res["level_supported"].isin(
                        ["partial_scalar", "partial_strict", "scalar", "strict"]).mean())
                rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["seconds"] = time.perf_counter() - t0
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # quick runs never overwrite the full study's table
    table.to_csv(folder / ("invariance_quick.csv" if quick else "invariance.csv"), index=False)
    return table


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True).to_string())
