"""Tests of cips_stats.reliability.

Reference values: tests/reference/reliability_bfi.json, written by validation/r/reliability.R
(R 4.2.2, psych 2.2.9, lavaan 0.6-14, semTools 0.5-6, survey 4.1.1) on psych::bfi with the
reverse-keyed items A1 C4 C5 E1 E2 O2 O5 recoded as 7 - x. The data are in
tests/reference/reliability_bfi.csv. Tolerances (also recorded in the fixture):

* closed-form alpha quantities (raw/std alpha, mean r, Duhachek ase, Feldt/Duhachek CIs,
  item table, weighted alpha): 1e-8 absolute;
* omega from our ML fit vs lavaan + compRelSEM: 1e-4 (both are iterative optimisers;
  we observe about 1e-6);
* polychoric-based (ordinal alpha/omega) vs lavaan's polychorics: 1e-6; vs psych's
  polychoric (global thresholds, its own optimiser): 2e-3;
* psych's check.keys (alpha on the raw codes, items reversed as max + min - x): 1e-8;
* Green & Yang categorical omega vs semTools::compRelSEM(ord.scale = TRUE) on a WLSMV fit: 1e-4.

The numeric-agreement tests ignore the package's statistical warnings (low alpha in a
simulated cell is expected there); the tests near the end check that they are emitted.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs
from cips_stats import reliability as rel
from cips_stats.reliability._alpha import _alpha_kernel, _feldt, _pivots_prove_pd
from cips_stats.reliability._omega import _fit_one_factor, _omega_from_fit

pytestmark = pytest.mark.filterwarnings("ignore::cips_stats.errors.CipsWarning")

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "reliability_bfi.json").read_text())
TOL = REF["meta"]["tolerance"]
REVERSE = ["A1", "C4", "C5", "E1", "E2", "O2", "O5"]
SCALES = [k for k in REF["scales"] if k != "two_items"]


@pytest.fixture(scope="module")
def bfi() -> pd.DataFrame:
    df = pd.read_csv(REF_DIR / "reliability_bfi.csv")
    for v in REVERSE:
        df[v] = 7 - df[v]
    return df


def _ci(res):
    return (res.ci_low, res.ci_high)


def _one_factor(rng, n, loadings, noise=None, cats=None):
    loadings = np.asarray(loadings, float)
    f = rng.normal(size=(n, 1))
    e = rng.normal(size=(n, loadings.size)) * (np.sqrt(1 - loadings**2) if noise is None else noise)
    y = f * loadings + e
    if cats is not None:
        y = np.digitize(y, cats) + 1.0
    return y


# ----------------------------------------------------------------------------- psych::alpha
@pytest.mark.parametrize("missing", ["pairwise", "listwise"])
@pytest.mark.parametrize("scale", SCALES)
def test_alpha_matches_psych(bfi, scale, missing):
    ref = REF["scales"][scale][missing]
    x = bfi[REF["scales"][scale]["items"]]
    tol = TOL["alpha_closed_form"]
    res = rel.cronbach_alpha(x, missing=missing)
    assert res.alpha == pytest.approx(ref["raw_alpha"], abs=tol)
    assert res.std_alpha == pytest.approx(ref["std_alpha"], abs=tol)
    assert res.mean_r == pytest.approx(ref["average_r"], abs=tol)
    assert res.se == pytest.approx(ref["ase"], abs=tol)
    assert res.total_mean == pytest.approx(ref["total_mean"], abs=tol)
    assert res.total_sd == pytest.approx(ref["total_sd"], abs=tol)
    assert res.n == ref["nsub"]
    np.testing.assert_allclose(_ci(res), ref["feldt"], atol=tol, rtol=0)
    dres = rel.cronbach_alpha(x, missing=missing, ci_method="duhachek")
    np.testing.assert_allclose(_ci(dres), ref["duhachek"], atol=tol, rtol=0)
    it = ref["items"]
    assert res.items["item"].tolist() == [s.rstrip("-") for s in it["item"]]
    for ours, theirs in [("n", "n"), ("raw_r", "raw_r"), ("r_drop", "r_drop"), ("mean", "mean"),
                         ("sd", "sd"), ("alpha_if_dropped", "alpha_if_dropped"),
                         ("std_alpha_if_dropped", "std_alpha_if_dropped")]:
        np.testing.assert_allclose(res.items[ours].to_numpy(float), it[theirs], atol=tol, rtol=0,
                                   err_msg=f"{scale} {missing} {ours}")


def test_two_item_alpha_matches_psych(bfi):
    ref = REF["scales"]["two_items"]
    res = rel.cronbach_alpha(bfi[ref["items"]])
    assert res.alpha == pytest.approx(ref["raw_alpha"], abs=TOL["alpha_closed_form"])
    assert res.std_alpha == pytest.approx(ref["std_alpha"], abs=TOL["alpha_closed_form"])
    np.testing.assert_allclose(_ci(res), ref["feldt"], atol=TOL["alpha_closed_form"], rtol=0)
    assert res.items["alpha_if_dropped"].isna().all()
    assert "two_items" in [f.code for f in res.flags]


@pytest.mark.parametrize("scale", SCALES)
def test_weighted_alpha_matches_svycralpha(bfi, scale):
    x = bfi[REF["scales"][scale]["items"]]
    res = rel.cronbach_alpha(x, missing="listwise", weight=bfi["w"].to_numpy())
    assert res.alpha == pytest.approx(REF["scales"][scale]["weighted_listwise_alpha"], abs=TOL["weighted_alpha"])
    assert res.weighted and res.n_eff < res.n


def test_weights_by_column_name_equal_array(bfi):
    cols = REF["scales"]["agree"]["items"]
    a = rel.cronbach_alpha(bfi[cols + ["w"]], weight="w")
    b = rel.cronbach_alpha(bfi[cols], weight=bfi["w"].to_numpy())
    assert a.alpha == b.alpha and _ci(a) == _ci(b)
    assert a.items["item"].tolist() == cols


# ----------------------------------------------------------------------------- omega vs semTools
@pytest.mark.parametrize("missing", ["pairwise", "listwise"])
@pytest.mark.parametrize("scale", SCALES)
def test_omega_matches_comprelsem(bfi, scale, missing):
    ref = REF["scales"][scale][f"omega_{missing}"]
    x = bfi[REF["scales"][scale]["items"]]
    m = rel.omega(x, missing=missing, denominator="model", ci_method="none")
    o = rel.omega(x, missing=missing, denominator="observed", ci_method="none")
    assert m.converged and o.converged
    assert m.omega == pytest.approx(ref["omega_model"], abs=TOL["omega"])
    assert o.omega == pytest.approx(ref["omega_observed"], abs=TOL["omega"])
    assert m.omega_observed == o.omega
    if missing == "listwise":
        # lavaan's ML uses the N-divisor covariance; ours the (N-1) one: loadings scale by sqrt((N-1)/N)
        n = m.n
        np.testing.assert_allclose(m.loadings["loading"] * np.sqrt((n - 1) / n), ref["loadings"], atol=TOL["omega"])
        np.testing.assert_allclose(m.loadings["residual_variance"] * (n - 1) / n, ref["residuals"], atol=TOL["omega"])


@pytest.mark.parametrize("scale", SCALES)
def test_omega_wald_se_matches_lavaan_delta_method(bfi, scale):
    ref = REF["scales"][scale]["omega_wald_listwise"]
    res = rel.omega(bfi[REF["scales"][scale]["items"]], missing="listwise", ci_method="wald")
    assert res.n == ref["n"]
    assert res.omega == pytest.approx(ref["omega"], abs=TOL["omega"])
    assert res.se == pytest.approx(ref["se"], rel=1e-5)
    z = 1.959963984540054
    assert _ci(res) == pytest.approx((res.omega - z * res.se, res.omega + z * res.se), abs=1e-12)


def test_omega_wald_requires_model_denominator(bfi):
    with pytest.raises(cs.CipsError, match="denominator='model'"):
        rel.omega(bfi[["A1", "A2", "A3"]], denominator="observed", ci_method="wald")


# ----------------------------------------------------------------------------- ordinal
@pytest.mark.parametrize("scale", SCALES)
def test_ordinal_alpha_and_omega_match_lavaan_polychorics(bfi, scale):
    ref = REF["scales"][scale]["ordinal"]
    x = bfi[REF["scales"][scale]["items"]]
    a = rel.cronbach_alpha(x, ordinal=True)
    assert a.ordinal_alpha == pytest.approx(ref["lavaan_alpha"], abs=1e-6)
    assert a.ordinal_alpha == pytest.approx(ref["psych_alpha"], abs=TOL["polychoric_based"])
    om = rel.omega(x, ordinal=True, ci_method="none")
    oo = rel.omega(x, ordinal=True, ci_method="none", denominator="observed")
    assert om.omega == pytest.approx(ref["lavaan_omega_model"], abs=1e-6)
    assert oo.omega == pytest.approx(ref["lavaan_omega_observed"], abs=1e-6)
    assert om.ordinal


def test_ordinal_omega_bootstrap_is_refused(bfi):
    with pytest.raises(cs.CipsError, match="ordinal omega"):
        rel.omega(bfi[["A1", "A2", "A3"]], ordinal=True, ci_method="bootstrap")


# ----------------------------------------------------------------------------- bootstrap, identities
def test_bootstrap_ci_is_seeded_and_brackets_alpha(bfi):
    x = bfi[REF["scales"]["conscientious"]["items"]]
    a = rel.cronbach_alpha(x, ci_method="bootstrap", n_boot=300, seed=11)
    b = rel.cronbach_alpha(x, ci_method="bootstrap", n_boot=300, seed=11)
    c = rel.cronbach_alpha(x, ci_method="bootstrap", n_boot=300, seed=12)
    assert _ci(a) == _ci(b)
    assert _ci(a) != _ci(c)
    assert _ci(a)[0] < a.alpha < _ci(a)[1]
    feldt = _ci(rel.cronbach_alpha(x))
    assert abs((_ci(a)[1] - _ci(a)[0]) - (feldt[1] - feldt[0])) < 0.02   # same order of width
    assert a.provenance.seed == 11


def test_omega_bootstrap_is_seeded(bfi):
    x = bfi[REF["scales"]["neuroticism"]["items"]]
    a = rel.omega(x, n_boot=200, seed=5)
    b = rel.omega(x, n_boot=200, seed=5)
    assert _ci(a) == _ci(b) and _ci(a)[0] < a.omega < _ci(a)[1]
    wald = rel.omega(x, ci_method="wald")
    assert a.se == pytest.approx(wald.se, rel=0.35)


def test_seed_none_is_drawn_recorded_and_reproduces(bfi):
    """issue 12: omega's bootstrap CI changed on every call; now the drawn seed is in the provenance."""
    x = bfi[REF["scales"]["agree"]["items"]]
    a = rel.omega(x, n_boot=150)
    b = rel.omega(x, n_boot=150)
    assert isinstance(a.provenance.seed, int) and a.provenance.seed != b.provenance.seed
    again = rel.omega(x, n_boot=150, seed=a.provenance.seed)
    assert _ci(again) == _ci(a) and again.se == a.se
    c = rel.cronbach_alpha(x, ci_method="bootstrap", n_boot=150)
    assert _ci(rel.cronbach_alpha(x, ci_method="bootstrap", n_boot=150, seed=c.provenance.seed)) == _ci(c)
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(cs.CipsError, match="seed"):
            rel.omega(x, n_boot=150, seed=bad)


