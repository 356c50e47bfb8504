"""Result objects of confirmatory factor analysis.

:class:`CFAResult` holds one fitted model: fit measures (``.fit``, a dict on
lavaan's conventions), the parameter table with standard errors and standardised
solutions (``.parameters``), the loadings (``.loadings``), thresholds, implied
moments, flags, and — computed on demand — modification indices
(:meth:`CFAResult.modindices`).  :class:`CFAResults` is a small container of one
result per respondent group (what ``cs.factor.cfa(survey_data)`` returns).

Examples
--------
>>> import numpy as np, pandas as pd
>>> import cips_stats as cs
>>> gen = np.random.default_rng(1)
>>> common = gen.standard_normal((300, 1)) * [0.8, 0.7, 0.6, 0.5]
>>> df = pd.DataFrame(common + 0.6 * gen.standard_normal((300, 4)), columns=list("abcd"))
>>> res = cs.factor.cfa(df, model="f =~ a + b + c + d")
>>> res.fit["df"], res.converged
(2, True)
>>> res.loadings.shape[0]
4
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..results import Result, Summary, split_pairs

__all__ = ["CFAResult", "CFAResults", "FIT_KEYS"]

#: The fit measures every ML/MLR result reports (lavaan's names with '.' → '_').
FIT_KEYS = (
    "npar", "chi2", "df", "pvalue", "baseline_chi2", "baseline_df", "baseline_pvalue",
    "cfi", "tli", "rmsea", "rmsea_ci", "rmsea_pvalue", "srmr", "srmr_bentler_nomean",
    "loglik", "unrestricted_loglik", "aic", "bic", "bic2", "fmin",
)


@dataclass(frozen=True)
class CFAResult(Result):
    """A fitted confirmatory factor model.

    Attributes
    ----------
    model : str
        The lavaan-style syntax fitted.
    estimator : str
        ``"ML"``, ``"MLR"``, ``"WLSMV"`` or ``"DWLS"``.
    missing : str
        ``"listwise"`` or ``"fiml"``.
    converged : bool
        Whether the optimiser met its convergence criterion.
    iterations : int
    n_obs : tuple of int
        Observations used, per group.
    n_groups : int
    group_labels : tuple of str
    fit : dict
        Fit measures. Always: ``npar, chi2, df, pvalue, baseline_chi2, baseline_df,
        cfi, tli, rmsea, rmsea_ci`` (lower, upper of the 90% interval),
        ``rmsea_pvalue`` (H0: RMSEA <= .05), ``srmr`` (lavaan's default: Bentler's,
        means included when the model has a mean structure), ``loglik``,
        ``unrestricted_loglik``, ``aic, bic, bic2``. For MLR also ``chi2_scaled,
        scaling_factor, pvalue_scaled, baseline_chi2_scaled, cfi_scaled, tli_scaled,
        cfi_robust, tli_robust, rmsea_scaled, rmsea_robust, rmsea_ci_robust``.
    parameters : pandas.DataFrame
        One row per parameter and group: ``lhs, op, rhs, group, label, free, est, se,
        z, pvalue, ci_low, ci_high, std_lv, std_all`` (95% Wald intervals).
    loadings : pandas.DataFrame
        The ``=~`` rows of ``parameters`` (``factor, item, group, est, se, std_all``...).
    thresholds : pandas.DataFrame or None
        The ``|`` rows (ordered items), else None.
    implied : tuple of dict
        Per group: ``sigma`` (DataFrame), ``mu`` (Series).
    sample : tuple of dict
        Per group: the sample (or EM, under FIML) ``cov`` and ``mean`` the model was compared to.
    vcov : numpy.ndarray
        Covariance matrix of the free parameters (order of ``free``).
    options : dict
        Options the model was fitted with.
    """

    model: str = ""
    estimator: str = "ML"
    missing: str = "listwise"
    converged: bool = False
    iterations: int = 0
    n_obs: tuple = ()
    n_groups: int = 1
    group_labels: tuple = ()
    fit: dict = field(default_factory=dict)
    parameters: pd.DataFrame = field(default_factory=pd.DataFrame)
    loadings: pd.DataFrame = field(default_factory=pd.DataFrame)
    thresholds: pd.DataFrame | None = None
    implied: tuple = ()
    sample: tuple = ()
    vcov: np.ndarray | None = field(default=None, repr=False)
    options: dict = field(default_factory=dict)
    _state: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ accessors
    @property
    def estimate(self) -> pd.Series:
        """Estimates of the free parameters, indexed ``"lhs op rhs [group]"``."""
        p = self.parameters[self.parameters["free"] > 0]
        return pd.Series(p["est"].to_numpy(), index=_names(p))

    @property
    def se(self) -> pd.Series:
        """Standard errors of the free parameters (same index as ``estimate``)."""
        p = self.parameters[self.parameters["free"] > 0]
        return pd.Series(p["se"].to_numpy(), index=_names(p))

    def to_frame(self) -> pd.DataFrame:
        """The parameter table (a copy of ``parameters``)."""
        return self.parameters.copy()

    def fit_frame(self) -> pd.DataFrame:
        """The fit measures as a one-row DataFrame (``rmsea_ci`` split into ``_low``/``_high``)."""
        return pd.DataFrame([split_pairs(self.fit)])

    def modindices(self, *, minimum: float = 0.0, sort: bool = True, information: str | None = None) -> pd.DataFrame:
        """Modification indices (score tests) for fixed parameters, with expected parameter change.

        Parameters
        ----------
        minimum : float
            Report only indices at least this large.
        sort : bool
            Sort by decreasing ``mi``.
        information : {"expected", "observed"}, optional
            Information matrix of the score tests; default ``"expected"`` as lavaan
            (also for MLR; under FIML the expected information given each row's
            observed items).

        Returns
        -------
        pandas.DataFrame
            ``lhs, op, rhs, group, mi, epc, sepc_lv, sepc_all`` for cross-loadings and
            residual covariances (and fixed parameters of the table).

        Notes
        -----
        ``mi = N d^2 / v`` with ``d`` the gradient of the ML discrepancy and ``v`` the
        corresponding diagonal of the inverse of the information of the
        augmented parameter set after partialling out the free parameters;
        ``epc = -d / v`` (Sörbom, 1989; lavaan's ``modindices()``; checked against
        lavaan 0.6-14 on HolzingerSwineford1939, complete and FIML).
        """
        if self._state is None or not hasattr(self._state, "modindices"):
            from ..errors import ModelError

            raise ModelError(f"Modification indices are not available for estimator {self.estimator!r}.")
        if information is None:
            information = "expected"
        if information not in ("expected", "observed"):
            from ..errors import ModelError

            raise ModelError(f"information= must be 'expected' or 'observed', got {information!r}.")
        mi = self._state.modindices(self, information=information)
        mi = mi[mi["mi"] >= minimum]
        if sort:
            mi = mi.sort_values("mi", ascending=False, kind="stable")
        return mi.reset_index(drop=True)

    def summary(self) -> Summary:
        """A renderable summary: fit measures, parameter table and flags."""
        f = self.fit
        header = {
            "estimator": self.estimator,
            "missing": self.missing,
            "converged": self.converged,
            "groups": ", ".join(map(str, self.group_labels)) if self.n_groups > 1 else "1",
            "n": sum(self.n_obs),
        }
        for k in ("chi2", "df", "pvalue", "chi2_scaled", "scaling_factor", "pvalue_scaled", "cfi", "tli",
                  "cfi_robust", "tli_robust", "rmsea", "rmsea_ci", "rmsea_robust", "srmr", "aic", "bic"):
            if k in f:
                header[k] = f[k]
        cols = ["lhs", "op", "rhs", "group", "est", "se", "z", "pvalue", "std_all"]
        tables = {"parameters": self.parameters[cols]}
        notes = [fl.message for fl in self.flags]
        return Summary(f"Confirmatory factor analysis ({self.estimator})", header=header, tables=tables,
                       notes=notes)


def _names(p: pd.DataFrame) -> list[str]:
    multi = p["group"].max() > 1 if len(p) else False
    out = []
    for lhs, op, rhs, g in zip(p["lhs"], p["op"], p["rhs"], p["group"]):
        s = f"{lhs} {op} {rhs}".strip() if op != "~1" else f"{lhs} ~1"
        out.append(f"{s} [{g}]" if multi else s)
    return out


@dataclass(frozen=True)
class CFAResults(Result):
    """One :class:`CFAResult` per respondent group (``cs.factor.cfa(survey_data)``).

    Behaves as a read-only mapping ``group -> CFAResult``.

    Attributes
    ----------
    results : dict
        Respondent group id → CFAResult.
    """

    results: Mapping[str, CFAResult] = field(default_factory=dict)

    def __getitem__(self, key: str) -> CFAResult:
        return self.results[key]

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def keys(self):
        """Respondent groups."""
        return self.results.keys()

    def items(self):
        """(group, result) pairs."""
        return self.results.items()

    def values(self):
        """The results."""
        return self.results.values()

    def to_frame(self) -> pd.DataFrame:
        """Fit measures, one row per respondent group."""
        frames = []
        for g, r in self.results.items():
            fr = r.fit_frame()
            fr.insert(0, "group", g)
            fr.insert(1, "n", sum(r.n_obs))
            fr.insert(2, "converged", r.converged)
            frames.append(fr)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self) -> Summary:
        """Fit measures per group, with every group's flags."""
        notes = [f"[{g}] {fl.message}" for g, r in self.results.items() for fl in r.flags]
        return Summary("Confirmatory factor analysis by respondent group", header={},
                       tables={"fit": self.to_frame()}, notes=notes)
