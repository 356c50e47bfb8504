"""Tests of cips_stats.scores: respondent key-factor scores against direct per-respondent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.data import SurveyData
from cips_stats.errors import DataError
from cips_stats.scores import respondent_scores


@pytest.fixture(scope="module")
def sim():
    return cs.simulate(seed=5, n_countries=2, n_repeat=1, n_officials=60, n_private=50, item_nonresponse=0.15)


def _loop_scores(data, statistic, min_share, fav):
    """Reference: one respondent and factor at a time, straight from the definition."""
    inst = data.instrument
    P = inst.scale.points
    out = np.full((len(data.frame), len(inst.factor_ids)), np.nan)
    for i, row in enumerate(data.frame.itertuples(index=False)):
        row = row._asdict()
        for k, f in enumerate(inst.factor_ids):
            items = inst.factor_items(f, group=row["group"])
            vals = np.array([row[c] for c in items], dtype=float)
            ans = vals[~np.isnan(vals)]
            if len(items) == 0 or ans.size == 0 or ans.size < min_share * len(items):
                continue
            if statistic == "favourable":
                out[i, k] = 100.0 * np.isin(ans, fav).mean()
            else:
                top = 10.0 if statistic == "mean_0_10" else 100.0
                out[i, k] = top * (ans.mean() - 1) / (P - 1)
    return out


@pytest.mark.parametrize("statistic", ["mean_0_10", "mean_0_100", "favourable"])
@pytest.mark.parametrize("min_share", [0.0, 0.5, 0.8])
def test_scores_equal_direct_loop(sim, statistic, min_share):
    sc = respondent_scores(sim.data, statistic=statistic, min_share=min_share)
    ref = _loop_scores(sim.data, statistic, min_share, (4, 5))
    np.testing.assert_allclose(sc.values(), ref, rtol=1e-12, equal_nan=True)
    # every missing score of an asked factor is accounted for in the exclusions
    asked = sc.counts.set_index(["group", "factor"])["asked"]
    n_missing = sum(int(np.isnan(sc.scores.loc[(sim.data.frame["group"] == g).to_numpy(), f]).sum())
                    for (g, f), a in asked.items() if a)
    assert n_missing == len(sc.exclusions)
    assert (sc.counts["n_scored"] + sc.counts["n_excluded"] == sc.counts["n_respondents"]).all()


def test_min_share_exclusions_are_recorded(sim):
    strict = respondent_scores(sim.data, min_share=1.0)
    loose = respondent_scores(sim.data, min_share=0.0)
    assert len(strict.exclusions) > len(loose.exclusions)
    e = strict.exclusions
    assert set(e["reason"]) <= {"below_min_share", "no_item_answered"}
    assert (e["share"] < 1.0).all()
    assert any(f.code == "scores_below_min_share" for f in strict.flags)


def _tiny():
    inst = cs.Instrument.default()
    items = list(inst.item_ids)
    rows = []
    for rid, grp in [(1, "officials"), (2, "private"), (3, "officials")]:
        r = {"respondent_id": rid, "country": "A", "iteration": 1, "group": grp, "weight": 1.0}
        r.update({c: np.nan for c in items})
        rows.append(r)
    df = pd.DataFrame(rows)
    # officials leadership items LC1..LC5: answers 5, 4, 3, missing, missing -> mean 4, 60% answered
    df.loc[0, ["LC1", "LC2", "LC3"]] = [5.0, 4.0, 3.0]
    # private leadership items LC1, LC2, LC3, LC6: answers 1 and 2 (50% answered)
    df.loc[1, ["LC1", "LC6"]] = [1.0, 2.0]
    # respondent 3: only LC1 answered (20%)
    df.loc[2, "LC1"] = 5.0
    return SurveyData(frame=df, instrument=inst)


def test_hand_computed_values():
    d = _tiny()
    s10 = respondent_scores(d, factors=["leadership"])
    np.testing.assert_allclose(s10.scores["leadership"].to_numpy(), [7.5, 1.25, np.nan])
    s100 = respondent_scores(d, statistic="mean_0_100", factors=["leadership"])
    np.testing.assert_allclose(s100.scores["leadership"].to_numpy(), [75.0, 12.5, np.nan])
    fav = respondent_scores(d, statistic="favourable", factors=["leadership"], min_share=0.2)
    np.testing.assert_allclose(fav.scores["leadership"].to_numpy(), [200 / 3, 0.0, 100.0])
    top1 = respondent_scores(d, statistic="favourable", factors=["leadership"], favourable=1, min_share=0.2)
    np.testing.assert_allclose(top1.scores["leadership"].to_numpy(), [100 / 3, 0.0, 100.0])
    e = s10.exclusions
    assert e["respondent_id"].tolist() == [3] and e["n_answered"].tolist() == [1] and e["n_items"].tolist() == [5]


def test_score_column_does_not_clash_with_demographic(sim):
    sc = respondent_scores(sim.data)
    assert "leadership" in sc.respondents.columns          # the demographic (holds a leadership role)
    assert sc.scores["leadership"].dtype == np.float64     # the key factor score
    long = sc.to_frame()
    assert len(long) == int((~np.isnan(sc.values())).sum())


def test_bad_input():
    d = _tiny()
    with pytest.raises(ValueError, match="statistic="):
        respondent_scores(d, statistic="median")
    with pytest.raises(ValueError, match="min_share="):
        respondent_scores(d, min_share=1.5)
    with pytest.raises(DataError, match="favourable="):
        respondent_scores(d, favourable=(6,))
    with pytest.raises(cs.CipsError, match="nope"):
        respondent_scores(d, factors=["nope"])
    bad = d.frame.copy()
    bad.loc[0, "LC1"] = 8.0
    with pytest.raises(DataError, match="outside the scale") as ei:
        respondent_scores(SurveyData(frame=bad, instrument=d.instrument))
    assert ei.value.problems[0].column == "LC1" and ei.value.problems[0].row == 1   # 1-based records
    with pytest.raises(cs.DataError, match="SurveyData"):
        respondent_scores(bad)
