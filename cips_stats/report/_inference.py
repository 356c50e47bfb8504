"""The report's inference sections: change heatmap, claim audit, KPI view, instrument review, appendix.

Like :mod:`cips_stats.report._sections`, each section has a ``compute_*``
(calls the public statistical API: :func:`cips_stats.change.cell_changes`,
``cips_stats.change.fit``, :func:`cips_stats.claims.audit`,
:func:`cips_stats.reliability.cronbach_alpha`) and a ``present_*`` (published
tables after disclosure control, figures from :mod:`cips_stats.plotting`,
words from the instrument).  The sections register themselves in the
registries of ``_sections`` when this module is imported.

User tables reach the sections through ``Context.inputs``: ``support`` (the
support table of the claim: ``country, factor, supported``), ``targets`` (the
KPI targets: ``factor, group, target`` and optionally ``country``),
``change_options`` (keyword arguments of ``cs.change.fit``, e.g. draws),
``steps`` (the analysis steps with their times, for the appendix).

Examples
--------
>>> from cips_stats.report import _inference as I
>>> I.SECTIONS
('change', 'claims', 'kpi', 'review', 'appendix')
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CipsWarning, Flag
from . import _sections as S

__all__ = ["SECTIONS", "LOADING_REVIEW", "DONT_KNOW_REVIEW", "kpi_tables", "item_review"]

SECTIONS = ("change", "claims", "kpi", "review", "appendix")

#: Review cut-offs: in :mod:`cips_stats.thresholds` with their references (re-exported here).
from ..thresholds import DONT_KNOW_REVIEW, LOADING_REVIEW  # noqa: E402


def _labels(ctx: S.Context) -> tuple[dict, dict]:
    inst = ctx.data.instrument
    factors = {f.id: (f.label or f.id) for f in getattr(inst, "factors", ())}
    return S.group_labels(ctx), factors


def _indicators(ctx: S.Context) -> Any:
    ind = ctx.raw.get("indicators")
    if ind is None or isinstance(ind, BaseException):
        ind = S.compute_indicators(ctx)
        ctx.raw["indicators"] = ind
    return ind


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CipsWarning)
        return func(*args, **kwargs)


# ============================================================================================ change
def compute_change(ctx: S.Context) -> dict | None:
    """Cell changes between the first and last iteration; the hierarchical model too with a support table.

    Returns ``None`` with a single iteration, else ``{"cells": CellChanges, "model": ChangeResult,
    exception or None}`` (a model that fails is kept as its exception and shown in place).
    """
    from .. import change

    if len(ctx.data.iterations) < 2:
        return None
    ind = _indicators(ctx)
    cc = _quiet(change.cell_changes, ind)
    model: Any = None
    support = ctx.inputs.get("support")
    if support is not None:
        fit = getattr(change, "fit", None)
        if fit is None:
            model = "unavailable"
        else:
            try:
                # strict=False: a model that misses its convergence gates is shown with its flags
                opts = {"strict": False, **dict(ctx.inputs.get("change_options") or {})}
                model = _quiet(fit, ind, supported=support, seed=ctx.options.seed, **opts)
            except Exception as exc:  # shown in place; the cell changes still are
                model = exc
    return {"cells": cc, "model": model}


def _publish_changes(ctx: S.Context, table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    n = np.fmin(t["n_1"].to_numpy(dtype=float), t["n_2"].to_numpy(dtype=float))
    t.insert(t.columns.get_loc("estimate"), "n", n)
    pub = ctx.publish(t, columns=[c for c in ("baseline", "estimate", "se", "ci_low", "ci_high", "z", "p_value",
                                              "p_adjusted") if c in t.columns], precision=True)
    sup = pub["suppressed"].to_numpy(dtype=bool)
    for c in ("n_1", "n_2"):
        pub[c] = pub[c].astype("Float64")
        pub.loc[sup, c] = pd.NA
    if "significant" in pub.columns:
        pub["significant"] = pub["significant"].astype("boolean")
        pub.loc[sup, "significant"] = pd.NA
    return pub


def _posterior_table(model: Any) -> pd.DataFrame | None:
    for name in ("prob_improved", "cells"):
        t = getattr(model, name, None)
        if isinstance(t, pd.DataFrame) and {"country", "factor"} <= set(t.columns):
            return t
    return None


def present_change(ctx: S.Context, sec: S.Section, res: dict | None) -> None:
    if res is None:
        sec.note = ("Change needs two iterations; the data hold a single iteration "
                    f"({', '.join(map(str, ctx.data.iterations))}).")
        return
    cc, model = res["cells"], res["model"]
    glab, flab = _labels(ctx)
    pub = _publish_changes(ctx, cc.table)
    shown = pub[~pub["suppressed"].to_numpy(dtype=bool)]
    sig = shown["significant"].fillna(False).astype(bool)
    up = int((sig & (shown["estimate"] > 0)).sum())
    down = int((sig & (shown["estimate"] < 0)).sum())
    sec.headline = (f"Between iterations {cc.first} and {cc.last}: {up} cells improved and {down} declined "
                    f"significantly (FDR {cc.fdr.upper()}) among {len(shown)} published cell changes.")
    sec.paragraphs.append(
        f"Change of every country × group × key-factor indicator from iteration {cc.first} to {cc.last}, for "
        "countries surveyed in both, with its interval from the two iterations' bootstrap replicates and a test "
        f"of no change; p-values are adjusted for the false discovery rate across the table ({cc.fdr.upper()}). "
        f"A cell is published when both of its iterations are (n is the smaller of the two sample sizes).")
    sec.table("cells", "Change by cell (estimate: last minus first iteration).", pub, collapsed=True)
    if len(shown):
        sec.plot("Change per country and key factor, one panel per group (colour: change; triangle: significant "
                 "after FDR control, pointing in its direction; grey: not published).",
                 "change_heatmap", pub, column_labels=flab, panel_labels=glab, value_label="Change (0-10 scale)")
    sec.result = {"kind": "CellChanges", "first": str(cc.first), "last": str(cc.last), "fdr": cc.fdr, "ci": cc.ci, "significance": cc.significance,
                  "table": S._table_json(pub),
                  "provenance": cc.provenance.to_dict() if cc.provenance is not None else None}
    if isinstance(model, str):
        sec.note = ("The hierarchical change model (cs.change.fit) is not in this version of cips_stats; the "
                    "cell changes above are the frequentist ones.")
        return
    if model is None:
        if ctx.inputs.get("support") is None:
            sec.paragraphs.append("The hierarchical change model runs when a support table is given "
                                  "(--support CSV: country, factor, supported).")
        return
    if isinstance(model, BaseException):
        raise S.SectionIncomplete(f"The hierarchical change model failed: {type(model).__name__}: {model}")
    post = _posterior_table(model)
    diag = getattr(model, "diagnostics", None) or {}
    sec.paragraphs.append(
        "The hierarchical change model pools every cell's change with its country, key factor and group "
        "(partial pooling), with the support of each country and key factor as a covariate; P(improved) is "
        "the posterior probability that the cell's true change is positive."
        + (f" Convergence: largest R-hat {diag['r_hat_max']:.3f}, smallest bulk ESS {diag['ess_bulk_min']:.0f}, "
           f"{int(diag.get('divergences', 0))} divergent transitions"
           if isinstance(diag, dict) and "r_hat_max" in diag else "")
        + ("." if getattr(model, "reliable", True) else "; the model missed a convergence gate: read it with care."))
    eff = getattr(model, "support_effect", None)
    if isinstance(eff, pd.DataFrame) and len(eff):
        sec.table("support_effect", "Posterior support effect: mean true change of supported minus unsupported "
                  "cells.", eff)
    share = getattr(model, "share_improved", None)
    if isinstance(share, pd.DataFrame) and len(share):
        sec.table("share_improved", "Posterior share of cells whose true change is positive.", share)
    if post is not None:
        post = post.drop(columns=[c for c in ("suppressed", "n") if c in post.columns])
        keep = post.merge(pub[["country", "group", "factor", "n", "suppressed"]], on=["country", "group", "factor"],
                          how="left") if "group" in post.columns else post
        if "n" in keep.columns:
            keep = ctx.publish(keep, columns=[c for c in keep.columns if c not in (
                "country", "group", "factor", "n", "suppressed", "flags", "suppression_reason")
                and pd.api.types.is_numeric_dtype(keep[c]) and not pd.api.types.is_bool_dtype(keep[c])],
                precision=True)
        sec.table("posterior", "Posterior change by cell (hierarchical model).", keep, collapsed=True)
        if "p_improved" in keep.columns:
            sec.plot("Posterior mean change per country and key factor (triangle: P(improved) ≥ 95% or ≤ 5%).",
                     "change_heatmap", keep, column_labels=flab, panel_labels=glab,
                     value_label="Posterior mean change")
    sec.result["model"] = {"kind": type(model).__name__,
                           "diagnostics": diag if isinstance(diag, dict) else None,
                           "reliable": bool(getattr(model, "reliable", True)),
                           "flags": [f.to_dict() for f in getattr(model, "flags", ())]}
    for fl in getattr(model, "flags", ()):
        sec.flags.append(fl)


# ============================================================================================ claims
def compute_claims(ctx: S.Context) -> Any:
    """The claim audit (``cs.claims.audit``) of the support table, on the change model when it ran."""
    from .. import claims

    support = ctx.inputs.get("support")
    if support is None or len(ctx.data.iterations) < 2:
        return None
    ch = ctx.raw.get("change")
    if ch is None or isinstance(ch, BaseException):
        ch = compute_change(ctx)
        ctx.raw["change"] = ch
    model = ch["model"] if ch is not None and not isinstance(ch["model"], (BaseException, str)) else None
    opts = dict(ctx.inputs.get("claims_options") or {})
    if model is not None:
        return _quiet(claims.audit, model, supported=support, cell_changes=ch["cells"], seed=ctx.options.seed,
                      **opts)
    return _quiet(claims.audit, ch["cells"], supported=support, rules=("point", "fdr"), seed=ctx.options.seed,
                  **opts)


def present_claims(ctx: S.Context, sec: S.Section, audit: Any) -> None:
    if audit is None:
        sec.note = ("The claim audit needs a support table (--support CSV with country, factor, supported) and "
                    "two iterations." if ctx.inputs.get("support") is None else
                    "The claim audit needs two iterations; the data hold one.")
        return
    glab, _ = _labels(ctx)
    verdict = ctx.anon_text(audit.verdict)
    for para in verdict.split("\n"):
        if para.strip():
            sec.paragraphs.append(para.strip())
    first = verdict.split(";")[0] if verdict else ""
    sec.headline = first + ("." if first and not first.endswith(".") else "")
    sec.table("shares", "Shares of improved cells per group, rule and set (intervals treat countries as "
              "clusters).", ctx.anon_frame(audit.shares))
    sec.table("tests", "Supported vs unsupported cells: every test run, with Holm-adjusted p-values.",
              ctx.anon_frame(audit.tests))
    sec.table("nulls", "Shares expected with no change and with the common drift alone.",
              ctx.anon_frame(audit.nulls), collapsed=True)
    sec.table("baseline", "Regression to the mean: baselines of supported and unsupported cells.",
              ctx.anon_frame(audit.baseline), collapsed=True)
    cells = audit.cells.copy()
    ch = ctx.raw.get("change")
    if ch is not None and not isinstance(ch, BaseException) and "n" not in cells.columns:
        t = ch["cells"].table
        n = t[["country", "group", "factor"]].assign(n=np.fmin(t["n_1"].to_numpy(float), t["n_2"].to_numpy(float)))
        cells = cells.merge(n, on=["country", "group", "factor"], how="left")
    if "n" in cells.columns:
        stats = [c for c in cells.columns if c not in ("country", "group", "factor", "n", "supported")
                 and (pd.api.types.is_numeric_dtype(cells[c]) or pd.api.types.is_bool_dtype(cells[c]))]
        cells = ctx.publish(cells, columns=[c for c in stats if pd.api.types.is_float_dtype(cells[c])])
        sup = cells["suppressed"].to_numpy(dtype=bool)
        for c in stats:
            if not pd.api.types.is_float_dtype(cells[c]):
                cells[c] = cells[c].astype(object)
                cells.loc[sup, c] = None
    sec.table("cells", "The audited cells with each rule's decision.", cells, collapsed=True)
    sec.plot("Share of improved cells, supported vs unsupported, per rule (grey bars: shares expected by "
             "chance or the common drift alone).",
             "claim_audit", audit.shares, audit.nulls, group_labels=glab)
    sec.result = S._result_dict(audit, replace={"cells": cells}, skip=("permutation_draws",))
    for fl in audit.flags:
        sec.flags.append(fl)


# ============================================================================================ KPI
def _targets(ctx: S.Context, factors: tuple, groups: tuple) -> pd.DataFrame:
    from ..errors import DataError, Problem

    t = ctx.inputs["targets"]
    need = {"factor", "group", "target"}
    if not need <= set(t.columns):
        raise DataError(f"The targets table needs columns factor, group, target; it has {list(t.columns)}.",
                        [Problem("targets_columns", "Missing columns.", column=c) for c in sorted(need - set(t))])
    t = t.copy()
    t["target"] = pd.to_numeric(t["target"], errors="coerce")
    probs = []
    for i, r in t.iterrows():
        if r["factor"] not in factors:
            probs.append(Problem("targets_factor", f"Unknown key factor {r['factor']!r}.", row=i + 1,
                                 column="factor", value=str(r["factor"])))
        if r["group"] not in groups:
            probs.append(Problem("targets_group", f"Unknown respondent group {r['group']!r}.", row=i + 1,
                                 column="group", value=str(r["group"])))
        if not np.isfinite(r["target"]):
            probs.append(Problem("targets_value", "The target is not a number.", row=i + 1, column="target"))
    if probs:
        raise DataError(f"The targets table has {len(probs)} problem(s).", probs)
    return t


def kpi_tables(ind: Any, targets: pd.DataFrame, *, ci: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                               pd.DataFrame]:
    """Probability of meeting each target, from the indicators' bootstrap replicates.

    Parameters
    ----------
    ind : Indicators
        ``cs.estimate.indicators`` (its ``replicates``, shape cells × factors × B).
    targets : pandas.DataFrame
        ``factor``, ``group``, ``target`` (and optionally ``country`` for
        country-specific targets).
    ci : float
        Level of the trend intervals.

    Returns
    -------
    (overall, trend, cells) : tuple of pandas.DataFrame
        ``overall``: per (factor, group) at the last iteration, the mean of
        the published country cells, the share of replicate means at or
        above the target (``probability``) and ``countries``; ``trend``: the
        same mean per iteration with percentile intervals; ``cells``: per
        country cell of the last iteration its ``probability``, ``estimate``
        and ``n``.  Cells suppressed by the precision rules are left out of
        the means.

    Examples
    --------
    >>> import cips_stats as cs, pandas as pd
    >>> sim = cs.simulate(seed=2, n_countries=3, n_repeat=2, n_officials=80, n_private=80)
    >>> ind = cs.estimate.indicators(sim.data, n_boot=50, seed=1)
    >>> tg = pd.DataFrame({"factor": ["leadership"], "group": ["officials"], "target": [0.0]})
    >>> overall, trend, cells = kpi_tables(ind, tg)
    >>> float(overall["probability"].iloc[0])
    1.0
    """
    factors = list(ind.factors)
    cells = ind.cells.reset_index(drop=True)
    reps = np.asarray(ind.replicates, dtype=np.float64)             # cells x factors x B
    est = np.asarray(ind.estimates, dtype=np.float64)
    tab = ind.table
    sup = tab["suppressed"].to_numpy(dtype=bool).reshape(len(cells), len(factors))
    n = tab["n"].to_numpy(dtype=float).reshape(len(cells), len(factors))
    ok = ~sup & np.isfinite(est)
    iters = cells["iteration"].to_numpy()
    last = max(iters)
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    rows_o, rows_t, rows_c = [], [], []
    for _, t in targets.iterrows():
        f = factors.index(t["factor"])
        g = t["group"]
        in_g = (cells["group"] == g).to_numpy()
        if "country" in targets.columns and isinstance(t.get("country"), str) and t["country"]:
            in_g &= (cells["country"] == t["country"]).to_numpy()
        for it in sorted(set(iters[in_g])):
            m = in_g & (iters == it) & ok[:, f]
            k = int(m.sum())
            if not k:
                continue
            mean_reps = reps[m, f, :].mean(axis=0)
            mean_est = float(est[m, f].mean())
            rows_t.append({"factor": t["factor"], "group": g, "iteration": it, "estimate": mean_est,
                           "ci_low": float(np.nanquantile(mean_reps, lo_q)),
                           "ci_high": float(np.nanquantile(mean_reps, hi_q)), "target": float(t["target"]),
                           "countries": k})
            if it == last:
                rows_o.append({"factor": t["factor"], "group": g, "iteration": it, "target": float(t["target"]),
                               "estimate": mean_est, "probability": float(np.mean(mean_reps >= t["target"])),
                               "countries": k})
        m = in_g & (iters == last)
        idx = np.flatnonzero(m)
        p = (reps[idx, f, :] >= t["target"]).mean(axis=1)
        rows_c.append(pd.DataFrame({"country": cells.loc[idx, "country"].to_numpy(), "iteration": last,
                                    "group": g, "factor": t["factor"], "target": float(t["target"]),
                                    "estimate": est[idx, f], "probability": p, "n": n[idx, f],
                                    "suppressed": sup[idx, f]}))
    overall = pd.DataFrame(rows_o, columns=["factor", "group", "iteration", "target", "estimate", "probability",
                                            "countries"])
    trend = pd.DataFrame(rows_t, columns=["factor", "group", "iteration", "estimate", "ci_low", "ci_high", "target",
                                          "countries"])
    cell_t = (pd.concat(rows_c, ignore_index=True) if rows_c else
              pd.DataFrame(columns=["country", "iteration", "group", "factor", "target", "estimate", "probability",
                                    "n", "suppressed"]))
    return overall, trend, cell_t


def compute_kpi(ctx: S.Context) -> Any:
    if ctx.inputs.get("targets") is None:
        return None
    ind = _indicators(ctx)
    targets = _targets(ctx, tuple(ind.factors), tuple(ctx.data.groups))
    return {"targets": targets, "tables": kpi_tables(ind, targets, ci=ind.ci), "ci": ind.ci}


def present_kpi(ctx: S.Context, sec: S.Section, res: Any) -> None:
    if res is None:
        sec.note = ("The KPI view needs targets (--targets CSV with columns factor, group, target): the "
                    "probability that each indicator meets its target and its trend across iterations.")
        return
    overall, trend, cells = res["tables"]
    glab, flab = _labels(ctx)
    cells = ctx.publish(cells.rename(columns={}), columns=["estimate", "probability"], precision=True)
    met = overall[overall["probability"] >= 0.95]
    sec.headline = (f"{len(met)} of {len(overall)} targets met with probability ≥ 95% at the last iteration "
                    "(mean of the published country cells).")
    sec.paragraphs.append(
        "For each target (key factor and group), the indicator is the mean of the published country cells; "
        "its probability of meeting the target is the share of the bootstrap replicates of that mean at or "
        "above the target (the replicates stand for the sampling distribution; with a flat prior this "
        "approximates the posterior probability). The trend shows the same mean at every iteration with its "
        f"{res['ci']:.0%} interval; the countries averaged may differ between iterations.")
    sec.table("overall", "Probability of meeting each target at the last iteration.", overall)
    sec.table("trend", "The indicator of each target across iterations.", trend)
    sec.table("cells", "Probability of meeting the target per country at the last iteration.", cells, collapsed=True)
    if len(overall):
        sec.plot("Probability of meeting the target (left) and the trend with the target as a dashed line.",
                 "kpi", overall, trend, row_labels=flab, colour_labels=glab, ylabel="Indicator (0-10)")
    sec.result = {"kind": "KPI", "overall": S._table_json(overall), "trend": S._table_json(trend),
                  "cells": S._table_json(cells), "targets": S._table_json(res["targets"])}


# ============================================================================================ review
def item_review(data: Any, *, cfa: Any = None, invariance: Any = None) -> pd.DataFrame:
    """One row per (group, item): alpha if deleted, loading, freed in partial invariance, "don't know" rate.

    Parameters
    ----------
    data : SurveyData
        The survey (pooled over countries and iterations within each group).
    cfa : mapping, optional
        ``{group: CFAResult}`` (the report's CFA section): standardised loadings.
    invariance : list, optional
        The report's invariance results ``(comparison, factor, InvarianceResult)``:
        items whose loading, intercept or threshold was freed.

    Returns
    -------
    pandas.DataFrame
        ``group, factor, item, n, alpha, alpha_if_deleted, delta_alpha_if_dropped,
        loading, noninvariant, freed_in, dont_know_rate, review, reasons``.

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=60, n_private=40)
    >>> t = item_review(sim.data)
    >>> sorted(t.columns[:3])
    ['factor', 'group', 'item']
    """
    from .. import reliability

    inst = data.instrument
    frame = data.frame
    exc = data.exclusions
    dk = exc[(exc["reason"] == "dont_know") & (exc["scope"] == "value")] if len(exc) else exc
    dk_counts = dk.merge(frame[["respondent_id", "group"]], on="respondent_id", how="inner") \
        .groupby(["group", "column"]).size() if len(dk) else pd.Series(dtype=float)
    freed: dict[tuple, set] = {}
    for _label, fac, r in (invariance or ()):
        if isinstance(r, BaseException):
            continue
        for term in getattr(r, "freed", ()):
            for item in inst.item_ids:
                if item in str(term).replace("=~", " ").replace("~", " ").replace("|", " ").split():
                    freed.setdefault(("*", item), set()).add(str(_label))
    rows = []
    for g in data.groups:
        sub = frame[frame["group"] == g]
        res_g = (cfa or {}).get(g)
        loads = {}
        if res_g is not None and not isinstance(res_g, BaseException):
            lo = res_g.loadings
            loads = dict(zip(lo["item"], lo["std_all"]))
        for f in inst.key_factors:
            items = [i for i in inst.factor_items(f.id, group=g) if i in sub.columns]
            if len(items) < 2:
                continue
            a = _quiet(reliability.cronbach_alpha, sub[items])
            it = a.items.set_index("item")
            for i in items:
                asked = len(sub)
                dkr = float(dk_counts.get((g, i), 0)) / asked if asked else np.nan
                aid = float(it.loc[i, "alpha_if_dropped"])
                fr = freed.get(("*", i), set())
                reasons = []
                if np.isfinite(aid) and aid > a.alpha:
                    reasons.append(f"dropping it raises alpha by {aid - a.alpha:.3f}")
                ld = float(loads.get(i, np.nan))
                if np.isfinite(ld) and ld < LOADING_REVIEW:
                    reasons.append(f"standardised loading {ld:.2f} < {LOADING_REVIEW:.2f}")
                if np.isfinite(dkr) and dkr > DONT_KNOW_REVIEW:
                    reasons.append(f"'don't know' {dkr:.0%} > {DONT_KNOW_REVIEW:.0%}")
                if fr:
                    reasons.append("not invariant (freed in partial invariance)")
                rows.append({"group": g, "factor": f.id, "item": i, "n": int(it.loc[i, "n"]), "alpha": float(a.alpha),
                             "alpha_if_deleted": aid, "delta_alpha_if_dropped": aid - float(a.alpha),
                             "loading": ld, "noninvariant": bool(fr), "freed_in": "; ".join(sorted(fr)),
                             "dont_know_rate": dkr, "review": bool(reasons), "reasons": "; ".join(reasons)})
    return pd.DataFrame(rows, columns=["group", "factor", "item", "n", "alpha", "alpha_if_deleted",
                                       "delta_alpha_if_dropped", "loading", "noninvariant", "freed_in",
                                       "dont_know_rate", "review", "reasons"])


def compute_review(ctx: S.Context) -> pd.DataFrame:
    cfa = ctx.raw.get("cfa")
    inv = ctx.raw.get("invariance")
    return item_review(ctx.data, cfa=None if isinstance(cfa, BaseException) else cfa,
                       invariance=None if isinstance(inv, BaseException) else inv)


#: Items per page of the review figure: the CIPS instrument's 50 items on one page about 880 px high (at the
#: report's 90 dpi), which still fits a screen; longer instruments are paginated.
REVIEW_ROWS = 50


def present_review(ctx: S.Context, sec: S.Section, table: pd.DataFrame) -> None:
    _, flab = _labels(ctx)
    inst = ctx.data.instrument
    pub = ctx.publish(table, columns=["alpha", "alpha_if_deleted", "delta_alpha_if_dropped", "loading",
                                      "dont_know_rate"])
    cand = pub[pub["review"].fillna(False).astype(bool) & ~pub["suppressed"]]
    cand = cand.sort_values("delta_alpha_if_dropped", ascending=False, kind="stable")
    sec.headline = f"{cand['item'].nunique()} of {pub['item'].nunique()} items are candidates for review."
    sources = []
    if ctx.raw.get("cfa") is None or isinstance(ctx.raw.get("cfa"), BaseException):
        sources.append("loadings are blank: the CFA section did not run")
    if ctx.raw.get("invariance") is None:
        sources.append("invariance did not run: no item is marked non-invariant")
    sec.paragraphs.append(
        "For guideline revision: per item and respondent group (pooled over countries and iterations), Cronbach's "
        "alpha of its key factor if the item were deleted, its standardised loading in the CFA, whether its "
        "parameters were freed in partial invariance, and its share of \"don't know\" answers. An item is a "
        f"candidate for review when dropping it raises alpha, its loading is below {LOADING_REVIEW:.2f}, more than "
        f"{DONT_KNOW_REVIEW:.0%} answer \"don't know\", or it is not invariant; the effect of dropping it is the "
        "change in its factor's alpha." + (" Note: " + "; ".join(sources) + "." if sources else ""))
    short = cand[["group", "factor", "item", "delta_alpha_if_dropped", "loading", "dont_know_rate", "reasons"]]
    sec.table("candidates", f"Candidate items to review ({len(short)}), with the effect of dropping each.",
              short.reset_index(drop=True))
    sec.table("items", "Every item.", pub, collapsed=True)
    texts = {i.id: f"{i.id}" for i in getattr(inst, "items", ())}
    for g in ctx.data.groups:
        sub = pub[(pub["group"] == g) & ~pub["suppressed"]]
        if len(sub):
            glab = S.group_labels(ctx)[g]
            sec.plot(f"{glab}: alpha if deleted, loading, \"don't know\" rate and non-invariance per item.",
                     "instrument_review", sub, factor_labels=flab, item_labels=texts, loading_cut=LOADING_REVIEW,
                     max_rows=REVIEW_ROWS)
    sec.result = {"kind": "InstrumentReview", "items": S._table_json(pub), "candidates": S._table_json(short),
                  "cut_offs": {"loading": LOADING_REVIEW, "dont_know_rate": DONT_KNOW_REVIEW}}


# ============================================================================================ appendix
def compute_appendix(ctx: S.Context) -> dict:
    return {}


def present_appendix(ctx: S.Context, sec: S.Section, _res: Any) -> None:
    import platform

    from .. import __version__
    from ..results import Provenance

    data = ctx.data
    prov = Provenance.build("report", data=data, seed=ctx.options.seed, options=ctx.options.to_dict())
    inst = data.instrument
    rows = [("package", f"cips_stats {__version__}"), ("python", platform.python_version()),
            ("instrument", f"{getattr(inst, 'name', '')} {getattr(inst, 'version', '') or ''}".strip()),
            ("instrument hash", prov.instrument_hash), ("data fingerprint", data.fingerprint),
            ("seed", ctx.options.seed), ("bootstrap replicates", ctx.options.n_boot),
            ("estimator (CFA, invariance)", ctx.options.estimator),
            ("minimum cell size (disclosure)", ctx.options.min_cell),
            ("countries anonymised", "yes" if ctx._gate().anonymise else "no")]
    for k, v in (ctx.inputs.get("sources") or {}).items():
        rows.append((f"input: {k}", ctx.anon_text(str(v))))
    for lib in ("numpy", "scipy", "pandas", "statsmodels", "pymc", "arviz", "matplotlib"):
        try:
            from importlib.metadata import version

            rows.append((lib, version(lib)))
        except Exception:
            continue
    kv = pd.DataFrame(rows, columns=["quantity", "value"])
    kv["value"] = kv["value"].astype(str)
    sec.paragraphs.append(
        "How this report was made: the methods of every section (with the page of the package's methodology "
        "folder that gives formulas, defaults and references), the software and the inputs. `cips-stats "
        "reproduce` re-runs the analysis from results.json and compares every number.")
    meth = pd.DataFrame([{"method": n, "page": f"methodology/{p}", "summary": t} for n, p, t in S.METHODS])
    sec.table("methods", "Methods.", meth)
    sec.table("provenance", "Provenance.", kv)
    steps = ctx.inputs.get("steps")
    if steps:
        st = pd.DataFrame([{"step": s["name"], "ok": s["ok"], "seconds": round(float(s["seconds"]), 3),
                            "error": ctx.anon_text(s.get("error") or "")} for s in steps])
        sec.table("steps", "Analysis steps and their time.", st)
    sec.headline = f"cips_stats {__version__}; data fingerprint {data.fingerprint}; seed {ctx.options.seed}."
    sec.result = {"kind": "Appendix", "provenance": S._table_json(kv)}


# ============================================================================================ registry
TITLES = {"change": "Change across iterations", "claims": "Claim audit", "kpi": "KPI view: targets",
          "review": "Instrument review", "appendix": "Methods and provenance"}

S.SECTION_TITLES.update(TITLES)
S.COMPUTE.update({"change": compute_change, "claims": compute_claims, "kpi": compute_kpi, "review": compute_review,
                  "appendix": compute_appendix})
S.PRESENT.update({"change": present_change, "claims": present_claims, "kpi": present_kpi, "review": present_review,
                  "appendix": present_appendix})
