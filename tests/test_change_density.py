"""The hand-written density of the change model and the vectorised convergence diagnostics.

The density is checked against SciPy (the multivariate normal of every pair's changes and the priors'
densities), its gradient against finite differences, the compiled kernel against the NumPy version;
the diagnostics against ArviZ, element by element.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import scipy.stats as st

import cips_stats as cs
from cips_stats.change import _diagnostics as dg
from cips_stats.change import _logp
from cips_stats.change import _model


@pytest.fixture(scope="module")
def cdensity():
    """The default density: cell deviations and country effects integrated out."""
    sim = cs.simulate(seed=21, n_countries=7, n_repeat=5, n_officials=120, n_private=90)
    ind = cs.estimate.indicators(sim.data, n_boot=150, seed=4)
    sup = sim.truth["supported"]
    sup = sup[sup["factor"].isin(["leadership", "transparency", "audit", "morale", "hr"])]
    data = _model._prepare_data(ind, sup, "iteration", None, None)
    md = _model._model_data(data, False)
    dens = _logp.CountryMarginalDensity(md["pc"], md["pg"], md["sup"], md["zd"], md["lam"], md["Q"],
                                        len(data.groups), len(data.countries), data.unit)
    return data, dens


def _joint(data, nat, C):
    """All pairs' changes stacked: mean without country effects, covariance given them (cell sd + sampling),
    the 0/1 map of country effects to observations and the effects' ZeroSumNormal covariance."""
    P, F = data.d.shape
    m = nat["drift"][data.pg][:, None] + nat["factor_effect"][None, :] + nat["support"][data.pg][:, None] * data.sup
    D = np.zeros((P * F, P * F))
    A = np.zeros((P * F, C))
    for p in range(P):
        blk = slice(p * F, (p + 1) * F)
        D[blk, blk] = nat["sd_cell"][data.pg[p]] ** 2 * np.eye(F) + data.Sd[p]
        A[blk, data.pc[p]] = 1.0
    return m.ravel(), D, A, nat["sd_country"] ** 2 * (np.eye(C) - 1.0 / C)


def _country_reference(data, dens, x):
    """The data's joint normal with the country effects integrated out (SciPy), plus the priors (SciPy)."""
    nat = dens.unpack(x)
    m, D, A, K = _joint(data, nat, dens.layout.C)
    cov = D + A @ K @ A.T                                                  # ZeroSumNormal country effects
    u, s = data.unit, dens.sl
    prior = (st.norm.logpdf(nat["drift"], 0, u).sum() + st.norm.logpdf(nat["support"], 0, u).sum()
             + st.halfnorm.logpdf(nat["sd_factor"], scale=0.5 * u) + st.halfnorm.logpdf(nat["sd_country"], scale=0.5 * u)
             + st.halfnorm.logpdf(nat["sd_cell"], scale=0.5 * u).sum() + st.norm.logpdf(x[s["u_factor"]]).sum()
             + np.log(nat["sd_factor"]) + np.log(nat["sd_country"]) + np.log(nat["sd_cell"]).sum())
    return st.multivariate_normal(m, cov).logpdf(data.d.ravel()) + prior


def test_country_marginal_density_equals_the_joint_normal(cdensity):
    data, dens = cdensity
    assert dens.layout.ndim == 3 * dens.layout.G + dens.layout.F + 1      # no country parameter is sampled
    rng = np.random.default_rng(10)
    xs = [rng.normal(scale=0.6, size=dens.layout.ndim) for _ in range(4)]
    diffs = [dens.logp(x)[0] - _country_reference(data, dens, x) for x in xs]
    assert np.ptp(diffs) < 1e-8
    assert np.ptp([dens.logp(x)[0] for x in xs]) > 1.0


