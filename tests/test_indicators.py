"""Tests of cs.estimate.indicators / perception_gap (cips_stats/estimate/indicators.py).

What is proven here:
* point estimates equal weighted means computed with pandas;
* every replicate estimate equals the definition (ratio of sums with the replicate weights of
  ``rao_wu_weights`` for the same seed and strata), on the fast path, the general path (clusters,
  strata, domains) and whatever the chunk size;
* bootstrap SEs agree with the linearization SEs of ``survey_mean`` (itself checked against R survey);
* precision rules, contrasts, the perception gap, a quick coverage check against simulated truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.errors import CipsError, CipsWarning, DataError, SmallCellWarning
from cips_stats.replicates import rao_wu_scale, rao_wu_weights
from cips_stats.scores import respondent_scores

KEYS = ["country", "iteration", "group"]

# The small simulated surveys here have cells below the precision minimum: indicators warns
# (SmallCellWarning) on every call.  The warning itself is tested in test_precision_rules and
# test_small_cells_warn_once_per_kind; elsewhere it is expected noise.
pytestmark = pytest.mark.filterwarnings("ignore::cips_stats.errors.SmallCellWarning")


@pytest.fixture(scope="module")
def sim():
    return cs.simulate(seed=11, n_countries=3, n_repeat=2, n_officials=80, n_private=50)


@pytest.fixture(scope="module")
def res(sim):
    return cs.estimate.indicators(sim.data, n_boot=300, seed=3)


def _design_codes(frame, extra=()):
    return frame.groupby(KEYS + list(extra), sort=True).ngroup().to_numpy()


def _definitional_replicates(data, rw, by, factor_ids=None):
    """theta_b[cell, factor] = sum(rw * s * m) / sum(rw * m) with pandas cell codes."""
    sc = respondent_scores(data)
    S = sc.values()
    M = ~np.isnan(S)
    S0 = np.where(M, S, 0.0)
    codes = data.frame.groupby(list(by), sort=True, dropna=True).ngroup().to_numpy()
    K = int(np.nanmax(codes)) + 1
    out = np.zeros((K, S.shape[1], rw.shape[0]))
    for k in range(K):      # a plain loop: the reference, not the implementation
        rows = codes == k
        num = rw[:, rows] @ (S0[rows] * M[rows])
        den = rw[:, rows] @ M[rows].astype(float)
        out[k] = (num / den).T
    return out


def test_estimates_equal_weighted_means(sim, res):
    sc = respondent_scores(sim.data)
    long = pd.concat([sc.respondents[KEYS + ["weight"]], sc.scores], axis=1)
    rows = []
    for key, g in long.groupby(KEYS, sort=True):
        for f in sc.factors:
            ok = g[f].notna()
            rows.append((*key, f, np.average(g.loc[ok, f], weights=g.loc[ok, "weight"]), int(ok.sum())))
    ref = pd.DataFrame(rows, columns=KEYS + ["factor", "ref", "n_ref"])
    m = res.table.merge(ref, on=KEYS + ["factor"], validate="1:1")
    assert len(m) == len(ref) == len(res.table)
    np.testing.assert_allclose(m["estimate"], m["ref"], rtol=1e-12)
    assert (m["n"] == m["n_ref"]).all()
    assert list(res.table.columns[:4]) == KEYS + ["factor"]


def test_replicates_equal_definition_fast_path(sim, res):
    f = sim.data.frame
    rw = rao_wu_weights(weight=f["weight"].to_numpy(), strata=_design_codes(f), n_boot=300, seed=3)
    ref = _definitional_replicates(sim.data, rw, KEYS)
    assert res.provenance.options["path"] == "fast"
    np.testing.assert_allclose(res.replicates, ref, rtol=2e-6, atol=2e-6)
    var = rao_wu_scale(300) * ((ref - ref.mean(axis=2, keepdims=True)) ** 2).sum(axis=2)
    np.testing.assert_allclose(res.table["se"], np.sqrt(var).ravel(), rtol=1e-4)


@pytest.fixture(scope="module")
def clustered(sim):
    rng = np.random.default_rng(1)
    f = sim.data.frame.copy()
    f["stratum"] = rng.integers(0, 2, len(f))
    f["cluster"] = rng.integers(0, 6, len(f))
    return sim.data.with_frame(f)


def test_replicates_equal_definition_general_path(clustered):
    f = clustered.frame
    res = cs.estimate.indicators(clustered, n_boot=120, seed=9, chunk_size=17, min_n=0)
    assert res.provenance.options["path"] == "general"
    assert res.provenance.options["strata"] == "stratum" and res.provenance.options["cluster"] == "cluster"
    rw = rao_wu_weights(weight=f["weight"].to_numpy(), strata=_design_codes(f, ["stratum"]), cluster=f["cluster"],
                        n_boot=120, seed=9)
    # rows of a PSU share one multiplier and unselected PSUs are out of the replicate
    ref = _definitional_replicates(clustered, rw, KEYS)
    np.testing.assert_allclose(res.replicates, ref, rtol=2e-6, atol=2e-6)


@pytest.mark.filterwarnings("ignore::cips_stats.errors.NumericalWarning")     # tiny domain cells
def test_domains_resample_within_the_design_strata(sim):
    res = cs.estimate.indicators(sim.data, by=("country", "iteration", "group", "gender"), n_boot=100, seed=4,
                                 min_n=0)
    f = sim.data.frame
    rw = rao_wu_weights(weight=f["weight"].to_numpy(), strata=_design_codes(f), n_boot=100, seed=4)
    ref = _definitional_replicates(sim.data, rw, ("country", "iteration", "group", "gender"))
    np.testing.assert_allclose(res.replicates, ref, rtol=2e-6, atol=2e-6, equal_nan=True)
    assert set(res.table["gender"]) == {"female", "male"}
    # a demographic asked of one group only: rows of the other group are in no cell
    res2 = cs.estimate.indicators(sim.data, by=("country", "iteration", "group", "business_type"), n_boot=50,
                                  seed=4, min_n=0)
    assert set(res2.table["group"]) == {"private"}


@pytest.mark.parametrize("chunk", [1, 33])
def test_same_replicates_whatever_the_chunk_size(sim, res, chunk):
    other = cs.estimate.indicators(sim.data, n_boot=300, seed=3, chunk_size=chunk)
    np.testing.assert_allclose(other.replicates, res.replicates, rtol=1e-6, atol=1e-6)
    again = cs.estimate.indicators(sim.data, n_boot=300, seed=3)
    pd.testing.assert_frame_equal(again.table, res.table)
    diff = cs.estimate.indicators(sim.data, n_boot=300, seed=4)
    assert not np.allclose(diff.table["se"], res.table["se"])


def test_fast_and_general_paths_agree(sim, monkeypatch):
    import importlib

    ind = importlib.import_module("cips_stats.estimate.indicators")   # the module (the package binds the function)

    a = cs.estimate.indicators(sim.data, n_boot=80, seed=2)
    monkeypatch.setattr(ind, "_FAST_PATH", False)
    b = cs.estimate.indicators(sim.data, n_boot=80, seed=2)
    assert a.provenance.options["path"] == "fast" and b.provenance.options["path"] == "general"
    np.testing.assert_allclose(a.replicates, b.replicates, rtol=1e-6, atol=1e-6)


def test_float32_engine_matches_float64(sim):
    a = cs.estimate.indicators(sim.data, n_boot=200, seed=5)
    b = cs.estimate.indicators(sim.data, n_boot=200, seed=5, dtype=np.float64)
    np.testing.assert_allclose(a.table["se"], b.table["se"], rtol=1e-4)
    np.testing.assert_allclose(a.table["ci_low"], b.table["ci_low"], atol=1e-5)


def test_bootstrap_se_agrees_with_linearization(sim):
    # survey_mean(se="linearization") is checked against R survey 4.1.1 by its own tests
    sc = respondent_scores(sim.data)
    res = cs.estimate.indicators(sim.data, n_boot=2000, seed=7)
    tab = res.table.set_index(KEYS + ["factor"])
    frame = pd.concat([sc.respondents[KEYS + ["weight"]], sc.scores.add_prefix("s_")], axis=1)
    ratios, deffs = [], []
    for key, g in frame.groupby(KEYS, sort=True):
        for f in ("leadership", "audit", "whistleblower"):
            lin = cs.estimate.survey_mean(g, f"s_{f}", weight="weight")
            row = tab.loc[(*key, f)]
            assert row["estimate"] == pytest.approx(lin.estimate, rel=1e-12)
            ratios.append(row["se"] / lin.se)
            deffs.append((row["deff"], lin.deff_replace * (row["se"] / lin.se) ** 2))
    ratios = np.array(ratios)
    # Monte Carlo error of one bootstrap SE with B = 2000 is ~1.6%; the median over 30 cells much less
    assert np.median(ratios) == pytest.approx(1.0, abs=0.03)
    assert np.all(np.abs(ratios - 1) < 0.15)
    d = np.array(deffs)
    np.testing.assert_allclose(d[:, 0], d[:, 1], rtol=1e-6)     # same deff definition as R deff="replace"


def test_precision_rules(sim):
    with pytest.warns(SmallCellWarning) as caught:
        res = cs.estimate.indicators(sim.data, n_boot=100, seed=1, min_n=60, cv_suppress=0.025, cv_caution=0.02)
    # one warning per kind of condition, each naming its number of cells, as the flags
    messages = sorted(str(w.message).rsplit(" [", 1)[0] for w in caught if issubclass(w.category, SmallCellWarning))
    assert messages == sorted(f.message for f in res.flags if f.code in ("small_cell", "high_cv", "caution_cv"))
    assert len(messages) == 3
    t = res.table
    small = t["n"] < 60
    high = t["cv"] > 0.025
    caution = (t["cv"] > 0.02) & ~high & ~small
    assert small.any() and high.any() and caution.any()
    assert (t["suppressed"] == (small | high)).all()
    assert (t["caution"] == caution).all()
    assert t.loc[small, "flags"].str.contains("small_n").all()
    assert t.loc[high, "flags"].str.contains("high_cv").all()
    assert t.loc[caution, "flags"].str.contains("caution_cv").all()
    assert t.loc[~small & ~high & ~caution, "flags"].eq("").all()
    codes = {f.code for f in res.flags}
    assert {"small_cell", "high_cv", "caution_cv"} <= codes
    assert np.isfinite(t.loc[t["suppressed"], "estimate"]).all()   # numbers kept; disclosure blanks them


def test_contrasts_and_differences(res):
    chg = res.difference(along="iteration", minuend=2, subtrahend=1)
    t = chg.table
    assert list(t.columns[:3]) == ["country", "group", "factor"]
    base = res.table.set_index(KEYS + ["factor"])
    for r in t.head(8).itertuples():
        e2 = base.loc[(r.country, 2, r.group, r.factor)]
        e1 = base.loc[(r.country, 1, r.group, r.factor)]
        assert r.estimate == pytest.approx(e2["estimate"] - e1["estimate"], rel=1e-12)
        # independent samples: var(diff) ~ var1 + var2 (replicates drawn independently)
        assert r.se == pytest.approx(np.hypot(e1["se"], e2["se"]), rel=0.2)
    # between factors of the same respondents the covariance is positive: smaller SE than independent
    fd = res.difference(along="factor", minuend="leadership", subtrahend="audit")
    lead = res.table[res.table["factor"] == "leadership"].reset_index(drop=True)
    aud = res.table[res.table["factor"] == "audit"].reset_index(drop=True)
    np.testing.assert_allclose(fd.table["estimate"], lead["estimate"] - aud["estimate"], rtol=1e-12)
    assert (fd.table["se"] < np.hypot(lead["se"], aud["se"])).mean() > 0.8
    # a general contrast: the mean of two cells
    coef = pd.DataFrame({"country": ["C01", "C01"], "iteration": [1, 2], "group": "officials",
                         "contrast": "avg", "coef": 0.5})
    c = res.contrast(coef).table.set_index("factor")
    e = base.loc[("C01", 1, "officials")]["estimate"] * 0.5 + base.loc[("C01", 2, "officials")]["estimate"] * 0.5
    np.testing.assert_allclose(c.loc[e.index, "estimate"], e, rtol=1e-12)


def test_perception_gap(sim, res):
    gap = cs.estimate.perception_gap(res)
    again = cs.estimate.perception_gap(sim.data, n_boot=300, seed=3)
    pd.testing.assert_frame_equal(gap.table, again.table)
    base = res.table.set_index(KEYS + ["factor"])
    r = gap.table.iloc[0]
    expect = (base.loc[(r.country, r.iteration, "officials", r.factor), "estimate"]
              - base.loc[(r.country, r.iteration, "private", r.factor), "estimate"])
    assert r.estimate == pytest.approx(expect, rel=1e-12)
    assert gap.replicates.shape == (len(gap.table), 300)
    assert {"bca", "normal"} and cs.estimate.perception_gap(res, ci_method="bca").table["ci_low"].notna().all()


def test_ci_methods(sim):
    kw = dict(n_boot=1000, seed=2)
    p = cs.estimate.indicators(sim.data, ci_method="percentile", **kw).table
    b = cs.estimate.indicators(sim.data, ci_method="bca", **kw).table
    nrm = cs.estimate.indicators(sim.data, ci_method="normal", **kw).table
    z = 1.959963984540054
    np.testing.assert_allclose(nrm["ci_high"] - nrm["estimate"], z * nrm["se"], rtol=1e-12)
    # cells of reportable size have near-normal bootstrap distributions: the intervals nearly agree
    ok = ~nrm["suppressed"].to_numpy()
    assert ok.sum() > 50
    for t in (p, b):
        for lim in ("ci_low", "ci_high"):
            d = (np.abs(t[lim] - nrm[lim]) / nrm["se"])[ok]
            assert d.max() < 0.6 and d.median() < 0.15
    assert not np.allclose(p["ci_low"], b["ci_low"])


def test_bca_reduces_to_percentile_without_bias_and_acceleration():
    from cips_stats.estimate.intervals import bootstrap_intervals as _intervals

    rng = np.random.default_rng(0)
    reps = rng.normal(size=(5, 4001))
    est = np.median(reps, axis=1)                              # z0 = 0 exactly
    p = _intervals(est, reps, 0.9, "percentile", None)
    b = _intervals(est, reps, 0.9, "bca", np.zeros(5))
    np.testing.assert_allclose(b["ci_low"], p["ci_low"], rtol=1e-12)
    np.testing.assert_allclose(p["ci_low"], np.quantile(reps, 0.05, axis=1), rtol=1e-12)
    # positive acceleration shifts both limits up
    b2 = _intervals(est, reps, 0.9, "bca", np.full(5, 0.1))
    assert np.all(b2["ci_low"] > b["ci_low"]) and np.all(b2["ci_high"] > b["ci_high"])


def test_quick_coverage_against_simulated_truth():
    # the slow study is validation/study_indicator_coverage.py; here 10 small surveys
    hits, total = 0, 0
    for s in range(10):
        sm = cs.simulate(seed=100 + s, n_countries=2, n_repeat=1, n_officials=120, n_private=80)
        r = cs.estimate.indicators(sm.data, n_boot=300, seed=s, min_n=0)
        m = r.table.merge(sm.truth["indicators"], on=KEYS + ["factor"], validate="1:1")
        inside = (m["value"] >= m["ci_low"]) & (m["value"] <= m["ci_high"])
        hits += int(inside.sum())
        total += len(m)
    cov = hits / total
    # 10 x 6 cells x 11 factors = 660 intervals, correlated within cells: a loose band around 0.95
    assert 0.88 <= cov <= 0.99, cov


def test_bad_input(sim):
    d = sim.data
    with pytest.raises(DataError, match="by="):
        cs.estimate.indicators(d, by=("country", "nope"), n_boot=10)
    with pytest.raises(CipsError, match="ci_method="):
        cs.estimate.indicators(d, ci_method="studentized", n_boot=10)
    with pytest.raises(CipsError, match="n_boot="):
        cs.estimate.indicators(d, n_boot=1)
    with pytest.raises(CipsError, match="ci="):
        cs.estimate.indicators(d, ci=1.5, n_boot=10)
    with pytest.raises(CipsError, match="seed"):
        cs.estimate.indicators(d, seed=-1, n_boot=10)
    with pytest.raises(DataError, match="SurveyData"):
        cs.estimate.indicators(d.frame, n_boot=10)
    with pytest.raises(CipsError, match="weight="):
        cs.estimate.indicators(d, weight=3, n_boot=10)
    f = d.frame.copy()
    f.loc[3, "weight"] = -1.0
    with pytest.raises(DataError, match="weights") as ei:
        cs.estimate.indicators(d.with_frame(f), n_boot=10)
    assert ei.value.problems[0].row == 4      # 1-based record number of frame row 3
    res = cs.estimate.indicators(d, n_boot=10, keep_replicates=False)
    with pytest.raises(DataError, match="keep_replicates"):
        res.difference(along="iteration", minuend=2, subtrahend=1)
    with pytest.raises(DataError, match="along="):
        cs.estimate.indicators(d, n_boot=10).difference(along="gender", minuend="a", subtrahend="b")


def test_contrast_across_factors_and_errors(res):
    coef = pd.DataFrame({"country": "C01", "iteration": 1, "group": "officials",
                         "factor": ["leadership", "audit"], "contrast": "lead-audit", "coef": [1.0, -1.0]})
    c = res.contrast(coef)
    fd = res.difference(along="factor", minuend="leadership", subtrahend="audit").table
    row = fd[(fd["country"] == "C01") & (fd["iteration"] == 1) & (fd["group"] == "officials")].iloc[0]
    assert c.table["estimate"].iloc[0] == pytest.approx(row["estimate"], rel=1e-12)
    assert c.table["se"].iloc[0] == pytest.approx(row["se"], rel=1e-9)
    with pytest.raises(DataError, match="not in the indicators"):
        res.contrast(coef.assign(country="ZZ"))
    with pytest.raises(DataError, match="unknown factors"):
        res.contrast(coef.assign(factor="nope"))
    with pytest.raises(DataError, match="lacks the columns"):
        res.contrast(coef.drop(columns=["coef"]))


def test_serialisation_leaves_out_the_replicates(res):
    import json

    d = json.loads(res.to_json())
    assert d["kind"] == "Indicators" and d["replicates_shape"] == list(res.replicates.shape)
    assert "replicates" not in d
    assert d["provenance"]["seed"] == 3 and d["provenance"]["options"]["n_boot"] == 300
    assert len(d["table"]["data"]) == len(res.table)


def test_singleton_strata_fail_or_are_taken_with_certainty(sim):
    from cips_stats.errors import SingletonPSUError

    f = sim.data.frame.copy()
    f["stratum"] = "a"
    first = f.groupby(KEYS).head(1).index          # one respondent alone in stratum "b" of every cell
    f.loc[first, "stratum"] = "b"
    d = sim.data.with_frame(f)
    with pytest.raises(SingletonPSUError, match="single PSU"):
        cs.estimate.indicators(d, n_boot=20, seed=1)
    res = cs.estimate.indicators(d, n_boot=60, seed=1, lonely_psu="certainty", min_n=0)
    assert res.provenance.options["path"] == "fast"
    rw = rao_wu_weights(weight=f["weight"].to_numpy(), strata=_design_codes(f, ["stratum"]), n_boot=60, seed=1,
                        lonely_psu="certainty")
    assert np.all(rw[:, first] == f.loc[first, "weight"].to_numpy())
    ref = _definitional_replicates(d, rw, KEYS)
    np.testing.assert_allclose(res.replicates, ref, rtol=2e-6, atol=2e-6)


def test_small_cells_warn_once_per_kind_and_a_clean_survey_does_not_warn():
    import warnings

    small = cs.simulate(seed=1, n_countries=3, n_repeat=2, small_cells=True).data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = cs.estimate.indicators(small, n_boot=100, seed=2)
    cells = [w for w in caught if issubclass(w.category, SmallCellWarning)]
    flag = next(f for f in res.flags if f.code == "small_cell")
    assert len([w for w in cells if "fewer than 30" in str(w.message)]) == 1     # once per call, with the count
    assert str(flag.where["n"]) in flag.message and flag.where["n"] == int(
        (res.table["n"].between(1, 29) & res.table["flags"].str.contains("small_n")).sum())
    assert all(w.filename == __file__ for w in caught)          # points at the caller, not the package
    clean = cs.simulate(seed=1, n_countries=3, n_repeat=2).data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = cs.estimate.indicators(clean, n_boot=100, seed=2)
    assert not [w for w in caught if issubclass(w.category, CipsWarning)]
    assert not {"small_cell", "high_cv", "no_data"} & {f.code for f in out.flags}


def test_partial_sort_intervals_equal_full_sort(monkeypatch):
    """The percentile/BCa bounds from the partial sort are those of a full sort (NaN, ties, uneven counts)."""
    from cips_stats.estimate import intervals as iv

    rng = np.random.default_rng(3)
    for _ in range(60):
        R, B = int(rng.integers(1, 20)), int(rng.integers(2, 50))
        t = rng.standard_normal((R, B))
        t[rng.random((R, B)) < rng.choice([0.0, 0.0, 0.1, 0.9])] = np.nan
        if rng.random() < 0.3:
            t = np.round(t, 1)
        e, acc = rng.standard_normal(R), 0.1 * rng.standard_normal(R)
        for method in ("percentile", "bca"):
            fast = iv.bootstrap_intervals(e, t, 0.9, method, acc)
            with monkeypatch.context() as m:
                m.setattr(iv, "_order_statistics", lambda x, nv, qs: np.sort(x, axis=1))
                full = iv.bootstrap_intervals(e, t, 0.9, method, acc)
            for k in fast:
                np.testing.assert_array_equal(fast[k], full[k])
