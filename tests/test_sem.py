"""Structural regressions (``~``) and defined parameters (``:=``): issue 10 item 7.

Reference: lavaan 0.6-14 ``sem()`` on PoliticalDemocracy (Bollen 1989), made by
validation/r/factor_issue10.R (tests/reference/sem_political_democracy.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.factor._defined import evaluate
from cips_stats.factor.model import CFAModel
from cips_stats.factor.syntax import build_partable, defined_parameters

REF = Path(__file__).parent / "reference"
pytestmark = pytest.mark.filterwarnings("ignore::cips_stats.errors.PoorFitWarning")


@pytest.fixture(scope="module")
def pd_ref():
    return json.loads((REF / "sem_political_democracy.json").read_text())


@pytest.fixture(scope="module")
def pd_data():
    return pd.read_csv(REF / "political_democracy.csv")


@pytest.mark.parametrize("estimator,fit_key,par_key", [("ML", "fit", "parameters"),
                                                        ("MLR", "fit_mlr", "parameters_mlr")])
def test_political_democracy_matches_lavaan_sem(pd_ref, pd_data, estimator, fit_key, par_key):
    res = cs.factor.sem(pd_data, pd_ref["model"], estimator=estimator)
    assert res.converged
    fm = pd_ref[fit_key]
    assert res.fit["df"] == fm["df"] and res.fit["npar"] == fm["npar"]
    for ours, theirs in (("chi2", "chisq"), ("loglik", "logl"), ("bic", "bic")):
        assert res.fit[ours] == pytest.approx(fm[theirs], rel=1e-6), ours
    for ours, theirs in (("cfi", "cfi"), ("tli", "tli"), ("rmsea", "rmsea"), ("srmr", "srmr")):
        assert res.fit[ours] == pytest.approx(fm[theirs], abs=1e-5), ours
    if estimator == "MLR":
        for ours, theirs in (("chi2_scaled", "chisq.scaled"), ("cfi_robust", "cfi.robust"),
                             ("rmsea_robust", "rmsea.robust")):
            assert res.fit[ours] == pytest.approx(fm[theirs], rel=1e-5), ours
    pe = pd.DataFrame(pd_ref[par_key]).assign(std=pd_ref["std_all"])
    m = pe.merge(res.parameters, on=["lhs", "op", "rhs"], suffixes=("_r", ""))
    assert len(m) == len(pe) == 36                       # 34 parameters + 2 defined
    # lavaan stops its optimiser a little early (our fmin is lower by 3e-10): relative 1e-4
    scale = np.maximum(1.0, np.abs(m["est_r"]))
    assert np.max(np.abs(m["est"] - m["est_r"]) / scale) < 1e-4
    has = m["se_r"] > 0
    assert np.max(np.abs(m.loc[has, "se"] / m.loc[has, "se_r"] - 1)) < 1e-4
    assert np.max(np.abs(m["std_all"] - m["std"])) < 1e-4
    assert set(m["op"]) >= {"=~", "~", "~~", ":="} and (m["op"] == "~").sum() == 3


def test_defined_parameters_are_functions_of_labels(pd_ref, pd_data):
    res = cs.factor.cfa(pd_data, pd_ref["model"])
    p = res.parameters.set_index("label")
    g1, g2, g3 = (float(p.loc[k, "est"]) for k in ("g1", "g2", "g3"))
    assert float(p.loc["indirect", "est"]) == pytest.approx(g1 * g3, rel=1e-12)
    assert float(p.loc["total", "est"]) == pytest.approx(g2 + g1 * g3, rel=1e-12)
    assert int(p.loc["indirect", "group"]) == 0 and p.loc["indirect", "op"] == ":="
    lo, hi = float(p.loc["indirect", "ci_low"]), float(p.loc["indirect", "ci_high"])
    assert lo < g1 * g3 < hi


def test_regression_jacobian_matches_finite_differences(pd_ref, pd_data):
    pt = build_partable(pd_ref["model"], meanstructure=True)
    m = CFAModel(pt)
    rng = np.random.default_rng(3)
    theta = m.start_values([np.cov(pd_data[m.ov_names].to_numpy().T)], [pd_data[m.ov_names].mean().to_numpy()])
    theta = theta + rng.normal(scale=0.05, size=theta.size)
    J = m.jacobian(theta)[0]
    r, c = np.tril_indices(m.p)
    h = 1e-6
    for k in np.flatnonzero(pt.loc[pt["free"] > 0].groupby("free")["op"].first().to_numpy() == "~"):
        e = np.zeros_like(theta)
        e[k] = h
        up, dn = m.implied(theta + e)[0], m.implied(theta - e)[0]
        from cips_stats.factor.model import vech
        num_s = (vech(up["sigma"]) - vech(dn["sigma"])) / (2 * h)
        num_m = (up["mu"] - dn["mu"]) / (2 * h)
        np.testing.assert_allclose(J["sigma"][:, k], num_s, atol=1e-6)
        np.testing.assert_allclose(J["mu"][:, k], num_m, atol=1e-6)


def test_syntax_of_regressions_and_definitions():
    pt = build_partable("a =~ x1 + x2 + x3\nb =~ x4 + x5 + x6\nc =~ x7 + x8 + x9\nd =~ y1 + y2 + y3\n"
                        "c ~ a\nd ~ a + b")
    cov = {(l, r) for l, o, r in zip(pt["lhs"], pt["op"], pt["rhs"]) if o == "~~" and l != r}
    # lavaan: covariances among exogenous factors and among pure outcomes only
    assert cov == {("a", "b"), ("c", "d")}
    assert set(pt.loc[pt["op"] == "~", "rhs"]) == {"a", "b"}
    assert defined_parameters("f =~ x + y\nab := a*b; t := ab + 1") == [("ab", "a*b"), ("t", "ab + 1")]
    with pytest.raises(cs.ModelError, match="latent variables only"):
        build_partable("f =~ x1 + x2 + x3\nf ~ z")
    with pytest.raises(cs.ModelError, match="no label"):
        evaluate("a*q", {"a": 1.0})
    with pytest.raises(cs.ModelError, match="arithmetic"):
        evaluate("__import__('os')", {})
    assert evaluate("exp(log(2)) * a ^ 2", {"a": 3.0}) == pytest.approx(18.0)


def test_ordinal_sem_runs_with_wlsmv():
    # the same machinery under WLSMV: a latent regression among ordinal factors
    rng = np.random.default_rng(4)
    f1 = rng.normal(size=2000)
    f2 = 0.6 * f1 + rng.normal(scale=0.8, size=2000)
    cols = {}
    for j, lam in enumerate((0.8, 0.7, 0.6)):
        cols[f"a{j}"] = np.digitize(lam * f1 + rng.normal(scale=0.6, size=2000), [-0.5, 0.5]) + 1
        cols[f"b{j}"] = np.digitize(lam * f2 + rng.normal(scale=0.6, size=2000), [-0.5, 0.5]) + 1
    df = pd.DataFrame(cols)
    res = cs.factor.sem(df, "F1 =~ a0 + a1 + a2\nF2 =~ b0 + b1 + b2\nF2 ~ g*F1\nG := 2*g",
                        estimator="WLSMV", ordered=True, std_lv=True)
    reg = res.parameters[res.parameters["op"] == "~"].iloc[0]
    # standardised: var(F2) = 0.36 + 0.64 = 1, so the standardised slope is 0.6
    assert reg["std_all"] == pytest.approx(0.6, abs=0.06)
    dfn = res.parameters[res.parameters["op"] == ":="].iloc[0]
    assert dfn["est"] == pytest.approx(2 * reg["est"]) and dfn["se"] == pytest.approx(2 * reg["se"], rel=1e-4)
