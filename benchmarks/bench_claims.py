"""Claim audit speed: within-country permutations of the support labels and the whole audit.

Data: ``cs.simulate(seed=1)`` (the published CIPS scale: 17 countries surveyed twice, 10 key factors
of which 3 supported per country, two respondent groups), indicators with 500 bootstrap replicates,
cell changes with BH.  Measured in the same run, as a user calls them:

* ``permutation``: 10,000 within-country permutations of the support labels of one group (170 cells)
  and the difference in shares improved (point rule):
  - ``pandas_loop``: per permutation, ``groupby("country")["supported"].transform(permutation)`` and
    the difference of two group means — timed on 1,000 permutations and scaled to 10,000;
  - ``numpy_loop``: per permutation, ``Generator.permutation`` of each country's labels (a loop over
    permutations and countries);
  - ``vectorised``: :func:`cips_stats.claims.within_country_permutation` (one array operation);
* ``audit``: the whole :func:`cips_stats.claims.audit` (both groups, all tests, 10,000 permutations,
  rules point and fdr from the cell changes; then all three rules given the change model of
  ``cs.change.fit(indicators, supported=...)``, fitted once beforehand: the fit, compilation included,
  is timed separately and is not part of the audit);
* ``audit_180`` (full runs only): the claims step of ``cips-stats analyze`` at 180 countries
  (``cs.simulate(seed=1, n_countries=180, n_repeat=120)``: 120 countries surveyed twice, 2,640 cell
  changes, 2,400 of them labelled), called as the pipeline calls it (``report._inference.compute_claims``:
  ``audit(model, supported=, cell_changes=, seed=)`` with every rule and test, 10,000 permutations, CIPS
  warnings silenced) on the change model ``cs.change.fit(indicators, supported=, strict=False)`` fitted
  once beforehand (its time recorded apart): wall and CPU seconds of each call with the load average;
* ``power_dask``: :func:`cips_stats.power.simulate_claim` with 50 CIPS-scale replications (8 in a quick
  run) on a local Dask cluster of 1 and of 2 worker processes: the wall-clock speed-up, the CPU seconds
  the workers spent (equal totals mean the work does not grow with the workers, so the speed-up on
  free cores is bounded only by the cores), and the time of a 1,000-replication study extrapolated
  linearly (from the 2-worker wall time, and from the CPU time per replication on 2 free cores).
Times are the best of ``repeats`` calls; the load average of the machine is recorded before and after,
since the development machine (2 cores) is shared.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

import cips_stats as cs
from benchmarks import best_seconds


def _data():
    sim = cs.simulate(seed=1)
    ind = cs.estimate.indicators(sim.data, n_boot=500, seed=1)
    cc = cs.change.cell_changes(ind)
    sup = sim.truth["supported"]
    cells = cc.table.merge(sup[["country", "factor", "supported"]], on=["country", "factor"])
    cells = cells[cells["group"] == "officials"].sort_values(["country", "factor"]).reset_index(drop=True)
    cells["improved"] = (cells["estimate"] > 0).astype(float)
    return sim, ind, cc, cells


def pandas_loop(cells: pd.DataFrame, n_perm: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    df = cells[["country", "supported", "improved"]].copy()
    out = np.empty(n_perm)
    for b in range(n_perm):
        perm = df.groupby("country")["supported"].transform(lambda s: rng.permutation(s.to_numpy()))
        m = df.groupby(perm)["improved"].mean()
        out[b] = m.loc[True] - m.loc[False]
    return out


def numpy_loop(cells: pd.DataFrame, n_perm: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = pd.factorize(cells["country"], sort=True)[0]
    labels = cells["supported"].to_numpy(bool)
    y = cells["improved"].to_numpy(float)
    blocks = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    out = np.empty(n_perm)
    perm = labels.copy()
    for b in range(n_perm):
        for idx in blocks:
            perm[idx] = rng.permutation(labels[idx])
        out[b] = y[perm].mean() - y[~perm].mean()
    return out


def vectorised(cells: pd.DataFrame, n_perm: int, seed: int) -> dict[str, Any]:
    codes = pd.factorize(cells["country"], sort=True)[0]
    return cs.claims.within_country_permutation(codes, cells["supported"].to_numpy(bool),
                                                cells[["improved"]].to_numpy(float), n_perm=n_perm,
                                                rng=np.random.default_rng(seed))


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _power_dask(workers: int, n_sim: int) -> tuple[float, float]:
    """Wall seconds of the study and CPU seconds its workers spent (summed over worker processes)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        client.run(lambda: __import__("cips_stats.claims"))                 # warm the workers' imports
        cpu0 = sum(client.run(time.process_time).values())
        t0 = time.perf_counter()
        cs.power.simulate_claim(n_sim=n_sim, n_boot=200, n_perm=2000, rules=("point", "fdr"),
                                tests=("permutation", "cmh", "gee", "did", "ancova"), seed=1, backend=client)
        wall = time.perf_counter() - t0
        cpu = sum(client.run(time.process_time).values()) - cpu0
        return wall, cpu


