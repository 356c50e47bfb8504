"""The sections of the report: what each computes (``compute_*``) and what it shows (``present_*``).

``compute_*`` functions call the public statistical API and return its raw
results; ``present_*`` functions turn a raw result into published tables
(after disclosure control), figures and text.  Nothing here rounds numbers:
rounding happens when the HTML is rendered.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import Flag

#: Hu & Bentler (1999) cut-offs of good fit: (measure, direction, value).
HU_BENTLER = (("cfi", ">=", 0.95), ("tli", ">=", 0.95), ("rmsea", "<=", 0.06), ("srmr", "<=", 0.08))

#: Statistic columns blanked in each table kind (besides the count).
_REL_STATS = ("alpha", "std_alpha", "ci_low", "ci_high", "omega", "omega_ci_low", "omega_ci_high", "n_eff",
              "mean_r", "se", "ordinal_alpha", "ordinal_omega")
_DRIFT_STATS = ("share_from", "share_to", "diff", "n_eff_from", "n_eff_to", "se", "z", "p_value")
_DRIFT_BOOL = ("large", "significant", "flagged")


# =============================================================================================== context
@dataclass
class Options:
    """Options of one report build (recorded in report.json)."""

    seed: int = 1
    n_boot: int = 1000
    min_cell: int = 10
    anonymise: bool = False
    cfa: bool = True
    invariance: str = "factor"
    invariance_levels: tuple = ("configural", "metric", "scalar")
    invariance_factors: tuple | None = None
    reliability_omega: bool = True
    estimator: str = "ML"                            # CFA and invariance estimator (ML, MLR, WLSMV)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class Context:
    """What the sections share during one build."""

    data: Any
    options: Options
    truth: Mapping[str, pd.DataFrame] | None = None
    mapping: dict = field(default_factory=dict)      # country -> anonymous label
    raw: dict = field(default_factory=dict)          # section -> raw result (shared, e.g. indicators for gap)
    inputs: dict = field(default_factory=dict)       # user tables of later sections (support, targets)

    gate: Any = None                                 # disclosure.Gate: every output passes through it
    n_jobs: int | None = None                        # worker processes (figures, invariance ladders)

    def __post_init__(self) -> None:
        if self.gate is not None and not self.mapping:
            self.mapping = dict(self.gate.mapping)       # country -> code, for "countries anonymised" notes

    # ------------------------------------------------------------------ disclosure and anonymisation
    def _gate(self) -> Any:
        if self.gate is None:
            from .. import disclosure

            self.gate = disclosure.Gate.for_survey(self.data, min_n=self.options.min_cell,
                                                   anonymise=self.options.anonymise)
            self.mapping = dict(self.gate.mapping)
        return self.gate

    def publish(self, table: pd.DataFrame, *, n_column: str = "n", columns: Sequence[str] | None = None,
                precision: bool = False) -> pd.DataFrame:
        """The table through the publication gate (``disclosure.Gate.table``)."""
        return self._gate().table(table, n_column=n_column, columns=columns, precision=precision)

    def anon_frame(self, table: pd.DataFrame) -> pd.DataFrame:
        return self._gate().frame(table)

    def anon_text(self, text: str) -> str:
        return self._gate().text(text)

    def anon_obj(self, obj: Any) -> Any:
        """A JSON-ready object through the gate (names coded, flags about suppressed cells redacted)."""
        return self._gate().obj(obj)


@dataclass
class Section:
    """One section of the report as shown."""

    name: str
    title: str
    ok: bool = True
    error: str | None = None
    note: str | None = None
    headline: str = ""                               # one sentence for the overview
    paragraphs: list = field(default_factory=list)
    tables: list = field(default_factory=list)       # (key, caption, DataFrame, collapsed, html_override)
    figures: list = field(default_factory=list)      # (caption, PNG bytes)
    result: Any = None                               # JSON-ready (sanitised) serialised result
    flags: list = field(default_factory=list)        # Flag
    seconds: float = 0.0

    def table(self, key: str, caption: str, frame: pd.DataFrame, *, collapsed: bool = False,
              display: pd.DataFrame | None = None) -> None:
        self.tables.append((key, caption, frame, collapsed, display))

    draw: bool = True                                # False: figures are not rendered (table exports)
    #: ``submit(kind, args, kwargs) -> Future`` of PNG pages (the build's worker processes); None: draw here
    submit: Callable[..., Any] | None = None
    pending: list = field(default_factory=list)      # (caption, Future, (kind, args, kwargs)) being drawn

    def _add(self, caption: str, pngs: Sequence[bytes]) -> None:
        for k, png in enumerate(pngs):
            self.figures.append((caption if len(pngs) == 1 else f"{caption} (page {k + 1} of {len(pngs)})", png))

    def figure(self, caption: str, make: Callable[[], Any]) -> None:
        """Render the figure that ``make()`` draws, here and now (nothing is drawn when ``draw`` is False)."""
        from .. import plotting

        if self.draw:
            fig = make()
            self._add(caption, [plotting.to_png(p) for p in (fig if isinstance(fig, (list, tuple)) else [fig])])

    def plot(self, caption: str, kind: str, *args: Any, **kwargs: Any) -> None:
        """Draw ``plotting.<kind>(*args, **kwargs)``: submitted now, collected by :meth:`collect`.

        The arguments travel to a worker process: pass the published tables
        the figure needs (nothing unpublished), not the survey.
        """
        from .. import plotting

        if self.draw:
            submit = self.submit or (lambda k, a, kw: plotting.submit(k, a, kw, n_jobs=1))
            self.pending.append((caption, submit(kind, args, kwargs), (kind, args, kwargs)))

    def collect(self) -> list:
        """Wait for the submitted figures and keep their PNGs in order; a figure that failed raises here.

        Returns the warnings raised while drawing, as ``(category, message)``.
        """
        pending, self.pending = self.pending, []
        caught: list = []
        for caption, fut, _job in pending:
            res = fut.result()
            pngs, more = res if isinstance(res, tuple) else (res, [])
            self._add(caption, pngs)
            caught += more
        return caught


def _table_json(frame: pd.DataFrame) -> dict:
    """``results.to_jsonable(frame)`` (``{"columns": [...], "data": [[...], ...]}``), converted column by column."""
    from ..output import _plain_columns
    from ..results import to_jsonable

    cols = _plain_columns(frame, to_jsonable)
    data = [list(row) for row in zip(*cols)] if cols else [[] for _ in range(len(frame))]
    return {"columns": [str(c) for c in frame.columns], "data": data}


def _result_dict(res: Any, *, replace: Mapping[str, Any] | None = None, drop: Sequence[str] = (),
                 skip: Sequence[str] = ()) -> dict:
    """``res.to_dict()`` with disclosure-sensitive fields replaced (published tables) or dropped.

    The fields replaced or dropped, and the bulky ones ``skip`` names (those the
    result's own ``to_dict`` leaves out, e.g. fitted models, permutation draws),
    are not serialised at all: they are blanked on a shallow copy first, so
    each result is turned into JSON once, and only what is kept.
    """
    import copy
    import dataclasses

    blank = set(replace or {}) | set(drop) | set(skip)
    blank -= set(getattr(res, "shape_only", ()))           # their shape is kept: they must stay
    if blank and dataclasses.is_dataclass(res):
        res = copy.copy(res)
        for f in dataclasses.fields(res):
            if f.name in blank:
                object.__setattr__(res, f.name, None)
    d = res.to_dict()
    for k, v in (replace or {}).items():
        d[k] = _table_json(v) if isinstance(v, pd.DataFrame) else v
    omitted = [k for k in drop if k in d]
    for k in omitted:
        d.pop(k)
    if omitted:
        d["omitted"] = omitted
    return d


def _flag_codes(table: pd.DataFrame, column: str = "flags") -> pd.DataFrame:
    """Count of cells carrying each ``;``-separated flag code."""
    if column not in table.columns or not len(table):
        return pd.DataFrame({"flag": pd.Series(dtype=object), "cells": pd.Series(dtype=int)})
    codes = table[column].fillna("").astype(str).str.split(";").explode()
    codes = codes[codes != ""]
    vc = codes.value_counts()
    return pd.DataFrame({"flag": vc.index.astype(object), "cells": vc.to_numpy()})


# =============================================================================================== data
def present_data(ctx: Context, sec: Section) -> None:
    data = ctx.data
    frame = data.frame
    exc = data.exclusions
    n_in = data.n_input_rows
    n_rows_excl = len(data.excluded_rows)
    used = len(frame)
    acc = pd.DataFrame({
        "quantity": ["records read", "respondents used", "records excluded (whole row)",
                     "values excluded (item or field)", "countries", "iterations", "respondent groups"],
        "value": [n_in if n_in is not None else used + n_rows_excl, used, n_rows_excl,
                  int((exc["scope"] != "row").sum()) if len(exc) else 0, frame["country"].nunique(),
                  len(data.iterations), len(data.groups)]})
    if not ctx._gate().total_published("total"):
        acc.loc[acc["quantity"].isin(["records read", "respondents used"]), "value"] = np.nan
        used = "(withheld)"                          # the total would give a hidden cell back
    sec.table("accounting", "Rows in, used and excluded.", acc)
    if len(exc):
        # declared missing codes are split by their meaning (don't know, refused, ...); other rules
        # carry one message per value, so the first stands for the rule
        split = exc["rule"].isin(["missing_code", "user_missing"])
        detail = exc["reason"].where(split, "").astype(str)
        by_rule = (exc.assign(_detail=detail).groupby(["scope", "rule", "_detail"], dropna=False)
                   .agg(count=("rule", "size"), reason=("reason", "first")).reset_index()
                   .drop(columns="_detail"))
        by_rule = by_rule.sort_values(["scope", "count"], ascending=[True, False], kind="stable")
    else:
        by_rule = pd.DataFrame({"scope": [], "rule": [], "count": [], "reason": []})
    by_rule = ctx.anon_frame(by_rule)
    sec.table("exclusions_by_rule", "Exclusions by rule (each excluded value or row is counted once, "
              "with the reason of the validation rule).", by_rule.reset_index(drop=True))
    counts = frame.groupby(["country", "iteration", "group"], sort=True).size().rename("n").reset_index()
    pub = ctx.publish(counts, columns=[])
    sec.table("respondents", f"Respondents per country, iteration and group (counts below {ctx.options.min_cell} "
              "are suppressed).", pub, collapsed=len(pub) > 30)
    sec.headline = (f"{used} respondents used; {acc.loc[3, 'value']} values and {n_rows_excl} whole records "
                    f"excluded, each by a named rule.")
    sec.paragraphs.append(
        f"{used} respondents in {frame['country'].nunique()} countries, iterations "
        f"{', '.join(map(str, data.iterations))}, groups {', '.join(data.groups)}. Every value that was not used "
        "is accounted for by a validation rule (see the exclusions table).")
    sec.result = {"accounting": _table_json(acc), "exclusions_by_rule": _table_json(by_rule),
                  "respondents": _table_json(pub), "fingerprint": data.fingerprint, "source": None}


# =============================================================================================== reliability
def compute_reliability(ctx: Context) -> pd.DataFrame:
    import warnings

    from .. import reliability
    from ..errors import CipsWarning

    with warnings.catch_warnings():      # the cell flags travel in the table's flags column
        warnings.simplefilter("ignore", CipsWarning)
        res = reliability.by_cell(ctx.data, by=("country", "iteration", "group"), omega=ctx.options.reliability_omega)
    return res.to_frame()


def present_reliability(ctx: Context, sec: Section, rel: pd.DataFrame) -> None:
    pub = ctx.publish(rel, columns=_REL_STATS)
    ok = ~pub["suppressed"].to_numpy(dtype=bool)
    summ = []
    for (g, f), sub in pub[ok].groupby(["group", "factor"], sort=False):
        a = sub["alpha"].to_numpy(dtype=float)
        a = a[np.isfinite(a)]
        o = sub["omega"].to_numpy(dtype=float) if "omega" in sub else np.array([])
        o = o[np.isfinite(o)]
        summ.append({"group": g, "factor": f, "cells": len(sub),
                     "alpha_median": float(np.median(a)) if a.size else np.nan,
                     "alpha_min": float(a.min()) if a.size else np.nan,
                     "cells_alpha_below_0.70": int((a < 0.70).sum()),
                     "omega_median": float(np.median(o)) if o.size else np.nan})
    summary = pd.DataFrame(summ)
    a_pub = pub.loc[ok, "alpha"].to_numpy(dtype=float)
    a_pub = a_pub[np.isfinite(a_pub)]
    if a_pub.size:
        sec.headline = (f"Alpha below .70 in {int((a_pub < 0.70).sum())} of {a_pub.size} published cell × factor "
                        f"combinations (median alpha {np.median(a_pub):.2f}).")
    sec.paragraphs.append(
        "Cronbach's alpha (Feldt 95% interval) and McDonald's omega of every key factor in every country × "
        "iteration × group cell. Values below .70 are questionable and below .60 poor; cells with fewer than "
        f"{ctx.options.min_cell} respondents are suppressed.")
    sec.table("summary", "Reliability per group and factor over published cells.", summary)
    sec.table("flags", "Flags over published cells (count of cells).", _flag_codes(pub))
    sec.table("cells", "Reliability by cell.", pub, collapsed=True)
    if ok.any():
        sec.plot("Alpha per cell (dashed lines: .60 and .70).", "reliability", pub, value="alpha")
    prov = rel.attrs.get("provenance")
    sec.result = {"kind": "ReliabilityByCell", "table": _table_json(pub),
                  "provenance": prov.to_dict() if hasattr(prov, "to_dict") else None}


#: Columns a dot-panel figure reads (the rest of a published table does not travel to the workers).
_DOT_COLUMNS = ["country", "iteration", "group", "factor", "estimate", "ci_low", "ci_high", "suppressed"]


# =============================================================================================== CFA
def compute_cfa(ctx: Context) -> dict:
    """One CFA (instrument model, ML with FIML) per respondent group; failures kept as exceptions."""
    from .. import factor

    out: dict[str, Any] = {}
    for g in ctx.data.groups:
        try:
            out[g] = factor.cfa(ctx.data, respondent_group=g, estimator=ctx.options.estimator)
        except Exception as exc:  # a group that cannot be fitted is reported, the others are shown
            out[g] = exc
    return out


def _mark(value: float, op: str, cut: float) -> str:
    if value is None or not np.isfinite(value):
        return ""
    good = value >= cut if op == ">=" else value <= cut
    return "✓" if good else "✗"


def present_cfa(ctx: Context, sec: Section, fits: Mapping[str, Any]) -> None:
    rows, loads, results, errors = [], [], {}, []
    for g, r in fits.items():
        if isinstance(r, BaseException):
            errors.append(f"{g}: {type(r).__name__}: {r}")
            continue
        n = int(sum(r.n_obs))
        f = r.fit
        row = {"group": g, "n": n, "converged": bool(r.converged), "estimator": r.estimator,
               "missing": r.missing}
        for k in ("chi2", "df", "pvalue", "cfi", "tli", "rmsea", "srmr", "aic", "bic"):
            row[k] = f.get(k, np.nan)
        ci = f.get("rmsea_ci", (np.nan, np.nan))
        row["rmsea_ci_low"], row["rmsea_ci_high"] = ci
        for k, op, cut in HU_BENTLER:
            row[f"meets_{k}"] = bool(_mark(row[k], op, cut) == "✓") if np.isfinite(row[k]) else None
        rows.append(row)
        if n >= ctx.options.min_cell:
            lo = r.loadings[["factor", "item", "est", "se", "std_all"]].copy()
            lo.insert(0, "group", g)
            lo["n"] = n
            loads.append(lo)
            results[g] = _result_dict(r, drop=("vcov", "implied", "sample")
                                      + (() if ctx._gate().total_published(f"group={g}") else ("n_obs",)))
            for fl in r.flags:
                sec.flags.append(Flag(fl.code, f"[{g}] {fl.message}", fl.severity, {**fl.where, "group": g}))
    fit = pd.DataFrame(rows)
    sec.headline = "; ".join(
        f"{r['group']}: CFI {r['cfi']:.3f}, RMSEA {r['rmsea']:.3f}, SRMR {r['srmr']:.3f} "
        f"({sum(bool(r[f'meets_{k}']) for k, _, _ in HU_BENTLER)} of 4 Hu & Bentler cut-offs met)"
        for r in rows if r["n"] >= ctx.options.min_cell) + ("." if rows else "")
    if len(fit):
        fit = ctx.publish(fit, columns=[c for c in fit.columns if c not in ("group", "n", "converged", "estimator",
                                                                              "missing")])
        # a group's n is its total: blank where the gate withdrew that total (it would reveal a hidden cell)
        withheld = fit["group"].map(lambda g: not ctx._gate().total_published(f"group={g}")).to_numpy(dtype=bool)
        fit.loc[withheld, "n"] = np.nan
        # the lavaan-style display: one row per measure, one column per group, cut-offs marked
        disp = {"measure": ["n", "converged", "chi-square", "df", "p-value", "CFI", "TLI", "RMSEA",
                            "RMSEA 90% CI", "SRMR", "AIC", "BIC"],
                "Hu & Bentler (1999)": ["", "", "", "", "", "≥ .95", "≥ .95", "≤ .06", "", "≤ .08", "", ""]}
        for _, r in fit.iterrows():
            def num(k, d=3):
                v = r[k]
                return "" if v is None or pd.isna(v) else f"{float(v):.{d}f}"
            marks = {k: _mark(float(r[k]) if not pd.isna(r[k]) else np.nan, op, cut) for k, op, cut in HU_BENTLER}
            disp[str(r["group"])] = [
                "" if pd.isna(r["n"]) else str(int(r["n"])), str(bool(r["converged"])), num("chi2"), num("df", 0),
                num("pvalue"), f"{num('cfi')} {marks['cfi']}", f"{num('tli')} {marks['tli']}",
                f"{num('rmsea')} {marks['rmsea']}",
                f"({num('rmsea_ci_low')}, {num('rmsea_ci_high')})" if num("rmsea_ci_low") else "",
                f"{num('srmr')} {marks['srmr']}", num("aic", 1), num("bic", 1)]
        sec.table("fit", f"Fit of the instrument's model per respondent group ({ctx.options.estimator}); "
                  "✓ meets / ✗ misses the Hu & Bentler (1999) cut-off.", fit, display=pd.DataFrame(disp))
    if loads:
        lo = pd.concat(loads, ignore_index=True)
        lo = ctx.publish(lo, columns=["est", "se", "std_all"])
        lo["std_all_below_0.40"] = lo["std_all"] < 0.40
        sec.table("loadings", "Loadings (unstandardised with SE; standardised std_all).", lo, collapsed=True)
    sec.paragraphs.append(cfa_note(ctx))
    sec.result = {"kind": "CFAByGroup", "groups": results, "fit": _table_json(fit)}
    if errors:
        raise SectionIncomplete("; ".join(errors))


class SectionIncomplete(RuntimeError):
    """Part of a section failed; what succeeded is shown."""


# =============================================================================================== invariance
def _comparisons(ctx: Context) -> list[tuple[str, str, Any, dict]]:
    """(label, factor or 'model', data, kwargs) of every invariance fit to run."""
    data = ctx.data
    inst = data.instrument
    o = ctx.options
    factors = [f.id for f in inst.key_factors]
    if o.invariance_factors is not None:
        factors = [f for f in factors if f in set(o.invariance_factors)]
    jobs = []
    groups = data.groups
    its = data.iterations
    for g in groups:
        if len(its) < 2:
            break
        sub = data.frame[data.frame["group"] == g]
        per = sub.groupby("country")["iteration"].nunique()
        repeated = per[per == len(its)].index.tolist()
        if not repeated:
            continue
        d_g = data.subset(country=repeated, group=g)
        label = f"iterations ({g}; {len(repeated)} countries surveyed in every iteration)"
        if o.invariance == "model":
            jobs.append((label, "model", d_g, {"group": "iteration", "respondent_group": g}))
        else:
            for f in factors:
                items = list(inst.factor_items(f, group=g))
                if len(items) >= 3:
                    jobs.append((label, f, d_g, {"group": "iteration", "respondent_group": g,
                                                 "model": f"{f} =~ " + " + ".join(items)}))
    if len(groups) >= 2:
        label = f"respondent groups ({', '.join(groups)})"
        if o.invariance == "model":
            jobs.append((label, "model", data, {"group": "group"}))
        else:
            shared_all = set.intersection(*(set(inst.items_for(g)) for g in groups))
            for f in factors:
                items = [i for i in inst.factor_items(f) if i in shared_all]
                if len(items) >= 3:
                    jobs.append((label, f, data, {"group": "group", "model": f"{f} =~ " + " + ".join(items)}))
    return jobs


def _n_withheld(ctx: Context) -> bool:
    """True when the gate withdrew a total the invariance sample sizes would publish."""
    return any(w.startswith(("repeated[", "group=")) for w in ctx._gate().withdrawn)


def _fit_ladder(d: Any, what: str, levels: tuple, estimator: str, kw: dict) -> tuple[str, Any]:
    """One invariance ladder: (its name, the result or the exception)."""
    from .. import factor

    try:
        if estimator in ("WLSMV", "DWLS"):
            kw = {**kw, "estimator": estimator, "ordered": True}
        elif estimator != "ML":
            kw = {**kw, "estimator": estimator}
        try:
            return what, factor.invariance(d, levels=levels, **kw)
        except Exception as exc:
            if not kw.get("ordered"):
                raise
            # ordinal invariance needs every answer category in every group; small groups often lack
            # one: the comparison falls back to ML and says so in its name
            res = factor.invariance(d, levels=levels,
                                    **{k: v for k, v in kw.items() if k not in ("estimator", "ordered")})
            return f"{what} (ML: the ordinal fit failed: {str(exc).split('.')[0]})", res
    except Exception as exc:
        return what, exc


def _fit_ladders(batch: list, filters: list) -> list:
    """Fit a batch of ladders in a worker, under the caller's warning filters; the warnings go back with them."""
    import pickle
    import warnings

    out = []
    for i, d, what, levels, estimator, kw in batch:
        with warnings.catch_warnings(record=True) as caught:
            warnings.filters[:] = filters
            name, res = _fit_ladder(d, what, levels, estimator, kw)
        if isinstance(res, BaseException):
            try:
                pickle.loads(pickle.dumps(res))
            except Exception:                        # an exception that cannot travel back: its words do
                from ..errors import CipsError

                res = CipsError(f"{type(res).__name__}: {res}")
        out.append((i, name, res, [(w.category, str(w.message)) for w in caught]))
    return out


def compute_invariance(ctx: Context) -> list[tuple[str, str, Any]]:
    """Every invariance ladder; independent ladders are fitted in worker processes (``ctx.n_jobs``)."""
    import warnings

    from .. import plotting

    jobs = _comparisons(ctx)
    levels, est = ctx.options.invariance_levels, ctx.options.estimator
    workers = min(len(jobs), plotting.default_jobs() if ctx.n_jobs is None else ctx.n_jobs)
    if workers <= 1:
        return [(label, *_fit_ladder(d, what, levels, est, kw)) for label, what, d, kw in jobs]
    # batches (two per worker, balanced by sample size): each batch carries its survey subsets once
    batches: list[list] = [[] for _ in range(2 * workers)]
    load = np.zeros(len(batches))
    for i in sorted(range(len(jobs)), key=lambda i: -len(jobs[i][2].frame)):
        b = int(np.argmin(load))
        label, what, d, kw = jobs[i]
        batches[b].append((i, d, what, levels, est, kw))
        load[b] += len(d.frame)
    filters = list(warnings.filters)
    try:
        pool = plotting._executor(workers)              # the pool the figures use: started once, reused
        done = [f.result() for f in [pool.submit(_fit_ladders, b, filters) for b in batches if b]]
    except Exception as exc:                            # a broken or shut-down pool: fit here, and say so
        from ..errors import CipsWarning

        warnings.warn(f"Invariance ladders fitted in one process: the worker pool failed ({type(exc).__name__}: "
                      f"{exc}).", CipsWarning, stacklevel=2)
        return [(label, *_fit_ladder(d, what, levels, est, kw)) for label, what, d, kw in jobs]
    fitted = {i: (name, res, caught) for part in done for i, name, res, caught in part}
    out = []
    for i, (label, _what, _d, _kw) in enumerate(jobs):
        name, res, caught = fitted[i]
        for category, message in caught:             # the workers' warnings, in the order of the ladders
            warnings.warn(message, category, stacklevel=2)
        out.append((label, name, res))
    return out


def present_invariance(ctx: Context, sec: Section, results: Sequence[tuple[str, str, Any]]) -> None:
    summ, ladder, dicts, errors = [], [], [], []
    if not results:
        sec.note = ("No comparison to make: the data hold a single iteration (or no country surveyed in every "
                    "iteration) and a single respondent group.")
    for label, what, r in results:
        if isinstance(r, BaseException):
            errors.append(f"{what} / {label}: {type(r).__name__}: {r}")
            summ.append({"comparison": label, "factor": what, "n": np.nan, "level_supported": "error",
                         "level_full": "", "latent_means_comparable": None, "observed_means_comparable": None,
                         "freed": "", "error": f"{type(r).__name__}: {r}"})
            continue
        n_min = int(min(r.n_per_group)) if r.n_per_group else 0
        summ.append({"comparison": label, "factor": what, "n": n_min,
                     "groups": ", ".join(map(str, r.group_labels)),
                     "level_supported": r.level_supported, "level_full": r.level_full,
                     "latent_means_comparable": bool(r.supports("means")),
                     "observed_means_comparable": bool(r.supports("observed_means")),
                     "freed": ", ".join(r.freed), "error": ""})
        lt = r.table.copy()
        lt.insert(0, "level", lt.index.astype(str))
        lt.insert(0, "factor", what)
        lt.insert(0, "comparison", label)
        lt["n"] = n_min
        ladder.append(lt.reset_index(drop=True))
        for fl in r.flags:
            sec.flags.append(Flag(fl.code, f"[{what}; {label}] {fl.message}", fl.severity,
                                  {**fl.where, "factor": what, "comparison": label}))
        rd = _result_dict(r, skip=("fits",)) if n_min >= ctx.options.min_cell else None
        if rd is not None and _n_withheld(ctx):
            rd.pop("n_per_group", None)
        dicts.append({"comparison": label, "factor": what, "result": rd})
    summary = pd.DataFrame(summ)
    if len(summary):
        lv = summary["level_supported"].astype(str)
        full = (summary["level_full"].astype(str).isin(["scalar", "strict"])).sum()
        sec.headline = (f"Full scalar invariance in {int(full)} of {len(summary)} comparisons; partial in "
                        f"{int(lv.str.startswith('partial').sum())}; below scalar in "
                        f"{int((~lv.isin(['scalar', 'strict']) & ~lv.str.startswith('partial_s')).sum())}.")
        summary = ctx.publish(summary, columns=[])
        if _n_withheld(ctx):
            summary["n"] = np.nan
        summary.loc[summary["suppressed"], ["level_supported", "level_full", "freed"]] = ""
        sec.table("verdicts", "Supported level per comparison (n: smallest group compared).", summary)
    if ladder:
        lad = pd.concat(ladder, ignore_index=True)
        stats = [c for c in lad.columns if c not in ("comparison", "factor", "level", "compared_to", "verdict", "n")]
        lad = ctx.publish(lad, columns=stats)
        if _n_withheld(ctx):
            lad["n"] = np.nan
        lad.loc[lad["suppressed"], "verdict"] = ""
        sec.table("ladder", "The invariance ladder of every comparison (Chen 2007 criteria).", lad, collapsed=True)
    scope = ("one-factor model of each key factor" if ctx.options.invariance == "factor"
             else "the instrument's full model")
    sec.paragraphs.append(
        f"Measurement invariance ({', '.join(ctx.options.invariance_levels)}) of the {scope}, across iterations "
        "(within each respondent group, countries surveyed in every iteration) and across respondent groups "
        "(items asked of both). Latent means may be compared when (partial) scalar invariance holds; observed "
        "indicator means need full scalar invariance.")
    sec.result = {"kind": "InvarianceComparisons", "comparisons": dicts}
    if errors:
        raise SectionIncomplete(f"{len(errors)} of {len(results)} comparisons failed: " + "; ".join(errors[:5]))


# =============================================================================================== indicators
def compute_indicators(ctx: Context) -> Any:
    from .. import estimate

    return estimate.indicators(ctx.data, by=("country", "iteration", "group"), n_boot=ctx.options.n_boot,
                               seed=ctx.options.seed)


def present_indicators(ctx: Context, sec: Section, ind: Any) -> None:
    pub = ctx.publish(ind.table, precision=True)
    n_sup = int(pub["suppressed"].sum())
    sec.paragraphs.append(
        f"Key-factor indicators (mean score 0-10) of every country × iteration × group cell, with "
        f"{ind.ci:.0%} {ind.ci_method} intervals from {ind.n_boot} Rao-Wu bootstrap replicates (seed "
        f"{ind.seed}). {n_sup} of {len(pub)} cells are suppressed: fewer than {ctx.options.min_cell} "
        "respondents (disclosure) or too imprecise (fewer than 30 scored respondents or a coefficient of "
        "variation above 33%).")
    sec.table("cells", "Indicators by cell.", pub, collapsed=True)
    sec.headline = f"{len(pub) - n_sup} of {len(pub)} cell × factor indicators published ({n_sup} suppressed)."
    truth = None
    if ctx.truth is not None and "indicators" in ctx.truth:
        truth = ctx.anon_frame(ctx.truth["indicators"])
        cov = _coverage(pub, truth)
        if cov is not None:
            by, overall = cov
            sec.paragraphs.append(
                f"Synthetic data: {overall['covered']} of {overall['cells']} published intervals cover the true "
                f"value ({overall['coverage']:.1%}; nominal {ind.ci:.0%}, Monte Carlo SE "
                f"{overall['mc_se']:.1%}).")
            sec.headline += f" Interval coverage against the truth: {overall['coverage']:.1%}."
            sec.table("coverage", "Coverage of the indicator intervals against the known truth.", by)
    glabels = group_labels(ctx)
    flabels = {f.id: (f.label or f.id) for f in getattr(ctx.data.instrument, "factors", ())}
    for g in ctx.data.groups:
        sub = pub[pub["group"] == g]
        if np.isfinite(sub["estimate"].to_numpy(dtype=float)).any():
            sec.plot(f"{glabels[g]}: estimate and {ind.ci:.0%} interval per country, key factor and iteration"
                     + (" (crosses: truth)" if truth is not None else "") + ".",
                     "dot_panels", sub[_DOT_COLUMNS], panel_labels=flabels, colour_title="Iteration",
                     xlabel="Indicator (0-10)", truth=None if truth is None else truth[truth["group"] == g])
    sec.result = _result_dict(ind, replace={"table": pub},
                              drop=("estimates", "n", "influence", "suppressed", "cells"))


def _coverage(pub: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, dict] | None:
    keys = [k for k in ("country", "iteration", "group", "factor") if k in truth.columns and k in pub.columns]
    m = pub[~pub["suppressed"]].merge(truth[keys + ["value"]], on=keys, how="inner")
    m = m[np.isfinite(m["ci_low"].to_numpy(dtype=float)) & np.isfinite(m["value"].to_numpy(dtype=float))]
    if not len(m):
        return None
    m["covered"] = (m["ci_low"] <= m["value"]) & (m["value"] <= m["ci_high"])
    by = m.groupby(["group", "factor"], sort=False)["covered"].agg(["size", "sum"]).reset_index()
    by.columns = ["group", "factor", "cells", "covered"]
    by["coverage"] = by["covered"] / by["cells"]
    k, c = len(m), int(m["covered"].sum())
    p = c / k
    overall = {"cells": k, "covered": c, "coverage": p, "mc_se": math.sqrt(p * (1 - p) / k)}
    return by, overall


# =============================================================================================== gap
def compute_gap(ctx: Context) -> Any:
    from .. import estimate

    groups = ctx.data.groups
    if len(groups) < 2:
        return None
    ind = ctx.raw.get("indicators")
    if ind is None:
        ind = compute_indicators(ctx)
        ctx.raw["indicators"] = ind
    return estimate.perception_gap(ind, minuend=groups[0], subtrahend=groups[1])


def present_gap(ctx: Context, sec: Section, gap: Any) -> None:
    if gap is None:
        sec.note = "The data hold a single respondent group: there is no gap to show."
        return
    groups = ctx.data.groups
    pub = ctx.publish(gap.table, n_column="n_min", precision=True)
    labels = group_labels(ctx)
    sec.title = gap_title(ctx)
    sec.paragraphs.append(
        f"The perception gap: indicator of {labels[groups[0]]} minus indicator of {labels[groups[1]]} in the same "
        "country and "
        "iteration, with its interval from the same bootstrap replicates. A gap is shown only when both cells "
        "are published.")
    sec.table("cells", "Gap by country, iteration and factor.", pub, collapsed=True)
    shown = pub[~pub["suppressed"]]
    excl = shown[(shown["ci_low"] > 0) | (shown["ci_high"] < 0)]
    sec.headline = (f"The interval excludes 0 in {len(excl)} of {len(shown)} published gaps "
                    f"({int((excl['estimate'] > 0).sum())} with {groups[0]} higher).")
    if np.isfinite(pub["estimate"].to_numpy(dtype=float)).any():
        flabels = {f.id: (f.label or f.id) for f in getattr(ctx.data.instrument, "factors", ())}
        sec.plot("Gap per country, key factor and iteration (dot: estimate; line: interval; dashed: no gap).",
                 "gap", pub[[c for c in _DOT_COLUMNS if c in pub.columns]], panel_labels=flabels,
                 xlabel=f"{labels[groups[0]]} minus {labels[groups[1]]}")
    sec.result = _result_dict(gap, replace={"table": pub})


# =============================================================================================== drift
def compute_drift(ctx: Context) -> Any:
    from .. import weighting

    frame = ctx.data.frame
    variables = [d.name for d in ctx.data.instrument.demographics if d.name in frame.columns]
    if len(ctx.data.iterations) < 2 or not variables:
        return None
    return weighting.composition_drift(ctx.data, variables=variables)


def publish_drift(ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
    """Shares through ``Gate.shares``: cells and categories below the minimum size, with complements."""
    from .. import disclosure

    keys = [k for k in ("country", "group") if k in table.columns]
    variables = sorted(table["variable"].astype(str).unique()) if len(table) else []
    cnt = disclosure.category_counts(ctx.data.frame, keys + ["iteration"], variables)
    cnt["category"] = cnt["category"].astype(str)
    t = table.copy()
    t["_cat"] = t["category"].astype(str)
    for side in ("from", "to"):
        c = cnt.rename(columns={"iteration": f"iteration_{side}", "count": f"count_{side}", "category": "_cat"})
        t = t.merge(c, on=keys + [f"iteration_{side}", "variable", "_cat"], how="left")
        t[f"count_{side}"] = t[f"count_{side}"].fillna(0)
    t = t.drop(columns="_cat")
    within = keys + ["iteration_from", "iteration_to", "variable"]
    pub = ctx._gate().shares(t, within=within, share_columns={"share_from": "count_from", "share_to": "count_to"},
                             n_columns=("n_from", "n_to"),
                             columns=[c for c in (*_DRIFT_STATS, *_DRIFT_BOOL) if c not in ("share_from", "share_to")])
    for c in _DRIFT_BOOL:
        if c in pub.columns:
            pub[c] = pub[c].astype("boolean")
    return pub


def drift_flags(pub: pd.DataFrame) -> list:
    """The drift flags, rebuilt from the published shares only (a hidden share is never quoted)."""
    keys = [k for k in ("country", "group", "iteration_from", "iteration_to", "variable") if k in pub.columns]
    shown = pub[pub["flagged"].fillna(False).astype(bool)]
    out = []
    for key, g in shown.groupby(keys, sort=False):
        worst = g.loc[g["diff"].abs().idxmax()]
        where = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, key)}
        out.append(Flag("composition_drift", f"Share of '{worst['category']}' in {where.get('variable')} moved "
                        f"from {worst['share_from']:.0%} to {worst['share_to']:.0%}; consider reweighting to a "
                        "common structure.", "warning", where))
    return out


