"""Tests of cips_stats.factor.invariance.

Reference fixtures (validation/r/invariance.R, lavaan 0.6-14; each file records the R calls,
versions, date and tolerances):

* tests/reference/invariance_hs.json — HolzingerSwineford1939 by school, ML and MLR ladders
  (fitMeasures), lavTestLRT differences (plain; Satorra-Bentler 2001 for MLR), lavTestScore on
  the scalar model, and the partial scalar model with x3~1 and x7~1 free.
* tests/reference/invariance_bfi_ordinal.json — bfi A1-A5, C1-C5 by gender, WLSMV ladder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs

# Reference ladders are judged for their numbers; the warnings themselves are tested explicitly
# (test_poor_configural_fit_and_noncomparable_means_warn).
pytestmark = pytest.mark.filterwarnings("ignore::cips_stats.errors.PoorFitWarning",
                                        "ignore::cips_stats.errors.NonInvarianceWarning")
import importlib

inv = importlib.import_module("cips_stats.factor.invariance")  # the module (cs.factor.invariance is the function)

REF = Path(__file__).parent / "reference"
HS = json.loads((REF / "invariance_hs.json").read_text())
HS_DATA = pd.read_csv(REF / "invariance_hs_data.csv")
TOL = HS["tolerances"]
LEVEL_KEYS = ("configural", "metric", "scalar", "strict")


@pytest.fixture(scope="module")
def hs_chain():
    """ML and MLR ladders without partial search: every level against the one below."""
    return {est: inv.invariance(HS_DATA, group="school", model=HS["model"], estimator=est, partial=False)
            for est in ("ML", "MLR")}


@pytest.fixture(scope="module")
def hs_partial():
    return inv.invariance(HS_DATA, group="school", model=HS["model"], estimator="ML")


@pytest.mark.parametrize("est", ["ML", "MLR"])
def test_ladder_fit_matches_lavaan(hs_chain, est):
    res = hs_chain[est]
    ref = HS["estimators"][est]["levels"]
    assert list(res.table.index) == list(LEVEL_KEYS)
    assert res.group_labels == tuple(HS["group_labels"])
    for level in LEVEL_KEYS:
        row, r = res.table.loc[level], ref[level]
        assert row["chi2"] == pytest.approx(r["chisq"], abs=TOL["chi2"])
        assert row["df"] == r["df"]
        assert row["srmr"] == pytest.approx(r["srmr"], abs=TOL["indices"])
        if est == "ML":
            for ours, theirs in (("cfi", "cfi"), ("tli", "tli"), ("rmsea", "rmsea")):
                assert row[ours] == pytest.approx(r[theirs], abs=TOL["indices"])
        else:  # MLR: the verdict uses lavaan's robust indices; scaled statistic beside
            for ours, theirs in (("cfi", "cfi.robust"), ("tli", "tli.robust"), ("rmsea", "rmsea.robust")):
                assert row[ours] == pytest.approx(r[theirs], abs=TOL["indices"])
            assert row["chi2_scaled"] == pytest.approx(r["chisq.scaled"], abs=1e-3)


@pytest.mark.parametrize("est", ["ML", "MLR"])
def test_difference_tests_match_lavTestLRT(hs_chain, est):
    res = hs_chain[est]
    for level, r in HS["estimators"][est]["lrt"].items():
        row = res.table.loc[level]
        assert row["delta_chi2"] == pytest.approx(r["delta_chi2"], abs=TOL["delta_chi2"])
        assert row["delta_df"] == r["delta_df"]
        assert row["p_value"] == pytest.approx(r["p_value"], abs=1e-4)
    # deltas of the indices are differences of consecutive rows
    t = res.table
    assert t.loc["scalar", "delta_cfi"] == pytest.approx(t.loc["scalar", "cfi"] - t.loc["metric", "cfi"])


def test_chain_verdicts_follow_chen(hs_chain):
    t = hs_chain["ML"].table
    # HS: metric holds (dCFI -.002), scalar fails (dCFI -.038 with dSRMR .011 > .010)
    assert t.loc["metric", "verdict"] == "supported"
    assert t.loc["scalar", "verdict"] == "rejected"
    # configural RMSEA .097 > .08: poor fit, nothing licensed; a looser configural rule gives metric
    assert t.loc["configural", "verdict"] == "poor fit"
    assert hs_chain["ML"].level_supported == "none"
    loose = inv.invariance(HS_DATA, group="school", model=HS["model"], partial=False,
                           configural_fit={"rmsea": 0.10}, levels=("configural", "metric", "scalar"))
    assert loose.level_supported == "metric"
    assert loose.supports("loadings") and not loose.supports("means")
    assert "latent_means_not_comparable" in {f.code for f in loose.flags}


def test_score_tests_match_lavTestScore(hs_chain):
    """Univariate score tests for every equality constraint of the scalar model."""
    ref = HS["estimators"]["ML"]["score_scalar"]
    fit = hs_chain["ML"].fits["scalar"]
    names = list(ref["parameter"])
    tester = inv._ScoreTester(fit, HS_DATA.assign(school=HS_DATA["school"].astype(str)), model=HS["model"],
                              group="school", group_equal=("loadings", "intercepts"), group_partial=(),
                              candidates=names, fiml=False)
    ours = np.array([tester.test(n)[0] for n in names])
    np.testing.assert_allclose(ours, ref["X2"], atol=TOL["score_test"] / 10)
    assert all(tester.test(n)[1] == 1 for n in names)


def test_partial_scalar_frees_x3_and_x7_as_lavaan(hs_partial):
    res = hs_partial
    assert res.freed == ("x3~1", "x7~1")
    ref = HS["estimators"]["ML"]["partial_scalar"]
    row = res.table.loc["partial_scalar"]
    assert row["chi2"] == pytest.approx(ref["fit"]["chisq"], abs=TOL["chi2"])
    assert row["df"] == ref["fit"]["df"]
    assert row["cfi"] == pytest.approx(ref["fit"]["cfi"], abs=TOL["indices"])
    assert row["compared_to"] == "metric"
    assert row["delta_chi2"] == pytest.approx(ref["lrt_vs_metric"]["delta_chi2"], abs=TOL["delta_chi2"])
    assert row["verdict"] == "supported" and row["n_freed"] == 2
    # the first released constraint had the largest score test among the intercepts
    first = res.score_tests[res.score_tests["step"] == 1]
    assert first.loc[first["statistic"].idxmax(), "parameter"] == "x3~1"
    # strict is then tested against the partial scalar model, keeping the freed intercepts
    assert res.table.loc["strict", "compared_to"] == "partial_scalar"
    assert res.table.loc["strict", "n_freed"] == 2


def test_planted_noninvariant_intercept_is_found():
    rng = np.random.default_rng(11)
    n, lam = 400, np.array([1.0, 0.9, 0.8, 0.7, 0.8])
    frames = []
    for g, shift in (("a", 0.0), ("b", 0.6)):
        f = rng.normal(size=(n, 1)) + (0.3 if g == "b" else 0.0)
        y = f * lam + rng.normal(scale=0.6, size=(n, 5))
        y[:, 3] += shift                                # item x4: biased intercept in group b
        frames.append(pd.DataFrame(y, columns=[f"x{i}" for i in range(1, 6)]).assign(g=g))
    df = pd.concat(frames, ignore_index=True)
    res = inv.invariance(df, group="g", model="f =~ x1 + x2 + x3 + x4 + x5")
    assert res.table.loc["scalar", "verdict"] == "rejected"
    assert res.freed[0] == "x4~1"
    assert res.level_supported in ("partial_scalar", "partial_strict")
    assert res.supports("means") and not res.supports("observed_means")
    assert not res.supports("means", allow_partial=False)
    assert res.level_full == "metric"


def test_invariant_data_support_strict():
    rng = np.random.default_rng(12)
    lam = np.array([1.0, 0.8, 0.7, 0.6])
    parts = [pd.DataFrame(rng.normal(size=(300, 1)) * lam + rng.normal(scale=0.6, size=(300, 4)),
                          columns=list("abcd")).assign(g=g) for g in ("u", "v", "w")]
    res = inv.invariance(pd.concat(parts, ignore_index=True), group="g", model="f =~ a + b + c + d")
    assert res.level_supported == "strict"
    assert res.freed == ()
    assert res.supports("observed_variances")
    assert res.n_per_group == (300, 300, 300)
    assert res.table.loc["metric", "delta_df"] == 6          # 3 free loadings x (3 - 1) groups


def test_chen_thresholds_depend_on_n():
    assert inv.chen2007_thresholds("metric", 301) == {"cfi": 0.010, "rmsea": 0.015, "srmr": 0.030}
    assert inv.chen2007_thresholds("metric", 300) == {"cfi": 0.005, "rmsea": 0.010, "srmr": 0.025}
    assert inv.chen2007_thresholds("strict", 1000)["srmr"] == 0.010
    with pytest.raises(cs.DataError):
        inv.chen2007_thresholds("configural", 1000)


@pytest.mark.parametrize("d,crit,expected", [
    ((-0.005, 0.02, 0.001), "chen2007", True),          # CFI fine, SRMR agrees
    ((-0.005, 0.02, 0.02), "chen2007", False),          # CFI fine but both others cross
    ((-0.02, 0.0, 0.0), "chen2007", False),             # CFI decisive
    ((-0.02, 0.0, 0.0), "chen2007_literal", True),      # literal: CFI needs a supplement
    ((-0.02, 0.02, 0.0), "chen2007_literal", False),
    ((-0.005, 0.0, 0.02), "chen2007_strict", False),
    ((-0.009, 0.1, 0.1), "cheung_rensvold2002", True),
])
def test_verdict_rules(d, crit, expected):
    assert inv._verdict("scalar", *d, p_value=0.5, criteria=crit, n_total=1000) is expected


def test_difference_test_formulas():
    out = inv.difference_test({"chi2": 30.0, "df": 10, "scaling_factor": 1.2},
                              {"chi2": 20.0, "df": 8, "scaling_factor": 1.1}, estimator="MLR")
    cd = (10 * 1.2 - 8 * 1.1) / 2
    assert out["delta_chi2"] == pytest.approx(10.0 / cd)
    assert out["method"] == "satorra.bentler.2001"
    neg = inv.difference_test({"chi2": 30.0, "df": 10, "scaling_factor": 0.5},
                              {"chi2": 20.0, "df": 8, "scaling_factor": 1.5}, estimator="MLR")
    assert np.isnan(neg["delta_chi2"]) and np.isnan(neg["p_value"])
    ml = inv.difference_test({"chi2": 30.0, "df": 10}, {"chi2": 20.0, "df": 8})
    assert ml["p_value"] == pytest.approx(np.exp(-5.0))           # chi2(2) survival at 10
    assert inv.difference_test({"chi2": 1, "df": 3}, {"chi2": 1, "df": 3})["method"] == "not_nested"


def test_supports_logic():
    def r(level):
        full = {"partial_metric": "configural", "partial_scalar": "metric"}.get(level, level)
        return inv.InvarianceResult(level_supported=level, level_full=full)
    assert not r("none").supports("loadings")
    assert r("configural").supports("loadings") is False
    assert r("metric").supports("regressions") and not r("metric").supports("means")
    assert r("partial_metric").supports("correlations")
    assert not r("partial_metric").supports("correlations", allow_partial=False)
    assert r("partial_scalar").supports("means") and not r("partial_scalar").supports("observed_means")
    assert r("scalar").supports("observed_means") and not r("scalar").supports("observed_variances")
    with pytest.raises(cs.DataError):
        r("scalar").supports("slopes")


def test_small_groups_are_flagged():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(160, 1)) @ [[1.0, 0.8, 0.7]] + rng.normal(scale=0.6, size=(160, 3))
    df = pd.DataFrame(y, columns=list("abc")).assign(g=["big"] * 100 + ["small"] * 60)
    res = inv.invariance(df, group="g", model="f =~ a + b + c", levels=("configural", "metric"))
    small = [f for f in res.flags if f.code == "small_group"]
    assert small and small[0].where["groups"] == ["small"]


@pytest.fixture(scope="module")
def bfi_ordinal():
    ref = json.loads((REF / "invariance_bfi_ordinal.json").read_text())
    df = pd.read_csv(REF / "invariance_bfi_data.csv")
    items = [c for c in df.columns if c != "gender"]
    return ref, df, items


def test_ordinal_ladder_matches_lavaan(bfi_ordinal):
    ref, df, items = bfi_ordinal
    res = inv.invariance(df, group="gender", model=ref["model"], ordered=items, partial=False,
                         levels=("configural", "metric", "scalar"))
    assert res.estimator == "WLSMV" and res.fit_measures == "scaled"
    assert list(res.table.index) == ["configural", "metric", "scalar"]
    for level in ("configural", "metric", "scalar"):
        assert res.table.loc[level, "chi2"] == pytest.approx(ref["levels"][level]["chisq"], abs=1e-3)
        assert res.table.loc[level, "df"] == ref["levels"][level]["df"]
        assert res.table.loc[level, "srmr"] == pytest.approx(ref["levels"][level]["srmr"], abs=1e-4)
    # Satorra (2000) scaled-shifted difference tests, as lavTestLRT(method = "satorra.2000")
    for level in ("metric", "scalar"):
        assert res.table.loc[level, "delta_chi2"] == pytest.approx(ref["lrt"][level]["delta_chi2"], abs=1e-3)
        assert res.table.loc[level, "delta_df"] == ref["lrt"][level]["delta_df"]
        assert res.table.loc[level, "p_value"] == pytest.approx(ref["lrt"][level]["p_value"], abs=1e-5)


def test_ordinal_empty_category_is_reported(bfi_ordinal):
    ref, df, items = bfi_ordinal
    df2 = df.iloc[:600].copy()
    df2.loc[(df2["gender"] == 1) & (df2["A2"] == 1), "A2"] = 2
    with pytest.raises(cs.ModelError, match="A2 has no answers in category 1 in group 1") as err:
        inv.invariance(df2, group="gender", model=ref["model"], ordered=items, levels=("configural",))
    assert "empty_category" in {f["code"] for f in err.value.diagnostics["flags"]}


def test_survey_data_uses_shared_items_of_respondent_groups():
    sim = cs.simulate(seed=5, n_countries=2, n_repeat=1, n_officials=200, n_private=200,
                      item_nonresponse=0.0, dont_know=0.0, refused=0.0)
    inst = sim.data.instrument
    shared = set(inst.items_for("officials")) & set(inst.items_for("private"))
    # officials' model of three factors; the items private respondents are not asked drop out
    model = inst.model_syntax("officials", factors=[f.id for f in inst.key_factors[:3]])
    res = inv.invariance(sim.data, group="group", model=model, levels=("configural", "metric"),
                         missing="listwise")
    assert "items_not_shared" in {f.code for f in res.flags}
    used = set(inv._model_items(res.model))
    assert used <= shared and len(used) >= 2
    assert res.group_labels == ("officials", "private") or set(res.group_labels) == {"officials", "private"}
    with pytest.raises(cs.DataError, match="respondent_group="):
        inv.invariance(sim.data, group="country")
    with pytest.raises(cs.DataError, match="no respondents"):
        inv.invariance(sim.data, group="country", respondent_group="customs_brokers")
    # iterations of one respondent group, only the countries surveyed twice
    two = sim.data.frame.groupby("country")["iteration"].nunique()
    sub = sim.data.subset(sim.data.frame["country"].isin(two[two > 1].index))
    by_iter = inv.invariance(sub, group="iteration", respondent_group="private", model=model,
                             levels=("configural", "metric"), missing="listwise")
    assert by_iter.group_labels == ("1", "2")
    assert by_iter.provenance.options["respondent_group"] == "private"


def test_input_errors():
    with pytest.raises(cs.DataError, match="model="):
        inv.invariance(HS_DATA, group="school")
    with pytest.raises(cs.DataError, match="group="):
        inv.invariance(HS_DATA, group="nope", model=HS["model"])
    with pytest.raises(cs.DataError, match="two groups"):
        inv.invariance(HS_DATA.assign(k=1), group="k", model=HS["model"])
    with pytest.raises(cs.DataError, match="levels="):
        inv.invariance(HS_DATA, group="school", model=HS["model"], levels=("weak",))
    with pytest.raises(cs.DataError, match="criteria="):
        inv.invariance(HS_DATA, group="school", model=HS["model"], criteria="hu_bentler")
    with pytest.raises(cs.DataError, match="not columns"):
        inv.invariance(HS_DATA, group="school", model="f =~ x1 + x2 + zz")
    with pytest.raises(cs.DataError):
        inv.invariance(HS_DATA.to_numpy(), group="school", model=HS["model"])


def test_result_serialises(hs_partial):
    d = hs_partial.to_dict()
    assert d["kind"] == "InvarianceResult" and "fits" not in d
    assert d["freed"] == ["x3~1", "x7~1"]
    text = str(hs_partial.summary())
    assert "partial_scalar" in text
    json.dumps(d)


def test_simulation_study_quick_slice():
    """A few replications of validation/study_invariance.py (the full study is run there)."""
    study = importlib.import_module("validation.study_invariance")
    null = [study._one(r, 300, 0.0, "ML") for r in range(6)]
    # under invariance Chen's criteria essentially never reject the metric step
    assert sum(o["chen_reject_metric"] for o in null) == 0
    assert all(0.0 <= o["p_scalar"] <= 1.0 for o in null)
    biased = [study._one(1000 + r, 300, 0.5, "ML") for r in range(2)]
    assert all(o["p_scalar"] < 0.001 and o["first_freed"] == "y5~1" for o in biased)


@pytest.mark.slow
def test_simulation_study_quick_mode(tmp_path):
    study = importlib.import_module("validation.study_invariance")
    table = study.run(quick=True, folder=tmp_path)
    null = table[table["condition"] == "invariant"]
    # 30 replications: nominal .05 with generous Monte Carlo room
    assert (null["reject_rate_chi2"] <= 0.2).all()
    biased = table[(table["condition"] == "biased_intercept") & (table["step"] == "scalar")]
    assert float(biased["reject_rate_chi2"].iloc[0]) >= 0.9
    assert float(biased["first_freed_is_planted"].iloc[0]) >= 0.9


def _two_groups_shifted_x4(seed: int, n: int) -> pd.DataFrame:
    """Two groups of n (one factor, five items, 10% missing at random); x4's intercept is 0.6 higher in b."""
    rng = np.random.default_rng(seed)
    lam = np.array([1.0, 0.9, 0.8, 0.7, 0.8])
    frames = []
    for g, shift in (("a", 0.0), ("b", 0.6)):
        y = rng.normal(size=(n, 1)) * lam + rng.normal(scale=0.6, size=(n, 5))
        y[:, 3] += shift
        y[rng.random(y.shape) < 0.1] = np.nan
        frames.append(pd.DataFrame(y, columns=[f"x{i}" for i in range(1, 6)]).assign(g=g))
    return pd.concat(frames, ignore_index=True)