def test_unit_and_frequency_weights():
    rng = np.random.default_rng(3)
    x = pd.DataFrame(_one_factor(rng, 150, [0.7, 0.6, 0.5, 0.6], cats=[-1, 0, 1]), columns=list("abcd"))
    plain = rel.cronbach_alpha(x)
    unit = rel.cronbach_alpha(x, weight=np.ones(len(x)))
    assert unit.alpha == pytest.approx(plain.alpha, abs=1e-13)
    assert _ci(unit) == pytest.approx(_ci(plain), abs=1e-12)
    reps = rng.integers(1, 4, size=len(x))
    rep = x.loc[np.repeat(np.arange(len(x)), reps)].reset_index(drop=True)
    freq = rel.cronbach_alpha(x, weight=reps.astype(float))
    assert freq.alpha == pytest.approx(rel.cronbach_alpha(rep).alpha, abs=1e-12)   # complete data


def test_alpha_equals_omega_for_tau_equivalent_population():
    # alpha = omega exactly when the model-implied covariance is tau-equivalent
    lam = np.full(4, 0.8)
    S = np.outer(lam, lam) + np.diag([0.3, 0.5, 0.4, 0.6])
    fit = _fit_one_factor(S[None])
    om = _omega_from_fit(fit, S[None], np.array([100.0]))
    k = _alpha_kernel(S[None], np.array([100.0]), 0.95, "feldt")
    assert om["omega_model"][0] == pytest.approx(k["alpha"][0], abs=1e-10)
    np.testing.assert_allclose(fit["lam"][0], lam, atol=1e-8)


