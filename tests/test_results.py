"""The shared result base (cips_stats/results.py): to_dict's internal and shape-only fields, split_pairs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.results import Result, split_pairs


@dataclass(frozen=True)
class _Boot(Result):
    estimate: float = 0.0
    replicates: np.ndarray | None = None
    _cache: object = None

    shape_only = ("replicates",)


def test_to_dict_gives_shape_only_fields_by_shape_and_leaves_out_internal_state():
    r = _Boot(estimate=1.5, replicates=np.zeros((3, 7)), _cache=object())
    d = r.to_dict()
    assert d["kind"] == "_Boot" and d["estimate"] == 1.5
    assert "replicates" not in d and d["replicates_shape"] == [3, 7]
    assert "_cache" not in d
    assert _Boot(replicates=None).to_dict()["replicates_shape"] is None
    json.dumps(d)                                    # serialisable as it is


def test_split_pairs_flattens_intervals_and_longer_tuples():
    row = split_pairs({"rmsea": 0.05, "rmsea_ci": (0.01, 0.09), "q": (1, 2, 3), "name": "x"})
    assert row == {"rmsea": 0.05, "rmsea_ci_low": 0.01, "rmsea_ci_high": 0.09, "q_0": 1, "q_1": 2, "q_2": 3,
                   "name": "x"}


def test_cfa_result_to_dict_and_fit_frame():
    gen = np.random.default_rng(3)
    common = gen.standard_normal((200, 1)) * [0.8, 0.7, 0.6, 0.5]
    df = pd.DataFrame(common + 0.6 * gen.standard_normal((200, 4)), columns=list("abcd"))
    res = cs.factor.cfa(df, model="f =~ a + b + c + d")
    d = res.to_dict()
    assert "_state" not in d and d["kind"] == "CFAResult"
    json.dumps(d)
    ff = res.fit_frame()
    assert ff.shape[0] == 1
    assert ff["rmsea_ci_low"].iloc[0] <= ff["rmsea"].iloc[0] <= ff["rmsea_ci_high"].iloc[0]


def test_one_scale_results_share_estimate_and_the_deprecated_ci_pair():
    gen = np.random.default_rng(4)
    f = gen.standard_normal((300, 1))
    items = pd.DataFrame(np.round(3 + f + gen.standard_normal((300, 4))), columns=list("abcd"))
    a = cs.reliability.cronbach_alpha(items)
    o = cs.reliability.omega(items, ci_method="wald")
    assert a.estimate == a.alpha and o.estimate == o.omega
    for r in (a, o):
        with pytest.warns(DeprecationWarning, match=type(r).__name__):
            assert r.ci == (r.ci_low, r.ci_high)
        assert "main" not in r.to_dict()             # a class setting, not a field