def test_country_marginal_gradient_and_compiled_kernel(cdensity):
    _, dens = cdensity
    args = (dens.layout.G, dens.layout.F, dens.layout.C, dens.BF, dens.pc, dens.pg, dens.q1, dens.qs, dens.QT2,
            dens.zd, dens.lam, 1.0 / _logp.EFFECT_PRIOR ** 2, 1.0 / _logp.SD_PRIOR ** 2)
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = rng.normal(scale=0.6, size=dens.layout.ndim)
        lp, g = dens.logp(x)
        fd = so.approx_fprime(x, lambda z: dens.logp(z)[0], 1e-7)
        np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(g).max()))
        lp_n, g_n = _logp._logp_grad_country_numpy(x, *args)
        assert lp == pytest.approx(lp_n, rel=1e-12)
        np.testing.assert_allclose(g, g_n, rtol=1e-10, atol=1e-10)


def test_country_posterior_is_the_exact_gaussian_conditional(cdensity):
    """Mean and covariance of the country effects given the hyper-parameters, against dense Gaussian algebra."""
    data, dens = cdensity
    x = np.random.default_rng(12).normal(scale=0.5, size=dens.layout.ndim)
    nat = dens.unpack(x)
    mean, var = dens.country_posterior(nat["drift"][None], nat["support"][None], nat["factor_effect"][None],
                                       np.array([nat["sd_country"]]), nat["sd_cell"][None])
    m, D, A, K = _joint(data, nat, dens.layout.C)                         # K: prior covariance of the effects
    S = A @ K @ A.T + D
    gain = K @ A.T @ np.linalg.inv(S)
    ref_mean = gain @ (data.d.ravel() - m)
    ref_cov = K - gain @ A @ K
    np.testing.assert_allclose(mean[0], ref_mean, atol=1e-9)
    cov = np.diag(var[0]) - np.outer(var[0], var[0]) / var[0].sum()
    np.testing.assert_allclose(cov, ref_cov, atol=1e-9)
    assert abs(mean[0].sum()) < 1e-10


def _call_callbacks(dens, x):
    """Call the two C callbacks exactly as nutpie does (pointers to x, out, logp and the data buffer)."""
    import ctypes

    from cips_stats.change import _compiled

    logp_c, expand_c = _compiled.callbacks()
    buf = _compiled.pack(dens)
    ptr = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))  # noqa: E731
    x = np.ascontiguousarray(x, dtype=float)
    grad, lp = np.full(x.size, np.nan), np.full(1, np.nan)
    rc = logp_c.ctypes(x.size, ptr(x), ptr(grad), ptr(lp), ptr(buf))
    spec = _logp.country_expanded_variables(dens.layout.G, dens.layout.F)
    n_out = sum(int(np.prod(s)) for _, s, _ in spec)
    out = np.full(n_out, np.nan)
    rc_e = expand_c.ctypes(x.size, n_out, ptr(x), ptr(out), ptr(buf))
    bad = logp_c.ctypes(x.size + 1, ptr(x), ptr(grad), ptr(lp), ptr(buf))      # nutpie's size check
    return rc, lp[0], grad, rc_e, out, spec, bad


