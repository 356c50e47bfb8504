"""``cs.change.fit`` at CIPS scale and beyond: first call (compilation) vs warm call, against PyMC's default NUTS
on the unmarginalised model, measured in the same run.

Data: ``cs.simulate(seed=1)`` (25 countries, 17 repeated, 10 key factors x 2 groups: 340 cell changes),
``cs.estimate.indicators(n_boot=500)``.  Measured as a user calls it (no thread pinning):

* ``fit_first``: the first ``cs.change.fit`` of a model shape in a fresh process (nutpie compiles the
  model; later fits of the same shape reuse it) — 4 chains x 1000 draws + 1000 tuning;
* ``fit_warm``: a second fit with another seed (cached compiled model);
* ``full_pymc``: the same model with the 340 cell deviations sampled (PyMC's default NUTS, 4 chains x
  1000 + 1000) — the baseline of "min bulk ESS per second of sampling";
* the scale curve 25 -> 100 -> 180 countries (``n_repeat`` 17, 68, 120): first and warm fit.

Ratios: ``ess_per_s_ratio`` = (min bulk ESS / sampling s of the warm fit) over the same for the baseline.
The load average is recorded: on a shared 2-core machine the absolute seconds move with it.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import cips_stats as cs
from cips_stats.change import _model


def _fit(ind, sup, seed, **kw) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cs.change.fit(ind, supported=sup, seed=seed, strict=False, **kw)
    wall = time.perf_counter() - t0
    d = dict(res.diagnostics)
    d["wall_s"] = wall
    d["reliable"] = res.reliable
    d["cells"] = len(res.cells)
    return wall, d


def _survey(n_countries: int, n_repeat: int, n_boot: int):
    sim = cs.simulate(seed=1, n_countries=n_countries, n_repeat=n_repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ind = cs.estimate.indicators(sim.data, n_boot=n_boot, seed=1)
    return ind, sim.truth["supported"]


def run(quick: bool = False) -> dict:
    """First and warm fits, the unmarginalised PyMC baseline, and the scale curve."""
    n_boot = 200 if quick else 500
    out: dict[str, Any] = {"load_average_before": os.getloadavg(), "n_boot": n_boot,
                           "measured": "as a user calls it; first = fresh shape (compiles), warm = cached"}
    ind, sup = _survey(6, 4, n_boot) if quick else _survey(25, 17, n_boot)
    _, out["fit_first"] = _fit(ind, sup, 1)
    _, out["fit_warm"] = _fit(ind, sup, 2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata, diag, _ = _model._fit_full(ind, supported=sup, seed=3, sampler="pymc",
                                          draws=200 if quick else 1000, tune=200 if quick else 1000)
    diag["wall_s"] = time.perf_counter() - t0
    out["full_pymc"] = diag
    w, b = out["fit_warm"], out["full_pymc"]
    out["ess_per_s_ratio"] = (w["ess_bulk_min"] / w["sampling_s"]) / (b["ess_bulk_min"] / b["sampling_s"])
    out["wall_ratio_first"] = b["wall_s"] / out["fit_first"]["wall_s"]
    out["wall_ratio_warm"] = b["wall_s"] / w["wall_s"]
    curve = []
    for nc, nr in ([(10, 7)] if quick else [(25, 17), (100, 68), (180, 120)]):
        ind_s, sup_s = _survey(nc, nr, n_boot)
        _, first = _fit(ind_s, sup_s, 11)
        _, warm = _fit(ind_s, sup_s, 12)
        curve.append({"countries": nc, "repeated": nr, "cells": first["cells"], "first_wall_s": first["wall_s"],
                      "warm_wall_s": warm["wall_s"], "warm_sampling_s": warm["sampling_s"],
                      "ess_bulk_min": warm["ess_bulk_min"], "reliable": warm["reliable"]})
    out["scale_curve"] = curve
    out["targets"] = ("fit at CIPS scale <= 10 s wall on 2 cores incl. compilation; min ESS/s >= 5x PyMC default "
                      "NUTS on the unmarginalised model; 180 countries <= 30 s")
    out["load_average_after"] = os.getloadavg()
    return out


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    from benchmarks import write_result

    quick = "--quick" in sys.argv
    res = run(quick=quick)
    write_result("change", res, quick=quick)
    print(json.dumps(res, indent=1, default=str))
