"""Errors and warnings of cips_stats.

Every error the package raises for bad input or an unfittable model is a
:class:`CipsError`, itself a :class:`ValueError`, so that ``except ValueError``
keeps working.  Errors about data carry a list of :class:`Problem` records that
name the file, row, column, value and rule, so that a user can find and fix each
one.  Warnings that matter statistically are :class:`CipsWarning` subclasses; the
functions that emit them (through :func:`emit`) also attach them to their result
objects as :class:`Flag` records so that they reach reports, not only stderr.
:func:`check_level`, :func:`check_choice` and :func:`check_count` are the shared checks
of ``ci=``/``significance=``, option and count arguments.

Examples
--------
>>> import cips_stats as cs
>>> p = cs.errors.Problem(rule="weight_positive", message="Weight must be positive.",
...                       file="survey.csv", row=12, column="weight", value=-1.0)
>>> err = cs.DataError("The survey file has 1 problem.", problems=[p])
>>> isinstance(err, ValueError)
True
>>> print(err.problems[0].describe())
survey.csv, row 12, column 'weight', value -1.0: Weight must be positive. [weight_positive]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "Problem",
    "CipsError",
    "DataError",
    "DesignError",
    "SingletonPSUError",
    "ModelError",
    "ConvergenceError",
    "CipsWarning",
    "SmallCellWarning",
    "LowReliabilityWarning",
    "PoorFitWarning",
    "NonInvarianceWarning",
    "ConvergenceWarning",
    "NumericalWarning",
]


@dataclass(frozen=True)
class Problem:
    """One problem found in the input.

    Parameters
    ----------
    rule : str
        Short machine-readable name of the rule that failed (e.g. ``"code_in_scale"``).
    message : str
        Human-readable explanation, a full sentence.
    file : str, optional
        File the value came from (``"<DataFrame>"`` for in-memory input).
    row : int, optional
        Row number of the value: the 1-based data record number, for files and
        DataFrames alike (the header is not counted; the first respondent is row 1).
    column : str, optional
        Column name.
    value : Any, optional
        The offending value, as read.
    """

    rule: str
    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    value: Any = None

    def describe(self) -> str:
        """Return a one-line description naming file, row, column and value."""
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.value is not None:
            where.append(f"value {self.value!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message} [{self.rule}]" if prefix else f"{self.message} [{self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a plain dictionary."""
        return asdict(self)


class CipsError(ValueError):
    """Base class of every error raised by cips_stats for bad input or models."""


class DataError(CipsError):
    """Bad input data: names every problem found with its file, row, column and value.

    Parameters
    ----------
    message : str
        Summary sentence.
    problems : iterable of Problem, optional
        Every problem found (not only the first one).
    """

    def __init__(self, message: str, problems: Iterable[Problem] | None = None):
        self.problems: list[Problem] = list(problems or [])
        self.summary_message = message
        super().__init__(self._render(message))

    def _render(self, message: str, limit: int = 50) -> str:
        if not self.problems:
            return message
        lines = [message]
        for p in self.problems[:limit]:
            lines.append("  - " + p.describe())
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more problems (see .problems).")
        return "\n".join(lines)

    def to_frame(self):
        """Return the problems as a DataFrame (file, row, column, value, rule, message)."""
        import pandas as pd

        cols = ["file", "row", "column", "value", "rule", "message"]
        return pd.DataFrame([p.to_dict() for p in self.problems], columns=cols)


class DesignError(DataError):
    """A survey design that cannot support the requested estimate (e.g. empty strata)."""


class SingletonPSUError(DesignError):
    """A stratum holds a single primary sampling unit, so its variance cannot be estimated.

    The message lists the offending strata and the remedies (collapse strata,
    ``lonely_psu="certainty"``, ``"adjust"`` or ``"average"``, as R survey's
    ``options(survey.lonely.psu=...)`` but chosen per call, never globally).
    """


class ModelError(CipsError):
    """A model that cannot be fitted, is not identified or did not converge.

    Parameters
    ----------
    message : str
        Summary sentence naming the cause.
    diagnostics : mapping, optional
        Whatever helps to diagnose it (iterations, gradient norm, eigenvalues,
        offending parameters, R-hat, ...).
    """

    def __init__(self, message: str, diagnostics: Mapping[str, Any] | None = None):
        self.diagnostics: dict[str, Any] = dict(diagnostics or {})
        super().__init__(message)


class ConvergenceError(ModelError):
    """An iterative procedure did not converge."""


class CipsWarning(UserWarning):
    """Base class of warnings that matter statistically."""


class SmallCellWarning(CipsWarning):
    """A cell is below the minimum size for a stable or disclosable estimate."""


class LowReliabilityWarning(CipsWarning):
    """A scale's reliability is below the conventional thresholds."""


class PoorFitWarning(CipsWarning):
    """A model fits the data poorly by the conventional cut-offs."""


