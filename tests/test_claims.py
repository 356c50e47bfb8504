"""cs.claims: audit (rules, shares, nulls, tests, verdict), the permutation kernel, from_aggregates, bad input."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats import claims


@pytest.fixture(scope="module")
def survey():
    sim = cs.simulate(seed=3, n_countries=6, n_repeat=6, n_officials=50, n_private=40, support_effect=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)     # a deliberately small survey (small cells)
        ind = cs.estimate.indicators(sim.data, n_boot=100, seed=3)
    return sim, ind, cs.change.cell_changes(ind)


@pytest.fixture(scope="module")
def audited(survey):
    sim, ind, cc = survey
    return claims.audit(cc, supported=sim.truth["supported"], rules=("point", "fdr"), n_perm=2000, n_boot=300,
                        n_null=300, seed=11)


# ------------------------------------------------------------------------------------- audit
def test_audit_shares_counts_and_intervals(survey, audited):
    sim, ind, cc = survey
    sup = sim.truth["supported"]
    cells = cc.table.merge(sup[["country", "factor", "supported"]], on=["country", "factor"])
    for g in ("officials", "private"):
        c = cells[cells["group"] == g]
        for setname, mask in (("supported", c["supported"]), ("unsupported", ~c["supported"])):
            row = audited.shares.query("group == @g and rule == 'point' and set == @setname").iloc[0]
            assert row["n_cells"] == int(mask.sum())
            assert row["n_improved"] == int((c.loc[mask, "estimate"] > 0).sum())
            assert row["share"] == pytest.approx((c.loc[mask, "estimate"] > 0).mean())
            assert row["ci_low"] <= row["share"] <= row["ci_high"]
            assert row["ci_high"] - row["ci_low"] > 0
        fdr = audited.shares.query("group == @g and rule == 'fdr' and set == 'supported'").iloc[0]
        point = audited.shares.query("group == @g and rule == 'point' and set == 'supported'").iloc[0]
        assert fdr["n_improved"] <= point["n_improved"]          # significant and positive implies positive


def test_audit_tests_present_and_valid(audited):
    t = audited.tests
    want = {"permutation", "cmh", "fisher", "gee_exchangeable", "gee_independence", "gee_exchangeable_bc", "mixed",
            "welch", "did", "ancova"}
    assert want <= set(t["test"])
    gee = t[t["test"] == "gee_exchangeable"].set_index(["group", "rule"])
    bc = t[t["test"] == "gee_exchangeable_bc"].set_index(["group", "rule"])
    ok_rows = gee["se"].notna()
    # the bias-reduced sandwich is larger, and its t reference makes the p-value larger still
    assert (bc.loc[ok_rows, "se"] >= gee.loc[ok_rows, "se"]).all()
    assert (bc.loc[ok_rows, "p_value"] >= gee.loc[ok_rows, "p_value"]).all()
    ok = t["p_value"].notna()
    assert t.loc[ok, "p_value"].between(0, 1).all()
    assert (t.loc[ok, "p_holm"] >= t.loc[ok, "p_value"] - 1e-12).all()
    perm = t[t["test"] == "permutation"]
    assert (perm["mc_se"] > 0).all()                              # 6 countries x C(10,3): Monte Carlo
    # the support effect of the simulation (0.6 latent SD) is large: DiD is positive in both groups
    assert (t[(t["test"] == "did")]["estimate"] > 0).all()


def test_audit_verdict_and_frame(audited):
    v = audited.verdict
    assert "officials" in v and "private" in v
    assert "within-country permutation p" in v and "after baseline adjustment" in v
    f = audited.to_frame()
    assert set(f["section"]) == {"shares", "nulls", "tests", "baseline", "permutation"}
    assert len(f) == len(audited.shares) + len(audited.nulls) + len(audited.tests) + len(audited.baseline) + \
        len(audited.permutation)
    d = audited.to_dict()
    assert d["kind"] == "ClaimAudit" and d["provenance"]["seed"] == 11
    assert "Note" in str(audited.summary()) or audited.flags == ()


def test_audit_keeps_the_permutation_draws(audited):
    """The permutation distribution of every group and statistic is kept; the p-value recomputes from it."""
    d, t = audited.permutation_draws, audited.permutation
    assert list(d.columns) == ["group", "rule", "draw", "statistic"]
    assert set(t["rule"]) == {"point", "fdr", "change", "baseline"} and set(t["group"]) == {"officials", "private"}
    assert (d.groupby(["group", "rule"]).size() == audited.n_perm).all()
    tests = audited.tests[audited.tests["test"] == "permutation"].set_index(["group", "rule"])
    for r in t.itertuples():
        stat = d.loc[(d["group"] == r.group) & (d["rule"] == r.rule), "statistic"].to_numpy()
        # a reader's recomputation, independent of the package: two-sided, centred at the permutation mean
        hits = (np.abs(stat - r.null_mean) >= abs(r.observed - r.null_mean) - 1e-9).sum()
        assert r.p_value == pytest.approx((1 + hits) / (1 + len(stat)))
        assert audited.permutation_p_value(r.group, r.rule) == pytest.approx(r.p_value)
        # the centre is the exact permutation mean: the Monte Carlo mean is within a few SEs of it
        assert abs(stat.mean() - r.null_mean) < 5 * stat.std() / np.sqrt(len(stat)) + 1e-12
        if r.rule != "baseline":
            assert tests.loc[(r.group, r.rule), "p_value"] == pytest.approx(r.p_value)
            assert tests.loc[(r.group, r.rule), "estimate"] == pytest.approx(r.observed)
    # shares of improved cells: the permuted statistic takes only the values of a difference of counts
    pt = d.loc[d["rule"] == "point", "statistic"]
    assert pt.between(-1, 1).all()
    nd = audited.permutation_null("officials", "change")
    assert set(nd) >= {"statistic", "observed", "null_mean", "exact", "p_value"} and len(nd["statistic"]) == 2000
    with pytest.raises(cs.DataError, match="posterior"):
        audited.permutation_null("officials", "posterior")
    fig = audited.plot(group="private", rule="change")
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "Permutation null distribution"
    # the JSON form leaves the draws out; the long table keeps their summary
    assert "permutation_draws" not in audited.to_dict() and "permutation" in audited.to_dict()


def test_audit_tables_have_one_row_set_per_group_and_no_pooled_group(audited):
    """No "all" (pooled) group sneaks into the audit's tables: every number belongs to one respondent group."""
    for name in ("shares", "nulls", "tests", "baseline", "permutation", "permutation_draws", "cells"):
        assert set(getattr(audited, name)["group"]) == {"officials", "private"}, name
    b = audited.baseline
    assert not b.duplicated(["group", "quantity"]).any()


