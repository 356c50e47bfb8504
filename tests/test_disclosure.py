"""Tests of cips_stats.disclosure: suppression never loses a row or a reason; stable seeded anonymisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.disclosure import anonymise, deanonymise, suppress
from cips_stats.errors import DataError


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


def test_suppress_blanks_statistics_and_keeps_rows_and_reasons():
    t = _table()
    out = suppress(t)
    assert len(out) == len(t) and out["country"].tolist() == t["country"].tolist()
    assert out.loc[:1, ["estimate", "se", "ci_low", "ci_high"]].notna().all().all()
    assert out.loc[2:, ["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    assert out["suppression_reason"].tolist() == [
        "", "", "disclosure:n<10;precision:small_n", "precision:small_n;high_cv",
        "disclosure:n_unknown;precision:no_data"]
    assert out["suppressed"].tolist() == [False, False, True, True, True]
    pd.testing.assert_frame_equal(t, _table())          # input untouched


def test_disclosure_minimum_is_separate_from_precision():
    t = _table()
    out = suppress(t, min_n=30, precision=False)
    assert out["suppression_reason"].tolist() == ["", "", "disclosure:n<30", "disclosure:n<30",
                                                  "disclosure:n_unknown"]
    out0 = suppress(t.drop(columns=["suppressed", "flags"]), min_n=0)
    assert out0["suppression_reason"].tolist() == ["", "", "", "", "disclosure:n_unknown"]
    nb = suppress(t, blank_n=True)
    assert nb["n"].isna().tolist() == [False, False, True, False, True]


def test_suppress_indicator_table_end_to_end():
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=50, n_private=20)
    res = cs.estimate.indicators(sim.data, n_boot=50, seed=1, min_n=15)
    out = suppress(res.table, min_n=25)
    assert (out["suppressed"] == (res.table["suppressed"] | (res.table["n"] < 25))).all()
    assert out.loc[out["suppressed"], ["estimate", "se", "ci_low", "ci_high", "cv"]].isna().all().all()
    assert (out.loc[out["suppressed"], "suppression_reason"] != "").all()
    assert (out.loc[~out["suppressed"], "estimate"] == res.table.loc[~out["suppressed"], "estimate"]).all()


def test_suppress_bad_input():
    with pytest.raises(DataError, match="count column"):
        suppress(pd.DataFrame({"estimate": [1.0]}))
    with pytest.raises(DataError, match="lacks"):
        suppress(_table(), columns=["nope"])
    with pytest.raises(ValueError, match="min_n="):
        suppress(_table(), min_n=-1)


def test_anonymise_is_seeded_stable_and_reversible():
    t = pd.DataFrame({"country": [f"K{i:02d}" for i in range(12)] * 2, "v": np.arange(24)})
    a1, m1 = anonymise(t, seed=7)
    a2, m2 = anonymise(t.iloc[::-1], seed=7)          # row order does not matter
    assert m1 == m2
    a3, m3 = anonymise(t, seed=8)
    assert m3 != m1
    assert sorted(m1.values()) == [f"Country {i:02d}" for i in range(1, 13)]
    # the numbering is not the alphabetical order of the names (for this seed)
    assert [m1[k] for k in sorted(m1)] != sorted(m1.values())
    pd.testing.assert_frame_equal(deanonymise(a1, m1), t)
    assert set(a1["country"]) == set(m1.values())
    # reuse a mapping: old labels keep their numbers, new ones get the next
    t2 = pd.DataFrame({"country": ["K03", "NEW"], "v": [1, 2]})
    a4, m4 = anonymise(t2, seed=7, mapping=m1)
    assert m4["K03"] == m1["K03"] and m4["NEW"] == "Country 13"
    custom, mc = anonymise(t, seed=7, prefix="Administration ")
    assert all(v.startswith("Administration ") for v in mc.values())


def test_anonymise_bad_input():
    t = pd.DataFrame({"country": ["A", None]})
    with pytest.raises(DataError, match="no 'country' label"):
        anonymise(t, seed=1)
    with pytest.raises(ValueError, match="seed="):
        anonymise(t.dropna(), seed=None)
    with pytest.raises(DataError, match="no column"):
        anonymise(t, column="region", seed=1)
    with pytest.raises(DataError, match="not in the mapping"):
        deanonymise(pd.DataFrame({"country": ["Country 9"]}), {"A": "Country 1"})
