"""Taylor-linearization variances: stratified multistage variance of totals and calibration residuals.

:func:`design_variance` is R ``survey``'s ``svyrecvar``: the with-replacement
variance of the first-stage PSU totals of the influence values, with the
first-stage fpc, plus — for multistage designs with an fpc at every stage
(``variance="multistage"``, R's default) — the variance of each later stage
within the sampled units of the previous one, weighted by the sampling fractions
of the stages above.  ``variance="ultimate"`` keeps the first stage only (R
``options(survey.ultimate.cluster = TRUE)``).  :func:`calibration_residuals`
replaces the influence values of calibrated weights by their residuals from the
calibration model (the ``postStrata`` branch of ``svyrecvar``).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from cips_stats.estimate.design import Design, prepare
>>> from cips_stats.estimate.linearization import design_variance
>>> df = pd.DataFrame({"s": [1, 1, 2, 2]})
>>> V, flags = design_variance(np.array([1.0, 3.0, 2.0, 2.0]), prepare(df, Design(weight=None, strata="s")))
>>> float(V[0, 0])       # sum_h n_h/(n_h - 1) sum_i (z_hi - zbar_h)^2 = 2 * (1 + 1) + 0
4.0
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, Flag, Problem, SingletonPSUError
from .design import Calibration, PreparedDesign, Stage, model_matrix

__all__ = ["design_variance", "calibration_residuals", "LONELY_PSU", "VARIANCE_KINDS"]

#: Remedies for strata with a single PSU (chosen per call, never globally).
LONELY_PSU = ("fail", "certainty", "remove", "adjust", "average")
#: Multistage (R's default) or ultimate-cluster (first stage only) variance.
VARIANCE_KINDS = ("multistage", "ultimate")
_LONELY_R = {
    "certainty": 'options(survey.lonely.psu = "certainty"): the stratum adds no variance (PSU taken with '
                 "certainty)",
    "remove": 'options(survey.lonely.psu = "remove"): the stratum adds no variance',
    "adjust": 'options(survey.lonely.psu = "adjust"): the PSU total is centred at zero (the grand mean of '
              "the influence values) instead of its stratum mean (conservative)",
    "average": 'options(survey.lonely.psu = "average"): the variance is scaled up by the number of strata '
               "over the number of strata with two or more PSUs",
}


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _unit_totals(zz: np.ndarray, unit: np.ndarray, U: int) -> np.ndarray:
    T = np.empty((U, zz.shape[1]))
    for j in range(zz.shape[1]):
        T[:, j] = np.bincount(unit, weights=zz[:, j], minlength=U)
    return T


def _lonely_fail(stage: Stage, lonely: np.ndarray, k: int) -> None:
    labels = [_py(stage.labels[g]) for g in lonely]
    where = "stratum(s)" if k == 0 else f"sampled unit(s) of stage {k}"
    problems = [Problem("lonely_psu", f"Only one unit sampled at stage {k + 1}, so its variance cannot be "
                        "estimated.", column="strata" if k == 0 else f"cluster (stage {k + 1})", value=lab)
                for lab in labels[:50]]
    remedies = "; ".join(f'lonely_psu="{k_}" (R: {v})' for k_, v in _LONELY_R.items())
    raise SingletonPSUError(
        f"{len(labels)} {where} have a single unit at stage {k + 1}: {', '.join(map(str, labels[:20]))}. Choose "
        f"a remedy for this call: collapse the strata in the data, or {remedies}.", problems)


def _stage_variance(zz: np.ndarray, stage: Stage, k: int, lonely_psu: str, factor: np.ndarray,
                    flags: list[Flag]) -> np.ndarray:
    """``sum_g factor_g (1 - f_g) n_g/(n_g - 1) sum_u (t_u - tbar_g)(t_u - tbar_g)'`` (R ``onestage``)."""
    U = stage.group.size
    G = stage.n_g.size
    T = _unit_totals(zz, stage.unit, U)
    n_g, f_g = stage.n_g, stage.f_g
    sums = np.stack([np.bincount(stage.group, weights=T[:, j], minlength=G) for j in range(T.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / n_g[:, None]
    dev = T - means[stage.group]
    exhaust = f_g < 1e-7
    lonely = np.flatnonzero((n_g == 1) & ~exhaust)
    scale = np.where(n_g > 1, f_g * n_g / np.maximum(n_g - 1, 1), f_g) * factor
    scale = np.where(exhaust, 0.0, scale)
    average = False
    if lonely.size:
        if lonely_psu == "fail":
            _lonely_fail(stage, lonely, k)
        if lonely_psu in ("certainty", "remove", "average"):
            scale[lonely] = 0.0
            average = lonely_psu == "average"
        elif lonely_psu == "adjust":
            is_l = np.zeros(G, dtype=bool)
            is_l[lonely] = True
            dev = np.where(is_l[stage.group][:, None], T, dev)
        flags.append(Flag("lonely_psu", f"{lonely.size} {'stratum(s)' if k == 0 else f'unit(s) at stage {k}'} "
                          f'with a single sampled unit handled by lonely_psu="{lonely_psu}".', "caution",
                          {"stage": k + 1, "groups": [_py(stage.labels[g]) for g in lonely[:200]]}))
    V = (dev * scale[stage.group][:, None]).T @ dev
    if average and k == 0:
        V = V * G / (G - lonely.size)
    return V


def design_variance(z: np.ndarray, design: PreparedDesign, lonely_psu: str = "fail",
                    in_domain: np.ndarray | None = None, variance: str = "multistage",
                    ) -> tuple[np.ndarray, list[Flag]]:
    """Variance of the totals of the columns of ``z`` under a stratified multistage design.

    Parameters
    ----------
    z : ndarray, shape (n,) or (n, k)
        Influence values (zero outside a domain).
    design : PreparedDesign
        From :func:`cips_stats.estimate.design.prepare`.
    lonely_psu : {"fail", "certainty", "remove", "adjust", "average"}
        Groups with a single sampled unit.
    in_domain : bool array, optional
        Rows of the domain (only for the informative ``domain_single_psu`` flag).
    variance : {"multistage", "ultimate"}
        Add the later stages' variances (when every stage has an fpc), or
        the first stage only.

    Returns
    -------
    V : ndarray, shape (k, k)
    flags : list of Flag

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cips_stats.estimate.design import Design, prepare
    >>> from cips_stats.estimate.linearization import design_variance
    >>> df = pd.DataFrame({"psu": [1, 1, 2, 2, 3, 3]})
    >>> V, _ = design_variance(np.array([1.0, 1, 2, 2, 0, 0]), prepare(df, Design(weight=None, cluster="psu")))
    >>> float(V[0, 0])        # PSU totals 2, 4, 0: 3/2 * ((2-2)^2 + (4-2)^2 + (0-2)^2)
    12.0
    """
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim == 1:
        zz = zz[:, None]
    flags: list[Flag] = []
    st0 = design.stages[0]
    V = _stage_variance(zz, st0, 0, lonely_psu, np.ones(st0.n_g.size), flags)
    if variance == "multistage" and len(design.stages) > 1 and all(s.has_fpc for s in design.stages):
        # factor of a group at stage k: the product of the sampling fractions of its ancestors
        unit_factor = st0.frac_g[st0.group]                 # per stage-1 unit
        for k, st in enumerate(design.stages[1:], start=1):
            V = V + _stage_variance(zz, st, k, lonely_psu, unit_factor, flags)
            unit_factor = unit_factor[st.group] * st.frac_g[st.group]
    if in_domain is not None:
        _domain_single_psu(design, in_domain, flags)
    return V, flags


def _domain_single_psu(design: PreparedDesign, in_domain: np.ndarray, flags: list[Flag]) -> None:
    st0 = design.stages[0]
    P, H = st0.group.size, st0.n_g.size
    dom_psu = np.zeros(P, dtype=bool)
    dom_psu[st0.unit[in_domain]] = True
    per_h = np.bincount(st0.group, weights=dom_psu.astype(float), minlength=H)
    single = np.flatnonzero((per_h == 1) & (st0.n_g > 1))
    if single.size:
        flags.append(Flag("domain_single_psu", f"The domain has a single PSU in {single.size} stratum(s); "
                          "their variance contribution rests on zero totals of the other PSUs.", "info",
                          {"strata": [_py(design.strata_labels[h]) for h in single[:200]]}))


# ---------------------------------------------------------------------------------------------
# Calibration-aware residuals (R survey:::svyrecvar, postStrata branch)
# ---------------------------------------------------------------------------------------------
def _codes_of(frame: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    if not cols:
        return np.zeros(len(frame), dtype=np.intp)
    if len(cols) == 1:
        return pd.factorize(frame[cols[0]])[0].astype(np.intp)
    return pd.MultiIndex.from_frame(frame[list(cols)].astype("object")).factorize()[0].astype(np.intp)


def _group_mean(x: np.ndarray, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    G = int(codes.max()) + 1 if codes.size else 0
    den = np.bincount(codes, weights=weights, minlength=G).astype(np.float64)
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        num = np.bincount(codes, weights=x[:, j] if weights is None else x[:, j] * weights, minlength=G)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        out[:, j] = m[codes]
    return out


def _scope_rows(frame: pd.DataFrame, cal: Calibration) -> dict:
    """Rows (bool mask) in scope of each variable that ``cal.scope`` limits to some cells."""
    out: dict = {}
    if not cal.scope:
        return out
    by = list(cal.by)
    if not by:
        raise DataError("A Calibration with scope= needs by= (the cells the scope names).",
                        [Problem("calibration_scope", "scope without by.")])
    rows = pd.MultiIndex.from_frame(frame[by].astype("object"))
    for v, cells in cal.scope:
        out[v] = np.asarray(rows.isin(pd.MultiIndex.from_tuples([tuple(c) for c in cells], names=by))
                            if len(cells) else np.zeros(len(frame), dtype=bool))
    return out


def _poststratify_residuals(x, frame, cal, w, w0):
    codes = _codes_of(frame, list(cal.by) + list(cal.variables))
    psw = np.where((w == 0) & (w0 == 0), 1.0, w)
    psw_safe = np.where(psw > 0, psw, 1.0)
    m = _group_mean(x / psw_safe[:, None], codes, weights=w0)
    return x - m * psw[:, None]


def _rake_residuals(x, frame, cal, w, scope):
    by = list(cal.by)
    safe_w = np.where(w > 0, w, 1.0)
    sweeps = []
    for v in cal.variables:
        if v in scope:
            rows = np.flatnonzero(scope[v])
            sweeps.append((rows, _codes_of(frame.iloc[rows], by + [v])))
        else:
            sweeps.append((None, _codes_of(frame, by + [v])))
    for _ in range(10):          # R: ten backfitting sweeps over the margins
        for rows, c in sweeps:
            if rows is None:
                x = x - w[:, None] * _group_mean(x / safe_w[:, None], c)
            elif rows.size:      # rows of cells without this margin are left as they are
                x[rows] = x[rows] - w[rows, None] * _group_mean(x[rows] / safe_w[rows, None], c)
    return x


def _greg_residuals(x, frame, cal, w, w0, scope):
    cells = _codes_of(frame, list(cal.by))
    out = np.empty_like(x)
    g = np.where(w0 > 0, w / np.where(w0 > 0, w0, 1.0), 0.0)
    order = np.argsort(cells, kind="stable")
    bounds = np.searchsorted(cells[order], np.arange(int(cells.max()) + 2))
    for c in range(int(cells.max()) + 1):
        idx = order[bounds[c]:bounds[c + 1]]
        sub = frame.iloc[idx]
        vars_c = [v for v in cal.variables if v not in scope or scope[v][idx[0]]]
        mm = model_matrix(sub, vars_c, cal.numeric)
        sw = np.sqrt(w0[idx])
        gw = g[idx] * sw
        A = mm * sw[:, None]
        b = x[idx] / np.where(gw > 0, gw, 1.0)[:, None]
        beta, *_ = np.linalg.lstsq(A, b, rcond=None)
        out[idx] = (b - A @ beta) * gw[:, None]
    return out


def calibration_residuals(z: np.ndarray, frame: pd.DataFrame, cal: Calibration, w: np.ndarray) -> np.ndarray:
    """Replace influence values by their residuals from the calibration model (R ``svyrecvar``).

    Parameters
    ----------
    z : ndarray, shape (n,) or (n, k)
        Influence values.
    frame : pandas.DataFrame
        The rows, with the calibration's variables and base weight column.
    cal : Calibration
        How the weights were calibrated.
    w : ndarray, shape (n,)
        The calibrated weights.

    Returns
    -------
    ndarray, shape (n, k)
        The residuals, to be used in place of ``z`` in the variance.

    A variable that ``cal.scope`` limits to some cells enters the residual
    model of those cells only (each cell's model uses the cell's variables).
    For GREG calibration (linear, raking, logit, bounded or not) the
    residuals are those of the weighted least-squares fit of ``z/(g sqrt(w0))``
    on ``X sqrt(w0)``, times ``g sqrt(w0)``, as R stores ``qr(mm * sqrt(w0))``
    and ``g * sqrt(w0)`` for every ``calfun``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cips_stats.estimate.design import Calibration
    >>> from cips_stats.estimate.linearization import calibration_residuals
    >>> df = pd.DataFrame({"g": ["a", "a", "b", "b"], "w0": 1.0, "w": [2.0, 2.0, 3.0, 3.0]})
    >>> cal = Calibration("poststratify", ("g",), "w", "w0")
    >>> calibration_residuals(np.array([1.0, 3.0, 2.0, 2.0]), df, cal, df["w"].to_numpy()).ravel().tolist()
    [-1.0, 1.0, 0.0, 0.0]
    """
    x = z.reshape(len(z), -1).astype(np.float64)
    if cal.base_weight not in frame.columns:
        raise DataError(f"The calibration's base weight column {cal.base_weight!r} is not in the data.",
                        [Problem("design_column", "Base weight column missing.", column=cal.base_weight)])
    w0 = pd.to_numeric(frame[cal.base_weight], errors="coerce").to_numpy(dtype=np.float64)
    scope = _scope_rows(frame, cal)
    if cal.method == "poststratify":
        return _poststratify_residuals(x, frame, cal, w, w0)
    if cal.method == "rake":
        return _rake_residuals(x, frame, cal, w, scope)
    return _greg_residuals(x, frame, cal, w, w0, scope)