def test_c_callbacks_equal_the_numpy_density_and_unpack(cdensity):
    """The C callbacks nutpie calls (no GIL) give the NumPy reference's density, gradient and named variables."""
    _, dens = cdensity
    x = np.random.default_rng(5).normal(scale=0.7, size=dens.layout.ndim)
    rc, lp, grad, rc_e, out, spec, bad = _call_callbacks(dens, x)
    args = (dens.layout.G, dens.layout.F, dens.layout.C, dens.BF, dens.pc, dens.pg, dens.q1, dens.qs, dens.QT2,
            dens.zd, dens.lam, 1.0 / _logp.EFFECT_PRIOR ** 2, 1.0 / _logp.SD_PRIOR ** 2)
    lp_n, g_n = _logp._logp_grad_country_numpy(x, *args)
    assert rc == 0 and rc_e == 0 and bad == -1
    assert lp == pytest.approx(lp_n, rel=1e-12)
    np.testing.assert_allclose(grad, g_n, rtol=1e-10, atol=1e-10)
    nat = dens.unpack(x)
    ref = np.concatenate([np.ravel(np.asarray(nat[name], dtype=float)) for name, _, _ in spec])
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("lsc", [-40.0, -400.0, -800.0])
def test_density_stays_finite_as_sd_country_vanishes(cdensity, lsc):
    """sd_country -> 0 (even when its square underflows to 0): finite density and gradient, the limit of the
    model without country effects; a chain that wanders there can come back (seed 105 of the recovery study
    once stuck a chain there when the density divided by sd_country^2)."""
    _, dens = cdensity
    x = np.random.default_rng(13).normal(scale=0.5, size=dens.layout.ndim)
    i = dens.sl["log_sd_country"].start
    near = x.copy()
    near[i] = -40.0
    x[i] = lsc
    rc, lp, grad, *_ = _call_callbacks(dens, x)
    assert rc == 0 and np.isfinite(lp) and np.isfinite(grad).all()
    lp_n, g_n = _logp._logp_grad_country_numpy(x, dens.layout.G, dens.layout.F, dens.layout.C, dens.BF, dens.pc,
                                               dens.pg, dens.q1, dens.qs, dens.QT2, dens.zd, dens.lam,
                                               1.0 / _logp.EFFECT_PRIOR ** 2, 1.0 / _logp.SD_PRIOR ** 2)
    assert lp == pytest.approx(lp_n, rel=1e-12)
    # beyond sd_country ~ e^-40 only the log-Jacobian of log sd_country still moves the density
    assert lp - dens.logp(near)[0] == pytest.approx(lsc + 40.0, abs=1e-9)
    assert grad[i] == pytest.approx(1.0, abs=1e-9)


def test_c_callback_reports_a_non_finite_density(cdensity):
    _, dens = cdensity
    x = np.zeros(dens.layout.ndim)
    x[dens.sl["log_sd_cell"]] = 800.0                  # exp overflows: the density is not finite
    rc, *_ = _call_callbacks(dens, x)
    assert rc in (3, 4)


def test_the_default_fit_samples_through_the_c_callbacks():
    """With the installed nutpie the default fit uses the GIL-free C callbacks, not the Python fallback."""
    import warnings

    sim = cs.simulate(seed=21, n_countries=5, n_repeat=4, n_officials=120, n_private=90)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.errors.SmallCellWarning)      # a caution-CV cell: not this test's topic
        ind = cs.estimate.indicators(sim.data, n_boot=100, seed=1)
    with pytest.warns(cs.errors.ConvergenceWarning):             # 150 draws miss the ESS gate: that is expected
        res = cs.change.fit(ind, supported=sim.truth["supported"], seed=2, draws=150, tune=150, strict=False)
    assert res.diagnostics["backend"] == "c-callback"
    post = res.idata.posterior                      # country effects drawn after sampling, as the full model has them
    eff = post["country_effect"].transpose("chain", "draw", "country").values
    assert eff.shape[:2] == (4, 150) and eff.shape[2] == post.sizes["country"] >= 4
    np.testing.assert_allclose(eff.sum(axis=2), 0.0, atol=1e-10)
    np.testing.assert_allclose(post["country_z"].values, eff / post["sd_country"].values[..., None], rtol=1e-12)
    assert eff.std() > 0
    assert np.isfinite(res.prob_improved["mean"]).all() and res.diagnostics["sampling_s"] > 0


