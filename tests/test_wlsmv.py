"""Tests of cips_stats.factor.wls (WLSMV / DWLS / WLS ordinal CFA).

Reference values: validation/r/polychoric_wlsmv.R, lavaan 0.6-14 on R 4.2.2, psych's
bfi items (tests/reference/bfi.csv, tests/reference/wlsmv_*.json with the R calls).

Tolerances (achieved in brackets): estimates and std.all 1e-4 absolute [1e-5: lavaan's
own convergence tolerance], standard errors 1e-3 relative [3e-5], chi2 1e-5 relative
[1e-7], scaled chi2 and scaling factor 1e-4 relative [7e-6], CFI/TLI/RMSEA/SRMR 1e-5
absolute [1e-6].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs

# Reference fits are judged for their numbers; the warnings themselves are tested explicitly
# (test_cfa.py: test_poor_fit_and_wrong_sign_warn).
pytestmark = pytest.mark.filterwarnings("ignore::cips_stats.errors.PoorFitWarning",
                                        "ignore::cips_stats.errors.NumericalWarning")
from cips_stats.factor.wls import fit_wlsmv

REF = Path(__file__).parent / "reference"

FIVE = """
A =~ A1 + A2 + A3 + A4 + A5
C =~ C1 + C2 + C3 + C4 + C5
E =~ E1 + E2 + E3 + E4 + E5
N =~ N1 + N2 + N3 + N4 + N5
O =~ O1 + O2 + O3 + O4 + O5
"""
TWO = "A =~ A1 + A2 + A3 + A4 + A5\nC =~ C1 + C2 + C3 + C4 + C5"
TEN = ["A1", "A2", "A3", "A4", "A5", "C1", "C2", "C3", "C4", "C5"]

# fixture name -> (rows, columns, model, keyword arguments)
CASES = {
    "wlsmv_bfi5": (None, None, FIVE, {}),
    "wlsmv_bfi2_missing": (800, TEN, TWO, {}),
    "wlsmv_bfi2_stdlv": (800, TEN, TWO, {"std_lv": True}),
    "wlsmv_bfi2_dwls": (800, TEN, TWO, {"estimator": "DWLS"}),
    "wlsmv_bfi2_wls": (800, TEN, TWO, {"estimator": "WLS"}),
    "wlsmv_bfi2_groups": (None, TEN + ["gender"], TWO,
                          {"group": "gender", "group_equal": ("thresholds", "loadings")}),
    "wlsmv_bfi2_configural": (None, TEN + ["gender"], TWO, {"group": "gender"}),
    "wlsmv_bfi2_weights": (800, TEN + ["w"], TWO, {"weight": "w"}),
}

FIT_PAIRS_ABS = [("cfi", "cfi"), ("tli", "tli"), ("rmsea", "rmsea"), ("srmr", "srmr"),
                 ("rmsea_pvalue", "rmsea.pvalue"), ("cfi_scaled", "cfi.scaled"),
                 ("tli_scaled", "tli.scaled"), ("rmsea_scaled", "rmsea.scaled")]


@pytest.fixture(scope="module")
def bfi():
    d = pd.read_csv(REF / "bfi.csv")
    d["w"] = np.resize([0.5, 1.0, 2.0, 1.5], len(d))   # the weights of validation/r/polychoric_wlsmv.R
    return d


@pytest.fixture(scope="module")
def fits(bfi):
    cache = {}

    def get(name):
        if name not in cache:
            rows, cols, model, kw = CASES[name]
            d = bfi if cols is None else bfi[cols]
            if cols is None:
                d = d.drop(columns=["gender", "w"])
            if rows is not None:
                d = d.iloc[:rows]
            cache[name] = fit_wlsmv(d, model, **kw)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(CASES))
def test_matches_lavaan(name, fits):
    ref = json.loads((REF / f"{name}.json").read_text())
    res = fits(name)
    assert res.converged
    assert list(res.n_obs) == list(np.atleast_1d(ref["nobs"]))
    pr = pd.DataFrame(ref["parameters"])
    key = ["lhs", "op", "rhs", "group"]
    mp = res.parameters.merge(pr, on=key, suffixes=("", "_r"), how="outer", indicator=True)
    assert (mp["_merge"] == "both").all(), mp.loc[mp["_merge"] != "both", key]
    np.testing.assert_allclose(mp["est"], mp["est_r"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(mp["std_all"], mp["std.all"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(mp["std_lv"], mp["std.lv"], rtol=0, atol=1e-4)
    has_se = mp["se_r"] > 0
    np.testing.assert_allclose(mp.loc[has_se, "se"], mp.loc[has_se, "se_r"], rtol=1e-3)
    fm, f = ref["fit_measures"], res.fit
    assert f["df"] == fm["df"] and f["npar"] == fm["npar"] and f["baseline_df"] == fm["baseline.df"]
    assert f["chi2"] == pytest.approx(fm["chisq"], rel=1e-5)
    assert f["baseline_chi2"] == pytest.approx(fm["baseline.chisq"], rel=1e-5)
    assert f["fmin"] == pytest.approx(fm["fmin"], rel=1e-5)
    for ours, theirs in FIT_PAIRS_ABS:
        if fm.get(theirs) is None:
            assert ours not in f
            continue
        assert f[ours] == pytest.approx(fm[theirs], abs=1e-5), ours
    lo, hi = f["rmsea_ci"]
    assert (lo, hi) == pytest.approx((fm["rmsea.ci.lower"], fm["rmsea.ci.upper"]), abs=1e-5)
    if res.estimator == "WLSMV":
        assert f["chi2_scaled"] == pytest.approx(fm["chisq.scaled"], rel=1e-4)
        assert f["scaling_factor"] == pytest.approx(fm["chisq.scaling.factor"], rel=1e-4)
        assert f["shift"] == pytest.approx(ref["shift"], rel=1e-3)
        assert f["baseline_chi2_scaled"] == pytest.approx(fm["baseline.chisq.scaled"], rel=1e-4)
        assert f["pvalue_scaled"] == pytest.approx(fm["pvalue.scaled"], abs=1e-6)
        # issue 10: the robust (cat-ML) measures and WRMR under lavaan's names; NA in lavaan -> NaN here
        for ours, theirs in (("cfi_robust", "cfi.robust"), ("tli_robust", "tli.robust"),
                             ("rmsea_robust", "rmsea.robust"), ("wrmr", "wrmr")):
            if fm.get(theirs) is None:
                assert np.isnan(f[ours]), ours
            else:
                assert f[ours] == pytest.approx(fm[theirs], abs=1e-5), ours


def test_group_order_and_labels(fits):
    res = fits("wlsmv_bfi2_groups")
    assert res.n_groups == 2 and res.group_labels == ("1", "2")
    # equal loadings and thresholds across groups, free scale factors in group 2
    lam = res.loadings.pivot_table(index=["factor", "item"], columns="group", values="est")
    np.testing.assert_allclose(lam[1], lam[2])
    sc = res.parameters[(res.parameters["op"] == "~*~")]
    assert (sc.loc[sc["group"] == 1, "free"] == 0).all() and (sc.loc[sc["group"] == 2, "free"] > 0).all()


def test_dwls_same_estimates_as_wlsmv_other_inference(fits):
    a, b = fits("wlsmv_bfi2_missing"), fits("wlsmv_bfi2_dwls")
    np.testing.assert_allclose(a.parameters["est"], b.parameters["est"], atol=1e-8)
    assert "chi2_scaled" in a.fit and "chi2_scaled" not in b.fit
    free = a.parameters["free"] > 0
    assert not np.allclose(a.parameters.loc[free, "se"], b.parameters.loc[free, "se"])


def test_result_shape(fits):
    res = fits("wlsmv_bfi2_missing")
    assert isinstance(res, cs.factor.CFAResult)
    assert set(res.thresholds["item"]) == set(TEN)
    assert res.thresholds.shape[0] == 50
    assert res.implied[0]["sigma"].shape == (10, 10)
    np.testing.assert_allclose(np.diag(res.implied[0]["sigma"]), 1.0)
    d = res.to_dict()
    json.dumps(d)
    assert d["estimator"] == "WLSMV"
    assert res.provenance.method == "cfa_wlsmv"


# ----------------------------------------------------------------------- simulation truth
def _simulate(rng, n, lam, phi, cuts):
    m = lam.shape[1]
    f = rng.multivariate_normal(np.zeros(m), phi, size=n)
    resid_sd = np.sqrt(1 - np.einsum("ij,jk,ik->i", lam, phi, lam))
    ystar = f @ lam.T + rng.standard_normal((n, lam.shape[0])) * resid_sd
    return np.digitize(ystar, cuts).astype(float) + 1


def test_recovers_known_loadings_with_missing_answers():
    rng = np.random.default_rng(2024)
    lam = np.zeros((8, 2))
    lam[:4, 0] = [0.8, 0.7, 0.6, 0.75]
    lam[4:, 1] = [0.65, 0.7, 0.8, 0.5]
    phi = np.array([[1.0, 0.4], [0.4, 1.0]])
    cuts = [-1.5, -0.5, 0.3, 1.2]
    y = _simulate(rng, 4000, lam, phi, cuts)
    y[rng.random(y.shape) < 0.06] = np.nan
    cols = [f"y{i + 1}" for i in range(8)]
    df = pd.DataFrame(y, columns=cols)
    res = fit_wlsmv(df, "f1 =~ y1 + y2 + y3 + y4\nf2 =~ y5 + y6 + y7 + y8", std_lv=True)
    est = res.loadings["est"].to_numpy()
    se = res.loadings["se"].to_numpy()
    truth = np.concatenate([lam[:4, 0], lam[4:, 1]])
    assert np.all(np.abs(est - truth) < 4 * se), (est, truth, se)
    cov = res.parameters.query("lhs == 'f1' and rhs == 'f2'")["est"].iloc[0]
    assert abs(cov - 0.4) < 0.06
    th = res.thresholds.groupby("threshold")["est"].mean().to_numpy()
    np.testing.assert_allclose(th, cuts, atol=0.06)
    # correctly specified model: the scaled test should not reject at 0.1%
    assert res.fit["pvalue_scaled"] > 0.001
    assert res.fit["cfi_scaled"] > 0.99


# ----------------------------------------------------------------------- errors
def test_unsupported_options_raise(bfi):
    d = bfi[TEN].iloc[:300]
    with pytest.raises(cs.ModelError, match="parameterization"):
        fit_wlsmv(d, TWO, parameterization="theta")
    with pytest.raises(cs.ModelError, match="estimator"):
        fit_wlsmv(d, TWO, estimator="ML")
    with pytest.raises(cs.ModelError, match="ordinal items only"):
        fit_wlsmv(d, TWO, ordered=TEN[:9])
    with pytest.raises(cs.DataError, match="group="):
        fit_wlsmv(d, TWO, group="nope")
    with pytest.raises(cs.DataError, match="missing="):
        fit_wlsmv(d, TWO, missing="fiml")


def test_category_missing_in_one_group_is_explained(bfi):
    d = bfi[TEN + ["gender"]].iloc[:600].copy()
    d.loc[(d["gender"] == 1) & (d["A1"] == 6), "A1"] = 5
    with pytest.raises(cs.ModelError, match="category 6 in group"):
        fit_wlsmv(d, TWO, group="gender")


def test_parameter_table_and_model_inputs_give_the_same_fit(bfi, fits):
    from cips_stats.factor.model import CFAModel
    from cips_stats.factor.syntax import build_partable

    d = bfi[TEN].iloc[:800]
    pt = build_partable(TWO, observed=TEN, ordered={c: 6 for c in TEN}, meanstructure=True)
    a = fit_wlsmv(d, pt)
    b = fit_wlsmv(d, CFAModel(pt))
    ref = fits("wlsmv_bfi2_missing")
    np.testing.assert_allclose(a.parameters["est"], ref.parameters["est"], atol=1e-10)
    np.testing.assert_allclose(b.parameters["se"], ref.parameters["se"], atol=1e-10)
    with pytest.raises(cs.ModelError, match="groups"):
        fit_wlsmv(bfi[TEN + ["gender"]], pt, group="gender")


def test_difference_test_matches_lavtestlrt(fits):
    from cips_stats.factor.wls import difference_test

    ref = json.loads((REF / "wlsmv_difftest_groups.json").read_text())
    out = difference_test(fits("wlsmv_bfi2_groups"), fits("wlsmv_bfi2_configural"))
    assert out["delta_df"] == ref["df_diff"]
    assert out["delta_chi2"] == pytest.approx(ref["chisq_diff"], rel=1e-4)   # achieved 8e-6
    assert out["p_value"] == pytest.approx(ref["pvalue"], rel=1e-3)
    with pytest.raises(cs.ModelError, match="more degrees of freedom"):
        difference_test(fits("wlsmv_bfi2_configural"), fits("wlsmv_bfi2_groups"))
    with pytest.raises(cs.ModelError, match="same sample statistics"):
        difference_test(fits("wlsmv_bfi2_groups"), fits("wlsmv_bfi5"))


@pytest.mark.slow
def test_robust_se_calibration_and_scaled_test_size():
    """Monte Carlo: robust SEs match the sampling SD and the scaled-shifted test keeps its size."""
    rng = np.random.default_rng(77)
    lam = np.zeros((8, 2))
    lam[:4, 0] = [0.8, 0.7, 0.6, 0.75]
    lam[4:, 1] = [0.65, 0.7, 0.8, 0.5]
    phi = np.array([[1.0, 0.4], [0.4, 1.0]])
    cuts = [-1.5, -0.5, 0.3, 1.2]
    cols = [f"y{i + 1}" for i in range(8)]
    model = "f1 =~ y1 + y2 + y3 + y4\nf2 =~ y5 + y6 + y7 + y8"
    est, se, rej = [], [], []
    for _ in range(200):
        y = _simulate(rng, 500, lam, phi, cuts)
        y[rng.random(y.shape) < 0.05] = np.nan
        res = fit_wlsmv(pd.DataFrame(y, columns=cols), model, std_lv=True)
        est.append(res.loadings["est"].to_numpy())
        se.append(res.loadings["se"].to_numpy())
        rej.append(res.fit["pvalue_scaled"] < 0.05)
    ratio = np.mean(se, axis=0) / np.std(est, axis=0, ddof=1)
    # 200 replicates: the SD is known to ~5%
    assert np.all(np.abs(ratio - 1) < 0.15), ratio
    # size of the 5% test: Monte Carlo SE sqrt(.05 * .95 / 200) = 0.015
    assert 0.01 <= np.mean(rej) <= 0.10, np.mean(rej)


# ---------------------------------------------------------------- issue 10
def test_cat_ml_robust_fit_measures_match_lavaan():
    # cfi.robust, tli.robust, rmsea.robust (CI, p) by lavaan 0.6-14's cat-ML route (Savalei 2021), wrmr and
    # srmr_bentler_nomean, one group and two (validation/r/factor_issue10.R)
    ref = json.loads((REF / "wlsmv_bfi_ne_robust.json").read_text())
    bfi = pd.read_csv(REF / "bfi.csv")
    items = ref["items"]
    for key, kw in (("single", {}), ("groups", {"group": "gender"})):
        res = fit_wlsmv(bfi[items + (["gender"] if kw else [])], ref["model"], missing="listwise", **kw)
        fm = ref[key]
        for ours, theirs in (("cfi_robust", "cfi.robust"), ("tli_robust", "tli.robust"),
                             ("rmsea_robust", "rmsea.robust"), ("wrmr", "wrmr"),
                             ("srmr_bentler_nomean", "srmr_bentler_nomean"), ("rmsea_pvalue_scaled", "rmsea.pvalue.scaled")):
            assert res.fit[ours] == pytest.approx(fm[theirs], rel=1e-5, abs=1e-6), (key, ours)
        lo, hi = res.fit["rmsea_ci_robust"]
        assert (lo, hi) == pytest.approx((fm["rmsea.ci.lower.robust"], fm["rmsea.ci.upper.robust"]), rel=1e-5)
        assert res.fit["rmsea_pvalue_robust"] == pytest.approx(fm["rmsea.pvalue.robust"], abs=1e-8)


def test_unequal_groups_rescale_weights_per_group_as_lavaan():
    # lavaan weighs group g's W by n_g/(n_g - 1) (and Gamma by its inverse) in the sandwich and the scaled
    # test, and divides by N - G: SE of O=~O3 0.1004952 (it was 0.1005271 with one N/(N - G) factor)
    ref = json.loads((REF / "wlsmv_bfi_education_groups.json").read_text())
    d = pd.read_csv(REF / "bfi_education_o.csv")
    res = fit_wlsmv(d, "O =~ O1 + O2 + O3 + O4 + O5", group="education", group_equal=("loadings", "thresholds"),
                    missing="listwise")
    assert res.n_obs == tuple(ref["nobs"]) and res.group_labels == tuple(ref["group_labels"])
    pe = pd.DataFrame(ref["parameters"])
    m = pe.merge(res.parameters, on=["lhs", "op", "rhs", "group"], suffixes=("_r", ""))
    m = m[m["se_r"] > 0]
    assert len(m) >= 20
    assert np.max(np.abs(m["est"] - m["est_r"])) < 1e-4
    assert np.max(np.abs(m["se"] / m["se_r"] - 1)) < 1e-4
    o3 = m[(m["op"] == "=~") & (m["rhs"] == "O3") & (m["group"] == 1)]
    assert float(o3["se"].iloc[0]) == pytest.approx(0.1004952, abs=2e-7)
    for ours, theirs in (("chi2", "chisq"), ("chi2_scaled", "chisq.scaled"), ("cfi_scaled", "cfi.scaled"),
                         ("rmsea_scaled", "rmsea.scaled")):
        assert res.fit[ours] == pytest.approx(ref["fit"][theirs], rel=1e-4), ours
    # lavaan's cat-ML robust measures are not defined with equal thresholds (free scale factors): NA there
    assert ref["fit"]["cfi.robust"] is None and np.isnan(res.fit["cfi_robust"])
    assert any(f.code == "robust_fit_unavailable" for f in res.flags)


def test_quasi_newton_optimiser_and_per_sample_statistics(fits):
    # issue 10 item 4 (speed of ordinal ladders): bfi's five factors misfit (chi2 ~ 6800), where plain
    # Gauss-Newton converges linearly (24 iterations to 1e-10); the structured quasi-Newton correction
    # reaches the same minimum (lavaan's, test_matches_lavaan) in clearly fewer
    res = fits("wlsmv_bfi5")
    assert res.converged and res.iterations <= 18
    # statistics that depend on the sample alone are computed once per (cached) sample and reused
    groups, configural = fits("wlsmv_bfi2_groups"), fits("wlsmv_bfi2_configural")
    assert groups._state.sample is configural._state.sample
    keys = {k[0] for k in configural._state.sample.memo}
    assert {"baseline_scaled", "trace_wgamma"} <= keys
    assert groups.fit["baseline_chi2_scaled"] == configural.fit["baseline_chi2_scaled"]