def present_drift(ctx: Context, sec: Section, drift: Any) -> None:
    if drift is None:
        sec.note = drift_note(ctx)
        return
    pub = publish_drift(ctx, drift.table)
    flagged = pub[pub["flagged"].fillna(False).astype(bool)]
    sec.paragraphs.append(
        f"Shares of demographic categories in each country × group cell, compared between consecutive "
        f"iterations. A shift is flagged when it exceeds {drift.threshold:.0%} and is significant at "
        f"{drift.alpha} (Kish-adjusted z test): indicator changes there may reflect who answered rather than "
        "what changed; reweighting both iterations to a common structure removes it.")
    sec.headline = f"{len(flagged)} large and significant shifts among {int((~pub['suppressed']).sum())} published comparisons."
    sec.table("flagged", f"Flagged shifts ({len(flagged)}).", flagged.reset_index(drop=True))
    sec.table("all", "All shares compared.", pub, collapsed=True)
    # the drift's own flags quote shares the gate may hide: they are rebuilt from the published table
    flags = drift_flags(pub)
    sec.flags.extend(flags)
    sec.result = _result_dict(drift, replace={"table": pub, "flags": [f.to_dict() for f in flags]})


# =============================================================================================== wording
def group_labels(ctx: Context) -> dict:
    """Display label of every respondent group of the data: the instrument's label, else the id."""
    declared = {g.id: (g.label or g.id) for g in getattr(ctx.data.instrument, "groups", ())}
    return {g: declared.get(g, str(g)) for g in ctx.data.groups}