def test_result_serialises(bfi):
    res = rel.cronbach_alpha(bfi[["C1", "C2", "C3"]])
    row = res.to_frame()
    assert {"alpha", "ci_low", "ci_high", "n"} <= set(row.columns)
    d = res.to_dict()
    assert d["kind"] == "AlphaResult" and d["provenance"]["options"]["ci_method"] == "feldt"
    assert "alpha" in str(res.summary())
    om = rel.omega(bfi[["C1", "C2", "C3"]], ci_method="wald")
    assert om.to_frame()["omega"].iloc[0] == om.omega


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_typed_errors():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.integers(1, 6, size=(40, 3)).astype(float), columns=["a", "b", "c"])
    with pytest.raises(cs.DataError, match="at least two items"):
        rel.cronbach_alpha(x[["a"]])
    const = x.assign(b=3.0)
    with pytest.raises(cs.DataError) as ei:
        rel.cronbach_alpha(const)
    assert ei.value.problems[0].column == "b" and ei.value.problems[0].rule == "item_constant"
    with pytest.raises(cs.DataError, match="cannot enter"):
        rel.cronbach_alpha(x.assign(c=np.nan))
    bad = x.astype(object)
    bad.loc[5, "a"] = "agree"
    with pytest.raises(cs.DataError) as ei:
        rel.cronbach_alpha(bad)
    assert ei.value.problems[0].row == 6 and ei.value.problems[0].value == "agree"   # 1-based rows
    with pytest.raises(cs.DataError, match="weights"):
        rel.cronbach_alpha(x, weight=-np.ones(40))
    with pytest.raises(cs.DataError, match="40 respondents"):
        rel.cronbach_alpha(x, weight=np.ones(3))
    with pytest.raises(cs.DataError, match="respondent"):
        rel.cronbach_alpha(pd.DataFrame({"a": [1.0, np.nan], "b": [2.0, np.nan]}))
    with pytest.raises(cs.CipsError, match="ci_method"):
        rel.cronbach_alpha(x, ci_method="exact")
    with pytest.raises(cs.CipsError, match="ci="):
        rel.cronbach_alpha(x, ci=95)
    with pytest.raises(cs.DataError, match="three items"):
        rel.omega(x[["a", "b"]])
    inf = x.copy()
    inf.loc[2, "c"] = np.inf
    with pytest.raises(cs.DataError, match="unusable"):
        rel.cronbach_alpha(inf)


def test_n_not_above_items_is_flagged_and_omega_refuses():
    x = pd.DataFrame([[1, 2, 2, 3], [2, 2, 3, 3], [3, 4, 4, 5]], columns=list("abcd"), dtype=float)
    res = rel.cronbach_alpha(x)
    assert "n_below_items" in [f.code for f in res.flags]
    with pytest.raises(cs.ModelError, match="positive"):
        rel.omega(x, ci_method="none")


# ----------------------------------------------------------------------------- by_cell
def _panel(seed=1, n_cells=6, n=120, p=4, miss=0.08, weights=False):
    rng = np.random.default_rng(seed)
    frames = []
    for c in range(n_cells):
        m = int(n * (0.5 + c / n_cells))
        y = _one_factor(rng, m, np.linspace(0.5, 0.8, p), cats=[-1.2, -0.3, 0.4, 1.1])
        y[rng.random(y.shape) < miss] = np.nan
        df = pd.DataFrame(y, columns=[f"q{j}" for j in range(p)])
        df["country"] = f"K{c // 2}"
        df["iteration"] = c % 2 + 1
        if weights:
            df["w"] = rng.uniform(0.3, 3.0, size=m)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("missing", ["pairwise", "listwise"])
@pytest.mark.parametrize("weighted", [False, True])
def test_by_cell_equals_one_scale_per_cell(missing, weighted):
    df = _panel(weights=weighted)
    items = {"f": [f"q{j}" for j in range(4)], "g": ["q0", "q1", "q3"]}
    w = "w" if weighted else None
    out = rel.by_cell(df, by=("country", "iteration"), items=items, missing=missing, weight=w).table
    itm = rel.by_cell(df, by=("country", "iteration"), items=items, missing=missing, weight=w, on="items").table
    assert len(out) == 12 and list(out.columns[:3]) == ["country", "iteration", "factor"]
    for _, row in out.iterrows():
        sub = df[(df.country == row.country) & (df.iteration == row.iteration)]
        one = rel.cronbach_alpha(sub[items[row.factor]], missing=missing,
                                 weight=None if w is None else sub["w"].to_numpy())
        assert row.alpha == pytest.approx(one.alpha, abs=1e-12)
        assert row.std_alpha == pytest.approx(one.std_alpha, abs=1e-12)
        assert (row.ci_low, row.ci_high) == pytest.approx(_ci(one), abs=1e-12)
        assert row.n == one.n and row.n_eff == pytest.approx(one.n_eff, abs=1e-9)
        assert row.mean_r == pytest.approx(one.mean_r, abs=1e-12)
        om = rel.omega(sub[items[row.factor]], missing=missing, ci_method="wald",
                       weight=None if w is None else sub["w"].to_numpy())
        assert row.omega == pytest.approx(om.omega, abs=1e-9)
        assert (row.omega_ci_low, row.omega_ci_high) == pytest.approx(_ci(om), abs=1e-8)
        tab = itm[(itm.country == row.country) & (itm.iteration == row.iteration) & (itm.factor == row.factor)]
        assert tab["item"].tolist() == items[row.factor]
        for c in ("n", "mean", "sd", "missing_share", "raw_r", "r_drop", "alpha_if_dropped"):
            np.testing.assert_allclose(tab[c].to_numpy(float), one.items[c].to_numpy(float), atol=1e-12,
                                       err_msg=c)


