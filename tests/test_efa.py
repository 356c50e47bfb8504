"""Tests of cips_stats.factor.efa against psych 2.2.9 fixtures (validation/r/efa.R) and known truth.

Reference fixtures: tests/reference/efa_hs.json (HolzingerSwineford1939 x1-x9, 3 factors) and
tests/reference/efa_bfi.json (bfi A1-O5 with missing answers, 5 factors); each records the R call,
versions, date and the tolerances used here.  Loadings are compared after aligning factor order
and sign (EFA solutions are identified only up to both).
"""

from __future__ import annotations

import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
import importlib

fe = importlib.import_module("cips_stats.factor.efa")

REF = Path(__file__).parent / "reference"
ROTATION = {"geominQ": "geomin"}


def _load(name):
    ref = json.loads((REF / f"efa_{name}.json").read_text())
    data = pd.read_csv(REF / f"efa_{name}_data.csv")
    return ref, data


@pytest.fixture(scope="module", params=["hs", "bfi"])
def case(request):
    return _load(request.param)


def _align(ours: np.ndarray, ref: np.ndarray):
    """Best column permutation and signs of ``ours`` to match ``ref`` (max abs difference)."""
    best = None
    for perm in permutations(range(ours.shape[1])):
        o = ours[:, perm]
        s = np.sign((o * ref).sum(0))
        s[s == 0] = 1
        d = np.abs(o * s - ref).max()
        if best is None or d < best[0]:
            best = (d, list(perm), s)
    return best


def test_kmo_matches_psych(case):
    ref, data = case
    res = fe.kmo(data)
    tol = ref["tolerances"]["kmo"]
    assert res.overall == pytest.approx(ref["kmo"]["overall"], abs=tol)
    np.testing.assert_allclose(res.per_item.to_numpy(), ref["kmo"]["per_item"], atol=tol)
    assert list(res.per_item.index) == ref["items"]
    assert res.to_frame().attrs["overall"] == res.overall


def test_bartlett_matches_psych(case):
    ref, data = case
    res = fe.bartlett_sphericity(data)
    assert res.statistic == pytest.approx(ref["bartlett"]["chi2"], abs=ref["tolerances"]["bartlett_chi2"])
    assert res.df == ref["bartlett"]["df"]
    stat, p = res
    assert p == pytest.approx(ref["bartlett"]["pvalue"], abs=1e-12)
    assert res.n == ref["n"]


def _fit_cases():
    out = []
    for name in ("hs", "bfi"):
        ref, _ = _load(name)
        out += [(name, key) for key in ref["fits"]]
    return out


@pytest.mark.parametrize("name,key", _fit_cases())
def test_efa_matches_psych_fa(name, key):
    ref, data = _load(name)
    fit = ref["fits"][key]
    tol = ref["tolerances"]
    res = fe.efa(data, ref["n_factors"], rotation=ROTATION.get(fit["rotation"], fit["rotation"]),
                 method=fit["method"])
    assert res.converged
    d, perm, signs = _align(res.loadings.to_numpy(), np.array(fit["loadings"]))
    assert d < tol["loadings"]
    np.testing.assert_allclose(res.uniquenesses.to_numpy(), fit["uniquenesses"], atol=tol["uniquenesses"])
    np.testing.assert_allclose(res.communalities.to_numpy(), fit["communalities"], atol=tol["uniquenesses"])
    if "phi" in fit:
        phi = res.factor_correlations.to_numpy()[np.ix_(perm, perm)] * np.outer(signs, signs)
        np.testing.assert_allclose(phi, np.array(fit["phi"]), atol=tol["phi"])
    else:
        assert res.factor_correlations is None
    if "chi2" in fit and fit["method"] == "ml":
        assert res.chi2 == pytest.approx(fit["chi2"], abs=tol["ml_chi2"])
        assert res.df == fit["df"]
        assert res.p_value == pytest.approx(fit["pvalue"], abs=1e-6)


