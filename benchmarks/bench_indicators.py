"""All-cells bootstrap of the key-factor indicators, as a user calls it, against fair baselines.

Data: ``cs.simulate(seed=1)`` (the published CIPS scale: about 19,500
respondents, 84 country x iteration x group cells, 10 key factors + 1 index),
B = 2000 Rao–Wu replicates.  Every method does the same job — the Rao–Wu
rescaling bootstrap of the weighted mean score of every cell and factor — and
is timed in interleaved rounds (each round runs every method once, in turn), so
that a busy machine slows all of them alike; medians and ranges of wall and CPU
seconds are recorded, and ratios are medians of the per-round ratios.

Measured as a user calls it, no pinning: the benchmark sets no thread
environment variable and no ``threadpool_limits``; only the package's own BLAS
control inside its hot path applies (``indicators`` runs its batched products on
one BLAS thread; ``indicators_blas_default`` is the same call with that control
switched off, to show which wins).

* ``indicators``: the whole ``cs.estimate.indicators`` call (scores, estimates,
  bootstrap, CIs, flags); ``bootstrap`` = its time at B minus its time at B = 2.
* ``numpy_per_cell``: the loop a competent numpy user writes — per cell, the
  Rao–Wu counts of all replicates from ``Generator.multinomial`` (``n - 1``
  draws, rescaled by ``n/(n - 1)``) and one matrix product with the cell's
  weighted scores.
* ``pandas_groupby``: precomputed per-cell multinomial Rao–Wu counts as a
  replicate-multiplier matrix, then ``groupby(cell).sum()`` of the weighted
  scores and weights, in chunks of 250 replicates.
* ``svy``: the svy package (0.35): ``Sample.weighting.create_bs_wgts(kind=
  "rao-wu")`` with the cells as strata and respondents as PSUs, then
  ``estimation.mean(..., by=cell, method="replication")``.
* ``floor``: the RNG + BLAS floor of the same job — ``B x n`` float32 uniforms
  and one product with the ``n x 2F`` weighted scores (chunked).

Also: peak traced memory, the float32-vs-float64 agreement of the SEs, and one
run at 180 countries (linear time, bounded memory).
"""

from __future__ import annotations

import gc
import importlib
import os
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

import cips_stats as cs
from benchmarks import peak_mib as _peak_mib
from cips_stats.scores import respondent_scores

KEYS = ["country", "iteration", "group"]
_IND = importlib.import_module("cips_stats.estimate.indicators")


def _prepared(data) -> dict:
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
    return {"sc": sc, "X": X, "cell": cell, "sizes": sizes, "start": start}


