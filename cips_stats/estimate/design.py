"""The survey design: one frozen object that names the weight, strata, clusters, fpc and calibration.

A :class:`Design` is to cips_stats what ``svydesign()`` is to R ``survey``: every
estimator takes it through ``weight=`` (a column name, or a ``Design``), and a
:class:`~cips_stats.SurveyData` carries one (``data.design``).  It names columns, so
it survives ordinary pandas operations on the frame (``merge``, ``concat``,
column selection) — unlike ``DataFrame.attrs``, which pandas drops.  The
calibration that produced calibrated weights (:class:`Calibration`, written by
:mod:`cips_stats.weighting`) rides in the design, so that standard errors of
estimates on calibrated weights account for it wherever the frame goes.

This module is the bottom of the estimation layer: :mod:`cips_stats.weighting`
and every module of :mod:`cips_stats.estimate` import it, and it imports neither.

Examples
--------
>>> import pandas as pd
>>> from cips_stats.estimate.design import Design
>>> d = Design(weight="pw", strata="stype", cluster=("dnum", "snum"), fpc=("fpc1", "fpc2"))
>>> d.stages, d.columns()
(2, ('pw', 'stype', 'dnum', 'snum', 'fpc1', 'fpc2'))
>>> d.update(strata=None).strata is None
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import CipsError, DataError, DesignError, Problem

__all__ = ["Design", "Calibration", "model_matrix"]

#: Calibration methods a :class:`Calibration` may record.
CALIBRATION_METHODS = ("poststratify", "rake", "linear", "raking", "logit")


@dataclass(frozen=True)
class Calibration:
    """How the weights in a column were calibrated, so that SEs can account for it.

    :mod:`cips_stats.weighting` returns one inside the :class:`Design` of its
    result; linearization SEs then use residuals from the calibration model, as
    R ``survey`` does for ``postStratify``/``rake``/``calibrate`` designs.

    Parameters
    ----------
    method : {"poststratify", "rake", "linear", "raking", "logit"}
        Post-stratification on the joint cells of ``variables``; raking (IPF)
        to the margins of ``variables``; GREG calibration with a linear,
        raking (exponential) or logit distance on ``~ variables + numeric``.
    variables : tuple of str
        Categorical calibration variables (columns of the frame).
    weight : str
        Column holding the calibrated weights.
    base_weight : str
        Column holding the weights before calibration.
    numeric : tuple of str
        Numeric calibration variables (GREG only).
    by : tuple of str
        Cells calibrated separately (each to its own margins).
    scope : tuple of (str, tuple of tuple)
        ``(variable, cells)`` pairs for the categorical variables calibrated
        in some cells only (each cell a tuple of its ``by`` values); their
        other cells are neither calibrated nor residualised on them.
    bounds : tuple of float, optional
        Bounds ``(lo, hi)`` on the ratio ``g`` of calibrated to base weights.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"sex": ["f", "m", "m"], "weight": 1.0})
    >>> res = cs.weighting.rake(df, margins={"sex": {"f": 50, "m": 50}})
    >>> res.design.calibration.method, res.design.calibration.variables, res.design.calibration.base_weight
    ('rake', ('sex',), 'weight_base')
    """

    method: str
    variables: tuple = ()
    weight: str = "weight"
    base_weight: str = "weight_base"
    numeric: tuple = ()
    by: tuple = ()
    scope: tuple = ()
    bounds: tuple | None = None

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise CipsError(f"Calibration method must be one of {CALIBRATION_METHODS}; got {self.method!r}.")


def _as_cols(v: Any, what: str) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    if isinstance(v, (list, tuple)) and v and all(isinstance(c, str) for c in v):
        return tuple(v)
    raise CipsError(f"{what}= of a Design must be a column name or a sequence of column names; got {v!r}.")


@dataclass(frozen=True)
class Design:
    """A survey design: which columns hold the weight, strata, clusters and fpc, and the calibration.

    Parameters
    ----------
    weight : str or None
        Weight column (``None``: unit weights).
    strata : str or None
        First-stage stratum column.
    cluster : str or tuple of str or None
        Cluster column of each sampling stage, outermost first (R
        ``svydesign(id = ~psu + ssu)``).  ``None``: every row is a PSU.
    fpc : str or tuple of str or None
        Finite population correction of each stage (same length as
        ``cluster``, or one column for a single-stage design): the
        population number of units of the stage in the stratum (or in the
        sampled unit of the previous stage), or the sampling fraction.
    calibration : Calibration or None
        The calibration of ``weight`` (set by :mod:`cips_stats.weighting`).

    Notes
    -----
    Clusters are nested in strata and each stage's units in the previous
    stage's units (R ``svydesign(nest = TRUE)``).  The design names columns and
    holds no data, so it applies to any frame that has them — the same frame
    after a ``merge`` gives the same standard errors.

    Examples
    --------
    >>> import pandas as pd
    >>> import cips_stats as cs
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4], "w": [1.0, 1, 2, 2], "s": [1, 1, 2, 2]})
    >>> d = cs.estimate.Design(weight="w", strata="s")
    >>> round(cs.estimate.survey_mean(df, "y", weight=d).se, 4)   # R: svydesign(id=~1, strata=~s, weights=~w)
    0.3727
    """

    weight: str | None = "weight"
    strata: str | None = None
    cluster: Any = None
    fpc: Any = None
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        if self.weight is not None and not isinstance(self.weight, str):
            raise CipsError(f"weight= of a Design must be a column name or None; got {self.weight!r}.")
        if self.strata is not None and not isinstance(self.strata, str):
            raise CipsError(f"strata= of a Design must be a column name or None; got {self.strata!r}.")
        cl = _as_cols(self.cluster, "cluster")
        fp = _as_cols(self.fpc, "fpc")
        object.__setattr__(self, "cluster", cl[0] if cl is not None and len(cl) == 1 else cl)
        object.__setattr__(self, "fpc", fp[0] if fp is not None and len(fp) == 1 else fp)
        if fp is not None and cl is not None and len(fp) not in (1, len(cl)):
            raise CipsError(f"fpc= names {len(fp)} columns for {len(cl)} stages; give one per stage.")
        if fp is not None and cl is None and len(fp) > 1:
            raise CipsError("fpc= names several stages but cluster= names none.")
        if self.calibration is not None and not isinstance(self.calibration, Calibration):
            raise CipsError(f"calibration= must be a Calibration or None; got {type(self.calibration).__name__}.")

    @property
    def clusters(self) -> tuple[str, ...]:
        """The cluster column of each stage (empty: rows are the PSUs)."""
        return _as_cols(self.cluster, "cluster") or ()

    @property
    def fpcs(self) -> tuple[str, ...]:
        """The fpc column of each stage given (empty: no fpc)."""
        return _as_cols(self.fpc, "fpc") or ()

    @property
    def stages(self) -> int:
        """Number of sampling stages named (at least 1)."""
        return max(1, len(self.clusters))

    def columns(self) -> tuple[str, ...]:
        """Every column the design reads (calibration variables included)."""
        cols = [c for c in (self.weight, self.strata) if c is not None] + list(self.clusters) + list(self.fpcs)
        cal = self.calibration
        if cal is not None:
            cols += [cal.base_weight, *cal.variables, *cal.numeric, *cal.by]
        return tuple(dict.fromkeys(cols))

    def update(self, **changes: Any) -> "Design":
        """A copy with some fields changed (the design is frozen)."""
        return dataclasses.replace(self, **changes)

    def check(self, frame: pd.DataFrame) -> None:
        """Raise :class:`~cips_stats.errors.DesignError` naming every design column the frame lacks."""
        missing = [c for c in self.columns() if c not in frame.columns]
        if missing:
            raise DesignError(f"The design names columns that the data lack: {missing}.",
                              [Problem("design_column", "Column named by the design not found.", column=c)
                               for c in missing])

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> "Design":
        """The data model's default design: ``weight``, ``stratum`` and ``cluster`` columns when present."""
        cols = frame.columns
        return cls(weight="weight" if "weight" in cols else None, strata="stratum" if "stratum" in cols else None,
                   cluster="cluster" if "cluster" in cols else None)