def test_exact_permutation_draws_are_every_arrangement():
    codes = np.repeat(np.arange(2), [4, 5])
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1], bool)
    y = np.array([1, 0, 1, 1, 0, 0, 1, 1, 1], float)[:, None]
    res = claims.within_country_permutation(codes, labels, y, n_perm=1000, rng=np.random.default_rng(0))
    assert res["exact"] and res["draws"].shape == (6 * 10, 1)
    ref = _brute_force(codes, labels, y)
    np.testing.assert_allclose(np.sort(res["draws"][:, 0]), np.sort(ref[:, 0]))
    p, se = claims.permutation_p_value(res["draws"], res["observed"], res["null_mean"], exact=True)
    assert p[0] == pytest.approx(res["p_value"][0]) and se[0] == 0.0


def test_audit_nulls(audited):
    n = audited.nulls
    no = n[(n["scenario"] == "no_change") & (n["rule"] == "point")]
    assert np.allclose(no["expected_share"], 0.5, atol=0.06)
    fdr = n[(n["scenario"] == "no_change") & (n["rule"] == "fdr")]
    assert (fdr["expected_share"] < 0.05).all()
    assert set(n["scenario"]) == {"no_change", "common_drift"}


def test_audit_from_indicators_equals_from_cell_changes(survey, audited):
    sim, ind, cc = survey
    a = claims.audit(ind, supported=sim.truth["supported"], rules=("point", "fdr"), n_perm=2000, n_boot=300,
                     n_null=300, seed=11)
    pd.testing.assert_frame_equal(a.shares, audited.shares)
    pd.testing.assert_frame_equal(a.tests, audited.tests)


