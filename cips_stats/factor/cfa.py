"""``cs.factor.cfa``: confirmatory factor analysis with lavaan's conventions.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import cips_stats as cs
>>> rng = np.random.default_rng(2)
>>> f = rng.normal(size=(400, 1))
>>> df = pd.DataFrame(f @ [[1.0, 0.8, 0.7, 0.6]] + rng.normal(scale=0.7, size=(400, 4)),
...                   columns=["a", "b", "c", "d"])
>>> res = cs.factor.cfa(df, model="f =~ a + b + c + d")
>>> float(res.loadings["est"].iloc[0]), res.fit["df"]
(1.0, 2)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import thresholds
from ..errors import (ConvergenceWarning, DataError, Flag, ModelError, NumericalWarning, PoorFitWarning, Problem,
                      emit)
from ..results import Provenance, fingerprint_frame
from . import _survey
from . import fit_indices as fi
from ._defined import defined_rows
from .ml import MLProblem
from .model import CFAModel
from .results import CFAResult, CFAResults
from .syntax import build_partable, parse_syntax

__all__ = ["cfa", "sem"]

_ESTIMATORS = ("ML", "MLR", "WLSMV", "DWLS", "WLS")
#: Work (rows x (p + p(p+1)/2)^2) above which ML under FIML skips lavaan's FIML-corrected robust
#: measures (MLR computes them up to MLProblem.h1_budget): a computing budget, not a statistical cut-off.
_ML_ROBUST_BUDGET = 2e9


def cfa(
    data,
    model: str | None = None,
    *,
    estimator: str = "ML",
    ordered: Sequence[str] | bool | None = None,
    group: str | None = None,
    group_equal: Sequence[str] = (),
    group_partial: Sequence[str] = (),
    missing: str | None = None,
    std_lv: bool = False,
    meanstructure: bool | None = None,
    respondent_group: str | None = None,
    weight: Any = None,
    ci: float = 0.95,
):
    """Fit a confirmatory factor model, as ``lavaan::cfa()`` (and ``lavaan::sem()``).

    Parameters
    ----------
    data : pandas.DataFrame or SurveyData
        Respondent table. With a :class:`~cips_stats.SurveyData` and no ``model``,
        the instrument's own model (items onto their key factors, factors
        correlated: ``data.instrument.model_syntax(group)``) is fitted separately for
        each respondent group, and a :class:`CFAResults` (one result per group) is
        returned.
    model : str
        lavaan-style syntax (``=~``, ``~`` between latent variables, ``~~``, ``~ 1``,
        ``|``, ``:=``; ``1*x``, ``NA*x``, labels, ``c(a, b)*x``); see
        :mod:`cips_stats.factor.syntax`.
    estimator : {"ML", "MLR", "WLSMV", "DWLS", "WLS"}
        ``"ML"``: normal-theory ML, expected-information standard errors (observed
        under FIML). ``"MLR"``: ML estimates, Huber-White sandwich standard errors
        (observed information) and the Yuan-Bentler (Mplus variant) scaled test.
        ``"WLSMV"``/``"DWLS"``: ordinal estimation, delegated to
        :func:`cips_stats.factor.wls.fit_wlsmv`.
    ordered : sequence of str or True, optional
        Ordered-categorical items (needs ``WLSMV``/``DWLS``); ``True`` = all items.
    group : str, optional
        Column defining groups for a multi-group model (labels in order of appearance).
    group_equal : sequence of str
        Parameter types equal across groups (``"loadings", "intercepts", "thresholds",
        "residuals", "residual.covariances", "means", "lv.variances",
        "lv.covariances", "regressions"``).
    group_partial : sequence of str
        Exceptions to ``group_equal``, e.g. ``["f=~x3", "x3~1"]``.
    missing : {"listwise", "fiml"}, optional
        Default ``"listwise"`` for a DataFrame and ``"fiml"`` for SurveyData.
    std_lv : bool
        Identify factors by unit variances instead of marker loadings.
    meanstructure : bool, optional
        Default: True with groups or FIML, else False (lavaan's default).
    respondent_group : str, optional
        With SurveyData: fit only this respondent group and return a single result.
    weight : str, Design or False, optional
        Survey weights (lavaan's ``sampling.weights=``): a column name or a design.
        Default: a SurveyData's design weight (when it varies), none for a DataFrame;
        ``False`` for unweighted. Used by the ordinal estimators (weighted thresholds,
        polychorics and Gamma). ML/MLR with varying weights is not implemented: an
        explicit ``weight=`` raises, the SurveyData default fits unweighted and flags it.
    ci : float
        Level of the Wald intervals ``ci_low``/``ci_high`` of the parameters (default 0.95).

    Returns
    -------
    CFAResult or CFAResults
        Flags the result itself: fit that misses Hu & Bentler's (1999) cut-offs
        (``fit_cfi``...; robust measures for MLR, scaled for WLSMV), Heywood cases,
        a loading whose sign is opposite to the other loadings of its factor
        (``wrong_sign_loading``: an item left un-reversed?), non-convergence; the
        matching :class:`~cips_stats.errors.CipsWarning` is emitted.

    Raises
    ------
    ModelError
        Bad syntax, a variable not in the data, a model that is not identified
        (negative degrees of freedom, no scale), or an estimator that is not available.
    DataError
        Non-numeric item columns, constant items, too few complete rows.

    Notes
    -----
    ML discrepancy (lavaan, ``likelihood="normal"``: covariances with divisor N):
    ``chi2 = 2 (logL_H1 - logL_H0) = N F_ML``; baseline model: independent
    variables (variances, and means when modelled, free; no equality constraints).
    ``CFI = 1 - max(chi2 - df, 0) / max(chi2 - df, chi2_0 - df_0, 0)``,
    ``TLI = 1 - ((chi2 - df) df_0) / ((chi2_0 - df_0) df)``,
    ``RMSEA = sqrt(max(chi2/(N df) - 1/N, 0)) sqrt(G)`` with 90% CI by inverting the
    noncentral chi-square and ``p`` of H0: RMSEA <= .05; SRMR is Bentler's (means
    included with a mean structure). MLR: ``c = [sum_g tr(B1_g A1_g^-1) - tr(B0 A0^-1)]
    / df`` (Yuan-Bentler, Mplus variant), ``chi2_scaled = chi2 / c``; robust CFI/TLI/RMSEA
    as Brosseau-Liard & Savalei (2014) and Brosseau-Liard, Savalei & Li (2012).
    Structural regressions: ``Sigma = Lambda (I - B)^-1 Psi (I - B)^-T Lambda' + Theta``.
    Defined parameters (``:=``) get delta-method standard errors.
    Checked against lavaan 0.6-14 on HolzingerSwineford1939 (one and two groups,
    FIML), PoliticalDemocracy (``sem()``) and a simulated 10-factor survey:
    ``tests/reference/cfa_*.json``, made by ``validation/r/cfa.R``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(5)
    >>> f = rng.normal(size=(300, 2)) @ np.linalg.cholesky([[1, .4], [.4, 1]]).T
    >>> lam = np.kron(np.eye(2), [[.8, .7, .6]])
    >>> df = pd.DataFrame(f @ lam + rng.normal(scale=.6, size=(300, 6)),
    ...                   columns=[f"x{i}" for i in range(1, 7)])
    >>> # lavaan: cfa('f1 =~ x1 + x2 + x3; f2 =~ x4 + x5 + x6', data = df)
    >>> res = cs.factor.cfa(df, model="f1 =~ x1 + x2 + x3\\nf2 =~ x4 + x5 + x6")
    >>> res.fit["df"], bool(res.fit["cfi"] > 0.95)
    (8, True)
    """
    if isinstance(group_equal, str):       # lavaan accepts group.equal = "loadings"
        group_equal = (group_equal,)
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    if not (isinstance(ci, (int, float)) and 0 < float(ci) < 1):
        raise DataError(f"ci= must be a confidence level in (0, 1); got {ci!r}.")
    opts = dict(estimator=estimator, ordered=ordered, group=group, group_equal=tuple(group_equal),
                group_partial=tuple(group_partial), std_lv=std_lv, meanstructure=meanstructure, ci=float(ci))
    if _survey.is_survey(data):
        res = _cfa_survey(data, model=model, missing=missing, respondent_group=respondent_group,
                          weight=weight, **opts)
    else:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data= must be a pandas DataFrame or SurveyData, got {type(data).__name__}.")
        if model is None:
            raise ModelError("model= is required for a DataFrame (lavaan-style syntax, e.g. 'f =~ x1 + x2 + x3').")
        res = _cfa_frame(data, model=model, missing=missing or "listwise",
                         weight=_survey.resolve_weight(data, weight), **opts)
    for r in (res.values() if isinstance(res, CFAResults) else [res]):
        _emit_flags(r)
    return res


#: ``cs.factor.sem``: the same function as :func:`cfa` (lavaan's ``sem()`` and ``cfa()`` differ only in
#: defaults that this package already applies to both: latent regressions ``~`` and ``:=`` are read by both).
sem = cfa


#: Warning class of each flag code a CFA emits (flags not listed are attached silently).
_WARNING_OF = {"wrong_sign_loading": PoorFitWarning, "heywood": NumericalWarning,
               "heywood_loading": NumericalWarning, "psi_not_pd": NumericalWarning,
               "sigma_not_pd": NumericalWarning, "singular_information": NumericalWarning,
               "nonconvergence": ConvergenceWarning, "not_converged": ConvergenceWarning,
               "em_nonconvergence": ConvergenceWarning}


def _emit_flags(res: CFAResult) -> None:
    for f in res.flags:
        cat = PoorFitWarning if (f.code.startswith("fit_") and f.severity == "warning") else _WARNING_OF.get(f.code)
        if cat is not None:
            emit(f, cat, stacklevel=4)


def _cfa_survey(data, *, model, missing, respondent_group, weight, estimator, **opts):
    present = _survey.present_groups(data)
    if respondent_group is not None:
        if str(respondent_group) not in present:
            raise DataError(f"respondent_group={respondent_group!r} has no respondents; present: {present}.")
        order = [str(respondent_group)]
    else:
        order = present
    if not order:
        raise DataError("The survey holds no respondents.")
    est = estimator.upper() if isinstance(estimator, str) else estimator
    miss = missing or ("fiml" if est in ("ML", "MLR") else "pairwise")
    wcol = _survey.resolve_weight(data, weight)
    unweighted_ml = wcol is not None and weight is None and est in ("ML", "MLR")
    if unweighted_ml:
        wcol = None       # the design weight by default, but ML/MLR with weights is not implemented
    out = {}
    frame = data.frame
    for g in order:
        syn = model if model is not None else data.instrument.model_syntax(g)
        names = set(_model_variables(syn))
        items = [c for c in frame.columns if c in names]
        extra = [c for c in (opts.get("group"), wcol) if c is not None and c in frame.columns]
        sub = _survey.group_frame(frame, "group", g, list(dict.fromkeys(items + extra)))
        res = _cfa_frame(sub, model=syn, estimator=estimator, missing=miss, survey=data, weight=wcol, **opts)
        if unweighted_ml:
            res = dataclasses.replace(res, flags=res.flags + (Flag(
                "unweighted", "The survey's design weights vary, but ML/MLR with sampling weights is not "
                "implemented: the model was fitted unweighted (use estimator='WLSMV' for weighted ordinal "
                "estimation).", "caution", {"group": g}),))
        out[g] = res
    if respondent_group is not None:
        return out[str(respondent_group)]
    return CFAResults(results=out, provenance=Provenance.build(
        "factor.cfa", data=data, options=dict(estimator=estimator, missing=miss, by="group", weight=wcol)))


def _model_variables(model: str) -> list[str]:
    """Every name the syntax mentions (observed candidates; latent names are harmless)."""
    statements, _ = parse_syntax(model)
    names: list[str] = []
    for s in statements:
        for nm in (s.lhs, s.rhs):
            if nm and nm not in names:
                names.append(nm)
    return names


def _numeric_block(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    problems = []
    for c in cols:
        s = frame[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                problems.append(Problem("numeric_item", "Items of a factor model must be numeric.",
                                        file="<DataFrame>", row=i + 1, column=c, value=s.iloc[i]))
    if problems:
        raise DataError("Some model variables are not numeric.", problems)
    return frame[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def _cfa_frame(frame, **kw):
    """One model on one frame, flags of fit and keying attached (no warnings emitted here)."""
    # Small dense products: one BLAS thread is faster on a shared machine and never slower by
    # much here (measured: see benchmarks/results/cfa.json).
    from .._blas import one_thread

    with one_thread():
        res = _cfa_frame_impl(frame, **kw)
    kind = {"MLR": "robust", "WLSMV": "scaled"}.get(res.estimator)
    judged = thresholds.judge_fit(res.fit, kind=kind) + tuple(_wrong_sign_flags(res.parameters))
    return dataclasses.replace(res, flags=tuple(res.flags) + judged)


def _wrong_sign_flags(params: pd.DataFrame) -> list[Flag]:
    """A loading whose interval lies wholly on the other side of zero from its factor's majority.

    With items keyed the same way every loading of a factor has one sign; a clearly
    negative loading among positive ones (its Wald interval excludes zero) is the mark
    of an item left un-reversed, or of a mis-keyed item (psych's ``check.keys``).
    """
    is_lam = np.flatnonzero(params["op"].to_numpy(dtype=object) == "=~")
    grp = params["group"].to_numpy()[is_lam].tolist()
    lhs = params["lhs"].to_numpy(dtype=object)[is_lam].tolist()
    rhs = params["rhs"].to_numpy(dtype=object)[is_lam]
    cols = {c: params[c].to_numpy(dtype=float)[is_lam] for c in ("est", "ci_low", "ci_high", "se")}
    blocks: dict[tuple, list[int]] = {}
    for k, key in enumerate(zip(grp, lhs)):            # (group, factor) in order of appearance
        blocks.setdefault(key, []).append(k)
    flags = []
    for (g, f), idx in blocks.items():
        if len(idx) < 3:
            continue
        sign = np.sign(cols["est"][idx])
        major = 1.0 if (sign > 0).sum() >= (sign < 0).sum() else -1.0
        lo, hi = cols["ci_low"][idx], cols["ci_high"][idx]
        se = cols["se"][idx]
        fixed = ~(se > 0)      # the marker: judged by the others (all of them on its other side)
        clear = np.where(major > 0, hi < 0, lo > 0) & ~fixed
        if fixed.any() and major < 0:
            clear |= fixed & (sign > 0)
        if clear.any():
            items = [str(v) for v in rhs[idx][clear]]
            flags.append(Flag("wrong_sign_loading", f"Factor {f}: the loading of {', '.join(items)} has the "
                              "opposite sign to the factor's other loadings (its interval excludes zero). Is the "
                              "item reverse-keyed and left un-reversed?", "warning",
                              {"factor": f, "group": int(g), "items": items}))
    return flags


def _cfa_frame_impl(frame, *, model, estimator, ordered, group, group_equal, group_partial, missing, std_lv,
                    meanstructure, survey=None, weight=None, ci=0.95, cache=None):
    if not isinstance(estimator, str) or estimator.upper() not in _ESTIMATORS:
        raise ModelError(f"estimator= must be one of {list(_ESTIMATORS)}, got {estimator!r}.")
    est = estimator.upper()
    miss = {"ml": "fiml", "fiml": "fiml", "listwise": "listwise", "pairwise": "pairwise"}.get(str(missing).lower())
    if miss is None:
        raise ModelError(f"missing= must be 'listwise' or 'fiml', got {missing!r}.")
    if est in ("WLSMV", "DWLS", "WLS"):
        from .wls import _fit_wlsmv

        return _fit_wlsmv(frame, model=model, estimator=est, ordered=ordered, group=group,
                         group_equal=group_equal, group_partial=group_partial, std_lv=std_lv,
                         missing=miss if miss != "fiml" else "pairwise", weight=weight, ci=ci, data_cache=cache)
    if weight is not None:
        raise ModelError("weight= is supported with estimator='WLSMV'/'DWLS'/'WLS' (weighted polychorics, as "
                         "lavaan's sampling.weights=); ML/MLR with sampling weights is not implemented.")
    if ordered:
        raise ModelError("Ordered (categorical) items need estimator='WLSMV' (or 'DWLS'); ML treats items as "
                         "continuous. Drop ordered= to fit them as continuous.")
    if miss == "pairwise":
        raise ModelError("missing='pairwise' is for WLSMV; with ML use 'listwise' or 'fiml'.")
    fiml = miss == "fiml"
    # the rows, groups, numeric blocks and EM moments depend on the data alone: a ladder's cache keeps them
    dkey = ("ml_data", group, fiml)
    data_hit = None if cache is None else cache.get(dkey)
    if data_hit is None:
        frame, labels = _ml_groups(frame, group)
        data_hit = {"frame": frame, "labels": labels, "problems": {}, "fingerprint": None}
        if cache is not None:
            cache[dkey] = data_hit
    frame, labels = data_hit["frame"], data_hit["labels"]
    G = len(labels)
    ms = meanstructure if meanstructure is not None else (G > 1 or fiml)
    ms = ms or fiml
    pt = build_partable(model, observed=[str(c) for c in frame.columns], n_groups=G, std_lv=std_lv,
                        meanstructure=ms, group_equal=group_equal, group_partial=group_partial)
    cm = CFAModel(pt)
    pkey = tuple(cm.ov_names)
    if pkey in data_hit["problems"]:
        n_dropped, groups = data_hit["problems"][pkey]
        prob = MLProblem._from_groups(cm, groups, fiml=fiml)
    else:
        blocks, n_dropped = _ml_blocks(frame, cm, group, labels, fiml)
        prob = MLProblem(cm, blocks, fiml=fiml)
        data_hit["problems"][pkey] = (n_dropped, prob.groups)
    for gd in prob.groups:
        try:
            np.linalg.cholesky(gd.cov)
        except np.linalg.LinAlgError:
            raise ModelError("The sample covariance matrix is not positive definite (collinear items?).") from None
    fit = prob.fit()
    theta = fit.theta
    flags = _ml_fit_flags(prob, fit, labels, fiml)
    robust = est == "MLR"
    vcov, Ainv, scores = _ml_vcov(prob, theta, robust, fiml, flags)
    fit_d = _fit_measures(prob, fit, cm, G, ms)
    if robust:
        fit_d.update(_robust_measures(prob, fit, cm, G, Ainv, scores, flags))
    elif fiml:
        fit_d.update(_fiml_robust(prob, fit, G, flags, "V6"))
    params, implied = _parameter_table(cm, theta, vcov, labels, ci)
    defined = defined_rows(model, params, theta, vcov, cm.est, ci)
    if len(defined):
        params = pd.concat([params, defined.assign(group_label="")], ignore_index=True)
    loadings = params[params["op"] == "=~"].rename(columns={"lhs": "factor", "rhs": "item"}).drop(
        columns=["op"]).reset_index(drop=True)
    flags += _heywood_flags(cm, theta, params, labels)
    if any(n_dropped):
        flags.append(Flag("rows_dropped", f"{sum(n_dropped)} rows were dropped "
                          f"({'every item missing' if fiml else 'listwise deletion'}).", "info",
                          {"dropped": n_dropped}))
    sample = tuple(dict(cov=pd.DataFrame(gd.cov, index=cm.ov_names, columns=cm.ov_names),
                        mean=pd.Series(gd.mean, index=cm.ov_names)) for gd in prob.groups)
    opts = dict(model=model, estimator=est, group=group, group_equal=list(group_equal),
                group_partial=list(group_partial), missing=miss, std_lv=std_lv, meanstructure=ms,
                information="observed" if (robust or fiml) else "expected",
                se="robust.huber.white" if robust else "standard",
                test="yuan.bentler.mplus" if robust else "standard", ci=ci)
    if survey is None and data_hit["fingerprint"] is None:
        data_hit["fingerprint"] = fingerprint_frame(frame)
    prov = Provenance.build("factor.cfa", data=survey, data_fingerprint=None if survey is not None
                            else data_hit["fingerprint"], options=opts)
    state = _MLState(prob=prob, theta=theta, labels=labels)
    return CFAResult(
        model=model, estimator=est, missing=miss, converged=fit.converged, iterations=fit.iterations,
        n_obs=tuple(gd.n for gd in prob.groups), n_groups=G,
        group_labels=tuple("" if lab is None else str(lab) for lab in labels), fit=fit_d, parameters=params,
        loadings=loadings, thresholds=None, implied=implied, sample=sample, vcov=vcov, options=opts,
        _state=state, provenance=prov, flags=tuple(flags))


def _ml_groups(frame: pd.DataFrame, group: str | None) -> tuple[pd.DataFrame, list]:
    """Rows with a group label and the labels in order of appearance (lavaan's order)."""
    if group is None:
        return frame, [None]
    if group not in frame.columns:
        raise DataError(f"group={group!r} is not a column of the data.",
                        [Problem("group_column", "Grouping column not found.", column=group)])
    frame = frame[frame[group].notna()]
    labels = list(pd.unique(frame[group]))
    if len(labels) < 2:
        raise DataError(f"group={group!r} has fewer than two groups.")
    return frame, labels


def _ml_blocks(frame, cm: CFAModel, group, labels, fiml: bool) -> tuple[list[np.ndarray], list[int]]:
    """Per group the numeric item block (rows kept by the missing-data rule), checked."""
    blocks, n_dropped = [], []
    codes = None if group is None else pd.Categorical(frame[group], categories=labels).codes
    for k, lab in enumerate(labels):
        sub = frame if lab is None else frame.iloc[np.flatnonzero(codes == k)]
        y = _numeric_block(sub, cm.ov_names)
        keep = ~np.all(np.isnan(y), axis=1) if fiml else ~np.any(np.isnan(y), axis=1)
        n_dropped.append(int((~keep).sum()))
        y = y[keep]
        if len(y) < 2:
            raise DataError(f"Too few usable rows ({len(y)}) in group {lab!r} "
                            f"({'rows with every item missing dropped' if fiml else 'listwise deletion'}).")
        var = np.nanvar(y, axis=0)
        const = [cm.ov_names[j] for j in np.flatnonzero(~(var > 0))]
        if const:
            raise DataError(f"Items with zero variance in group {lab!r}: {const}.",
                            [Problem("constant_item", "The item does not vary.", column=c) for c in const])
        if not fiml and len(y) <= cm.p:
            raise DataError(f"Group {lab!r} has {len(y)} complete rows for {cm.p} items; the sample covariance "
                            "matrix is singular. Use missing='fiml'.")
        blocks.append(y)
    G, p = len(labels), cm.p
    moments = G * (p * (p + 1) // 2 + (p if cm.meanstructure else 0))
    if moments - cm.npar < 0:
        raise ModelError(f"The model is not identified: {cm.npar} free parameters but only {moments} sample "
                         "moments (negative degrees of freedom).", diagnostics={"npar": cm.npar, "moments": moments})
    return blocks, n_dropped


def _ml_fit_flags(prob: MLProblem, fit, labels, fiml: bool) -> list[Flag]:
    flags: list[Flag] = []
    if not fit.converged:
        flags.append(Flag("nonconvergence", f"The optimiser did not converge ({fit.message}) after "
                          f"{fit.iterations} iterations.", "error", {"iterations": fit.iterations}))
    if fiml:
        for lab, gd in zip(labels, prob.groups):
            if not getattr(gd, "em_converged", True):
                flags.append(Flag("em_nonconvergence", "The EM algorithm for the unrestricted (H1) model did "
                                  "not converge; chi-square and baseline fit are unreliable.", "warning",
                                  {"group": lab}))
    return flags


def _ml_vcov(prob: MLProblem, theta, robust: bool, fiml: bool, flags: list[Flag]):
    """Covariance of the estimates: inverse (observed or expected) information, or the sandwich."""
    npar = prob.model.npar
    try:
        if robust or fiml:
            A = prob.observed_information(theta, unit=False)
        else:
            A = prob.expected_information(theta, unit=False)
        Ainv = np.linalg.inv(A)
        ev = np.linalg.eigvalsh(A)
        if ev.min() <= 1e-10 * max(ev.max(), 1e-300):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        Ainv = np.full((npar, npar), np.nan)
        flags.append(Flag("singular_information", "The information matrix is singular: the model may not be "
                          "identified; standard errors are not available.", "error"))
    scores = None
    if robust and np.isfinite(Ainv).all():
        scores = np.vstack(prob.casewise_scores(theta))
        vcov = Ainv @ (scores.T @ scores) @ Ainv
    else:
        vcov = Ainv
    return vcov, Ainv, scores


# ---------------------------------------------------------------------------- fit measures
def _srmr(prob: MLProblem, cm: CFAModel, theta, ms: bool) -> tuple[float, float]:
    tot, nom = 0.0, 0.0
    for gd, imp in zip(prob.groups, cm.implied(theta)):
        a, b = fi.srmr_bentler(gd.cov, imp["sigma"], gd.mean if ms else None, imp["mu"] if ms else None)
        tot += gd.n / prob.n_total * a
        nom += gd.n / prob.n_total * b
    return tot, nom


def _wrmr(chi2: float, p: int, ms: bool) -> float:
    """lavaan's WRMR for continuous data: ``sqrt(chi2 / e)``, e the number of sample statistics of one
    group (p(p+1)/2 variances and covariances, plus p means when the model has a mean structure)."""
    e = p * (p + 1) // 2 + (p if ms else 0)
    return math.sqrt(chi2 / e) if e > 0 and np.isfinite(chi2) and chi2 >= 0 else float("nan")


def _fit_measures(prob, fit, cm, G, ms) -> dict:
    N = prob.n_total
    chi2, df = fit.chi2, fit.df
    pval = float(stats.chi2.sf(chi2, df)) if df > 0 else float("nan")
    srmr, srmr_nm = _srmr(prob, cm, fit.theta, ms)
    d = dict(npar=cm.npar, chi2=chi2, df=df, pvalue=pval, baseline_chi2=fit.baseline_chi2,
             baseline_df=fit.baseline_df,
             baseline_pvalue=float(stats.chi2.sf(fit.baseline_chi2, fit.baseline_df)),
             cfi=fi.cfi(chi2, df, fit.baseline_chi2, fit.baseline_df),
             tli=fi.tli(chi2, df, fit.baseline_chi2, fit.baseline_df),
             rmsea=fi.rmsea(chi2, df, N, G), rmsea_ci=fi.rmsea_ci(chi2, df, N, G),
             rmsea_pvalue=fi.rmsea_pvalue(chi2, df, N, G), srmr=srmr, srmr_bentler_nomean=srmr_nm,
             wrmr=_wrmr(chi2, prob.p, ms), loglik=fit.loglik, unrestricted_loglik=fit.loglik_h1, fmin=fit.fmin, ntotal=N)
    d.update(fi.information_criteria(fit.loglik, cm.npar, N))
    return d


def _robust_measures(prob, fit, cm, G, Ainv, scores, flags) -> dict:
    N = prob.n_total
    df = fit.df
    out: dict[str, Any] = {}
    nan = float("nan")
    try:
        tr_h1 = prob.h1_trace()
    except ModelError as exc:
        flags.append(Flag("scaled_test_unavailable", str(exc), "warning"))
        tr_h1 = nan
    if scores is not None and np.isfinite(Ainv).all():
        tr_h0 = float(np.sum((scores @ Ainv) * scores))
    else:
        tr_h0 = nan
    tr_ug = tr_h1 - tr_h0
    c = tr_ug / df if df > 0 else nan
    if np.isfinite(c) and c <= 0:
        c = nan
    chi2s = fit.chi2 / c if np.isfinite(c) else nan
    # baseline: its own scaling factor (independence model, same robust machinery)
    cb = _baseline_scaling(prob, fit.baseline_df, tr_h1)
    b_chi2s = fit.baseline_chi2 / cb if np.isfinite(cb) else nan
    out.update(chi2_scaled=chi2s, scaling_factor=c, df_scaled=df,
               pvalue_scaled=float(stats.chi2.sf(chi2s, df)) if np.isfinite(chi2s) and df > 0 else nan,
               baseline_chi2_scaled=b_chi2s, baseline_scaling_factor=cb,
               cfi_scaled=fi.cfi(chi2s, df, b_chi2s, fit.baseline_df),
               tli_scaled=fi.tli(chi2s, df, b_chi2s, fit.baseline_df),
               rmsea_scaled=fi.rmsea(fit.chi2, tr_ug, N, G) if np.isfinite(tr_ug) and tr_ug > 0 else nan,
               rmsea_ci_scaled=fi.rmsea_ci(fit.chi2, tr_ug, N, G) if np.isfinite(tr_ug) and tr_ug > 0
               else (nan, nan))
    out["rmsea_pvalue_scaled"] = (fi.rmsea_pvalue(fit.chi2, tr_ug, N, G) if np.isfinite(tr_ug) and tr_ug > 0
                                  else nan)
    if prob.fiml:
        out.update(_fiml_robust(prob, fit, G, flags, "V3"))
    else:
        out.update(cfi_robust=fi.cfi(fit.chi2, df, fit.baseline_chi2, fit.baseline_df, c, cb),
                   tli_robust=fi.tli(fit.chi2, df, fit.baseline_chi2, fit.baseline_df, c, cb),
                   rmsea_robust=fi.rmsea(fit.chi2, df, N, G, c_hat=c) if np.isfinite(c) else nan,
                   rmsea_ci_robust=fi.rmsea_ci(chi2s, df, N, G, c_hat=c) if np.isfinite(c) else (nan, nan),
                   rmsea_pvalue_robust=fi.rmsea_pvalue(chi2s, df, N, G, c_hat=c) if np.isfinite(c) else nan)
    return out


def _fiml_robust(prob: MLProblem, fit, G: int, flags: list[Flag], version: str) -> dict:
    """cfi_robust, tli_robust, rmsea_robust (CI, p) under FIML: lavaan's FIML-corrected statistics
    (Zhang & Savalei 2023; version V3 with a scaled test, V6 for ML)."""
    nan = float("nan")
    N, df = prob.n_total, fit.df
    empty = dict(cfi_robust=nan, tli_robust=nan, rmsea_robust=nan, rmsea_ci_robust=(nan, nan),
                 rmsea_pvalue_robust=nan)
    dim = prob.p + prob.p * (prob.p + 1) // 2
    cost = sum(float(gd.n) * dim * dim for gd in prob.groups)
    if df <= 0:
        return empty
    if version == "V6" and cost > _ML_ROBUST_BUDGET:
        # ML's extra measures must not make the default survey CFA several times slower
        flags.append(Flag("robust_fit_skipped", "cfi_robust, tli_robust and rmsea_robust under FIML need the "
                          f"unrestricted model's observed information (about {cost:.1e} operations); not computed "
                          "for estimator='ML' above 2e9. Use estimator='MLR' for them.", "info"))
        return empty
    try:
        fc = prob.fiml_corrected(fit.theta, version=version)
    except (ModelError, np.linalg.LinAlgError) as exc:
        flags.append(Flag("robust_fit_fiml", "cfi_robust, tli_robust and rmsea_robust under FIML (lavaan's "
                          f"FIML-corrected version) are not available: {exc}", "warning"))
        fc = None
    if fc is None or not (np.isfinite(fc["c_hat3"]) and fc["c_hat3"] > 0):
        return empty
    c3, c3n = fc["c_hat3"], fc["c_hat3_null"]
    return dict(cfi_robust=fi.cfi(fc["XX3"], df, fc["XX3_null"], fc["df3_null"], c3, c3n),
                tli_robust=fi.tli(fc["XX3"], df, fc["XX3_null"], fc["df3_null"], c3, c3n),
                rmsea_robust=fi.rmsea(fc["XX3"], fc["df3"], N, G, c_hat=c3),
                rmsea_ci_robust=fi.rmsea_ci(fc["XX3_scaled"], fc["df3"], N, G, c_hat=c3),
                rmsea_pvalue_robust=fi.rmsea_pvalue(fc["XX3_scaled"], fc["df3"], N, G, c_hat=c3))


def _baseline_scaling(prob: MLProblem, df_b: int, tr_h1: float) -> float:
    """Scaling factor of the independence model (its own Yuan-Bentler-Mplus trace)."""
    if not np.isfinite(tr_h1) or df_b <= 0:
        return float("nan")
    # Independence model: parameters = variances (and means); structured at its MLE.
    tr0 = 0.0
    for gd in prob.groups:
        y = gd.y
        if gd.fiml:
            mu = np.nanmean(y, axis=0)
            v = np.nanvar(y, axis=0)
            obs = gd.obs
            d = np.where(obs, y - mu, 0.0)
        else:
            mu, v = gd.mean, np.diag(gd.cov)
            d = y - mu
            obs = np.ones_like(y, dtype=bool)
        # casewise scores of variances (and means) and the observed information (diagonal model)
        sv = 0.5 * (d ** 2 / v ** 2 - obs / v)
        Av = 0.5 * obs.sum(0) / v ** 2  # observed = expected at the MLE for each variance
        t = np.sum(sv ** 2, axis=0) / Av
        # cross terms between variables vanish in the trace only through A's block-diagonality
        tr0 += float(np.sum(t))
        if prob.meanstructure:
            sm = d / v
            Am = obs.sum(0) / v
            tr0 += float(np.sum(np.sum(sm ** 2, axis=0) / Am))
            # mean-variance cross information is zero at the MLE; B's cross terms do not enter tr(B A^-1)
    return (tr_h1 - tr0) / df_b


# ---------------------------------------------------------------------------- parameters
def _parameter_table(cm: CFAModel, theta, vcov, labels, ci: float = 0.95):
    pt = cm.partable
    est = cm.est(theta)
    free = pt["free"].to_numpy()
    se = np.zeros(len(pt))
    dvc = np.sqrt(np.clip(np.diag(vcov), 0, None)) if vcov is not None else np.full(cm.npar, np.nan)
    dvc = np.where(np.isfinite(np.diag(vcov)), dvc, np.nan)
    m = free > 0
    se[m] = dvc[free[m] - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(m, est / se, np.nan)
    pv = np.where(m, 2 * stats.norm.sf(np.abs(z)), np.nan)
    q = stats.norm.ppf(0.5 + ci / 2)
    lo = np.where(m, est - q * se, est)
    hi = np.where(m, est + q * se, est)
    std_lv, std_all = np.full(len(pt), np.nan), np.full(len(pt), np.nan)
    mats = cm.matrices(theta)
    imps = cm.implied(theta)
    oi = {n: i for i, n in enumerate(cm.ov_names)}
    li = {n: i for i, n in enumerate(cm.lv_names)}
    sds = [(np.sqrt(np.diag(i["sigma"])), np.sqrt(np.clip(np.diag(M["psi_total"]), 0, None)))
           for i, M in zip(imps, mats)]
    for k, (g1, lhs, op, rhs) in enumerate(zip(pt["group"].tolist(), pt["lhs"].tolist(), pt["op"].tolist(),
                                              pt["rhs"].tolist())):
        g = g1 - 1
        T = mats[g]["theta"]
        sd_ov, sd_lv = sds[g]
        v = est[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            if op == "=~":
                std_lv[k] = v * sd_lv[li[lhs]]
                std_all[k] = v * sd_lv[li[lhs]] / sd_ov[oi[rhs]]
            elif op == "~~" and lhs in li:
                s = sd_lv[li[lhs]] * sd_lv[li[rhs]]
                std_lv[k] = std_all[k] = v / s
            elif op == "~":
                std_lv[k] = std_all[k] = v * sd_lv[li[rhs]] / sd_lv[li[lhs]]
            elif op == "~~":
                std_lv[k] = v
                if lhs == rhs:
                    std_all[k] = v / sd_ov[oi[lhs]] ** 2
                else:
                    std_all[k] = v / math.sqrt(T[oi[lhs], oi[lhs]] * T[oi[rhs], oi[rhs]]) \
                        if T[oi[lhs], oi[lhs]] * T[oi[rhs], oi[rhs]] > 0 else np.nan
            elif op == "~1" and lhs in li:
                std_lv[k] = std_all[k] = v / sd_lv[li[lhs]] if sd_lv[li[lhs]] > 0 else np.nan
            elif op == "~1":
                std_lv[k] = v
                std_all[k] = v / sd_ov[oi[lhs]]
            elif op == "|":
                std_lv[k] = v
                std_all[k] = v / sd_ov[oi[lhs]]
            else:
                std_lv[k] = std_all[k] = v
    group_col = [("" if labels[g - 1] is None else str(labels[g - 1])) for g in pt["group"]]
    params = pd.DataFrame(dict(
        lhs=pt["lhs"].to_numpy(), op=pt["op"].to_numpy(), rhs=pt["rhs"].to_numpy(),
        group=pt["group"].to_numpy(), group_label=group_col, label=pt["label"].to_numpy(), free=free,
        est=est, se=se, z=z, pvalue=pv, ci_low=lo, ci_high=hi, std_lv=std_lv, std_all=std_all))
    implied = tuple(dict(sigma=pd.DataFrame(i["sigma"], index=cm.ov_names, columns=cm.ov_names),
                         mu=pd.Series(i["mu"], index=cm.ov_names)) for i in imps)
    return params, implied


def _heywood_flags(cm: CFAModel, theta, params: pd.DataFrame, labels) -> list[Flag]:
    flags = []
    resid = params[(params["op"] == "~~") & (params["lhs"] == params["rhs"]) & params["lhs"].isin(cm.ov_names)]
    neg = resid[resid["est"] < 0]
    if len(neg):
        flags.append(Flag("heywood", "Negative residual variance (Heywood case) for "
                          + ", ".join(f"{r.lhs} (group {r.group})" for r in neg.itertuples()) + ".", "warning",
                          {"items": neg["lhs"].tolist()}))
    big = params[(params["op"] == "=~") & (params["std_all"].abs() > 1)]
    if len(big):
        flags.append(Flag("heywood_loading", "Standardised loading above 1 in absolute value: "
                          + ", ".join(f"{r.lhs}=~{r.rhs} ({r.std_all:.3f})" for r in big.itertuples()) + ".",
                          "warning", {"loadings": [f"{r.lhs}=~{r.rhs}" for r in big.itertuples()]}))
    for g, (M, imp) in enumerate(zip(cm.matrices(theta), cm.implied(theta))):
        lab = labels[g]
        if cm.m and np.linalg.eigvalsh(M["psi"]).min() <= 0:
            flags.append(Flag("psi_not_pd", "The latent covariance matrix (Psi) is not positive definite "
                              "(a factor correlation at or beyond 1, or a negative variance).", "warning",
                              {"group": lab}))
        if np.linalg.eigvalsh(imp["sigma"]).min() <= 0:
            flags.append(Flag("sigma_not_pd", "The implied covariance matrix is not positive definite.",
                              "warning", {"group": lab}))
    return flags


# ---------------------------------------------------------------------------- modification indices
@dataclass
class _MLState:
    prob: MLProblem
    theta: np.ndarray
    labels: list

    def modindices(self, res: CFAResult, information: str = "expected") -> pd.DataFrame:
        cm = self.prob.model
        pt = cm.partable
        existing = set(zip(pt["lhs"], pt["op"], pt["rhs"], pt["group"]))
        rows = []
        for g in range(1, cm.n_groups + 1):
            for f in cm.lv_names:
                for x in cm.ov_names:
                    if (f, "=~", x, g) not in existing:
                        rows.append((f, "=~", x, g))
            for i, a in enumerate(cm.ov_names):
                for b in cm.ov_names[i + 1:]:
                    if (a, "~~", b, g) not in existing and (b, "~~", a, g) not in existing:
                        rows.append((a, "~~", b, g))
            for i, a in enumerate(cm.lv_names):
                for b in cm.lv_names[i:]:
                    if (a, "~~", b, g) in existing or (b, "~~", a, g) in existing:
                        continue
                    rows.append((a, "~~", b, g))
        # fixed parameters of the table that are not scale-setting markers/variances
        # fixed parameters of the table (markers, fixed variances/covariances); those whose
        # score test is degenerate (freeing them is confounded with the scale) are dropped below
        fixed_rows = pt[(pt["free"] == 0) & (pt["op"].isin(["~~", "=~"]))]
        npar = cm.npar
        cand = rows
        add = pd.DataFrame(dict(lhs=[r[0] for r in cand], op=[r[1] for r in cand], rhs=[r[2] for r in cand],
                                user=0, group=[r[3] for r in cand], free=0, ustart=0.0, label="", plabel=""))
        aug = pd.concat([pt, add], ignore_index=True)
        aug["ustart"] = aug["ustart"].astype(float)
        n_new = len(add)
        aug.loc[len(pt):, "free"] = np.arange(npar + 1, npar + 1 + n_new)
        fix_idx = fixed_rows.index.to_numpy()
        aug.loc[fix_idx, "free"] = np.arange(npar + n_new + 1, npar + n_new + 1 + len(fix_idx))
        aug["free"] = aug["free"].astype(int)
        am = CFAModel(aug)
        # the augmented model must keep the variable order
        if am.ov_names != cm.ov_names or am.lv_names != cm.lv_names:  # pragma: no cover - defensive
            raise ModelError("Internal error: variable order changed in the augmented model.")
        th = np.concatenate([self.theta, np.zeros(n_new), pt.loc[fix_idx, "ustart"].to_numpy(dtype=float)])
        ap = MLProblem.__new__(MLProblem)
        ap.__dict__.update(self.prob.__dict__)
        ap.model = am
        _, grad = ap.objective_gradient(th)
        if information == "observed":
            info = ap.observed_information(th)
        elif self.prob.fiml:
            info = ap.observed_information(th, expected=True)
        else:
            info = ap.expected_information(th)
        I11 = info[:npar, :npar]
        I12 = info[:npar, npar:]
        I22 = info[npar:, npar:]
        V = np.diag(I22) - np.einsum("ij,ij->j", I12, np.linalg.solve(I11, I12))
        d = grad[npar:]
        N = self.prob.n_total
        with np.errstate(divide="ignore", invalid="ignore"):
            mi = np.where(V > 0, N * d ** 2 / V, np.nan)
            epc = np.where(V > 0, -d / V, np.nan)
        lab_rows = list(cand) + [tuple(r) for r in pt.loc[fix_idx, ["lhs", "op", "rhs", "group"]].itertuples(
            index=False, name=None)]
        out = pd.DataFrame(dict(lhs=[r[0] for r in lab_rows], op=[r[1] for r in lab_rows],
                                rhs=[r[2] for r in lab_rows], group=[r[3] for r in lab_rows], mi=mi, epc=epc))
        # standardised EPC
        mats = cm.matrices(self.theta)
        imps = cm.implied(self.theta)
        oi = {n: i for i, n in enumerate(cm.ov_names)}
        li = {n: i for i, n in enumerate(cm.lv_names)}
        sepc_lv, sepc_all = [], []
        for (lhs, op, rhs, g), e in zip(lab_rows, epc):
            P, T = mats[g - 1]["psi"], mats[g - 1]["theta"]
            sd_ov = np.sqrt(np.diag(imps[g - 1]["sigma"]))
            sd_lv = np.sqrt(np.clip(np.diag(P), 0, None))
            if op == "=~":
                sepc_lv.append(e * sd_lv[li[lhs]])
                sepc_all.append(e * sd_lv[li[lhs]] / sd_ov[oi[rhs]])
            elif lhs in li:
                v = e / (sd_lv[li[lhs]] * sd_lv[li[rhs]])
                sepc_lv.append(v)
                sepc_all.append(v)
            else:
                sepc_lv.append(e)
                tt = T[oi[lhs], oi[lhs]] * T[oi[rhs], oi[rhs]]
                sepc_all.append(e / math.sqrt(tt) if tt > 0 else np.nan)
        out["sepc_lv"] = sepc_lv
        out["sepc_all"] = sepc_all
        out = out[np.isfinite(out["mi"].to_numpy()) & (V > math.sqrt(np.finfo(float).eps))]
        if self.labels[0] is not None:
            out.insert(4, "group_label", [str(self.labels[g - 1]) for g in out["group"]])
        return out