def _is_survey_data(obj: Any) -> bool:
    return hasattr(obj, "frame") and hasattr(obj, "with_frame") and hasattr(obj, "instrument")


def design_of(data: Any) -> Design:
    """The design a SurveyData carries (``data.design``), or the data model's default for its frame."""
    d = getattr(data, "design", None)
    if isinstance(d, Design):
        return d
    return Design.of_frame(data.frame)


def resolve(data: Any, weight: Any = None, strata: Any = None, cluster: Any = None, fpc: Any = None,
            ) -> tuple[pd.DataFrame, Design | None, dict[str, Any]]:
    """The frame and the design an estimator works with.

    ``weight`` may be a :class:`Design` (then ``strata``/``cluster``/``fpc``
    must be None), a column name or None.  For a SurveyData with no other
    design argument, ``weight=None`` means its own design and a column name
    its design with that weight (without the calibration).  Array-valued
    design arguments (one value per row) are returned in the third element
    for the kernels that accept them.

    Returns
    -------
    frame, design, arrays
    """
    if _is_survey_data(data):
        frame = data.frame
        if strata is None and cluster is None and fpc is None:
            if weight is None:
                weight = design_of(data)
            elif isinstance(weight, str):          # another weight column, the data's strata and clusters
                weight = design_of(data).update(weight=weight, calibration=None)
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise DataError(f"data must be a SurveyData or a pandas DataFrame; got {type(data).__name__}.",
                        [Problem("data_type", "Not a SurveyData or DataFrame.", value=type(data).__name__)])
    if isinstance(weight, Design):
        if any(v is not None for v in (strata, cluster, fpc)):
            raise CipsError("Give the design either as weight=Design(...) or as columns (weight=, strata=, "
                            "cluster=, fpc=), not both.")
        weight.check(frame)
        return frame, weight, {}
    arrays: dict[str, Any] = {}
    names: dict[str, Any] = {}
    for key, val in (("weight", weight), ("strata", strata), ("cluster", cluster), ("fpc", fpc)):
        if val is None or isinstance(val, str) or (
                key in ("cluster", "fpc") and isinstance(val, (list, tuple)) and val
                and all(isinstance(c, str) for c in val)):
            names[key] = val
        else:
            arr = np.asarray(val)
            if arr.ndim != 1 or arr.shape[0] != len(frame):
                raise DataError(f"{key}= must be a column name, a Design or one value per row ({len(frame)}); "
                                f"got shape {arr.shape}.",
                                [Problem("length_mismatch", "Wrong length.", column=key, value=list(arr.shape))])
            arrays[key] = arr
            names[key] = None
    if arrays:
        return frame, None, {**{k: v for k, v in names.items()}, **arrays}
    design = Design(**names)
    design.check(frame)
    return frame, design, {}


