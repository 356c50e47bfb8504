"""The fast paths of the factor kernels give the numbers of the plain computations.

Gamma of the polychorics is accumulated in blocks of look-ups (checked against lavaan in
test_polychoric); FIML work that depends on the missing pattern alone is done once per
pattern; an invariance ladder computes its data's statistics once for all its fits;
``build_partable`` builds its table in lists.  Each test compares the fast path with a
computation that does not take it.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cips_stats as cs
from cips_stats.errors import CipsWarning
from cips_stats.factor import polychoric as pc
from cips_stats.factor.invariance import invariance
from cips_stats.factor.ml import MLProblem, _prepare_fiml, fiml_parts
from cips_stats.factor.model import CFAModel
from cips_stats.factor.syntax import build_partable
from cips_stats.factor.wls import _fit_wlsmv, fit_wlsmv


def _ordinal(rng, n, loads, cuts):
    f = rng.standard_normal((n, 1))
    e = rng.standard_normal((n, len(loads))) * np.sqrt(1 - np.square(loads))
    return np.digitize(f * loads + e, cuts) + 1.0


@pytest.fixture(scope="module")
def ragged():
    """Items with 4, 3 and 2 categories, 10% missing answers, unequal weights."""
    rng = np.random.default_rng(11)
    y = _ordinal(rng, 900, np.array([0.8, 0.7, 0.6, 0.5, 0.7]), [-1.0, 0.0, 1.0])
    y[:, 1] = np.minimum(y[:, 1], 3)
    y[:, 2] = np.where(y[:, 2] > 2, 2, 1)
    y[rng.random(y.shape) < 0.1] = np.nan
    return pd.DataFrame(y, columns=list("abcde")), rng.uniform(0.5, 2.0, len(y))


def test_gamma_does_not_depend_on_the_row_blocks(ragged):
    d, w = ragged
    for weight in (None, w):
        res = pc.polychoric(d, weight=weight)
        whole = res.gamma()
        np.testing.assert_allclose(pc._gamma(res, chunk=7), whole, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(pc._gamma(res, chunk=len(d)), whole, rtol=1e-12, atol=1e-12)
        # the kept pair tables are the ones Gamma would count again
        fresh = dataclasses.replace(res, _tables=None)
        np.testing.assert_allclose(pc._gamma(fresh), whole, rtol=1e-13, atol=1e-13)
        assert np.allclose(whole, whole.T) and np.linalg.eigvalsh(whole).min() > 0


def test_weighted_pairwise_n_counts_respondents_not_weights(ragged):
    d, w = ragged
    res = pc.polychoric(d, weight=w)
    both = d.notna().astype(int)
    np.testing.assert_array_equal(res.n_pairs.to_numpy(), both.T.to_numpy() @ both.to_numpy())


def test_a_ladders_fits_equal_separate_fits():
    """The ladder reuses its frame's split, categories and statistics: each level equals its own fit."""
    rng = np.random.default_rng(5)
    y = _ordinal(rng, 1500, np.array([0.8, 0.7, 0.6, 0.7]), [-0.8, 0.2, 1.1])
    df = pd.DataFrame(y, columns=["x1", "x2", "x3", "x4"]).assign(g=np.repeat(["u", "v", "w"], 500))
    df.loc[rng.random(len(df)) < 0.05, "x2"] = np.nan
    model = "f =~ x1 + x2 + x3 + x4"
    res = invariance(df, group="g", model=model, ordered=True, levels=("configural", "metric", "scalar"),
                     missing="pairwise", partial=False)
    equal = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "thresholds")}
    for level, eq in equal.items():
        alone = fit_wlsmv(df, model, ordered=True, group="g", group_equal=eq)
        fit = res.fits[level]
        for k in ("chi2", "chi2_scaled", "cfi_scaled", "rmsea_scaled", "srmr"):
            assert fit.fit[k] == pytest.approx(alone.fit[k], rel=1e-12, abs=1e-14), (level, k)
        np.testing.assert_allclose(fit.parameters["est"], alone.parameters["est"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fit.parameters["se"], alone.parameters["se"], rtol=1e-12, atol=1e-14)
    # one frame, one fingerprint (computed once)
    assert len({f.provenance.data_fingerprint for f in res.fits.values()}) == 1


def test_fit_wlsmv_data_cache_is_keyed_by_group_and_weight():
    rng = np.random.default_rng(8)
    y = _ordinal(rng, 600, np.array([0.8, 0.7, 0.6]), [-0.5, 0.5])
    df = pd.DataFrame(y, columns=["a", "b", "c"]).assign(g=np.repeat([1, 2], 300), w=rng.uniform(0.5, 2, 600))
    cache: dict = {}
    one = _fit_wlsmv(df, "f =~ a + b + c", data_cache=cache)
    two = _fit_wlsmv(df, "f =~ a + b + c", group="g", data_cache=cache)
    wtd = _fit_wlsmv(df, "f =~ a + b + c", weight="w", data_cache=cache)
    assert (one.n_groups, two.n_groups) == (1, 2)
    assert one.fit["chi2"] == pytest.approx(fit_wlsmv(df, "f =~ a + b + c").fit["chi2"], rel=1e-12, abs=1e-12)
    assert wtd.parameters["est"].to_numpy() == pytest.approx(
        fit_wlsmv(df, "f =~ a + b + c", weight="w").parameters["est"].to_numpy(), rel=1e-12)
    assert len(cache) == 3


@pytest.fixture(scope="module")
def repeated_patterns():
    """Rows sharing a few missing patterns (each pattern on many rows), and rows with their own."""
    rng = np.random.default_rng(3)
    n, p = 400, 5
    lam = np.array([0.9, 0.8, 0.7, 0.6, 0.75])
    y = rng.standard_normal((n, 1)) * lam + rng.standard_normal((n, p)) * 0.6
    pats = [[1], [3], [1, 4], [0, 2, 3]]
    for i in range(n):
        if i % 3 == 0:
            y[i, pats[i % len(pats)]] = np.nan
        elif i % 7 == 0:
            y[i, rng.choice(p, size=2, replace=False)] = np.nan
    return y


def test_fiml_loglik_by_pattern_equals_the_casewise_normal_density(repeated_patterns):
    y = repeated_patterns
    gd = _prepare_fiml(y)
    assert any(len(u) < len(rows) for (_, rows, _), (u, _, _) in zip(gd.kgroups, gd.patterns))
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 5))
    sigma, mu = a @ a.T / 5 + np.eye(5), rng.standard_normal(5) * 0.1
    expected = sum(stats.multivariate_normal(mu[o], sigma[np.ix_(o, o)]).logpdf(row[o])
                   for row in y for o in [np.flatnonzero(~np.isnan(row))])
    parts = fiml_parts(gd, sigma, mu, need_grad=True, need_rows=True)
    assert parts["loglik"] == pytest.approx(expected, rel=1e-12)
    # K (the sum over rows of the embedded W_mm^-1) by rows equals the pattern-weighted sum
    W = np.linalg.inv(sigma)
    K = np.zeros((5, 5))
    for row in y:
        m = np.flatnonzero(np.isnan(row))
        if m.size:
            K[np.ix_(m, m)] += np.linalg.inv(W[np.ix_(m, m)])
    np.testing.assert_allclose(parts["K"], K, rtol=1e-12, atol=1e-12)


