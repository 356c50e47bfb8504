"""cs.claims.audit with the hierarchical change model (cs.change.fit): the posterior rule.

The survey and the model are those of tests/test_change_model.py (same shapes), so that in a whole-suite
run the compiled change model comes from the sampler cache.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import cips_stats as cs
from cips_stats import claims

FACTORS = ["leadership", "transparency", "audit", "morale"]


@pytest.fixture(scope="module")
def fitted():
    sim = cs.simulate(seed=21, n_countries=8, n_repeat=6, n_officials=150, n_private=110, support_effect=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, n_boot=400, seed=4)
    sup = sim.truth["supported"]
    sup = sup[sup["factor"].isin(FACTORS)]
    cc = cs.change.cell_changes(ind)
    model = cs.change.fit(ind, supported=sup, seed=5, draws=1000, tune=1000)
    return sup, cc, model


def test_posterior_rule_shares_and_true_share(fitted):
    sup, cc, model = fitted
    t0 = time.perf_counter()
    a = claims.audit(model, cell_changes=cc, supported=sup, n_perm=500, n_boot=200, n_null=200, seed=2)
    assert time.perf_counter() - t0 < 30
    post = a.shares[a.shares["rule"] == "posterior"]
    assert set(post["set"]) == {"supported", "unsupported", "difference"}
    assert post[["true_share", "true_ci_low", "true_ci_high"]].notna().all().all()
    assert (post["true_ci_low"] <= post["true_ci_high"]).all()
    # the true-share posterior is the model's own share_improved (same draws)
    own = model.share_improved.set_index(["group", "set"])["mean"]
    for r in post.itertuples():
        assert r.true_share == pytest.approx(own.loc[(r.group, r.set)], abs=1e-9)
    # the posterior rule's decisions are the model's P(change > 0) > 0.95
    cells = a.cells.merge(model.prob_improved[["country", "group", "factor", "p_improved"]],
                          on=["country", "group", "factor"], suffixes=("", "_m"))
    assert len(cells) == len(a.cells)
    np.testing.assert_array_equal(cells["improved_posterior"], cells["p_improved_m"] > claims.POSTERIOR_IMPROVED)
    assert {"point", "fdr", "posterior"} <= set(a.tests["rule"])
    se = a.baseline[a.baseline["quantity"] == "support_effect_change_model"].set_index("group")
    ref = model.support_effect.set_index("group")
    for g in se.index:
        assert se.loc[g, "estimate"] == pytest.approx(ref.loc[g, "mean"])
    assert "change model support effect" in a.verdict
    # the model's pooled "all" row (both groups together, documented in ChangeResult) is not one of the audit's
    # groups: the audit reports each group's own support effect and nothing pooled
    assert set(se.index) == set(a.shares["group"]) and "all" not in set(a.baseline["group"])
    assert "posterior" in set(a.permutation["rule"])


def test_model_alone_gives_the_posterior_rule(fitted):
    sup, cc, model = fitted
    a = claims.audit(model, supported=sup, rules=("posterior",), tests=("permutation", "cmh"), n_perm=200,
                     n_boot=50, n_null=50, seed=1)
    assert set(a.shares["rule"]) == {"posterior"}
    # the model carries the cell changes it was fitted to: the point rule needs nothing more
    alone = claims.audit(model, supported=sup, rules=("point",), tests=("permutation",), n_perm=200, n_boot=50,
                         n_null=50, seed=1)
    given = claims.audit(model, cell_changes=cc, supported=sup, rules=("point",), tests=("permutation",),
                         n_perm=200, n_boot=50, n_null=50, seed=1)
    assert alone.shares[["group", "set", "n_cells", "n_improved"]].equals(
        given.shares[["group", "set", "n_cells", "n_improved"]])