def test_by_cell_matches_pingouin():
    pg = pytest.importorskip("pingouin")
    df = _panel(seed=4)
    cols = [f"q{j}" for j in range(4)]
    out = rel.by_cell(df, by=("country", "iteration"), items={"f": cols}, omega=False).table
    for _, row in out.iterrows():
        sub = df[(df.country == row.country) & (df.iteration == row.iteration)][cols]
        a, ci = pg.cronbach_alpha(sub, nan_policy="pairwise")
        assert row.alpha == pytest.approx(a, abs=1e-12)


def test_by_cell_chunking_does_not_change_results():
    df = _panel(seed=2, n_cells=8)
    items = {"f": [f"q{j}" for j in range(4)]}
    a = rel.by_cell(df, by=("country", "iteration"), items=items).table
    b = rel.by_cell(df, by=("country", "iteration"), items=items, chunk_elements=300).table
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-12, rtol=0)


@pytest.mark.parametrize("missing", ["pairwise", "listwise"])
def test_by_cell_zero_weights_and_group_specific_items_equal_one_scale(missing):
    """Rows of zero weight never count; each group uses its own item list (cells = country x group)."""
    df = _panel(seed=7, n_cells=6, p=5, weights=True)
    rng = np.random.default_rng(11)
    df.loc[rng.random(len(df)) < 0.1, "w"] = 0.0
    df["group"] = np.where(np.arange(len(df)) % 3 == 0, "private", "officials")
    per_group = {"officials": [f"q{j}" for j in range(5)], "private": ["q0", "q2", "q4"]}
    outs = []
    for g, cols in per_group.items():
        o = rel.by_cell(df[df.group == g], by=("country", "group"), items={"f": cols}, weight="w",
                        missing=missing, omega=False).table
        outs.append(o)
    out = pd.concat(outs, ignore_index=True)
    assert len(out) == 6
    for _, row in out.iterrows():
        sub = df[(df.country == row.country) & (df.group == row.group)]
        cols = per_group[row.group]
        one = rel.cronbach_alpha(sub[cols], missing=missing, weight=sub["w"].to_numpy())
        assert row.alpha == pytest.approx(one.alpha, abs=1e-12)
        assert (row.ci_low, row.ci_high) == pytest.approx(_ci(one), abs=1e-12)
        assert row.n == one.n and row.n_eff == pytest.approx(one.n_eff, abs=1e-9)


def test_by_cell_infinite_answer_is_an_error_even_in_dropped_rows():
    df = _panel(seed=3, weights=True)
    cols = [f"q{j}" for j in range(4)]
    bad = df.copy()
    bad.loc[5, "q2"] = np.inf
    with pytest.raises(cs.DataError) as e:
        rel.by_cell(bad, by=("country",), items={"f": cols})
    assert e.value.problems[0].row == 6 and e.value.problems[0].column == "q2"        # 1-based rows
    zero = bad.copy()
    zero.loc[5, "w"] = 0.0                       # a row that does not count still holds bad input
    with pytest.raises(cs.DataError):
        rel.by_cell(zero, by=("country",), items={"f": cols}, weight="w")
    lw = bad.copy()
    lw.loc[5, "q0"] = np.nan                     # dropped by listwise deletion
    with pytest.raises(cs.DataError):
        rel.by_cell(lw, by=("country",), items={"f": cols}, missing="listwise")


def test_pivot_screen_never_hides_a_non_psd_matrix():
    """Matrices the LDL' pivots call positive definite have no eigenvalue below -1e-10 (relative)."""
    rng = np.random.default_rng(5)
    mats = []
    for p in (2, 4, 6):
        for _ in range(300):
            A = rng.normal(size=(p, p + rng.integers(-1, 3)))
            S = A @ A.T                                                   # PSD (singular when rank < p)
            E = rng.normal(size=(p, p)) * rng.choice([0.0, 1e-14, 1e-3, 0.3])
            S = S + (E + E.T)                                             # sometimes indefinite
            mats.append((p, S))
    n_nonpsd = 0
    for p in (2, 4, 6):
        stack = np.stack([S for q, S in mats if q == p])
        ok = np.ones(len(stack), dtype=bool)
        proven = _pivots_prove_pd(stack, ok)
        ev = np.linalg.eigvalsh(stack)
        rel_min = ev[:, 0] / np.abs(ev[:, -1])
        assert (rel_min[proven] > -1e-10).all()
        assert not proven[rel_min < -1e-13].any()          # (rounding: about -p * eps at most)
        # the kernel's flag equals the direct eigenvalue criterion
        k = _alpha_kernel(stack, np.full(len(stack), 100.0), 0.95, "feldt")
        np.testing.assert_array_equal(k["non_psd"], rel_min < -1e-10)
        n_nonpsd += int((rel_min < -1e-10).sum())
    assert n_nonpsd > 50                      # the check saw many non-PSD matrices
    bad = np.eye(3)[None].repeat(2, axis=0)
    bad[1, 0, 1] = np.nan
    assert _pivots_prove_pd(bad, np.array([True, False])).tolist() == [True, False]


def test_feldt_interval_equals_scipy_quantiles():
    from scipy import stats

    rng = np.random.default_rng(2)
    n = np.r_[rng.integers(3, 60, size=40).astype(float), rng.uniform(3, 60, size=10), [1.0, 0.0, 40.0]]
    alpha = rng.uniform(-0.5, 0.95, size=n.size)
    alpha[-1] = np.nan
    for p in (2, 5):
        lo, hi = _feldt(alpha, n, p, 0.9)
        ok = (n > 1) & np.isfinite(alpha)
        d1, d2 = n[ok] - 1, (n[ok] - 1) * (p - 1)
        np.testing.assert_allclose(lo[ok], 1 - (1 - alpha[ok]) * stats.f.ppf(0.95, d1, d2), rtol=0, atol=1e-12)
        np.testing.assert_allclose(hi[ok], 1 - (1 - alpha[ok]) * stats.f.ppf(0.05, d1, d2), rtol=0, atol=1e-12)
        assert np.isnan(lo[~ok]).all() and np.isnan(hi[~ok]).all()