def test_audit_seed_none_is_recorded_and_reproduces(survey):
    sim, ind, cc = survey
    kw = dict(supported=sim.truth["supported"], rules=("point",), tests=("permutation",), n_perm=300, n_boot=50,
              n_null=50)
    a = claims.audit(cc, **kw)
    assert isinstance(a.provenance.seed, int) and a.seed == a.provenance.seed
    b = claims.audit(cc, seed=a.seed, **kw)
    pd.testing.assert_frame_equal(a.tests, b.tests)
    pd.testing.assert_frame_equal(a.shares, b.shares)


def test_posterior_rule_needs_a_change_model(survey):
    sim, ind, cc = survey
    for obj in (ind, cc):
        with pytest.raises(claims.PosteriorRequiredError, match="fitted change model") as e:
            claims.audit(obj, supported=sim.truth["supported"], n_perm=10)
        assert isinstance(e.value, cs.DataError)
        assert e.value.problems[0].value == "posterior"


# ----------------------------------------------------------------------------------- bad input
def test_support_table_duplicates_unknown_and_labels(survey):
    sim, ind, cc = survey
    sup = sim.truth["supported"][["country", "factor", "supported"]]
    dup = pd.concat([sup, sup.iloc[[4]]], ignore_index=True)
    with pytest.raises(cs.DataError, match="1 duplicated") as e:
        claims.audit(ind, supported=dup, rules=("point",), n_perm=10)
    dup_cell = (sup.iloc[4]["country"], sup.iloc[4]["factor"])
    assert [p.value for p in e.value.problems if p.rule == "support_duplicate"] == [dup_cell, dup_cell]
    assert str(dup_cell[0]) in str(e.value) and str(dup_cell[1]) in str(e.value)
    unk = pd.concat([sup, pd.DataFrame({"country": ["C99"], "factor": ["audit"], "supported": [True]})])
    with pytest.raises(cs.DataError) as e:
        claims.audit(ind, supported=unk, rules=("point",), n_perm=10)
    assert any(p.value == "C99" for p in e.value.problems)
    unk_f = pd.concat([sup, pd.DataFrame({"country": ["C01"], "factor": ["nonsense"], "supported": [True]})])
    with pytest.raises(cs.DataError) as e:
        claims.audit(cc, supported=unk_f, rules=("point",), n_perm=10)
    assert any(p.value == "nonsense" for p in e.value.problems)
    bad = sup.assign(supported=sup["supported"].astype(object))
    bad.loc[0, "supported"] = "yes"
    with pytest.raises(cs.DataError) as e:
        claims.audit(cc, supported=bad, rules=("point",), n_perm=10)
    assert any(p.value == "yes" and p.row == 1 for p in e.value.problems)
    with pytest.raises(cs.DataError, match="lacks the columns"):
        claims.audit(cc, supported=sup.drop(columns="supported"), rules=("point",))


