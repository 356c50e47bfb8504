"""Statistical disclosure control: the one publication gate every output passes through.

Everything the package writes — report tables, CSV/XLSX/JSON exports, figure labels, flag messages and
CLI messages — leaves through a :class:`Gate`.  The gate applies, in this order:

1. **primary suppression**: a cell (country × iteration × group) with fewer than ``min_n`` respondents
   (default 10, never below 5) or an unknown count is blanked (statistics *and* count), and so is the
   share of a demographic category counted by fewer than ``min_n`` respondents (:meth:`Gate.shares`);
2. **complementary (secondary) suppression**: further cells are blanked so that no suppressed count can
   be recovered from the published totals (respondents used, respondents per group, per iteration, the
   sample sizes of the CFA and of the invariance comparisons) by differencing; every suppressed count
   keeps a feasible interval at least ``protection`` wide, checked by linear programming (:func:`audit`);
3. **redaction**: flags and messages about suppressed cells are replaced by a fixed sentence;
4. **anonymisation** (optional): country names become codes drawn from a secret key
   (``HMAC-SHA256(key, name)``), never from the analysis seed; rows are ordered by code; names inside
   messages are replaced with uniform quoting, so neither the order, the punctuation nor the length of
   a name survives.  The key never appears in any output.

See ``methodology/disclosure.md`` for the threat model, the algorithm and the tests.

Examples
--------
>>> import pandas as pd
>>> from cips_stats import disclosure
>>> t = pd.DataFrame({"country": ["A", "B"], "estimate": [6.1, 7.4], "se": [0.2, 0.9], "n": [120, 7]})
>>> out = disclosure.suppress(t)
>>> out["estimate"].tolist(), out["suppression_reason"].tolist()
([6.1, nan], ['', 'disclosure:n<10'])
>>> anon, mapping = disclosure.anonymise(t, key="0" * 64)
>>> sorted(anon["country"])
['Country 1', 'Country 2']
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import CipsError, DataError, Flag, Problem
from .thresholds import DISCLOSURE_FLOOR, DISCLOSURE_MIN

__all__ = ["suppress", "anonymise", "deanonymise", "new_key", "read_key", "write_key", "audit",
           "protect", "category_counts", "Gate", "STAT_COLUMNS", "REDACTED"]

#: Statistic columns blanked by default when present.
STAT_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "cv", "deff", "n_eff", "var", "value", "mean")

#: The sentence that replaces a flag or message about a suppressed cell.
REDACTED = "Concerns a cell below the minimum size (details withheld)."

#: Cell key columns the gate recognises in tables and in ``Flag.where``.
CELL_KEYS = ("country", "iteration", "group")

_KEY_BYTES = 32


# ============================================================================================ checks
def _check_min_n(min_n: Any) -> int:
    if isinstance(min_n, bool) or not isinstance(min_n, (int, np.integer)) or min_n < int(DISCLOSURE_FLOOR):
        raise CipsError(f"min_n= must be an integer of at least {int(DISCLOSURE_FLOOR)} (the disclosure floor); "
                        f"got {min_n!r}.")
    return int(min_n)


def _check_frame(table: Any, name: str = "table") -> None:
    if not isinstance(table, pd.DataFrame):
        raise CipsError(f"{name}= must be a pandas DataFrame; got {type(table).__name__}.")


# ============================================================================================ suppress
def suppress(table: pd.DataFrame, *, min_n: int = 10, n_column: str = "n", columns: Sequence[str] | None = None,
             precision: bool = True, blank_n: bool = False,
             reason_column: str = "suppression_reason") -> pd.DataFrame:
    """Primary suppression of one table: blank the statistics of cells too small to publish.

    Parameters
    ----------
    table : pandas.DataFrame
        A tidy cell table with an unweighted count column (``n``).
    min_n : int
        Disclosure minimum: rows with ``n < min_n`` (or unknown ``n``) are
        blanked.  Default 10; never below 5 (:data:`~cips_stats.thresholds.DISCLOSURE_FLOOR`).
    n_column : str
        The count column.
    columns : sequence of str, optional
        Columns to blank; default every column of :data:`STAT_COLUMNS` present.
    precision : bool
        Also blank rows already marked ``suppressed`` by the precision rules
        of :func:`~cips_stats.estimate.indicators`, with their flags as reason.
    blank_n : bool
        Also blank the count of disclosure-suppressed rows.
    reason_column : str
        Column receiving the reason (``""`` when published).

    Returns
    -------
    pandas.DataFrame
        A copy with the statistics blanked (NaN), ``suppressed`` (bool) and
        the reason column.  The input is not modified.

    Notes
    -----
    Primary suppression of a single table only; :class:`Gate` adds the
    complementary suppression across tables and totals.  A row whose ``n`` is
    unknown is suppressed whatever ``precision`` says.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import suppress
    >>> t = pd.DataFrame({"estimate": [5.0, 6.0, 7.0], "n": [10, 9, None]})
    >>> suppress(t, precision=False)["suppression_reason"].tolist()
    ['', 'disclosure:n<10', 'disclosure:n_unknown']
    """
    _check_frame(table)
    min_n = _check_min_n(min_n)
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
    disc = small | unknown
    reason = np.where(small, f"disclosure:n<{min_n}", np.where(unknown, "disclosure:n_unknown", "")).astype(object)
    prec = np.zeros(len(out), dtype=bool)
    if precision and "suppressed" in out.columns:
        prec = out["suppressed"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        fl = (out["flags"].fillna("").astype(str).to_numpy(dtype=object) if "flags" in out.columns
              else np.full(len(out), "", dtype=object))
        ptxt = np.where(fl == "", "precision:suppressed", "precision:" + fl.astype(str)).astype(object)
        both = disc & prec
        reason = np.where(both, reason + ";" + ptxt, np.where(prec, ptxt, reason)).astype(object)
    blank = disc | prec
    _blank(out, blank, [c for c in cols if c != n_column])
    if blank_n and disc.any():
        out[n_column] = out[n_column].astype("Float64")
        out.loc[disc, n_column] = pd.NA
    out["suppressed"] = blank
    out[reason_column] = reason.tolist()
    return out


def _blank(out: pd.DataFrame, mask: np.ndarray, cols: Iterable[str]) -> None:
    if not mask.any():
        return
    for c in cols:
        if c not in out.columns:
            continue
        kind = out[c].dtype.kind
        if kind in "biuf":
            out[c] = out[c].astype(np.float64)
            out.loc[mask, c] = np.nan
        elif kind == "b" or str(out[c].dtype) == "boolean":
            out[c] = out[c].astype("boolean")
            out.loc[mask, c] = pd.NA
        else:
            out[c] = out[c].astype(object)
            out.loc[mask, c] = None


# ============================================================================================ keys
def new_key() -> str:
    """A fresh random anonymisation key (64 hexadecimal characters, from :mod:`secrets`).

    Returns
    -------
    str
        256 random bits as hexadecimal text.

    Examples
    --------
    >>> from cips_stats.disclosure import new_key
    >>> len(new_key()), new_key() != new_key()
    (64, True)
    """
    return secrets.token_hex(_KEY_BYTES)


def _key_bytes(key: Any) -> bytes:
    if isinstance(key, bytes):
        k = key
    elif isinstance(key, str):
        k = key.strip().encode("utf-8")
    else:
        raise CipsError(f"key= must be a string or bytes (see disclosure.new_key); got {type(key).__name__}.")
    if len(k) < 16:
        raise CipsError("The anonymisation key is too short (fewer than 16 bytes); make one with "
                        "disclosure.new_key() or `--anonymise-key FILE`.")
    return k


def read_key(path: str | Path) -> str:
    """Read an anonymisation key written by :func:`write_key`.

    Parameters
    ----------
    path : str or Path
        The key file.

    Returns
    -------
    str
        The key.

    Raises
    ------
    CipsError
        The file cannot be read or holds a key shorter than 16 bytes.

    Examples
    --------
    >>> import tempfile, os
    >>> from cips_stats.disclosure import new_key, read_key, write_key
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     k = write_key(os.path.join(tmp, "k.txt"))
    ...     read_key(os.path.join(tmp, "k.txt")) == k
    True
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CipsError(f"Cannot read the anonymisation key {str(p)!r}: {exc.strerror or exc}.") from None
    _key_bytes(text)
    return text