class NonInvarianceWarning(CipsWarning):
    """Measurement invariance does not hold at the level a comparison needs."""


class ConvergenceWarning(CipsWarning):
    """An estimator or sampler converged poorly (e.g. R-hat > 1.01, divergences)."""


class NumericalWarning(CipsWarning):
    """Numerical trouble: non-positive-definite matrices, Heywood cases, tiny variances."""


@dataclass(frozen=True)
class Flag:
    """A statistically meaningful condition attached to a result.

    Parameters
    ----------
    code : str
        Machine-readable name (``"heywood"``, ``"small_cell"``, ``"low_alpha"``...).
    message : str
        Sentence for humans.
    severity : {"info", "caution", "warning", "error"}
        How much it matters.
    where : dict
        What it concerns (cell keys, parameter names...).
    """

    code: str
    message: str
    severity: str = "warning"
    where: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the flag as a plain dictionary."""
        return asdict(self)


def emit(flag: Flag, category: type[CipsWarning] = CipsWarning, *, stacklevel: int = 3) -> Flag:
    """Warn with ``category`` about ``flag`` and return the flag, to attach it to the result.

    Functions call this for every statistically meaningful condition, so that it both
    reaches the user at once (``warnings.warn``) and travels with the result
    (``Result.flags``) into reports.

    Parameters
    ----------
    flag : Flag
        The condition found.
    category : subclass of CipsWarning
        The warning class (``LowReliabilityWarning``, ``PoorFitWarning``...).
    stacklevel : int, default 3
        Passed to :func:`warnings.warn`; 3 points at the caller of the public function
        that calls ``emit``.

    Returns
    -------
    Flag
        ``flag`` itself.

    Examples
    --------
    >>> import warnings
    >>> from cips_stats.errors import Flag, LowReliabilityWarning, emit
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     f = emit(Flag("alpha_poor", "alpha = 0.5 is below 0.60."), LowReliabilityWarning)
    >>> f.code, caught[0].category.__name__
    ('alpha_poor', 'LowReliabilityWarning')
    """
    import warnings

    if not (isinstance(category, type) and issubclass(category, CipsWarning)):
        raise CipsError(f"category must be a CipsWarning subclass; got {category!r}.")
    warnings.warn(f"{flag.message} [{flag.code}]", category, stacklevel=stacklevel)
    return flag


# ------------------------------------------------------------------------------------ argument checks
def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def check_level(value: Any, name: str = "ci") -> float:
    """Return a confidence or test level as a float in (0, 1), or raise :class:`CipsError` naming the argument.

    The one check every ``ci=`` and ``significance=`` argument goes through.

    Parameters
    ----------
    value : float
        The level given.
    name : str, default "ci"
        The argument's name, for the message.

    Returns
    -------
    float
        ``value`` as a float.

    Raises
    ------
    CipsError
        If ``value`` is not a real number strictly between 0 and 1 (booleans and NaN refused).

    Examples
    --------
    >>> from cips_stats.errors import check_level
    >>> check_level(0.9)
    0.9
    >>> check_level(95, "ci")
    Traceback (most recent call last):
    ...
    cips_stats.errors.CipsError: The ci= argument must be a number strictly between 0 and 1; got 95.
    """
    import numbers

    if _is_bool(value) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise CipsError(f"The {name}= argument must be a number strictly between 0 and 1; got {value!r}.")
    return float(value)


def check_choice(value: Any, options: Iterable[Any], name: str) -> Any:
    """Return ``value`` if it is one of ``options``, else raise :class:`CipsError` listing them.

    Parameters
    ----------
    value : Any
        The option given.
    options : iterable
        The allowed values.
    name : str
        The argument's name, for the message.

    Returns
    -------
    Any
        ``value``.

    Examples
    --------
    >>> from cips_stats.errors import check_choice
    >>> check_choice("feldt", ("feldt", "duhachek"), "ci_method")
    'feldt'
    """
    options = list(options)
    if value not in options:
        raise CipsError(f"The {name}= argument must be one of {options}; got {value!r}.")
    return value


def check_count(value: Any, name: str, minimum: int = 0) -> int:
    """Return an integer argument of at least ``minimum``, else raise :class:`CipsError` naming it.

    Parameters
    ----------
    value : int
        The number given (``n_boot``, ``min_n``, ``chunk_size``...); booleans and floats refused.
    name : str
        The argument's name, for the message.
    minimum : int, default 0
        The smallest value allowed.

    Returns
    -------
    int
        ``value`` as an int.

    Examples
    --------
    >>> from cips_stats.errors import check_count
    >>> check_count(200, "n_boot", 100)
    200
    """
    import numbers

    if _is_bool(value) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise CipsError(f"The {name}= argument must be an integer of at least {minimum}; got {value!r}.")
    return int(value)


__all__ += ["Flag", "emit", "check_level", "check_choice", "check_count"]