def gap_title(ctx: Context) -> str:
    """"<first group> – <second group> perception gap" from the instrument's first two groups."""
    groups = list(ctx.data.groups)
    if len(groups) < 2:
        return "Perception gap between respondent groups"
    labels = group_labels(ctx)
    return f"{labels[groups[0]]} – {labels[groups[1]]} perception gap"


def scale_words(ctx: Context) -> str:
    """The instrument's answer scale in words, e.g. ``"6-point"``."""
    points = getattr(getattr(ctx.data.instrument, "scale", None), "points", None)
    return f"{int(points)}-point" if points else "ordinal"


_ESTIMATOR_WORDS = {
    "ML": "maximum likelihood, with full-information ML for missing answers",
    "MLR": "maximum likelihood with robust (Huber-White) standard errors and the Yuan-Bentler scaled test, "
           "full-information ML for missing answers",
    "WLSMV": "diagonally weighted least squares on polychoric correlations with mean- and variance-adjusted "
             "test (WLSMV), the items treated as ordinal, pairwise-present answers",
    "DWLS": "diagonally weighted least squares on polychoric correlations, the items treated as ordinal",
}


def cfa_note(ctx: Context) -> str:
    """The CFA section's paragraph: estimator chosen and the instrument's scale."""
    est = ctx.options.estimator
    words = _ESTIMATOR_WORDS.get(est, est)
    ordinal = est in ("WLSMV", "DWLS")
    return ("Confirmatory factor analysis of the instrument's model (items on their key factors, factors "
            f"correlated), fitted separately for each respondent group by {words}. "
            + (f"The {scale_words(ctx)} items are ordered categories, so the ordinal estimator was used; "
               "Hu & Bentler's cut-offs were derived for continuous data and are read here as a guide, not a test."
               if ordinal else
               f"Hu & Bentler's cut-offs are rules of thumb for continuous data; with {scale_words(ctx)} items "
               "they are a guide, not a test."))


