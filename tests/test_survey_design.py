"""Tests of the survey Design (cips_stats.estimate.design), multistage variances and survey_quantile.

Reference values (R 4.2.2, survey 4.1.1), written by validation/r/survey_multistage_quantile.R:
  * tests/reference/survey_multistage.json: svymean/svytotal/svyratio on
    svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, weights = ~pw, data = apiclus2) (also with the
    districts in two strata, and fpc as fractions), R's default multistage variance and
    options(survey.ultimate.cluster = TRUE); closed form, relative 1e-8.
  * tests/reference/survey_quantile.json: svyquantile (qrule = "math", interval.type = "mean"; and
    "quantile" on replicate designs built from R's own replicate weights; Woodruff on a raked design);
    relative 1e-8.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.errors import CipsError, DataError, DesignError, SingletonPSUError
from cips_stats.estimate.design import Design, prepare

REF = Path(__file__).parent / "reference"
MS = json.loads((REF / "survey_multistage.json").read_text())
QU = json.loads((REF / "survey_quantile.json").read_text())
REP = {c["id"]: c for c in json.loads((REF / "survey_replicate.json").read_text())["cases"]}
TOL = 1e-8


def _data(name):
    return pd.read_csv(REF / name)


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# ------------------------------------------------------------------------------------------- Design
def test_design_is_frozen_and_names_its_columns():
    d = Design(weight="pw", strata="stype", cluster=["dnum", "snum"], fpc=("fpc1", "fpc2"))
    assert d.cluster == ("dnum", "snum") and d.stages == 2
    assert d.columns() == ("pw", "stype", "dnum", "snum", "fpc1", "fpc2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.weight = "w"                                                         # type: ignore[misc]
    assert d.update(strata=None).strata is None and d.strata == "stype"
    assert Design(cluster=["psu"]).cluster == "psu"                           # one stage: a plain name


@pytest.mark.parametrize("kw, match", [
    (dict(weight=3), "weight"), (dict(cluster=["a"], fpc=["f1", "f2"]), "stages"),
    (dict(fpc=["f1", "f2"]), "cluster"), (dict(calibration="rake"), "Calibration"),
])
def test_bad_designs_raise_cips_errors(kw, match):
    with pytest.raises(CipsError, match=match):
        Design(**kw)


def test_design_columns_missing_from_the_data_are_named():
    df = _data("survey_apiclus1.csv")
    with pytest.raises(DesignError) as ei:
        cs.estimate.survey_mean(df, "api00", weight=Design(weight="pw", cluster="psu", fpc="fpc_x"))
    assert {p.column for p in ei.value.problems} == {"psu", "fpc_x"}


def test_survey_data_carries_its_design_and_the_calibration():
    sim = cs.simulate(seed=3, n_countries=2, n_repeat=0, n_officials=80, n_private=60)
    data = sim.data
    assert data.design is None                                   # the data model's default design
    raked = cs.weighting.rake(data, margins={"gender": {"female": 0.5, "male": 0.5}},
                              by=("country", "iteration", "group"))
    assert raked.data.design is raked.design and raked.design.calibration.method == "rake"
    frame = raked.data.frame
    item = data.instrument.item_ids[0]
    a = cs.estimate.survey_mean(raked.data, item)                # the SurveyData's own design
    b = cs.estimate.survey_mean(frame, item, weight=raked.design)
    c = cs.estimate.survey_mean(frame, item, weight="weight")    # the weights without their calibration
    assert a.se == b.se and a.se != pytest.approx(c.se, rel=1e-6)
    assert a.provenance.options["calibration"] == "rake"
    # a weight column on a SurveyData keeps the data's strata and clusters, without the calibration
    strat = sim.data.with_frame(sim.data.frame.assign(stratum=sim.data.frame["country"]))
    d1 = cs.estimate.survey_mean(strat, item, weight="weight")
    d2 = cs.estimate.survey_mean(strat.frame, item, weight="weight", strata="stratum")
    assert d1.se == d2.se and d1.provenance.options["strata"] == "stratum"


def test_merge_keeps_the_raked_mean_se():
    # Issue 12: after an ordinary pandas merge the SE of a raked mean changed (0.0531 -> 0.0593) because
    # the calibration rode in DataFrame.attrs, which merge drops.  The Design names columns: same SE.
    df = _data("survey_apiclus1.csv")
    design = Design(weight="pw", cluster="dnum", fpc="fpc")
    res = cs.weighting.rake(df, margins={"stype": {"E": 4421, "H": 755, "M": 1018},
                                         "sch.wide": {"No": 1072, "Yes": 5122}}, weight=design, tol=1e-13)
    before = cs.estimate.survey_mean(res.frame, "api00", weight=res.design)
    extra = pd.DataFrame({"snum": df["snum"], "region": np.where(df["snum"] % 2 == 0, "north", "south")})
    merged = res.frame.merge(extra, on="snum", how="left")
    assert not merged.attrs                                     # nothing rides on attrs
    after = cs.estimate.survey_mean(merged, "api00", weight=res.design)
    assert after.se == before.se and after.estimate == before.estimate
    shuffled = merged.sample(frac=1.0, random_state=1).reset_index(drop=True)
    again = cs.estimate.survey_mean(shuffled, "api00", weight=res.design)
    assert again.se == pytest.approx(before.se, rel=1e-12)
    plain = cs.estimate.survey_mean(merged, "api00", weight=res.design.update(calibration=None))
    assert plain.se > before.se                                 # the calibration matters for this SE


# -------------------------------------------------------------------------------------- multistage
@pytest.mark.parametrize("case", MS["cases"], ids=[c["id"] for c in MS["cases"]])
def test_multistage_variance_matches_r(case):
    df = _data(case["data"])
    design = Design(weight=case["weight"], strata=case.get("strata"), cluster=tuple(case["cluster"]),
                    fpc=tuple(case["fpc"]))
    dom = None if case["domain"] is None else {case["domain"]["column"]: case["domain"]["value"]}
    r = cs.estimate.survey_mean(df, case["y"], weight=design, statistic=case["statistic"],
                                denominator=case["denominator"], domain=dom, variance=case["variance"])
    assert _rel(r.estimate, case["estimate"]) < TOL
    assert _rel(r.var, case["var"]) < TOL, (r.var, case["var"])
    assert r.df == case["df"] and r.variance == case["variance"]


def test_multistage_exceeds_ultimate_cluster_and_equals_it_without_second_stage_fpc():
    df = _data("survey_apiclus2.csv")
    two = Design(weight="pw", cluster=("dnum", "snum"), fpc=("fpc1", "fpc2"))
    ms = cs.estimate.survey_mean(df, "api00", weight=two)
    uc = cs.estimate.survey_mean(df, "api00", weight=two, variance="ultimate")
    assert ms.se > uc.se                                  # the second stage adds f1 * within-district variance
    # the second stage's contribution is n1/N1 times the within-district variance: check it by hand
    prep = prepare(df, two)
    z = np.where(True, df["pw"] * (df["api00"] - ms.estimate) / df["pw"].sum(), 0.0)
    st2 = prep.stages[1]
    T = np.bincount(st2.unit, weights=z)
    G = st2.n_g.size
    mean_g = np.bincount(st2.group, weights=T, minlength=G) / st2.n_g
    dev2 = (T - mean_g[st2.group]) ** 2
    within = np.bincount(st2.group, weights=dev2, minlength=G)
    ok = st2.n_g > 1
    v2 = np.sum((st2.f_g * st2.n_g / np.maximum(st2.n_g - 1, 1) * within)[ok]
                * prep.stages[0].frac_g[prep.stages[0].group][ok])
    assert ms.var - uc.var == pytest.approx(v2, rel=1e-10)
    # without an fpc at the second stage R (and we) keep the ultimate-cluster variance, flagged
    one_fpc = cs.estimate.survey_mean(df, "api00", weight=Design(weight="pw", cluster=("dnum", "snum")))
    nofpc = cs.estimate.survey_mean(df, "api00", weight="pw", cluster="dnum")
    assert one_fpc.se == pytest.approx(nofpc.se, rel=1e-12)
    assert any(f.code == "ultimate_cluster" for f in one_fpc.flags)


def test_lonely_unit_at_the_second_stage_fails_fast():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5], "psu": [1, 1, 2, 2, 3], "ssu": [1, 2, 3, 4, 5],
                       "N1": 10, "N2": [5, 5, 4, 4, 3]})
    d = Design(weight=None, cluster=("psu", "ssu"), fpc=("N1", "N2"))
    with pytest.raises(SingletonPSUError, match="stage 2"):
        cs.estimate.survey_mean(df, "y", weight=d)
    r = cs.estimate.survey_mean(df, "y", weight=d, lonely_psu="certainty")
    assert np.isfinite(r.se) and any(f.code == "lonely_psu" for f in r.flags)
    # all of a PSU's units taken (N2 = n2 = 1): no variance there and nothing to fail on
    r2 = cs.estimate.survey_mean(df.assign(N2=[5, 5, 4, 4, 1]), "y", weight=d)
    assert np.isfinite(r2.se)


# --------------------------------------------------------------------------------------- quantiles
def _quantile_call(case):
    df = _data(case["data"])
    dom = None if case["domain"] is None else {case["domain"]["column"]: case["domain"]["value"]}
    kw = dict(quantiles=(0.25, 0.5, 0.75), ci=case["ci"], domain=dom, interval=case["interval"])
    if "replicates_file" in case:
        RW = pd.read_csv(REF / case["replicates_file"], header=None).to_numpy(dtype=float)
        return cs.estimate.survey_quantile(df, case["y"], weight="pw", se="replicate", replicate_weights=RW,
                                           replicate_scale=case["scale"], replicate_rscales=case["rscales"],
                                           replicate_mse=case["mse"], **kw)
    design = Design(weight=case["weight"], strata=case["strata"], cluster=case["cluster"], fpc=case["fpc"])
    if "rake" in case:                   # Woodruff on a raked design: the CDF's SE accounts for the raking
        raked = cs.weighting.rake(df, margins=case["rake"], weight=design, tol=1e-13, max_iter=500)
        df, design = raked.frame, raked.design
    return cs.estimate.survey_quantile(df, case["y"], weight=design, variance=case["variance"], **kw)


@pytest.mark.parametrize("case", QU["cases"], ids=[c["id"] for c in QU["cases"]])
def test_survey_quantile_matches_r_svyquantile(case):
    q = _quantile_call(case)
    t = q.table
    np.testing.assert_array_equal(t["quantile"], case["quantile"])
    np.testing.assert_allclose(t["estimate"], case["estimate"], rtol=TOL)
    np.testing.assert_allclose(t["ci_low"], case["ci_low"], rtol=TOL)
    np.testing.assert_allclose(t["ci_high"], case["ci_high"], rtol=TOL)
    np.testing.assert_allclose(t["se"], case["se"], rtol=TOL)
    assert q.df == case["df"] and q.interval == case["interval"]


def test_quantile_rule_edges_and_errors():
    df = pd.DataFrame({"y": [3.0, 1.0, 2.0, 4.0, np.nan], "w": [1.0, 1.0, 1.0, 1.0, 1.0]})
    t = cs.estimate.survey_quantile(df, "y", weight="w", quantiles=(0.0, 0.25, 0.5, 1.0)).table
    # math rule: F(1) = 0.25 exactly -> 1; p = 0.5 -> 2; p = 1 -> the maximum; p = 0 -> R's qs gives the
    # second value when no cumulative share is <= p (survey:::qs picks position 1 and moves up)
    assert t["estimate"].tolist() == [2.0, 1.0, 2.0, 4.0]
    w0 = cs.estimate.survey_quantile(df.assign(w=[1.0, 0.0, 1.0, 1.0, 1.0]), "y", weight="w", quantiles=(0.5,))
    assert w0.table["estimate"].tolist() == [3.0] and w0.n == 3        # zero weights are ignored
    with pytest.raises(CipsError, match="quantiles"):
        cs.estimate.survey_quantile(df, "y", quantiles=(1.5,))
    with pytest.raises(CipsError, match="replicates"):
        cs.estimate.survey_quantile(df, "y", interval="quantile")
    with pytest.raises(DataError, match="empty"):
        cs.estimate.survey_quantile(df, "y", domain={"y": 99.0})


def test_quantile_bootstrap_is_reproducible_and_close_to_woodruff():
    df = _data("survey_apistrat.csv")
    design = Design(weight="pw", strata="stype")
    lin = cs.estimate.survey_quantile(df, "api00", weight=design, quantiles=(0.5,))
    boot = cs.estimate.survey_quantile(df, "api00", weight=design, quantiles=(0.5,), se="bootstrap",
                                       interval="quantile", n_boot=400, seed=5)
    again = cs.estimate.survey_quantile(df, "api00", weight=design, quantiles=(0.5,), se="bootstrap",
                                        interval="quantile", n_boot=400, seed=boot.provenance.seed)
    assert boot.table.equals(again.table) and boot.provenance.seed == 5
    ratio = boot.table["se"].iloc[0] / lin.table["se"].iloc[0]
    assert 0.5 < ratio < 2.0 and math.isfinite(ratio)