def _numpy_per_cell(p: dict, n_boot: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X, F = p["X"], p["X"].shape[1] // 2
    out = np.empty((n_boot, p["sizes"].size, F))
    for k, (nk, s0) in enumerate(zip(p["sizes"], p["start"])):
        counts = rng.multinomial(nk - 1, np.full(nk, 1.0 / nk), size=n_boot) * (nk / (nk - 1.0))
        T = counts @ X[s0:s0 + nk]
        out[:, k] = T[:, :F] / T[:, F:]
    return out


def _pandas_groupby(p: dict, n_boot: int, seed: int = 1, chunk: int = 250) -> list:
    rng = np.random.default_rng(seed)
    X, F, cell = p["X"], p["X"].shape[1] // 2, p["cell"]
    key = pd.Index(cell, name="cell")
    out = []
    for b0 in range(0, n_boot, chunk):
        bc = min(chunk, n_boot - b0)
        mult = np.vstack([rng.multinomial(nk - 1, np.full(nk, 1.0 / nk), size=bc).T * (nk / (nk - 1.0))
                          for nk in p["sizes"]])                       # (n, bc) Rao-Wu multipliers
        num = {f: pd.DataFrame(mult * X[:, [f]], index=key).groupby(level=0).sum() for f in range(F)}
        den = {f: pd.DataFrame(mult * X[:, [F + f]], index=key).groupby(level=0).sum() for f in range(F)}
        out.append({f: num[f] / den[f] for f in range(F)})
    return out


def _svy_frame(p: dict, data) -> Any:
    import polars as pl

    sc = p["sc"]
    df = sc.respondents[KEYS + ["weight"]].copy()
    df["cell"] = df[KEYS].astype(str).agg("|".join, axis=1)
    df["rid"] = np.arange(len(df))
    for f in sc.factors:
        df[f"s_{f}"] = sc.scores[f].to_numpy()
    return pl.from_pandas(df), [f"s_{f}" for f in sc.factors]


def _svy(pdf, ys, n_boot: int, seed: int = 1) -> Any:
    import svy

    s = svy.Sample(pdf, svy.Design(stratum="cell", psu="rid", wgt="weight"))
    s.weighting.create_bs_wgts(n_reps=n_boot, kind="rao-wu", rstate=seed, inplace=True)
    return s.estimation.mean(ys, by="cell", method="replication", drop_nulls=True)


def _floor(p: dict, n_boot: int, seed: int = 1, chunk: int = 250) -> None:
    rng = np.random.default_rng(seed)
    X32 = p["X"].astype(np.float32)
    n = X32.shape[0]
    for b0 in range(0, n_boot, chunk):
        bc = min(chunk, n_boot - b0)
        U = rng.random((bc, n), dtype=np.float32)
        _ = U @ X32


def _blas_default(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        old = _IND._BLAS_THREADS
        _IND._BLAS_THREADS = None
        try:
            return fn()
        finally:
            _IND._BLAS_THREADS = old
    return run


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _interleaved(methods: dict[str, Callable[[], Any]], rounds: int) -> dict[str, dict[str, list]]:
    out = {k: {"wall": [], "cpu": []} for k in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            wall, cpu = _timed(fn)
            out[name]["wall"].append(wall)
            out[name]["cpu"].append(cpu)
    return out


def _summary(times: dict, ref: str) -> list[dict]:
    rows = []
    r_wall = np.asarray(times[ref]["wall"])
    r_cpu = np.asarray(times[ref]["cpu"])
    for name, t in times.items():
        wall, cpu = np.asarray(t["wall"]), np.asarray(t["cpu"])
        rows.append({"method": name, "wall_median": float(np.median(wall)), "wall_min": float(wall.min()),
                     "wall_max": float(wall.max()), "cpu_median": float(np.median(cpu)),
                     "cpu_min": float(cpu.min()), "cpu_max": float(cpu.max()),
                     f"wall_ratio_to_{ref}_median": float(np.median(wall / r_wall)),
                     f"wall_ratio_to_{ref}_range": [float((wall / r_wall).min()), float((wall / r_wall).max())],
                     f"cpu_ratio_to_{ref}_median": float(np.median(cpu / r_cpu))})
    return rows


def run(quick: bool = False) -> dict:
    """Interleaved rounds of indicators and the fair baselines; ratios, floor, memory and scaling."""
    B = 200 if quick else 2000
    sim = cs.simulate(seed=1, **({"n_countries": 5, "n_repeat": 3} if quick else {}))
    data = sim.data
    p = _prepared(data)
    pdf, ys = _svy_frame(p, data)
    rounds = 2 if quick else 5
    cs.estimate.indicators(data, n_boot=20, seed=1)                       # warm-up: imports and caches
    _svy(pdf, ys, 20)
    methods: dict[str, Callable[[], Any]] = {
        "indicators": lambda: cs.estimate.indicators(data, n_boot=B, seed=1),
        "indicators_b2": lambda: cs.estimate.indicators(data, n_boot=2, seed=1),
        "indicators_blas_default": _blas_default(lambda: cs.estimate.indicators(data, n_boot=B, seed=1)),
        "floor": lambda: _floor(p, B),
        "numpy_per_cell": lambda: _numpy_per_cell(p, B),
        "pandas_groupby": lambda: _pandas_groupby(p, B),
        "svy": lambda: _svy(pdf, ys, B),
    }
    times = _interleaved(methods, rounds)
    times["bootstrap"] = {k: list(np.maximum(np.asarray(times["indicators"][k]) - times["indicators_b2"][k], 1e-9))
                          for k in ("wall", "cpu")}
    table = _summary(times, "indicators")
    floor = next(r for r in table if r["method"] == "floor")
    r32 = cs.estimate.indicators(data, n_boot=B, seed=1)
    r64 = cs.estimate.indicators(data, n_boot=B, seed=1, dtype=np.float64)
    rel = np.abs(r32.table["se"] / r64.table["se"] - 1.0)
    out: dict[str, Any] = {
        "measured": "as a user calls it, no pinning: the benchmark sets no thread environment variable and no "
                    "threadpool_limits; the package's own BLAS control inside indicators applies",
        "thread_env": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "load_average_before": os.getloadavg(),
        "rounds": rounds, "table": table, "respondents": int(len(data.frame)), "cells": int(p["sizes"].size),
        "factors": len(p["sc"].factors), "n_boot": B,
        "indicators_over_floor_wall": 1.0 / next(r for r in table if r["method"] == "floor")[
            "wall_ratio_to_indicators_median"],
        "indicators_over_floor_cpu": 1.0 / floor["cpu_ratio_to_indicators_median"],
        "peak_mib_indicators": _peak_mib(lambda: cs.estimate.indicators(data, n_boot=B, seed=1)),
        "float32_vs_float64": {"max_rel_se_diff": float(rel.max()), "median_rel_se_diff": float(np.median(rel))},
        "target": "indicators at B = 2000 within 4x of the RNG + BLAS floor of the same job",
    }
    out["load_average_after"] = os.getloadavg()
    out["scaling"] = _scaling(quick, float(np.median(times["bootstrap"]["wall"])) / (len(data.frame) * B))
    return out


def _scaling(quick: bool, per_unit_small: float) -> dict:
    big = cs.simulate(seed=2, **({"n_countries": 20, "n_repeat": 14} if quick else
                                 {"n_countries": 180, "n_repeat": 120})).data
    Bb = 100 if quick else 500
    t_big, _ = _timed(lambda: cs.estimate.indicators(big, n_boot=Bb, seed=1))
    t_big2, _ = _timed(lambda: cs.estimate.indicators(big, n_boot=2, seed=1))
    nb = len(big.frame)
    per_unit_big = max(t_big - t_big2, 1e-9) / (nb * Bb)
    return {"respondents": nb, "cells": int(big.frame.groupby(KEYS).ngroups), "n_boot": Bb, "seconds": t_big,
            "bootstrap_seconds": t_big - t_big2,
            "peak_mib": _peak_mib(lambda: cs.estimate.indicators(big, n_boot=Bb, seed=1)),
            "ns_per_respondent_replicate_small": per_unit_small * 1e9,
            "ns_per_respondent_replicate_big": per_unit_big * 1e9, "linearity_ratio": per_unit_big / per_unit_small}


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    from benchmarks import RESULTS, write_result

    res = run(quick="--quick" in sys.argv)
    write_result("indicators", res, folder=RESULTS, quick="--quick" in sys.argv)
    print(pd.DataFrame(res["table"]).to_string())
    print(json.dumps({k: v for k, v in res.items() if k != "table"}, indent=1, default=str))