def drift_note(ctx: Context) -> str:
    """Why composition drift cannot be shown: one iteration, or no demographic column declared or present."""
    inst = ctx.data.instrument
    declared = [d.name for d in getattr(inst, "demographics", ())]
    present = [d for d in declared if d in ctx.data.frame.columns]
    if len(ctx.data.iterations) < 2:
        return ("Composition drift needs two iterations; the data hold a single iteration "
                f"({', '.join(map(str, ctx.data.iterations))}).")
    if not declared:
        return "Composition drift needs demographic variables; the instrument declares none."
    return (f"Composition drift needs the declared demographic columns ({', '.join(declared)}); "
            "none of them is in the data.")


# =============================================================================================== registry
SECTION_TITLES = {
    "data": "Data and exclusions",
    "reliability": "Reliability by cell",
    "cfa": "Confirmatory factor analysis",
    "invariance": "Measurement invariance",
    "indicators": "Indicators",
    "gap": "Perception gap between respondent groups",
    "drift": "Composition drift",
}

COMPUTE: dict[str, Callable[[Context], Any]] = {
    "reliability": compute_reliability,
    "cfa": compute_cfa,
    "invariance": compute_invariance,
    "indicators": compute_indicators,
    "gap": compute_gap,
    "drift": compute_drift,
}

