"""cs.change.cell_changes: per-cell change, bootstrap SE, z test, FDR across the table, bad input."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cips_stats as cs

COLUMNS = ["country", "group", "factor", "baseline", "estimate", "se", "ci_low", "ci_high", "z", "p_value",
           "p_adjusted", "significant", "n_1", "n_2", "suppressed", "flags"]


@pytest.fixture(scope="module")
def small():
    sim = cs.simulate(seed=5, n_countries=4, n_repeat=3, n_officials=70, n_private=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, n_boot=300, seed=2)
    return sim, ind


@pytest.fixture(scope="module")
def changes(small):
    return cs.change.cell_changes(small[1])


def _bh(p: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Benjamini-Hochberg (c = 1) / Benjamini-Yekutieli (c = sum 1/i) adjusted p-values, written out."""
    m = len(p)
    order = np.argsort(p)
    adj = p[order] * m * c / np.arange(1, m + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def test_columns_rows_and_values_match_the_indicator_difference(small, changes):
    sim, ind = small
    t = changes.table
    assert t.columns.tolist() == COLUMNS
    F = len(ind.factors)
    assert len(t) == 3 * 2 * F                      # 3 repeated countries x 2 groups x factors
    diff = ind.difference(along="iteration", minuend=2, subtrahend=1).table
    m = t.merge(diff, on=["country", "group", "factor"], suffixes=("", "_d"))
    assert len(m) == len(t)
    np.testing.assert_allclose(m["estimate"], m["estimate_d"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(m["se"], m["se_d"], rtol=1e-6)
    base = ind.table[ind.table["iteration"] == 1].merge(t, on=["country", "group", "factor"])
    np.testing.assert_allclose(base["estimate_x"], base["baseline"], atol=1e-12)
    np.testing.assert_array_equal(base["n"], base["n_1"])
    # the changes track the truth (estimation error of a few SEs at most)
    tr = t.merge(sim.truth["change"], on=["country", "group", "factor"])
    assert len(tr) == len(t)                    # every factor and the index have a true change
    assert (np.abs(tr["estimate"] - tr["change"]) / tr["se"]).max() < 5


def test_replicates_are_aligned_with_the_rows(small, changes):
    _, ind = small
    t = changes.table
    assert changes.replicates.shape == (len(t), ind.replicates.shape[2])
    assert changes.baseline_replicates.shape == changes.replicates.shape
    np.testing.assert_allclose(changes.replicates.std(axis=1, ddof=1), t["se"], rtol=1e-9)
    # row 7: rebuild from the indicators' own replicates
    row = t.iloc[7]
    cells = ind.cells.reset_index(drop=True)
    j = ind.factors.index(row["factor"])
    i1 = cells.index[(cells.country == row.country) & (cells.group == row.group) & (cells.iteration == 1)][0]
    i2 = cells.index[(cells.country == row.country) & (cells.group == row.group) & (cells.iteration == 2)][0]
    np.testing.assert_allclose(changes.replicates[7], ind.replicates[i2, j].astype(float)
                               - ind.replicates[i1, j].astype(float))
    np.testing.assert_allclose(changes.baseline_replicates[7], ind.replicates[i1, j].astype(float))
    # the change covariance of a cell pair: the replicate covariance of the differences, whose diagonal is
    # close to the sum of the two cells' variances (independent samples)
    c1 = np.cov(ind.replicates[i1].astype(float))
    c2 = np.cov(ind.replicates[i2].astype(float))
    k = 7 // len(ind.factors)
    np.testing.assert_allclose(changes.change_cov[k], np.cov(ind.replicates[i2].astype(float)
                                                             - ind.replicates[i1].astype(float)), rtol=1e-8)
    np.testing.assert_allclose(np.diag(changes.change_cov[k]), np.diag(c1 + c2), rtol=0.25)
    np.testing.assert_allclose(changes.baseline_cov[k], c1, rtol=1e-8)


def test_tests_and_fdr(small, changes):
    _, ind = small
    t = changes.table
    z = t["estimate"] / t["se"]
    np.testing.assert_allclose(t["z"], z)
    np.testing.assert_allclose(t["p_value"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-10)
    np.testing.assert_allclose(t["p_adjusted"], _bh(t["p_value"].to_numpy()), rtol=1e-10)
    assert (t["significant"] == (t["p_adjusted"] < 0.05)).all()
    by = cs.change.cell_changes(ind, fdr="by").table
    m = len(t)
    np.testing.assert_allclose(by["p_adjusted"], _bh(t["p_value"].to_numpy(), np.sum(1 / np.arange(1, m + 1))),
                               rtol=1e-10)
    assert (by["p_adjusted"] >= t["p_adjusted"] - 1e-15).all()
    none = cs.change.cell_changes(ind, fdr="none", ci=0.9, significance=0.1).table
    np.testing.assert_array_equal(none["p_adjusted"], none["p_value"])
    # without FDR, significant at 1 - ci is exactly "the Wald interval excludes 0"
    excl = (none["ci_low"] > 0) | (none["ci_high"] < 0)
    assert (excl == none["significant"]).all()
    half = stats.norm.ppf(0.95) * none["se"]
    np.testing.assert_allclose(none["ci_high"] - none["estimate"], half)
    assert changes.provenance.options["fdr"] == "bh"
    assert "replicates" not in changes.to_dict() and changes.to_dict()["replicates_shape"] == [m, 300]
    assert changes.to_frame() is t


def test_first_last_and_reversed_direction(small):
    _, ind = small
    fwd = cs.change.cell_changes(ind).table
    back = cs.change.cell_changes(ind, first=2, last=1).table
    np.testing.assert_allclose(back["estimate"], -fwd["estimate"])
    np.testing.assert_allclose(back["p_value"], fwd["p_value"])
    np.testing.assert_allclose(back["baseline"] + back["estimate"], fwd["baseline"])


def test_suppressed_cells_are_kept_with_their_flag():
    sim = cs.simulate(seed=6, n_countries=3, n_repeat=3, n_officials=90, n_private=25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, n_boot=200, seed=1, min_n=40)
    ch = cs.change.cell_changes(ind)
    t = ch.table
    sup_cells = ind.table.loc[ind.table["suppressed"], ["country", "group", "factor"]].drop_duplicates()
    assert len(sup_cells) > 0
    m = t.merge(sup_cells.assign(any_sup=True), how="left", on=["country", "group", "factor"])
    assert (m["any_sup"].fillna(False).astype(bool) == t["suppressed"]).all()
    assert t["suppressed"].any() and (~t["suppressed"]).any()
    assert t.loc[t["suppressed"], "estimate"].notna().all()
    assert t.loc[t["suppressed"], "flags"].str.contains("suppressed_input").all()
    assert any(f.code == "suppressed_cells" for f in ch.flags)


def test_demographic_domains_add_key_columns():
    sim = cs.simulate(seed=7, n_countries=2, n_repeat=2, n_officials=120, n_private=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)
        ind = cs.estimate.indicators(sim.data, by=("country", "iteration", "group", "gender"), n_boot=100, seed=1)
    t = cs.change.cell_changes(ind).table
    assert t.columns[:5].tolist() == ["country", "group", "factor", "gender", "baseline"]
    assert set(t["gender"]) == {"female", "male"}
    assert len(t) == len(t.drop_duplicates(["country", "group", "gender", "factor"]))


def test_unpaired_cells_are_left_out_with_a_flag():
    sim = cs.simulate(seed=8, n_countries=4, n_repeat=2, n_officials=60, n_private=40)
    with pytest.warns(cs.errors.SmallCellWarning):         # private-sector cells under 30
        ind = cs.estimate.indicators(sim.data, n_boot=100, seed=1)
    ch = cs.change.cell_changes(ind)
    assert set(ch.table["country"]) == set(sim.truth["countries"].query("repeated")["country"])
    (flag,) = [f for f in ch.flags if f.code == "unpaired_cells"]
    assert flag.where["n"] == 2 * 2                  # two one-off countries x two groups


def test_bad_input(small):
    _, ind = small
    with pytest.raises(cs.DataError, match="keep_replicates"):
        cs.change.cell_changes(dataclasses.replace(ind, replicates=None))
    one = cs.simulate(seed=9, n_countries=2, n_repeat=0, n_officials=70, n_private=50)
    ind1 = cs.estimate.indicators(one.data, n_boot=50, seed=1)
    with pytest.raises(cs.DataError, match="single iteration") as e:
        cs.change.cell_changes(ind1)
    assert e.value.problems[0].rule == "two_iterations"
    with pytest.raises(cs.DataError, match="along="):
        cs.change.cell_changes(ind, along="gender")
    with pytest.raises(cs.DataError, match="last="):
        cs.change.cell_changes(ind, first=1, last=1)
    with pytest.raises(cs.DataError, match="first="):
        cs.change.cell_changes(ind, first=3)
    for kw in ({"fdr": "holm"}, {"ci": 1.0}, {"significance": 0}, {"ci": True}):
        with pytest.raises(cs.DataError):
            cs.change.cell_changes(ind, **kw)
    with pytest.raises(cs.DataError, match="Indicators"):
        cs.change.cell_changes(ind.table)
    # a cell whose replicates are constant: zero SE, named in the error
    reps = ind.replicates.copy()
    cells = ind.cells.reset_index(drop=True)
    i1 = cells.index[(cells.country == cells.country.iloc[0]) & (cells.iteration == 1)][0]
    i2 = cells.index[(cells.country == cells.country.iloc[0]) & (cells.iteration == 2)
                     & (cells.group == cells.group.iloc[i1])][0]
    reps[i1, 2] = ind.estimates[i1, 2]
    reps[i2, 2] = ind.estimates[i2, 2]
    with pytest.raises(cs.DataError, match="zero or undefined") as e:
        cs.change.cell_changes(dataclasses.replace(ind, replicates=reps))
    assert len(e.value.problems) == 1
    assert e.value.problems[0].value["factor"] == ind.factors[2]


def test_coverage_of_the_true_change():
    """95% Wald intervals cover the true change of about 95% of 374 cells (one survey, loose band)."""
    sim = cs.simulate(seed=11, n_countries=25, n_repeat=17)
    ind = cs.estimate.indicators(sim.data, n_boot=400, seed=3)
    t = cs.change.cell_changes(ind).table.merge(sim.truth["change"], on=["country", "group", "factor"])
    assert len(t) == 374
    cover = ((t["ci_low"] <= t["change"]) & (t["change"] <= t["ci_high"])).mean()
    assert 0.90 <= cover <= 0.99