def test_bad_arguments(survey):
    sim, ind, cc = survey
    sup = sim.truth["supported"]
    with pytest.raises(cs.DataError, match="rules"):
        claims.audit(cc, supported=sup, rules=("vote",))
    with pytest.raises(cs.DataError, match="tests"):
        claims.audit(cc, supported=sup, rules=("point",), tests=("ttest",))
    with pytest.raises(cs.DataError, match="n_perm"):
        claims.audit(cc, supported=sup, rules=("point",), n_perm=0)
    with pytest.raises(cs.DataError, match="significance"):
        claims.audit(cc, supported=sup, rules=("point",), significance=5)
    with pytest.raises(cs.DataError, match="indicators_or_change"):
        claims.audit(cc.table, supported=sup, rules=("point",))
    none = sup.assign(supported=False)
    with pytest.raises(cs.DataError, match="No supported cell"):
        claims.audit(cc, supported=none, rules=("point",), n_perm=10)


# ------------------------------------------------------------------------------ permutation kernel
def _brute_force(codes, labels, Y):
    """Every within-country arrangement, one at a time (the independent reference)."""
    blocks = [np.flatnonzero(codes == c) for c in np.unique(codes)]
    per = [list(itertools.combinations(b, int(labels[b].sum()))) for b in blocks]
    K = labels.sum()
    N = len(labels)
    stats = []
    for combo in itertools.product(*per):
        s = np.zeros(N, bool)
        for part in combo:
            s[list(part)] = True
        stats.append(Y[s].sum(0) / K - Y[~s].sum(0) / (N - K))
    return np.array(stats)


def test_exact_permutation_matches_brute_force():
    rng = np.random.default_rng(4)
    codes = np.repeat(np.arange(3), [4, 5, 4])
    labels = np.zeros(13, bool)
    labels[[0, 1, 4, 6, 9]] = True
    Y = np.column_stack([rng.random(13) > 0.4, rng.normal(size=13)]).astype(float)
    res = claims.within_country_permutation(codes, labels, Y, n_perm=10_000, rng=rng)
    assert res["exact"] and res["n"] == 6 * 10 * 4
    T = _brute_force(codes, labels, Y)
    obs = Y[labels].mean(0) - Y[~labels].mean(0)
    centre = T.mean(0)
    p = (np.abs(T - centre) >= np.abs(obs - centre) - 1e-9).mean(0)
    np.testing.assert_allclose(res["observed"], obs)
    np.testing.assert_allclose(res["null_mean"], centre)
    np.testing.assert_allclose(res["p_value"], p)
    mc = claims.within_country_permutation(codes, labels, Y, n_perm=20_000, rng=rng, exact=False)
    assert not mc["exact"]
    assert np.all(np.abs(mc["p_value"] - p) < 4 * mc["mc_se"] + 1e-4)


def test_monte_carlo_permutations_keep_counts_within_country():
    rng = np.random.default_rng(2)
    codes = np.repeat(np.arange(5), 10)
    labels = np.tile(np.r_[np.ones(3, bool), np.zeros(7, bool)], 5)
    # an outcome equal to the country code: any permutation within country leaves the statistic unchanged
    Y = codes[:, None].astype(float)
    res = claims.within_country_permutation(codes, labels, Y, n_perm=500, rng=rng)
    assert not res["exact"]
    assert res["p_value"][0] == pytest.approx(1.0)


def test_permutation_type_one_error_small():
    """Small type I check of the permutation and CMH tests on null cell data with country effects."""
    rng = np.random.default_rng(8)
    C, F, n = 8, 10, 300
    codes = np.repeat(np.arange(C), F)
    rej_perm = rej_cmh = 0
    for _ in range(n):
        labels = np.concatenate([rng.permutation(np.r_[np.ones(3, bool), np.zeros(F - 3, bool)]) for _ in range(C)])
        country = rng.normal(0, 1.0, C)[codes]
        y = (country + rng.logistic(size=C * F)) > 0
        res = claims.within_country_permutation(codes, labels, y[:, None].astype(float), n_perm=199, rng=rng)
        rej_perm += res["p_value"][0] < 0.05
        rej_cmh += claims._cmh(codes, labels, y, 0.95).get("p_value", 1.0) < 0.05
    assert 0.015 < rej_perm / n < 0.095
    assert 0.015 < rej_cmh / n < 0.095