PRESENT: dict[str, Callable[..., None]] = {
    "reliability": present_reliability,
    "cfa": present_cfa,
    "invariance": present_invariance,
    "indicators": present_indicators,
    "gap": present_gap,
    "drift": present_drift,
}

METHODS = [
    ("Data validation", "data-validation.md",
     "Every answer code is checked against the instrument; don't-know and refused codes become missing with "
     "their reason; reverse-keyed items are recoded. Every value not used is accounted for."),
    ("Reliability", "reliability.md",
     "Cronbach's alpha with Feldt's interval and McDonald's omega from a one-factor model, per cell, "
     "pairwise-complete covariances; checked against R psych."),
    ("Confirmatory factor analysis", "factor-analysis.md",
     "Maximum likelihood with full-information ML for missing answers; lavaan's fit indices (chi-square, CFI, "
     "TLI, RMSEA with 90% interval, SRMR); checked against R lavaan."),
    ("Measurement invariance", "invariance.md",
     "Configural, metric and scalar models compared with Chen's (2007) changes in CFI, RMSEA and SRMR, with "
     "partial invariance released by score tests; checked against R lavaan/semTools."),
    ("Indicators and the bootstrap", "indicators-and-bootstrap.md",
     "Weighted mean scores (0-10) per cell; Rao-Wu rescaled bootstrap within the design strata; percentile "
     "intervals; precision rules (n < 30 or CV > 33% suppressed); checked against R survey and by simulation."),
    ("Weighting and composition", "weighting-and-estimation.md",
     "Kish effective sample sizes, composition drift tests between iterations, raking to common margins."),
    ("Disclosure control", "disclosure.md",
     "Cells below the minimum size are blanked (statistics and count) in every table, figure and file; "
     "complementary cells are hidden too so that no published total gives a small cell back; shares of "
     "categories with fewer respondents are blanked; country names can be replaced by codes from a secret key."),
]
