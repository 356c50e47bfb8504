"""Tests of cips_stats.replicates: design properties of replicate weights and R survey references.

Reference: tests/reference/replicates_survey.json, written by validation/r/replicates_reference.R
(R survey 4.1.1; the R call, versions, date and tolerance are inside the file).  numpy and R draw
different random numbers, so the bootstrap check is: *with R's own replicate weights* our variance
formula reproduces R's SE (rtol 1e-10); our own draws are checked for their distribution.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cips_stats.errors import CipsError, DataError, SingletonPSUError
from cips_stats.replicates import (
    RaoWuPlan,
    jackknife_weights,
    rao_wu_scale,
    rao_wu_weights,
    replicate_variance,
)

REF = Path(__file__).parent / "reference" / "replicates_survey.json"
RTOL_R = 1e-10


@pytest.fixture(scope="module")
def ref():
    return json.loads(REF.read_text())


def _ref_data(ref):
    d = ref["data"]
    return (np.asarray(d["stratum"]), np.asarray(d["psu"]), np.asarray(d["w"], float), np.asarray(d["y"], float))


def _ratio_mean(rw, y):
    return (rw * y).sum(axis=-1) / rw.sum(axis=-1)


@pytest.mark.parametrize("case", ["subbootstrap_clustered", "subbootstrap_element", "bootstrap_clustered",
                                  "JKn_clustered", "JK1_element"])
def test_variance_formula_with_r_replicate_weights_reproduces_r_se(ref, case):
    strata, psu, w, y = _ref_data(ref)
    c = ref[case]
    mult = np.asarray(c["repweights"], float)            # rows x replicates
    thetas = _ratio_mean(mult.T * w, y)
    se = np.sqrt(replicate_variance(thetas, scale=c["scale"], rscales=c["rscales"]))
    assert se == pytest.approx(np.ravel(c["se"])[0], rel=RTOL_R)
    assert _ratio_mean(w, y) == pytest.approx(c["mean"], rel=RTOL_R)


def test_r_scale_factors_match_ours(ref):
    strata, psu, w, y = _ref_data(ref)
    b = ref["replicates"]
    assert rao_wu_scale(b) == pytest.approx(ref["subbootstrap_clustered"]["scale"], rel=1e-12)
    plan = RaoWuPlan.build(w.size, strata=strata, cluster=psu, bootstrap_type="bootstrap")
    assert plan.scale(b) == pytest.approx(ref["bootstrap_clustered"]["scale"], rel=1e-12)
    # R's subbootstrap multipliers take only the values c * n_h / (n_h - 1): ours too
    r_mult = np.asarray(ref["subbootstrap_clustered"]["repweights"], float)
    ours = rao_wu_weights(weight=np.ones_like(w), strata=strata, cluster=psu, n_boot=b, seed=3)
    for h in np.unique(strata):
        nh = len(np.unique(psu[strata == h]))
        for m in (r_mult[strata == h].ravel(), ours[:, strata == h].ravel()):
            k = m * (nh - 1) / nh
            np.testing.assert_allclose(k, np.round(k), atol=1e-12)
            assert k.max() <= nh - 1


@pytest.mark.parametrize("case,jtype,clustered", [("JKn_clustered", "JKn", True), ("JK1_element", "JK1", False)])
def test_jackknife_weights_equal_r(ref, case, jtype, clustered):
    strata, psu, w, y = _ref_data(ref)
    c = ref[case]
    jk = jackknife_weights(weight=w, strata=strata if jtype == "JKn" else None,
                           cluster=psu if clustered else None, replicate_type=jtype)
    r_rw = np.asarray(c["repweights"], float).T * w     # replicates x rows
    # same set of replicates (R orders them by its own PSU order)
    key = lambda a: np.lexsort(np.round(a, 9).T[::-1])  # noqa: E731
    np.testing.assert_allclose(jk.weights[key(jk.weights)], r_rw[key(r_rw)], rtol=1e-12)
    assert jk.scale == pytest.approx(c["scale"], rel=1e-12)
    np.testing.assert_allclose(np.sort(jk.rscales), np.sort(np.asarray(c["rscales"], float)), rtol=1e-12)
    se = np.sqrt(replicate_variance(_ratio_mean(jk.weights, y), scale=jk.scale, rscales=jk.rscales))
    assert se == pytest.approx(np.ravel(c["se"])[0], rel=RTOL_R)


def test_replicates_respect_the_design(ref):
    strata, psu, w, y = _ref_data(ref)
    b = 500
    rw = rao_wu_weights(weight=w, strata=strata, cluster=psu, n_boot=b, seed=11)
    mult = rw / w
    for h in np.unique(strata):
        in_h = strata == h
        psus = np.unique(psu[in_h])
        nh = psus.size
        # every row of a PSU shares its PSU's multiplier; unselected PSUs get weight zero
        for p in psus:
            m = mult[:, in_h & (psu == p)]
            np.testing.assert_allclose(m.max(axis=1), m.min(axis=1), rtol=1e-12)
        first = np.stack([mult[:, np.flatnonzero(in_h & (psu == p))[0]] for p in psus], axis=1)  # B x nh
        k = first * (nh - 1) / nh
        np.testing.assert_allclose(k, np.round(k), atol=1e-12)
        # exactly n_h - 1 draws per stratum and replicate
        np.testing.assert_allclose(k.sum(axis=1), nh - 1, atol=1e-9)
        assert np.any(k == 0)
        # weighted total within a stratum is unbiased: E[count] = (n_h - 1)/n_h
        tot = rw[:, in_h].sum(axis=1)
        se_tot = tot.std(ddof=1) / np.sqrt(b)
        assert abs(tot.mean() - w[in_h].sum()) < 4 * se_tot


def test_counts_are_multinomial_uniform():
    # one stratum of 5 PSUs, 4 draws: marginal count ~ Binomial(4, 1/5); joint cell frequencies uniform
    plan = RaoWuPlan.build(5)
    counts = np.vstack(list(plan.iter_counts(20_000, np.random.default_rng(5), 4096)))
    assert np.all(counts.sum(axis=1) == 4)
    from scipy import stats

    obs = np.stack([np.bincount(counts[:, j], minlength=5) for j in range(5)])
    exp = stats.binom.pmf(np.arange(5), 4, 0.2) * counts.shape[0]
    chi2 = ((obs - exp) ** 2 / exp).sum(axis=1)
    assert np.all(stats.chi2.sf(chi2, df=4) > 1e-4)
    # covariance of two counts of a multinomial: -m p^2 = -4/25
    cov = np.cov(counts[:, 0], counts[:, 1])[0, 1]
    assert cov == pytest.approx(-0.16, abs=0.02)


def test_bootstrap_type_draws_n_h():
    strata = np.repeat([0, 1, 2], [3, 5, 8])
    rw = rao_wu_weights(weight=np.ones(16), strata=strata, n_boot=50, seed=2, bootstrap_type="bootstrap")
    for h, nh in enumerate([3, 5, 8]):
        np.testing.assert_allclose(rw[:, strata == h].sum(axis=1), nh)
    assert np.array_equal(rw, np.round(rw))


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_same_numbers_whatever_the_chunk_size(chunk):
    rng = np.random.default_rng(0)
    n = 200
    strata = rng.integers(0, 6, n)
    cluster = rng.integers(0, 15, n)
    w = rng.uniform(0.5, 3, n)
    full = rao_wu_weights(weight=w, strata=strata, cluster=cluster, n_boot=100, seed=42)
    parts = np.vstack(list(rao_wu_weights(weight=w, strata=strata, cluster=cluster, n_boot=100, seed=42,
                                          chunk_size=chunk)))
    assert np.array_equal(full, parts)
    via_rng = rao_wu_weights(weight=w, strata=strata, cluster=cluster, n_boot=100, seed=np.random.default_rng(42))
    assert np.array_equal(full, via_rng)
    other = rao_wu_weights(weight=w, strata=strata, cluster=cluster, n_boot=100, seed=43)
    assert not np.array_equal(full, other)


def _stratified_linearization_se(w, y, strata):
    tot = w.sum()
    ybar = (w * y).sum() / tot
    z = w * (y - ybar) / tot
    v = 0.0
    for h in np.unique(strata):
        zh = z[strata == h]
        nh = zh.size
        v += nh / (nh - 1) * ((zh - zh.mean()) ** 2).sum()
    return np.sqrt(v)


def test_bootstrap_variance_agrees_with_linearization(ref):
    # closed form (with-replacement linearization) and R's svymean linearization SE on the same sample
    strata, psu, w, y = _ref_data(ref)
    lin = _stratified_linearization_se(w, y, strata)
    assert lin == pytest.approx(np.ravel(ref["linearization_element"]["se"])[0], rel=1e-10)
    b = 6000
    rw = rao_wu_weights(weight=w, strata=strata, n_boot=b, seed=8, dtype=np.float32)
    se_boot = np.sqrt(replicate_variance(_ratio_mean(rw.astype(float), y), scale=rao_wu_scale(b)))
    # Monte Carlo SE of a bootstrap SE with B replicates is about SE / sqrt(2B) (~1%); the bootstrap
    # of a ratio also differs from linearization at O(1/n) (small here with n = 43)
    assert se_boot / lin == pytest.approx(1.0, abs=0.06)


def test_bootstrap_variance_agrees_with_linearization_larger_sample():
    rng = np.random.default_rng(3)
    n = 1500
    strata = rng.integers(0, 10, n)
    w = rng.lognormal(0, 0.5, n)
    y = rng.normal(strata / 3.0, 1.0 + strata / 10.0)
    lin = _stratified_linearization_se(w, y, strata)
    b = 3000
    thetas = np.concatenate([_ratio_mean(c, y) for c in
                             rao_wu_weights(weight=w, strata=strata, n_boot=b, seed=1, chunk_size=500)])
    ratio = np.sqrt(replicate_variance(thetas, scale=rao_wu_scale(b))) / lin
    assert ratio == pytest.approx(1.0, abs=0.05)


def test_float32_replicate_weights_are_close_to_float64():
    rng = np.random.default_rng(4)
    w = rng.uniform(1, 5, 300)
    s = rng.integers(0, 4, 300)
    a = rao_wu_weights(weight=w, strata=s, n_boot=20, seed=9)
    b = rao_wu_weights(weight=w, strata=s, n_boot=20, seed=9, dtype=np.float32)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=2e-7)


def test_singleton_stratum_fails_or_is_taken_with_certainty():
    strata = ["a", "a", "a", "b"]
    with pytest.raises(SingletonPSUError, match="'b'"):
        rao_wu_weights(weight=np.ones(4), strata=strata, n_boot=5, seed=1)
    rw = rao_wu_weights(weight=np.ones(4) * 2, strata=strata, n_boot=5, seed=1, lonely_psu="certainty")
    np.testing.assert_allclose(rw[:, 3], 2.0)
    np.testing.assert_allclose(rw[:, :3].sum(axis=1), 6.0)
    with pytest.raises(SingletonPSUError):
        jackknife_weights(weight=np.ones(4), strata=strata)


def test_bad_input_is_named():
    with pytest.raises(DataError, match="negative or non-finite"):
        rao_wu_weights(weight=np.array([1.0, -1.0, 1.0]), n_boot=3, seed=1)
    with pytest.raises(DataError, match="strata= has 2 values"):
        rao_wu_weights(weight=np.ones(3), strata=[1, 2], n_boot=3, seed=1)
    with pytest.raises(DataError, match="missing"):
        rao_wu_weights(weight=np.ones(3), strata=[1, None, 2], n_boot=3, seed=1)
    with pytest.raises(CipsError, match="seed"):
        rao_wu_weights(weight=np.ones(3), n_boot=3, seed="one")
    with pytest.raises(CipsError, match="seed"):
        rao_wu_weights(weight=np.ones(3), n_boot=3, seed=-2)
    with pytest.raises(CipsError, match="bootstrap_type="):
        rao_wu_weights(weight=np.ones(3), n_boot=3, seed=1, bootstrap_type="BRR")
    with pytest.raises(CipsError, match="replicate_type="):
        jackknife_weights(weight=np.ones(3), replicate_type="BRR")
    # no seed: a fresh one is drawn (the draws differ between calls)
    a = rao_wu_weights(weight=np.ones(30), n_boot=20)
    b = rao_wu_weights(weight=np.ones(30), n_boot=20)
    assert a.shape == (20, 30) and not np.array_equal(a, b)


# -- the estimation colleague's R fixtures on the api data (validation/r/survey.R) -------------------------------
SURVEY_REF = Path(__file__).parent / "reference" / "survey_replicate.json"


@pytest.mark.parametrize("case_id", ["strat_subboot", "clus1_subboot_mse", "strat_boot_mse", "strat_jkn"])
def test_variance_formula_on_api_fixtures(case_id):
    import pandas as pd

    meta = json.loads(SURVEY_REF.read_text())
    case = next(c for c in meta["cases"] if c["id"] == case_id)
    frame = pd.read_csv(SURVEY_REF.parent / case["data"])
    rw = pd.read_csv(SURVEY_REF.parent / case["replicates_file"], header=None).to_numpy(float).T   # replicates x rows
    y = frame["api00"].to_numpy(float)
    res = next(r for r in case["results"] if r["statistic"] == "mean_api00")
    thetas = _ratio_mean(rw, y)
    center = res["estimate"] if case["mse"] else None
    v = replicate_variance(thetas, scale=case["scale"], rscales=case["rscales"], center=center)
    assert v == pytest.approx(res["var"], rel=1e-10)
    if case["type"] in ("subbootstrap", "bootstrap"):
        strata = frame["stype"].to_numpy() if case_id.startswith("strat") else None
        cluster = frame["dnum"].to_numpy() if case_id.startswith("clus") else None
        plan = RaoWuPlan.build(len(frame), strata=strata, cluster=cluster, bootstrap_type=case["type"])
        assert plan.scale(rw.shape[0]) == pytest.approx(case["scale"], rel=1e-12)
    if case["type"] == "subbootstrap":
        # R's analysis weights are pw * c * n_h/(n_h - 1) with integer counts c summing to n_h - 1
        strata = frame["stype"].to_numpy() if case_id.startswith("strat") else np.zeros(len(frame))
        cl = frame["dnum"].to_numpy() if case_id.startswith("clus") else np.arange(len(frame))
        mult = rw / frame["pw"].to_numpy(float)
        for h in np.unique(strata):
            rows = np.flatnonzero(strata == h)
            _, first = np.unique(cl[rows], return_index=True)
            nh = first.size
            k = mult[:, rows[first]] * (nh - 1) / nh
            np.testing.assert_allclose(k, np.round(k), atol=1e-9)
            np.testing.assert_allclose(k.sum(axis=1), nh - 1, atol=1e-8)


def test_bootstrap_se_agrees_with_survey_mean_linearization_on_api_strat():
    # survey_mean(se="linearization") is itself checked against R survey (its own tests)
    import pandas as pd

    import cips_stats as cs

    frame = pd.read_csv(SURVEY_REF.parent / "survey_apistrat.csv")
    lin = cs.estimate.survey_mean(frame, "api00", weight="pw", strata="stype")
    y = frame["api00"].to_numpy(float)
    b = 4000
    thetas = np.concatenate([_ratio_mean(c, y) for c in rao_wu_weights(weight=
        frame["pw"].to_numpy(float), strata=frame["stype"], n_boot=b, seed=21, chunk_size=1000)])
    se = np.sqrt(replicate_variance(thetas, scale=rao_wu_scale(b)))
    assert thetas.mean() == pytest.approx(lin.estimate, rel=1e-3)
    assert se / lin.se == pytest.approx(1.0, abs=0.05)          # MC error of the SE ~1.1% at B = 4000
