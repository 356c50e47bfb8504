"""Statistical disclosure control of cell tables: small-cell suppression and anonymised country labels.

Every report and export passes its cell tables through :func:`suppress` (and,
when countries must not be named, :func:`anonymise`).  Suppression blanks the
statistics of a cell (never deletes the row) and writes the reason in a
column, so that nothing disappears silently.  The disclosure minimum (default
10 respondents) protects respondents; it is distinct from the precision
minimum of :func:`cips_stats.estimate.indicators` (default 30), which protects
readers from unstable numbers, and both are applied here.

Examples
--------
>>> import pandas as pd
>>> from cips_stats import disclosure
>>> t = pd.DataFrame({"country": ["A", "B"], "estimate": [6.1, 7.4], "se": [0.2, 0.9], "n": [120, 7]})
>>> out = disclosure.suppress(t)
>>> out["estimate"].tolist(), out["suppression_reason"].tolist()
([6.1, nan], ['', 'disclosure:n<10'])
>>> anon, mapping = disclosure.anonymise(t, seed=1)
>>> sorted(anon["country"])
['Country 1', 'Country 2']
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, Problem

__all__ = ["suppress", "anonymise", "deanonymise", "STAT_COLUMNS"]

#: Statistic columns blanked by default when present.
STAT_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "cv", "deff", "n_eff", "var", "value", "mean")


def suppress(table: pd.DataFrame, *, min_n: int = 10, n_column: str = "n", columns: Sequence[str] | None = None,
             precision: bool = True, blank_n: bool = False,
             reason_column: str = "suppression_reason") -> pd.DataFrame:
    """Blank the statistics of cells too small to publish, keeping the rows and the reason.

    Parameters
    ----------
    table : pandas.DataFrame
        A tidy cell table with an unweighted count column (``n``).
    min_n : int
        Disclosure minimum: cells with ``n < min_n`` (or unknown ``n``) are
        blanked.  Default 10.
    n_column : str
        The count column.
    columns : sequence of str, optional
        Columns to blank; default every column of :data:`STAT_COLUMNS`
        present (estimate, se, CI limits, cv, deff, n_eff, ...).
    precision : bool
        Also blank rows already marked ``suppressed`` by the precision rules
        of :func:`~cips_stats.estimate.indicators` (``n`` below the precision
        minimum or CV above 33.3%), with their flags as reason.  Default True.
    blank_n : bool
        Also blank the count of disclosure-suppressed cells (small counts can
        themselves be disclosive).  Default False.
    reason_column : str
        Column receiving the reason (``""`` when published):
        ``disclosure:n<10``, ``disclosure:n_unknown``, ``precision:<flags>``,
        joined with ``;`` when several apply.

    Returns
    -------
    pandas.DataFrame
        A copy with the statistics blanked (NaN), ``suppressed`` (bool) and
        the reason column.  The input is not modified.

    Notes
    -----
    Primary suppression only.  Complementary (secondary) suppression — hiding
    further cells so that a suppressed cell cannot be recovered from
    published totals by subtraction — is not done: our tables publish means
    and shares per cell, not additive totals with margins, so subtraction
    does not reveal a suppressed cell; a table that adds margins of counts
    must be checked for it (see ``methodology/disclosure.md``).

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import suppress
    >>> t = pd.DataFrame({"estimate": [5.0, 6.0], "n": [25, 40], "suppressed": [True, False],
    ...                   "flags": ["small_n", ""]})
    >>> suppress(t)["suppression_reason"].tolist()
    ['precision:small_n', '']
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table= must be a pandas DataFrame; got {type(table).__name__}.")
    if isinstance(min_n, bool) or not isinstance(min_n, (int, np.integer)) or min_n < 0:
        raise ValueError(f"min_n= must be a non-negative integer; got {min_n!r}.")
    if n_column not in table.columns:
        raise DataError(f"The table has no count column {n_column!r}; suppression needs the unweighted n "
                        "of each cell (n_column=).",
                        [Problem("n_column", "Count column missing.", column=n_column)])
    if columns is None:
        cols = [c for c in STAT_COLUMNS if c in table.columns]
    else:
        cols = list(columns)
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise DataError(f"columns= names columns the table lacks: {missing}.",
                            [Problem("column_missing", "Column not found.", column=c) for c in missing])
    out = table.copy()
    n = pd.to_numeric(out[n_column], errors="coerce").to_numpy(dtype=np.float64)
    unknown = np.isnan(n)
    small = ~unknown & (n < min_n)
    reasons = [[] for _ in range(len(out))]
    for i in np.flatnonzero(small):
        reasons[i].append(f"disclosure:n<{min_n}")
    for i in np.flatnonzero(unknown):
        reasons[i].append("disclosure:n_unknown")
    disc = small | unknown
    prec = np.zeros(len(out), dtype=bool)
    if precision and "suppressed" in out.columns:
        prec = out["suppressed"].fillna(True).to_numpy(dtype=bool)
        fl = out["flags"].fillna("").astype(str).to_numpy() if "flags" in out.columns else np.full(len(out), "")
        for i in np.flatnonzero(prec):
            reasons[i].append("precision:" + (fl[i] if fl[i] else "suppressed"))
    blank = disc | prec
    for c in cols:
        if c == n_column:
            continue
        out[c] = out[c].astype(np.float64) if out[c].dtype.kind in "biuf" else out[c]
        out.loc[blank, c] = np.nan
    if blank_n and disc.any():
        out[n_column] = out[n_column].astype("Float64")
        out.loc[disc, n_column] = pd.NA
    out["suppressed"] = blank
    out[reason_column] = [";".join(r) for r in reasons]
    return out


