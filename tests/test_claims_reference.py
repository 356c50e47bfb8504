"""cips_stats.claims against R (validation/r/claims.R -> tests/reference/claims_reference.json).

The input cells (tests/reference/claims_cells.csv) are the audited cells of ``cs.simulate(seed=1)``;
R and Python read the same file.  Tolerances are in the fixture's ``meta``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cips_stats as cs

REF = Path(__file__).parent / "reference"
FIX = json.loads((REF / "claims_reference.json").read_text())
CASES = {(c["group"], c["rule"]): c for c in FIX["cases"]}
TOL = FIX["meta"]["tolerance"]


@pytest.fixture(scope="module")
def audit():
    cells = pd.read_csv(REF / "claims_cells.csv")
    table = cells[["country", "group", "factor", "baseline", "estimate", "se", "p_value", "p_adjusted"]].copy()
    table["significant"] = cells["significant"].astype(bool)
    table["suppressed"] = False
    n = len(table)
    cc = cs.change.CellChanges(table=table, replicates=np.zeros((n, 2)), baseline_replicates=np.zeros((n, 2)),
                               significance=0.05)
    support = cells[["country", "factor", "supported"]].drop_duplicates(["country", "factor"])
    support = support.assign(supported=support["supported"].astype(bool))
    return cs.claims.audit(cc, supported=support, rules=("point", "fdr"), n_perm=2000, n_boot=200, n_null=200,
                           seed=5)


def _row(a, group, rule, test):
    t = a.tests
    r = t[(t["group"] == group) & (t["rule"] == rule) & (t["test"] == test)]
    assert len(r) == 1, (group, rule, test)
    return r.iloc[0]


def test_fixture_meta_names_calls_and_versions():
    meta = FIX["meta"]
    for key in ("r_version", "packages", "call", "date", "generated_by"):
        assert meta[key]
    assert {"geepack", "lme4", "sandwich"} <= set(meta["packages"])
    assert len(FIX["cases"]) == 6


@pytest.mark.parametrize("group", ["officials", "private"])
@pytest.mark.parametrize("rule", ["point", "fdr"])
def test_cmh_and_fisher_match_r(audit, group, rule):
    ref = CASES[(group, rule)]
    cmh = _row(audit, group, rule, "cmh")
    assert cmh["statistic"] == pytest.approx(ref["cmh_statistic"], rel=TOL["cmh"])
    assert cmh["p_value"] == pytest.approx(ref["cmh_p"], rel=1e-6)
    assert cmh["estimate"] == pytest.approx(ref["cmh_or"], rel=TOL["cmh"])
    assert [cmh["ci_low"], cmh["ci_high"]] == pytest.approx(ref["cmh_or_ci"], rel=1e-6)
    fis = _row(audit, group, rule, "fisher")
    assert fis["p_value"] == pytest.approx(ref["fisher_p"], rel=1e-6)


@pytest.mark.parametrize("group", ["officials", "private"])
@pytest.mark.parametrize("rule", ["point", "fdr"])
@pytest.mark.parametrize("cov", ["exchangeable", "independence"])
def test_gee_matches_geepack(audit, group, rule, cov):
    ref = CASES[(group, rule)]
    r = _row(audit, group, rule, f"gee_{cov}")
    assert np.log(r["estimate"]) == pytest.approx(ref[f"gee_{cov}_coef"], abs=TOL["gee_coef"])
    assert r["se"] == pytest.approx(ref[f"gee_{cov}_se"], rel=TOL["gee_se"])
    assert r["p_value"] == pytest.approx(ref[f"gee_{cov}_p"], rel=1e-3)


@pytest.mark.parametrize("group", ["officials", "private"])
@pytest.mark.parametrize("rule", ["point", "fdr"])
def test_random_intercept_logit_matches_glmer(audit, group, rule):
    ref = CASES[(group, rule)]
    r = _row(audit, group, rule, "mixed")
    assert np.log(r["estimate"]) == pytest.approx(ref["glmer_coef"], abs=TOL["glmer_coef"])
    assert r["se"] == pytest.approx(ref["glmer_se"], abs=TOL["glmer_se"])
    assert r["p_value"] == pytest.approx(ref["glmer_p"], abs=1e-4)


@pytest.mark.parametrize("group", ["officials", "private"])
def test_welch_did_ancova_baseline_match_r(audit, group):
    ref = CASES[(group, "change")]
    w = _row(audit, group, "change", "welch")
    assert w["statistic"] == pytest.approx(ref["welch_t"], rel=TOL["welch"])
    assert w["p_value"] == pytest.approx(ref["welch_p"], rel=1e-6)
    assert [w["ci_low"], w["ci_high"]] == pytest.approx(ref["welch_ci"], rel=1e-8)
    for test in ("did", "ancova"):
        r = _row(audit, group, "change", test)
        assert r["estimate"] == pytest.approx(ref[f"{test}_coef"], rel=TOL["ols"])
        assert r["se"] == pytest.approx(ref[f"{test}_se"], rel=1e-6)
        assert r["p_value"] == pytest.approx(ref[f"{test}_p"], rel=1e-6)
    b = audit.baseline
    bd = b[(b["group"] == group) & (b["quantity"] == "baseline_difference")].iloc[0]
    assert bd["estimate"] == pytest.approx(ref["baseline_coef"], rel=TOL["ols"])
    assert bd["se"] == pytest.approx(ref["baseline_se"], rel=1e-6)
    assert bd["p_value"] == pytest.approx(ref["baseline_p"], rel=1e-6)
