"""Regression pin of whole ``cs.claims.audit`` and ``from_aggregates`` results (every number of ``to_dict()``).

The audits below run every branch of :func:`cips_stats.claims.audit` on fixed cell changes (the
interface the audit reads, built from one random stream, so that nothing upstream can move them): a
change model (a deterministic stand-in exposing the attributes ``audit`` reads: ``cells``,
``change_draws()``, ``prob_improved``, ``support_effect``, ``reliable``, ``baseline``) with all three
rules and all tests by Monte Carlo permutations, and the cell changes alone with exact enumeration of
the within-country arrangements; ``from_aggregates`` runs with and without a country layout.  Countries
surveyed once, suppressed cells, cells without a support row and a country with only unsupported cells
are all present.  ``EXPECTED`` was computed with claims.py of commit 88cc056, before its long functions
were split into helpers; the code must reproduce every number to 1e-12 (relative, or absolute near 0)
and every string exactly.  Regenerate (only after an intended change of the numbers) with
``python tests/test_claims_regression.py > /tmp/expected.py`` and paste the printed ``EXPECTED``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy.special import ndtr

from cips_stats import claims

FACTORS = ["leadership", "regulatory", "transparency", "automation", "audit"]
OTHER_FACTORS = ["conduct", "hrm"]              # cell changes without a row in the support table


def _inputs():
    """Cell changes (the interface ``audit`` reads) and a support table, from one fixed random stream.

    Built here rather than by ``cs.simulate`` -> ``indicators`` -> ``cell_changes`` so that the pin tests
    the audit alone: a change upstream cannot move these numbers.
    """
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(5)
    countries = [f"C{i:02d}" for i in range(1, 7)]
    supported = rng.random((len(countries), len(FACTORS))) < 0.35
    supported[0, :2] = True                                      # every country with change but C04 is mixed
    supported[2, 3] = True
    supported[3] = False                                         # C04: only unsupported cells
    sup = pd.DataFrame([(c, f, bool(supported[i, j])) for i, c in enumerate(countries)
                        for j, f in enumerate(FACTORS)], columns=["country", "factor", "supported"])
    rows = []
    for i, c in enumerate(countries[:4]):                        # C05 and C06 were surveyed once
        level = rng.normal(0, 0.4)
        for g in ("officials", "private"):
            for j, f in enumerate(FACTORS + OTHER_FACTORS):
                s_ = bool(supported[i, j]) if j < len(FACTORS) else False
                se = rng.uniform(0.12, 0.45)
                rows.append({"country": c, "group": g, "factor": f, "baseline": rng.normal(6.0, 0.8) + level,
                             "estimate": -0.1 + 0.6 * s_ + level / 2 + rng.normal(0, 0.35), "se": se,
                             "suppressed": bool(rng.random() < 0.3)})
    table = pd.DataFrame(rows)
    table["p_value"] = 2 * ndtr(-np.abs(table["estimate"] / table["se"]))
    table["p_adjusted"] = multipletests(table["p_value"], method="fdr_bh")[1]
    table["significant"] = table["p_adjusted"] < 0.05
    cc = SimpleNamespace(table=table, replicates=None, baseline_replicates=None, significance=0.05,
                         factors=tuple(FACTORS + OTHER_FACTORS), provenance=None)
    return cc, sup


def _stand_in_model(cc):
    """A change model's interface with posterior draws centred on the cell changes (fixed seed)."""
    cells = cc.table[["country", "group", "factor", "baseline"]].reset_index(drop=True)
    est = cc.table["estimate"].to_numpy(float)
    se = cc.table["se"].to_numpy(float)
    draws = est[None, :] + se[None, :] * np.random.default_rng(9).standard_normal((400, len(est)))
    prob = cells[["country", "group", "factor"]].copy()
    prob["p_improved"] = (draws > 0).mean(axis=0)
    effect = pd.DataFrame({"group": ["officials", "private"], "mean": [0.31, 0.12], "sd": [0.11, 0.09],
                           "ci_low": [0.1, -0.06], "ci_high": [0.52, 0.3]})
    return SimpleNamespace(cells=cells, change_draws=lambda: draws, prob_improved=prob, support_effect=effect,
                           reliable=False, baseline=True, provenance=None)


def audits() -> dict:
    cc, sup = _inputs()
    model = _stand_in_model(cc)
    a = claims.audit(model, cell_changes=cc, supported=sup, n_perm=400, n_boot=150, n_null=150, seed=17)
    b = claims.audit(cc, supported=sup, rules=("point", "fdr"), tests=("permutation", "cmh", "welch", "did"),
                     n_perm=5000, n_boot=120, n_null=100, seed=18)
    out = {}
    f1 = claims.from_aggregates(supported_improved=68, supported_total=80, unsupported_improved=66,
                                unsupported_total=90, n_countries=17, icc=0.05, label="officials")
    f2 = claims.from_aggregates(supported_improved=9, supported_total=12, unsupported_improved=20,
                                unsupported_total=40, icc_grid=(0.0, 0.3), significance=0.1, ci=0.9)
    for name, res in (("model_all_rules_monte_carlo", a), ("cell_changes_exact", b),
                      ("aggregates_with_countries", f1), ("aggregates_without_layout", f2)):
        d = res.to_dict()
        d.pop("provenance")
        out[name] = d
    return out