def test_by_cell_flags_explain_every_nan():
    df = _panel(seed=3, n_cells=4, n=80)
    cols = [f"q{j}" for j in range(4)]
    tiny = pd.DataFrame({"country": "T", "iteration": 1, **{c: [1.0] for c in cols}})
    few = pd.DataFrame({"country": "F", "iteration": 1, **{c: [1.0, 2.0, 3.0] for c in cols}})
    few["q1"] = [2.0, 1.0, 3.0]
    const = df[(df.country == "K0") & (df.iteration == 1)].assign(country="C", q2=4.0)
    blank = pd.DataFrame({"country": "B", "iteration": 1, **{c: [np.nan] * 5 for c in cols}})
    small = df[(df.country == "K1") & (df.iteration == 1)].head(12).assign(country="S")
    d = pd.concat([df, tiny, few, const, blank, small], ignore_index=True)
    res = rel.by_cell(d, by=("country", "iteration"), items={"f": cols, "single": ["q0"]})
    assert {"too_few_respondents", "no_respondents", "n_below_items", "constant_item", "small_n"} <= \
        {f.code for f in res.flags}                            # summarised on the result too
    out = res.table.set_index("country")
    f = out[out.factor == "f"]
    assert "too_few_respondents" in f.loc["T", "flags"]
    assert "n_below_items" in f.loc["F", "flags"] and np.isnan(f.loc["F", "omega"])
    assert "constant_item" in f.loc["C", "flags"] and np.isnan(f.loc["C", "std_alpha"])
    assert "no_respondents" in f.loc["B", "flags"] and f.loc["B", "n"] == 0
    assert "small_n" in f.loc["S", "flags"]
    assert (out[out.factor == "single"]["flags"] == "too_few_items").all()
    for c in ("alpha", "std_alpha", "ci_low", "omega"):
        nan_rows = out[c].isna()
        assert (out.loc[nan_rows, "flags"] != "").all(), c
    ok = f.loc[["K0", "K1"]]
    ok = ok[ok["alpha"] >= 0.7]
    assert not ok["flags"].str.contains("alpha_").any()


def test_by_cell_threshold_flags():
    rng = np.random.default_rng(8)
    frames = []
    for name, lam in [("hi", 0.8), ("mid", 0.55), ("lo", 0.3)]:   # alpha .88, .63, .28
        y = _one_factor(rng, 3000, [lam] * 4)
        frames.append(pd.DataFrame(y, columns=list("abcd")).assign(country=name))
    out = rel.by_cell(pd.concat(frames), by=("country",), items={"f": list("abcd")}).table.set_index("country")
    assert out.loc["hi", "flags"] == ""
    assert "alpha_questionable" in out.loc["mid", "flags"] and "omega_questionable" in out.loc["mid", "flags"]
    assert "alpha_poor" in out.loc["lo", "flags"] and "omega_poor" in out.loc["lo", "flags"]


def test_by_cell_on_survey_data_uses_instrument_items():
    sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=80, n_private=60)
    data = sim.data
    out = rel.by_cell(data, weight=False).table
    inst = data.instrument
    n_cells = data.frame.groupby(["country", "iteration", "group"]).ngroups
    assert len(out) == n_cells * len(inst.factors)
    assert list(out.columns[:4]) == ["country", "iteration", "group", "factor"]
    for (g, f), sub in out.groupby(["group", "factor"]):
        assert (sub["n_items"] == len(inst.factor_items(f, group=g))).all()
    row = out[(out.group == "private") & (out.factor == "leadership")].iloc[0]
    rows = data.frame[(data.frame.country == row.country) & (data.frame.iteration == row.iteration)
                      & (data.frame.group == "private")]
    one = rel.cronbach_alpha(rows[list(inst.factor_items("leadership", group="private"))])
    assert row.alpha == pytest.approx(one.alpha, abs=1e-12)
    w = rel.by_cell(data, weight="weight", factors=["leadership"]).table
    assert (w["n_eff"] <= w["n"] + 1e-9).all() and len(w) == n_cells
    res = rel.by_cell(data, factors=["leadership"])            # default: the design weight
    pd.testing.assert_frame_equal(res.table, w)
    assert res.provenance.options["weight"] == "weight" and res.provenance.data_fingerprint == data.fingerprint
    assert res.to_frame().attrs["provenance"]["data_fingerprint"] == data.fingerprint
    from cips_stats.estimate.design import Design

    unit = rel.by_cell(data.with_design(Design(weight=None)), factors=["leadership"])   # the data's own design
    assert unit.provenance.options["weight"] is None
    pd.testing.assert_frame_equal(unit.table, rel.by_cell(data, weight=False, factors=["leadership"]).table)


def test_by_cell_ordinal_matches_one_scale():
    df = _panel(seed=6, n_cells=2, n=200, miss=0.0)
    cols = [f"q{j}" for j in range(4)]
    out = rel.by_cell(df, by=("country", "iteration"), items={"f": cols}, ordinal=True).table
    for _, row in out.iterrows():
        sub = df[(df.country == row.country) & (df.iteration == row.iteration)][cols]
        assert row.ordinal_alpha == pytest.approx(rel.cronbach_alpha(sub, ordinal=True).ordinal_alpha, abs=1e-12)
        assert row.ordinal_omega == pytest.approx(rel.omega(sub, ordinal=True, ci_method="none").omega, abs=1e-9)
        assert row.ordinal_alpha > row.alpha      # attenuation by coarse categories


def test_by_cell_observed_omega_has_no_interval_columns():
    df = _panel(seed=9, n_cells=2)
    cols = [f"q{j}" for j in range(4)]
    obs = rel.by_cell(df, by=("country", "iteration"), items={"f": cols}, denominator="observed").table
    assert "omega_ci_low" not in obs.columns and obs["omega"].notna().all()
    sub = df[(df.country == obs.country[0]) & (df.iteration == obs.iteration[0])][cols]
    one = rel.omega(sub, denominator="observed", ci_method="none")
    assert obs["omega"].iloc[0] == pytest.approx(one.omega, abs=1e-9)