def test_partial_search_under_fiml_uses_score_tests():
    res = inv.invariance(_two_groups_shifted_x4(11, 300), group="g",
                         model="f =~ x1 + x2 + x3 + x4 + x5", missing="fiml")
    assert res.freed == ("x4~1",)
    assert set(res.score_tests["method"]) == {"score"}
    assert res.fits["configural"].missing == "fiml"


def test_partial_search_for_ordinal_items_frees_item_thresholds():
    rng = np.random.default_rng(21)
    lam = np.array([0.8, 0.7, 0.7, 0.6, 0.7])
    cuts = np.array([-1.2, -0.3, 0.5, 1.3])
    frames = []
    for g in ("a", "b"):
        ystar = rng.normal(size=(500, 1)) * lam + rng.normal(size=(500, 5)) * np.sqrt(1 - lam**2)
        if g == "b":
            ystar[:, 2] += 0.7                      # item i3's thresholds shifted in group b
        codes = np.column_stack([np.digitize(ystar[:, j], cuts) + 1 for j in range(5)]).astype(float)
        frames.append(pd.DataFrame(codes, columns=[f"i{j}" for j in range(1, 6)]).assign(g=g))
    res = inv.invariance(pd.concat(frames, ignore_index=True), group="g", model="f =~ i1 + i2 + i3 + i4 + i5",
                         ordered=True)
    assert res.table.loc["scalar", "verdict"] == "rejected"
    assert res.freed == ("i3|t",)
    assert res.level_supported == "partial_scalar"
    # candidates ranked by the DWLS score statistic (no refit per candidate, issue 10 item 4): the one-step
    # prediction of the chi-square drop agrees with the refit's drop, and the planted item leads by far
    assert set(res.score_tests["method"]) == {"score_dwls"}
    st = res.score_tests.set_index("parameter")["statistic"]
    drop = res.table.loc["scalar", "chi2"] - res.table.loc["partial_scalar", "chi2"]
    assert st["i3|t"] == pytest.approx(drop, rel=0.1)
    assert st["i3|t"] > 5 * st.drop("i3|t").max()
    assert res.score_tests["p_value"].isna().all()
    assert res.table.loc["strict", "verdict"].startswith("not tested")
    assert res.supports("means") and not res.supports("observed_means")


