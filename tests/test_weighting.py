"""Tests of cips_stats.weighting: calibrated weights against R survey 4.1.1, identities and bad input.

Reference values: tests/reference/survey_calibration.json written by validation/r/survey.R
(R 4.2.2, survey 4.1.1): postStratify, rake, calibrate(calfun = "linear"/"raking") and
trimWeights(strict = TRUE) weights; tests/reference/survey_calibration_bounds.json written by
validation/r/survey_multistage_quantile.R: calibrate(bounds =, calfun = "logit"/"linear"/"raking")
weights and the SEs of estimates on them.  Tolerance: relative 1e-8 (measured ~1e-15 for closed
forms, ~1e-10 for rake, where R stops its own iterations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.errors import ConvergenceError, DataError

REF = Path(__file__).parent / "reference"
CAL = json.loads((REF / "survey_calibration.json").read_text())
CALB = json.loads((REF / "survey_calibration_bounds.json").read_text())
TOL = 1e-8


def _data(name):
    return pd.read_csv(REF / name)


@pytest.mark.parametrize("case", CAL["cases"], ids=[c["id"] for c in CAL["cases"]])
def test_calibrated_weights_match_r(case):
    df = _data(case["data"])
    before = df.copy()
    m = case["margins"]
    if case["method"] == "poststratify":
        res = cs.weighting.poststratify(df, variables="stype", population=m["stype"], weight="pw")
    elif case["method"] == "rake":
        res = cs.weighting.rake(df, margins=m, weight="pw", tol=1e-13, max_iter=500)
    else:
        res = cs.weighting.calibrate(df, margins=m, totals=case["numeric_totals"], method=case["method"],
                                     weight="pw")
    out = res.frame
    ref = np.asarray(case["weights"])
    assert np.max(np.abs(out["pw"].to_numpy() - ref) / ref) < TOL
    pd.testing.assert_frame_equal(df, before)                  # input unchanged
    np.testing.assert_array_equal(out["pw_base"].to_numpy(), before["pw"].to_numpy())
    assert isinstance(res.design.calibration, cs.estimate.Calibration) and res.design.weight == "pw"
    assert res.design.calibration.base_weight == "pw_base" and not out.attrs


@pytest.mark.parametrize("case", CAL["trims"], ids=[c["id"] for c in CAL["trims"]])
def test_trim_equal_redistribution_matches_r_trimweights(case):
    df = _data(case["data"])
    out = cs.weighting.trim(df, weight="pw", lower=case["lower"], upper=case["upper"], redistribute="equal").frame
    ref = np.asarray(case["weights"])
    assert np.max(np.abs(out["pw"].to_numpy() - ref) / ref) < TOL


def _cells_frame(seed=0, n_cells=12, n_per=80):
    rng = np.random.default_rng(seed)
    rows = n_cells * n_per
    df = pd.DataFrame({
        "country": np.repeat([f"C{i // 2}" for i in range(n_cells)], n_per),
        "iteration": np.repeat([1 + i % 2 for i in range(n_cells)], n_per),
        "gender": rng.choice(["f", "m"], rows, p=[0.35, 0.65]),
        "leadership": rng.choice(["manager", "staff"], rows, p=[0.3, 0.7]),
        "age": rng.choice(["<35", "35-50", ">50"], rows),
        "weight": rng.uniform(0.5, 3.0, rows),
    })
    return df


def _tidy_targets(df, by):
    cells = df[list(by)].drop_duplicates().reset_index(drop=True)
    parts = []
    for var, cats in (("gender", {"f": 0.5, "m": 0.5}), ("leadership", {"manager": 0.2, "staff": 0.8}),
                      ("age", {"<35": 0.3, "35-50": 0.4, ">50": 0.3})):
        for cat, share in cats.items():
            t = cells.copy()
            t["variable"], t["category"] = var, cat
            t["total"] = share * (1000 + 100 * np.arange(len(cells)))
            parts.append(t)
    return pd.concat(parts, ignore_index=True)


def test_rake_by_cells_equals_per_cell_loop():
    df = _cells_frame()
    by = ("country", "iteration")
    margins = _tidy_targets(df, by)
    rep = cs.weighting.rake(df, margins=margins, by=by)
    out = rep.frame
    assert rep.table["converged"].all() and len(rep.table) == 12
    for (c, it), sub in df.groupby(list(by)):
        mt = margins[(margins["country"] == c) & (margins["iteration"] == it)]
        mdict = {v: dict(zip(g["category"], g["total"])) for v, g in mt.groupby("variable")}
        one = cs.weighting.rake(sub.reset_index(drop=True), margins=mdict).frame
        np.testing.assert_allclose(out.loc[sub.index, "weight"].to_numpy(), one["weight"].to_numpy(), rtol=1e-9)
        for v, cats in mdict.items():
            got = out.loc[sub.index].groupby(v)["weight"].sum()
            for k, tot in cats.items():
                assert got[k] == pytest.approx(tot, rel=1e-9)


def test_rake_shares_keep_cell_totals_and_report():
    df = _cells_frame(1)
    rep = cs.weighting.rake(df, margins={"gender": {"f": 0.5, "m": 0.5}, "leadership": {"manager": 0.25,
                                 "staff": 0.75}}, by=("country", "iteration"))
    out = rep.frame
    tot0 = df.groupby(["country", "iteration"])["weight"].sum()
    tot1 = out.groupby(["country", "iteration"])["weight"].sum()
    np.testing.assert_allclose(tot1.to_numpy(), tot0.to_numpy(), rtol=1e-12)
    share = out[out["gender"] == "f"].groupby(["country", "iteration"])["weight"].sum() / tot1
    np.testing.assert_allclose(share.to_numpy(), 0.5, rtol=1e-9)
    t = rep.table
    assert {"iterations", "max_abs_error", "max_rel_error", "converged", "kish_deff_after"} <= set(t.columns)
    assert (t["max_rel_error"] <= 1e-10).all() and (t["iterations"] >= 1).all()


def test_rake_survey_data_in_survey_data_out():
    df = _cells_frame(2).assign(respondent_id=lambda d: np.arange(len(d)), group="officials")
    sd = cs.SurveyData(frame=df, instrument=cs.Instrument.default())
    res = cs.weighting.rake(sd, margins={"gender": {"f": 0.4, "m": 0.6}})
    out = res.data
    assert isinstance(out, cs.SurveyData) and out.design == res.design
    assert out.design.calibration.method == "rake" and sd.design is None
    assert out.fingerprint != sd.fingerprint
    assert sd.frame["weight"].equals(df["weight"])


def test_margin_category_absent_from_sample_is_named():
    df = _cells_frame(3)
    with pytest.raises(DataError, match="absent from the sample") as ei:
        cs.weighting.rake(df, margins={"gender": {"f": 40, "m": 50, "x": 10}}).frame
    assert ei.value.problems[0].value == "x" and ei.value.problems[0].column == "gender"


def test_sample_category_missing_from_margins_is_named():
    df = _cells_frame(3)
    with pytest.raises(DataError, match="no margin") as ei:
        cs.weighting.rake(df, margins={"age": {"<35": 40, "35-50": 60}}).frame
    assert ei.value.problems[0].value == ">50"


def test_margins_with_different_totals_are_rejected():
    df = _cells_frame(4)
    with pytest.raises(DataError, match="same total") as ei:
        cs.weighting.rake(df, margins={"gender": {"f": 40, "m": 60}, "leadership": {"manager": 30, "staff": 90}}).frame
    assert "gender=100" in str(ei.value) and "leadership=120" in str(ei.value)


def test_missing_and_negative_values_are_rejected():
    df = _cells_frame(5)
    df.loc[7, "gender"] = None
    with pytest.raises(DataError, match="missing") as ei:
        cs.weighting.rake(df, margins={"gender": {"f": 40, "m": 60}}).frame
    assert ei.value.problems[0].row == 8                    # 1-based: index 7 is the 8th respondent
    df = _cells_frame(5)
    df.loc[3, "weight"] = -1.0
    with pytest.raises(DataError, match="negative") as ei:
        cs.weighting.rake(df, margins={"gender": {"f": 40, "m": 60}}).frame
    assert ei.value.problems[0].row == 4


def test_zero_weight_cell_is_rejected():
    df = _cells_frame(6)
    df.loc[df["country"] == "C0", "weight"] = 0.0
    with pytest.raises(DataError, match="zero weight total"):
        cs.weighting.rake(df, margins={"gender": {"f": 0.5, "m": 0.5}}, by="country").frame


def test_inconsistent_margins_do_not_converge():
    # structural zeros: (f, manager) and (m, staff) only; the margins cannot both hold
    df = pd.DataFrame({"gender": ["f", "f", "m", "m"], "leadership": ["manager", "manager", "staff", "staff"],
                       "weight": 1.0})
    with pytest.raises(ConvergenceError, match="did not converge") as ei:
        cs.weighting.rake(df, margins={"gender": {"f": 50, "m": 50}, "leadership": {"manager": 20, "staff": 80}},
                          max_iter=50).frame
    assert "report" in ei.value.diagnostics
    assert "gender=" in str(ei.value) or "leadership=" in str(ei.value)     # the worst category is named


def test_calibrate_raking_equals_rake_for_categorical_margins():
    df = _data("survey_apiclus1.csv")
    m = {"stype": {"E": 4421, "H": 755, "M": 1018}, "sch.wide": {"No": 1072, "Yes": 5122}}
    a = cs.weighting.rake(df, margins=m, weight="pw", tol=1e-14, max_iter=1000).frame
    b = cs.weighting.calibrate(df, margins=m, method="raking", weight="pw").frame
    np.testing.assert_allclose(a["pw"].to_numpy(), b["pw"].to_numpy(), rtol=1e-9)


def test_poststratify_joint_cells_and_by():
    df = _cells_frame(7)
    pop = pd.DataFrame({"gender": ["f", "f", "m", "m"], "leadership": ["manager", "staff", "manager", "staff"],
                        "total": [10.0, 40.0, 15.0, 35.0]})
    res = cs.weighting.poststratify(df, variables=("gender", "leadership"), population=pop, by="country")
    out = res.frame
    got = out.groupby(["country", "gender", "leadership"])["weight"].sum().unstack([1, 2])
    np.testing.assert_allclose(got[("f", "staff")].to_numpy(), 40.0, rtol=1e-12)
    assert res.design.calibration.method == "poststratify" and res.method == "poststratify"


def test_trim_bounds_and_totals_by_cell():
    df = _cells_frame(8)
    df.loc[::37, "weight"] *= 8
    rep = cs.weighting.trim(df, upper=2.0, lower=0.3, relative=True, by="country")
    out = rep.frame
    mean0 = df.groupby("country")["weight"].transform("mean")
    r = out["weight"] / mean0
    assert r.max() <= 2.0 + 1e-9 and r.min() >= 0.3 - 1e-9
    np.testing.assert_allclose(out.groupby("country")["weight"].sum(), df.groupby("country")["weight"].sum(),
                               rtol=1e-12)
    assert rep.table["n_trimmed"].sum() > 0
    with pytest.raises(DataError, match="bounds cannot hold"):
        cs.weighting.trim(df, upper=0.5, relative=True).frame


def test_kish_and_effective_n():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    n_eff, deff = cs.weighting.kish(weight=w)
    assert n_eff == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    assert deff == pytest.approx(1 + (w.std() / w.mean()) ** 2)      # 1 + CV^2, CV with divisor n
    assert tuple(cs.weighting.kish(weight=np.ones(9))) == (9.0, 1.0)
    df = _cells_frame(9)
    k = cs.weighting.kish(df)                       # a frame with its weight column, as every function takes it
    assert k.n == len(df) and k.n_eff == pytest.approx(cs.weighting.kish(weight=df["weight"].to_numpy()).n_eff)
    t = cs.weighting.effective_n(df, by=("country", "iteration")).table
    sub = df[(df["country"] == "C1") & (df["iteration"] == 2)]["weight"].to_numpy()
    row = t[(t["country"] == "C1") & (t["iteration"] == 2)].iloc[0]
    assert row["n_eff"] == pytest.approx(cs.weighting.kish(weight=sub).n_eff)
    assert row["n"] == len(sub)
    with pytest.raises(DataError):
        cs.weighting.kish(weight=[1.0, -1.0])
    with pytest.raises(cs.CipsError, match="kish"):
        cs.weighting.kish()


def test_design_weights():
    df = pd.DataFrame({"country": ["A", "A", "A", "B"], "group": ["o", "o", "p", "o"]})
    pop = pd.DataFrame({"country": ["A", "A", "B"], "group": ["o", "p", "o"], "N": [100, 30, 7]})
    out = cs.weighting.design_weights(df, population=pop).frame
    assert out["weight"].tolist() == [50.0, 50.0, 30.0, 7.0]
    with pytest.raises(DataError, match="no size"):
        cs.weighting.design_weights(df, population=pop.iloc[:2]).frame


def _drift_frame(seed=10):
    rng = np.random.default_rng(seed)
    parts = []
    for country, p1, p2 in (("A", 0.85, 0.23), ("B", 0.5, 0.52)):
        for it, p in ((1, p1), (2, p2)):
            n = 300
            parts.append(pd.DataFrame({
                "country": country, "group": "officials", "iteration": it,
                "leadership": np.where(rng.random(n) < p, "manager", "staff"),
                "gender": rng.choice(["f", "m"], n), "weight": rng.uniform(0.8, 1.2, n)}))
    return pd.concat(parts, ignore_index=True)


def test_composition_drift_flags_large_shifts_only():
    df = _drift_frame()
    res = cs.weighting.composition_drift(df, variables=["leadership", "gender"])
    fl = res.flagged
    assert set(fl["country"]) == {"A"} and set(fl["variable"]) == {"leadership"}
    row = res.table[(res.table["country"] == "A") & (res.table["category"] == "manager")].iloc[0]
    assert row["share_from"] > 0.75 and row["share_to"] < 0.33 and row["p_value"] < 1e-10
    assert len(res.flags) == 1 and "reweight_common" in res.flags[0].message
    strict = cs.weighting.composition_drift(df, variables=["leadership"], threshold=0.9)
    assert not strict.table["flagged"].any()


def test_reweight_common_equalises_structure():
    df = _drift_frame()
    for target in ("pooled", "iteration1", 2):
        out = cs.weighting.reweight_common(df, variables=["leadership"], target=target).frame
        sh = out.groupby(["country", "iteration", "leadership"])["weight"].sum() / \
            out.groupby(["country", "iteration"])["weight"].sum()
        sh = sh.unstack("iteration")
        np.testing.assert_allclose(sh[1].to_numpy(), sh[2].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(out.groupby(["country", "iteration"])["weight"].sum(),
                                   df.groupby(["country", "iteration"])["weight"].sum(), rtol=1e-12)
        if target == "iteration1":
            s0 = df[df["iteration"] == 1].groupby(["country", "leadership"])["weight"].sum() / \
                df[df["iteration"] == 1].groupby("country")["weight"].sum()
            np.testing.assert_allclose(sh[1].to_numpy(), s0.to_numpy(), rtol=1e-9)
    after = cs.weighting.composition_drift(out, variables=["leadership"])
    assert not after.table["flagged"].any()


def test_raked_estimate_se_is_calibration_aware_by_cell():
    df = _cells_frame(11)
    df["y"] = (df["leadership"] == "manager") * 1.0 + np.random.default_rng(0).normal(size=len(df))
    res = cs.weighting.rake(df, margins={"leadership": {"manager": 0.2, "staff": 0.8}}, by="country")
    r_cal = cs.estimate.survey_mean(res.frame, "y", weight=res.design, domain={"country": "C0"})
    r_raw = cs.estimate.survey_mean(res.frame, "y", weight="weight", domain={"country": "C0"})
    assert r_cal.se < r_raw.se            # leadership explains y: calibration reduces the SE


def test_drift_and_reweight_without_cells():
    df = _drift_frame()
    df = df[df["country"] == "A"].drop(columns="country")
    res = cs.weighting.composition_drift(df, variables=["leadership"], by=None)
    assert res.table["flagged"].all() and len(res.table) == 2
    out = cs.weighting.reweight_common(df, variables=["leadership"], by=None, target="pooled").frame
    sh = out.groupby(["iteration", "leadership"])["weight"].sum() / out.groupby("iteration")["weight"].sum()
    s1 = df[df["iteration"] == 1].groupby("leadership")["weight"].sum() / df[df["iteration"] == 1]["weight"].sum()
    s2 = df[df["iteration"] == 2].groupby("leadership")["weight"].sum() / df[df["iteration"] == 2]["weight"].sum()
    np.testing.assert_allclose(sh.loc[1].to_numpy(), ((s1 + s2) / 2).to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(sh.loc[2].to_numpy(), ((s1 + s2) / 2).to_numpy(), rtol=1e-9)


def test_drift_test_has_nominal_type_one_error_under_no_change():
    # 400 countries, same composition (30% managers) in both iterations, unequal weights independent
    # of the category: the Kish-adjusted z test should reject at about alpha.
    rng = np.random.default_rng(42)
    n_c, n = 400, 150
    rows = 2 * n_c * n
    df = pd.DataFrame({"country": np.repeat(np.arange(n_c), 2 * n), "group": "officials",
                       "iteration": np.tile(np.repeat([1, 2], n), n_c),
                       "leadership": np.where(rng.random(rows) < 0.3, "manager", "staff"),
                       "weight": rng.lognormal(0, 0.5, rows)})
    res = cs.weighting.composition_drift(df, variables=["leadership"], significance=0.05)
    t = res.table[res.table["category"] == "manager"]
    assert len(t) == n_c
    rate = t["significant"].mean()
    assert abs(rate - 0.05) < 3 * np.sqrt(0.05 * 0.95 / n_c), rate
    assert t["flagged"].mean() <= rate and t["flagged"].mean() < 0.03   # large AND significant: rarer still


# ---------------------------------------------------------------------------------------------
# the whole survey at once: each respondent group calibrated on its own questionnaire's variables
# ---------------------------------------------------------------------------------------------
BY = ("country", "iteration", "group")


@pytest.fixture(scope="module")
def sim():
    return cs.simulate(seed=1)


def _rake_groups_separately(frame, margins, **kw):
    """The reference: rake each respondent group on its own and put the weights back in row order."""
    w = pd.Series(np.nan, index=frame.index)
    for g, sub in frame.groupby("group"):
        one = cs.weighting.rake(sub.reset_index(drop=True), margins=margins[margins["group"] == g], by=BY, **kw).frame
        w.loc[sub.index] = one["weight"].to_numpy()
    return w.to_numpy()


def test_rake_whole_survey_with_group_specific_margins_equals_raking_each_group(sim):
    margins = sim.truth["margins"]
    frame = sim.data.frame
    # the data really do differ by group: leadership only for officials, business type only for private
    assert frame.loc[frame["group"] == "private", "leadership"].isna().all()
    assert frame.loc[frame["group"] == "officials", "business_type"].isna().all()
    rep = cs.weighting.rake(sim.data, margins=margins, by=BY)
    out = rep.data
    assert isinstance(out, cs.SurveyData) and rep.table["converged"].all()
    got = out.frame["weight"].to_numpy()
    ref = _rake_groups_separately(frame, margins)
    assert np.max(np.abs(got - ref) / ref) < 1e-10
    np.testing.assert_array_equal(out.frame["weight_base"].to_numpy(), frame["weight"].to_numpy())
    cal = out.design.calibration
    assert set(cal.variables) == {"gender", "experience", "leadership", "business_type"}
    scoped = dict(cal.scope)
    assert set(scoped) == {"leadership", "business_type"}
    assert {c[2] for c in scoped["leadership"]} == {"officials"}
    assert {c[2] for c in scoped["business_type"]} == {"private"}


@pytest.mark.parametrize("value", [None, "share", "population"])
def test_rake_whole_survey_hits_each_cells_targets(sim, value):
    margins = sim.truth["margins"]
    frame = sim.data.frame
    out = cs.weighting.rake(frame, margins=margins, by=BY, value=value).frame
    tot0 = frame.groupby(list(BY))["weight"].sum()
    tot1 = out.groupby(list(BY))["weight"].sum()
    if value == "population":               # weights now sum to each cell's population
        pop = margins[margins["variable"] == "gender"].groupby(list(BY))["population"].sum()
        np.testing.assert_allclose(tot1.to_numpy(), pop.loc[tot1.index].to_numpy(), rtol=1e-9)
    else:                                   # shares (the default when both columns exist): cell totals kept
        np.testing.assert_allclose(tot1.to_numpy(), tot0.to_numpy(), rtol=1e-12)
    n_checked = 0
    for var, mv in margins.groupby("variable"):
        wsum = out[out[var].notna()].groupby(list(BY) + [var])["weight"].sum()
        for r in mv.itertuples(index=False):
            key = (r.country, r.iteration, r.group, r.category)
            want = r.population if value == "population" else r.share * tot1.loc[key[:3]]
            assert wsum.loc[key] == pytest.approx(want, rel=1e-9)
            n_checked += 1
    assert n_checked == len(margins)


def test_rake_whole_survey_missing_value_in_a_cell_that_has_the_margin_still_raises(sim):
    frame = sim.data.frame.copy()
    row = int(np.flatnonzero((frame["group"] == "officials").to_numpy())[5])
    frame.loc[frame.index[row], "leadership"] = np.nan
    with pytest.raises(DataError, match="'leadership' has 1 missing") as ei:
        cs.weighting.rake(frame, margins=sim.truth["margins"], by=BY).frame
    p = ei.value.problems[0]
    assert (p.row, p.column, p.rule) == (row + 1, "leadership", "margin_variable_missing")
    assert "officials" in p.message


def test_rake_whole_survey_category_errors_are_kept_per_cell(sim):
    margins = sim.truth["margins"]
    frame = sim.data.frame.copy()
    row = int(np.flatnonzero((frame["group"] == "officials").to_numpy())[3])
    frame.loc[frame.index[row], "leadership"] = "maybe"
    with pytest.raises(DataError, match="no margin") as ei:
        cs.weighting.rake(frame, margins=margins, by=BY).frame
    assert (ei.value.problems[0].row, ei.value.problems[0].value) == (row + 1, "maybe")
    lead = margins[margins["variable"] == "leadership"].iloc[[0]]
    acting = lead.assign(category="acting", share=0.01, population=10.0)
    with pytest.raises(DataError, match="same total") as ei:            # leadership now sums to N + 10
        cs.weighting.rake(sim.data, margins=pd.concat([margins, acting]), by=BY, value="population").frame
    assert "leadership=" in ei.value.problems[0].message and "officials" in ei.value.problems[0].message
    fixed = margins.copy()
    fixed.loc[lead.index, "population"] -= 10.0
    with pytest.raises(DataError, match="absent from the sample") as ei:
        cs.weighting.rake(sim.data, margins=pd.concat([fixed, acting]), by=BY, value="population").frame
    assert (ei.value.problems[0].column, ei.value.problems[0].value) == ("leadership", "acting")


def test_values_of_a_variable_outside_its_cells_are_ignored_and_ses_use_each_cells_variables(sim):
    margins = sim.truth["margins"]
    frame = sim.data.frame.copy()
    priv = (frame["group"] == "private").to_numpy()
    rng = np.random.default_rng(3)
    # private respondents now carry a leadership value that the margins do not use for them
    frame.loc[priv, "leadership"] = rng.choice(["yes", "no"], int(priv.sum()))
    frame["y"] = frame["LC1"].fillna(3.0) + (frame["leadership"] == "yes") * 1.0
    base = cs.estimate.Design(weight="weight", strata="group")
    ra = cs.weighting.rake(frame, margins=margins, by=BY, tol=1e-13, max_iter=500, weight=base)
    a = ra.frame
    b = cs.weighting.rake(frame.assign(leadership=frame["leadership"].where(~priv)), margins=margins, by=BY,
                          tol=1e-13, max_iter=500).frame
    np.testing.assert_array_equal(a["weight"].to_numpy(), b["weight"].to_numpy())    # factor 1 there
    rsep = cs.weighting.rake(frame[priv].reset_index(drop=True), margins=margins[margins["group"] == "private"],
                             by=BY, tol=1e-13, max_iter=500, weight=base)
    dom = {"country": "C02", "iteration": 1, "group": "private"}
    r_all = cs.estimate.survey_mean(a, "y", weight=ra.design, domain=dom)
    r_sep = cs.estimate.survey_mean(rsep.frame, "y", weight=rsep.design, domain=dom)
    assert r_all.estimate == pytest.approx(r_sep.estimate, rel=1e-10)
    assert r_all.se == pytest.approx(r_sep.se, rel=1e-8)
    # the check has teeth: residualising private cells on leadership as well gives another SE
    import dataclasses
    unscoped = dataclasses.replace(ra.design.calibration, scope=())
    r_bad = cs.estimate.survey_mean(a, "y", weight=ra.design.update(calibration=unscoped), domain=dom)
    assert abs(r_bad.se - r_sep.se) > 1e-4 * r_sep.se


@pytest.mark.parametrize("group", ["officials", "private"])
def test_calibration_aware_se_after_whole_survey_rake_equals_per_group(sim, group):
    margins = sim.truth["margins"]
    frame = sim.data.frame
    base = cs.estimate.Design(weight="weight", strata="group")
    out = cs.weighting.rake(frame, margins=margins, by=BY, tol=1e-13, max_iter=500, weight=base)
    sub = frame[frame["group"] == group].reset_index(drop=True)
    sep = cs.weighting.rake(sub, margins=margins[margins["group"] == group], by=BY, tol=1e-13, max_iter=500,
                            weight=base)
    dom = {"country": "C01", "iteration": 1, "group": group}
    a = cs.estimate.survey_mean(out.frame, "LC1", weight=out.design, domain=dom)
    b = cs.estimate.survey_mean(sep.frame, "LC1", weight=sep.design, domain=dom)
    raw = cs.estimate.survey_mean(out.frame, "LC1", weight=out.design.update(calibration=None), domain=dom)
    assert a.se == pytest.approx(b.se, rel=1e-8)
    assert a.se != pytest.approx(raw.se, rel=1e-6)          # the calibration is accounted for


@pytest.mark.parametrize("method", ["linear", "raking"])
def test_calibrate_whole_survey_with_group_specific_margins(sim, method):
    margins = sim.truth["margins"]
    frame = sim.data.frame
    base = cs.estimate.Design(weight="weight", strata="group")
    res = cs.weighting.calibrate(frame, margins=margins, by=BY, method=method, weight=base)
    out = res.frame
    priv = frame[frame["group"] == "private"].reset_index(drop=True)
    rsep = cs.weighting.calibrate(priv, margins=margins[margins["group"] == "private"], by=BY, method=method,
                                  weight=base)
    sep = rsep.frame
    np.testing.assert_allclose(out.loc[frame["group"] == "private", "weight"].to_numpy(), sep["weight"].to_numpy(),
                               rtol=1e-10)
    dom = {"country": "C03", "iteration": 2, "group": "private"}
    a = cs.estimate.survey_mean(out, "LC1", weight=res.design, domain=dom)
    b = cs.estimate.survey_mean(sep, "LC1", weight=rsep.design, domain=dom)
    assert a.se == pytest.approx(b.se, rel=1e-8)
    if method == "raking":
        rk = cs.weighting.rake(frame, margins=margins, by=BY, tol=1e-13, max_iter=500).frame
        np.testing.assert_allclose(out["weight"].to_numpy(), rk["weight"].to_numpy(), rtol=1e-9)


def test_value_column_choice_is_checked():
    df = _cells_frame(7)
    by = ("country", "iteration")
    m = _tidy_targets(df, by)
    with pytest.raises(DataError, match="value='population' is not a column") as ei:
        cs.weighting.rake(df, margins=m, by=by, value="population").frame
    assert ei.value.problems[0].rule == "margins_value_column"
    with pytest.raises(DataError, match="value= chooses a column"):
        cs.weighting.rake(df, margins={"gender": {"f": 0.5, "m": 0.5}}, value="share").frame
    # 'total' comes first when value= is not given; value= picks another column
    m2 = m.assign(share=m["total"] / m.groupby(list(by) + ["variable"])["total"].transform("sum"))
    a = cs.weighting.rake(df, margins=m2, by=by).frame
    b = cs.weighting.rake(df, margins=m2, by=by, value="total").frame
    c = cs.weighting.rake(df, margins=m2, by=by, value="share").frame
    np.testing.assert_array_equal(a["weight"].to_numpy(), b["weight"].to_numpy())
    np.testing.assert_allclose(c.groupby(list(by))["weight"].sum().to_numpy(),
                               df.groupby(list(by))["weight"].sum().to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("case", CALB["cases"], ids=[c["id"] for c in CALB["cases"]])
def test_bounded_and_logit_calibration_match_r(case):
    # R: calibrate(design, ~..., population, bounds = c(lo, hi), calfun = "logit" | "linear" | "raking")
    df = _data(case["data"])
    base = cs.estimate.Design(weight=case["weight"], strata=case["strata"], cluster=case["cluster"], fpc=case["fpc"])
    lo, hi = case["bounds"]
    res = cs.weighting.calibrate(df, margins=case["margins"], totals=case["numeric_totals"], method=case["method"],
                                 bounds=(lo, hi), weight=base, tol=1e-12, max_iter=200)
    ref = np.asarray(case["weights"])
    assert np.max(np.abs(res.weights - ref) / ref) < TOL
    g = res.weights / df[case["weight"]].to_numpy()
    assert g.min() >= lo - 1e-12 and g.max() <= hi + 1e-12
    assert res.design.calibration.bounds == (lo, hi) and res.design.calibration.method == case["method"]
    for r in case["results"]:
        if r["statistic"] == "mean_api00":
            est = cs.estimate.survey_mean(res.frame, "api00", weight=res.design)
        elif r["statistic"] == "total_enroll":
            est = cs.estimate.survey_mean(res.frame, "enroll", statistic="total", weight=res.design)
        else:
            est = cs.estimate.survey_mean(res.frame, "api00", weight=res.design, domain={"comp.imp": "Yes"})
        assert abs(est.estimate - r["estimate"]) / abs(r["estimate"]) < TOL
        assert abs(est.var - r["var"]) / r["var"] < TOL, r["statistic"]


def test_bounds_are_checked_and_infeasible_bounds_fail_with_the_cell_named():
    df = _data("survey_apiclus1.csv")
    m = {"stype": {"E": 4421, "H": 755, "M": 1018}}
    with pytest.raises(cs.CipsError, match="lo < 1 < hi"):
        cs.weighting.calibrate(df, margins=m, weight="pw", method="logit", bounds=(1.2, 2.0))
    with pytest.raises(cs.CipsError, match="logit"):
        cs.weighting.calibrate(df, margins=m, weight="pw", method="logit")
    with pytest.raises(cs.CipsError, match="method="):
        cs.weighting.calibrate(df, margins=m, weight="pw", method="cubic")
    with pytest.raises(ConvergenceError, match="bounds may be too tight"):
        cs.weighting.calibrate(df, margins=m, weight="pw", method="logit", bounds=(0.99, 1.01))
    # wide bounds that do not bind give the unbounded weights (logit tends to raking's g only at the limit,
    # linear with slack bounds equals the closed form)
    free = cs.weighting.calibrate(df, margins=m, weight="pw", method="linear")
    slack = cs.weighting.calibrate(df, margins=m, weight="pw", method="linear", bounds=(0.01, 100.0))
    np.testing.assert_allclose(slack.weights, free.weights, rtol=1e-10)


def test_weighted_result_serialises_without_the_data():
    df = _cells_frame(12)
    res = cs.weighting.rake(df, margins={"gender": {"f": 0.5, "m": 0.5}}, by="country")
    d = json.loads(res.to_json())
    assert d["kind"] == "Weighted" and d["method"] == "rake" and d["rows"] == len(df)
    assert d["design"]["calibration"]["variables"] == ["gender"] and "data" not in d
    assert d["provenance"]["method"] == "weighting.rake"
    assert res.to_frame().equals(res.table) and res.summary() is not None