def test_by_cell_bad_arguments():
    df = _panel(n_cells=2)
    with pytest.raises(cs.CipsError, match="items="):
        rel.by_cell(df, by=("country",))
    with pytest.raises(cs.DataError, match="not in the data"):
        rel.by_cell(df, by=("region",), items={"f": ["q0", "q1"]})
    with pytest.raises(cs.DataError, match="zz"):
        rel.by_cell(df, by=("country",), items={"f": ["q0", "zz"]})
    with pytest.raises(cs.CipsError, match="ci_method"):
        rel.by_cell(df, by=("country",), items={"f": ["q0", "q1"]}, ci_method="bootstrap")
    with pytest.raises(cs.DataError, match="missing key"):
        rel.by_cell(df.assign(country=None), by=("country",), items={"f": ["q0", "q1"]})


# ----------------------------------------------------------------------------- coverage (small study)
def test_feldt_and_duhachek_coverage_near_nominal():
    """200 replicates of parallel normal items (Feldt's CI is exact there), as 200 cells of one
    by_cell call. Coverage must lie within 3 Monte Carlo SEs of 0.95 (SE = 0.0154)."""
    rng = np.random.default_rng(2024)
    R, n, p, lam = 200, 150, 5, 0.6
    y = _one_factor(rng, R * n, [lam] * p)
    df = pd.DataFrame(y, columns=[f"q{j}" for j in range(p)]).assign(rep=np.repeat(np.arange(R), n))
    true_alpha = p * lam**2 / (p * lam**2 + (1 - lam**2))           # parallel items: alpha = omega
    mc = 3 * np.sqrt(0.95 * 0.05 / R)
    for method in ("feldt", "duhachek"):
        out = rel.by_cell(df, by=("rep",), items={"f": list(df.columns[:p])}, ci_method=method, omega=False).table
        cover = np.mean((out["ci_low"] <= true_alpha) & (true_alpha <= out["ci_high"]))
        assert abs(cover - 0.95) < mc, (method, cover)
        assert abs(out["alpha"].mean() - true_alpha) < 0.01


# ----------------------------------------------------------------------------- issue 10 item 8
@pytest.fixture(scope="module")
def bfi_raw() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "reliability_bfi.csv")


@pytest.mark.parametrize("scale", SCALES)
def test_check_keys_matches_psych(bfi_raw, scale):
    """psych::alpha(raw, check.keys = TRUE): the same items reversed (max + min - x), the same alpha."""
    ref = REF["scales"][scale]["check_keys"]
    res = rel.cronbach_alpha(bfi_raw[REF["scales"][scale]["items"]], check_keys=True)
    assert list(res.reversed) == [k[1:] for k in ref["keys"] if k.startswith("-")]
    assert res.items["reversed"].tolist() == [k.startswith("-") for k in ref["keys"]]
    tol = TOL["alpha_closed_form"]
    assert res.alpha == pytest.approx(ref["raw_alpha"], abs=tol)
    assert res.std_alpha == pytest.approx(ref["std_alpha"], abs=tol)
    np.testing.assert_allclose(_ci(res), ref["feldt"], atol=tol, rtol=0)
    np.testing.assert_allclose(res.items["r_drop"], ref["r_drop"], atol=tol, rtol=0)
    assert ("keys_reversed" in [f.code for f in res.flags]) == bool(res.reversed)
    # already keyed data: nothing to reverse, identical to the plain call
    keyed = bfi_raw[REF["scales"][scale]["items"]].copy()
    for c in res.reversed:
        keyed[c] = 7 - keyed[c]
    again = rel.cronbach_alpha(keyed, check_keys=True)
    assert again.reversed == () and again.alpha == pytest.approx(res.alpha, abs=1e-12)


@pytest.mark.parametrize("missing", ["listwise", "pairwise"])
@pytest.mark.parametrize("scale", SCALES)
def test_categorical_omega_matches_comprelsem_ord_scale(bfi, scale, missing):
    """Green & Yang's omega = semTools::compRelSEM(cfa(..., ordered = TRUE), ord.scale = TRUE)."""
    ref = REF["scales"][scale][f"categorical_{missing}"]
    res = rel.categorical_omega(bfi[REF["scales"][scale]["items"]], missing=missing)
    obs = rel.categorical_omega(bfi[REF["scales"][scale]["items"]], missing=missing, denominator="observed")
    assert res.n == ref["n"]
    assert res.omega == pytest.approx(ref["omega_cat_model"], abs=TOL["categorical_omega"])
    assert obs.omega == pytest.approx(ref["omega_cat_observed"], abs=TOL["categorical_omega"])
    assert res.omega_observed == obs.omega and res.denominator == "model"
    # the two coefficients answer different questions and differ on bfi (issue 10: up to .04)
    assert abs(ref["omega_cat_observed"] - ref["omega_latent_observed"]) > 0.02