def _keyed_order(labels: Sequence[Any], seed: int) -> list[Any]:
    key = str(int(seed)).encode()
    return sorted(labels, key=lambda v: hmac.new(key, repr(v).encode("utf-8"), hashlib.sha256).hexdigest())


def anonymise(table: pd.DataFrame, column: str = "country", *, seed: int, prefix: str = "Country ",
              mapping: Mapping[Any, str] | None = None) -> tuple[pd.DataFrame, dict[Any, str]]:
    """Replace the labels of a column by anonymous, seeded labels; return the mapping to reverse it.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table with the column.
    column : str
        Column to anonymise (default ``"country"``).
    seed : int
        Secret of the mapping.  The same seed and the same set of labels give
        the same mapping, whatever the row order; keep the seed (or the
        mapping) private.
    prefix : str
        Prefix of the anonymous labels, followed by a zero-padded number
        (``Country 01`` ... ``Country 25``).
    mapping : mapping, optional
        An earlier mapping to reuse (consistent labels across reports);
        labels it lacks get the next free numbers, in seeded order.

    Returns
    -------
    (pandas.DataFrame, dict)
        The anonymised copy and the mapping ``{original: anonymous}``.

    Notes
    -----
    The order of the labels is the order of ``HMAC-SHA256(seed, label)``:
    unrelated to the alphabet, to sample sizes and to the row order, and
    reproducible by the owner of the seed.  Other columns that identify the
    country (names in free text, region codes, unique sample sizes) must be
    removed separately.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import anonymise, deanonymise
    >>> t = pd.DataFrame({"country": ["Kenya", "Peru", "Kenya"], "estimate": [1.0, 2.0, 3.0]})
    >>> anon, m = anonymise(t, seed=42)
    >>> anon["country"].iloc[0] == anon["country"].iloc[2]
    True
    >>> deanonymise(anon, m)["country"].tolist()
    ['Kenya', 'Peru', 'Kenya']
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table= must be a pandas DataFrame; got {type(table).__name__}.")
    if column not in table.columns:
        raise DataError(f"The table has no column {column!r} to anonymise.",
                        [Problem("column_missing", "Column not found.", column=column)])
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed= must be an integer (the secret of the mapping); got {seed!r}.")
    vals = table[column]
    if vals.isna().any():
        rows = np.flatnonzero(vals.isna().to_numpy())
        raise DataError(f"{rows.size} rows have no {column!r} label to anonymise.",
                        [Problem("label_missing", "Missing label.", row=int(r) + 1, column=column) for r in rows[:50]])
    labels = list(pd.unique(vals))
    m: dict[Any, str] = dict(mapping or {})
    new = [v for v in labels if v not in m]
    used = set(m.values())
    total = len(m) + len(new)
    width = len(str(max(total, 1)))
    numbers = []
    for v in m.values():
        tail = str(v)[len(prefix):] if str(v).startswith(prefix) else ""
        if tail.isdigit():
            numbers.append(int(tail))
            width = max(width, len(tail))
    nxt = max(numbers, default=0) + 1
    for v in _keyed_order(new, seed):
        lab = f"{prefix}{nxt:0{width}d}"
        while lab in used:
            nxt += 1
            lab = f"{prefix}{nxt:0{width}d}"
        m[v] = lab
        used.add(lab)
        nxt += 1
    out = table.copy()
    out[column] = vals.map(m).astype(object)
    return out, m


def deanonymise(table: pd.DataFrame, mapping: Mapping[Any, str], column: str = "country") -> pd.DataFrame:
    """Restore the original labels of an anonymised column from the mapping of :func:`anonymise`.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import deanonymise
    >>> deanonymise(pd.DataFrame({"country": ["Country 1"]}), {"Chile": "Country 1"})["country"].tolist()
    ['Chile']
    """
    inverse = {v: k for k, v in mapping.items()}
    if len(inverse) != len(mapping):
        raise DataError("The mapping is not one-to-one.", [Problem("mapping", "Duplicate anonymous labels.")])
    unknown = sorted(set(table[column]) - set(inverse), key=str)
    if unknown:
        raise DataError(f"Labels not in the mapping: {unknown[:10]}.",
                        [Problem("label_unknown", "Label not in the mapping.", column=column, value=u)
                         for u in unknown[:50]])
    out = table.copy()
    out[column] = table[column].map(inverse)
    return out