def test_parallel_analysis_matches_psych(case):
    ref, data = case
    pa_ref = ref["parallel"]
    tol = ref["tolerances"]
    res = fe.parallel_analysis(data, n_iter=200, seed=7)
    t = res.table
    np.testing.assert_allclose(t["observed_pc"], pa_ref["pc_values"], atol=tol["parallel_observed"])
    np.testing.assert_allclose(t["observed_fa"], pa_ref["fa_values"], atol=tol["parallel_observed"])
    # random eigenvalues: both programs average 200 random data sets -> Monte Carlo agreement only
    np.testing.assert_allclose(t["random_pc_mean"], pa_ref["pc_sim_mean"], atol=tol["parallel_simulated_mean"])
    np.testing.assert_allclose(t["random_fa_mean"], pa_ref["fa_sim_mean"], atol=tol["parallel_simulated_mean"])
    assert res.n_components == pa_ref["ncomp"]
    assert res.n_factors == pa_ref["nfact"]


def test_parallel_analysis_is_reproducible_and_chunking_invariant():
    _, data = _load("hs")
    a = fe.parallel_analysis(data, n_iter=30, seed=11)
    b = fe.parallel_analysis(data, n_iter=30, seed=11, chunk_bytes=1)   # one data set per chunk
    pd.testing.assert_frame_equal(a.table, b.table)
    c = fe.parallel_analysis(data, n_iter=30, seed=12)
    assert not np.allclose(a.table["random_pc_mean"], c.table["random_pc_mean"])
    assert a.provenance.seed == 11


def test_parallel_analysis_recovers_known_number_of_factors():
    rng = np.random.default_rng(5)
    k, per, n = 4, 4, 600
    lam = np.kron(np.eye(k), np.full((1, per), 0.7))
    x = rng.normal(size=(n, k)) @ lam + rng.normal(scale=0.7, size=(n, k * per))
    res = fe.parallel_analysis(pd.DataFrame(x), n_iter=40, seed=2)
    assert res.n_factors == k and res.n_components == k


def test_efa_recovers_planted_structure():
    rng = np.random.default_rng(8)
    n = 2000
    true = np.array([[.8, 0], [.7, 0], [.6, 0], [0, .8], [0, .7], [0, .6]])
    phi = np.array([[1, .4], [.4, 1]])
    f = rng.multivariate_normal(np.zeros(2), phi, size=n)
    x = f @ true.T + rng.normal(size=(n, 6)) * np.sqrt(1 - np.sum(true**2, 1))
    res = fe.efa(pd.DataFrame(x), 2, rotation="oblimin", method="ml")
    d, perm, s = _align(res.loadings.to_numpy(), true)
    assert d < 0.06
    est_phi = res.factor_correlations.to_numpy()[np.ix_(perm, perm)] * np.outer(s, s)
    assert est_phi[0, 1] == pytest.approx(0.4, abs=0.06)
    assert res.p_value > 0.001            # the true 2-factor model fits
    assert fe.efa(pd.DataFrame(x), 1, method="ml").p_value < 1e-10   # one factor does not


def test_efa_orthogonal_rotation_preserves_communalities():
    _, data = _load("hs")
    none = fe.efa(data, 3, rotation="none", method="minres")
    vari = fe.efa(data, 3, rotation="varimax", method="minres")
    obl = fe.efa(data, 3, rotation="oblimin", method="minres")
    np.testing.assert_allclose(none.communalities, vari.communalities, atol=1e-10)
    np.testing.assert_allclose(none.communalities, obl.communalities, atol=1e-8)
    # an orthogonal rotation leaves the reproduced common covariance LL' unchanged
    ln, lv = none.loadings.to_numpy(), vari.loadings.to_numpy()
    np.testing.assert_allclose(ln @ ln.T, lv @ lv.T, atol=1e-10)
    t = vari.rotation_matrix
    np.testing.assert_allclose(t @ t.T, np.eye(3), atol=1e-10)
    assert vari.factor_correlations is None and obl.factor_correlations is not None
    assert np.isnan(none.chi2)


