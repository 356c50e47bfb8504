"""Tests of cips_stats.factor.syntax (lavaan model syntax → parameter table) and factor.model.

Parameter-table structure is checked against lavaan 0.6-14: the equality structure
(rows sharing a lavaan label share one free index here) and the fixed rows (lavaan
se == 0) of the multi-group fixtures written by validation/r/cfa.R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats.factor.model import CFAModel, vech, vech_indices
from cips_stats.factor.syntax import build_partable, parse_syntax

REF = Path(__file__).parent / "reference"
HS = "visual  =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed   =~ x7 + x8 + x9"


def _row(pt, lhs, op, rhs, group=1):
    r = pt[(pt.lhs == lhs) & (pt.op == op) & (pt.rhs == rhs) & (pt.group == group)]
    assert len(r) == 1, (lhs, op, rhs, group)
    return r.iloc[0]


def test_parse_modifiers_comments_multiline():
    st, eq = parse_syntax("""
        # a comment
        f =~ x1 + 0.5*x2 + NA*x3 +   ! another comment
             lab*x4 + start(0.7)*x5
        x1 ~~ x2; x3 ~ 1
        x1 | t1 + t2
        lab == lab2
    """)
    got = [(s.lhs, s.op, s.rhs) for s in st]
    assert got == [("f", "=~", "x1"), ("f", "=~", "x2"), ("f", "=~", "x3"), ("f", "=~", "x4"),
                   ("f", "=~", "x5"), ("x1", "~~", "x2"), ("x3", "~1", ""), ("x1", "|", "t1"),
                   ("x1", "|", "t2")]
    assert st[1].mod.fixed == [0.5]
    assert st[2].mod.fixed == [None]
    assert st[3].mod.label == ["lab"]
    assert st[4].mod.start == [0.7]
    assert eq == [("lab", "lab2")]


def test_defaults_marker_and_std_lv():
    pt = build_partable(HS)
    assert _row(pt, "visual", "=~", "x1").free == 0 and _row(pt, "visual", "=~", "x1").ustart == 1.0
    assert _row(pt, "visual", "~~", "textual").free > 0           # factor covariances free
    assert _row(pt, "x5", "~~", "x5").free > 0                     # residual variances free
    assert int(pt.free.max()) == 21                                # lavaan: npar 21
    pt2 = build_partable(HS, std_lv=True)
    assert _row(pt2, "visual", "=~", "x1").free > 0
    assert _row(pt2, "visual", "~~", "visual").free == 0 and _row(pt2, "visual", "~~", "visual").ustart == 1
    assert int(pt2.free.max()) == 21


def test_fixed_free_labels_and_equalities():
    pt = build_partable("f =~ NA*x1 + a*x2 + a*x3 + 0.5*x4\nf ~~ 1*f")
    assert _row(pt, "f", "=~", "x1").free > 0
    assert _row(pt, "f", "=~", "x2").free == _row(pt, "f", "=~", "x3").free
    assert _row(pt, "f", "=~", "x4").free == 0 and _row(pt, "f", "=~", "x4").ustart == 0.5
    pt = build_partable("f =~ x1 + a*x2 + b*x3\na == b")
    assert _row(pt, "f", "=~", "x2").free == _row(pt, "f", "=~", "x3").free


def test_per_group_modifiers():
    pt = build_partable("f =~ x1 + c(a, b)*x2 + c(1, NA)*x3 + x4\nf ~~ 1*f", n_groups=2)
    assert _row(pt, "f", "=~", "x2", 1).label == "a" and _row(pt, "f", "=~", "x2", 2).label == "b"
    assert _row(pt, "f", "=~", "x3", 1).free == 0 and _row(pt, "f", "=~", "x3", 2).free > 0
    with pytest.raises(cs.ModelError, match="3 values but there are 2 groups"):
        build_partable("f =~ x1 + c(a, b, c)*x2 + x3", n_groups=2)


@pytest.mark.parametrize("equal, partial, name", [
    (("loadings",), (), "hs_group_loadings"),
    (("loadings", "intercepts"), ("x3~1", "visual=~x2"), "hs_group_scalar_mlr"),
])
def test_group_equal_structure_matches_lavaan(equal, partial, name):
    ref = pd.DataFrame(json.loads((REF / f"cfa_{name}.json").read_text())["parameters"])
    pt = build_partable(HS, n_groups=2, meanstructure=True, group_equal=equal, group_partial=partial)
    m = ref.merge(pt, on=["lhs", "op", "rhs", "group"], suffixes=("_lav", ""))
    assert len(m) == len(ref) == len(pt)
    # fixed in lavaan (se == 0) <=> fixed here
    assert ((m["se"] == 0) == (m["free"] == 0)).all()
    # rows sharing a lavaan label share one free parameter here
    for lab, grp in m[m["label_lav"] != ""].groupby("label_lav"):
        assert grp["free"].nunique() == 1, lab
    # and distinct free parameters otherwise: counts agree
    n_lav = m.loc[m["se"] > 0, "label_lav"].replace("", np.nan)
    n_free_lav = n_lav.isna().sum() + n_lav.dropna().nunique()
    assert int(pt["free"].max()) == n_free_lav


def test_multigroup_identification_rules():
    pt = build_partable(HS, n_groups=2, meanstructure=True, group_equal=("loadings", "intercepts"))
    assert _row(pt, "visual", "~1", "", 1).free == 0
    assert _row(pt, "visual", "~1", "", 2).free > 0            # latent means freed in group 2
    pt = build_partable(HS, n_groups=2, meanstructure=True, group_equal=("loadings", "intercepts", "means"))
    assert _row(pt, "visual", "~1", "", 2).free == 0           # equal to the fixed group-1 mean
    pt = build_partable(HS, n_groups=2, std_lv=True, group_equal=("loadings",))
    assert _row(pt, "visual", "~~", "visual", 1).free == 0
    assert _row(pt, "visual", "~~", "visual", 2).free > 0      # lv variances freed in group 2
    pt = build_partable("f =~ x1 + x2 + x3", ordered={"x1": 3, "x2": 3, "x3": 4}, n_groups=2,
                        meanstructure=True, group_equal=("loadings", "thresholds"))
    assert (pt.op == "|").sum() == 2 * (2 + 2 + 3)
    assert _row(pt, "x2", "~*~", "x2", 1).free == 0 and _row(pt, "x2", "~*~", "x2", 2).free > 0
    assert _row(pt, "x1", "|", "t1", 1).free == _row(pt, "x1", "|", "t1", 2).free
    assert _row(pt, "x1", "~~", "x1", 1).free == 0             # delta parameterisation


@pytest.mark.parametrize("syntax, kwargs, match", [
    ("f =~ x1 + x2 +", {}, "empty term"),
    ("f =~ x1 + x2\ng ~ f", {}, "Regressions"),
    ("f =~ x1 + x2 + zz", {"observed": ["x1", "x2"]}, r"not in the data: \['zz'\]"),
    ("f =~ NA*x1 + x2 + x3", {}, "no scale"),
    ("x1 ~~ x2", {}, "no latent variable"),
    ("f =~ x1 + 2x*x2", {}, "modifier"),
    ("f =~ x1 + x2\na == b", {}, "labels no parameter"),
    ("", {}, "non-empty"),
    ("f =~ x1 + x2", {"group_equal": ("slopes",)}, "unknown types"),
    ("f := a*b", {}, "no parameters"),
    ("f =~ x1 + x2 + x3\nf ~ z", {}, "latent variables only"),
    ("f =~ x1 + x2\nx1 < 2", {}, "inequality"),
])
def test_bad_syntax_raises_model_error(syntax, kwargs, match):
    with pytest.raises(cs.ModelError, match=match):
        build_partable(syntax, **kwargs)


def test_vech_order_is_lavaans():
    r, c = vech_indices(3)
    assert list(zip(r, c)) == [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)]
    a = np.arange(9.0).reshape(3, 3)
    a = a + a.T
    assert np.array_equal(vech(a), a[r, c])


@pytest.mark.parametrize("kwargs", [
    {},
    {"meanstructure": True, "n_groups": 2, "group_equal": ("loadings", "intercepts")},
    {"ordered": {"x1": 3, "x2": 4}, "meanstructure": True, "n_groups": 2,
     "group_equal": ("loadings", "thresholds")},
    {"std_lv": True, "meanstructure": True},
])
def test_jacobian_is_analytic_derivative(kwargs):
    pt = build_partable("f =~ x1 + x2 + x3 + x4\ng =~ x5 + x6 + x7\nx3 ~~ x5", **kwargs)
    m = CFAModel(pt)
    th = np.random.default_rng(3).uniform(0.3, 1.2, m.npar)

    def flat(t):
        return np.concatenate([np.concatenate([vech(i["sigma"]), i["mu"], i["tau"]]) for i in m.implied(t)])

    num = np.empty((len(flat(th)), m.npar))
    for k in range(m.npar):
        e = np.zeros(m.npar)
        e[k] = 1e-6
        num[:, k] = (flat(th + e) - flat(th - e)) / 2e-6
    an = np.vstack([np.vstack([j["sigma"], j["mu"], j["tau"]]) for j in m.jacobian(th)])
    np.testing.assert_allclose(an, num, atol=1e-7)


def test_implied_ordered_items_have_unit_diagonal():
    pt = build_partable("f =~ x1 + x2 + x3", ordered={"x1": 3, "x2": 3, "x3": 3})
    m = CFAModel(pt)
    th = m.start_values([np.eye(3) * 0.5 + 0.5], None, [np.array([-1.0, 1.0, -0.5, 0.5, 0.0, 1.0])])
    s = m.implied(th)[0]["sigma"]
    np.testing.assert_allclose(np.diag(s), 1.0)
    assert m.ordered == ["x1", "x2", "x3"]


def test_group_equal_given_as_a_string():
    a = build_partable(HS, n_groups=2, group_equal="loadings", group_partial="visual=~x2")
    b = build_partable(HS, n_groups=2, group_equal=("loadings",), group_partial=("visual=~x2",))
    assert a.equals(b)
    assert _row(a, "visual", "=~", "x2", 1).free != _row(a, "visual", "=~", "x2", 2).free
    assert _row(a, "visual", "=~", "x3", 1).free == _row(a, "visual", "=~", "x3", 2).free