def test_vectorised_bh_and_holm_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    p = rng.beta(0.4, 1.0, size=(50, 40))
    dec = claims._bh_reject(p, 0.1)
    for i in range(50):
        np.testing.assert_array_equal(dec[i], multipletests(p[i], alpha=0.1, method="fdr_bh")[0])
    np.testing.assert_allclose(claims._holm(p[0]), multipletests(p[0], method="holm")[1])


def test_bh_partial_sort_edges_match_statsmodels():
    """Only p-values <= q are sorted: rows with none, rows where all qualify, ties and one column."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(4)
    cases = [np.full((3, 6), 0.5),                                   # nothing at or below q
             rng.uniform(0, 0.01, size=(4, 8)),                      # every p-value below q: a full sort
             np.tile([0.01, 0.02, 0.02, 0.02, 0.3, 0.9], (2, 1)),    # ties at the threshold
             rng.uniform(0, 0.2, size=(5, 1)),                       # a single test per row
             np.vstack([np.full(7, 0.8), rng.beta(0.3, 1.0, size=7)])]
    for p in cases:
        dec = claims._bh_reject(p, 0.1)
        assert dec.shape == p.shape and dec.dtype == bool
        for i in range(p.shape[0]):
            np.testing.assert_array_equal(dec[i], multipletests(p[i], alpha=0.1, method="fdr_bh")[0])
    assert not claims._bh_reject(np.full((2, 4), 0.5), 0.05).any()


def test_fixed_effects_by_demeaning_equal_the_dummy_regression():
    """The DiD/ANCOVA/baseline OLS absorbs the country effects by demeaning: the same estimate, cluster SE,
    t test on C - 1 df and interval as statsmodels' OLS on country dummies."""
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    C = 9
    codes = np.repeat(np.arange(C), rng.integers(3, 8, size=C))
    labels = rng.random(len(codes)) < 0.4
    base = rng.normal(5, 1, len(codes)) + codes * 0.3
    y = 0.3 * labels - 0.2 * base + rng.normal(0, 0.5, len(codes)) + 0.5 * codes
    for cov in (None, base):
        got = claims._ols_cluster(y, labels, codes, 0.9, covariate=cov)
        cols = [labels.astype(float)] + ([] if cov is None else [cov - cov.mean()])
        X = np.column_stack(cols + [(codes[:, None] == np.arange(C)).astype(float)])
        fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
        lo, hi = fit.conf_int(alpha=0.1)[0]
        want = {"estimate": fit.params[0], "se": fit.bse[0], "statistic": fit.tvalues[0], "p_value": fit.pvalues[0],
                "ci_low": lo, "ci_high": hi}
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-10), k
        if cov is not None:
            assert got["slope"] == pytest.approx(fit.params[1], rel=1e-10)
    # support constant within every country: no within-country contrast
    flat = np.isin(codes, np.flatnonzero(np.arange(C) % 2 == 0))
    assert "no within-country contrast" in claims._ols_cluster(y, flat, codes, 0.95)["note"]
    # one labelled and one unlabelled cell in each of two countries, with a covariate: no residual df
    two = claims._ols_cluster(np.array([1.0, 2, 3, 5]), np.array([True, False, True, False]), np.array([0, 0, 1, 1]),
                              0.95, covariate=np.array([0.1, 0.5, 0.2, 0.1]))
    assert "no residual degrees of freedom" in two["note"]


