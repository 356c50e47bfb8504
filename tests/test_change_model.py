"""cs.change.partial_pooling (eight schools vs exact integration) and cs.change.fit (contract, marginalised vs
full model, recovery, a small SBC, gates and bad input)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.change import _model

REF = Path(__file__).parent / "reference" / "eight_schools_exact.json"
FACTORS = ["leadership", "transparency", "audit", "morale"]


@pytest.fixture(scope="module")
def eight():
    ref = json.loads(REF.read_text())
    res = cs.change.partial_pooling(ref["data"]["y"], ref["data"]["se"], prior="flat", seed=3, sampler="nutpie",
                                    draws=2000, tune=1000, chains=4)
    return ref, res


def test_eight_schools_matches_exact_integration(eight):
    ref, res = eight
    post = ref["posterior"]
    h = res.hyper.set_index("parameter")
    for name in ("mu", "tau"):
        # within 4 Monte Carlo standard errors of the exact posterior moments
        assert abs(h.at[name, "mean"] - post[name]["mean"]) < 4 * h.at[name, "mcse_mean"], name
        assert abs(h.at[name, "sd"] - post[name]["sd"]) < 4 * h.at[name, "mcse_sd"] + 0.02 * post[name]["sd"], name
    th = res.idata.posterior["theta"].values.reshape(-1, 8)
    exact = np.array([post[f"theta[{j}]"]["mean"] for j in range(8)])
    exact_sd = np.array([post[f"theta[{j}]"]["sd"] for j in range(8)])
    mcse = exact_sd / np.sqrt(res.diagnostics["ess_bulk_min"])
    assert np.all(np.abs(th.mean(axis=0) - exact) < 4 * mcse)
    assert res.reliable and res.diagnostics["divergences"] == 0
    assert list(res.idata.posterior.data_vars)[:2] == ["mu", "tau"] and "theta" in res.idata.posterior
    assert res.table["pooling"].between(0, 1).all()
    # the data are far more spread than tau: school 1's 28 is pulled most of the way to mu
    assert res.table.loc[0, "mean"] < 15


def test_partial_pooling_bad_input():
    with pytest.raises(cs.DataError, match="SE"):
        cs.change.partial_pooling([1.0, 2.0, 3.0], [1.0, 0.0, 1.0])
    with pytest.raises(cs.DataError, match="at least 3"):
        cs.change.partial_pooling([1.0, 2.0], [1.0, 1.0])
    with pytest.raises(cs.DataError, match="prior="):
        cs.change.partial_pooling([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], prior="cauchy")
    with pytest.raises(cs.DataError, match="sampler="):
        cs.change.partial_pooling([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], sampler="stan")


@pytest.fixture(scope="module")
def survey():
    sim = cs.simulate(seed=21, n_countries=8, n_repeat=6, n_officials=150, n_private=110, support_effect=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, n_boot=400, seed=4)
    sup = sim.truth["supported"]
    return sim, ind, sup[sup["factor"].isin(FACTORS)]


@pytest.fixture(scope="module")
def fitted(survey):
    sim, ind, sup = survey
    return cs.change.fit(ind, supported=sup, seed=5, draws=1000, tune=1000)


def test_fit_contract(survey, fitted):
    sim, ind, sup = survey
    r = fitted
    assert r.reliable and r.diagnostics["divergences"] == 0 and r.diagnostics["r_hat_max"] <= 1.01
    assert r.cells.columns[:5].tolist() == ["country", "group", "factor", "baseline", "supported"]
    assert "suppressed" in r.cells and len(r.cells) == 6 * 2 * len(FACTORS)
    draws = r.change_draws()
    assert draws.shape == (4000, len(r.cells))
    assert r.idata.posterior["change"].sizes["cell"] == len(r.cells)
    assert list(r.idata.posterior["change"].coords["cell"].values[:1]) == [
        "|".join(map(str, r.cells.loc[0, ["country", "group", "factor"]]))]
    pi = r.prob_improved
    assert pi.columns[:8].tolist() == ["country", "group", "factor", "mean", "ci_low", "ci_high", "p_improved",
                                       "p_above_mid"]
    np.testing.assert_allclose(pi["mean"], draws.mean(axis=0))
    np.testing.assert_allclose(pi["p_improved"], (draws > 0).mean(axis=0))
    np.testing.assert_allclose(pi["p_above_mid"], (draws > 0.25).mean(axis=0))
    assert (pi["ci_low"] <= pi["mean"]).all() and (pi["mean"] <= pi["ci_high"]).all()
    # cells align with the observed baselines and the support table
    m = r.cells.merge(sup, on=["country", "factor"], suffixes=("", "_t"))
    assert (m["supported"] == m["supported_t"]).all()
    base = ind.table[ind.table["iteration"] == 1].merge(r.cells, on=["country", "group", "factor"])
    np.testing.assert_allclose(base["estimate"], base["baseline"])
    # share improved and support effect are functions of the same draws
    d = r.share_improved_draws
    off = d[d["group"] == "officials"]
    sel = (r.cells["group"] == "officials").to_numpy()
    sups = r.cells["supported"].to_numpy()
    np.testing.assert_allclose(off["supported"], (draws[:, sel & sups] > 0).mean(axis=1))
    np.testing.assert_allclose(off["difference"], off["supported"] - off["unsupported"])
    eff = r.support_effect.set_index("group")
    manual = draws[:, sel & sups].mean(axis=1) - draws[:, sel & ~sups].mean(axis=1)
    assert eff.at["officials", "mean"] == pytest.approx(manual.mean())
    assert set(r.share_improved["set"]) == {"supported", "unsupported", "difference"}
    assert set(r.support_effect["group"]) == {"officials", "private", "all"}
    assert r.provenance.seed == 5 and r.provenance.options["sampler"] == "nutpie"
    assert r.to_frame() is r.prob_improved and "idata" not in r.to_dict()
    assert {"drift", "support", "sd_cell", "factor_z", "country_z"} <= set(r.hyper["parameter"])


def test_gates(survey):
    sim, ind, sup = survey
    with pytest.raises(cs.ModelError, match="gates") as e:
        cs.change.fit(ind, supported=sup, seed=1, draws=30, tune=30)
    assert e.value.diagnostics["ess_bulk_min"] < 400
    with pytest.warns(cs.errors.ConvergenceWarning):
        r = cs.change.fit(ind, supported=sup, seed=1, draws=30, tune=30, strict=False)
    assert not r.reliable and any(f.code == "unreliable" for f in r.flags)


def test_fit_recovers_the_truth(survey, fitted):
    """One survey: the 95% intervals cover most true changes and the support effect (loose, one draw)."""
    sim, ind, sup = survey
    r = fitted
    t = r.prob_improved.merge(sim.truth["change"], on=["country", "group", "factor"])
    cover = ((t["ci_low"] <= t["change"]) & (t["change"] <= t["ci_high"])).mean()
    assert cover >= 0.85
    truth = t.assign(s=t["supported"])
    true_eff = truth[truth.s]["change"].mean() - truth[~truth.s]["change"].mean()
    e = r.support_effect.set_index("group").loc["all"]
    assert e["ci_low"] <= true_eff <= e["ci_high"]
    # pooling: posterior intervals are shorter than the per-cell Wald intervals
    wald = cs.change.cell_changes(ind).table
    w = wald[wald["factor"].isin(FACTORS)]
    assert (r.prob_improved["ci_high"] - r.prob_improved["ci_low"]).mean() < (w["ci_high"] - w["ci_low"]).mean()


def test_seed_reproduces_and_cache_is_used(survey, fitted):
    sim, ind, sup = survey
    again = cs.change.fit(ind, supported=sup, seed=5, draws=1000, tune=1000)
    assert again.diagnostics["cached"]
    np.testing.assert_array_equal(again.change_draws(), fitted.change_draws())


@pytest.mark.slow
def test_marginalised_and_full_model_agree(survey, fitted):
    """Slow (compiles a second model): passed in 3 min on the loaded development machine."""
    sim, ind, sup = survey
    idata, diag, data = _model._fit_full(ind, supported=sup, seed=6, sampler="nutpie", draws=1000, tune=1000)
    post_m, post_f = fitted.idata.posterior, idata.posterior
    import arviz as az

    # the country effects are integrated out by the default sampler and drawn afterwards: compared too
    for name in ("drift", "support", "factor_effect", "sd_cell", "sd_country", "country_effect"):
        a, b = post_m[name].values, post_f[name].values
        a2, b2 = a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:])
        se = np.sqrt(a2.var(axis=0) / np.asarray(az.ess(post_m[[name]])[name].values)
                     + b2.var(axis=0) / np.asarray(az.ess(post_f[[name]])[name].values))
        assert np.all(np.abs(a2.mean(axis=0) - b2.mean(axis=0)) < 4.5 * se + 1e-3), name
    # the cell changes: full model's delta = m + eps, the same cells
    eps = post_f["eps_z"].values.reshape(-1, *post_f["eps_z"].shape[2:])
    mean_m = fitted.prob_improved["mean"].to_numpy()
    ff = _model._draw_changes(data, post_f, False, np.random.default_rng(0))  # conditional draws on full's hypers
    assert ff.shape[1:] == eps.shape[1:]
    pair_of = pd.MultiIndex.from_arrays([np.array(data.countries, dtype=object)[data.pc],
                                         np.array(data.groups, dtype=object)[data.pg]])
    pi = pair_of.get_indexer(pd.MultiIndex.from_frame(fitted.cells[["country", "group"]]))
    fi = fitted.cells["factor"].map({f: j for j, f in enumerate(data.factors)}).to_numpy()
    sd_cell = post_f["sd_cell"].values.reshape(-1, len(data.groups))[:, data.pg]
    drift = post_f["drift"].values.reshape(-1, len(data.groups))[:, data.pg]
    beta = post_f["factor_effect"].values.reshape(-1, len(data.factors))
    gamma = post_f["country_effect"].values.reshape(-1, len(data.countries))[:, data.pc]
    sup_ = post_f["support"].values.reshape(-1, len(data.groups))[:, data.pg]
    delta_full = (drift[:, :, None] + beta[:, None, :] + gamma[:, :, None] + sup_[:, :, None] * data.sup[None]
                  + sd_cell[:, :, None] * eps)[:, pi, fi]
    sd = delta_full.std(axis=0)
    assert np.all(np.abs(delta_full.mean(axis=0) - mean_m) < 0.15 * sd + 0.01)
    np.testing.assert_allclose(delta_full.std(axis=0), fitted.prob_improved["sd"], rtol=0.15)


def test_fit_bad_input(survey):
    sim, ind, sup = survey
    dup = pd.concat([sup, sup.iloc[:2]], ignore_index=True)
    with pytest.raises(cs.DataError, match="problem") as e:
        cs.change.fit(ind, supported=dup, seed=1)
    assert {p.rule for p in e.value.problems} == {"supported_duplicate"}
    assert len(e.value.problems) == 4
    bad = pd.concat([sup, pd.DataFrame({"country": ["ZZ"], "factor": ["audit"], "supported": [True]})],
                    ignore_index=True)
    with pytest.raises(cs.DataError) as e:
        cs.change.fit(ind, supported=bad, seed=1)
    assert e.value.problems[0].rule == "supported_unknown" and e.value.problems[0].row == len(bad)
    with pytest.raises(cs.DataError, match="supported="):
        cs.change.fit(ind, supported=sup.drop(columns="supported"), seed=1)
    holes = sup[~((sup["country"] == sup["country"].iloc[0]) & (sup["factor"] == FACTORS[0]))]
    if sup["country"].iloc[0] in set(sim.truth["countries"].query("repeated")["country"]):
        with pytest.raises(cs.DataError, match="no row"):
            cs.change.fit(ind, supported=holes, seed=1)
    with pytest.raises(cs.DataError, match="keep_replicates"):
        cs.change.fit(dataclasses.replace(ind, replicates=None), supported=sup, seed=1)
    with pytest.raises(cs.DataError, match="sampler="):
        cs.change.fit(ind, supported=sup, sampler="stan")
    with pytest.raises(cs.DataError, match="draws="):
        cs.change.fit(ind, supported=sup, draws=0)


def test_small_sbc():
    """Simulation-based calibration on a reduced model (6 countries x 2 groups x 4 factors, 24 replications):
    the ranks of the true drift, support effect, cell sd, country sd and one cell change among 99 posterior
    draws are uniform (chi-square on 10 bins; a sign or scale error in the model gives p far below 1e-3)."""
    from validation.study_change import _sbc_design, sbc_one, summarise_sbc

    design = _sbc_design()
    ranks = pd.DataFrame([sbc_one(r + 1, design, draws=500, chains=2) for r in range(24)])
    tab = summarise_sbc(ranks)
    assert (tab["p_value"] > 1e-3).all(), tab
    # 2 x 500 draws (as the 200-replication study, where every R-hat was below 1.05) cannot reach the gates'
    # ESS of 400 (not asked here), but the chains must have mixed (with only 4 factors the factor sd is a
    # funnel: target_accept 0.95 keeps the divergent transitions rare)
    assert (ranks["r_hat_max"] < 1.05).mean() >= 0.9 and (ranks["divergences"] == 0).mean() >= 0.9


@pytest.mark.slow
def test_baseline_covariate_recovers_regression_to_the_mean():
    """selection="baseline": the programme supports each country's weakest factors, so naive comparisons
    confound support with regression to the mean; the baseline covariate's fit still covers the truth."""
    sim = cs.simulate(seed=31, n_countries=10, n_repeat=8, n_officials=150, n_private=110, selection="baseline")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, n_boot=400, seed=4)
    sup = sim.truth["supported"]
    sup = sup[sup["factor"].isin(FACTORS)]
    r = cs.change.fit(ind, supported=sup, seed=2, baseline=True, draws=2000, tune=2000)   # the remedy the gate names
    assert r.reliable and "rho" in r.idata.posterior and r.baseline
    t = r.prob_improved.merge(sim.truth["change"], on=["country", "group", "factor"])
    assert ((t["ci_low"] <= t["change"]) & (t["change"] <= t["ci_high"])).mean() >= 0.85
    assert set(r.hyper["parameter"]) >= {"rho"}