@pytest.mark.parametrize("k", [1, 2, 3, 10, 17])
def test_zero_sum_basis_is_orthonormal_and_sums_to_zero(k):
    b = _logp.zero_sum_basis(k)
    assert b.shape == (k, k - 1)
    np.testing.assert_allclose(b.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(b.T @ b, np.eye(k - 1), atol=1e-12)


def test_unpacked_effects_sum_to_zero(cdensity):
    _, dens = cdensity
    nat = dens.unpack(np.random.default_rng(3).normal(size=dens.layout.ndim))
    assert abs(nat["factor_effect"].sum()) < 1e-12 and nat["sd_country"] > 0
    assert nat["sd_cell"].min() > 0


def _chains(seed=1, C=4, N=400, V=40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(C, N, V))
    for v in range(0, V, 3):                          # autocorrelated columns, phi from .3 to .9
        e = rng.normal(size=(C, N))
        y = np.zeros((C, N))
        phi = 0.3 + 0.6 * v / V
        for t in range(1, N):
            y[:, t] = phi * y[:, t - 1] + e[:, t]
        x[:, :, v] = y
    x[:, :, 5] += np.arange(C)[:, None] * 0.4         # chains that disagree
    x[:, :, 7] = 2.0                                  # constant
    x[1, 3, 9] = np.nan                               # a NaN draw
    x[:, :, 11] = np.round(x[:, :, 11])               # ties
    return x


def test_diagnostics_equal_arviz_element_by_element():
    import arviz as az

    x = _chains()
    ds = az.convert_to_dataset({"a": x})
    with np.errstate(all="ignore"):
        ref = (az.rhat(ds)["a"].values, az.ess(ds, method="bulk")["a"].values, az.ess(ds, method="tail")["a"].values)
    ours = dg.summary(x)
    for a, b in zip(ours, ref):
        assert (np.isnan(a) == np.isnan(b)).all()
        ok = ~np.isnan(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-10)
    np.testing.assert_array_equal(ours[0], dg.rhat_rank(x))
    np.testing.assert_array_equal(ours[1], dg.ess_bulk(x))
    assert ours[0][5] > 1.05                          # the disagreeing chains are caught
    assert ours[1][7] == x.shape[0] * x.shape[1]      # a constant counts every draw, as ArviZ


@pytest.mark.parametrize("block", [1, 7, 39, 40, 41])
def test_diagnostics_blocks_give_the_same_values(block, monkeypatch):
    """summary() works in blocks of variables: block edges (one variable, a remainder, exactly V) change nothing."""
    x = _chains()
    whole = dg.summary(x)
    monkeypatch.setattr(dg, "_BLOCK", block)
    parts = dg.summary(x)
    for a, b in zip(parts, whole):
        np.testing.assert_allclose(a, b, rtol=1e-12)          # NaN where NaN; FFT batches round differently


def test_diagnostics_edges():
    x = _chains(V=12)
    one_chain = x[:1]
    assert np.isnan(dg.rhat_rank(one_chain)).all()    # R-hat needs two chains
    assert np.isfinite(dg.ess_bulk(one_chain)[[0, 1, 2, 4]]).all()
    assert np.isnan(dg.summary(x[:, :3])[1]).all()    # fewer than 4 draws: nothing to judge
    odd = x[:, :101]                                  # an odd number of draws splits into halves of 50
    assert np.isfinite(dg.rhat_rank(odd)[0])


@pytest.mark.parametrize("prior", ["flat", "default"])
def test_pooling_density_matches_scipy_and_finite_differences(prior):
    y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
    s = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
    dens = _logp.PoolingDensity(y, s, prior, loc=8.0, scale=14.0)
    rng = np.random.default_rng(4)
    diffs = []
    for _ in range(4):
        x = np.array([rng.normal(8, 5), rng.normal(2, 0.7)])
        mu, tau = x[0], np.exp(x[1])
        ref = st.norm.logpdf(y, mu, np.sqrt(tau ** 2 + s ** 2)).sum() + x[1]      # + log-Jacobian
        if prior == "default":
            ref += st.norm.logpdf(mu, 8.0, 70.0) + st.halfnorm.logpdf(tau, scale=28.0)
        lp, g = dens.logp(x)
        diffs.append(lp - ref)
        np.testing.assert_allclose(g, so.approx_fprime(x, lambda z: dens.logp(z)[0], 1e-7), rtol=1e-5, atol=1e-6)
    assert np.ptp(diffs) < 1e-9
