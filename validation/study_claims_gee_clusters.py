"""Type I error of the cell-level tests with few countries: sandwich vs bias-reduced GEE, CMH, permutation.

Cell outcomes (improved / not) are simulated with no support effect: 17 countries x 10 cells, 3 cells
per country supported at random, ``logit P(improved) = b0 + u_c``, ``u_c ~ N(0, sd_country^2)`` (country
correlation of the outcomes), with b0 = 0.5 (about 60% improved, as the point rule at the CIPS drift) and
sd_country in {0, 0.5, 1}.  For each dataset: GEE logistic with an exchangeable working correlation and
(i) the sandwich SE with a normal reference (``gee_exchangeable``, as geepack), (ii) the Mancl–DeRouen
bias-reduced SE with a t reference on 16 df (``gee_exchangeable_bc``); the CMH test; the within-country
permutation test (999 permutations).  Rejection rates at 5% with Monte Carlo SEs.  Cheaper than the
survey-level study (no respondents are simulated), so it can use many replications.
Full run: 2,000 datasets per setting; ``quick``: 200.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cips_stats import claims


def run(quick: bool = False, *, n_sim: int | None = None, seed: int = 20240203) -> pd.DataFrame:
    """Rejection rates per country SD and test."""
    n = n_sim if n_sim is not None else (200 if quick else 2000)
    rng = np.random.default_rng(seed)
    C, F, K = 17, 10, 3
    codes = np.repeat(np.arange(C), F)
    rows: list[dict[str, Any]] = []
    for sd in (0.0, 0.5, 1.0):
        rej = {"gee_exchangeable": [], "gee_exchangeable_bc": [], "cmh": [], "permutation": []}
        for _ in range(n):
            labels = np.concatenate([rng.permutation(np.r_[np.ones(K, bool), np.zeros(F - K, bool)])
                                     for _ in range(C)])
            eta = 0.5 + rng.normal(0.0, sd, C)[codes] if sd > 0 else np.full(C * F, 0.5)
            y = rng.random(C * F) < 1.0 / (1.0 + np.exp(-eta))
            g = claims._gee(codes, labels, y, "exchangeable", 0.95)
            rej["gee_exchangeable"].append(g.get("p_value", np.nan))
            rej["gee_exchangeable_bc"].append(g["bc"].get("p_value", np.nan))
            rej["cmh"].append(claims._cmh(codes, labels, y, 0.95).get("p_value", np.nan))
            perm = claims.within_country_permutation(codes, labels, y[:, None].astype(float), n_perm=999, rng=rng)
            rej["permutation"].append(perm["p_value"][0])
        for test, ps in rej.items():
            p = np.asarray(ps, dtype=float)
            ok = np.isfinite(p)
            rate = float((p[ok] < 0.05).mean())
            rows.append({"sd_country": sd, "test": test, "rejection_rate": rate,
                         "se": float(np.sqrt(rate * (1 - rate) / ok.sum())), "n_sim": int(ok.sum())})
    return pd.DataFrame(rows)


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True).to_string())