def write_key(path: str | Path, key: str | None = None) -> str:
    """Write a (new, random unless given) anonymisation key to ``path`` (mode 600); refuse to overwrite.

    Parameters
    ----------
    path : str or Path
        The key file to create (it must not exist).
    key : str, optional
        The key; a new random one (:func:`new_key`) when omitted.

    Returns
    -------
    str
        The key written.  Keep the file private: it reverses the anonymisation
        of every report made with it.

    Examples
    --------
    >>> import tempfile, os
    >>> from cips_stats.disclosure import write_key
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     len(write_key(os.path.join(tmp, "key.txt")))
    64
    """
    p = Path(path)
    key = new_key() if key is None else key
    _key_bytes(key)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
    except FileExistsError:
        raise CipsError(f"The key file {str(p)!r} exists already; read it with read_key() instead.") from None
    except OSError as exc:
        raise CipsError(f"Cannot write the anonymisation key {str(p)!r}: {exc.strerror or exc}.") from None
    return key


def _digest(key: bytes, label: Any) -> str:
    return hmac.new(key, str(label).encode("utf-8"), hashlib.sha256).hexdigest()


def _codes(labels: Sequence[Any], key: bytes, prefix: str, mapping: Mapping[Any, str] | None = None) -> dict:
    m: dict[Any, str] = dict(mapping or {})
    new = sorted({v for v in labels if v not in m}, key=lambda v: _digest(key, v))
    used = set(m.values())
    total = len(m) + len(new)
    width = len(str(max(total, 1)))
    nums = [int(str(v)[len(prefix):]) for v in m.values()
            if str(v).startswith(prefix) and str(v)[len(prefix):].isdigit()]
    nxt = max(nums, default=0) + 1
    for v in new:
        lab = f"{prefix}{nxt:0{width}d}"
        while lab in used:
            nxt += 1
            lab = f"{prefix}{nxt:0{width}d}"
        m[v] = lab
        used.add(lab)
        nxt += 1
    return m