def test_model_restriction_to_shared_items():
    m = "f =~ a + b + 0.5*c\ng =~ d + e\nf ~~ g\na ~~ d"
    assert inv._model_items(m) == ["a", "b", "c", "d", "e"]
    text, dropped = inv._restrict_syntax(m, {"a", "b", "c", "e"})
    assert text == "f =~ a + b + 0.5*c"          # g keeps one item: dropped with its covariances
    assert sorted(dropped) == ["d", "e"]


def test_fiml_ladder_computes_the_saturated_model_once_per_group(monkeypatch):
    # MLR under FIML needs the EM estimates and the h1 information of every group; they depend
    # on the rows only, so the levels (and the partial refits) of one ladder share them
    from cips_stats.factor import ml

    df = _two_groups_shifted_x4(12, 250)
    model = "f =~ x1 + x2 + x3 + x4 + x5"
    calls = {"em": 0, "h1": 0}
    em, h1 = ml.em_saturated, ml.h1_fiml_information

    def em_count(*a, **k):
        calls["em"] += 1
        return em(*a, **k)

    def h1_count(*a, **k):
        calls["h1"] += 1
        return h1(*a, **k)

    monkeypatch.setattr(ml, "em_saturated", em_count)
    monkeypatch.setattr(ml, "h1_fiml_information", h1_count)
    ml.clear_h1_cache()
    res = inv.invariance(df, group="g", model=model, missing="fiml", estimator="MLR")
    assert len(res.fits) >= 5 and res.freed == ("x4~1",)          # 4 levels + a partial refit
    assert calls == {"em": 2, "h1": 2}
    # the same numbers as a fit that computes everything afresh
    ml.clear_h1_cache()
    alone = cs.factor.cfa(df, model=model, missing="fiml", estimator="MLR", group="g", group_equal=("loadings",))
    for k in ("chi2", "chi2_scaled", "cfi_robust", "rmsea_robust"):
        assert res.fits["metric"].fit[k] == alone.fit[k]
    ml.clear_h1_cache()


