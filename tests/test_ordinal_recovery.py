"""Ordinal CFA (WLSMV) vs ML on the raw codes: recovery of the true standardised loadings.

A quick version of ``validation/study_ordinal_recovery.py`` (which runs 200 replications per
scale): a few simulated officials cells, three key factors x five items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from validation.study_ordinal_recovery import replicate, study_instrument, summarise

SEEDS = range(101, 109)  # 8 replications


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return pd.concat([replicate(s, points=5, n=500) for s in SEEDS], ignore_index=True)


def test_truth_is_the_standardised_latent_response_loading():
    # lambda / sqrt(lambda^2 + psi) with psi = 1 - lambda^2 is lambda itself: the study's truth
    # must agree with the generator's loadings, item by item.
    sim = cs.simulate(seed=101, instrument=study_instrument(5), n_countries=1, n_repeat=0,
                      n_officials=500, n_private=2)
    rec = replicate(101, points=5, n=500, estimators=("WLSMV",))
    lam = sim.truth["loadings"].set_index("item")["loading"]
    np.testing.assert_allclose(rec["true"].to_numpy(), lam.loc[rec["item"]].to_numpy(), rtol=1e-12)
    # one latent profile: the simulated cell has no demographic mixture
    assert sim.truth["composition"]["share"].eq(1.0).all()


def test_wlsmv_loading_is_std_all_with_std_lv():
    # the WLSMV Wald interval used for coverage is that of est; it must be std_all's.
    inst = study_instrument(5)
    sim = cs.simulate(seed=102, instrument=inst, n_countries=1, n_repeat=0, n_officials=400, n_private=2)
    items = [i for f in ("leadership", "regulatory") for i in inst.factor_items(f, group="officials")]
    data = sim.data.frame.loc[sim.data.frame["group"] == "officials", items]
    res = cs.factor.cfa(data, inst.model_syntax("officials", factors=["leadership", "regulatory"]),
                        estimator="WLSMV", ordered=True, missing="pairwise", std_lv=True)
    lo = res.parameters[res.parameters["op"] == "=~"]
    np.testing.assert_allclose(lo["est"], lo["std_all"], atol=1e-10)


def test_wlsmv_recovers_loadings_and_ml_on_codes_attenuates(records):
    assert records["converged"].all()
    tab = summarise(records).set_index("estimator")
    w, m = tab.loc["WLSMV"], tab.loc["ML"]
    # WLSMV: mean bias within 3 Monte Carlo SE of 0 (and small in absolute terms)
    assert abs(w["bias"]) < 3 * w["bias_mc_se"] + 0.005
    assert abs(w["bias"]) < 0.02
    # ML on the codes attenuates: negative bias, clearly beyond its Monte Carlo error
    assert m["bias"] < -3 * m["bias_mc_se"]
    assert m["bias"] < -0.02
    # per item position WLSMV is closer to the truth on average, and has the smaller RMSE
    assert w["mean_abs_item_bias"] < m["mean_abs_item_bias"]
    assert w["rmse"] < m["rmse"]
    # WLSMV intervals cover the truth near the nominal rate (120 intervals; generous band)
    assert 0.85 <= w["coverage"] <= 1.0