def test_identical_items_are_flagged_not_silently_one():
    x = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 2, 3, 4, 1, 5] * 4})
    x["b"] = x["a"]
    x["c"] = 2 * x["a"] + 1                      # affinely identical: correlation 1 as well
    with pytest.warns(cs.errors.NumericalWarning, match="identical_items"):
        res = rel.cronbach_alpha(x)
    flag = next(f for f in res.flags if f.code == "identical_items")
    assert flag.severity == "warning" and ["a", "b"] in flag.where["pairs"]
    ok = x.assign(c=np.random.default_rng(1).permutation(x["c"].to_numpy()))
    with pytest.warns(cs.CipsWarning):        # (low alpha) but no identical-items flag for a, c
        res2 = rel.cronbach_alpha(ok)
    assert next(f for f in res2.flags if f.code == "identical_items").where["pairs"] == [["a", "b"]]


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_omega_on_a_handful_of_rows_is_typed_or_flagged(n):
    """issue 10: omega on 5 rows with the default bootstrap raised a raw LinAlgError."""
    rng = np.random.default_rng(n)
    for rep in range(3):
        x = pd.DataFrame(rng.integers(1, 6, size=(n, 4)).astype(float), columns=list("abcd"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = rel.omega(x, seed=rep, n_boot=100)
            except cs.CipsError:
                continue
        codes = [f.code for f in res.flags]
        emitted = {str(w.message).rsplit("[", 1)[1][:-1] for w in caught if issubclass(w.category, cs.CipsWarning)}
        assert emitted == {f.code for f in res.flags if f.severity != "info"} and "small_n" in emitted
        assert "small_n" in codes
        if np.isnan(res.ci_low):
            assert "bootstrap_failed" in codes


def test_first_respondent_is_row_one():
    """issue 12: reliability reported the first respondent as row 0."""
    x = pd.DataFrame({"a": ["x", 2, 3, 4], "b": [1, 2, 3, 5], "c": [2, 2, 4, 4]}, dtype=object)
    with pytest.raises(cs.DataError) as ei:
        rel.cronbach_alpha(x)
    assert ei.value.problems[0].row == 1
    w = np.array([-1.0, 1, 1, 1])
    with pytest.raises(cs.DataError) as ei:
        rel.cronbach_alpha(x.assign(a=[1, 2, 3, 4]).astype(float), weight=w)
    assert ei.value.problems[0].row == 1
    df = _panel(n_cells=2)
    df.loc[0, "country"] = None
    with pytest.raises(cs.DataError) as ei:
        rel.by_cell(df, by=("country",), items={"f": ["q0", "q1"]})
    assert ei.value.problems[0].row == 1


def test_statistical_warnings_are_emitted_and_attached():
    rng = np.random.default_rng(8)
    lo = pd.DataFrame(_one_factor(rng, 400, [0.3] * 4), columns=list("abcd"))
    with pytest.warns(cs.errors.LowReliabilityWarning, match="alpha_poor"):
        res = rel.cronbach_alpha(lo)
    assert "alpha_poor" in [f.code for f in res.flags]
    small = pd.DataFrame(_one_factor(rng, 20, [0.8] * 4), columns=list("abcd"))
    with pytest.warns(cs.errors.SmallCellWarning):
        rel.cronbach_alpha(small)
    panel = pd.concat([lo.assign(country="lo"),
                       pd.DataFrame(_one_factor(rng, 400, [0.8] * 4), columns=list("abcd")).assign(country="hi")])
    with pytest.warns(cs.errors.LowReliabilityWarning, match="1 of 2 cell") as rec:
        out = rel.by_cell(panel, by=("country",), items={"f": list("abcd")})
    assert {w.filename for w in rec} == {__file__}              # the warning points at the caller
    with pytest.warns(cs.CipsWarning) as rec:
        rel.cronbach_alpha(lo)
        rel.omega(lo, ci_method="wald")
    assert {w.filename for w in rec} == {__file__}
    summary = {f.code: f for f in out.flags}
    assert summary["alpha_poor"].where["rows"] == 1 and "alpha_questionable" not in summary
    with warnings.catch_warnings():
        warnings.simplefilter("error", cs.CipsWarning)
        good = rel.by_cell(panel[panel.country == "hi"], by=("country",), items={"f": list("abcd")})
    assert good.flags == ()


def test_by_cell_result_contract_and_weight_forms():
    df = _panel(seed=5, n_cells=4, weights=True)
    items = {"f": [f"q{j}" for j in range(4)]}
    res = rel.by_cell(df, by=("country", "iteration"), items=items, weight="w")
    assert isinstance(res, cs.results.Result) and len(res) == len(res.table) == 4
    frame = res.to_frame()
    pd.testing.assert_frame_equal(frame, res.table)
    assert frame is not res.table and frame.attrs["provenance"]["method"] == "reliability.by_cell"
    d = res.to_dict()
    assert d["kind"] == "ByCellResult" and d["provenance"]["options"]["weight"] == "w"
    text = str(res.summary())
    assert "by factor" in text and "alpha_median" in text and "below_acceptable" in text
    assert res.summary().tables["by factor"]["cells"].sum() == len(res.table)

    class Design:                                   # anything with a .weight column name
        weight = "w"

    pd.testing.assert_frame_equal(rel.by_cell(df, by=("country", "iteration"), items=items,
                                              weight=Design()).table, res.table)
    plain = rel.by_cell(df, by=("country", "iteration"), items=items)     # a DataFrame: unweighted
    assert (plain.table["n_eff"] == plain.table["n"]).all()
    assert not np.allclose(plain.table["alpha"], res.table["alpha"])
    with pytest.raises(cs.CipsError, match="weight="):
        rel.by_cell(df, by=("country",), items=items, weight=np.ones(len(df)))
    with pytest.raises(cs.CipsError, match="on="):
        rel.by_cell(df, by=("country",), items=items, on="cells")
    with pytest.raises(cs.CipsError, match="min_n"):
        rel.by_cell(df, by=("country",), items=items, min_n=-1)
    with pytest.raises(cs.CipsError, match="chunk_elements"):
        rel.by_cell(df, by=("country",), items=items, chunk_elements=0)
    for bad in ("200", 99, 150.0, True):
        with pytest.raises(cs.CipsError, match="n_boot"):
            rel.cronbach_alpha(df[items["f"]], ci_method="bootstrap", n_boot=bad)
        with pytest.raises(cs.CipsError, match="n_boot"):
            rel.omega(df[items["f"]], n_boot=bad)
    one = rel.cronbach_alpha(df[items["f"] + ["w"]], weight=Design())
    assert one.weighted and one.provenance.options["weight"] == "w"
    from cips_stats.estimate.design import Design as RealDesign

    real = RealDesign(weight="w")
    pd.testing.assert_frame_equal(rel.by_cell(df, by=("country", "iteration"), items=items, weight=real).table,
                                  res.table)
    unit = RealDesign(weight=None)                   # unit weights: the unweighted statistics
    pd.testing.assert_frame_equal(rel.by_cell(df, by=("country", "iteration"), items=items, weight=unit).table,
                                  plain.table)
    assert not rel.cronbach_alpha(df[items["f"]], weight=unit).weighted


def test_deprecated_ci_tuple_still_reads():
    x = pd.DataFrame(_one_factor(np.random.default_rng(2), 300, [0.7] * 4), columns=list("abcd"))
    res = rel.cronbach_alpha(x)
    with pytest.warns(DeprecationWarning, match="ci_low"):
        assert res.ci == (res.ci_low, res.ci_high)
    assert res.ci_level == 0.95 and {"ci_low", "ci_high"} <= set(res.to_frame().columns)
    om = rel.omega(x, ci_method="wald")
    with pytest.warns(DeprecationWarning):
        assert om.ci == (om.ci_low, om.ci_high)


def test_categorical_omega_recovers_its_population_value():
    """Simulated one-factor ordinal data: the estimate is near the population value of Green & Yang's
    formula (true loadings and thresholds), which lies below the latent-response omega."""
    from cips_stats.reliability._omega import _sum_score_variance

    rng = np.random.default_rng(42)
    lam = np.array([0.7, 0.6, 0.5, 0.65])
    tau = [np.array([-1.0, 0.0, 1.0])] * 4
    n = 4000
    ystar = rng.normal(size=(n, 1)) * lam + rng.normal(size=(n, 4)) * np.sqrt(1 - lam**2)
    x = pd.DataFrame(np.digitize(ystar, tau[0]).astype(float), columns=list("abcd"))
    implied = np.outer(lam, lam)
    np.fill_diagonal(implied, 1.0)
    population = _sum_score_variance(tau, np.outer(lam, lam)) / _sum_score_variance(tau, implied)
    latent = lam.sum() ** 2 / (lam.sum() ** 2 + (1 - lam**2).sum())
    res = rel.categorical_omega(x)
    assert population < latent
    assert res.omega == pytest.approx(population, abs=0.015)          # SE about .005 at n = 4000
    # the population value is the squared correlation of the sum score with its true score
    # E[score | f] = sum_j sum_c P(y*_j > tau_c | f)  (classical reliability of the observed sum)
    from scipy.stats import norm

    big = 400_000
    f = rng.normal(size=big)
    ys = f[:, None] * lam + rng.normal(size=(big, 4)) * np.sqrt(1 - lam**2)
    score = np.digitize(ys, tau[0]).sum(axis=1)
    true_score = sum(norm.sf((c - f * l) / np.sqrt(1 - l**2)) for t, l in zip(tau, lam) for c in t)
    assert np.corrcoef(score, true_score)[0, 1] ** 2 == pytest.approx(population, abs=0.005)


def test_one_factor_kernels_match_lapack():
    # the closed-form (Woodbury) inverse and log-determinant of l l' + diag(psi), and the LDL' pivot
    # test of positive definiteness, against LAPACK on random stacks with Heywood and indefinite cases
    from cips_stats.reliability._omega import _one_factor_sigma, _pd_pivots

    gen = np.random.default_rng(5)
    C, p = 400, 5
    lam = gen.normal(0.7, 0.4, size=(C, p))
    psi = gen.uniform(0.05, 1.0, size=(C, p))
    psi[:40, 0] = -gen.uniform(0.01, 0.3, size=40)            # Heywood cases: the LAPACK branch
    S = np.einsum("cj,ck->cjk", lam, lam) + np.einsum("cj,jk->cjk", np.abs(psi) + 0.2, np.eye(p))
    F, Sig, B = _one_factor_sigma(np.concatenate([lam, psi], axis=1), S)
    sign, ld = np.linalg.slogdet(Sig)
    good = sign > 0
    assert good[40:].all() and np.isinf(F[~good]).all()
    np.testing.assert_allclose(B[good], np.linalg.inv(Sig[good]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(F[good], ld[good] + np.einsum("cjk,ckj->c", S[good], np.linalg.inv(Sig[good])),
                               rtol=1e-11)
    A = gen.normal(size=(C, 2 * p, 2 * p))
    H = A @ A.swapaxes(1, 2) - gen.uniform(0, 3, size=(C, 1, 1)) * np.eye(2 * p)
    lo = np.linalg.eigvalsh(H)[:, 0]
    scale = np.abs(np.diagonal(H, axis1=1, axis2=2)).max(axis=1)
    pd_ = _pd_pivots(H, 1e-10)
    assert 0 < pd_.sum() < C                                  # both kinds are present
    assert (pd_ == (lo > 1e-6 * scale))[np.abs(lo) > 1e-6 * scale].all()


def test_omega_se_of_an_indefinite_information_matrix_is_nan_without_a_runtime_warning():
    """A positive determinant does not make the Hessian positive definite; its SE quadratic form can be negative."""
    import warnings

    from cips_stats.reliability._omega import _omega_from_fit

    p = 3
    H = np.diag([-1.0, -1.0, -1.0, -1.0, 1.0, 1.0])[None]        # det > 0, four negative eigenvalues
    fit = {"lam": np.full((1, p), 0.7), "psi": np.full((1, p), 0.5), "estimable": np.array([True]), "H": H}
    S = np.full((1, p, p), 0.49) + np.eye(p)[None] * 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _omega_from_fit(fit, S, np.array([200.0]))
    assert np.isfinite(out["omega_model"][0]) and np.isnan(out["se_model"][0])
    fit["H"] = np.eye(2 * p)[None] * 50.0                          # positive definite: a finite SE
    assert np.isfinite(_omega_from_fit(fit, S, np.array([200.0]))["se_model"][0])


def test_pd_pivots_cholesky_matches_elimination(monkeypatch):
    """The batched-Cholesky test of positive definiteness (with its margin) agrees with the elimination."""
    import sys

    om = sys.modules["cips_stats.reliability._omega"]
    rng = np.random.default_rng(5)
    A = rng.standard_normal((300, 6, 6))
    H = A @ np.swapaxes(A, 1, 2) + rng.choice([-1.0, 0.0, 1e-12, 0.5], size=300)[:, None, None] * np.eye(6)
    H[:3] = np.diag([1.0, 1.0, 1.0, 1.0, 1.0, 1e-13])          # a pivot below the margin
    fast = om._pd_pivots(H, 1e-10)
    monkeypatch.setattr(om, "_cholesky_stack", None)
    slow = om._pd_pivots(H, 1e-10)
    np.testing.assert_array_equal(fast, slow)
    assert fast.any() and not fast.all()