def _compare(got, want, path="") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{path}: keys {sorted(got) if isinstance(got, dict) else type(got)} != {sorted(want)}"]
        return [e for k in want for e in _compare(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: length {len(got) if isinstance(got, list) else type(got)} != {len(want)}"]
        return [e for i, (g, w) in enumerate(zip(got, want)) for e in _compare(g, w, f"{path}[{i}]")]
    if isinstance(want, float) and not isinstance(got, bool) and isinstance(got, (int, float)):
        if math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(got) and math.isnan(want)):
            return []
        return [f"{path}: {got!r} != {want!r}"]
    return [] if (type(got) is type(want) and got == want) else [f"{path}: {got!r} != {want!r}"]


def test_audit_reproduces_the_pinned_numbers():
    errors = _compare(audits(), EXPECTED)
    assert not errors, f"{len(errors)} difference(s), first: " + "; ".join(errors[:8])


def test_the_pin_exercises_every_branch():
    a, b = EXPECTED["model_all_rules_monte_carlo"], EXPECTED["cell_changes_exact"]
    flags = {f["code"] for f in a["flags"]}
    assert {"change_model_unreliable", "support_rows_without_change", "unlabelled_cells", "suppressed_cells",
            "uninformative_countries", "few_clusters"} <= flags
    exact = b["permutation"]["columns"].index("exact")
    assert all(r[exact] for r in b["permutation"]["data"])
    assert not any(r[exact] for r in a["permutation"]["data"])
    rules = {r[1] for r in a["shares"]["data"]}
    assert rules == {"point", "fdr", "posterior"}
    assert "support_effect_change_model" in {r[1] for r in a["baseline"]["data"]}


def _literal(obj, indent: int = 4) -> str:
    """Python literal of a to_dict() tree, one table row per line (``nan`` is the module's float nan)."""
    pad = " " * indent
    if isinstance(obj, dict) and set(obj) == {"columns", "data"}:
        rows = "".join(f"{pad}    {r!r},\n" for r in obj["data"])
        return f"{{'columns': {obj['columns']!r},\n{pad} 'data': [\n{rows}{pad} ]}}"
    if isinstance(obj, dict):
        items = "".join(f"{pad}{k!r}: {_literal(v, indent + 4)},\n" for k, v in obj.items())
        return f"{{\n{items}{pad[:-4]}}}"
    return repr(obj)


if __name__ == "__main__":      # print the literal to paste at the end of this file
    print("EXPECTED = " + _literal(audits()))
EXPECTED = {
    'model_all_rules_monte_carlo': {
        'kind': 'ClaimAudit',
        'flags': [{'code': 'change_model_unreliable', 'message': "The change model failed its convergence gates (R-hat, effective sample size or divergences): the posterior rule and the model's support effect are not reliable.", 'severity': 'warning', 'where': {}}, {'code': 'support_rows_without_change', 'message': '10 row(s) of the support table name countries with no change (surveyed once): they are not audited.', 'severity': 'info', 'where': {'n': 10}}, {'code': 'unlabelled_cells', 'message': '16 cell change(s) have no row in the support table and are not audited.', 'severity': 'info', 'where': {'n': 16}}, {'code': 'suppressed_cells', 'message': '20 audited cell(s) are suppressed for publication; they are used for inference and must not be shown individually.', 'severity': 'info', 'where': {'n': 20}}, {'code': 'uninformative_countries', 'message': 'officials: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'officials', 'n': 1}}, {'code': 'few_clusters', 'message': 'officials: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'officials', 'n': 4}}, {'code': 'uninformative_countries', 'message': 'private: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'private', 'n': 1}}, {'code': 'few_clusters', 'message': 'private: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'private', 'n': 4}}],
        'shares': {'columns': ['group', 'rule', 'set', 'n_cells', 'n_improved', 'share', 'ci_low', 'ci_high', 'deff', 'interval', 'true_share', 'true_ci_low', 'true_ci_high'],
             'data': [
                ['officials', 'point', 'supported', 8, 6, 0.75, 0.40927543031016883, 0.9285207872478909, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'point', 'unsupported', 12, 4, 0.3333333333333333, 0.13812009109121315, 0.6093779111272004, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'point', 'difference', 20, 10, 0.4166666666666667, 0.125, 0.6206845238095239, None, 'country bootstrap (percentile)', None, None, None],
                ['officials', 'fdr', 'supported', 8, 0, 0.0, 0.0, 0.32440756488388023, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'fdr', 'unsupported', 12, 0, 0.0, 2.7755575615628914e-17, 0.24249400665524085, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'fdr', 'difference', 20, 0, 0.0, 0.0, 0.0, None, 'country bootstrap (percentile)', None, None, None],
                ['officials', 'posterior', 'supported', 8, 0, 0.0, 0.0, 0.32440756488388023, 1.0, 'Wilson on the effective number of cells (country design effect)', 0.675625, 0.375, 0.875],
                ['officials', 'posterior', 'unsupported', 12, 0, 0.0, 2.7755575615628914e-17, 0.24249400665524085, 1.0, 'Wilson on the effective number of cells (country design effect)', 0.31249999999999994, 0.08333333333333333, 0.5],
                ['officials', 'posterior', 'difference', 20, 0, 0.0, 0.0, 0.0, None, 'country bootstrap (percentile)', 0.363125, 0.0, 0.6677083333333325],
                ['private', 'point', 'supported', 8, 6, 0.75, 0.36482256073733854, 0.9400102953115788, 1.3333333333333333, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'point', 'unsupported', 12, 4, 0.3333333333333333, 0.13812009109121315, 0.6093779111272004, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'point', 'difference', 20, 10, 0.4166666666666667, 0.28625000000000017, 0.6666666666666667, None, 'country bootstrap (percentile)', None, None, None],
                ['private', 'fdr', 'supported', 8, 0, 0.0, 0.0, 0.32440756488388023, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'fdr', 'unsupported', 12, 0, 0.0, 2.7755575615628914e-17, 0.24249400665524085, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'fdr', 'difference', 20, 0, 0.0, 0.0, 0.0, None, 'country bootstrap (percentile)', None, None, None],
                ['private', 'posterior', 'supported', 8, 1, 0.125, 0.018158932433317898, 0.5245917834933062, 1.3333333333333333, 'Wilson on the effective number of cells (country design effect)', 0.7415625, 0.5, 1.0],
                ['private', 'posterior', 'unsupported', 12, 0, 0.0, 2.7755575615628914e-17, 0.24249400665524085, 1.0, 'Wilson on the effective number of cells (country design effect)', 0.32854166666666673, 0.16666666666666666, 0.5],
                ['private', 'posterior', 'difference', 20, 1, 0.125, 0.0, 0.5, None, 'country bootstrap (percentile)', 0.41302083333333334, 0.08333333333333331, 0.7083333333333334],
             ]},
        'nulls': {'columns': ['group', 'rule', 'set', 'scenario', 'mu', 'tau', 'expected_share', 'ci_low', 'ci_high', 'observed_share', 'p_exceed'],
             'data': [
                ['officials', 'point', 'supported', 'no_change', 0.0, 0.0, 0.51, 0.125, 0.875, 0.75, 0.16666666666666666],
                ['officials', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.5055555555555556, 0.25, 0.75, 0.3333333333333333, 0.9333333333333333],
                ['officials', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.0025, 0.0, 0.0, 0.0, 1.0],
                ['officials', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.0016666666666666668, 0.0, 0.0, 0.0, 1.0],
                ['officials', 'posterior', 'supported', 'no_change', 0.0, 0.0, 0.059166666666666666, 0.0, 0.25, 0.0, 1.0],
                ['officials', 'posterior', 'unsupported', 'no_change', 0.0, 0.0, 0.05444444444444444, 0.0, 0.25, 0.0, 1.0],
                ['officials', 'point', 'supported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.30916666666666665, 0.0, 0.625, 0.75, 0.0],
                ['officials', 'point', 'unsupported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.30833333333333335, 0.08333333333333333, 0.5229166666666671, 0.3333333333333333, 0.5466666666666666],
                ['officials', 'fdr', 'supported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.005, 0.0, 0.125, 0.0, 1.0],
                ['officials', 'fdr', 'unsupported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.0016666666666666668, 0.0, 0.0, 0.0, 1.0],
                ['officials', 'posterior', 'supported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.035833333333333335, 0.0, 0.125, 0.0, 1.0],
                ['officials', 'posterior', 'unsupported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.02944444444444444, 0.0, 0.16666666666666666, 0.0, 1.0],
                ['private', 'point', 'supported', 'no_change', 0.0, 0.0, 0.5191666666666667, 0.25, 0.75, 0.75, 0.16],
                ['private', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.49222222222222217, 0.25, 0.75, 0.3333333333333333, 0.94],
                ['private', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                ['private', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                ['private', 'posterior', 'supported', 'no_change', 0.0, 0.0, 0.050833333333333335, 0.0, 0.25, 0.125, 0.3333333333333333],
                ['private', 'posterior', 'unsupported', 'no_change', 0.0, 0.0, 0.03944444444444444, 0.0, 0.16666666666666666, 0.0, 1.0],
                ['private', 'point', 'supported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.2733333333333333, 0.0, 0.5, 0.75, 0.0],
                ['private', 'point', 'unsupported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.21944444444444447, 0.06041666666666693, 0.5, 0.3333333333333333, 0.23333333333333334],
                ['private', 'fdr', 'supported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.0, 0.0, 0.0, 0.0, 1.0],
                ['private', 'fdr', 'unsupported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.0, 0.0, 0.0, 0.0, 1.0],
                ['private', 'posterior', 'supported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.010833333333333334, 0.0, 0.125, 0.125, 0.08666666666666667],
                ['private', 'posterior', 'unsupported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.008888888888888889, 0.0, 0.08333333333333333, 0.0, 1.0],
             ]},
        'tests': {'columns': ['group', 'rule', 'test', 'estimate', 'scale', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'p_holm', 'mc_se', 'method', 'note'],
             'data': [
                ['officials', 'point', 'permutation', 0.4166666666666667, 'difference in shares', None, None, None, None, 0.1396508728179551, 0.9775561097256857, 0.017331222298148683, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'fdr', 'permutation', 0.0, 'difference in shares', None, None, None, None, 1.0, 1.0, 0.0, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'posterior', 'permutation', 0.0, 'difference in shares', None, None, None, None, 1.0, 1.0, 0.0, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'change', 'permutation', 0.2942292738529043, 'difference in mean change', None, None, None, None, 0.06483790523690773, 0.6483790523690773, 0.01231198108362313, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'point', 'cmh', 8.999999999999998, 'odds ratio (Mantel-Haenszel)', None, 0.567783629690765, 142.65997778786868, 2.6666666666666674, 0.10247043485974994, 0.8197634788779995, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['officials', 'point', 'fisher', 6.0, 'odds ratio (pooled, sample)', None, None, None, None, 0.16980233388902116, 0.9775561097256857, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['officials', 'point', 'gee_exchangeable', 3.619828601932678, 'odds ratio', 0.18263115349072045, 2.5306500180930476, 5.177783973954514, 7.043851241128498, 1.8699778592615726e-12, 2.8049667888923588e-11, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation -0.206'],
                ['officials', 'point', 'gee_exchangeable_bc', 3.619828601932678, 'odds ratio', 0.3151344733651268, 1.3278062399484136, 9.86827649482876, 4.082151544537108, 0.026553554258256756, 0.3186426510990811, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation -0.206'],
                ['officials', 'point', 'gee_independence', 6.0, 'odds ratio', 0.5034602488997738, 2.236686464433587, 16.095237563444798, 3.55888965046126, 0.00037242595615942726, 0.005213963386231982, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['officials', 'point', 'mixed', 5.999980519851508, 'odds ratio (conditional on country)', 1.020620849211142, 0.8117004719402553, 44.35104756382022, 1.7555551838043022, 0.07916439024803411, 0.712479512232307, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 0.001'],
                ['officials', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, None, None, None, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', 'no country has both supported and unsupported cells with both outcomes'],
                ['officials', 'fdr', 'fisher', None, 'odds ratio (pooled, sample)', None, None, None, None, 1.0, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['officials', 'fdr', 'gee_exchangeable', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable working correlation within country', 'outcome constant: every cell or no cell improved'],
                ['officials', 'fdr', 'gee_exchangeable_bc', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable, small-sample corrected', 'outcome constant: every cell or no cell improved'],
                ['officials', 'fdr', 'gee_independence', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, independence working correlation within country', 'outcome constant: every cell or no cell improved'],
                ['officials', 'fdr', 'mixed', None, 'odds ratio (conditional on country)', None, None, None, None, None, None, None, 'logistic model with a country random intercept (maximum likelihood)', 'outcome constant: every cell or no cell improved'],
                ['officials', 'posterior', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, None, None, None, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', 'no country has both supported and unsupported cells with both outcomes'],
                ['officials', 'posterior', 'fisher', None, 'odds ratio (pooled, sample)', None, None, None, None, 1.0, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['officials', 'posterior', 'gee_exchangeable', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable working correlation within country', 'outcome constant: every cell or no cell improved'],
                ['officials', 'posterior', 'gee_exchangeable_bc', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable, small-sample corrected', 'outcome constant: every cell or no cell improved'],
                ['officials', 'posterior', 'gee_independence', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, independence working correlation within country', 'outcome constant: every cell or no cell improved'],
                ['officials', 'posterior', 'mixed', None, 'odds ratio (conditional on country)', None, None, None, None, None, None, None, 'logistic model with a country random intercept (maximum likelihood)', 'outcome constant: every cell or no cell improved'],
                ['officials', 'change', 'welch', 0.29422927385290426, 'difference in mean change (points)', 0.12337890059644106, 0.03486739402730876, 0.5535911536784998, 2.3847616766767614, 0.02839584390871727, 0.3186426510990811, None, 'Welch t test (ignores countries)', ''],
                ['officials', 'change', 'did', 0.3863272083502045, 'support effect on the change (points)', 0.1950425785513435, -0.23438532513352595, 1.007039741833935, 1.9807326749861789, 0.1419562960974492, 0.9775561097256857, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
                ['officials', 'change', 'ancova', 0.6327802725878158, 'support effect on the change (points)', 0.06550094894140229, 0.4243270196366733, 0.8412335255389582, 9.660627560585517, 0.002354783929234357, 0.03061219108004664, None, 'ANCOVA: difference in differences adjusted for the baseline', 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope 0.279'],
                ['private', 'point', 'permutation', 0.4166666666666667, 'difference in shares', None, None, None, None, 0.1172069825436409, 1.0, 0.016083338100861988, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'fdr', 'permutation', 0.0, 'difference in shares', None, None, None, None, 1.0, 1.0, 0.0, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'posterior', 'permutation', 0.125, 'difference in shares', None, None, None, None, 0.39900249376558605, 1.0, 0.024484663757872473, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'change', 'permutation', 0.4441621306981398, 'difference in mean change', None, None, None, None, 0.00997506234413965, 0.14962593516209477, 0.004968792729469145, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'point', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 4.166666666666667, 0.041226833337163815, 0.45349516670880197, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['private', 'point', 'fisher', 6.0, 'odds ratio (pooled, sample)', None, None, None, None, 0.16980233388902116, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['private', 'point', 'gee_exchangeable', 2.8595913673652973, 'odds ratio', 0.6772176032287982, 0.7583248857899173, 10.783323798997042, 1.551464006651161, 0.12079052656417087, 1.0, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation -0.150'],
                ['private', 'point', 'gee_exchangeable_bc', 2.8595913673652973, 'odds ratio', 1.5948036021042358, 0.017868818022957127, 457.627515026697, 0.658813871936173, 0.5570666426442613, 1.0, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation -0.150'],
                ['private', 'point', 'gee_independence', 5.999999999999996, 'odds ratio', 0.7288689868556623, 1.437927017950805, 25.036041155484845, 2.458273711106432, 0.01396067269660331, 0.17281735906532944, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['private', 'point', 'mixed', 6.000000076179034, 'odds ratio (conditional on country)', 1.0206231076934713, 0.8116995245639252, 44.35138844449728, 1.755554492562683, 0.07916450836928912, 0.7916450836928912, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 0.002'],
                ['private', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, None, None, None, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', 'no country has both supported and unsupported cells with both outcomes'],
                ['private', 'fdr', 'fisher', None, 'odds ratio (pooled, sample)', None, None, None, None, 1.0, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['private', 'fdr', 'gee_exchangeable', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable working correlation within country', 'outcome constant: every cell or no cell improved'],
                ['private', 'fdr', 'gee_exchangeable_bc', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable, small-sample corrected', 'outcome constant: every cell or no cell improved'],
                ['private', 'fdr', 'gee_independence', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, independence working correlation within country', 'outcome constant: every cell or no cell improved'],
                ['private', 'fdr', 'mixed', None, 'odds ratio (conditional on country)', None, None, None, None, None, None, None, 'logistic model with a country random intercept (maximum likelihood)', 'outcome constant: every cell or no cell improved'],
                ['private', 'posterior', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 1.5, 0.22067136191984693, 1.0, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '1 informative countries'],
                ['private', 'posterior', 'fisher', None, 'odds ratio (pooled, sample)', None, None, None, None, 0.4, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['private', 'posterior', 'gee_exchangeable', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable working correlation within country', 'separation: every unsupported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['private', 'posterior', 'gee_exchangeable_bc', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable, small-sample corrected', 'separation: every unsupported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['private', 'posterior', 'gee_independence', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, independence working correlation within country', 'separation: every unsupported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['private', 'posterior', 'mixed', None, 'odds ratio (conditional on country)', None, None, None, None, None, None, None, 'logistic model with a country random intercept (maximum likelihood)', 'separation: every unsupported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['private', 'change', 'welch', 0.4441621306981398, 'difference in mean change (points)', 0.14031994170444392, 0.1450411871313272, 0.7432830742649524, 3.1653528736042316, 0.006411184197090317, 0.10257894715344507, None, 'Welch t test (ignores countries)', ''],
                ['private', 'change', 'did', 0.545204540514122, 'support effect on the change (points)', 0.09781894897547608, 0.23390098776038265, 0.8565080932678615, 5.573608653787609, 0.011399617077967663, 0.15959463909154728, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
                ['private', 'change', 'ancova', 0.5462888564655497, 'support effect on the change (points)', 0.10359270037876546, 0.21661064989078543, 0.875967063040314, 5.273430024202058, 0.013293643005025342, 0.17281735906532944, None, 'ANCOVA: difference in differences adjusted for the baseline', 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope 0.005'],
             ]},
        'baseline': {'columns': ['group', 'quantity', 'estimate', 'method', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'note', 'p_permutation', 'mc_se', 'slope'],
             'data': [
                ['officials', 'baseline_supported', 5.404360476093494, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_unsupported', 6.40434902042628, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_difference', -0.8833244760452335, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.43514302314845105, -2.2681437823340045, 0.5014948302435376, -2.0299635500392323, 0.13534874708866895, 'country fixed effects, cluster-robust SE, t with 3 df', 0.04488778054862843, 0.0103528821718938, None],
                ['officials', 'support_effect_unadjusted', 0.3863272083502045, 'difference in differences (country fixed effects)', 0.1950425785513435, -0.23438532513352595, 1.007039741833935, 1.9807326749861789, 0.1419562960974492, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['officials', 'support_effect_adjusted', 0.6327802725878158, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.06550094894140229, 0.4243270196366733, 0.8412335255389582, 9.660627560585517, 0.002354783929234357, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope 0.279', None, None, 0.27900626657716504],
                ['officials', 'support_effect_change_model', 0.31, 'hierarchical change model, posterior adjusted for the baseline', 0.11, 0.1, 0.52, None, None, None, None, None, None],
                ['private', 'baseline_supported', 5.751255713237669, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_unsupported', 5.719754248029329, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_difference', -0.22799775884051066, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.17856105931025612, -0.7962587423099803, 0.34026322462895897, -1.276861594130423, 0.2915169226201097, 'country fixed effects, cluster-robust SE, t with 3 df', 0.7356608478802993, 0.022049034263224458, None],
                ['private', 'support_effect_unadjusted', 0.545204540514122, 'difference in differences (country fixed effects)', 0.09781894897547608, 0.23390098776038265, 0.8565080932678615, 5.573608653787609, 0.011399617077967663, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['private', 'support_effect_adjusted', 0.5462888564655497, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.10359270037876546, 0.21661064989078543, 0.875967063040314, 5.273430024202058, 0.013293643005025342, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope 0.005', None, None, 0.004755818464804676],
                ['private', 'support_effect_change_model', 0.12, 'hierarchical change model, posterior adjusted for the baseline', 0.09, -0.06, 0.3, None, None, None, None, None, None],
             ]},
        'cells': {'columns': ['country', 'group', 'factor', 'baseline', 'estimate', 'se', 'p_adjusted', 'supported', 'p_improved', 'improved_point', 'improved_fdr', 'improved_posterior'],
             'data': [
                ['C01', 'officials', 'audit', 5.29749448228584, 0.15258973965944142, 0.19794406237063494, 0.7052515087272336, True, 0.7475, True, False, False],
                ['C01', 'officials', 'automation', 4.60285919923362, 0.2536862777046225, 0.22552893592503448, 0.6081891687855369, True, 0.8675, True, False, False],
                ['C01', 'officials', 'leadership', 5.453923908463202, 0.13559803781375712, 0.12039589558365345, 0.6081891687855369, True, 0.8775, True, False, False],
                ['C01', 'officials', 'regulatory', 4.611169379941889, -0.23220681052243053, 0.22723107270995002, 0.6136590591565318, True, 0.17, False, False, False],
                ['C01', 'officials', 'transparency', 6.420469382241091, -0.10707806979492912, 0.35050895680504257, 0.8685607085922004, False, 0.3675, False, False, False],
                ['C02', 'officials', 'audit', 7.391974499726047, 0.0032037226286507625, 0.2051866939823811, 0.9875425793210597, False, 0.515, True, False, False],
                ['C02', 'officials', 'automation', 5.455216921803299, 0.49159171706081906, 0.40315284729534573, 0.567263788051496, True, 0.8975, True, False, False],
                ['C02', 'officials', 'leadership', 5.514756446155592, -0.18342051670868634, 0.1203035304065857, 0.42630808826842653, False, 0.06, False, False, False],
                ['C02', 'officials', 'regulatory', 4.863579012596859, -0.8073486269680672, 0.42481327297005245, 0.350754491031011, False, 0.0375, False, False, False],
                ['C02', 'officials', 'transparency', 6.0830974652437, 0.273026762776602, 0.3916731659518904, 0.722774187698689, True, 0.7675, True, False, False],
                ['C03', 'officials', 'audit', 6.503371332504875, -0.422530084837022, 0.3037716575304509, 0.48408076939433275, False, 0.1275, False, False, False],
                ['C03', 'officials', 'automation', 5.7010110011856625, 0.1821686844223201, 0.2948878977129008, 0.7331033464892277, True, 0.7275, True, False, False],
                ['C03', 'officials', 'leadership', 7.561986756268438, 0.284607089479299, 0.3532354874763946, 0.7052515087272336, False, 0.77, True, False, False],
                ['C03', 'officials', 'regulatory', 6.03011145059074, -0.1327804636829668, 0.4074345249076013, 0.8685607085922004, True, 0.35, False, False, False],
                ['C03', 'officials', 'transparency', 7.276867739825267, -0.37512943761309675, 0.22432004526425445, 0.40693061450749785, False, 0.0725, False, False, False],
                ['C04', 'officials', 'audit', 5.788398224903633, -0.23673206013536285, 0.22645706665892168, 0.6136162630181845, False, 0.13, False, False, False],
                ['C04', 'officials', 'automation', 6.694595213939204, -0.2572632913810255, 0.15352877481154403, 0.40693061450749785, False, 0.045, False, False, False],
                ['C04', 'officials', 'leadership', 5.319387752777077, -0.20802095647472635, 0.2404942193702464, 0.699193820872556, False, 0.1775, False, False, False],
                ['C04', 'officials', 'regulatory', 6.317294177890304, 0.07032844344488687, 0.19083498120704512, 0.8673644867997895, False, 0.6575, True, False, False],
                ['C04', 'officials', 'transparency', 7.1995077062869814, 0.39414341997347524, 0.4138574792002776, 0.6583125420787241, False, 0.79, True, False, False],
                ['C01', 'private', 'audit', 4.5233400622556355, -0.2067558775099334, 0.4305303218300586, 0.8289578478258117, True, 0.28, False, False, False],
                ['C01', 'private', 'automation', 5.5666510120879025, -0.06062421054940875, 0.38331818241201693, 0.923824166591201, True, 0.475, False, False, False],
                ['C01', 'private', 'leadership', 6.160226688273797, 0.5363552573420973, 0.3425486059126317, 0.42630808826842653, True, 0.92, True, False, False],
                ['C01', 'private', 'regulatory', 6.564543595494158, 0.1033234828386882, 0.3315102466888326, 0.8685607085922004, True, 0.615, True, False, False],
                ['C01', 'private', 'transparency', 5.971605695564649, -0.4856018090323521, 0.24424913344393845, 0.34517721876454843, False, 0.03, False, False, False],
                ['C02', 'private', 'audit', 6.240141226220183, 0.006314356337968868, 0.19049959433524674, 0.9875425793210597, False, 0.4925, True, False, False],
                ['C02', 'private', 'automation', 5.914537175187036, 0.688285398901869, 0.35011344917840437, 0.34517721876454843, True, 0.985, True, False, True],
                ['C02', 'private', 'leadership', 6.726078094699094, -0.27825586473251196, 0.41361033520815066, 0.722774187698689, False, 0.2325, False, False, False],
                ['C02', 'private', 'regulatory', 4.899352233315562, -0.07435481677705735, 0.40338911781175185, 0.9194319873890465, False, 0.455, False, False, False],
                ['C02', 'private', 'transparency', 5.050346980150164, 0.43016256974184375, 0.31603778118794346, 0.48573992493579143, True, 0.9275, True, False, False],
                ['C03', 'private', 'audit', 6.39078620688366, 0.26225704808697037, 0.28554654757856357, 0.6689930791204995, False, 0.7725, True, False, False],
                ['C03', 'private', 'automation', 6.323383318725847, 0.15918398416627855, 0.20229602382929104, 0.7052515087272336, True, 0.785, True, False, False],
                ['C03', 'private', 'leadership', 4.092546531826162, -0.2900360691637562, 0.44682113658609884, 0.722774187698689, False, 0.22, False, False, False],
                ['C03', 'private', 'regulatory', 5.907016873726818, 0.4214436382354244, 0.26635264927629243, 0.42630808826842653, True, 0.945, True, False, False],
                ['C03', 'private', 'transparency', 7.732173587390683, -0.2815946471710431, 0.20142678758271684, 0.48408076939433275, False, 0.1025, False, False, False],
                ['C04', 'private', 'audit', 5.663402239401798, -0.6601619289423533, 0.38436756488677615, 0.40693061450749785, False, 0.0425, False, False, False],
                ['C04', 'private', 'automation', 5.019518774443932, 0.25577833315514903, 0.24319831237869466, 0.6136162630181845, False, 0.8525, True, False, False],
                ['C04', 'private', 'leadership', 4.856610558570164, 0.16159952466504313, 0.2432603433312301, 0.722774187698689, False, 0.7275, True, False, False],
                ['C04', 'private', 'regulatory', 5.4850709823520285, -0.3979321486677425, 0.19572844171246767, 0.34517721876454843, False, 0.015, False, False, False],
                ['C04', 'private', 'transparency', 5.559764845684029, -0.44089618138570363, 0.12828575197658915, 0.01647988308978741, False, 0.0, False, False, False],
             ]},
        'permutation': {'columns': ['group', 'rule', 'observed', 'null_mean', 'p_value', 'mc_se', 'exact', 'n', 'arrangements'],
             'data': [
                ['officials', 'point', 0.4166666666666667, 0.08333333333333343, 0.1396508728179551, 0.017331222298148683, False, 400, 500.0],
                ['officials', 'fdr', 0.0, 0.0, 1.0, 0.0, False, 400, 500.0],
                ['officials', 'posterior', 0.0, 0.0, 1.0, 0.0, False, 400, 500.0],
                ['officials', 'change', 0.2942292738529043, 0.036677801619434514, 0.06483790523690773, 0.01231198108362313, False, 400, 500.0],
                ['officials', 'baseline', -0.9999885443327869, -0.41110556030262924, 0.04488778054862843, 0.0103528821718938, False, 400, 500.0],
                ['private', 'point', 0.4166666666666667, 0.0, 0.1172069825436409, 0.016083338100861988, False, 400, 500.0],
                ['private', 'fdr', 0.0, 0.0, 1.0, 0.0, False, 400, 500.0],
                ['private', 'posterior', 0.125, 6.938893903907228e-18, 0.39900249376558605, 0.024484663757872473, False, 400, 500.0],
                ['private', 'change', 0.4441621306981398, 0.0806924370220582, 0.00997506234413965, 0.004968792729469145, False, 400, 500.0],
                ['private', 'baseline', 0.03150146520834163, 0.18349997110201688, 0.7356608478802993, 0.022049034263224458, False, 400, 500.0],
             ]},
        'verdict': 'officials (point change > 0): supported 75% [41, 93] (6/8) vs unsupported 33% [14, 61] (4/12); difference 42 points [12, 62]; with no true change about 51% would qualify; the common drift alone (-0.15 points) would make about 31% of the supported cells qualify; within-country permutation p = 0.14 (Monte Carlo SE 0.017): not significant at 5%; CMH p = 0.10; GEE (bias-reduced) p = 0.03; mixed logistic p = 0.08; supported cells started 0.88 points lower (p = 0.14); support effect on the change +0.39 points [-0.23, +1.01] (p = 0.14); after baseline adjustment +0.63 points [+0.42, +0.84] (p = 0.002); change model support effect +0.31 [+0.10, +0.52]. Intervals 95%.\nprivate (point change > 0): supported 75% [36, 94] (6/8) vs unsupported 33% [14, 61] (4/12); difference 42 points [29, 67]; with no true change about 52% would qualify; the common drift alone (-0.19 points) would make about 27% of the supported cells qualify; within-country permutation p = 0.12 (Monte Carlo SE 0.016): not significant at 5%; CMH p = 0.04; GEE (bias-reduced) p = 0.56; mixed logistic p = 0.08; supported cells started 0.23 points lower (p = 0.29); support effect on the change +0.55 points [+0.23, +0.86] (p = 0.01); after baseline adjustment +0.55 points [+0.22, +0.88] (p = 0.01); change model support effect +0.12 [-0.06, +0.30]. Intervals 95%.',
        'rules': ['point', 'fdr', 'posterior'],
        'tests_run': ['permutation', 'cmh', 'fisher', 'gee', 'mixed', 'welch', 'did', 'ancova'],
        'significance': 0.05,
        'ci': 0.95,
        'n_perm': 400,
        'n_boot': 150,
        'seed': 17,
    },
    'cell_changes_exact': {
        'kind': 'ClaimAudit',
        'flags': [{'code': 'support_rows_without_change', 'message': '10 row(s) of the support table name countries with no change (surveyed once): they are not audited.', 'severity': 'info', 'where': {'n': 10}}, {'code': 'unlabelled_cells', 'message': '16 cell change(s) have no row in the support table and are not audited.', 'severity': 'info', 'where': {'n': 16}}, {'code': 'suppressed_cells', 'message': '20 audited cell(s) are suppressed for publication; they are used for inference and must not be shown individually.', 'severity': 'info', 'where': {'n': 20}}, {'code': 'uninformative_countries', 'message': 'officials: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'officials', 'n': 1}}, {'code': 'few_clusters', 'message': 'officials: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'officials', 'n': 4}}, {'code': 'uninformative_countries', 'message': 'private: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'private', 'n': 1}}, {'code': 'few_clusters', 'message': 'private: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'private', 'n': 4}}],
        'shares': {'columns': ['group', 'rule', 'set', 'n_cells', 'n_improved', 'share', 'ci_low', 'ci_high', 'deff', 'interval'],
             'data': [
                ['officials', 'point', 'supported', 8, 6, 0.75, 0.40927543031016883, 0.9285207872478909, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'point', 'unsupported', 12, 4, 0.3333333333333333, 0.13812009109121315, 0.6093779111272004, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'point', 'difference', 20, 10, 0.4166666666666667, 0.1111111111111111, 0.625, None, 'country bootstrap (percentile)'],
                ['officials', 'fdr', 'supported', 8, 0, 0.0, 0.0, 0.32440756488388023, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'fdr', 'unsupported', 12, 0, 0.0, 2.7755575615628914e-17, 0.24249400665524085, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'fdr', 'difference', 20, 0, 0.0, 0.0, 0.0, None, 'country bootstrap (percentile)'],
                ['private', 'point', 'supported', 8, 6, 0.75, 0.36482256073733854, 0.9400102953115788, 1.3333333333333333, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'point', 'unsupported', 12, 4, 0.3333333333333333, 0.13812009109121315, 0.6093779111272004, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'point', 'difference', 20, 10, 0.4166666666666667, 0.25, 0.6666666666666667, None, 'country bootstrap (percentile)'],
                ['private', 'fdr', 'supported', 8, 0, 0.0, 0.0, 0.32440756488388023, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'fdr', 'unsupported', 12, 0, 0.0, 2.7755575615628914e-17, 0.24249400665524085, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'fdr', 'difference', 20, 0, 0.0, 0.0, 0.0, None, 'country bootstrap (percentile)'],
             ]},
        'nulls': {'columns': ['group', 'rule', 'set', 'scenario', 'mu', 'tau', 'expected_share', 'ci_low', 'ci_high', 'observed_share', 'p_exceed'],
             'data': [
                ['officials', 'point', 'supported', 'no_change', 0.0, 0.0, 0.50875, 0.25, 0.875, 0.75, 0.18],
                ['officials', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.4749999999999999, 0.16666666666666666, 0.75, 0.3333333333333333, 0.87],
                ['officials', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.00375, 0.0, 0.06562499999999893, 0.0, 1.0],
                ['officials', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.0008333333333333333, 0.0, 0.0, 0.0, 1.0],
                ['officials', 'point', 'supported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.3025, 0.0, 0.625, 0.75, 0.0],
                ['officials', 'point', 'unsupported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.2775, 0.039583333333333526, 0.5833333333333334, 0.3333333333333333, 0.43],
                ['officials', 'fdr', 'supported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.00375, 0.0, 0.06562499999999893, 0.0, 1.0],
                ['officials', 'fdr', 'unsupported', 'common_drift', -0.15377003069888365, 0.15142318802090535, 0.0008333333333333333, 0.0, 0.0, 0.0, 1.0],
                ['private', 'point', 'supported', 'no_change', 0.0, 0.0, 0.47, 0.125, 0.75, 0.75, 0.09],
                ['private', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.48499999999999993, 0.16666666666666666, 0.75, 0.3333333333333333, 0.91],
                ['private', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.00375, 0.0, 0.06562499999999893, 0.0, 1.0],
                ['private', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.0008333333333333333, 0.0, 0.0, 0.0, 1.0],
                ['private', 'point', 'supported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.27625, 0.0, 0.5, 0.75, 0.0],
                ['private', 'point', 'unsupported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.25916666666666666, 0.0, 0.5437499999999993, 0.3333333333333333, 0.39],
                ['private', 'fdr', 'supported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.00125, 0.0, 0.0, 0.0, 1.0],
                ['private', 'fdr', 'unsupported', 'common_drift', -0.1852403503022824, 0.05748772624342747, 0.0008333333333333333, 0.0, 0.0, 0.0, 1.0],
             ]},
        'tests': {'columns': ['group', 'rule', 'test', 'estimate', 'scale', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'p_holm', 'mc_se', 'method', 'note'],
             'data': [
                ['officials', 'point', 'permutation', 0.4166666666666667, 'difference in shares', None, None, None, None, 0.144, 0.4258688882923476, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['officials', 'fdr', 'permutation', 0.0, 'difference in shares', None, None, None, None, 1.0, 1.0, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['officials', 'change', 'permutation', 0.2942292738529043, 'difference in mean change', None, None, None, None, 0.06, 0.3, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['officials', 'point', 'cmh', 8.999999999999998, 'odds ratio (Mantel-Haenszel)', None, 0.567783629690765, 142.65997778786868, 2.6666666666666674, 0.10247043485974994, 0.40988173943899975, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['officials', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, None, None, None, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', 'no country has both supported and unsupported cells with both outcomes'],
                ['officials', 'change', 'welch', 0.29422927385290426, 'difference in mean change (points)', 0.12337890059644106, 0.03486739402730876, 0.5535911536784998, 2.3847616766767614, 0.02839584390871727, 0.1703750634523036, None, 'Welch t test (ignores countries)', ''],
                ['officials', 'change', 'did', 0.3863272083502045, 'support effect on the change (points)', 0.1950425785513435, -0.23438532513352595, 1.007039741833935, 1.9807326749861789, 0.1419562960974492, 0.4258688882923476, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
                ['private', 'point', 'permutation', 0.4166666666666667, 'difference in shares', None, None, None, None, 0.112, 0.224, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['private', 'fdr', 'permutation', 0.0, 'difference in shares', None, None, None, None, 1.0, 1.0, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['private', 'change', 'permutation', 0.4441621306981398, 'difference in mean change', None, None, None, None, 0.008, 0.04, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['private', 'point', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 4.166666666666667, 0.041226833337163815, 0.12368050001149145, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['private', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, None, None, None, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', 'no country has both supported and unsupported cells with both outcomes'],
                ['private', 'change', 'welch', 0.4441621306981398, 'difference in mean change (points)', 0.14031994170444392, 0.1450411871313272, 0.7432830742649524, 3.1653528736042316, 0.006411184197090317, 0.0384671051825419, None, 'Welch t test (ignores countries)', ''],
                ['private', 'change', 'did', 0.545204540514122, 'support effect on the change (points)', 0.09781894897547608, 0.23390098776038265, 0.8565080932678615, 5.573608653787609, 0.011399617077967663, 0.04559846831187065, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
             ]},
        'baseline': {'columns': ['group', 'quantity', 'estimate', 'method', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'note', 'p_permutation', 'mc_se', 'slope'],
             'data': [
                ['officials', 'baseline_supported', 5.404360476093494, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_unsupported', 6.40434902042628, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_difference', -0.8833244760452335, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.43514302314845105, -2.2681437823340045, 0.5014948302435376, -2.0299635500392323, 0.13534874708866895, 'country fixed effects, cluster-robust SE, t with 3 df', 0.054, 0.0, None],
                ['officials', 'support_effect_unadjusted', 0.3863272083502045, 'difference in differences (country fixed effects)', 0.1950425785513435, -0.23438532513352595, 1.007039741833935, 1.9807326749861789, 0.1419562960974492, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['officials', 'support_effect_adjusted', 0.6327802725878158, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.06550094894140229, 0.4243270196366733, 0.8412335255389582, 9.660627560585517, 0.002354783929234357, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope 0.279', None, None, 0.27900626657716504],
                ['private', 'baseline_supported', 5.751255713237669, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_unsupported', 5.719754248029329, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_difference', -0.22799775884051066, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.17856105931025612, -0.7962587423099803, 0.34026322462895897, -1.276861594130423, 0.2915169226201097, 'country fixed effects, cluster-robust SE, t with 3 df', 0.728, 0.0, None],
                ['private', 'support_effect_unadjusted', 0.545204540514122, 'difference in differences (country fixed effects)', 0.09781894897547608, 0.23390098776038265, 0.8565080932678615, 5.573608653787609, 0.011399617077967663, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['private', 'support_effect_adjusted', 0.5462888564655497, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.10359270037876546, 0.21661064989078543, 0.875967063040314, 5.273430024202058, 0.013293643005025342, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope 0.005', None, None, 0.004755818464804676],
             ]},
        'cells': {'columns': ['country', 'group', 'factor', 'baseline', 'estimate', 'se', 'p_adjusted', 'supported', 'improved_point', 'improved_fdr'],
             'data': [
                ['C01', 'officials', 'audit', 5.29749448228584, 0.15258973965944142, 0.19794406237063494, 0.7052515087272336, True, True, False],
                ['C01', 'officials', 'automation', 4.60285919923362, 0.2536862777046225, 0.22552893592503448, 0.6081891687855369, True, True, False],
                ['C01', 'officials', 'leadership', 5.453923908463202, 0.13559803781375712, 0.12039589558365345, 0.6081891687855369, True, True, False],
                ['C01', 'officials', 'regulatory', 4.611169379941889, -0.23220681052243053, 0.22723107270995002, 0.6136590591565318, True, False, False],
                ['C01', 'officials', 'transparency', 6.420469382241091, -0.10707806979492912, 0.35050895680504257, 0.8685607085922004, False, False, False],
                ['C02', 'officials', 'audit', 7.391974499726047, 0.0032037226286507625, 0.2051866939823811, 0.9875425793210597, False, True, False],
                ['C02', 'officials', 'automation', 5.455216921803299, 0.49159171706081906, 0.40315284729534573, 0.567263788051496, True, True, False],
                ['C02', 'officials', 'leadership', 5.514756446155592, -0.18342051670868634, 0.1203035304065857, 0.42630808826842653, False, False, False],
                ['C02', 'officials', 'regulatory', 4.863579012596859, -0.8073486269680672, 0.42481327297005245, 0.350754491031011, False, False, False],
                ['C02', 'officials', 'transparency', 6.0830974652437, 0.273026762776602, 0.3916731659518904, 0.722774187698689, True, True, False],
                ['C03', 'officials', 'audit', 6.503371332504875, -0.422530084837022, 0.3037716575304509, 0.48408076939433275, False, False, False],
                ['C03', 'officials', 'automation', 5.7010110011856625, 0.1821686844223201, 0.2948878977129008, 0.7331033464892277, True, True, False],
                ['C03', 'officials', 'leadership', 7.561986756268438, 0.284607089479299, 0.3532354874763946, 0.7052515087272336, False, True, False],
                ['C03', 'officials', 'regulatory', 6.03011145059074, -0.1327804636829668, 0.4074345249076013, 0.8685607085922004, True, False, False],
                ['C03', 'officials', 'transparency', 7.276867739825267, -0.37512943761309675, 0.22432004526425445, 0.40693061450749785, False, False, False],
                ['C04', 'officials', 'audit', 5.788398224903633, -0.23673206013536285, 0.22645706665892168, 0.6136162630181845, False, False, False],
                ['C04', 'officials', 'automation', 6.694595213939204, -0.2572632913810255, 0.15352877481154403, 0.40693061450749785, False, False, False],
                ['C04', 'officials', 'leadership', 5.319387752777077, -0.20802095647472635, 0.2404942193702464, 0.699193820872556, False, False, False],
                ['C04', 'officials', 'regulatory', 6.317294177890304, 0.07032844344488687, 0.19083498120704512, 0.8673644867997895, False, True, False],
                ['C04', 'officials', 'transparency', 7.1995077062869814, 0.39414341997347524, 0.4138574792002776, 0.6583125420787241, False, True, False],
                ['C01', 'private', 'audit', 4.5233400622556355, -0.2067558775099334, 0.4305303218300586, 0.8289578478258117, True, False, False],
                ['C01', 'private', 'automation', 5.5666510120879025, -0.06062421054940875, 0.38331818241201693, 0.923824166591201, True, False, False],
                ['C01', 'private', 'leadership', 6.160226688273797, 0.5363552573420973, 0.3425486059126317, 0.42630808826842653, True, True, False],
                ['C01', 'private', 'regulatory', 6.564543595494158, 0.1033234828386882, 0.3315102466888326, 0.8685607085922004, True, True, False],
                ['C01', 'private', 'transparency', 5.971605695564649, -0.4856018090323521, 0.24424913344393845, 0.34517721876454843, False, False, False],
                ['C02', 'private', 'audit', 6.240141226220183, 0.006314356337968868, 0.19049959433524674, 0.9875425793210597, False, True, False],
                ['C02', 'private', 'automation', 5.914537175187036, 0.688285398901869, 0.35011344917840437, 0.34517721876454843, True, True, False],
                ['C02', 'private', 'leadership', 6.726078094699094, -0.27825586473251196, 0.41361033520815066, 0.722774187698689, False, False, False],
                ['C02', 'private', 'regulatory', 4.899352233315562, -0.07435481677705735, 0.40338911781175185, 0.9194319873890465, False, False, False],
                ['C02', 'private', 'transparency', 5.050346980150164, 0.43016256974184375, 0.31603778118794346, 0.48573992493579143, True, True, False],
                ['C03', 'private', 'audit', 6.39078620688366, 0.26225704808697037, 0.28554654757856357, 0.6689930791204995, False, True, False],
                ['C03', 'private', 'automation', 6.323383318725847, 0.15918398416627855, 0.20229602382929104, 0.7052515087272336, True, True, False],
                ['C03', 'private', 'leadership', 4.092546531826162, -0.2900360691637562, 0.44682113658609884, 0.722774187698689, False, False, False],
                ['C03', 'private', 'regulatory', 5.907016873726818, 0.4214436382354244, 0.26635264927629243, 0.42630808826842653, True, True, False],
                ['C03', 'private', 'transparency', 7.732173587390683, -0.2815946471710431, 0.20142678758271684, 0.48408076939433275, False, False, False],
                ['C04', 'private', 'audit', 5.663402239401798, -0.6601619289423533, 0.38436756488677615, 0.40693061450749785, False, False, False],
                ['C04', 'private', 'automation', 5.019518774443932, 0.25577833315514903, 0.24319831237869466, 0.6136162630181845, False, True, False],
                ['C04', 'private', 'leadership', 4.856610558570164, 0.16159952466504313, 0.2432603433312301, 0.722774187698689, False, True, False],
                ['C04', 'private', 'regulatory', 5.4850709823520285, -0.3979321486677425, 0.19572844171246767, 0.34517721876454843, False, False, False],
                ['C04', 'private', 'transparency', 5.559764845684029, -0.44089618138570363, 0.12828575197658915, 0.01647988308978741, False, False, False],
             ]},
        'permutation': {'columns': ['group', 'rule', 'observed', 'null_mean', 'p_value', 'mc_se', 'exact', 'n', 'arrangements'],
             'data': [
                ['officials', 'point', 0.4166666666666667, 0.08333333333333343, 0.144, 0.0, True, 500, 500.0],
                ['officials', 'fdr', 0.0, 0.0, 1.0, 0.0, True, 500, 500.0],
                ['officials', 'change', 0.2942292738529043, 0.036677801619434514, 0.06, 0.0, True, 500, 500.0],
                ['officials', 'baseline', -0.9999885443327869, -0.41110556030262924, 0.054, 0.0, True, 500, 500.0],
                ['private', 'point', 0.4166666666666667, 0.0, 0.112, 0.0, True, 500, 500.0],
                ['private', 'fdr', 0.0, 0.0, 1.0, 0.0, True, 500, 500.0],
                ['private', 'change', 0.4441621306981398, 0.0806924370220582, 0.008, 0.0, True, 500, 500.0],
                ['private', 'baseline', 0.03150146520834163, 0.18349997110201688, 0.728, 0.0, True, 500, 500.0],
             ]},
        'verdict': 'officials (point change > 0): supported 75% [41, 93] (6/8) vs unsupported 33% [14, 61] (4/12); difference 42 points [11, 62]; with no true change about 51% would qualify; the common drift alone (-0.15 points) would make about 30% of the supported cells qualify; within-country permutation p = 0.14: not significant at 5%; CMH p = 0.10; supported cells started 0.88 points lower (p = 0.14); support effect on the change +0.39 points [-0.23, +1.01] (p = 0.14); after baseline adjustment +0.63 points [+0.42, +0.84] (p = 0.002). Intervals 95%.\nprivate (point change > 0): supported 75% [36, 94] (6/8) vs unsupported 33% [14, 61] (4/12); difference 42 points [25, 67]; with no true change about 47% would qualify; the common drift alone (-0.19 points) would make about 28% of the supported cells qualify; within-country permutation p = 0.11: not significant at 5%; CMH p = 0.04; supported cells started 0.23 points lower (p = 0.29); support effect on the change +0.55 points [+0.23, +0.86] (p = 0.01); after baseline adjustment +0.55 points [+0.22, +0.88] (p = 0.01). Intervals 95%.',
        'rules': ['point', 'fdr'],
        'tests_run': ['permutation', 'cmh', 'welch', 'did'],
        'significance': 0.05,
        'ci': 0.95,
        'n_perm': 5000,
        'n_boot': 120,
        'seed': 18,
    },
    'aggregates_with_countries': {
        'kind': 'AggregateComparison',
        'flags': [],
        'supported_improved': 68,
        'supported_total': 80,
        'unsupported_improved': 66,
        'unsupported_total': 90,
        'n_countries': 17,
        'supported_share': 0.85,
        'unsupported_share': 0.7333333333333333,
        'difference': 0.1166666666666667,
        'ci_low': -0.019015626028205695,
        'ci_high': 0.24531658447068988,
        'z': 1.699165864416408,
        'p_value': 0.08928793615960258,
        'p_fisher': 0.08975770136122312,
        'table': {'columns': ['set', 'improved', 'total', 'share', 'ci_low', 'ci_high', 'deff', 'n_eff', 'interval', 'z', 'p_value', 'p_fisher'],
             'data': [
                ['supported', 68, 80, 0.85, 0.7461745117115479, 0.9161299454405991, 1.1852941176470588, 67.4937965260546, 'Wilson on the effective size (design effect at icc)', None, None, None],
                ['unsupported', 66, 90, 0.7333333333333333, 0.6229810263025997, 0.8206829328321377, 1.2147058823529413, 74.09200968523001, 'Wilson on the effective size (design effect at icc)', None, None, None],
                ['difference', 134, 170, 0.1166666666666667, -0.019015626028205695, 0.24531658447068988, None, None, 'Newcombe (hybrid Wilson)', 1.699165864416408, 0.08928793615960258, 0.08975770136122312],
             ]},
        'icc': 0.05,
        'significance': 0.05,
        'ci': 0.95,
        'sensitivity': {'columns': ['icc', 'deff_supported', 'deff_unsupported', 'n_eff_supported', 'n_eff_unsupported', 'z', 'p_value', 'ci_low', 'ci_high', 'significant'],
             'data': [
                [0.0, 1.0, 1.0, 80.0, 90.0, 1.8583771161430913, 0.06311547963611952, -0.007146206148567744, 0.2339610263135807, False],
                [0.02, 1.0741176470588236, 1.0858823529411765, 74.47973713033953, 82.88190682556879, 1.7894902421924965, 0.07353589756934961, -0.012024428626559669, 0.238634971301385, False],
                [0.05, 1.1852941176470588, 1.2147058823529413, 67.4937965260546, 74.09200968523001, 1.699165864416408, 0.08928793615960258, -0.019015626028205695, 0.24531658447068988, False],
                [0.1, 1.3705882352941177, 1.4294117647058824, 58.36909871244635, 62.96296296296296, 1.574922645920826, 0.11527430074496138, -0.02993293271748071, 0.2557104744279799, False],
                [0.2, 1.7411764705882353, 1.8588235294117648, 45.945945945945944, 48.41772151898734, 1.3910805916907, 0.16420098952558004, -0.049636001927217566, 0.2743437904119145, False],
                [0.3, 2.111764705882353, 2.288235294117647, 37.88300835654596, 39.33161953727507, 1.2595118927211024, 0.20784549734828583, -0.06722895653198002, 0.2908432590115015, False],
                [0.5, 2.8529411764705883, 3.1470588235294117, 28.04123711340206, 28.598130841121495, 1.0798534558314423, 0.28020744248532803, -0.09803840055537352, 0.3194183254322559, False],
             ]},
        'assumptions': ['Counts as given: 68/80 supported and 66/90 unsupported cells improved.', "'Improved' is whatever rule produced the published counts (presumably a point change > 0); with no true change about half the cells would pass that rule, so the shares say little on their own.", 'Cells are exchangeable within each set; no baseline, drift or cell-level uncertainty is known, so regression to the mean and the common drift cannot be assessed from counts.', '17 countries with 4.71 supported and 5.29 unsupported cells each on average; design effect 1 + (m - 1) x icc per set; icc = 0.05 assumed.', 'The adjustment ignores the positive covariance of the two shares within a country (conservative: the true p-value is smaller under this model).'],
        'verdict': "officials: supported 85% [75, 92] vs unsupported 73% [62, 82]; difference 12 points [-2, 25], p = 0.09 at icc = 0.05: not significant at 5% (Fisher exact ignoring countries p = 0.09); not significant at any icc from 0 to 0.5. Assumed: Counts as given: 68/80 supported and 66/90 unsupported cells improved. 'Improved' is whatever rule produced the published counts (presumably a point change > 0); with no true change about half the cells would pass that rule, so the shares say little on their own. Cells are exchangeable within each set; no baseline, drift or cell-level uncertainty is known, so regression to the mean and the common drift cannot be assessed from counts. 17 countries with 4.71 supported and 5.29 unsupported cells each on average; design effect 1 + (m - 1) x icc per set; icc = 0.05 assumed. The adjustment ignores the positive covariance of the two shares within a country (conservative: the true p-value is smaller under this model).",
    },
    'aggregates_without_layout': {
        'kind': 'AggregateComparison',
        'flags': [],
        'supported_improved': 9,
        'supported_total': 12,
        'unsupported_improved': 20,
        'unsupported_total': 40,
        'n_countries': None,
        'supported_share': 0.75,
        'unsupported_share': 0.5,
        'difference': 0.25,
        'ci_low': -0.018640472568086264,
        'ci_high': 0.44226086147889143,
        'z': 1.5293235709645119,
        'p_value': 0.1261842490752746,
        'p_fisher': 0.18794662601406287,
        'table': {'columns': ['set', 'improved', 'total', 'share', 'ci_low', 'ci_high', 'deff', 'n_eff', 'interval', 'z', 'p_value', 'p_fisher'],
             'data': [
                ['supported', 9, 12, 0.75, 0.5126619681967507, 0.8953474344295108, 1.0, 12.0, 'Wilson on the effective size', None, None, None],
                ['unsupported', 20, 40, 0.5, 0.3741494451288969, 0.6258505548711031, 1.0, 40.0, 'Wilson on the effective size', None, None, None],
                ['difference', 29, 52, 0.25, -0.018640472568086264, 0.44226086147889143, None, None, 'Newcombe (hybrid Wilson)', 1.5293235709645119, 0.1261842490752746, 0.18794662601406287],
             ]},
        'icc': 0.0,
        'significance': 0.1,
        'ci': 0.9,
        'sensitivity': {'columns': ['icc', 'deff_supported', 'deff_unsupported', 'n_eff_supported', 'n_eff_unsupported', 'z', 'p_value', 'ci_low', 'ci_high', 'significant'],
             'data': [
             ]},
        'assumptions': ['Counts as given: 9/12 supported and 20/40 unsupported cells improved.', "'Improved' is whatever rule produced the published counts (presumably a point change > 0); with no true change about half the cells would pass that rule, so the shares say little on their own.", 'Cells are exchangeable within each set; no baseline, drift or cell-level uncertainty is known, so regression to the mean and the common drift cannot be assessed from counts.', 'No country layout given: cells are treated as independent (icc = 0).'],
        'verdict': "supported 75% [51, 90] vs unsupported 50% [37, 63]; difference 25 points [-2, 44], p = 0.13 at icc = 0: not significant at 10% (Fisher exact ignoring countries p = 0.19). Assumed: Counts as given: 9/12 supported and 20/40 unsupported cells improved. 'Improved' is whatever rule produced the published counts (presumably a point change > 0); with no true change about half the cells would pass that rule, so the shares say little on their own. Cells are exchangeable within each set; no baseline, drift or cell-level uncertainty is known, so regression to the mean and the common drift cannot be assessed from counts. No country layout given: cells are treated as independent (icc = 0).",
    },
}