def test_fiml_observed_information_by_pattern_is_the_hessian(repeated_patterns):
    y = repeated_patterns
    cm = CFAModel(build_partable("f =~ y1 + y2 + y3 + y4 + y5", meanstructure=True))
    prob = MLProblem(cm, [y], fiml=True)
    th = prob.fit().theta
    a = prob.observed_information(th)
    b = prob.numerical_information(th)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_build_partable_column_types():
    pt = build_partable("f =~ x1 + l2*x2 + x3", n_groups=2, meanstructure=True, group_equal=("loadings",))
    assert [str(t) for t in pt[["id", "user", "group", "free"]].dtypes] == ["int64"] * 4
    assert pt["ustart"].dtype == float and pt["label"].dtype == object
    assert pt["plabel"].tolist()[:2] == [".p1.", ".p2."]
    assert pt.index.equals(pd.RangeIndex(len(pt)))
    # the group-2 loading shares the group-1 label of x3, and l2 is one free parameter in both groups
    x3 = pt[(pt["op"] == "=~") & (pt["rhs"] == "x3")]
    assert x3["label"].nunique() == 1 and x3["free"].nunique() == 1
    assert pt.loc[(pt["op"] == "=~") & (pt["rhs"] == "x2"), "free"].nunique() == 1


def test_survey_cfa_reads_the_models_items_once():
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=60, n_private=50)
    with warnings.catch_warnings():                 # fit judgements of a tiny sample are not the point here
        warnings.simplefilter("ignore", CipsWarning)
        res = cs.factor.cfa(sim.data, respondent_group="private", estimator="WLSMV")
    assert set(res.implied[0]["sigma"].columns) == set(sim.data.instrument.items_for("private"))


@pytest.mark.parametrize("values", [
    np.array([3.0, 1.0, 5.0, 1.0, 3.0]),           # answer codes with a gap
    np.array([-2.5, 0.5, -2.5, 1.5]),              # whole steps from a non-integer start
    np.array([0.25, 0.5, 0.25]),                   # not whole numbers: sorted
    np.array([1e9, 1.0]),                          # too wide a range to count
    np.array([4.0]),
])
def test_answer_levels_by_counting_equal_unique(values):
    lev, inv = pc._levels(values)
    ref_lev, ref_inv = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(lev, ref_lev)
    np.testing.assert_array_equal(inv, ref_inv)


def test_an_ml_ladders_fits_equal_separate_fits():
    """FIML ladder: the rows, numeric blocks and EM moments are prepared once and shared by the levels."""
    rng = np.random.default_rng(9)
    n = 900
    y = rng.standard_normal((n, 1)) * [0.9, 0.8, 0.7, 0.6] + rng.standard_normal((n, 4)) * 0.6
    y[rng.random(y.shape) < 0.06] = np.nan
    df = pd.DataFrame(y, columns=["x1", "x2", "x3", "x4"]).assign(g=np.repeat(["u", "v", "w"], n // 3))
    model = "f =~ x1 + x2 + x3 + x4"
    res = invariance(df, group="g", model=model, missing="fiml", levels=("configural", "metric", "scalar"),
                     partial=False)
    equal = {"configural": (), "metric": ("loadings",), "scalar": ("loadings", "intercepts")}
    for level, eq in equal.items():
        alone = cs.factor.cfa(df, model=model, group="g", group_equal=eq, missing="fiml")
        fit = res.fits[level]
        assert fit.fit["chi2"] == pytest.approx(alone.fit["chi2"], rel=1e-10, abs=1e-9), level
        np.testing.assert_allclose(fit.parameters["est"], alone.parameters["est"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fit.parameters["se"], alone.parameters["se"], rtol=1e-10, atol=1e-12)
    assert len({f.provenance.data_fingerprint for f in res.fits.values()}) == 1