def model_matrix(frame: pd.DataFrame, variables: Sequence[str], numeric: Sequence[str]) -> np.ndarray:
    """Intercept, treatment-coded dummies (levels sorted, first dropped) and numeric columns (R ``model.matrix``).

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows.
    variables, numeric : sequence of str
        Categorical columns (one dummy per level after the first sorted one) and
        numeric columns (appended as they are).

    Returns
    -------
    ndarray, shape (n, 1 + sum(levels - 1) + len(numeric))

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.estimate.design import model_matrix
    >>> model_matrix(pd.DataFrame({"a": ["x", "y", "x"], "v": [1.0, 2.0, 3.0]}), ["a"], ["v"]).tolist()
    [[1.0, 0.0, 1.0], [1.0, 1.0, 2.0], [1.0, 0.0, 3.0]]
    """
    cols = [np.ones(len(frame))]
    for v in variables:
        codes, levels = pd.factorize(frame[v], sort=True)
        for k in range(1, len(levels)):
            cols.append((codes == k).astype(np.float64))
    for v in numeric:
        cols.append(pd.to_numeric(frame[v], errors="coerce").to_numpy(dtype=np.float64))
    return np.column_stack(cols)


# ----------------------------------------------------------------------------------------------
# Prepared (numeric) design
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One sampling stage in numeric form.

    ``unit`` (n,) numbers the stage's sampled units globally; ``group`` (U,) is
    the group each unit was sampled in (stage 1: the stratum; later stages:
    the sampled unit of the previous stage); ``n_g`` (G,) the units sampled
    per group; ``f_g`` (G,) ``1 - n_g/N_g`` (1 without fpc); ``frac_g`` (G,)
    ``n_g/N_g`` (the factor of the next stage's variance); ``labels`` (G,)
    printable group labels.
    """

    unit: np.ndarray
    group: np.ndarray
    n_g: np.ndarray
    f_g: np.ndarray
    frac_g: np.ndarray
    labels: np.ndarray
    has_fpc: bool


@dataclass(frozen=True)
class PreparedDesign:
    """A design resolved on a frame: weights and the stages as integer codes."""

    w: np.ndarray
    stratum: np.ndarray
    stages: tuple
    strata_labels: np.ndarray

    @property
    def psu(self) -> np.ndarray:
        """First-stage unit of each row."""
        return self.stages[0].unit

    @property
    def psu_stratum(self) -> np.ndarray:
        """Stratum of each PSU."""
        return self.stages[0].group

    @property
    def n_h(self) -> np.ndarray:
        """PSUs per stratum."""
        return self.stages[0].n_g

    @property
    def f_h(self) -> np.ndarray:
        """``1 - n_h/N_h`` per stratum (1 without fpc)."""
        return self.stages[0].f_g

    @property
    def has_fpc(self) -> bool:
        """True when the first stage has an fpc."""
        return self.stages[0].has_fpc


def _column(frame: pd.DataFrame, name: Any, what: str) -> pd.Series:
    if isinstance(name, str):
        if name not in frame.columns:
            raise DataError(f"{what}={name!r} is not a column of the frame.",
                            [Problem("column_missing", f"Column {name!r} not found.", column=name)])
        return frame[name]
    arr = np.asarray(name)
    if arr.shape != (len(frame),):
        raise DataError(f"{what}= must be a column name or have one value per row ({len(frame)}); got "
                        f"shape {arr.shape}.", [Problem("length_mismatch", "Wrong length.", column=what)])
    return pd.Series(arr, index=frame.index)


def _labels(frame: pd.DataFrame, col: Any, what: str) -> np.ndarray:
    s = _column(frame, col, what)
    bad = np.flatnonzero(s.isna().to_numpy())
    if bad.size:
        raise DataError(f"{what}={col if isinstance(col, str) else '<array>'!r} has missing values.",
                        [Problem("design_missing", f"Missing {what} value.", row=int(r) + 1,
                                 column=str(s.name or what)) for r in bad[:50]])
    return pd.factorize(s, sort=True)[0].astype(np.int64)


def _weights(frame: pd.DataFrame, weight: Any, allow_negative: bool) -> np.ndarray:
    if weight is None:
        return np.ones(len(frame))
    ws = _column(frame, weight, "weight")
    w = pd.to_numeric(ws, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(w) | ((w < 0) & (not allow_negative)))
    if bad.size:
        name = weight if isinstance(weight, str) else "weight"
        raise DataError(
            f"weight={name!r} has {bad.size} negative, missing or non-finite values; survey weights must be "
            "finite and >= 0.",
            [Problem("weight_nonnegative", "Weight must be finite and >= 0.", row=int(r) + 1, column=str(name),
                     value=ws.iloc[r]) for r in bad[:50]])
    return w


def _nest(outer: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units of ``inner`` nested in ``outer`` (R ``nest = TRUE``): global unit codes and each unit's outer code."""
    pair = outer.astype(np.int64) * (int(inner.max(initial=0)) + 1) + inner
    unit, uniq = pd.factorize(pair, sort=True)
    group = (uniq // (int(inner.max(initial=0)) + 1)).astype(np.intp)
    return unit.astype(np.intp), group


def _fpc_values(frame: pd.DataFrame, fpcs: Sequence[Any]) -> tuple[list[np.ndarray], bool]:
    vals = []
    for k, col in enumerate(fpcs):
        fs = pd.to_numeric(_column(frame, col, "fpc"), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(fs) | (fs <= 0))
        if bad.size:
            raise DataError(f"fpc={col if isinstance(col, str) else '<array>'!r} (stage {k + 1}) has {bad.size} "
                            "missing or non-positive values.",
                            [Problem("fpc_positive", "fpc must be a positive population size or fraction.",
                                     row=int(r) + 1, column=str(col), value=float(fs[r])) for r in bad[:50]])
        vals.append(fs)
    # R as.fpc: population sizes when any value exceeds 1, sampling fractions otherwise
    is_pop = any(bool((v > 1).any()) for v in vals)
    return vals, is_pop


def _stage(unit: np.ndarray, group: np.ndarray, labels: np.ndarray, fpc: np.ndarray | None, is_pop: bool,
           row_group: np.ndarray, col: Any, k: int) -> Stage:
    G = labels.size
    n_g = np.bincount(group, minlength=G).astype(np.float64)
    f_g = np.ones(G)
    frac = np.zeros(G)
    if fpc is not None:
        lo = np.full(G, np.inf)
        hi = np.full(G, -np.inf)
        np.minimum.at(lo, row_group, fpc)
        np.maximum.at(hi, row_group, fpc)
        varying = np.flatnonzero(hi - lo > 1e-9 * np.maximum(1.0, hi))
        if varying.size:
            raise DataError(f"fpc= of stage {k + 1} varies within a stratum (or sampled unit); it must be "
                            "constant there.",
                            [Problem("fpc_constant", "fpc differs within the group.", column=str(col),
                                     value=str(labels[g])) for g in varying[:50]])
        pop = lo if is_pop else n_g / lo
        small = np.flatnonzero(pop < n_g - 1e-9)
        if small.size:
            raise DataError(f"fpc= of stage {k + 1} gives a population smaller than the number of sampled units.",
                            [Problem("fpc_too_small", f"Population {pop[g]:g} < {n_g[g]:g} sampled units.",
                                     column=str(col), value=str(labels[g])) for g in small[:50]])
        f_g = (pop - n_g) / pop
        frac = n_g / pop
    return Stage(unit, group, n_g, f_g, frac, labels, fpc is not None)


def prepare(frame: pd.DataFrame, design: Design | None = None, *, arrays: dict | None = None,
            allow_negative: bool = False) -> PreparedDesign:
    """Resolve a design on a frame: weights, strata and the units of every stage as integer codes.

    Either ``design`` (column names) or ``arrays`` (``weight``/``strata``/
    ``cluster``/``fpc``, names or per-row arrays) gives the design.
    """
    if design is not None:
        weight, strata, clusters, fpcs = design.weight, design.strata, list(design.clusters), list(design.fpcs)
    else:
        a = arrays or {}
        weight, strata = a.get("weight"), a.get("strata")
        cl, fp = a.get("cluster"), a.get("fpc")
        clusters = [] if cl is None else (list(cl) if isinstance(cl, (list, tuple)) else [cl])
        fpcs = [] if fp is None else (list(fp) if isinstance(fp, (list, tuple)) else [fp])
    n = len(frame)
    w = _weights(frame, weight, allow_negative)
    if strata is None:
        s_codes = np.zeros(n, dtype=np.intp)
        s_labels = np.array([1])
    else:
        s_codes = _labels(frame, strata, "strata").astype(np.intp)
        s_labels = np.asarray(pd.factorize(_column(frame, strata, "strata"), sort=True)[1])
    if len(fpcs) > 1 and len(fpcs) != len(clusters):
        raise DesignError(f"fpc= gives {len(fpcs)} stages but cluster= {len(clusters)}.",
                          [Problem("fpc_stages", "One fpc per stage.", column="fpc")])
    fpc_vals, is_pop = _fpc_values(frame, fpcs) if fpcs else ([], False)
    stage_keys = [_labels(frame, c, "cluster") for c in clusters] or [np.arange(n, dtype=np.int64)]
    stages = []
    outer, outer_labels = s_codes, s_labels
    for k, key in enumerate(stage_keys):
        unit, group = _nest(outer, key)
        fpc = fpc_vals[k] if k < len(fpc_vals) else None
        col = fpcs[k] if k < len(fpcs) else None
        stages.append(_stage(unit, group, outer_labels, fpc, is_pop, outer, col, k))
        outer = unit
        outer_labels = np.arange(int(unit.max(initial=-1)) + 1)
    return PreparedDesign(w, s_codes, tuple(stages), s_labels)