def test_heywood_case_is_flagged():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(300, 1))
    x = np.column_stack([f[:, 0] + rng.normal(scale=0.01, size=300),
                         f[:, 0] * 0.5 + rng.normal(size=300),
                         f[:, 0] * 0.5 + rng.normal(size=300),
                         rng.normal(size=300), rng.normal(size=300)])
    res = fe.efa(pd.DataFrame(x, columns=list("abcde")), 2, method="ml", rotation="varimax")
    assert "heywood" in {fl.code for fl in res.flags}


def test_pairwise_correlation_matches_pandas():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(80, 5))
    x[rng.random(x.shape) < 0.2] = np.nan
    r, n = fe.pairwise_correlation(x)
    expected = pd.DataFrame(x).corr(min_periods=1).to_numpy()
    np.testing.assert_allclose(r, expected, atol=1e-12)
    assert n[0, 1] == int((~np.isnan(x[:, 0]) & ~np.isnan(x[:, 1])).sum())


def test_non_pd_pairwise_matrix_is_smoothed_and_flagged():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(12, 3))
    x = np.column_stack([x, x[:, 0] + x[:, 1]])     # exact linear dependence -> singular R
    res = fe.kmo(pd.DataFrame(x, columns=list("abcd")))
    assert "non_pd_correlation" in {fl.code for fl in res.flags}
    assert np.isfinite(res.overall)


@pytest.mark.parametrize("bad,kwargs,exc", [
    (pd.DataFrame({"a": ["x", "y", "z"], "b": [1, 2, 3], "c": [1, 2, 4]}), {}, cs.DataError),
    (pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [1, 2, 3], "c": [3, 1, 2]}), {}, cs.DataError),
    (np.zeros((3, 3)), {}, cs.DataError),
])
def test_bad_input_raises_typed_errors(bad, kwargs, exc):
    with pytest.raises(exc):
        fe.kmo(bad, **kwargs)


def test_efa_argument_errors():
    _, data = _load("hs")
    with pytest.raises(cs.DataError, match="rotation="):
        fe.efa(data, 2, rotation="quartimax")
    with pytest.raises(cs.DataError, match="method="):
        fe.efa(data, 2, method="pa")
    with pytest.raises(cs.ModelError, match="too many"):
        fe.efa(data, 6, method="ml")
    with pytest.raises(cs.DataError, match="n_iter="):
        fe.parallel_analysis(data, n_iter=0)
    with pytest.raises(cs.DataError, match="cor="):
        fe.kmo(data, cor="spearman")


def test_results_serialise():
    _, data = _load("hs")
    res = fe.efa(data, 3)
    d = res.to_dict()
    assert d["kind"] == "EFAResult" and d["provenance"]["options"]["n_factors"] == 3
    assert set(res.to_frame().columns) == {"F1", "F2", "F3", "h2", "u2"}
    assert "EFAResult" in str(res.summary())


def test_polychoric_option_uses_polychoric_correlations():
    from cips_stats.factor.polychoric import polychoric

    _, data = _load("bfi")
    sub = data[["A1", "A2", "A3", "A4", "A5"]].iloc[:600]
    res = fe.kmo(sub, cor="polychoric")
    r = polychoric(sub).corr.to_numpy()
    rinv = np.linalg.inv(r)
    a = -rinv / np.sqrt(np.outer(np.diag(rinv), np.diag(rinv)))
    off = ~np.eye(5, dtype=bool)
    expected = (r[off] ** 2).sum() / ((r[off] ** 2).sum() + (a[off] ** 2).sum())
    assert res.overall == pytest.approx(expected, abs=1e-12)
    pearson = fe.kmo(sub)
    assert res.overall != pytest.approx(pearson.overall, abs=1e-6)