def audit_at_scale(n_countries: int = 180, n_repeat: int = 120, repeats: int = 3) -> dict[str, Any]:
    """The claims step of the pipeline at ``n_countries`` (see the module docstring, ``audit_180``)."""
    import warnings

    sim = cs.simulate(seed=1, n_countries=n_countries, n_repeat=n_repeat)
    sup = sim.truth["supported"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, by=("country", "iteration", "group"), n_boot=1000, seed=1)
        cc = cs.change.cell_changes(ind)
        t0 = time.perf_counter()
        model = cs.change.fit(ind, supported=sup, seed=1, strict=False)
        t_fit = time.perf_counter() - t0
    calls = []
    for _ in range(repeats):
        load = _load()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cs.CipsWarning)
            cs.claims.audit(model, supported=sup, cell_changes=cc, seed=1)
        calls.append({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "load_1min": load})
    return {"n_countries": n_countries, "countries_with_change": n_repeat, "n_cell_changes": int(len(cc.table)),
            "change_fit_s": t_fit, "calls": calls, "best_wall_s": min(c["wall_s"] for c in calls),
            "best_cpu_s": min(c["cpu_s"] for c in calls)}


def run(quick: bool = False) -> dict[str, Any]:
    n_perm = 10_000
    n_pandas = 200 if quick else 1000
    repeats = 1 if quick else 3
    sim, ind, cc, cells = _data()
    out: dict[str, Any] = {"n_cells": int(len(cells)), "n_countries": int(cells["country"].nunique()),
                           "n_perm": n_perm, "load_average_start": _load()}
    t_pandas = best_seconds(lambda: pandas_loop(cells, n_pandas, 1), 1) * n_perm / n_pandas
    t_numpy = best_seconds(lambda: numpy_loop(cells, n_perm, 1), repeats)
    t_vec = best_seconds(lambda: vectorised(cells, n_perm, 1), repeats)
    # the three give the same null distribution (different random streams): compare their p-values
    obs = cells.loc[cells["supported"], "improved"].mean() - cells.loc[~cells["supported"], "improved"].mean()
    res = vectorised(cells, n_perm, 1)
    null = numpy_loop(cells, n_perm, 2)
    centre = res["null_mean"][0]
    p_loop = (1 + (np.abs(null - centre) >= abs(obs - centre) - 1e-9).sum()) / (n_perm + 1)
    out["permutation"] = {"pandas_loop_s": t_pandas, "pandas_loop_measured_perms": n_pandas,
                          "numpy_loop_s": t_numpy, "vectorised_s": t_vec,
                          "speedup_vs_pandas": t_pandas / t_vec, "speedup_vs_numpy": t_numpy / t_vec,
                          "p_vectorised": float(res["p_value"][0]), "mc_se": float(res["mc_se"][0]),
                          "p_numpy_loop": float(p_loop)}
    sup = sim.truth["supported"]
    kw = dict(supported=sup, n_perm=n_perm, seed=1)
    t_cc = best_seconds(lambda: cs.claims.audit(cc, rules=("point", "fdr"), **kw), repeats)
    out["audit"] = {"from_cell_changes_s": t_cc, "rules": ["point", "fdr"], "tests": list(cs.claims.TESTS)}
    fit = getattr(cs.change, "fit", None)
    if fit is not None:
        try:
            t0 = time.perf_counter()
            chg = fit(ind, supported=sup, seed=1)
            out["audit"]["change_fit_s"] = time.perf_counter() - t0
            t_m = best_seconds(lambda: cs.claims.audit(chg, cell_changes=cc, **kw), repeats)
            out["audit"]["from_change_model_s"] = t_m
            out["audit"]["rules_with_model"] = list(cs.claims.RULES)
            out["audit"]["target_s"] = 1.0
            # where the second goes: the audit without the two model-based tests of the vote count
            t_light = best_seconds(lambda: cs.claims.audit(chg, cell_changes=cc, tests=(
                "permutation", "cmh", "fisher", "welch", "did", "ancova"), **kw), repeats)
            out["audit"]["from_change_model_without_gee_mixed_s"] = t_light
        except Exception as exc:  # recorded, not hidden
            out["audit"]["change_model_error"] = f"{type(exc).__name__}: {exc}"
    if not quick:
        out["audit_180"] = audit_at_scale(repeats=repeats)
    n_sim = 8 if quick else 50
    t1, cpu1 = _power_dask(1, n_sim)
    t2, cpu2 = _power_dask(2, n_sim)
    # On a shared machine the wall-clock speed-up says how busy the cores were; the workers' CPU seconds
    # say whether the work itself grows with the number of workers (it should not: replications are
    # independent), i.e. whether the speed-up on free cores can be near-linear.
    out["power_dask"] = {"replications": n_sim, "one_worker_s": t1, "two_workers_s": t2, "speedup": t1 / t2,
                         "one_worker_cpu_s": cpu1, "two_workers_cpu_s": cpu2,
                         "cpu_per_replication_one_worker_s": cpu1 / n_sim,
                         "cpu_per_replication_two_workers_s": cpu2 / n_sim,
                         "cpu_bound_speedup_two_workers": 2 * cpu1 / cpu2,
                         "extrapolated_1000_replications_two_free_cores_min": cpu2 / n_sim * 1000 / 2 / 60,
                         "per_replication_one_worker_s": t1 / n_sim,
                         "extrapolated_1000_replications_two_workers_min": t2 / n_sim * 1000 / 60,
                         "extrapolated_1000_replications_one_worker_min": t1 / n_sim * 1000 / 60,
                         "target_1000_replications_min": 10.0,
                         "note": f"measured on {n_sim} replications and extrapolated linearly to 1,000"}
    out["load_average_end"] = _load()
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
