"""Tests of cs.factor.cfa (ML, MLR, FIML) against lavaan 0.6-14 and by internal identities.

Reference values: tests/reference/cfa_*.json, written by ``Rscript validation/r/cfa.R``
(each file records the lavaan call, R and lavaan versions, date and tolerances) on
HolzingerSwineford1939 (cfa_hs1939.csv), the same with values knocked out by a seeded
rule (cfa_hs1939_missing.csv), a numpy-simulated 10-factor survey (cfa_sim10.csv) and
the officials of one cs.simulate() country-iteration (cfa_simcips.csv; FIML, 50 items).
Binding tolerances: chi2 1e-3, CFI/TLI/RMSEA/SRMR 1e-4, estimates and SEs 1e-3.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs

# Reference fits are judged for their numbers; the warnings themselves are tested explicitly
# (test_cfa.py: test_poor_fit_and_wrong_sign_warn).
pytestmark = pytest.mark.filterwarnings("ignore::cips_stats.errors.PoorFitWarning",
                                        "ignore::cips_stats.errors.NumericalWarning")
from cips_stats.factor.ml import MLProblem
from cips_stats.factor.model import CFAModel
from cips_stats.factor.syntax import build_partable

REF = Path(__file__).parent / "reference"
HS = "visual  =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed   =~ x7 + x8 + x9"
TOL_CHI2, TOL_INDEX, TOL_EST, TOL_SE = 1e-3, 1e-4, 1e-3, 1e-3

# our key -> (lavaan fitMeasures key, tolerance)
FIT_MAP = {
    "chi2": ("chisq", TOL_CHI2), "df": ("df", 0), "pvalue": ("pvalue", TOL_INDEX),
    "baseline_chi2": ("baseline.chisq", TOL_CHI2), "baseline_df": ("baseline.df", 0),
    "cfi": ("cfi", TOL_INDEX), "tli": ("tli", TOL_INDEX), "rmsea": ("rmsea", TOL_INDEX),
    "rmsea_pvalue": ("rmsea.pvalue", TOL_INDEX), "srmr": ("srmr", TOL_INDEX),
    "srmr_bentler_nomean": ("srmr_bentler_nomean", TOL_INDEX),
    "loglik": ("logl", TOL_CHI2), "unrestricted_loglik": ("unrestricted.logl", TOL_CHI2),
    "aic": ("aic", TOL_CHI2), "bic": ("bic", TOL_CHI2), "bic2": ("bic2", TOL_CHI2), "npar": ("npar", 0),
    "chi2_scaled": ("chisq.scaled", TOL_CHI2), "scaling_factor": ("chisq.scaling.factor", TOL_INDEX),
    "baseline_chi2_scaled": ("baseline.chisq.scaled", TOL_CHI2),
    "cfi_scaled": ("cfi.scaled", TOL_INDEX), "tli_scaled": ("tli.scaled", TOL_INDEX),
    "cfi_robust": ("cfi.robust", TOL_INDEX), "tli_robust": ("tli.robust", TOL_INDEX),
    "rmsea_scaled": ("rmsea.scaled", TOL_INDEX), "rmsea_robust": ("rmsea.robust", TOL_INDEX),
}


def _hs(missing=False):
    return pd.read_csv(REF / ("cfa_hs1939_missing.csv" if missing else "cfa_hs1939.csv"))


def _sim10():
    df = pd.read_csv(REF / "cfa_sim10.csv")
    return df


CASES = {
    "hs_ml": lambda: (_hs(), HS, {}),
    "hs_mlr": lambda: (_hs(), HS, {"estimator": "MLR"}),
    "hs_ml_stdlv": lambda: (_hs(), HS, {"std_lv": True}),
    "hs_group_loadings": lambda: (_hs(), HS, {"group": "school", "group_equal": ["loadings"]}),
    "hs_group_scalar_mlr": lambda: (_hs(), HS, {"group": "school", "group_equal": ["loadings", "intercepts"],
                                                "group_partial": ["x3~1", "visual=~x2"], "estimator": "MLR"}),
    "hs_fiml": lambda: (_hs(True), HS, {"missing": "fiml"}),
    "hs_fiml_mlr": lambda: (_hs(True), HS, {"missing": "fiml", "estimator": "MLR"}),
    "hs_fiml_mlr_group": lambda: (_hs(True), HS, {"missing": "fiml", "estimator": "MLR", "group": "school",
                                                  "group_equal": ["loadings"]}),
    "sim10_ml": lambda: (_sim10(), None, {}),
    "sim10_mlr": lambda: (_sim10(), None, {"estimator": "MLR"}),
    "simcips_fiml": lambda: (pd.read_csv(REF / "cfa_simcips.csv"), None, {"missing": "fiml"}),
}


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name):
        if name not in cache:
            ref = json.loads((REF / f"cfa_{name}.json").read_text())
            data, model, kw = CASES[name]()
            model = model or ref["model"]
            cache[name] = (cs.factor.cfa(data, model=model, **kw), ref)
        return cache[name]

    return get


def _close(ours, theirs, tol, what):
    assert theirs is not None, what
    assert math.isfinite(ours), f"{what}: ours is not finite"
    assert abs(ours - theirs) <= tol, f"{what}: {ours} vs lavaan {theirs} (tol {tol})"


@pytest.mark.parametrize("name", list(CASES))
def test_fit_measures_match_lavaan(fitted, name):
    res, ref = fitted(name)
    assert res.converged and ref["converged"]
    fm = ref["fit"]
    checked = 0
    for key, (lkey, tol) in FIT_MAP.items():
        if lkey not in fm or key not in res.fit:
            continue
        _close(res.fit[key], fm[lkey], tol, key)
        checked += 1
    lo, hi = res.fit["rmsea_ci"]
    _close(lo, fm["rmsea.ci.lower"], TOL_INDEX, "rmsea_ci lower")
    _close(hi, fm["rmsea.ci.upper"], TOL_INDEX, "rmsea_ci upper")
    if res.estimator == "MLR":
        lo, hi = res.fit["rmsea_ci_robust"]
        _close(lo, fm["rmsea.ci.lower.robust"], TOL_INDEX, "rmsea_ci_robust lower")
        _close(hi, fm["rmsea.ci.upper.robust"], TOL_INDEX, "rmsea_ci_robust upper")
        _close(res.fit["rmsea_pvalue_robust"], fm["rmsea.pvalue.robust"], TOL_INDEX, "rmsea_pvalue_robust")
    assert checked >= (24 if res.estimator == "MLR" else 17)


@pytest.mark.parametrize("name", list(CASES))
def test_parameters_match_lavaan(fitted, name):
    res, ref = fitted(name)
    pe = pd.DataFrame(ref["parameters"])
    if "group" not in pe:
        pe["group"] = 1
    m = pe.merge(res.parameters, on=["lhs", "op", "rhs", "group"], suffixes=("_lav", ""))
    assert len(m) == len(pe) == len(res.parameters)
    np.testing.assert_allclose(m["est"], m["est_lav"], atol=TOL_EST, rtol=0)
    np.testing.assert_allclose(m["se"], m["se_lav"], atol=TOL_SE, rtol=0)
    np.testing.assert_allclose(m["std_all"], m["std.all"].astype(float), atol=TOL_EST, rtol=0)
    np.testing.assert_allclose(m["std_lv"], m["std.lv"].astype(float), atol=TOL_EST, rtol=0)


@pytest.mark.parametrize("name", ["hs_ml", "hs_group_loadings", "hs_mlr", "hs_fiml"])
def test_modindices_match_lavaan(fitted, name):
    res, ref = fitted(name)
    lav = pd.DataFrame(ref["modindices"])
    ours = res.modindices()
    m = lav.merge(ours, on=["lhs", "op", "rhs", "group"], suffixes=("_lav", ""))
    assert len(m) == len(lav) == len(ours)
    np.testing.assert_allclose(m["mi"], m["mi_lav"], atol=1e-3 * max(1.0, m["mi_lav"].max() / 10))
    np.testing.assert_allclose(m["epc"], m["epc_lav"], atol=TOL_EST)
    np.testing.assert_allclose(m["sepc_all"], m["sepc.all"], atol=TOL_EST)
    assert ours["mi"].is_monotonic_decreasing
    assert len(res.modindices(minimum=10)) == int((lav["mi"] >= 10).sum())


def test_fiml_scaled_test_beyond_budget_is_flagged_not_hidden(monkeypatch):
    monkeypatch.setattr(MLProblem, "h1_budget", 1e3)
    res = cs.factor.cfa(_hs(True), model=HS, missing="fiml", estimator="MLR")
    assert math.isnan(res.fit["chi2_scaled"]) and math.isnan(res.fit["cfi_robust"])
    codes = {f.code for f in res.flags}
    assert {"scaled_test_unavailable", "robust_fit_fiml"} <= codes
    assert np.isfinite(res.parameters.loc[res.parameters["free"] > 0, "se"]).all()


@pytest.mark.parametrize("missing, groups", [(False, 1), (True, 1), (True, 2)])
def test_information_observed_matches_numerical(missing, groups):
    d = _hs(missing)
    d = d[d[[f"x{i}" for i in range(1, 10)]].notna().any(axis=1)]
    cm = CFAModel(build_partable(HS, meanstructure=True, n_groups=groups,
                                 group_equal=("loadings", "intercepts") if groups > 1 else ()))
    blocks = [g[cm.ov_names].to_numpy() for _, g in d.groupby("school", sort=False)] if groups > 1 \
        else [d[cm.ov_names].to_numpy()]
    prob = MLProblem(cm, blocks, fiml=missing)
    th = prob.fit().theta + 0.01
    a = prob.observed_information(th)
    b = prob.numerical_information(th)
    np.testing.assert_allclose(a, b, atol=1e-6 * np.abs(b).max())


def test_fiml_on_complete_data_equals_ml_with_means():
    d = _hs()
    a = cs.factor.cfa(d, model=HS, meanstructure=True)
    b = cs.factor.cfa(d, model=HS, missing="fiml")
    assert abs(a.fit["chi2"] - b.fit["chi2"]) < 1e-6
    np.testing.assert_allclose(a.parameters["est"], b.parameters["est"], atol=1e-5)
    assert a.fit["df"] == b.fit["df"] == 24


def test_mlr_has_ml_estimates_and_a_scaled_test():
    d = _hs()
    a = cs.factor.cfa(d, model=HS)
    b = cs.factor.cfa(d, model=HS, estimator="MLR")
    np.testing.assert_allclose(a.parameters["est"], b.parameters["est"], atol=1e-10)
    assert not np.allclose(a.parameters["se"], b.parameters["se"])
    assert b.fit["chi2_scaled"] == pytest.approx(b.fit["chi2"] / b.fit["scaling_factor"])


def test_modindex_of_a_freed_parameter_predicts_the_chi2_drop():
    d = _hs()
    base = cs.factor.cfa(d, model=HS)
    mi = base.modindices()
    top = mi.iloc[0]
    freed = cs.factor.cfa(d, model=HS + f"\n{top.lhs} {top.op} {top.rhs}")
    drop = base.fit["chi2"] - freed.fit["chi2"]
    # the score test approximates the likelihood-ratio drop
    assert drop == pytest.approx(top.mi, rel=0.25)
    est = freed.parameters.query("lhs == @top.lhs and op == @top.op and rhs == @top.rhs")["est"].iloc[0]
    assert np.sign(est) == np.sign(top.epc)


def test_heywood_case_is_flagged():
    # Sample covariance whose just-identified one-factor solution has a negative residual
    # variance: lambda_a^2 psi = s_ab s_ac / s_bc = 1.28 > s_aa = 1, so theta_a = -0.28.
    target = np.array([[1.0, 0.8, 0.8], [0.8, 1.0, 0.5], [0.8, 0.5, 1.0]])
    z = np.random.default_rng(4).normal(size=(300, 3))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / 300).T)      # sample covariance = I
    df = pd.DataFrame(z @ np.linalg.cholesky(target).T, columns=["a", "b", "c"])
    res = cs.factor.cfa(df, model="f =~ b + a + c")
    theta_a = res.parameters.query("op == '~~' and lhs == 'a' and rhs == 'a'")["est"].iloc[0]
    assert theta_a == pytest.approx(-0.28, abs=1e-4)
    codes = {fl.code for fl in res.flags}
    assert {"heywood", "heywood_loading"} <= codes
    ok = cs.factor.cfa(pd.DataFrame(z @ np.linalg.cholesky(0.5 + 0.5 * np.eye(3)).T, columns=["a", "b", "c"]),
                       model="f =~ b + a + c")
    assert not {"heywood", "heywood_loading"} & {fl.code for fl in ok.flags}


def test_result_accessors_and_serialisation(fitted):
    res, _ = fitted("hs_mlr")
    assert list(res.parameters.columns[:4]) == ["lhs", "op", "rhs", "group"]
    for col in ("est", "se", "z", "pvalue", "ci_low", "ci_high", "std_lv", "std_all", "label"):
        assert col in res.parameters
    assert len(res.loadings) == 9 and set(res.loadings["factor"]) == {"visual", "textual", "speed"}
    assert res.thresholds is None
    assert res.estimate.index[0] == "visual =~ x2"
    assert res.fit_frame().shape[0] == 1
    text = str(res.summary())
    assert "MLR" in text and "chi2_scaled" in text
    d = json.loads(res.to_json())
    assert d["kind"] == "CFAResult" and "_state" not in d
    assert res.provenance.options["estimator"] == "MLR"
    sig = res.implied[0]["sigma"]
    assert list(sig.columns) == [f"x{i}" for i in range(1, 10)]


def test_multigroup_labels_and_n_obs(fitted):
    res, ref = fitted("hs_group_loadings")
    assert res.group_labels == ("Pasteur", "Grant-White")
    assert res.n_obs == tuple(ref["nobs"])
    assert res.n_groups == 2


def test_bad_input_errors():
    d = _hs()
    with pytest.raises(cs.ModelError, match="not in the data"):
        cs.factor.cfa(d, model="f =~ x1 + x2 + nope")
    with pytest.raises(cs.ModelError, match="estimator"):
        cs.factor.cfa(d, model=HS, estimator="GLS")
    with pytest.raises(cs.ModelError, match="missing"):
        cs.factor.cfa(d, model=HS, missing="pairwise")
    with pytest.raises(cs.ModelError, match="not identified"):
        cs.factor.cfa(d, model="f =~ x1 + x2\nx1 ~~ x2")
    with pytest.raises(cs.ModelError, match="WLSMV"):
        cs.factor.cfa(d, model=HS, ordered=["x1"])
    with pytest.raises(cs.ModelError, match="model= is required"):
        cs.factor.cfa(d)
    bad = d.copy()
    bad["x2"] = bad["x2"].astype(object)
    bad.loc[5, "x2"] = "seven"
    with pytest.raises(cs.DataError) as ei:
        cs.factor.cfa(bad, model=HS)
    assert ei.value.problems[0].column == "x2" and ei.value.problems[0].row == 6
    const = d.assign(x3=1.0)
    with pytest.raises(cs.DataError, match="zero variance"):
        cs.factor.cfa(const, model=HS)
    with pytest.raises(cs.DataError, match="group="):
        cs.factor.cfa(d, model=HS, group="nope")
    with pytest.raises(cs.DataError, match="DataFrame"):
        cs.factor.cfa(d.to_numpy(), model=HS)


def test_listwise_deletion_is_recorded():
    d = _hs(True)
    res = cs.factor.cfa(d, model=HS)
    n_complete = int(d[[f"x{i}" for i in range(1, 10)]].notna().all(axis=1).sum())
    assert res.n_obs == (n_complete,)
    assert any(fl.code == "rows_dropped" for fl in res.flags)


def test_survey_data_fits_instrument_model_per_group():
    sim = cs.simulate(seed=5, n_countries=2, n_repeat=1, n_officials=200, n_private=200)
    res = cs.factor.cfa(sim.data)
    assert isinstance(res, cs.factor.CFAResults)
    assert set(res.keys()) == {"officials", "private"}
    off = res["officials"]
    assert off.missing == "fiml" and off.converged
    assert len(off.loadings) == 50 and len(res["private"].loadings) == 40
    n_off = int((sim.data.frame["group"] == "officials").sum())
    assert sum(off.n_obs) <= n_off
    tab = res.to_frame()
    assert list(tab["group"]) == ["officials", "private"] and "cfi" in tab
    # the simulated loadings are positive: every standardised loading should be
    assert (off.loadings["std_all"] > 0).all()
    one = cs.factor.cfa(sim.data, respondent_group="private", missing="listwise")
    assert isinstance(one, cs.factor.CFAResult) and one.missing == "listwise"
    assert sum(one.n_obs) < sum(res["private"].n_obs)        # listwise keeps fewer rows than FIML


def test_fit_is_deterministic():
    d = _hs(True)
    a = cs.factor.cfa(d, model=HS, missing="fiml")
    b = cs.factor.cfa(d, model=HS, missing="fiml")
    assert a.fit["chi2"] == b.fit["chi2"]
    assert np.array_equal(a.parameters["se"].to_numpy(), b.parameters["se"].to_numpy())


def test_ml_recovers_true_loadings_in_a_large_sample():
    # True 3-factor model (validation/study_cfa_recovery.py replicates this at n = 300, 1000).
    lam = np.array([0.8, 0.7, 0.6, 0.5, 0.75, 0.65, 0.6, 0.55, 0.8, 0.6, 0.7, 0.5])
    phi = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])
    L = np.zeros((12, 3))
    for j in range(3):
        L[4 * j:4 * j + 4, j] = lam[4 * j:4 * j + 4]
    rng = np.random.default_rng(99)
    y = rng.normal(size=(4000, 3)) @ np.linalg.cholesky(phi).T @ L.T + rng.normal(size=(4000, 12)) * np.sqrt(1 - lam ** 2)
    df = pd.DataFrame(y, columns=[f"x{i + 1}" for i in range(12)])
    model = "f1 =~ x1 + x2 + x3 + x4\nf2 =~ x5 + x6 + x7 + x8\nf3 =~ x9 + x10 + x11 + x12"
    res = cs.factor.cfa(df, model=model)
    lo = res.loadings[res.loadings["free"] > 0].copy()
    item = lo["item"].str[1:].astype(int).to_numpy() - 1
    true = lam[item] / lam[4 * (item // 4)]           # marker scale: lambda_i / lambda_first
    z = (lo["est"].to_numpy() - true) / lo["se"].to_numpy()
    assert len(z) == 9 and (np.abs(z) < 4).all()
    assert res.fit["rmsea"] < 0.03 and res.fit["cfi"] > 0.99


@pytest.mark.slow
def test_recovery_study_quick(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from validation.study_cfa_recovery import run

    out = run(quick=True, folder=tmp_path).set_index("setting")
    assert abs(out.loc["ml_normal", "mean_bias"]) < 3 * out.loc["ml_normal", "mc_se_bias"] + 0.01
    assert 0.88 <= out.loc["ml_normal", "coverage"] <= 0.99
    assert out.loc["ml_normal", "reject_chi2"] <= 0.05 + 3 * out.loc["ml_normal", "mc_se_reject"]
    assert out.loc["mlr_nonnormal", "reject_scaled"] < out.loc["mlr_nonnormal", "reject_chi2"]
    assert out.loc["ml_misspecified", "reject_chi2"] > 0.5


def test_wlsmv_is_delegated_to_factor_wls():
    df = _sim10()
    model = "f1 =~ f1_1 + f1_2 + f1_3\nf2 =~ f2_1 + f2_2 + f2_3"
    res = cs.factor.cfa(df, model=model, estimator="WLSMV")
    assert isinstance(res, cs.factor.CFAResult) and res.estimator == "WLSMV"
    assert res.thresholds is not None and len(res.thresholds) == 6 * 4
    ml = cs.factor.cfa(df, model=model)
    # same model, other estimator: the standardised loadings differ but agree in sign and rough size
    a = res.loadings.set_index("item")["std_all"]
    b = ml.loadings.set_index("item")["std_all"]
    assert ((a - b.loc[a.index]).abs() < 0.2).all()


def _exact_cov_frame(target, n=400, seed=4, names=None):
    z = np.random.default_rng(seed).normal(size=(n, len(target)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / n).T)
    return pd.DataFrame(z @ np.linalg.cholesky(target).T, columns=names)


def test_factor_correlation_beyond_one_is_flagged():
    # within-factor covariances .4, across factors .5: the implied factor correlation is 1.25
    t = np.full((4, 4), 0.5)
    t[:2, :2] = t[2:, 2:] = 0.4
    np.fill_diagonal(t, 1.0)
    df = _exact_cov_frame(t, names=["a", "b", "c", "d"])
    res = cs.factor.cfa(df, model="f1 =~ a + b\nf2 =~ c + d")
    psi = res.parameters.query("op == '~~' and lhs == 'f1' and rhs == 'f2'")["std_all"].iloc[0]
    assert psi > 1
    assert any(fl.code == "psi_not_pd" for fl in res.flags)


def test_nonconvergence_is_reported():
    d = _hs()
    cm = CFAModel(build_partable(HS))
    fit = MLProblem(cm, [d[cm.ov_names].to_numpy()]).fit(max_iter=2)
    assert not fit.converged and "iterations" in fit.message


def test_cfa_passes_weight_and_wls_to_the_ordinal_estimator():
    # Regression: cfa() dropped weight= and refused estimator="WLS" (fit_wlsmv supports both).
    from cips_stats.factor.wls import fit_wlsmv

    ref = Path(__file__).parent / "reference"
    bfi = pd.read_csv(ref / "bfi.csv")
    items = ["A1", "A2", "A3", "C1", "C2", "C3"]
    df = bfi[items].dropna().iloc[:600].copy()
    df["w"] = np.linspace(0.5, 1.5, len(df))
    model = "a =~ A1 + A2 + A3\nc =~ C1 + C2 + C3"
    direct = fit_wlsmv(df, model, ordered=items, weight="w")
    via = cs.factor.cfa(df, model, estimator="WLSMV", ordered=items, weight="w")
    unweighted = cs.factor.cfa(df, model, estimator="WLSMV", ordered=items)
    assert via.fit["chi2"] == pytest.approx(direct.fit["chi2"], rel=1e-12)
    assert abs(via.fit["chi2"] - unweighted.fit["chi2"]) > 1e-6
    wls = cs.factor.cfa(df, model, estimator="WLS", ordered=items)
    assert wls.estimator.upper() == "WLS"
    with pytest.raises(cs.ModelError, match="weight"):
        cs.factor.cfa(df, model, estimator="ML", weight="w")


def test_fiml_on_a_group_too_small_for_its_items_is_a_model_error():
    # Regression: 70 respondents x 40 items under FIML raised a bare LinAlgError from the EM step.
    sim = cs.simulate(seed=5, n_countries=1, n_repeat=0, n_officials=60, n_private=70)
    with pytest.raises(cs.ModelError, match="saturated") as err:
        cs.factor.cfa(sim.data)
    assert err.value.diagnostics["cause"] == "saturated_not_pd"


# ---------------------------------------------------------------------------- saturated FIML model (h1)
def _hs_fiml_problem(groups=1):
    d = _hs(True)
    d = d[d[[f"x{i}" for i in range(1, 10)]].notna().any(axis=1)]
    cm = CFAModel(build_partable(HS, meanstructure=True, n_groups=groups,
                                 group_equal=("loadings",) if groups > 1 else ()))
    blocks = [g[cm.ov_names].to_numpy() for _, g in d.groupby("school", sort=False)] if groups > 1 \
        else [d[cm.ov_names].to_numpy()]
    return MLProblem(cm, blocks, fiml=True)


def test_h1_fiml_information_is_the_hessian_and_the_score_crossproduct():
    from cips_stats.factor.ml import fiml_parts, h1_fiml_information
    from cips_stats.factor.model import vech_indices

    prob = _hs_fiml_problem()
    gd = prob.groups[0]
    A, J = h1_fiml_information(gd, chunk_elems=500)      # small chunks: several per missing-count group
    num = prob._h1_information_numerical(gd)
    np.testing.assert_allclose(A, num, atol=1e-7 * np.abs(num).max())
    # J against the explicit casewise scores (z, c (z z' - P)_vech) of the saturated model
    p = prob.p
    vr, vc = vech_indices(p)
    w = np.where(vr == vc, 0.5, 1.0)
    parts = fiml_parts(gd, gd.cov, gd.mean, need_grad=False, need_rows=True)
    Z = parts["Z"]
    rows = []
    for i in range(gd.n):
        o = gd.obs[i]
        P = np.zeros((p, p))
        P[np.ix_(o, o)] = np.linalg.inv(gd.cov[np.ix_(o, o)])
        rows.append(np.concatenate([Z[i], w * (np.outer(Z[i], Z[i]) - P)[vr, vc]]))
    sc = np.array(rows)
    np.testing.assert_allclose(J, sc.T @ sc, atol=1e-9 * np.abs(J).max())
    # the EM estimates are the saturated MLE: the scores sum to zero
    assert np.abs(sc.sum(0)).max() < 1e-6 * np.abs(sc).max() * gd.n


def test_fiml_corrected_equals_the_block_diagonal_formula():
    from scipy.linalg import block_diag

    from cips_stats.factor.ml import _chol_inv
    from cips_stats.factor.model import vech_indices

    prob = _hs_fiml_problem(groups=2)
    theta = prob.fit().theta
    ours = prob.fiml_corrected(theta)
    # lavaan's lav_fit_fiml_corrected written out with the full block-diagonal matrices
    p = prob.p
    vr, vc = vech_indices(p)
    ns = len(vr)
    E = np.zeros((ns, p, p))
    E[np.arange(ns), vr, vc] = 1.0
    E[np.arange(ns), vc, vr] = 1.0
    Wm_b, Wmi_b, Wc_b, Gam_b, D_b, DB_b = [], [], [], [], [], []
    for gd, J in zip(prob.groups, prob.model.jacobian(theta)):
        fg = gd.n / prob.n_total
        A, Jsum = prob.h1_information_fiml(gd)
        Wm, Jm = A / gd.n, Jsum / gd.n
        Wmi = np.linalg.inv(Wm)
        Wt, _ = _chol_inv(gd.cov)
        AE = np.matmul(Wt, E)
        Wc = block_diag(Wt, 0.5 * AE.reshape(ns, -1) @ np.transpose(AE, (0, 2, 1)).reshape(ns, -1).T)
        Wm_b.append(fg * Wm)
        Wmi_b.append(Wmi / fg)
        Wc_b.append(fg * Wc)
        Gam_b.append(Wmi @ Jm @ Wmi / fg)
        D_b.append(np.vstack([J["mu"], J["sigma"]]))
        DB = np.zeros((p + ns, 2 * p))
        DB[np.arange(p), np.arange(p)] = 1.0
        dpos = np.flatnonzero(vr == vc)
        DB[p + dpos, p + vr[dpos]] = 1.0
        DB_b.append(DB)
    Wm, Wmi, Wc, Gam = (block_diag(*b) for b in (Wm_b, Wmi_b, Wc_b, Gam_b))

    def k_of(D):
        U = Wm - Wm @ D @ np.linalg.inv(D.T @ Wm @ D) @ D.T @ Wm
        return float(np.trace(U @ Wmi @ Wc @ Wmi @ U @ Gam))

    assert ours["c_hat3"] == pytest.approx(k_of(np.vstack(D_b)) / ours["df3"], rel=1e-9)
    assert ours["c_hat3_null"] == pytest.approx(k_of(block_diag(*DB_b)) / ours["df3_null"], rel=1e-9)


def test_cached_saturated_model_gives_the_same_fit():
    from cips_stats.factor import ml

    d = _hs(True)
    ml.clear_h1_cache()
    a = cs.factor.cfa(d, model=HS, missing="fiml", estimator="MLR", group="school")
    assert any(k[0] == "h1" for k in ml._H1_CACHE)          # the h1 information was stored ...
    b = cs.factor.cfa(d, model=HS, missing="fiml", estimator="MLR", group="school")   # ... and reused
    ml.clear_h1_cache()
    c = cs.factor.cfa(d, model=HS, missing="fiml", estimator="MLR", group="school")
    for k in ("chi2", "chi2_scaled", "scaling_factor", "cfi_robust", "rmsea_robust", "unrestricted_loglik"):
        assert a.fit[k] == b.fit[k] == c.fit[k]
    np.testing.assert_array_equal(a.parameters["se"], c.parameters["se"])


def test_h1_cache_is_bounded(monkeypatch):
    from cips_stats.factor import ml

    ml.clear_h1_cache()
    monkeypatch.setattr(ml, "_H1_CACHE_BYTES", 3 * 8 * 100)
    for i in range(5):
        ml._cache_put(("t", i), (np.zeros(100),))
    assert list(ml._H1_CACHE) == [("t", 2), ("t", 3), ("t", 4)]
    ml._cache_put(("t", 9), (np.zeros(1000),))                # larger than the whole budget: not kept
    assert ("t", 9) not in ml._H1_CACHE
    ml.clear_h1_cache()


# ---------------------------------------------------------------- issue 10: robust measures under FIML and MLR
@pytest.mark.parametrize("name,kw", [("cfa_hs_fiml", dict(missing="fiml")), ("cfa_hs_mlr", dict(estimator="MLR")),
                                     ("cfa_hs_fiml_mlr", dict(missing="fiml", estimator="MLR"))])
def test_robust_measures_under_fiml_and_mlr_match_lavaan(name, kw):
    # lavaan 0.6-14 reports cfi.robust & co for ML with FIML (FIML-corrected V6) as well as for MLR (V3),
    # and rmsea.pvalue.scaled for MLR (validation/r/cfa.R)
    ref = json.loads((REF / f"{name}.json").read_text())["fit"]
    data = pd.read_csv(REF / ("cfa_hs1939_missing.csv" if "fiml" in name else "cfa_hs1939.csv"))
    res = cs.factor.cfa(data, HS, **kw)
    keys = ["cfi_robust", "tli_robust", "rmsea_robust", "rmsea_pvalue_robust"]
    if kw.get("estimator") == "MLR":
        keys.append("rmsea_pvalue_scaled")
    for k in keys:
        assert res.fit[k] == pytest.approx(ref[k.replace("_", ".")], abs=1e-5), k
    lo, hi = res.fit["rmsea_ci_robust"]
    assert lo == pytest.approx(ref["rmsea.ci.lower.robust"], abs=1e-5)
    assert hi == pytest.approx(ref["rmsea.ci.upper.robust"], abs=1e-5)


def test_poor_fit_and_wrong_sign_warn():
    # HS's three-factor model misses Hu & Bentler's cut-offs (CFI .931, RMSEA .092): the result flags it
    hs = pd.read_csv(REF / "cfa_hs1939.csv")
    with pytest.warns(cs.errors.PoorFitWarning, match="rmsea"):
        res = cs.factor.cfa(hs, HS)
    codes = {f.code for f in res.flags}
    assert {"fit_cfi", "fit_rmsea"} <= codes and "fit_srmr" not in codes
    # an item left un-reversed: its loading is clearly negative among positive ones
    rng = np.random.default_rng(11)
    f = rng.normal(size=(500, 1))
    y = f @ [[0.8, 0.7, 0.7, 0.6, 0.6]] + rng.normal(scale=0.6, size=(500, 5))
    df = pd.DataFrame(y, columns=list("abcde"))
    clean = cs.factor.cfa(df, "f =~ a + b + c + d + e")
    assert not [fl for fl in clean.flags if fl.code == "wrong_sign_loading"]
    df["d"] = -df["d"]
    with pytest.warns(cs.errors.PoorFitWarning, match="un-reversed"):
        bad = cs.factor.cfa(df, "f =~ a + b + c + d + e")
    flag = next(fl for fl in bad.flags if fl.code == "wrong_sign_loading")
    assert flag.where["items"] == ["d"]
    # the marker itself reversed: the other four are the majority, so the marker is named
    df2 = pd.DataFrame(y, columns=list("abcde")).assign(a=lambda x: -x["a"])
    with pytest.warns(cs.errors.PoorFitWarning, match="un-reversed"):
        bad2 = cs.factor.cfa(df2, "f =~ a + b + c + d + e")
    assert next(fl for fl in bad2.flags if fl.code == "wrong_sign_loading").where["items"] == ["a"]


def test_ci_level_and_weight_vocabulary():
    hs = pd.read_csv(REF / "cfa_hs1939.csv")
    r95 = cs.factor.cfa(hs, HS)
    r90 = cs.factor.cfa(hs, HS, ci=0.90)
    row = (r95.parameters["op"] == "=~") & (r95.parameters["free"] > 0)
    w95 = (r95.parameters["ci_high"] - r95.parameters["ci_low"])[row]
    w90 = (r90.parameters["ci_high"] - r90.parameters["ci_low"])[row]
    assert np.allclose(w90 / w95, 1.6448536269514722 / 1.959963984540054)
    with pytest.raises(cs.DataError, match="ci="):
        cs.factor.cfa(hs, HS, ci=1.5)
    with pytest.raises(cs.DataError, match="not a column"):
        cs.factor.cfa(hs, HS, weight="nope")
    with pytest.raises(cs.ModelError, match="weight="):
        cs.factor.cfa(hs.assign(w=1.0 + (np.arange(len(hs)) % 3)), HS, weight="w")


def test_saturated_fiml_model_has_no_robust_measures_and_no_error():
    # three indicators, one factor: df = 0; the FIML-corrected robust measures are undefined (NaN), not an error
    hsm = pd.read_csv(REF / "cfa_hs1939_missing.csv")
    for est in ("ML", "MLR"):
        res = cs.factor.cfa(hsm, "visual =~ x1 + x2 + x3", missing="fiml", estimator=est)
        assert res.fit["df"] == 0 and np.isnan(res.fit["cfi_robust"]) and res.converged


def test_survey_data_is_weighted_by_its_design_by_default():
    # issue 12: weight= defaults to the SurveyData's design weight (ordinal estimators); False = unweighted;
    # ML has no weighted estimator here, so it fits unweighted and says so
    sim = cs.simulate(seed=2, n_countries=3, n_repeat=1, n_officials=300, n_private=200)
    assert sim.data.frame["weight"].nunique() > 1
    w = cs.factor.cfa(sim.data, estimator="WLSMV", respondent_group="private")
    u = cs.factor.cfa(sim.data, estimator="WLSMV", respondent_group="private", weight=False)
    assert w.options["weight"] == "weight" and u.options["weight"] is None
    assert np.max(np.abs(w.loadings["est"].to_numpy() - u.loadings["est"].to_numpy())) > 1e-4
    ml = cs.factor.cfa(sim.data, respondent_group="private")
    assert any(f.code == "unweighted" for f in ml.flags)


# ---------------------------------------------------------------- issue 10 item 2: every named measure, new data
BFI_NE = json.loads((REF / "cfa_bfi_ne_fit_measures.json").read_text())
_NE_KW = {"ml_fiml": dict(missing="fiml"), "mlr_fiml": dict(missing="fiml", estimator="MLR"),
          "mlr_listwise": dict(estimator="MLR"), "ml_listwise": {}, "ml_fiml_groups": dict(missing="fiml", group="gender")}


@pytest.mark.parametrize("case", BFI_NE["cases"], ids=[c["id"] for c in BFI_NE["cases"]])
def test_named_fit_measures_match_lavaan_on_bfi_with_missing_answers(case):
    # bfi N + E as continuous items with their own missing answers (validation/r/fit_measures_issue10.R):
    # cfi_robust, tli_robust, rmsea_robust (CI, p), rmsea_pvalue_scaled, srmr_bentler_nomean and wrmr under
    # lavaan's names, NaN exactly where lavaan gives NA
    kw = _NE_KW[case["id"]]
    bfi = pd.read_csv(REF / "bfi.csv")
    res = cs.factor.cfa(bfi[BFI_NE["items"] + (["gender"] if "group" in kw else [])], BFI_NE["model"], **kw)
    fm = case["fit"]
    assert sum(res.n_obs) == case["nobs"]
    assert res.fit["chi2"] == pytest.approx(fm["chisq"], rel=1e-6)
    names = ("cfi", "tli", "rmsea", "srmr", "srmr_bentler_nomean", "wrmr", "cfi.robust", "tli.robust",
             "rmsea.robust", "rmsea.pvalue.robust", "rmsea.pvalue.scaled", "cfi.scaled", "rmsea.scaled")
    for name in names:
        ours = res.fit.get(name.replace(".", "_"), float("nan"))
        if fm.get(name) is None:
            assert np.isnan(ours), name                       # lavaan: NA (ML has no scaled test)
        else:
            assert ours == pytest.approx(fm[name], abs=1e-5), name
    if fm.get("chisq.scaled") is not None:
        assert res.fit["chi2_scaled"] == pytest.approx(fm["chisq.scaled"], rel=1e-5)
    if fm.get("rmsea.ci.lower.robust") is not None:
        lo, hi = res.fit["rmsea_ci_robust"]
        assert (lo, hi) == pytest.approx((fm["rmsea.ci.lower.robust"], fm["rmsea.ci.upper.robust"]), abs=1e-5)
    # WRMR = sqrt(chi2 / e), e = p(p+1)/2 (+ p means with a mean structure): lavaan's definition
    e = 55 + (10 if kw.get("missing") == "fiml" or "group" in kw else 0)
    assert res.fit["wrmr"] == pytest.approx(np.sqrt(res.fit["chi2"] / e), rel=1e-12)