def anonymise(table: pd.DataFrame, column: str = "country", *, key: str | bytes, prefix: str = "Country ",
              mapping: Mapping[Any, str] | None = None) -> tuple[pd.DataFrame, dict[Any, str]]:
    """Replace the labels of a column by codes drawn from a secret key; return the mapping.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table with the column.
    column : str
        Column to anonymise (default ``"country"``).
    key : str or bytes
        The secret (:func:`new_key`, at least 16 bytes).  The same key and
        labels give the same codes, whatever the row order or the analysis
        seed; without the key the codes cannot be linked to the names.
    prefix : str
        Prefix of the codes, followed by a number (``Country 1`` ... ).
    mapping : mapping, optional
        An earlier mapping to reuse; labels it lacks get the next numbers.

    Returns
    -------
    (pandas.DataFrame, dict)
        The anonymised copy, its rows ordered by code (stable within a code),
        and the mapping ``{original: code}``.

    Notes
    -----
    Codes are numbered in the order of ``HMAC-SHA256(key, label)``: unrelated
    to the alphabet, to sample sizes and to the row order.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import anonymise, deanonymise
    >>> t = pd.DataFrame({"country": ["Kenya", "Peru", "Kenya"], "estimate": [1.0, 2.0, 3.0]})
    >>> anon, m = anonymise(t, key="k" * 32)
    >>> sorted(m) == ["Kenya", "Peru"] and sorted(m.values()) == ["Country 1", "Country 2"]
    True
    >>> sorted(deanonymise(anon, m)["country"].tolist())
    ['Kenya', 'Kenya', 'Peru']
    """
    _check_frame(table)
    if column not in table.columns:
        raise DataError(f"The table has no column {column!r} to anonymise.",
                        [Problem("column_missing", "Column not found.", column=column)])
    k = _key_bytes(key)
    vals = table[column]
    if vals.isna().any():
        rows = np.flatnonzero(vals.isna().to_numpy())
        raise DataError(f"{rows.size} rows have no {column!r} label to anonymise.",
                        [Problem("label_missing", "Missing label.", row=int(r) + 1, column=column) for r in rows[:50]])
    m = _codes(list(pd.unique(vals)), k, prefix, mapping)
    out = table.copy()
    out[column] = vals.map(m).astype(object)
    out = _order_by_code(out, column)
    return out, m


def _code_sort_key(s: pd.Series) -> pd.Series:
    num = s.astype(str).str.extract(r"(\d+)\s*$", expand=False)
    return pd.to_numeric(num, errors="coerce")