# ---------------------------------------------------------------------------------- aggregates
def test_from_aggregates_reproduces_the_published_comparison():
    off = claims.from_aggregates(supported_improved=68, supported_total=80, unsupported_improved=66,
                                 unsupported_total=90, n_countries=17, label="officials")
    assert round(100 * off.supported_share) == 85 and round(100 * off.unsupported_share) == 73
    from statsmodels.stats.proportion import proportions_ztest

    z, p = proportions_ztest([68, 66], [80, 90])
    assert off.z == pytest.approx(z) and off.p_value == pytest.approx(p)
    assert off.ci_low < off.difference < off.ci_high
    assert "not significant" in off.verdict and "Assumed" in off.verdict and "17 countries" in off.verdict
    s = off.sensitivity
    assert s["icc"].is_monotonic_increasing and s["p_value"].is_monotonic_increasing
    assert s.loc[s["icc"] == 0, "p_value"].iloc[0] == pytest.approx(off.p_value)
    pri = claims.from_aggregates(supported_improved=58, supported_total=80, unsupported_improved=55,
                                 unsupported_total=90, n_countries=17, icc=0.1, label="private")
    t = pri.table.set_index("set")
    assert pri.icc == 0.1 and t.loc["supported", "deff"] == pytest.approx(1 + (80 / 17 - 1) * 0.1)
    assert t.loc["unsupported", "deff"] == pytest.approx(1 + (90 / 17 - 1) * 0.1)
    assert t.loc["supported", "n_eff"] == pytest.approx(80 / t.loc["supported", "deff"])
    assert pri.p_value > off.p_value
    # the table holds the headline numbers; the design effect widens the share intervals
    assert t.loc["difference", "p_value"] == pri.p_value and t.loc["difference", "share"] == pri.difference
    o = off.table.set_index("set")
    assert (t.loc["supported", "ci_high"] - t.loc["supported", "ci_low"]) > \
        (o.loc["supported", "ci_high"] - o.loc["supported", "ci_low"])
    assert pri.to_frame().shape[0] == 3 and pri.to_dict()["kind"] == "AggregateComparison"


def test_from_aggregates_split_reproducing_all_published_percentages():
    """53 supported / 117 unsupported cells reproduce 85/73 (officials) and 72/61 (private) with rounding."""
    off = claims.from_aggregates(supported_improved=45, supported_total=53, unsupported_improved=85,
                                 unsupported_total=117, n_countries=17)
    pri = claims.from_aggregates(supported_improved=38, supported_total=53, unsupported_improved=71,
                                 unsupported_total=117, n_countries=17)
    shares = [round(100 * x) for x in (off.supported_share, off.unsupported_share, pri.supported_share,
                                       pri.unsupported_share)]
    assert shares == [85, 73, 72, 61]
    assert 0.05 < off.p_value < 0.1 and 0.1 < pri.p_value < 0.2
    assert not off.sensitivity["significant"].any() and not pri.sensitivity["significant"].any()


@pytest.mark.parametrize("kw, value", [
    (dict(supported_improved=90, supported_total=80), 90),
    (dict(supported_improved=-1), -1),
    (dict(unsupported_total=0, unsupported_improved=0), 0),
    (dict(icc=1.5), 1.5),
    (dict(unsupported_improved=91), 91),
    (dict(unsupported_total=-3), -3),
    (dict(supported_improved=6.5), 6.5),
    (dict(supported_total=True), True),
    (dict(n_countries=0), 0),
    (dict(supported_total=10, supported_improved=5), 10),            # fewer cells than countries
])
def test_from_aggregates_bad_counts(kw, value):
    args = dict(supported_improved=68, supported_total=80, unsupported_improved=66, unsupported_total=90,
                n_countries=17)
    args.update(kw)
    with pytest.raises(cs.DataError) as e:
        claims.from_aggregates(**args)
    assert any(p.value == value and type(p.value) is type(value) for p in e.value.problems)
    assert repr(value) in str(e.value) or str(value) in str(e.value)


def test_from_aggregates_icc_needs_countries():
    with pytest.raises(cs.DataError, match="do not add up") as e:
        claims.from_aggregates(supported_improved=6, supported_total=8, unsupported_improved=6,
                               unsupported_total=9, icc=0.2)
    assert e.value.problems[0].rule == "icc_needs_countries"
