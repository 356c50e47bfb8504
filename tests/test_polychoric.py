"""Tests of cips_stats.factor.polychoric.

Reference values come from validation/r/polychoric_wlsmv.R (lavaan 0.6-14, psych 2.2.9,
R 4.2.2) on psych's bfi items; each fixture in tests/reference/ records its R call,
versions, date and tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import cips_stats as cs
from cips_stats.factor.polychoric import PolychoricResult, bvn_cdf, polychoric, thresholds

REF = Path(__file__).parent / "reference"


def _fixture(name):
    return json.loads((REF / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def bfi():
    return pd.read_csv(REF / "bfi.csv")


@pytest.fixture(scope="module")
def bfi_pairwise(bfi):
    return polychoric(bfi.iloc[:, :25])


# ----------------------------------------------------------------------- bivariate normal CDF
@pytest.mark.parametrize("r", [-0.999, -0.97, -0.925, -0.6, 0.0, 0.4, 0.924, 0.93, 0.98, 0.9995])
def test_bvn_cdf_matches_adaptive_quadrature(r):
    pts = [(0.0, 0.0), (1.0, -1.0), (-2.0, 0.5), (2.5, 2.4), (-1.0, -1.2), (0.5, 0.45), (-3.0, -3.0)]
    h = np.array([p[0] for p in pts])
    k = np.array([p[1] for p in pts])
    got = bvn_cdf(h, k, np.full(len(pts), r))
    ref = [integrate.quad(lambda x, kk=kk: stats.norm.pdf(x) * stats.norm.cdf((kk - r * x) / np.sqrt(1 - r * r)),
                          -np.inf, hh, epsabs=1e-15, epsrel=1e-13, limit=200)[0] for hh, kk in pts]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_bvn_cdf_infinite_limits_and_known_values():
    assert bvn_cdf(np.inf, 0.3, 0.5) == pytest.approx(stats.norm.cdf(0.3), abs=1e-15)
    assert bvn_cdf(-np.inf, 0.3, 0.5) == pytest.approx(0.0, abs=1e-15)
    # orthant probability: 1/4 + asin(r)/(2 pi)
    for r in (-0.95, -0.3, 0.7, 0.96):
        assert bvn_cdf(0.0, 0.0, r) == pytest.approx(0.25 + np.arcsin(r) / (2 * np.pi), abs=1e-14)


# ----------------------------------------------------------------------- against lavaan / psych
def test_pairwise_matches_lavcor(bfi_pairwise):
    ref = _fixture("polychoric_bfi_pairwise")
    got = bfi_pairwise.corr.loc[ref["items"], ref["items"]].to_numpy()
    diff = np.abs(got - np.array(ref["corr"])).max()
    assert diff < 1e-6, diff   # achieved: ~1e-8 (lavaan's nlminb tolerance)
    np.testing.assert_allclose(bfi_pairwise.threshold_vector, ref["thresholds"], rtol=0, atol=1e-8)
    assert bfi_pairwise.threshold_labels == ref["threshold_names"]


def test_complete_cases_match_lavcor_and_psych(bfi):
    ref = _fixture("polychoric_bfi_complete")
    res = polychoric(bfi.iloc[:, :25], missing="listwise")
    assert res.n_pairs.to_numpy().max() == ref["n"]
    np.testing.assert_allclose(res.corr.to_numpy(), ref["corr"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.threshold_vector, ref["thresholds"], rtol=0, atol=1e-8)
    # psych: global thresholds (same as ours), optimize() with its default tolerance
    np.testing.assert_allclose(res.corr.to_numpy(), ref["psych_rho"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.vstack([res.thresholds[c] for c in ref["items"]]), ref["psych_tau"],
                               rtol=0, atol=1e-6)


def test_pairwise_matches_psych(bfi_pairwise):
    ref = _fixture("polychoric_bfi_psych_pairwise")
    np.testing.assert_allclose(bfi_pairwise.corr.to_numpy(), ref["psych_rho"], rtol=0, atol=1e-4)


def test_gamma_matches_lavaan_nacov(bfi):
    ref = _fixture("polychoric_bfi8_gamma")
    res = polychoric(bfi[ref["items"]])
    g = res.gamma()
    gref = np.array(ref["gamma"])
    assert g.shape == gref.shape
    assert res.threshold_labels == ref["labels"][:len(res.threshold_labels)]
    rel = np.abs(g - gref).max() / np.abs(gref).max()
    assert rel < 1e-6, rel
    np.testing.assert_allclose(np.diag(g), np.diag(gref), rtol=1e-6)


# ----------------------------------------------------------------------- simulation truth
def _ordinal(rng, sigma, n, cuts):
    z = rng.multivariate_normal(np.zeros(len(sigma)), sigma, size=n)
    return np.digitize(z, cuts).astype(float) + 1


def test_recovers_latent_correlations_and_thresholds():
    rng = np.random.default_rng(11)
    sigma = np.array([[1, .6, .3, -.4], [.6, 1, .5, 0], [.3, .5, 1, .2], [-.4, 0, .2, 1]])
    cuts = [-1.2, -0.3, 0.4, 1.3]
    x = _ordinal(rng, sigma, 20000, cuts)
    res = polychoric(x)
    np.testing.assert_allclose(res.corr.to_numpy(), sigma, atol=0.03)
    for t in res.thresholds.values():
        np.testing.assert_allclose(t, cuts, atol=0.05)
    assert res.flags == () or all(f.severity == "info" for f in res.flags)


def test_gamma_matches_monte_carlo_variance():
    """Gamma / n must match the sampling variance of the estimates across replicates."""
    rng = np.random.default_rng(5)
    sigma = np.array([[1, .5, .3], [.5, 1, .4], [.3, .4, 1]])
    cuts = [-0.8, 0.2, 1.0]
    n = 600
    est = []
    for _ in range(150):
        r = polychoric(_ordinal(rng, sigma, n, cuts))
        est.append(np.concatenate([r.threshold_vector, r.corr_vector]))
    emp = np.var(np.array(est), axis=0, ddof=1)
    g = polychoric(_ordinal(rng, sigma, 40000, cuts)).gamma()
    ratio = emp / (np.diag(g) / n)
    # 150 replicates: the sd of a variance ratio is about sqrt(2/149) ~ 0.12
    assert np.all(np.abs(ratio - 1) < 0.4), ratio
    assert abs(np.mean(ratio) - 1) < 0.12


def test_pairwise_missing_uses_available_pairs():
    rng = np.random.default_rng(3)
    sigma = np.array([[1, .5, .2], [.5, 1, .3], [.2, .3, 1]])
    x = _ordinal(rng, sigma, 3000, [-1, 0, 1])
    x[rng.random(x.shape) < 0.2] = np.nan
    res = polychoric(x)
    present = ~np.isnan(x)
    assert res.n_pairs.iloc[0, 1] == int((present[:, 0] & present[:, 1]).sum())
    assert res.n_pairs.iloc[2, 2] == int(present[:, 2].sum())
    # pair (1, 2) equals the polychoric on the rows where both are present
    both = present[:, 0] & present[:, 1]
    sub = polychoric(x[both][:, :2])
    # thresholds differ (pairwise uses each item's own available data), rho is close
    assert abs(sub.corr.iloc[0, 1] - res.corr.iloc[0, 1]) < 0.02
    t_all = thresholds(x)
    np.testing.assert_allclose(t_all["x1"], res.thresholds["x1"])


def test_listwise_differs_from_pairwise_and_flags():
    rng = np.random.default_rng(4)
    x = _ordinal(rng, np.array([[1, .5], [.5, 1]]), 500, [-1, 0, 1])
    x[:50, 0] = np.nan
    res = polychoric(x, missing="listwise")
    assert res.n_pairs.iloc[1, 1] == 450
    assert any(f.code == "listwise" for f in res.flags)


# ----------------------------------------------------------------------- flags and errors
def test_flags_empty_category_one_category_and_zero_pairs():
    rng = np.random.default_rng(6)
    x = _ordinal(rng, np.eye(3) * 0.5 + 0.5, 400, [-1, 0, 1])
    x[x[:, 0] == 2, 0] = 1            # category 2 of item 1 empty -> codes 1, 3, 4
    x[:, 2] = 3.0                      # a constant item
    res = polychoric(x)
    codes = {f.code for f in res.flags}
    assert {"empty_category", "one_category"} <= codes
    assert np.isnan(res.corr.iloc[0, 2]) and np.isfinite(res.corr.iloc[0, 1])
    assert len(res.thresholds["x1"]) == 2
    y = np.array([[1, np.nan], [2, np.nan], [np.nan, 1], [np.nan, 2], [1, np.nan]])
    r2 = polychoric(y)
    assert any(f.code == "no_pairwise_data" for f in r2.flags)
    with pytest.raises(cs.ModelError):
        r2.gamma()


def test_not_positive_definite_is_flagged_not_hidden():
    rng = np.random.default_rng(8)
    n = 60
    z = rng.standard_normal((n, 3))
    x = np.digitize(z, [-0.5, 0.5]).astype(float)
    x[:20, 1] = np.nan
    x[20:40, 2] = np.nan
    x[40:, 0] = np.nan
    # construct inconsistent pairwise information: x1~x2 strongly +, x2~x3 +, x1~x3 strongly -
    x[20:40, 1] = x[20:40, 0]
    x[40:, 2] = x[40:, 1]
    x[:20, 2] = 2 - x[:20, 0]
    res = polychoric(x)
    assert res.min_eigenvalue < 0
    assert any(f.code == "not_positive_definite" for f in res.flags)
    sm = res.smoothed()
    assert np.linalg.eigvalsh(sm.to_numpy()).min() > 0
    np.testing.assert_allclose(np.diag(sm), 1.0)


@pytest.mark.parametrize("bad, rule", [
    (np.array([[1.0, 1.5], [2.0, 2.0], [1.0, 1.0]]), "integer_codes"),
    (np.array([[1.0, np.inf], [2.0, 2.0], [1.0, 1.0]]), "finite_codes"),
])
def test_bad_codes_raise_data_error_naming_cell(bad, rule):
    with pytest.raises(cs.DataError) as e:
        polychoric(bad)
    p = e.value.problems[0]
    assert p.rule == rule and p.column == "x2" and p.row == 1


def test_too_many_categories_and_bad_arguments():
    x = np.column_stack([np.arange(30.0), np.arange(30.0) % 3])
    with pytest.raises(cs.DataError, match="max_categories"):
        polychoric(x)
    with pytest.raises(cs.DataError):
        polychoric(x[:, 1:], missing="pairwise")       # one item only
    with pytest.raises(cs.DataError):
        polychoric(x % 3, missing="fiml")
    with pytest.raises(cs.DataError):
        polychoric(x % 3, correct=-1)


def test_result_is_serialisable_and_deterministic(bfi):
    x = bfi.iloc[:400, :6]
    a, b = polychoric(x), polychoric(x)
    assert isinstance(a, PolychoricResult)
    pd.testing.assert_frame_equal(a.corr, b.corr)
    d = a.to_dict()
    assert d["kind"] == "PolychoricResult" and "_codes" not in d
    json.dumps(d)
    tidy = a.to_frame()
    assert len(tidy) == 15 and set(tidy.columns) == {"item1", "item2", "rho", "n"}
    assert a.provenance.method == "polychoric"


def test_correct_adds_to_empty_cells():
    rng = np.random.default_rng(9)
    x = _ordinal(rng, np.array([[1, .9], [.9, 1]]), 300, [-1.5, 0, 1.5])
    r0 = polychoric(x)
    r1 = polychoric(x, correct=0.5)
    assert any(f.code == "zero_cells" for f in r0.flags)
    # adding mass to empty off-diagonal cells pulls the correlation towards zero
    assert r1.corr.iloc[0, 1] < r0.corr.iloc[0, 1]


def test_mixed_numbers_of_categories_match_lavaan(bfi):
    """Items with 3, 6, 2 and 2 categories (padding of thresholds and tables)."""
    ref = _fixture("polychoric_bfi_mixed_categories")
    m = bfi[["A1", "A2", "A3", "gender"]].copy()
    m["A1"] = m["A1"].map({1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3})
    m["A3"] = (m["A3"] >= 4).astype(float).where(m["A3"].notna()) + 1
    res = polychoric(m)
    np.testing.assert_allclose(res.corr.to_numpy(), ref["corr"], rtol=0, atol=1e-6)
    assert res.threshold_labels == ref["threshold_names"]
    np.testing.assert_allclose(res.threshold_vector, ref["thresholds"], rtol=0, atol=1e-8)
    g, gref = res.gamma(), np.array(ref["gamma"])
    assert np.abs(g - gref).max() / np.abs(gref).max() < 1e-6


def _bfi_weights(n):
    return np.resize([0.5, 1.0, 2.0, 1.5], n)


def test_weight_match_lavaan(bfi):
    """lavaan cfa(..., sampling.weights=) sample statistics and Gamma (weighted sandwich)."""
    ref = _fixture("polychoric_bfi_weights")
    d = bfi[ref["items"]].iloc[:800]
    res = polychoric(d, weight=_bfi_weights(800))
    np.testing.assert_allclose(res.corr.to_numpy(), ref["corr"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.threshold_vector, ref["thresholds"], rtol=0, atol=1e-8)
    g, gref = res.gamma(), np.array(ref["gamma"])
    assert np.abs(g - gref).max() / np.abs(gref).max() < 1e-6
    # n_pairs stay unweighted; a column name works too; constant weights change nothing
    assert res.n_pairs.iloc[1, 0] == int(d[["A1", "A2"]].notna().all(axis=1).sum())
    by_name = polychoric(d.assign(w=_bfi_weights(800)), weight="w")
    pd.testing.assert_frame_equal(by_name.corr, res.corr)
    const = polychoric(d, weight=np.full(800, 3.0))
    np.testing.assert_allclose(const.gamma(), polychoric(d).gamma(), rtol=1e-10)


@pytest.mark.parametrize("w", [np.array([1.0, -1.0, 1.0]), np.array([1.0, np.nan, 1.0]), np.ones(2)])
def test_bad_weights_raise(w):
    with pytest.raises(cs.DataError, match="weight"):
        polychoric(np.array([[1, 2], [2, 1], [1, 1]]), weight=w)
