"""Tests of cips_stats.estimate.survey_mean against R survey 4.1.1 and by identities.

Reference values: tests/reference/survey_linearization.json, survey_replicate.json and
survey_calibration.json, written by validation/r/survey.R (R 4.2.2, survey 4.1.1; each file's
``meta`` holds the R call, versions, date and tolerance).  Tolerances:
  * linearization (closed form): relative 1e-8 (measured agreement ~1e-14);
  * replicate-weight variances given R's replicate weights: relative 1e-10 (measured ~1e-13);
  * SEs after calibration: relative 1e-8 (measured: postStratify/calibrate ~1e-13, rake ~1e-10,
    limited by R's raking stopping rule).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.errors import CipsError, DataError, SingletonPSUError

REF = Path(__file__).parent / "reference"
LIN = json.loads((REF / "survey_linearization.json").read_text())
REP = json.loads((REF / "survey_replicate.json").read_text())
CAL = json.loads((REF / "survey_calibration.json").read_text())
TOL_CLOSED = 1e-8
TOL_REP = 1e-10


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / name)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize("case", LIN["cases"], ids=[c["id"] for c in LIN["cases"]])
def test_linearization_matches_r(case):
    df = _data(case["data"])
    dom = None if case["domain"] is None else {case["domain"]["column"]: case["domain"]["value"]}
    r = cs.estimate.survey_mean(df, case["y"], weight=case["weight"], strata=case["strata"],
                                cluster=case["cluster"], fpc=case["fpc"], statistic=case["statistic"],
                                denominator=case["denominator"], domain=dom, lonely_psu=case["lonely_psu"])
    assert _rel(r.estimate, case["estimate"]) < TOL_CLOSED
    assert _rel(r.var, case["var"]) < TOL_CLOSED
    assert _rel(r.se, case["se"]) < TOL_CLOSED
    assert _rel(r.deff, case["deff"]) < TOL_CLOSED
    assert _rel(r.deff_replace, case["deff_replace"]) < TOL_CLOSED
    assert r.df == case["df"]
    assert _rel(r.ci_low, case["ci_t95"][0]) < TOL_CLOSED and _rel(r.ci_high, case["ci_t95"][1]) < TOL_CLOSED
    z = r.confint(0.95, df=math.inf)                      # R's confint() default (df = Inf)
    assert _rel(z[0], case["ci_normal95"][0]) < TOL_CLOSED and _rel(z[1], case["ci_normal95"][1]) < TOL_CLOSED
    if case["lonely_psu"] != "fail":
        assert any(f.code == "lonely_psu" for f in r.flags)


def _rep_call(df, case, res, RW, **extra):
    kw = dict(weight=case["weight"], se="replicate", replicate_weights=RW, replicate_mse=case["mse"], **extra)
    s = res["statistic"]
    if s == "mean_api00":
        return cs.estimate.survey_mean(df, "api00", **kw)
    if s == "total_enroll":
        return cs.estimate.survey_mean(df, "enroll", statistic="total", **kw)
    if s == "ratio_api00_api99":
        return cs.estimate.survey_mean(df, "api00", statistic="ratio", denominator="api99", **kw)
    return cs.estimate.survey_mean(df, "api00", domain={case["domain"]["column"]: case["domain"]["value"]}, **kw)


@pytest.mark.parametrize("case", REP["cases"], ids=[c["id"] for c in REP["cases"]])
def test_replicate_variance_matches_r_exactly(case):
    df = _data(case["data"])
    RW = pd.read_csv(REF / case["replicates_file"], header=None).to_numpy(dtype=float)
    assert RW.shape[0] == len(df)
    for res in case["results"]:
        r = _rep_call(df, case, res, RW, replicate_scale=case["scale"], replicate_rscales=case["rscales"])
        assert _rel(r.estimate, res["estimate"]) < TOL_REP
        assert _rel(r.var, res["var"]) < TOL_REP, res["statistic"]
        assert r.df == case["degf"]
        assert r.se_method == "replicate"


def test_replicate_default_scales_follow_svrepdesign():
    # svrepdesign(type = "subbootstrap"/"JK1") defaults reproduce as.svrepdesign's scale for these designs
    for cid, rtype in (("clus1_subboot_mse", "subbootstrap"), ("clus1_jk1", "JK1")):
        case = next(c for c in REP["cases"] if c["id"] == cid)
        if rtype == "JK1":       # as.svrepdesign's JK1 scale includes the fpc; svrepdesign's default does not
            continue
        df = _data(case["data"])
        RW = pd.read_csv(REF / case["replicates_file"], header=None).to_numpy(dtype=float)
        res = case["results"][0]
        r = _rep_call(df, case, res, RW, replicate_type=rtype)
        assert _rel(r.var, res["var"]) < TOL_REP
    with pytest.raises(DataError, match="replicate_scale"):
        cs.estimate.survey_mean(_data("survey_apiclus1.csv"), "api00", weight="pw", se="replicate",
                                replicate_weights=np.ones((183, 5)))


def test_replicate_weights_by_column_prefix():
    case = next(c for c in REP["cases"] if c["id"] == "clus1_boot")
    df = _data(case["data"])
    RW = pd.read_csv(REF / case["replicates_file"], header=None).to_numpy(dtype=float)
    wide = pd.concat([df, pd.DataFrame(RW, columns=[f"repw{i}" for i in range(RW.shape[1])])], axis=1)
    r = cs.estimate.survey_mean(wide, "api00", weight="pw", se="replicate", replicate_weights="repw",
                                replicate_scale=case["scale"])
    assert _rel(r.var, case["results"][0]["var"]) < TOL_REP


@pytest.mark.parametrize("case", CAL["cases"], ids=[c["id"] for c in CAL["cases"]])
def test_se_after_calibration_matches_r(case):
    df = _data(case["data"])
    m = case["margins"]
    base = cs.estimate.Design(weight="pw", strata=case["strata"], cluster=case["cluster"], fpc=case["fpc"])
    if case["method"] == "poststratify":
        out = cs.weighting.poststratify(df, variables="stype", population=m["stype"], weight=base)
    elif case["method"] == "rake":
        out = cs.weighting.rake(df, margins=m, weight=base, tol=1e-13, max_iter=500)
    else:
        out = cs.weighting.calibrate(df, margins=m, totals=case["numeric_totals"], method=case["method"],
                                     weight=base)
    assert out.design.strata == case["strata"] and out.design.calibration is not None
    kw = dict(weight=out.design)
    for res in case["results"]:
        s = res["statistic"]
        if s == "mean_api00":
            r = cs.estimate.survey_mean(out.frame, "api00", **kw)
        elif s == "total_enroll":
            r = cs.estimate.survey_mean(out.frame, "enroll", statistic="total", **kw)
        elif s == "ratio_api00_api99":
            r = cs.estimate.survey_mean(out.frame, "api00", statistic="ratio", denominator="api99", **kw)
        else:
            r = cs.estimate.survey_mean(out.frame, "api00", domain={"comp.imp": "Yes"}, **kw)
        assert _rel(r.estimate, res["estimate"]) < TOL_CLOSED
        assert _rel(r.var, res["var"]) < TOL_CLOSED, s
        assert any(f.code == "calibration_se" for f in r.flags)


def test_calibration_can_be_ignored_and_then_matches_plain_formula():
    df = _data("survey_apiclus1.csv")
    base = cs.estimate.Design(weight="pw", cluster="dnum", fpc="fpc")
    out = cs.weighting.poststratify(df, variables="stype", population={"E": 4421, "H": 755, "M": 1018},
                                    weight=base)
    with_cal = cs.estimate.survey_mean(out.frame, "api00", weight=out.design)
    without = cs.estimate.survey_mean(out.frame, "api00", weight=out.design.update(calibration=None))
    plain = cs.estimate.survey_mean(out.frame.drop(columns="pw_base"), "api00", weight="pw", cluster="dnum",
                                    fpc="fpc")
    assert without.var == pytest.approx(plain.var, rel=1e-12)
    assert with_cal.var < without.var          # post-stratification on stype explains variance of api00


def test_lonely_psu_fails_fast_with_remedies():
    df = _data("survey_apistrat.csv")
    with pytest.raises(SingletonPSUError) as ei:
        cs.estimate.survey_mean(df, "api00", weight="pw", strata="stratum_lonely")
    msg = str(ei.value)
    assert "L" in [p.value for p in ei.value.problems]
    for remedy in ("certainty", "adjust", "average", "remove", "survey.lonely.psu", "collapse"):
        assert remedy in msg


def test_domain_mean_equals_ratio_estimator():
    # R survey tests/domain.R: a domain mean is the ratio of y*I to I
    df = _data("survey_apiclus1.csv")
    df["ind"] = (df["stype"] == "M").astype(float)
    df["y_ind"] = df["api00"] * df["ind"]
    dom = cs.estimate.survey_mean(df, "api00", weight="pw", cluster="dnum", fpc="fpc", domain={"stype": "M"})
    rat = cs.estimate.survey_mean(df, "y_ind", weight="pw", cluster="dnum", fpc="fpc", statistic="ratio",
                                  denominator="ind")
    assert dom.estimate == pytest.approx(rat.estimate, rel=1e-12)
    assert dom.se == pytest.approx(rat.se, rel=1e-10)


def test_unit_weights_give_srs_with_replacement():
    rng = np.random.default_rng(3)
    y = rng.normal(size=57)
    df = pd.DataFrame({"y": y})
    r = cs.estimate.survey_mean(df, "y")
    assert r.estimate == pytest.approx(y.mean(), rel=1e-12)
    assert r.se == pytest.approx(y.std(ddof=1) / math.sqrt(len(y)), rel=1e-12)
    assert r.df == len(y) - 1
    assert r.deff_replace == pytest.approx(1.0, rel=1e-12)


def test_total_and_proportion_and_missing_values():
    df = pd.DataFrame({"y": [1.0, 0.0, np.nan, 1.0, 1.0], "w": [2.0, 1.0, 5.0, 1.0, 0.0]})
    p = cs.estimate.survey_mean(df, "y", weight="w", statistic="proportion")
    assert p.estimate == pytest.approx(3.0 / 4.0)
    assert p.n == 3                                 # missing and zero-weight rows are out
    assert any(f.code == "missing_dropped" for f in p.flags)
    t = cs.estimate.survey_mean(df, "y", weight="w", statistic="total")
    assert t.estimate == pytest.approx(3.0)
    with pytest.raises(DataError, match="0/1"):
        cs.estimate.survey_mean(df.assign(y=[1.0, 2.0, 0.0, 1.0, 1.0]), "y", weight="w", statistic="proportion")


@pytest.mark.parametrize("bad, match, error", [
    (dict(weight="wneg"), "negative", DataError),
    (dict(domain={"g": "zzz"}), "empty", DataError),
    (dict(strata="s_na"), "missing", DataError),
    (dict(weight="nope"), "nope", DataError),
    (dict(statistic="median"), "statistic", CipsError),
    (dict(se="magic"), "se=", CipsError),
    (dict(lonely_psu="ignore"), "lonely_psu", CipsError),
    (dict(statistic="ratio"), "denominator", CipsError),
    (dict(ci=1.5), "ci=", CipsError),
    (dict(ci=0), "ci=", CipsError),
    (dict(variance="both"), "variance", CipsError),
    (dict(weight=cs.estimate.Design(weight="w"), strata="g"), "not both", CipsError),
    (dict(se="bootstrap", seed=-1), "seed", CipsError),
])
def test_bad_input_raises_clear_errors(bad, match, error):
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "w": 1.0, "wneg": [1.0, -1.0, 1.0, 1.0], "g": list("aabb"),
                       "s_na": [1, 1, None, 2]})
    kw = dict(weight="w")
    kw.update(bad)
    with pytest.raises(error, match=match) as ei:
        cs.estimate.survey_mean(df, "y", **kw)
    if bad.get("weight") == "wneg":                 # rows are 1-based: the second respondent is row 2
        assert ei.value.problems[0].row == 2 and ei.value.problems[0].column == "wneg"


def test_fresh_bootstrap_within_monte_carlo_error_of_linearization():
    df = _data("survey_apistrat.csv")
    lin = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype")
    B = 2000
    boot = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype", se="bootstrap", n_boot=B, seed=11)
    again = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype", se="bootstrap", n_boot=B, seed=11)
    assert boot.se == again.se                                  # same seed, same numbers
    # relative SD of a bootstrap SE ~ sqrt(1/(2(B-1))); allow 4 SDs
    assert abs(boot.se / lin.se - 1) < 4 * math.sqrt(1 / (2 * (B - 1))) + 0.01
    assert boot.se_method == "bootstrap" and boot.df == lin.df
    assert boot.provenance.seed == 11
    # no seed: one is drawn and recorded, and reproduces the result
    fresh = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype", se="bootstrap", n_boot=200)
    assert isinstance(fresh.provenance.seed, int)
    again = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype", se="bootstrap", n_boot=200,
                                    seed=fresh.provenance.seed)
    assert again.se == fresh.se


def test_bootstrap_with_fpc_is_flagged():
    df = _data("survey_apiclus1.csv")
    r = cs.estimate.survey_mean(df, "api00", weight="pw", cluster="dnum", fpc="fpc", se="bootstrap", n_boot=50,
                                seed=1)
    assert any(f.code == "bootstrap_no_fpc" for f in r.flags)


def test_result_serialises_and_has_provenance():
    df = _data("survey_apistrat.csv")
    r = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype", fpc="fpc", ci=0.9)
    d = json.loads(r.to_json())
    assert d["kind"] == "SurveyEstimate" and d["provenance"]["options"]["fpc"] == "fpc"
    f = r.to_frame()
    assert {"estimate", "se", "ci_low", "ci_high", "df", "deff"} <= set(f.columns)
    assert r.ci_low < r.estimate < r.ci_high and r.ci == 0.9
    assert (r.ci_low, r.ci_high) == r.confint(0.9)


def test_survey_data_input_is_accepted():
    df = _data("survey_apistrat.csv")
    sd = cs.SurveyData(frame=df, instrument=cs.Instrument.default())
    a = cs.estimate.survey_mean(sd, "api00", weight="pw", strata="stype")
    b = cs.estimate.survey_mean(df, "api00", weight="pw", strata="stype")
    assert a.se == b.se
    # the data model's design columns are used by default
    sd2 = cs.SurveyData(frame=df.rename(columns={"pw": "weight", "stype": "stratum"}),
                        instrument=cs.Instrument.default())
    c = cs.estimate.survey_mean(sd2, "api00")
    assert c.se == pytest.approx(b.se, rel=1e-12) and c.df == b.df


def _population(rng):
    H, C, M = 4, 60, 20
    stratum = np.repeat(np.arange(H), C * M)
    cluster = np.repeat(np.arange(H * C), M)
    female = rng.random(H * C * M) < np.repeat(rng.uniform(0.2, 0.6, H * C), M)
    y = (np.repeat(rng.normal(0, 1, H * C), M) + stratum * 0.5 + 1.5 * female
         + rng.normal(0, 1, H * C * M))
    return pd.DataFrame({"stratum": stratum, "cluster": cluster, "gender": np.where(female, "f", "m"), "y": y})


def _coverage(n_rep, seed):
    rng = np.random.default_rng(seed)
    pop = _population(rng)
    truth = pop["y"].mean()
    n_f = int((pop["gender"] == "f").sum())
    margins = {"gender": {"f": n_f, "m": len(pop) - n_f}}
    hits = {"linearization": 0, "raked": 0}
    for _ in range(n_rep):
        picks = [rng.choice(np.arange(h * 60, (h + 1) * 60), 8, replace=False) for h in range(4)]
        s = pop[pop["cluster"].isin(np.concatenate(picks))].assign(weight=60 / 8, fpc=60)
        r = cs.estimate.survey_mean(s, "y", weight="weight", strata="stratum", cluster="cluster", fpc="fpc")
        hits["linearization"] += r.ci_low <= truth <= r.ci_high
        design = cs.estimate.Design(weight="weight", strata="stratum", cluster="cluster", fpc="fpc")
        raked = cs.weighting.rake(s, margins=margins, weight=design)
        r2 = cs.estimate.survey_mean(raked.frame, "y", weight=raked.design)
        hits["raked"] += r2.ci_low <= truth <= r2.ci_high
    return {k: v / n_rep for k, v in hits.items()}


@pytest.mark.slow
def test_ci_coverage_linearization_and_raked_by_simulation():
    # Known truth: a finite population (4 strata x 60 clusters x 20 units); stratified one-stage
    # cluster samples of 8 clusters per stratum without replacement (fpc), 95% t CIs with df = 28,
    # plain and after raking to the population's gender margin (calibration-aware SE).
    # 2000 replications: Monte Carlo SD of a 95% coverage is 0.49 points; allow about 3 SDs.
    # (A 300-replication run gave 0.953 for both.)
    cov = _coverage(2000, 20261122)
    for k, v in cov.items():
        assert abs(v - 0.95) < 0.015, (k, v)


def test_negative_weights_only_from_linear_calibration():
    df = pd.DataFrame({"lead": ["y", "n", "n", "y", "n", "y"], "age": [30.0, 40, 50, 60, 35, 45],
                       "y": [1.0, 2.0, 3.0, 4.0, 2.5, 3.5], "weight": 1.0})
    with pytest.warns(cs.errors.NumericalWarning, match="negative"):        # emitted and attached
        res = cs.weighting.calibrate(df, margins={"lead": {"y": 40, "n": 60}}, totals={"age": 2500.0})
    assert (res.weights < 0).any() and res.table["n_negative"].iloc[0] > 0
    assert any(f.code == "negative_weights" for f in res.flags)
    with pytest.warns(cs.errors.NumericalWarning, match="negative"):
        r = cs.estimate.survey_mean(res.frame, "y", weight=res.design)
    assert any(f.code == "negative_weights" for f in r.flags) and np.isfinite(r.se)
    with pytest.raises(DataError, match="negative"):
        cs.estimate.survey_mean(res.frame, "y", weight="weight")
    # bounded (logit) calibration keeps every g inside its bounds, so no negative weights
    res2 = cs.weighting.calibrate(df.assign(weight=10.0), margins={"lead": {"y": 27, "n": 33}}, method="logit",
                                  bounds=(0.5, 2.0))
    g = res2.weights / 10.0
    assert (g >= 0.5).all() and (g <= 2.0).all()