def _order_by_code(table: pd.DataFrame, column: str) -> pd.DataFrame:
    order = np.argsort(_code_sort_key(table[column]).to_numpy(dtype=float), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def deanonymise(table: pd.DataFrame, mapping: Mapping[Any, str], column: str = "country") -> pd.DataFrame:
    """Restore the original labels of an anonymised column from the mapping of :func:`anonymise`.

    Parameters
    ----------
    table : pandas.DataFrame
        The anonymised table.
    mapping : mapping
        ``{original: code}`` as returned by :func:`anonymise`.
    column : str
        The anonymised column.

    Returns
    -------
    pandas.DataFrame
        A copy with the original labels.

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


# ============================================================================================ audit
def audit(counts: np.ndarray, margins: np.ndarray, suppressed: np.ndarray, *, primary: np.ndarray | None = None,
          upper: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feasible interval of every suppressed count given the published cells and totals (linear programming).

    Parameters
    ----------
    counts : array of shape (k,)
        True counts of the cells.
    margins : bool array of shape (m, k)
        Row *j* marks the cells whose sum is published as total *j*.
    suppressed : bool array of shape (k,)
        Cells whose count is not published.
    primary : bool array of shape (k,), optional
        Cells suppressed because they are small; a reader is assumed to know
        that they are at most ``upper`` (conservative: the published reasons
        do not say which cells are primary).
    upper : float, optional
        Upper bound of primary cells (default: none).

    Returns
    -------
    (low, high) : arrays of shape (k,)
        The smallest and largest value each suppressed count can take given
        everything published (every cell is at least 1, since its row is
        listed); NaN for published cells.

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.disclosure import audit
    >>> counts = np.array([3, 40, 50])
    >>> total = np.ones((1, 3), dtype=bool)
    >>> lo, hi = audit(counts, total, np.array([True, False, False]))
    >>> float(lo[0]), float(hi[0])          # total minus the published cells gives it away
    (3.0, 3.0)
    >>> lo, hi = audit(counts, total, np.array([True, True, False]))
    >>> float(lo[0]), float(hi[0])
    (1.0, 42.0)
    """
    from scipy.optimize import linprog

    counts = np.asarray(counts, dtype=float)
    sup = np.asarray(suppressed, dtype=bool)
    M = np.asarray(margins, dtype=bool).reshape(-1, counts.size)
    k = counts.size
    low = np.full(k, np.nan)
    high = np.full(k, np.nan)
    idx = np.flatnonzero(sup)
    if not idx.size:
        return low, high
    prim = np.zeros(k, dtype=bool) if primary is None else np.asarray(primary, dtype=bool)
    rows = M[:, idx]
    use = rows.any(axis=1)
    A = rows[use].astype(float)
    b = (M[use].astype(float) @ np.where(sup, 0.0, counts)) * -1 + M[use].astype(float) @ counts
    ub = [upper if (prim[i] and upper is not None) else None for i in idx]
    bounds = list(zip([1.0] * idx.size, ub))
    # connected components: suppressed cells tied together by shared totals
    comp = _components(A.astype(bool), idx.size)
    for members in comp:
        cons = A[:, members].any(axis=1) if A.size else np.zeros(0, dtype=bool)
        Ac, bc = A[cons][:, members], b[cons]
        bnd = [bounds[j] for j in members]
        if not Ac.size:
            for j in members:
                lo_b, hi_b = bounds[j]
                low[idx[j]], high[idx[j]] = lo_b, np.inf if hi_b is None else hi_b
            continue
        for jj, j in enumerate(members):
            c = np.zeros(len(members))
            c[jj] = 1.0
            r1 = linprog(c, A_eq=Ac, b_eq=bc, bounds=bnd, method="highs")
            r2 = linprog(-c, A_eq=Ac, b_eq=bc, bounds=bnd, method="highs")
            low[idx[j]] = r1.fun if r1.status == 0 else np.nan
            high[idx[j]] = -r2.fun if r2.status == 0 else (np.inf if r2.status == 3 else np.nan)
    return low, high


def _components(A: np.ndarray, k: int) -> list[list[int]]:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if not A.size:
        return [[j] for j in range(k)]
    adj = csr_matrix(A.T.astype(np.int8)) @ csr_matrix(A.astype(np.int8))
    n, lab = connected_components(adj, directed=False)
    return [np.flatnonzero(lab == c).tolist() for c in range(n)]


def protect(counts: np.ndarray, margins: np.ndarray, *, min_n: int = 10, protection: int | None = None,
            priority: Sequence[float] | None = None, max_rounds: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primary and complementary suppression of a table of counts with published totals.

    Parameters
    ----------
    counts : array of shape (k,)
        Unweighted counts of the cells (NaN: unknown, suppressed).
    margins : bool array of shape (m, k)
        The totals that will be published, one row per total.
    min_n : int
        Disclosure minimum (cells below it are primary suppressions).
    protection : int, optional
        Required width of the feasible interval of each primary cell;
        default ``ceil(min_n / 2)``.
    priority : sequence of float, optional
        Per total: when a total must be withdrawn, larger values go first
        (default: all equal, the smallest total first).
    max_rounds : int
        Safety limit of the greedy rounds.

    Returns
    -------
    (suppressed, primary, margin_published) : bool arrays
        ``margin_published`` is False for a total that could not be protected
        by suppressing cells (then the total itself must not be published).

    Notes
    -----
    Greedy, audit-driven: while some primary cell's feasible interval
    (:func:`audit`) is narrower than ``protection``, a published cell is
    suppressed too: first a cell in exactly the same published totals, then
    the one sharing the most totals with it (ties: the smallest count, the
    least information lost), the first of five that widens the interval.
    When none does, a total is withdrawn instead (``priority``).

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.disclosure import protect
    >>> counts = np.array([3, 40, 50, 60])
    >>> sup, prim, pub = protect(counts, np.ones((1, 4), dtype=bool))
    >>> sup.tolist(), prim.tolist()
    ([True, True, False, False], [True, False, False, False])
    """
    min_n = _check_min_n(min_n)
    p = int(np.ceil(min_n / 2)) if protection is None else int(protection)
    c = np.asarray(counts, dtype=float)
    M = np.asarray(margins, dtype=bool).reshape(-1, c.size).copy()
    unknown = ~np.isfinite(c)
    primary = unknown | (c < min_n)
    sup = primary.copy()
    work = np.where(unknown, 0.0, c)
    pub_m = np.ones(M.shape[0], dtype=bool)
    sizes = M.sum(axis=1)
    prio = np.zeros(M.shape[0]) if priority is None else np.asarray(priority, dtype=float)
    for _ in range(max_rounds):
        lo, hi = audit(work, M[pub_m], sup)
        bad = primary & ~unknown & ((hi - lo) < p)
        if not bad.any():
            break
        i = int(np.flatnonzero(bad)[0])
        width = hi[i] - lo[i]
        P = M[pub_m]
        score = P[P[:, i]].sum(axis=0).astype(float)        # totals shared with the failing cell
        same = (P == P[:, [i]]).all(axis=0)                  # in exactly the same totals: always helps
        pool = np.flatnonzero(~sup & (score > 0))
        order = pool[np.lexsort((work[pool], -score[pool], ~same[pool]))]   # ties: smallest count first
        helped = False
        for cand in order[:5]:
            sup[cand] = True
            lo2, hi2 = audit(work, P, sup)
            if hi2[i] - lo2[i] > width:
                helped = True
                break                                         # the complement helped: keep it
            sup[cand] = False
        if helped:
            continue
        # no cell helps (e.g. two nested totals differ by this cell alone): withdraw a total, the least
        # prominent first (``priority``: larger withdrawn first; then the smallest), keeping the first
        # withdrawal that widens the interval
        order = sorted(np.flatnonzero(pub_m), key=lambda j: (-prio[j], sizes[j]))
        for j in order:
            pub_m[j] = False
            lo2, hi2 = audit(work, M[pub_m], sup)
            if hi2[i] - lo2[i] > width:
                break
            pub_m[j] = True
        else:
            held = np.flatnonzero(pub_m & M[:, i])
            if not held.size:
                break
            pub_m[held] = False
    return sup, primary, pub_m


# ============================================================================================ categories
def category_counts(frame: pd.DataFrame, by: Sequence[str], variables: Sequence[str]) -> pd.DataFrame:
    """Unweighted counts of every category of ``variables`` within the cells ``by`` (long format).

    Parameters
    ----------
    frame : pandas.DataFrame
        Respondent table.
    by : sequence of str
        Cell keys.
    variables : sequence of str
        Categorical columns.

    Returns
    -------
    pandas.DataFrame
        ``by..., variable, category, count`` (missing values left out).

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import category_counts
    >>> f = pd.DataFrame({"c": ["A", "A", "A"], "gender": ["f", "m", "m"]})
    >>> category_counts(f, ["c"], ["gender"])["count"].tolist()
    [1, 2]
    """
    parts = []
    for v in variables:
        sub = frame[list(by) + [v]].dropna(subset=[v])
        g = sub.groupby(list(by) + [v], observed=True, sort=True).size().rename("count").reset_index()
        g = g.rename(columns={v: "category"})
        g.insert(len(by), "variable", v)
        parts.append(g)
    if not parts:
        return pd.DataFrame(columns=[*by, "variable", "category", "count"])
    return pd.concat(parts, ignore_index=True)


# ============================================================================================ the gate
@dataclass
class Gate:
    """The publication gate: suppression, complementary suppression, redaction and anonymisation.

    Build one per survey with :meth:`Gate.for_survey`; then pass every table
    through :meth:`table` (or :meth:`shares` for shares of categories), every
    message through :meth:`text`, every flag through :meth:`flag` and every
    JSON document through :meth:`obj`.

    Parameters
    ----------
    min_n : int
        Disclosure minimum (default 10, never below 5).
    key : str or bytes, optional
        Anonymisation key; ``None`` with ``anonymise=True`` draws a random
        one that is never stored.
    anonymise : bool
        Replace country names by codes.
    cells : pandas.DataFrame, optional
        The cell structure: ``country, iteration, group, n`` (unweighted).
    margins : list of (name, bool array), optional
        The totals over cells that outputs may publish.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats.disclosure import Gate
    >>> cells = pd.DataFrame({"country": ["A", "B", "C"], "iteration": 1, "group": "g", "n": [3, 40, 50]})
    >>> gate = Gate.from_cells(cells, min_n=10)
    >>> gate.table(cells)["n"].isna().tolist()      # B hides A from the total 93
    [True, True, False]
    """

    min_n: int = int(DISCLOSURE_MIN)
    key: Any = None
    anonymise: bool = False
    cells: pd.DataFrame | None = None
    margins: list = field(default_factory=list)
    protection: int | None = None
    prefix: str = "Country "
    mapping: dict = field(default_factory=dict)
    _margin_published: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.min_n = _check_min_n(self.min_n)
        if self.anonymise:
            k = _key_bytes(self.key) if self.key is not None else secrets.token_bytes(_KEY_BYTES)
            self.key = None          # the key is not kept on the object (it would travel in reprs)
            names = [] if self.cells is None else sorted(map(str, pd.unique(self.cells["country"])))
            self.mapping = _codes(names, k, self.prefix, self.mapping)
        else:
            self.key = None
        if self.cells is not None:
            c = self.cells.copy()
            for col in CELL_KEYS:
                if col not in c.columns:
                    c[col] = ""
            c["country"] = c["country"].astype(str)
            c["group"] = c["group"].astype(str)
            counts = pd.to_numeric(c["n"], errors="coerce").to_numpy(dtype=float)
            M = np.array([m for _, m in self.margins], dtype=bool).reshape(-1, len(c))
            prio = [2.0 if "[" in nm else (0.0 if nm == "total" else 1.0) for nm, _ in self.margins]
            sup, prim, pub = protect(counts, M, min_n=self.min_n, protection=self.protection, priority=prio)
            c["suppressed"] = sup
            c["primary"] = prim
            self.cells = c.reset_index(drop=True)
            self._margin_published = pub
        self._pattern = None

    def __repr__(self) -> str:
        return (f"Gate(min_n={self.min_n}, anonymise={self.anonymise}, cells={0 if self.cells is None else len(self.cells)}, "
                f"suppressed={0 if self.cells is None else int(self.cells['suppressed'].sum())})")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_cells(cls, cells: pd.DataFrame, *, min_n: int = int(DISCLOSURE_MIN), key: Any = None,
                   anonymise: bool = False, subsets: Mapping[str, Sequence[str]] | None = None,
                   protection: int | None = None) -> "Gate":
        """A gate over a table of cells (``country, iteration, group, n``) with the standard totals.

        The totals assumed published are the report's: the grand total
        (respondents used), the total of every group (CFA n, invariance across
        groups), and the group × iteration totals over each named subset of
        countries (``subsets``: a list of countries, or ``{"countries": [...],
        "group": g}`` for one group only, e.g. the countries surveyed in every
        iteration of that group).
        """
        _check_frame(cells, "cells")
        c = cells.reset_index(drop=True)
        margins = [("total", np.ones(len(c), dtype=bool))]
        grp = c["group"].astype(str).to_numpy()
        it = c["iteration"].astype(str).to_numpy()
        for g in pd.unique(grp):
            margins.append((f"group={g}", grp == g))
        for name, spec in (subsets or {}).items():
            if isinstance(spec, Mapping):
                countries, sub_groups = spec["countries"], [str(spec["group"])]
            else:
                countries, sub_groups = spec, list(pd.unique(grp))
            inn = c["country"].astype(str).isin(set(map(str, countries))).to_numpy()
            for g in sub_groups:
                for t in pd.unique(it):
                    margins.append((f"{name},group={g},iteration={t}", inn & (grp == g) & (it == t)))
        return cls(min_n=min_n, key=key, anonymise=anonymise, cells=c, margins=margins, protection=protection)

    @classmethod
    def for_survey(cls, data: Any, *, min_n: int = int(DISCLOSURE_MIN), key: Any = None,
                   anonymise: bool = False, protection: int | None = None) -> "Gate":
        """The gate of a :class:`~cips_stats.data.SurveyData`: its cells, their counts and the report's totals.

        Examples
        --------
        >>> import cips_stats as cs
        >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
        >>> gate = cs.disclosure.Gate.for_survey(sim.data)
        >>> int(gate.cells["suppressed"].sum())
        0
        """
        frame = getattr(data, "frame", None)
        if frame is None:
            _check_frame(data, "data")
            frame = data
        keys = [k for k in CELL_KEYS if k in frame.columns]
        cells = frame.groupby(keys, sort=True, observed=True).size().rename("n").reset_index()
        subsets = {}
        if "iteration" in frame.columns and frame["iteration"].nunique() > 1 and "group" in frame.columns:
            its = frame["iteration"].nunique()
            for g, sub in frame.groupby("group", sort=True, observed=True):
                per = sub.groupby("country", observed=True)["iteration"].nunique()
                subsets[f"repeated[{g}]"] = {"countries": per[per == its].index.astype(str).tolist(), "group": g}
        return cls.from_cells(cells, min_n=min_n, key=key, anonymise=anonymise, subsets=subsets,
                              protection=protection)

    # ------------------------------------------------------------------ queries
    @property
    def suppressed_cells(self) -> pd.DataFrame:
        """The suppressed cells (real names; for the data owner, never published)."""
        if self.cells is None:
            return pd.DataFrame(columns=[*CELL_KEYS, "n", "primary"])
        return self.cells.loc[self.cells["suppressed"], [*CELL_KEYS, "n", "primary"]].reset_index(drop=True)

    def audit(self) -> pd.DataFrame:
        """Feasible interval of every suppressed cell given all totals and published cells (for tests)."""
        c = self.cells
        M = np.array([m for _, m in self.margins], dtype=bool).reshape(-1, len(c))[self._margin_published]
        n = pd.to_numeric(c["n"], errors="coerce").to_numpy(dtype=float)
        lo, hi = audit(np.nan_to_num(n), M, c["suppressed"].to_numpy())
        out = c[[*CELL_KEYS, "n", "primary"]].copy()
        out["low"], out["high"] = lo, hi
        return out[c["suppressed"].to_numpy()].reset_index(drop=True)

    @property
    def withdrawn(self) -> list[str]:
        """Names of the totals that must not be published (no cell suppression could protect them)."""
        if self._margin_published is None:
            return []
        return [nm for (nm, _), ok in zip(self.margins, self._margin_published) if not ok]

    def total_published(self, name: str) -> bool:
        """Whether the total ``name`` (e.g. ``"total"``, ``"group=officials"``) may be published."""
        for (nm, _), ok in zip(self.margins, self._margin_published if self._margin_published is not None else []):
            if nm == name:
                return bool(ok)
        return False

    def _match(self, table: pd.DataFrame) -> np.ndarray:
        """Rows of ``table`` that touch a suppressed cell (keys it lacks match any value; a table without a
        ``country`` column holds aggregates over countries, protected through the totals instead)."""
        if self.cells is None or not len(table) or "country" not in table.columns:
            return np.zeros(len(table), dtype=bool)          # aggregates over countries are not cells
        sc = self.cells[self.cells["suppressed"]]
        if not len(sc):
            return np.zeros(len(table), dtype=bool)
        out = np.zeros(len(table), dtype=bool)
        its = [c for c in ("iteration", "iteration_from", "iteration_to") if c in table.columns]
        variants = [its[i:i + 1] for i in range(len(its))] or [[]]
        for itc in variants:
            keys_t = [k for k in ("country", "group") if k in table.columns] + itc
            keys_c = [k for k in ("country", "group") if k in table.columns] + (["iteration"] if itc else [])
            if not keys_t:
                continue
            left = pd.DataFrame({kc: table[kt].astype(str).to_numpy() for kt, kc in zip(keys_t, keys_c)})
            right = sc[keys_c].astype(str).drop_duplicates()
            hit = left.merge(right.assign(_hit=True), on=keys_c, how="left")["_hit"].fillna(False)
            out |= hit.to_numpy(dtype=bool)
        return out

    # ------------------------------------------------------------------ tables
    def table(self, table: pd.DataFrame, *, n_column: str = "n", columns: Sequence[str] | None = None,
              precision: bool = False, counts: Sequence[str] = ()) -> pd.DataFrame:
        """Publish a cell table: primary and complementary suppression, redaction, anonymisation, ordering.

        Parameters
        ----------
        table : pandas.DataFrame
            Tidy table; rows are matched to cells by the columns ``country``,
            ``iteration`` (or ``iteration_from``/``iteration_to``) and ``group``
            it has (a row without ``iteration`` or ``group`` touches every cell
            it could be; a table without ``country`` holds aggregates).
        n_column : str
            Unweighted count of the row (blanked, with ``counts``, when suppressed).
        columns : sequence of str, optional
            Statistic columns to blank (default :data:`STAT_COLUMNS` present).
        precision : bool
            Also blank rows marked ``suppressed`` by the precision rules.
        counts : sequence of str
            Further count columns blanked with the row.

        Returns
        -------
        pandas.DataFrame
            Blanked copy with ``suppressed`` and ``suppression_reason``
            (``disclosure:suppressed`` for every disclosure suppression, primary
            or complementary, so the reason does not tell which cells are small).
        """
        _check_frame(table)
        cols = None if columns is None else [c for c in columns if c in table.columns]
        out = suppress(table, min_n=self.min_n, n_column=n_column, columns=cols, precision=precision,
                       blank_n=True)
        reason = out["suppression_reason"].astype(str)
        disc = reason.str.contains("disclosure:", regex=False).to_numpy() | self._match(table)
        blank_cols = [c for c in (cols if cols is not None else STAT_COLUMNS) if c in out.columns and c != n_column]
        _blank(out, disc, [*blank_cols, n_column, *[c for c in counts if c in out.columns]])
        for c in ("flags", "caution"):
            if c in out.columns:
                out[c] = out[c].astype(object)
                out.loc[disc, c] = ""
        prec_only = np.array([";".join(p for p in r.split(";") if p.startswith("precision:")) for r in reason],
                             dtype=object)
        out["suppression_reason"] = np.where(disc, "disclosure:suppressed", prec_only).tolist()
        out["suppressed"] = out["suppressed"].to_numpy(dtype=bool) | disc
        return self.frame(out)

    def shares(self, table: pd.DataFrame, *, within: Sequence[str], share_columns: Mapping[str, str],
               n_columns: Sequence[str] = (), columns: Sequence[str] = ()) -> pd.DataFrame:
        """Publish shares of categories: suppress a share whose category count is below ``min_n``.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per category of a distribution.
        within : sequence of str
            Columns identifying one distribution (cell keys and variable).
        share_columns : mapping
            ``{share column: its unweighted category count column}``.
        n_columns : sequence of str
            Cell count columns (blanked when the cell is suppressed).
        columns : sequence of str
            Statistics derived from the shares (blanked when any share of the
            row is).

        Notes
        -----
        Complementary suppression within a distribution: the shares of a
        distribution add to one, so when one share is suppressed the next
        smallest are suppressed too, until at least two are and the hidden
        categories hold at least ``min_n`` respondents together (or all are).
        Count columns are dropped from the result.
        """
        _check_frame(table)
        out = table.reset_index(drop=True).copy()
        cell_sup = self._match(out)
        any_sup = cell_sup.copy()
        for sc, cc in share_columns.items():
            cnt = pd.to_numeric(out[cc], errors="coerce").fillna(0).to_numpy(dtype=float)
            hide = cell_sup | (cnt < self.min_n)
            gid = out.groupby(list(within), sort=False, dropna=False).ngroup().to_numpy()
            order = np.lexsort((cnt, gid))
            hide = _complement(hide, cnt, gid, order, self.min_n)
            _blank(out, hide, [sc])
            any_sup |= hide
        _blank(out, any_sup, list(columns))
        _blank(out, cell_sup, list(n_columns))
        out["suppressed"] = any_sup
        out["suppression_reason"] = np.where(any_sup, "disclosure:suppressed", "").tolist()
        out = out.drop(columns=[c for c in share_columns.values() if c in out.columns])
        return self.frame(out)

    def frame(self, table: pd.DataFrame) -> pd.DataFrame:
        """Anonymise the string cells of a table and order its rows by code (no suppression)."""
        if not self.mapping:
            return table.reset_index(drop=True)
        out = table.copy()
        for c in out.columns:
            if out[c].dtype == object or pd.api.types.is_string_dtype(out[c].dtype):
                out[c] = out[c].map(lambda v: self.text(v) if isinstance(v, str) else v).astype(object)
        if "country" in out.columns:
            out = _order_by_code(out, "country")
        return out.reset_index(drop=True)

    # ------------------------------------------------------------------ text, flags, JSON
    def _pat(self):
        if self._pattern is None and self.mapping:
            forms: dict[str, str] = {}
            for name, code in self.mapping.items():
                name = str(name)
                for f in {repr(name), json.dumps(name), json.dumps(name, ensure_ascii=False), f"'{name}'",
                          f'"{name}"'}:
                    forms[f] = f"'{code}'"
                forms[name] = code
            alts = sorted(forms, key=len, reverse=True)
            self._forms = forms
            self._pattern = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(map(re.escape, alts)) + r")(?![A-Za-z0-9_])")
        return self._pattern

    def text(self, text: Any) -> Any:
        """Replace country names (bare or quoted in any style) by their codes, quoted uniformly."""
        if not self.mapping or not isinstance(text, str):
            return text
        if text in self.mapping:
            return self.mapping[text]
        pat = self._pat()
        return pat.sub(lambda m: self._forms[m.group(0)], text)

    def message(self, text: Any) -> Any:
        """A free-text message: redacted when it names a country with a suppressed cell, else anonymised."""
        if not isinstance(text, str):
            return text
        if self.cells is not None and self.cells["suppressed"].any():
            names = set(self.cells.loc[self.cells["suppressed"], "country"].astype(str))
            codes = {self.mapping.get(n, n) for n in names}
            for nm in names | codes:
                if re.search(r"(?<![A-Za-z0-9_])" + re.escape(nm) + r"(?![A-Za-z0-9_])", text):
                    return REDACTED
        return self.text(text)

    def flag(self, fl: Flag) -> Flag:
        """A flag on its way out: redacted when it concerns a suppressed cell, else anonymised."""
        where = dict(fl.where or {})
        probe = {k: [where[k]] for k in ("country", "group", "iteration", "iteration_from", "iteration_to")
                 if k in where and not isinstance(where[k], (list, dict))}
        if "cells" in where and isinstance(where["cells"], list):
            where["cells"] = len(where["cells"])
        if probe.get("country") is not None and self._match(pd.DataFrame(probe)).any():
            keep = {k: self.text(str(v)) if k == "country" else v for k, v in where.items()
                    if k in ("country", "group", "iteration", "iteration_from", "iteration_to", "variable")}
            return Flag(fl.code, REDACTED, fl.severity, keep)
        return Flag(fl.code, self.message(fl.message), fl.severity, self.obj(where))

    def flags(self, flags: Iterable[Flag]) -> list[Flag]:
        """:meth:`flag` over a sequence."""
        return [self.flag(f) for f in flags]

    def obj(self, obj: Any) -> Any:
        """Anonymise a JSON-ready object (strings, lists, dicts, dict keys); flag dictionaries are gated."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list):
            return [self.obj(v) for v in obj]
        if isinstance(obj, tuple):
            return [self.obj(v) for v in obj]
        if isinstance(obj, dict):
            if {"code", "message", "severity", "where"} <= set(obj):
                f = self.flag(Flag(str(obj["code"]), str(obj["message"]), str(obj["severity"]),
                                   obj["where"] if isinstance(obj["where"], dict) else {}))
                return {**{k: self.obj(v) for k, v in obj.items()}, **f.to_dict()}
            return {self.text(k) if isinstance(k, str) else k: self.obj(v) for k, v in obj.items()}
        return obj


def _complement(hide: np.ndarray, cnt: np.ndarray, gid: np.ndarray, order: np.ndarray, min_n: int) -> np.ndarray:
    """Within each distribution: 0 hidden, or at least 2 hidden holding at least min_n together (or all)."""
    hide = hide.copy()
    g_sorted = gid[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends):
        rows = order[s:e]
        h = hide[rows]
        if not h.any():
            continue
        while True:
            hidden = rows[hide[rows]]
            if len(hidden) == len(rows):
                break
            if len(hidden) >= 2 and cnt[hidden].sum() >= min_n:
                break
            nxt = rows[~hide[rows]][0]          # rows are sorted by count: the smallest published
            hide[nxt] = True
    return hide
