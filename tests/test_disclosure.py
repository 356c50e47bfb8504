"""Tests of cips_stats.disclosure: suppression at its boundaries, the gate, keyed anonymisation, the audit."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import cips_stats as cs
from cips_stats.disclosure import Gate, REDACTED, anonymise, audit, deanonymise, protect, suppress
from cips_stats.errors import CipsError, DataError, Flag


def _table():
    return pd.DataFrame({
        "country": ["A", "A", "B", "C", "D"],
        "factor": ["x", "y", "x", "x", "x"],
        "estimate": [6.0, 7.0, 5.5, 4.0, 3.0],
        "se": [0.1, 0.2, 0.4, 0.9, 0.5],
        "ci_low": [5.8, 6.6, 4.7, 2.2, 2.0],
        "ci_high": [6.2, 7.4, 6.3, 5.8, 4.0],
        "n": [120, 120, 9, 25, np.nan],
        "suppressed": [False, False, True, True, True],
        "flags": ["", "", "small_n", "small_n;high_cv", "no_data"],
    })


# ------------------------------------------------------------------------------------------ suppress
def test_suppress_blanks_statistics_and_keeps_rows_and_reasons():
    t = _table()
    out = suppress(t)
    assert len(out) == len(t) and out["country"].tolist() == t["country"].tolist()
    assert out.loc[:1, ["estimate", "se", "ci_low", "ci_high"]].notna().all().all()
    assert out.loc[2:, ["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    assert out["suppression_reason"].tolist() == [
        "", "", "disclosure:n<10;precision:small_n", "precision:small_n;high_cv",
        "disclosure:n_unknown;precision:no_data"]
    pd.testing.assert_frame_equal(t, _table())          # input untouched


@pytest.mark.parametrize("min_n", [5, 10, 17])
def test_boundary_n_equal_min_n_is_published_and_one_less_is_not(min_n):
    t = pd.DataFrame({"estimate": [1.0, 2.0, 3.0], "n": [min_n, min_n - 1, min_n + 1]})
    out = suppress(t, min_n=min_n, precision=False)
    assert out["suppressed"].tolist() == [False, True, False]
    assert out["estimate"].isna().tolist() == [False, True, False]
    cells = pd.DataFrame({"country": ["A", "B", "C"], "iteration": 1, "group": "g", "n": [min_n, min_n - 1, 500]})
    pub = Gate(min_n=min_n, cells=cells, margins=[]).table(cells)
    assert pub["n"].isna().tolist() == [False, True, False]


def test_unknown_n_is_suppressed_even_with_precision_rules_off():
    t = pd.DataFrame({"estimate": [1.0, 2.0], "n": [50, None], "suppressed": [False, False]})
    out = suppress(t, precision=False)
    assert out["suppressed"].tolist() == [False, True]
    assert np.isnan(out["estimate"].iloc[1])
    assert out["suppression_reason"].iloc[1] == "disclosure:n_unknown"
    pub = Gate().table(t, precision=False)
    assert pub["suppressed"].tolist() == [False, True] and pd.isna(pub["estimate"].iloc[1])


def test_min_n_has_a_floor_of_five():
    for bad in (4, 0, -1, 2.5, True, None):
        with pytest.raises(CipsError, match="at least 5"):
            suppress(_table(), min_n=bad)
        with pytest.raises(CipsError, match="at least 5"):
            Gate(min_n=bad)
    with pytest.raises(CipsError, match="min_cell"):
        cs.report.build(cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=20, n_private=20).data,
                        "unused", min_cell=4)


def test_suppress_bad_input():
    with pytest.raises(DataError, match="count column"):
        suppress(pd.DataFrame({"estimate": [1.0]}))
    with pytest.raises(DataError, match="lacks"):
        suppress(_table(), columns=["nope"])
    with pytest.raises(CipsError, match="DataFrame"):
        suppress([1, 2])


def test_suppress_indicator_table_end_to_end():
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=50, n_private=20)
    with pytest.warns(cs.errors.SmallCellWarning, match=r"fewer than 15 scored respondents are suppressed"):
        res = cs.estimate.indicators(sim.data, n_boot=50, seed=1, min_n=15)
    out = suppress(res.table, min_n=25)
    assert (out["suppressed"] == (res.table["suppressed"] | (res.table["n"] < 25))).all()
    assert out.loc[out["suppressed"], ["estimate", "se", "ci_low", "ci_high", "cv"]].isna().all().all()


# ------------------------------------------------------------------------------------------ audit, protect
def test_audit_finds_the_subtraction_and_protect_closes_it():
    counts = np.array([3, 40, 50, 60])
    total = np.ones((1, 4), dtype=bool)
    lo, hi = audit(counts, total, np.array([True, False, False, False]))
    assert lo[0] == hi[0] == 3                                  # total minus published cells
    sup, prim, pub = protect(counts, total, min_n=10)
    assert prim.tolist() == [True, False, False, False] and sup.sum() == 2 and sup[1]   # smallest complement
    lo, hi = audit(counts, total, sup, primary=prim, upper=9)
    assert hi[0] - lo[0] >= 5


def test_two_small_cells_in_one_total_are_not_enough_when_they_pin_each_other():
    # 1 + 1 = 2 is known from the total: each is exactly 1 unless a third cell joins
    counts = np.array([1, 1, 40, 50])
    sup, _, _ = protect(counts, np.ones((1, 4), dtype=bool), min_n=10)
    assert sup.sum() == 3
    lo, hi = audit(counts, np.ones((1, 4), dtype=bool), sup, primary=counts < 10, upper=9)
    assert (hi[:2] - lo[:2] >= 5).all()


def test_a_total_with_nothing_left_to_hide_behind_is_withdrawn():
    counts = np.array([1, 2])
    sup, prim, pub = protect(counts, np.ones((1, 2), dtype=bool), min_n=10)
    assert sup.all() and not pub[0]                             # 1 + 2 = 3 would pin both within [1, 2]
    sup, prim, pub = protect(np.array([3, 4]), np.ones((1, 2), dtype=bool), min_n=10)
    assert sup.all() and pub[0]                                 # 3 + 4 = 7: each within [1, 6], wide enough


def _independent_interval(counts, margins, sup, i):
    """Feasible range of cell i from the published cells and totals (every cell >= 1), by plain linprog."""
    unk = np.flatnonzero(sup)
    A = margins[:, unk].astype(float)
    b = margins.astype(float) @ np.where(sup, 0.0, counts)
    b = margins.astype(float) @ counts - b
    keep = A.any(axis=1)
    c = np.zeros(unk.size)
    c[np.flatnonzero(unk == i)[0]] = 1.0
    kw = dict(A_eq=A[keep], b_eq=b[keep]) if keep.any() else {}
    lo = linprog(c, bounds=[(1, None)] * unk.size, method="highs", **kw)
    hi = linprog(-c, bounds=[(1, None)] * unk.size, method="highs", **kw)
    return lo.fun, (-hi.fun if hi.status == 0 else np.inf)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(countries=st.integers(2, 6), iterations=st.integers(1, 2), groups=st.integers(1, 2),
       min_n=st.integers(5, 15), data=st.data())
def test_property_no_published_number_gives_a_suppressed_count_exactly(countries, iterations, groups, min_n, data):
    k = countries * iterations * groups
    counts = data.draw(st.lists(st.one_of(st.integers(1, 12), st.integers(10, 200)), min_size=k, max_size=k))
    cells = pd.DataFrame([(f"K{c}", t + 1, f"g{g}") for c in range(countries) for t in range(iterations)
                          for g in range(groups)], columns=["country", "iteration", "group"])
    cells["n"] = counts
    rep = data.draw(st.lists(st.sampled_from(cells["country"].unique().tolist()), max_size=countries, unique=True))
    gate = Gate.from_cells(cells, min_n=min_n, subsets={"repeated": rep})
    pub = gate.table(cells)
    sup = pub["n"].isna().to_numpy()
    small = cells["n"].to_numpy() < min_n
    assert sup[small].all()                                      # every small cell hidden
    margins = np.array([m for (_, m), ok in zip(gate.margins, gate._margin_published) if ok], dtype=bool)
    margins = margins.reshape(-1, k)
    for i in np.flatnonzero(small):
        lo, hi = _independent_interval(np.asarray(counts, float), margins, sup, i)
        assert hi - lo >= 1, (i, lo, hi)                        # never derived exactly
    # the gate's own audit (which also assumes a reader knows small cells are below min_n) holds the interval
    a = gate.audit()
    prim = a[a["primary"]]
    assert ((prim["high"] - prim["low"]) >= np.ceil(min_n / 2) - 1e-9).all()


# ------------------------------------------------------------------------------------------ shares
def test_shares_of_small_categories_and_their_complement_are_hidden():
    t = pd.DataFrame({"country": "A", "group": "g", "variable": "gender", "category": ["female", "male"],
                      "share": [2 / 46, 44 / 46], "count": [2, 44], "n": 46})
    pub = Gate().shares(t, within=["country", "group", "variable"], share_columns={"share": "count"})
    assert pub["share"].isna().all()                            # 1 - 95.7% would give the 2 back
    assert "count" not in pub.columns
    t3 = pd.DataFrame({"country": "A", "group": "g", "variable": "exp", "category": ["a", "b", "c", "d"],
                       "share": [3 / 100, 4 / 100, 40 / 100, 53 / 100], "count": [3, 4, 40, 53], "n": 100})
    pub3 = Gate().shares(t3, within=["country", "group", "variable"], share_columns={"share": "count"})
    # 3 and 4 are hidden, together 7 < 10: the next smallest joins them
    assert pub3["share"].isna().tolist() == [True, True, True, False]
    ok = pd.DataFrame({"country": "A", "group": "g", "variable": "v", "category": ["a", "b"],
                       "share": [0.5, 0.5], "count": [10, 10], "n": 20})
    assert Gate().shares(ok, within=["country", "group", "variable"],
                         share_columns={"share": "count"})["share"].notna().all()


# ------------------------------------------------------------------------------------------ flags, text
def test_flags_about_suppressed_cells_are_redacted_and_others_anonymised():
    cells = pd.DataFrame({"country": ["Kenya", "Peru", "Chad"], "iteration": 1, "group": "private",
                          "n": [3, 400, 500]})
    gate = Gate.from_cells(cells, anonymise=True)
    secret = Flag("composition_drift", "{'country': 'Kenya'}: share of 'male' moved from 0% to 76%", "warning",
                  {"country": "Kenya", "group": "private", "iteration_from": 1, "iteration_to": 2})
    red = gate.flag(secret)
    assert red.message == REDACTED and "Kenya" not in str(red.to_dict())
    fine = gate.flag(Flag("x", "Chad is fine", "info", {"country": "Chad", "cells": [1, 2, 3]}))
    assert fine.message == f"{gate.mapping['Chad']} is fine" and fine.where["cells"] == 3
    doc = gate.obj({"flags": [secret.to_dict()], "Chad": ["Chad"]})
    assert doc["flags"][0]["message"] == REDACTED and list(doc) == ["flags", gate.mapping["Chad"]]
    assert gate.message("Warning about Kenya: n=3") == REDACTED


# ------------------------------------------------------------------------------------------ anonymise
def test_anonymise_with_a_key_is_stable_and_reversible():
    t = pd.DataFrame({"country": [f"K{i:02d}" for i in range(12)] * 2, "v": np.arange(24)})
    a1, m1 = anonymise(t, key="a" * 32)
    a2, m2 = anonymise(t.iloc[::-1], key="a" * 32)              # row order does not matter
    assert m1 == m2
    _, m3 = anonymise(t, key="b" * 32)
    assert m3 != m1
    assert sorted(m1.values()) == sorted(f"Country {i:02d}" for i in range(1, 13))
    # rows come out ordered by code
    nums = a1["country"].str.extract(r"(\d+)$", expand=False).astype(int)
    assert (np.diff(nums) >= 0).all()
    back = deanonymise(a1, m1).sort_values("v").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, t)
    a4, m4 = anonymise(pd.DataFrame({"country": ["K03", "NEW"]}), key="a" * 32, mapping=m1)
    assert m4["K03"] == m1["K03"] and m4["NEW"] == "Country 13"


def test_anonymise_bad_input():
    t = pd.DataFrame({"country": ["A", None]})
    with pytest.raises(DataError, match="no 'country' label"):
        anonymise(t, key="k" * 32)
    with pytest.raises(CipsError, match="too short"):
        anonymise(t.dropna(), key="3")
    with pytest.raises(CipsError, match="key="):
        anonymise(t.dropna(), key=3)
    with pytest.raises(DataError, match="no column"):
        anonymise(t, column="region", key="k" * 32)
    with pytest.raises(DataError, match="not in the mapping"):
        deanonymise(pd.DataFrame({"country": ["Country 9"]}), {"A": "Country 1"})


def test_key_files(tmp_path):
    from cips_stats.disclosure import read_key, write_key

    k = write_key(tmp_path / "k")
    assert read_key(tmp_path / "k") == k and len(k) == 64
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0
    with pytest.raises(CipsError, match="exists"):
        write_key(tmp_path / "k")
    with pytest.raises(CipsError, match="Cannot read"):
        read_key(tmp_path / "missing")


# ------------------------------------------------------------------------------------------ HTML
class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_markup_in_every_user_string_is_escaped(tmp_path):
    sim = cs.simulate(seed=4, n_countries=3, n_repeat=2, n_officials=30, n_private=25)
    payloads = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "\"><svg onload=alert(3)>"]
    raw = sim.raw.copy()
    names = dict(zip(sorted(raw["country"].unique()), payloads))
    raw["country"] = raw["country"].map(names)
    data = cs.load(raw, instrument=sim.instrument, strict=False)
    cs.report.build(data, tmp_path / "r", sections=("data", "indicators", "drift"), n_boot=20,
                    title="<script>alert(4)</script>")
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    for p in [*payloads, "<script>alert(4)</script>"]:
        assert p not in html
    p = _Scripts()
    p.feed(html)
    assert not [t for t, a in p.tags if t in ("img", "svg") and any(k.startswith("on") for k in a)]
    assert not [t for t, a in p.tags if t == "script" and "alert" in str(a)]
    assert "alert" not in "".join(re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S))


def test_withdrawn_totals_and_aggregate_tables():
    cells = pd.DataFrame({"country": ["A", "B", "C", "D"], "iteration": 1, "group": ["g", "g", "h", "h"],
                          "n": [1, 2, 300, 400]})
    gate = Gate.from_cells(cells)
    # the g cells (1 + 2) can hide only behind each other: their group total is withdrawn, not published
    assert "group=g" in gate.withdrawn and not gate.total_published("group=g")
    assert gate.total_published("group=h")
    lo, hi = gate.audit()[["low", "high"]].to_numpy().T
    assert (hi[:2] - lo[:2] >= 5).all()
    # a table of aggregates over countries (e.g. CFA fit per group) is not blanked by a hidden cell
    fit = pd.DataFrame({"group": ["g", "h"], "n": [300, 700], "cfi": [0.95, 0.97]})
    assert gate.table(fit, columns=["cfi"])["cfi"].notna().all()


def test_simulate_small_cells_plants_tiny_cells_and_leaves_the_rest():
    kw = dict(seed=3, n_countries=4, n_repeat=3, n_officials=40, n_private=30)
    plain, small = cs.simulate(**kw), cs.simulate(**kw, small_cells=True)
    planted = small.truth["small_cells"]
    assert planted["n"].tolist() == [3, 7, 2] and "small_cells" not in plain.truth
    n = small.raw.groupby(["country", "iteration", "group"]).size()
    for r in planted[planted["kind"] == "cell"].itertuples():
        assert n[(r.country, r.iteration, r.group)] == r.n
    cat = planted[planted["kind"] == "category"].iloc[0]
    cell = small.raw[(small.raw["country"] == cat["country"]) & (small.raw["iteration"] == cat["iteration"])
                     & (small.raw["group"] == cat["group"])]
    assert (cell[cat["variable"]] == cat["category"]).sum() == 2 and len(cell) > 20
    pd.testing.assert_frame_equal(plain.truth["indicators"], small.truth["indicators"])
    keys = planted[["country", "iteration", "group"]].apply(tuple, axis=1).tolist()
    untouched = ~plain.raw[["country", "iteration", "group"]].apply(tuple, axis=1).isin(keys)
    a = plain.raw[untouched].drop(columns="respondent_id").reset_index(drop=True)
    b = small.raw[~small.raw[["country", "iteration", "group"]].apply(tuple, axis=1).isin(keys)]
    pd.testing.assert_frame_equal(a, b.drop(columns="respondent_id").reset_index(drop=True))
    with pytest.raises(CipsError):
        cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=20, n_private=20, small_cells=True)