def test_negative_scaled_difference_is_flagged_never_a_rejection():
    # VerbAgg, two factors by gender: equal thresholds fit "better" than equal loadings alone (Satorra 2000
    # scaled difference -18.08; lavaan warns the models may not be nested). Issue 10 item 3.
    ref = json.loads((REF / "invariance_verbagg_negative.json").read_text())
    d = pd.read_csv(REF / "verbagg_wide.csv")
    res = cs.factor.invariance(d, group="Gender", model=ref["model"], ordered=True,
                               levels=("configural", "metric", "scalar"), partial=False, criteria="chi2")
    row = res.table.loc["scalar"]
    assert row["delta_chi2"] == pytest.approx(ref["delta_chisq"], rel=1e-3)
    assert row["chi2"] == pytest.approx(ref["scalar"]["chisq"], rel=1e-5)
    assert row["chi2_scaled"] == pytest.approx(ref["scalar"]["chisq.scaled"], rel=1e-4)
    assert np.isnan(row["p_value"]) and row["verdict"] == "supported"
    flag = next(f for f in res.flags if f.code == "negative_delta_chi2")
    assert flag.where["level"] == "scalar" and "not nested" in flag.message
    # a positive difference is tested as usual
    assert res.table.loc["metric", "p_value"] > 0
