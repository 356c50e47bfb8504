"""Regression pin of whole ``cs.claims.audit`` and ``from_aggregates`` results (every number of ``to_dict()``).

The audits below run every branch of :func:`cips_stats.claims.audit` on a small simulated survey: a
change model (a deterministic stand-in exposing the attributes ``audit`` reads: ``cells``,
``change_draws()``, ``prob_improved``, ``support_effect``, ``reliable``, ``baseline``) with all three
rules and all tests by Monte Carlo permutations, and the cell changes alone with exact enumeration of
the within-country arrangements; ``from_aggregates`` runs with and without a country layout.  Countries
surveyed once, suppressed cells, cells without a support row and countries with only unsupported cells
are all present.  ``EXPECTED`` was computed with the code before its long functions were split into
helpers (claims.py of commit 88cc056); the refactored
code must reproduce every number to 1e-12 (relative, or absolute near 0) and every string exactly.
Regenerate (only after an intended change of the numbers) with
``python tests/test_claims_regression.py > /tmp/expected.py`` and paste the printed ``EXPECTED``.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd

import cips_stats as cs
from cips_stats import claims

FACTORS = ["leadership", "regulatory", "transparency", "automation", "audit"]


def _inputs():
    sim = cs.simulate(seed=5, n_countries=6, n_repeat=4, n_officials=40, n_private=30, support_effect=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)        # a deliberately small survey (small cells)
        ind = cs.estimate.indicators(sim.data, n_boot=60, seed=5)
        cc = cs.change.cell_changes(ind)
    sup = sim.truth["supported"]
    sup = sup[sup["factor"].isin(FACTORS)].reset_index(drop=True)
    sup.loc[sup["country"] == "C04", "supported"] = False     # a country with only unsupported cells
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
        'flags': [{'code': 'change_model_unreliable', 'message': "The change model failed its convergence gates (R-hat, effective sample size or divergences): the posterior rule and the model's support effect are not reliable.", 'severity': 'warning', 'where': {}}, {'code': 'support_rows_without_change', 'message': '10 row(s) of the support table name countries with no change (surveyed once): they are not audited.', 'severity': 'info', 'where': {'n': 10}}, {'code': 'unlabelled_cells', 'message': '48 cell change(s) have no row in the support table and are not audited.', 'severity': 'info', 'where': {'n': 48}}, {'code': 'suppressed_cells', 'message': '25 audited cell(s) are suppressed for publication; they are used for inference and must not be shown individually.', 'severity': 'info', 'where': {'n': 25}}, {'code': 'uninformative_countries', 'message': 'officials: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'officials', 'n': 1}}, {'code': 'few_clusters', 'message': 'officials: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'officials', 'n': 4}}, {'code': 'uninformative_countries', 'message': 'private: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'private', 'n': 1}}, {'code': 'few_clusters', 'message': 'private: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'private', 'n': 4}}],
        'shares': {'columns': ['group', 'rule', 'set', 'n_cells', 'n_improved', 'share', 'ci_low', 'ci_high', 'deff', 'interval', 'true_share', 'true_ci_low', 'true_ci_high'],
             'data': [
                ['officials', 'point', 'supported', 5, 5, 1.0, 0.5655175352168251, 1.0, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'point', 'unsupported', 15, 7, 0.4666666666666667, 0.2065159849344676, 0.7463033311399487, 1.612698412698413, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'point', 'difference', 20, 12, 0.5333333333333333, 0.16666666666666663, 0.75, None, 'country bootstrap (percentile)', None, None, None],
                ['officials', 'fdr', 'supported', 5, 2, 0.4, 0.10779423385697162, 0.7862625541052739, 1.1555555555555557, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'fdr', 'unsupported', 15, 1, 0.06666666666666667, 0.011532265140245579, 0.30425703628379547, 1.0412698412698418, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['officials', 'fdr', 'difference', 20, 3, 0.33333333333333337, 0.0, 0.8888888888888888, None, 'country bootstrap (percentile)', None, None, None],
                ['officials', 'posterior', 'supported', 5, 3, 0.6, 0.2307242812760128, 0.882379225767352, 1.0, 'Wilson on the effective number of cells (country design effect)', 0.8615, 0.6, 1.0],
                ['officials', 'posterior', 'unsupported', 15, 1, 0.06666666666666667, 0.011532265140245579, 0.30425703628379547, 1.0412698412698418, 'Wilson on the effective number of cells (country design effect)', 0.4746666666666667, 0.26666666666666666, 0.6666666666666666],
                ['officials', 'posterior', 'difference', 20, 4, 0.5333333333333333, 0.49450549450549447, 0.8888888888888888, None, 'country bootstrap (percentile)', 0.38683333333333336, 0.06666666666666665, 0.6666666666666667],
                ['private', 'point', 'supported', 5, 4, 0.8, 0.37553462976252533, 0.9637758913675698, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'point', 'unsupported', 15, 6, 0.4, 0.1982449614134158, 0.6425316987937539, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'point', 'difference', 20, 10, 0.4, -0.0714285714285714, 0.7333333333333334, None, 'country bootstrap (percentile)', None, None, None],
                ['private', 'fdr', 'supported', 5, 2, 0.4, 0.11762077423264783, 0.769275718723987, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'fdr', 'unsupported', 15, 1, 0.06666666666666667, 0.011866895493268553, 0.2981652987378003, 1.0, 'Wilson on the effective number of cells (country design effect)', None, None, None],
                ['private', 'fdr', 'difference', 20, 3, 0.33333333333333337, -0.1111111111111111, 0.5, None, 'country bootstrap (percentile)', None, None, None],
                ['private', 'posterior', 'supported', 5, 3, 0.6, 0.2307242812760128, 0.882379225767352, 1.0, 'Wilson on the effective number of cells (country design effect)', 0.8684999999999999, 0.6, 1.0],
                ['private', 'posterior', 'unsupported', 15, 1, 0.06666666666666667, 0.011866895493268553, 0.2981652987378003, 1.0, 'Wilson on the effective number of cells (country design effect)', 0.3903333333333333, 0.2, 0.6],
                ['private', 'posterior', 'difference', 20, 4, 0.5333333333333333, 0.3635416666666668, 0.8888888888888888, None, 'country bootstrap (percentile)', 0.4781666666666667, 0.19999999999999996, 0.7333333333333334],
             ]},
        'nulls': {'columns': ['group', 'rule', 'set', 'scenario', 'mu', 'tau', 'expected_share', 'ci_low', 'ci_high', 'observed_share', 'p_exceed'],
             'data': [
                ['officials', 'point', 'supported', 'no_change', 0.0, 0.0, 0.47866666666666663, 0.0, 0.8, 1.0, 0.006666666666666667],
                ['officials', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.5168888888888888, 0.2, 0.7333333333333333, 0.4666666666666667, 0.7333333333333333],
                ['officials', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.004000000000000001, 0.0, 0.0, 0.4, 0.0],
                ['officials', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.0013333333333333335, 0.0, 0.0, 0.06666666666666667, 0.02],
                ['officials', 'posterior', 'supported', 'no_change', 0.0, 0.0, 0.061333333333333344, 0.0, 0.25500000000000117, 0.6, 0.0],
                ['officials', 'posterior', 'unsupported', 'no_change', 0.0, 0.0, 0.05466666666666666, 0.0, 0.2, 0.06666666666666667, 0.56],
                ['officials', 'point', 'supported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.43866666666666676, 0.0, 0.8, 1.0, 0.0],
                ['officials', 'point', 'unsupported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.4804444444444444, 0.2, 0.7333333333333333, 0.4666666666666667, 0.6333333333333333],
                ['officials', 'fdr', 'supported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.07066666666666667, 0.0, 0.4, 0.4, 0.08],
                ['officials', 'fdr', 'unsupported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.04044444444444445, 0.0, 0.15166666666666706, 0.06666666666666667, 0.44],
                ['officials', 'posterior', 'supported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.14666666666666664, 0.0, 0.4, 0.6, 0.013333333333333334],
                ['officials', 'posterior', 'unsupported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.1271111111111111, 0.0, 0.3333333333333333, 0.06666666666666667, 0.8666666666666667],
                ['private', 'point', 'supported', 'no_change', 0.0, 0.0, 0.5053333333333334, 0.14500000000000066, 0.8550000000000012, 0.8, 0.2],
                ['private', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.5022222222222222, 0.24833333333333354, 0.7333333333333333, 0.4, 0.8466666666666667],
                ['private', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0],
                ['private', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.0, 0.0, 0.0, 0.06666666666666667, 0.0],
                ['private', 'posterior', 'supported', 'no_change', 0.0, 0.0, 0.04000000000000001, 0.0, 0.2, 0.6, 0.0],
                ['private', 'posterior', 'unsupported', 'no_change', 0.0, 0.0, 0.04533333333333334, 0.0, 0.13333333333333333, 0.06666666666666667, 0.5],
                ['private', 'point', 'supported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.388, 0.0, 0.8, 0.8, 0.09333333333333334],
                ['private', 'point', 'unsupported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.3973333333333333, 0.1816666666666669, 0.6, 0.4, 0.6066666666666667],
                ['private', 'fdr', 'supported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.004000000000000001, 0.0, 0.0, 0.4, 0.0],
                ['private', 'fdr', 'unsupported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.005333333333333334, 0.0, 0.06666666666666667, 0.06666666666666667, 0.08],
                ['private', 'posterior', 'supported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.05866666666666667, 0.0, 0.2, 0.6, 0.0],
                ['private', 'posterior', 'unsupported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.059555555555555556, 0.0, 0.2, 0.06666666666666667, 0.6],
             ]},
        'tests': {'columns': ['group', 'rule', 'test', 'estimate', 'scale', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'p_holm', 'mc_se', 'method', 'note'],
             'data': [
                ['officials', 'point', 'permutation', 0.5333333333333333, 'difference in shares', None, None, None, None, 0.26433915211970077, 0.7280115021508882, 0.022049034263224458, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'fdr', 'permutation', 0.33333333333333337, 'difference in shares', None, None, None, None, 0.14962593516209477, 0.7280115021508882, 0.017835218998442617, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'posterior', 'permutation', 0.5333333333333333, 'difference in shares', None, None, None, None, 0.06234413965087282, 0.49875311720698257, 0.012088977200539475, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'change', 'permutation', 0.8368710915338649, 'difference in mean change', None, None, None, None, 0.04987531172069826, 0.49875311720698257, 0.010884365507628526, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['officials', 'point', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 2.400000000000001, 0.12133525035848136, 0.7280115021508882, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '2 informative countries'],
                ['officials', 'point', 'fisher', None, 'odds ratio (pooled, sample)', None, None, None, None, 0.05469556243550051, 0.49875311720698257, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['officials', 'point', 'gee_exchangeable', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable working correlation within country', 'separation: every supported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['officials', 'point', 'gee_exchangeable_bc', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, exchangeable, small-sample corrected', 'separation: every supported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['officials', 'point', 'gee_independence', None, 'odds ratio', None, None, None, None, None, None, None, 'GEE logistic, independence working correlation within country', 'separation: every supported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['officials', 'point', 'mixed', None, 'odds ratio (conditional on country)', None, None, None, None, None, None, None, 'logistic model with a country random intercept (maximum likelihood)', 'separation: every supported cell has the same outcome, so the odds ratio is not finite (the permutation and CMH tests still apply)'],
                ['officials', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 3.0, 0.08326451666355039, 0.5828516166448527, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '2 informative countries'],
                ['officials', 'fdr', 'fisher', 9.333333333333334, 'odds ratio (pooled, sample)', None, None, None, None, 0.14035087719298245, 0.7280115021508882, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['officials', 'fdr', 'gee_exchangeable', 9.828590708695177, 'odds ratio', 0.7083694248311031, 2.452031824788769, 39.39638725014138, 3.2261352303107134, 0.0012547405744453715, 0.02384007091446206, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation 0.062'],
                ['officials', 'fdr', 'gee_exchangeable_bc', 9.828590708695177, 'odds ratio', 1.1418606532143365, 0.25959964556938847, 372.1160524205287, 2.0013786718103073, 0.139139967794066, 0.7280115021508882, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation 0.062'],
                ['officials', 'fdr', 'gee_independence', 9.333333333333329, 'odds ratio', 0.7476342127670272, 2.1560030999572706, 40.40398231006137, 2.9875468288703244, 0.0028122620740014363, 0.050620717332025854, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['officials', 'fdr', 'mixed', 17.020715058921333, 'odds ratio (conditional on country)', 2.0432553274168295, 0.31028137936155287, 933.6839410508597, 1.3872133830228228, 0.16537670575966246, 0.7280115021508882, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 1.212'],
                ['officials', 'posterior', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 4.499999999999999, 0.03389485352468935, 0.469718697008046, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['officials', 'posterior', 'fisher', 21.0, 'odds ratio (pooled, sample)', None, None, None, None, 0.03199174406604747, 0.469718697008046, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['officials', 'posterior', 'gee_exchangeable', 20.77503640734173, 'odds ratio', 0.5911096570114587, 6.522113334925642, 66.17519744944681, 5.132300000878612, 2.862228010971336e-07, 5.724456021942672e-06, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation -0.014'],
                ['officials', 'posterior', 'gee_exchangeable_bc', 20.77503640734173, 'odds ratio', 0.8686991598169816, 1.3088693352158682, 329.7518905163986, 3.4922931131168804, 0.039701061208008336, 0.469718697008046, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation -0.014'],
                ['officials', 'posterior', 'gee_independence', 21.00000000000001, 'odds ratio', 0.5802884574739974, 6.734058179931889, 65.48799969002658, 5.2465672865117225, 1.5495927057944804e-07, 3.2541446821684088e-06, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['officials', 'posterior', 'mixed', 20.99995120130059, 'odds ratio (conditional on country)', 1.3801305826217325, 1.404264780710356, 314.0418790777652, 2.2059652559757654, 0.027386432492787875, 0.438182919884606, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 0.000'],
                ['officials', 'change', 'welch', 0.8368710915338649, 'difference in mean change (points)', 0.30702334500034273, 0.14231968527593086, 1.531422497791799, 2.7257571945642463, 0.023389573054697133, 0.39762274192985125, None, 'Welch t test (ignores countries)', ''],
                ['officials', 'change', 'did', 0.7057033319086807, 'support effect on the change (points)', 0.18415252380631061, 0.1196478129126175, 1.291758850904744, 3.832167582188181, 0.0313145798005364, 0.469718697008046, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
                ['officials', 'change', 'ancova', 1.1493231474213979, 'support effect on the change (points)', 0.3221824855191492, 0.12399468675385994, 2.1746516080889355, 3.5673048631722932, 0.037624080154342154, 0.469718697008046, None, 'ANCOVA: difference in differences adjusted for the baseline', 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope -0.770'],
                ['private', 'point', 'permutation', 0.4, 'difference in shares', None, None, None, None, 0.33915211970074816, 1.0, 0.02367107725702601, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'fdr', 'permutation', 0.33333333333333337, 'difference in shares', None, None, None, None, 0.1546134663341646, 1.0, 0.018076790531113284, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'posterior', 'permutation', 0.5333333333333333, 'difference in shares', None, None, None, None, 0.02493765586034913, 0.47381546134663344, 0.007796757207413209, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'change', 'permutation', 1.437838321010897, 'difference in mean change', None, None, None, None, 0.007481296758104738, 0.16458852867830423, 0.00430851684368354, 'within-country permutation (Monte Carlo, 400 arrangements)', '500 distinct arrangements'],
                ['private', 'point', 'cmh', 4.0, 'odds ratio (Mantel-Haenszel)', None, 0.386426446117507, 41.40503363772006, 1.5000000000000004, 0.2206713619198467, 1.0, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['private', 'point', 'fisher', 6.0, 'odds ratio (pooled, sample)', None, None, None, None, 0.30340557275541796, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['private', 'point', 'gee_exchangeable', 8.844564676362586, 'odds ratio', 0.7318111696103072, 2.1074518708736627, 37.11891379134149, 2.9786414856766545, 0.0028952932462672594, 0.06948703791041422, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation -0.228'],
                ['private', 'point', 'gee_exchangeable_bc', 8.844564676362586, 'odds ratio', 1.2283978857410411, 0.1773717966523636, 441.03023023259436, 1.7745090046030416, 0.17407547883661453, 1.0, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation -0.228'],
                ['private', 'point', 'gee_independence', 5.999999999999998, 'odds ratio', 1.1947673982003648, 0.5769835045713282, 62.39346483006703, 1.49967221396141, 0.13369933153261068, 1.0, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['private', 'point', 'mixed', 6.000039207022449, 'odds ratio (conditional on country)', 1.236035045060462, 0.5321562295214877, 67.65019084372656, 1.4496077687043256, 0.14716792838944256, 1.0, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 0.000'],
                ['private', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 3.0, 0.08326451666355039, 1.0, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '2 informative countries'],
                ['private', 'fdr', 'fisher', 9.333333333333334, 'odds ratio (pooled, sample)', None, None, None, None, 0.14035087719298245, 1.0, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['private', 'fdr', 'gee_exchangeable', 6.002426506367514, 'odds ratio', 1.0745133527338255, 0.7306332412709273, 49.31218828980613, 1.6678841641580922, 0.095338723863663, 1.0, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation -0.124'],
                ['private', 'fdr', 'gee_exchangeable_bc', 6.002426506367514, 'odds ratio', 1.7410717049173068, 0.02354825852241178, 1530.0122482540694, 1.0293452016591618, 0.379045225698301, 1.0, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation -0.124'],
                ['private', 'fdr', 'gee_independence', 9.333333333333334, 'odds ratio', 0.8959470343917514, 1.6121493715506063, 54.034143887874, 2.492995830968351, 0.012667033354532758, 0.2608059436825987, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['private', 'fdr', 'mixed', 9.333245650159368, 'odds ratio (conditional on country)', 1.380130072257132, 0.6241138915438289, 139.57304195031114, 1.6183857389501501, 0.1055794934505658, 1.0, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 0.000'],
                ['private', 'posterior', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 6.25, 0.012419330651552318, 0.2608059436825987, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['private', 'posterior', 'fisher', 21.0, 'odds ratio (pooled, sample)', None, None, None, None, 0.03199174406604747, 0.479876160990712, None, 'Fisher exact, pooled 2x2 (ignores countries)', ''],
                ['private', 'posterior', 'gee_exchangeable', 2.8500535009758043, 'odds ratio', 0.7863231981501471, 0.6102861202426294, 13.309830731846045, 1.3319431104671378, 0.18287888332542357, 1.0, None, 'GEE logistic, exchangeable working correlation within country', 'sandwich SE, normal reference; within-country correlation -0.220'],
                ['private', 'posterior', 'gee_exchangeable_bc', 2.8500535009758043, 'odds ratio', 1.7323884876814666, 0.011494397047952987, 706.6751674348168, 0.6045628759506902, 0.5881316266534861, 1.0, None, 'GEE logistic, exchangeable, small-sample corrected', 'Mancl-DeRouen bias-reduced sandwich SE, t reference with 3 df; within-country correlation -0.220'],
                ['private', 'posterior', 'gee_independence', 21.0, 'odds ratio', 0.9476070829586856, 3.2780432807283715, 134.5314757107207, 3.2128531882830598, 0.0013142344979286678, 0.03285586244821669, None, 'GEE logistic, independence working correlation within country', 'sandwich SE, normal reference'],
                ['private', 'posterior', 'mixed', 20.99967759902126, 'odds ratio (conditional on country)', 1.3801275549707617, 1.4042548178967624, 314.03592399513894, 2.2059606550225808, 0.02738675466658479, 0.47381546134663344, None, 'logistic model with a country random intercept (maximum likelihood)', 'maximum likelihood, 30-point Gauss-Hermite; country SD 0.000'],
                ['private', 'change', 'welch', 1.437838321010897, 'difference in mean change (points)', 0.49419647527172567, 0.22930715765424137, 2.6463694843675523, 2.9094467341563406, 0.026923107082491567, 0.47381546134663344, None, 'Welch t test (ignores countries)', ''],
                ['private', 'change', 'did', 1.3976772669139508, 'support effect on the change (points)', 0.33645724525728127, 0.32692014985898177, 2.46843438396892, 4.154100666921821, 0.02535841500913292, 0.47381546134663344, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
                ['private', 'change', 'ancova', 1.507455660613139, 'support effect on the change (points)', 0.2164254531596553, 0.8186932768358419, 2.196218044390436, 6.965242020314039, 0.006072100945711383, 0.1396583217513618, None, 'ANCOVA: difference in differences adjusted for the baseline', 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope -1.159'],
             ]},
        'baseline': {'columns': ['group', 'quantity', 'estimate', 'method', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'note', 'p_permutation', 'mc_se', 'slope'],
             'data': [
                ['officials', 'baseline_supported', 7.231561792757253, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_unsupported', 6.7801079718302875, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_difference', 0.5763817452510367, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.34522143145154827, -0.5222669237766959, 1.6750304142787693, 1.6696001254253872, 0.19359096149511906, 'country fixed effects, cluster-robust SE, t with 3 df', 0.09975062344139651, 0.01498336048458833, None],
                ['officials', 'support_effect_unadjusted', 0.7057033319086807, 'difference in differences (country fixed effects)', 0.18415252380631061, 0.1196478129126175, 1.291758850904744, 3.832167582188181, 0.0313145798005364, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['officials', 'support_effect_adjusted', 1.1493231474213979, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.3221824855191492, 0.12399468675385994, 2.1746516080889355, 3.5673048631722932, 0.037624080154342154, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope -0.770', None, None, -0.7696631948666254],
                ['officials', 'support_effect_change_model', 0.31, 'hierarchical change model, posterior adjusted for the baseline', 0.11, 0.1, 0.52, None, None, None, None, None, None],
                ['private', 'baseline_supported', 6.606148403787512, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_unsupported', 6.494479621357693, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_difference', 0.09474832320051463, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.3139057131740083, -0.9042397538975553, 1.0937364002985845, 0.30183688675966375, 0.7824909548126938, 'country fixed effects, cluster-robust SE, t with 3 df', 0.7905236907730673, 0.020346743295893522, None],
                ['private', 'support_effect_unadjusted', 1.3976772669139508, 'difference in differences (country fixed effects)', 0.33645724525728127, 0.32692014985898177, 2.46843438396892, 4.154100666921821, 0.02535841500913292, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['private', 'support_effect_adjusted', 1.507455660613139, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.2164254531596553, 0.8186932768358419, 2.196218044390436, 6.965242020314039, 0.006072100945711383, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope -1.159', None, None, -1.1586315197036436],
                ['private', 'support_effect_change_model', 0.12, 'hierarchical change model, posterior adjusted for the baseline', 0.09, -0.06, 0.3, None, None, None, None, None, None],
             ]},
        'cells': {'columns': ['country', 'group', 'factor', 'baseline', 'estimate', 'se', 'p_adjusted', 'supported', 'p_improved', 'improved_point', 'improved_fdr', 'improved_posterior'],
             'data': [
                ['C01', 'officials', 'audit', 6.22633000914531, 0.4483405267882814, 0.35334612839348134, 0.46142981038903214, False, 0.915, True, False, False],
                ['C01', 'officials', 'automation', 7.05345360980539, 0.013277969218159491, 0.2970026924655566, 0.9796073915356536, True, 0.515, True, False, False],
                ['C01', 'officials', 'leadership', 5.645210204743899, 0.05909195515461718, 0.38432690609598874, 0.9796073915356536, False, 0.5375, True, False, False],
                ['C01', 'officials', 'regulatory', 6.838831206499799, 1.2523605072165775, 0.35349819410856154, 0.008711067073317145, True, 1.0, True, True, True],
                ['C01', 'officials', 'transparency', 6.959983819244951, 0.08066290113045937, 0.337655981093202, 0.9778732071349778, False, 0.5875, True, False, False],
                ['C03', 'officials', 'audit', 7.3229714401864285, -0.04085200483233464, 0.6387440222072652, 0.9796073915356536, False, 0.445, False, False, False],
                ['C03', 'officials', 'automation', 8.17901796151041, 1.100865413943719, 0.36794352841106487, 0.024394446643064165, True, 0.9975, True, True, True],
                ['C03', 'officials', 'leadership', 6.208047536700629, 1.4399104124625373, 0.48815004694252334, 0.025444211196435237, False, 0.9975, True, True, True],
                ['C03', 'officials', 'regulatory', 7.059267092197378, 0.5846336961282592, 0.5302347226704747, 0.5357169721190785, False, 0.8625, True, False, False],
                ['C03', 'officials', 'transparency', 7.131372675264436, -0.42387873940107657, 0.5379222055009816, 0.6993118406814366, False, 0.19, False, False, False],
                ['C04', 'officials', 'audit', 7.3630143625236375, -0.5627495763899697, 0.4386532037960345, 0.46142981038903214, False, 0.1, False, False, False],
                ['C04', 'officials', 'automation', 7.0846178313083215, -1.4642348614455374, 0.4091580250245162, 0.008711067073317145, False, 0.0, False, False, False],
                ['C04', 'officials', 'leadership', 6.3971350207076005, 0.604500293165505, 0.40361165804916754, 0.35787748050081514, False, 0.9375, True, False, False],
                ['C04', 'officials', 'regulatory', 6.70853984354796, -1.0366264168217212, 0.5049027709026824, 0.16892921023980495, False, 0.0125, False, False, False],
                ['C04', 'officials', 'transparency', 6.572314682766056, -0.01314053904424739, 0.5140829152842514, 0.9796073915356536, False, 0.5175, False, False, False],
                ['C05', 'officials', 'audit', 7.40434814892342, -0.6713103354461376, 0.4128854137360312, 0.32138232666586536, False, 0.0675, False, False, False],
                ['C05', 'officials', 'automation', 7.579609553638329, 0.360362972683693, 0.4636314900989833, 0.6993118406814366, True, 0.8025, True, False, False],
                ['C05', 'officials', 'leadership', 6.872863717109221, -0.20768304128325799, 0.5044233377550995, 0.8765212574808263, False, 0.3025, False, False, False],
                ['C05', 'officials', 'regulatory', 6.745603193085051, 0.18132536953286316, 0.5495680641729304, 0.9194759199905426, False, 0.6475, True, False, False],
                ['C05', 'officials', 'transparency', 6.506896632332339, 1.116818474506588, 0.45437503367606297, 0.08783874038626488, True, 0.9925, True, False, True],
                ['C01', 'private', 'audit', 5.864921173083816, 0.3963056993196039, 0.7066447602418712, 0.7905084668936679, False, 0.7075, True, False, False],
                ['C01', 'private', 'automation', 6.9452990069705125, -0.022652295454833826, 0.5524021891524074, 0.9796073915356536, True, 0.4575, False, False, False],
                ['C01', 'private', 'leadership', 5.629646558370987, -0.022032588036336342, 0.7549001201129697, 0.9796073915356536, False, 0.4825, False, False, False],
                ['C01', 'private', 'regulatory', 5.658744259158874, 2.0409451519324495, 0.6419539173103771, 0.018561241125575827, True, 1.0, True, True, True],
                ['C01', 'private', 'transparency', 6.24042247325449, 0.02654724742374004, 0.6186008270083392, 0.9796073915356536, False, 0.5225, True, False, False],
                ['C03', 'private', 'audit', 7.680287060505881, -0.5581272906979162, 0.6966537887597112, 0.6993118406814366, False, 0.24, False, False, False],
                ['C03', 'private', 'automation', 7.722886908801078, 1.140157394090405, 0.5161697840427056, 0.13289442570858684, True, 0.9875, True, False, True],
                ['C03', 'private', 'leadership', 7.553475290209761, -0.6217409312443829, 0.6692829044847115, 0.621115983151918, False, 0.2075, False, False, False],
                ['C03', 'private', 'regulatory', 7.514480023721368, -0.8488890394766084, 0.5305011995664359, 0.32138232666586536, False, 0.055, False, False, False],
                ['C03', 'private', 'transparency', 6.390909164455021, 0.5362051681554743, 0.7020695577895568, 0.6993118406814366, False, 0.78, True, False, False],
                ['C04', 'private', 'audit', 6.605328487447072, -0.6113705739925352, 0.6340086622322797, 0.613980925200244, False, 0.1775, False, False, False],
                ['C04', 'private', 'automation', 6.221584638828985, -0.8562251658029929, 0.49299737188950393, 0.2686510181787917, False, 0.045, False, False, False],
                ['C04', 'private', 'leadership', 5.067424311929322, 1.993899838579157, 0.5805643319672597, 0.010451417682889232, False, 1.0, True, True, True],
                ['C04', 'private', 'regulatory', 5.891288043983496, 0.09191992369623758, 0.6836836925644029, 0.9796073915356536, False, 0.55, True, False, False],
                ['C04', 'private', 'transparency', 6.41242317152777, -1.587601114346091, 0.7145766686166343, 0.13289442570858684, False, 0.0275, False, False, False],
                ['C05', 'private', 'audit', 7.18840690423915, -0.9695300534950375, 0.6162787334451686, 0.32836031545594224, False, 0.06, False, False, False],
                ['C05', 'private', 'automation', 7.4315676784186, 0.6148685697458847, 0.5204799185737979, 0.5096788369466428, True, 0.8975, True, False, False],
                ['C05', 'private', 'leadership', 6.169013755827259, -0.0978103211263095, 0.830236931232609, 0.9796073915356536, False, 0.455, False, False, False],
                ['C05', 'private', 'regulatory', 6.98758326298102, 0.04203886267875845, 0.7338381482953265, 0.9796073915356536, False, 0.545, True, False, False],
                ['C05', 'private', 'transparency', 5.272244165588496, 2.387069338618833, 0.6562158248581675, 0.008711067073317145, True, 1.0, True, True, True],
             ]},
        'permutation': {'columns': ['group', 'rule', 'observed', 'null_mean', 'p_value', 'mc_se', 'exact', 'n', 'arrangements'],
             'data': [
                ['officials', 'point', 0.5333333333333333, 0.21333333333333337, 0.26433915211970077, 0.022049034263224458, False, 400, 500.0],
                ['officials', 'fdr', 0.33333333333333337, 0.013333333333333336, 0.14962593516209477, 0.017835218998442617, False, 400, 500.0],
                ['officials', 'posterior', 0.5333333333333333, 0.0533333333333334, 0.06234413965087282, 0.012088977200539475, False, 400, 500.0],
                ['officials', 'change', 0.8368710915338649, 0.23467091497179038, 0.04987531172069826, 0.010884365507628526, False, 400, 500.0],
                ['officials', 'baseline', 0.4514538209269645, -0.0403919350205868, 0.09975062344139651, 0.01498336048458833, False, 400, 500.0],
                ['private', 'point', 0.4, 0.08000000000000013, 0.33915211970074816, 0.02367107725702601, False, 400, 500.0],
                ['private', 'fdr', 0.33333333333333337, 0.013333333333333336, 0.1546134663341646, 0.018076790531113284, False, 400, 500.0],
                ['private', 'posterior', 0.5333333333333333, 0.0, 0.02493765586034913, 0.007796757207413209, False, 400, 500.0],
                ['private', 'change', 1.437838321010897, 0.24515371991099216, 0.007481296758104738, 0.00430851684368354, False, 400, 500.0],
                ['private', 'baseline', 0.1116687824298177, 0.030816879965375854, 0.7905236907730673, 0.020346743295893522, False, 400, 500.0],
             ]},
        'verdict': 'officials (point change > 0): supported 100% [57, 100] (5/5) vs unsupported 47% [21, 75] (7/15); difference 53 points [17, 75]; with no true change about 48% would qualify; the common drift alone (-0.07 points) would make about 44% of the supported cells qualify; within-country permutation p = 0.26 (Monte Carlo SE 0.022): not significant at 5%; CMH p = 0.12; supported cells started 0.58 points higher (p = 0.19); support effect on the change +0.71 points [+0.12, +1.29] (p = 0.03); after baseline adjustment +1.15 points [+0.12, +2.17] (p = 0.04); change model support effect +0.31 [+0.10, +0.52]. Intervals 95%.\nprivate (point change > 0): supported 80% [38, 96] (4/5) vs unsupported 40% [20, 64] (6/15); difference 40 points [-7, 73]; with no true change about 51% would qualify; the common drift alone (-0.21 points) would make about 39% of the supported cells qualify; within-country permutation p = 0.34 (Monte Carlo SE 0.024): not significant at 5%; CMH p = 0.22; GEE (bias-reduced) p = 0.17; mixed logistic p = 0.15; supported cells started 0.09 points higher (p = 0.78); support effect on the change +1.40 points [+0.33, +2.47] (p = 0.03); after baseline adjustment +1.51 points [+0.82, +2.20] (p = 0.006); change model support effect +0.12 [-0.06, +0.30]. Intervals 95%.',
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
        'flags': [{'code': 'support_rows_without_change', 'message': '10 row(s) of the support table name countries with no change (surveyed once): they are not audited.', 'severity': 'info', 'where': {'n': 10}}, {'code': 'unlabelled_cells', 'message': '48 cell change(s) have no row in the support table and are not audited.', 'severity': 'info', 'where': {'n': 48}}, {'code': 'suppressed_cells', 'message': '25 audited cell(s) are suppressed for publication; they are used for inference and must not be shown individually.', 'severity': 'info', 'where': {'n': 25}}, {'code': 'uninformative_countries', 'message': 'officials: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'officials', 'n': 1}}, {'code': 'few_clusters', 'message': 'officials: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'officials', 'n': 4}}, {'code': 'uninformative_countries', 'message': 'private: 1 of 4 countries have only supported or only unsupported cells; within-country comparisons ignore them.', 'severity': 'caution', 'where': {'group': 'private', 'n': 1}}, {'code': 'few_clusters', 'message': 'private: 4 countries; cluster-robust and GEE sandwich SEs are optimistic with fewer than 30 clusters (the permutation and CMH tests do not rely on them).', 'severity': 'info', 'where': {'group': 'private', 'n': 4}}],
        'shares': {'columns': ['group', 'rule', 'set', 'n_cells', 'n_improved', 'share', 'ci_low', 'ci_high', 'deff', 'interval'],
             'data': [
                ['officials', 'point', 'supported', 5, 5, 1.0, 0.5655175352168251, 1.0, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'point', 'unsupported', 15, 7, 0.4666666666666667, 0.2065159849344676, 0.7463033311399487, 1.612698412698413, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'point', 'difference', 20, 12, 0.5333333333333333, 0.16634615384615384, 0.736842105263158, None, 'country bootstrap (percentile)'],
                ['officials', 'fdr', 'supported', 5, 2, 0.4, 0.10779423385697162, 0.7862625541052739, 1.1555555555555557, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'fdr', 'unsupported', 15, 1, 0.06666666666666667, 0.011532265140245579, 0.30425703628379547, 1.0412698412698418, 'Wilson on the effective number of cells (country design effect)'],
                ['officials', 'fdr', 'difference', 20, 3, 0.33333333333333337, 0.0, 0.8903508771929819, None, 'country bootstrap (percentile)'],
                ['private', 'point', 'supported', 5, 4, 0.8, 0.37553462976252533, 0.9637758913675698, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'point', 'unsupported', 15, 6, 0.4, 0.1982449614134158, 0.6425316987937539, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'point', 'difference', 20, 10, 0.4, 0.0, 0.7333333333333334, None, 'country bootstrap (percentile)'],
                ['private', 'fdr', 'supported', 5, 2, 0.4, 0.11762077423264783, 0.769275718723987, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'fdr', 'unsupported', 15, 1, 0.06666666666666667, 0.011866895493268553, 0.2981652987378003, 1.0, 'Wilson on the effective number of cells (country design effect)'],
                ['private', 'fdr', 'difference', 20, 3, 0.33333333333333337, -0.1111111111111111, 0.5, None, 'country bootstrap (percentile)'],
             ]},
        'nulls': {'columns': ['group', 'rule', 'set', 'scenario', 'mu', 'tau', 'expected_share', 'ci_low', 'ci_high', 'observed_share', 'p_exceed'],
             'data': [
                ['officials', 'point', 'supported', 'no_change', 0.0, 0.0, 0.502, 0.09500000000000047, 0.8, 1.0, 0.0],
                ['officials', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.484, 0.2, 0.7333333333333333, 0.4666666666666667, 0.64],
                ['officials', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.002, 0.0, 0.0, 0.4, 0.0],
                ['officials', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.002, 0.0, 0.034999999999999434, 0.06666666666666667, 0.03],
                ['officials', 'point', 'supported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.43800000000000006, 0.0, 0.8, 1.0, 0.0],
                ['officials', 'point', 'unsupported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.456, 0.2, 0.6666666666666666, 0.4666666666666667, 0.58],
                ['officials', 'fdr', 'supported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.034, 0.0, 0.2, 0.4, 0.01],
                ['officials', 'fdr', 'unsupported', 'common_drift', -0.06813402402011733, 0.5357206482202015, 0.041333333333333326, 0.0, 0.16833333333333278, 0.06666666666666667, 0.44],
                ['private', 'point', 'supported', 'no_change', 0.0, 0.0, 0.4700000000000001, 0.2, 0.8, 0.8, 0.11],
                ['private', 'point', 'unsupported', 'no_change', 0.0, 0.0, 0.4820000000000001, 0.2, 0.7333333333333333, 0.4, 0.78],
                ['private', 'fdr', 'supported', 'no_change', 0.0, 0.0, 0.002, 0.0, 0.0, 0.4, 0.0],
                ['private', 'fdr', 'unsupported', 'no_change', 0.0, 0.0, 0.002, 0.0, 0.034999999999999434, 0.06666666666666667, 0.03],
                ['private', 'point', 'supported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.36400000000000005, 0.0, 0.8, 0.8, 0.04],
                ['private', 'point', 'unsupported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.39, 0.13333333333333333, 0.6666666666666666, 0.4, 0.58],
                ['private', 'fdr', 'supported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.006000000000000001, 0.0, 0.1049999999999983, 0.4, 0.0],
                ['private', 'fdr', 'unsupported', 'common_drift', -0.20576068922434926, 0.5009587093634391, 0.005333333333333333, 0.0, 0.06666666666666667, 0.06666666666666667, 0.08],
             ]},
        'tests': {'columns': ['group', 'rule', 'test', 'estimate', 'scale', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'p_holm', 'mc_se', 'method', 'note'],
             'data': [
                ['officials', 'point', 'permutation', 0.5333333333333333, 'difference in shares', None, None, None, None, 0.22, 0.3640057510754441, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['officials', 'fdr', 'permutation', 0.33333333333333337, 'difference in shares', None, None, None, None, 0.16, 0.3640057510754441, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['officials', 'change', 'permutation', 0.8368710915338649, 'difference in mean change', None, None, None, None, 0.052, 0.26, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['officials', 'point', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 2.400000000000001, 0.12133525035848136, 0.3640057510754441, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '2 informative countries'],
                ['officials', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 3.0, 0.08326451666355039, 0.33305806665420157, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '2 informative countries'],
                ['officials', 'change', 'welch', 0.8368710915338649, 'difference in mean change (points)', 0.30702334500034273, 0.14231968527593086, 1.531422497791799, 2.7257571945642463, 0.023389573054697133, 0.16372701138287993, None, 'Welch t test (ignores countries)', ''],
                ['officials', 'change', 'did', 0.7057033319086807, 'support effect on the change (points)', 0.18415252380631061, 0.1196478129126175, 1.291758850904744, 3.832167582188181, 0.0313145798005364, 0.18788747880321843, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
                ['private', 'point', 'permutation', 0.4, 'difference in shares', None, None, None, None, 0.316, 0.48, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['private', 'fdr', 'permutation', 0.33333333333333337, 'difference in shares', None, None, None, None, 0.16, 0.48, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['private', 'change', 'permutation', 1.437838321010897, 'difference in mean change', None, None, None, None, 0.008, 0.056, 0.0, 'within-country permutation (exact enumeration, 500 arrangements)', '500 distinct arrangements'],
                ['private', 'point', 'cmh', 4.0, 'odds ratio (Mantel-Haenszel)', None, 0.386426446117507, 41.40503363772006, 1.5000000000000004, 0.2206713619198467, 0.48, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '3 informative countries'],
                ['private', 'fdr', 'cmh', None, 'odds ratio (Mantel-Haenszel)', None, None, None, 3.0, 0.08326451666355039, 0.33305806665420157, None, 'Cochran-Mantel-Haenszel across countries, no continuity correction', '2 informative countries'],
                ['private', 'change', 'welch', 1.437838321010897, 'difference in mean change (points)', 0.49419647527172567, 0.22930715765424137, 2.6463694843675523, 2.9094467341563406, 0.026923107082491567, 0.15215049005479753, None, 'Welch t test (ignores countries)', ''],
                ['private', 'change', 'did', 1.3976772669139508, 'support effect on the change (points)', 0.33645724525728127, 0.32692014985898177, 2.46843438396892, 4.154100666921821, 0.02535841500913292, 0.15215049005479753, None, 'difference in differences: OLS of the change on support with country fixed effects', 'country fixed effects, cluster-robust SE, t with 3 df'],
             ]},
        'baseline': {'columns': ['group', 'quantity', 'estimate', 'method', 'se', 'ci_low', 'ci_high', 'statistic', 'p_value', 'note', 'p_permutation', 'mc_se', 'slope'],
             'data': [
                ['officials', 'baseline_supported', 7.231561792757253, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_unsupported', 6.7801079718302875, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['officials', 'baseline_difference', 0.5763817452510367, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.34522143145154827, -0.5222669237766959, 1.6750304142787693, 1.6696001254253872, 0.19359096149511906, 'country fixed effects, cluster-robust SE, t with 3 df', 0.084, 0.0, None],
                ['officials', 'support_effect_unadjusted', 0.7057033319086807, 'difference in differences (country fixed effects)', 0.18415252380631061, 0.1196478129126175, 1.291758850904744, 3.832167582188181, 0.0313145798005364, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['officials', 'support_effect_adjusted', 1.1493231474213979, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.3221824855191492, 0.12399468675385994, 2.1746516080889355, 3.5673048631722932, 0.037624080154342154, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope -0.770', None, None, -0.7696631948666254],
                ['private', 'baseline_supported', 6.606148403787512, 'mean baseline of supported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_unsupported', 6.494479621357693, 'mean baseline of unsupported cells', None, None, None, None, None, None, None, None, None],
                ['private', 'baseline_difference', 0.09474832320051463, 'supported - unsupported baseline within country (OLS, country fixed effects, cluster-robust SE)', 0.3139057131740083, -0.9042397538975553, 1.0937364002985845, 0.30183688675966375, 0.7824909548126938, 'country fixed effects, cluster-robust SE, t with 3 df', 0.818, 0.0, None],
                ['private', 'support_effect_unadjusted', 1.3976772669139508, 'difference in differences (country fixed effects)', 0.33645724525728127, 0.32692014985898177, 2.46843438396892, 4.154100666921821, 0.02535841500913292, 'country fixed effects, cluster-robust SE, t with 3 df', None, None, None],
                ['private', 'support_effect_adjusted', 1.507455660613139, 'ANCOVA: adjusted for the baseline (country fixed effects)', 0.2164254531596553, 0.8186932768358419, 2.196218044390436, 6.965242020314039, 0.006072100945711383, 'country fixed effects, cluster-robust SE, t with 3 df; baseline slope -1.159', None, None, -1.1586315197036436],
             ]},
        'cells': {'columns': ['country', 'group', 'factor', 'baseline', 'estimate', 'se', 'p_adjusted', 'supported', 'improved_point', 'improved_fdr'],
             'data': [
                ['C01', 'officials', 'audit', 6.22633000914531, 0.4483405267882814, 0.35334612839348134, 0.46142981038903214, False, True, False],
                ['C01', 'officials', 'automation', 7.05345360980539, 0.013277969218159491, 0.2970026924655566, 0.9796073915356536, True, True, False],
                ['C01', 'officials', 'leadership', 5.645210204743899, 0.05909195515461718, 0.38432690609598874, 0.9796073915356536, False, True, False],
                ['C01', 'officials', 'regulatory', 6.838831206499799, 1.2523605072165775, 0.35349819410856154, 0.008711067073317145, True, True, True],
                ['C01', 'officials', 'transparency', 6.959983819244951, 0.08066290113045937, 0.337655981093202, 0.9778732071349778, False, True, False],
                ['C03', 'officials', 'audit', 7.3229714401864285, -0.04085200483233464, 0.6387440222072652, 0.9796073915356536, False, False, False],
                ['C03', 'officials', 'automation', 8.17901796151041, 1.100865413943719, 0.36794352841106487, 0.024394446643064165, True, True, True],
                ['C03', 'officials', 'leadership', 6.208047536700629, 1.4399104124625373, 0.48815004694252334, 0.025444211196435237, False, True, True],
                ['C03', 'officials', 'regulatory', 7.059267092197378, 0.5846336961282592, 0.5302347226704747, 0.5357169721190785, False, True, False],
                ['C03', 'officials', 'transparency', 7.131372675264436, -0.42387873940107657, 0.5379222055009816, 0.6993118406814366, False, False, False],
                ['C04', 'officials', 'audit', 7.3630143625236375, -0.5627495763899697, 0.4386532037960345, 0.46142981038903214, False, False, False],
                ['C04', 'officials', 'automation', 7.0846178313083215, -1.4642348614455374, 0.4091580250245162, 0.008711067073317145, False, False, False],
                ['C04', 'officials', 'leadership', 6.3971350207076005, 0.604500293165505, 0.40361165804916754, 0.35787748050081514, False, True, False],
                ['C04', 'officials', 'regulatory', 6.70853984354796, -1.0366264168217212, 0.5049027709026824, 0.16892921023980495, False, False, False],
                ['C04', 'officials', 'transparency', 6.572314682766056, -0.01314053904424739, 0.5140829152842514, 0.9796073915356536, False, False, False],
                ['C05', 'officials', 'audit', 7.40434814892342, -0.6713103354461376, 0.4128854137360312, 0.32138232666586536, False, False, False],
                ['C05', 'officials', 'automation', 7.579609553638329, 0.360362972683693, 0.4636314900989833, 0.6993118406814366, True, True, False],
                ['C05', 'officials', 'leadership', 6.872863717109221, -0.20768304128325799, 0.5044233377550995, 0.8765212574808263, False, False, False],
                ['C05', 'officials', 'regulatory', 6.745603193085051, 0.18132536953286316, 0.5495680641729304, 0.9194759199905426, False, True, False],
                ['C05', 'officials', 'transparency', 6.506896632332339, 1.116818474506588, 0.45437503367606297, 0.08783874038626488, True, True, False],
                ['C01', 'private', 'audit', 5.864921173083816, 0.3963056993196039, 0.7066447602418712, 0.7905084668936679, False, True, False],
                ['C01', 'private', 'automation', 6.9452990069705125, -0.022652295454833826, 0.5524021891524074, 0.9796073915356536, True, False, False],
                ['C01', 'private', 'leadership', 5.629646558370987, -0.022032588036336342, 0.7549001201129697, 0.9796073915356536, False, False, False],
                ['C01', 'private', 'regulatory', 5.658744259158874, 2.0409451519324495, 0.6419539173103771, 0.018561241125575827, True, True, True],
                ['C01', 'private', 'transparency', 6.24042247325449, 0.02654724742374004, 0.6186008270083392, 0.9796073915356536, False, True, False],
                ['C03', 'private', 'audit', 7.680287060505881, -0.5581272906979162, 0.6966537887597112, 0.6993118406814366, False, False, False],
                ['C03', 'private', 'automation', 7.722886908801078, 1.140157394090405, 0.5161697840427056, 0.13289442570858684, True, True, False],
                ['C03', 'private', 'leadership', 7.553475290209761, -0.6217409312443829, 0.6692829044847115, 0.621115983151918, False, False, False],
                ['C03', 'private', 'regulatory', 7.514480023721368, -0.8488890394766084, 0.5305011995664359, 0.32138232666586536, False, False, False],
                ['C03', 'private', 'transparency', 6.390909164455021, 0.5362051681554743, 0.7020695577895568, 0.6993118406814366, False, True, False],
                ['C04', 'private', 'audit', 6.605328487447072, -0.6113705739925352, 0.6340086622322797, 0.613980925200244, False, False, False],
                ['C04', 'private', 'automation', 6.221584638828985, -0.8562251658029929, 0.49299737188950393, 0.2686510181787917, False, False, False],
                ['C04', 'private', 'leadership', 5.067424311929322, 1.993899838579157, 0.5805643319672597, 0.010451417682889232, False, True, True],
                ['C04', 'private', 'regulatory', 5.891288043983496, 0.09191992369623758, 0.6836836925644029, 0.9796073915356536, False, True, False],
                ['C04', 'private', 'transparency', 6.41242317152777, -1.587601114346091, 0.7145766686166343, 0.13289442570858684, False, False, False],
                ['C05', 'private', 'audit', 7.18840690423915, -0.9695300534950375, 0.6162787334451686, 0.32836031545594224, False, False, False],
                ['C05', 'private', 'automation', 7.4315676784186, 0.6148685697458847, 0.5204799185737979, 0.5096788369466428, True, True, False],
                ['C05', 'private', 'leadership', 6.169013755827259, -0.0978103211263095, 0.830236931232609, 0.9796073915356536, False, False, False],
                ['C05', 'private', 'regulatory', 6.98758326298102, 0.04203886267875845, 0.7338381482953265, 0.9796073915356536, False, True, False],
                ['C05', 'private', 'transparency', 5.272244165588496, 2.387069338618833, 0.6562158248581675, 0.008711067073317145, True, True, True],
             ]},
        'permutation': {'columns': ['group', 'rule', 'observed', 'null_mean', 'p_value', 'mc_se', 'exact', 'n', 'arrangements'],
             'data': [
                ['officials', 'point', 0.5333333333333333, 0.21333333333333337, 0.22, 0.0, True, 500, 500.0],
                ['officials', 'fdr', 0.33333333333333337, 0.013333333333333336, 0.16, 0.0, True, 500, 500.0],
                ['officials', 'change', 0.8368710915338649, 0.23467091497179038, 0.052, 0.0, True, 500, 500.0],
                ['officials', 'baseline', 0.4514538209269645, -0.0403919350205868, 0.084, 0.0, True, 500, 500.0],
                ['private', 'point', 0.4, 0.08000000000000013, 0.316, 0.0, True, 500, 500.0],
                ['private', 'fdr', 0.33333333333333337, 0.013333333333333336, 0.16, 0.0, True, 500, 500.0],
                ['private', 'change', 1.437838321010897, 0.24515371991099216, 0.008, 0.0, True, 500, 500.0],
                ['private', 'baseline', 0.1116687824298177, 0.030816879965375854, 0.818, 0.0, True, 500, 500.0],
             ]},
        'verdict': 'officials (point change > 0): supported 100% [57, 100] (5/5) vs unsupported 47% [21, 75] (7/15); difference 53 points [17, 74]; with no true change about 50% would qualify; the common drift alone (-0.07 points) would make about 44% of the supported cells qualify; within-country permutation p = 0.22: not significant at 5%; CMH p = 0.12; supported cells started 0.58 points higher (p = 0.19); support effect on the change +0.71 points [+0.12, +1.29] (p = 0.03); after baseline adjustment +1.15 points [+0.12, +2.17] (p = 0.04). Intervals 95%.\nprivate (point change > 0): supported 80% [38, 96] (4/5) vs unsupported 40% [20, 64] (6/15); difference 40 points [0, 73]; with no true change about 47% would qualify; the common drift alone (-0.21 points) would make about 36% of the supported cells qualify; within-country permutation p = 0.32: not significant at 5%; CMH p = 0.22; supported cells started 0.09 points higher (p = 0.78); support effect on the change +1.40 points [+0.33, +2.47] (p = 0.03); after baseline adjustment +1.51 points [+0.82, +2.20] (p = 0.006). Intervals 95%.',
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
