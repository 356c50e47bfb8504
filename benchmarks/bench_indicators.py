"""All-cells bootstrap of the key-factor indicators: ``cs.estimate.indicators`` against three baselines.

Data: ``cs.simulate(seed=1)`` (the published CIPS scale, about 19,500
respondents, 42 country-iterations x 2 groups = 84 cells, 10 key factors + 1
index), B = 2000 replicates.  Measured in the same run:

* ``pandas_loop``: per replicate, resample respondents with replacement within
  each cell (``groupby(...).sample``) and take weighted means with
  ``groupby`` — timed on a few replicates and scaled linearly to B;
* ``numpy_index``: a naive numpy index bootstrap (gather the resampled rows'
  weighted scores, ``np.add.reduceat`` per cell), not design-respecting
  (``n_h`` draws, no rescaling);
* ``multinomial_matrix``: Rao–Wu counts from ``Generator.multinomial`` per cell
  (a Python loop over cells) times the masked weighted scores;
* ``indicators``: the whole ``cs.estimate.indicators`` call (scores, estimates,
  Rao–Wu bootstrap, CIs, flags) and ``bootstrap`` = its time at B minus its
  time at B = 2 (the replicate part alone).

Also: peak traced memory of one call (tracemalloc), the same at 180 countries
(about 140,000 respondents) for linear time and bounded memory, and the
float32-vs-float64 agreement of the SEs.  BLAS is pinned to one thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import cips_stats as cs
from cips_stats.scores import respondent_scores
from benchmarks import best_seconds as _time
from benchmarks import peak_mib as _peak_mib

KEYS = ["country", "iteration", "group"]





def _prepared(data):
    sc = respondent_scores(data)
    S = sc.values()
    M = ~np.isnan(S)
    frame = data.frame
    cell = frame.groupby(KEYS, sort=True).ngroup().to_numpy()
    order = np.argsort(cell, kind="stable")
    w = frame["weight"].to_numpy()[order]
    S, M, cell = S[order], M[order], cell[order]
    sizes = np.bincount(cell)
    start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    X = np.concatenate([np.where(M, S, 0.0) * w[:, None], M * w[:, None]], axis=1)
    return sc, X, cell, sizes, start


def _pandas_loop(data, n_rep: int, seed: int = 1) -> None:
    sc = respondent_scores(data)
    df = pd.concat([sc.respondents[KEYS + ["weight"]], sc.scores], axis=1)
    f = list(sc.factors)
    rng = np.random.default_rng(seed)
    for _ in range(n_rep):
        s = df.groupby(KEYS, sort=True).sample(frac=1.0, replace=True, random_state=rng)
        ws = s[f].mul(s["weight"], axis=0)
        wm = s[f].notna().mul(s["weight"], axis=0)
        ws[KEYS] = s[KEYS]
        wm[KEYS] = s[KEYS]
        _ = ws.groupby(KEYS).sum() / wm.groupby(KEYS).sum()


def _numpy_index(X, sizes, start, n_boot: int, seed: int = 1, chunk: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    F = X.shape[1] // 2
    cell = np.repeat(np.arange(sizes.size), sizes)
    out = np.empty((n_boot, sizes.size, F))
    for b0 in range(0, n_boot, chunk):
        bc = min(chunk, n_boot - b0)
        idx = (rng.random((bc, n)) * sizes[cell] + start[cell]).astype(np.intp)
        G = X[idx]                                            # (bc, n, 2F) gathered rows
        T = np.add.reduceat(G, start, axis=1)
        out[b0:b0 + bc] = T[..., :F] / T[..., F:]
    return out


def _multinomial(X, sizes, start, n_boot: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    F = X.shape[1] // 2
    out = np.empty((n_boot, sizes.size, F))
    for k, (nk, s0) in enumerate(zip(sizes, start)):         # the loop over cells this design avoids
        counts = rng.multinomial(nk - 1, np.full(nk, 1.0 / nk), size=n_boot) * (nk / (nk - 1.0))
        T = counts @ X[s0:s0 + nk]
        out[:, k] = T[:, :F] / T[:, F:]
    return out


def run(quick: bool = False) -> dict:
    """Time the all-cells bootstrap against the baselines; return ratios, peak memory and scaling."""
    B = 200 if quick else 2000
    sim_kw = {"n_countries": 5, "n_repeat": 3} if quick else {}
    sim = cs.simulate(seed=1, **sim_kw)
    data = sim.data
    n = len(data.frame)
    repeats = 1 if quick else 3
    rows = []
    with threadpool_limits(limits=1):
        sc, X, cell, sizes, start = _prepared(data)
        cs.estimate.indicators(data, n_boot=20, seed=1)               # warm-up (imports, caches)
        t_ind = _time(lambda: cs.estimate.indicators(data, n_boot=B, seed=1), repeats)
        t_ind2 = _time(lambda: cs.estimate.indicators(data, n_boot=2, seed=1), repeats)
        t_boot = max(t_ind - t_ind2, 1e-9)
        n_pd = 2 if quick else 10
        t_pd = _time(lambda: _pandas_loop(data, n_pd)) * B / n_pd
        t_np = _time(lambda: _numpy_index(X, sizes, start, B), 1)
        t_mn = _time(lambda: _multinomial(X, sizes, start, B), 1)
        t_gen = _time(lambda: cs.estimate.indicators(data, n_boot=B, seed=1, _force_general=True), 1)
        peak = _peak_mib(lambda: cs.estimate.indicators(data, n_boot=B, seed=1))
        r32 = cs.estimate.indicators(data, n_boot=B, seed=1)
        r64 = cs.estimate.indicators(data, n_boot=B, seed=1, dtype=np.float64)
    rel = np.abs(r32.table["se"] / r64.table["se"] - 1.0)
    lims = ["ci_low", "ci_high"]
    ci_abs = np.nanmax(np.abs(r32.table[lims].to_numpy() - r64.table[lims].to_numpy()))
    for name, secs, what in (
        ("indicators", t_ind, "cs.estimate.indicators, whole call (scores, estimates, bootstrap, CIs, flags)"),
        ("bootstrap", t_boot, "indicators at B minus indicators at B=2: the replicate part"),
        ("indicators_general_path", t_gen, "same call forced through the general (clustered/domain) path"),
        ("pandas_loop", t_pd, f"groupby.sample + groupby weighted means, {n_pd} replicates scaled to B"),
        ("numpy_index", t_np, "naive numpy index bootstrap (gather + reduceat), not design-respecting"),
        ("multinomial_matrix", t_mn, "Generator.multinomial Rao-Wu counts, Python loop over cells"),
    ):
        rows.append({"method": name, "seconds": secs, "speedup_vs_pandas_loop": t_pd / secs,
                     "ratio_to_bootstrap": secs / t_boot, "what": what})
    out: dict[str, Any] = {
        "table": rows, "respondents": n, "cells": int(sizes.size), "factors": len(sc.factors), "n_boot": B,
        "peak_mib_indicators": peak,
        "float32_vs_float64": {"max_rel_se_diff": float(rel.max()), "median_rel_se_diff": float(np.median(rel)),
                               "max_abs_ci_diff": float(ci_abs)},
        "target": "bootstrap of all cells <= 0.5 s and >= 70x the pandas loop at B=2000, peak < 500 MB",
    }
    # scaling: 180 countries (~140,000 respondents), linear time, bounded memory
    big_kw = {"n_countries": 20, "n_repeat": 14} if quick else {"n_countries": 180, "n_repeat": 120}
    big = cs.simulate(seed=2, **big_kw).data
    Bb = 100 if quick else 500
    with threadpool_limits(limits=1):
        t_big = _time(lambda: cs.estimate.indicators(big, n_boot=Bb, seed=1), 1)
        t_big2 = _time(lambda: cs.estimate.indicators(big, n_boot=2, seed=1), 1)
        peak_big = _peak_mib(lambda: cs.estimate.indicators(big, n_boot=Bb, seed=1))
    nb = len(big.frame)
    per_unit_small = t_boot / (n * B)
    per_unit_big = max(t_big - t_big2, 1e-9) / (nb * Bb)
    out["scaling"] = {"respondents": nb, "cells": int(big.frame.groupby(KEYS).ngroups), "n_boot": Bb,
                      "seconds": t_big, "bootstrap_seconds": t_big - t_big2, "peak_mib": peak_big,
                      "ns_per_respondent_replicate_small": per_unit_small * 1e9,
                      "ns_per_respondent_replicate_big": per_unit_big * 1e9,
                      "linearity_ratio": per_unit_big / per_unit_small}
    return out


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    from benchmarks import RESULTS, write_result

    res = run(quick="--quick" in sys.argv)
    write_result("indicators", res, folder=RESULTS, quick="--quick" in sys.argv)
    print(pd.DataFrame(res["table"]).to_string())
    print(json.dumps({k: v for k, v in res.items() if k != "table"}, indent=1, default=str))
