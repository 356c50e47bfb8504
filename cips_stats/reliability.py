"""Reliability of multi-item scales: Cronbach's alpha, McDonald's omega, ordinal variants, item tables.

Three faces:

* :func:`cronbach_alpha` — one scale: raw and standardised alpha, a confidence
  interval (Feldt, Duhachek or bootstrap), and the item table (alpha if item
  dropped, corrected item-total correlation, item-total correlation, mean, sd,
  share missing), with pairwise or listwise deletion and optional design weights.
* :func:`omega` — one scale: McDonald's omega total from a one-factor model
  fitted by maximum likelihood, with the model-implied or the observed total
  variance in the denominator, and a bootstrap or Wald (delta-method) interval.
* :func:`by_cell` — every statistic above for every factor (key factors and
  indices) in every country × iteration × group cell in one vectorised pass: the
  rows of each group are ordered by cell once, every factor's items are gathered
  straight from the columns into zero-padded pieces of each cell, and one batched
  matrix product per piece (``np.matmul``) plus one one-hot product over the pieces
  give every cell's pairwise sums, in bounded chunks; then closed-form statistics
  over the (cells × items × items) stack and a batched Fisher-scoring fit of the
  one-factor model for omega.

Definitions follow R's ``psych::alpha`` (psych 2.2.9) and ``semTools::compRelSEM``
(0.5-6, on a ``lavaan::cfa(..., std.lv = TRUE)`` one-factor model); the test suite
checks them against values those programs computed on ``psych::bfi``
(``tests/reference/reliability_bfi.json``, made by ``validation/r/reliability.R``).
See ``methodology/reliability.md`` for formulas, conventions and thresholds.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import cips_stats as cs
>>> rng = np.random.default_rng(1)
>>> f = rng.normal(size=(300, 1))
>>> items = pd.DataFrame(np.clip(np.round(3 + f + rng.normal(size=(300, 4))), 1, 5),
...                      columns=["q1", "q2", "q3", "q4"])
>>> res = cs.reliability.cronbach_alpha(items)
>>> round(res.alpha, 3), [round(v, 3) for v in res.ci]
(0.755, [0.707, 0.798])
>>> round(cs.reliability.omega(items, ci_method="wald").omega, 3)
0.757
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special as _sp
from scipy import stats as _st

from .errors import CipsError, DataError, Flag, ModelError, Problem
from .results import Provenance, Result

__all__ = [
    "AlphaResult",
    "OmegaResult",
    "cronbach_alpha",
    "omega",
    "by_cell",
    "THRESHOLDS",
    "MIN_N",
]

#: Conventional thresholds: below ``questionable`` a scale is "questionable", below
#: ``poor`` "poor" (George & Mallery 2003; Nunnally 1978 recommends .70 for research use).
THRESHOLDS: Mapping[str, float] = {"questionable": 0.70, "poor": 0.60}

#: Default minimum number of respondents for a stable estimate (see methodology/reliability.md).
MIN_N: int = 30

_CI_METHODS_ALPHA = ("feldt", "duhachek", "bootstrap")
_CI_METHODS_OMEGA = ("bootstrap", "wald", "none")
_MISSING = ("pairwise", "listwise")
_DENOMS = ("model", "observed")

# Bound on the elements of the (rows x items x items) product arrays held at once
# (a padded block of this many float64 elements: 4 MiB; a few arrays of that order are alive at once).
_CHUNK_ELEMENTS = 2**19


# ============================================================================ input checks
def _check_choice(name: str, value: Any, options: Sequence[str]) -> str:
    if value not in options:
        raise CipsError(f"The {name}= argument must be one of {list(options)}; got {value!r}.")
    return value


def _check_level(ci: float) -> float:
    try:
        ci = float(ci)
    except (TypeError, ValueError):
        raise CipsError(f"The ci= argument must be a number in (0, 1); got {ci!r}.") from None
    if not 0.0 < ci < 1.0:
        raise CipsError(f"The ci= argument must lie strictly between 0 and 1; got {ci!r}.")
    return ci


def _as_item_frame(items: Any) -> pd.DataFrame:
    if isinstance(items, pd.DataFrame):
        df = items
    elif isinstance(items, np.ndarray):
        if items.ndim != 2:
            raise DataError("The items must be a 2-D table (respondents x items).",
                            [Problem("items_shape", f"Got an array with {items.ndim} dimensions.",
                                     "<array>", value=items.shape)])
        df = pd.DataFrame(items, columns=[f"item{j + 1}" for j in range(items.shape[1])])
    else:
        try:
            df = pd.DataFrame(items)
        except Exception as exc:  # noqa: BLE001 - re-raised as a typed error
            raise DataError(f"The items cannot be read as a table: {exc}.",
                            [Problem("items_type", str(exc), "<input>", value=type(items).__name__)]) from exc
    return df


def _numeric_matrix(df: pd.DataFrame, source: str = "<DataFrame>") -> np.ndarray:
    """Item columns as float64 (NaN = missing); every non-numeric or infinite value raises DataError."""
    probs: list[Problem] = []
    cols = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or not (pd.api.types.is_numeric_dtype(s)):
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna() & s.notna()
            for r in np.flatnonzero(bad.to_numpy())[:20]:
                probs.append(Problem("item_numeric", "Item answers must be numeric codes.", source,
                                     int(r), str(c), s.iloc[r]))
            cols.append(conv.to_numpy(dtype=float, na_value=np.nan))
        else:
            cols.append(s.to_numpy(dtype=float, na_value=np.nan))
    X = np.column_stack(cols) if cols else np.empty((len(df), 0))
    inf = np.argwhere(np.isinf(X))
    for r, j in inf[:20]:
        probs.append(Problem("item_finite", "Item answers must be finite.", source, int(r),
                             str(df.columns[j]), float(X[r, j])))
    if probs:
        raise DataError(f"The items hold {len(probs)} unusable value(s).", probs)
    return X


def _check_numeric_columns(frame: pd.DataFrame, cols: Sequence[str]) -> None:
    """Raise DataError (naming rows and values) when an item column is not numeric or holds infinities."""
    probs: list[Problem] = []
    for c in cols:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            conv = pd.to_numeric(s, errors="coerce")
            bad = np.flatnonzero((conv.isna() & s.notna()).to_numpy())
            if bad.size == 0 and not pd.api.types.is_bool_dtype(s):
                continue
            for r in bad[:20]:
                probs.append(Problem("item_numeric", "Item answers must be numeric codes.", "<DataFrame>",
                                     int(r), str(c), s.iloc[r]))
            if pd.api.types.is_bool_dtype(s):
                probs.append(Problem("item_numeric", "Item answers must be numeric codes, not booleans.",
                                     "<DataFrame>", None, str(c), None))
        else:
            v = s.to_numpy(dtype=float, na_value=np.nan)
            for r in np.flatnonzero(np.isinf(v))[:20]:
                probs.append(Problem("item_finite", "Item answers must be finite.", "<DataFrame>", int(r),
                                     str(c), float(v[r])))
    if probs:
        raise DataError(f"The items hold {len(probs)} unusable value(s).", probs)


def _weights_vector(weights: Any, df: pd.DataFrame, n: int) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Resolve weights= (None, a column name of the items frame, or an array); validate them."""
    if weights is None:
        return None, df
    if isinstance(weights, str):
        if weights not in df.columns:
            raise DataError(f"The weights= column {weights!r} is not in the items table.",
                            [Problem("weights_column", "Column not found.", "<DataFrame>", column=weights)])
        w = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float)
        df = df.drop(columns=[weights])
        name = weights
    else:
        w = np.asarray(weights, dtype=float).reshape(-1)
        name = "weights"
        if w.shape[0] != n:
            raise DataError(f"The weights= argument has {w.shape[0]} values for {n} respondents.",
                            [Problem("weights_length", "One weight per respondent is needed.",
                                     "<input>", column=name, value=w.shape[0])])
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise DataError(f"The weights hold {bad.size} missing, infinite or negative value(s).",
                        [Problem("weight_valid", "Weights must be finite and non-negative.", "<input>",
                                 int(r), name, float(w[r])) for r in bad[:20]])
    if not np.any(w > 0):
        raise DataError("All weights are zero.", [Problem("weight_positive", "At least one weight must be positive.",
                                                          "<input>", column=name)])
    return w, df


# ============================================================================ grouped moments
def _cell_starts(codes_sorted: np.ndarray) -> np.ndarray:
    """Start row of each run of equal codes in a sorted code vector."""
    if codes_sorted.size == 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, codes_sorted[1:] != codes_sorted[:-1]])


def _grouped_moments(X: np.ndarray, w: np.ndarray | None, starts: np.ndarray,
                     chunk_elements: int = _CHUNK_ELEMENTS, piece: int = 0, *,
                     idx: np.ndarray | None = None, listwise: bool = False,
                     colmean: np.ndarray | None = None, transposed: bool = False) -> dict[str, np.ndarray]:
    """Pairwise sufficient statistics of every cell and scale.

    ``X`` (n, P) holds the item columns with rows sorted by cell (NaN = missing) and
    ``starts`` the first row of each (non-empty) cell; ``idx`` (F, p) picks the p items
    of each of F scales (default: one scale of all P columns).  With ``listwise`` a row
    counts for a scale only when it answered all its items; rows of zero weight never count.

    Each cell's rows are cut into pieces of at most ``piece`` rows; a piece becomes a
    zero-padded (F, q, piece) block of row vectors ``z = (m_1..m_p, x_1..x_p, t, t^2, a)``
    (answered indicators, centred answers, centred total = mean of the answered items,
    its square, and "answered any item"), and all the sums come from one batched matrix
    product ``(w z) z'`` per block (BLAS), summed back over the pieces of each cell.
    Rows are gathered and blocks processed in chunks of at most ``chunk_elements``
    elements, so memory stays bounded at any number of cells or respondents.

    Returns arrays over the K = C * F (cell, scale) combinations, cell-major
    (index ``c * F + f``): ``cnt[k,j,l]`` rows answering both j and l; ``sw`` the same
    weighted; ``sx[k,j,l]`` the weighted sum of item j over those rows; ``sxx`` the
    weighted cross-products; ``st[k,j]``, ``stt[k,j]``, ``sxt[k,j]`` (sums of t, t^2 and
    x_j t over rows answering j); ``any_n`` (rows answering at least one item),
    ``any_w``, ``any_w2``, ``any_t``, ``any_tt``; ``rows`` (rows of the cell); and the
    centring constants ``shift`` and ``tshift``.
    """
    if transposed:
        XT = X
        P, n = XT.shape
    else:
        n, P = X.shape
        XT = np.ascontiguousarray(X.T)
    if idx is None:
        idx = np.arange(P)[None, :]
    idx = np.asarray(idx)
    F, p = idx.shape
    C = starts.size
    q = 2 * p + 3
    # centring constant of each scale: the mean of its items' overall means (any constant near
    # the data keeps the sums of squares accurate; one per scale keeps the totals simple)
    if colmean is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            Mall = ~np.isnan(XT)
            colmean = np.where(Mall, XT, 0.0).sum(axis=1) / np.maximum(Mall.sum(axis=1), 1)
        del Mall
    sF = np.nan_to_num(np.asarray(colmean, dtype=float)[idx]).mean(axis=1)                 # (F,)
    shift = np.repeat(sF[:, None], p, axis=1)                                               # (F, p)
    tshift = sF
    # pieces
    bounds = np.r_[starts, n]
    sizes = np.diff(bounds)
    if piece <= 0:
        # automatic: the piece length that wastes least padding (plus a per-piece overhead
        # worth 16 rows) over these cell sizes
        cand = np.array([16, 24, 32, 48, 64, 96, 128, 192, 256])
        cost = [(np.maximum(1, -(-sizes // c)) * (c + 16)).sum() for c in cand]
        piece = int(cand[int(np.argmin(cost))])
    piece = int(max(1, min(piece, sizes.max(initial=1))))
    npieces = np.maximum(1, -(-sizes // piece))
    first_piece = np.r_[0, np.cumsum(npieces)[:-1]]
    V = int(npieces.sum())
    cell_of_row = np.repeat(np.arange(C), sizes)
    off = np.arange(n) - starts[cell_of_row]
    vrow = first_piece[cell_of_row] + off // piece
    pos = off % piece
    piece_cell = np.repeat(np.arange(C), npieces)
    piece_row0 = starts[piece_cell] + (np.arange(V) - first_piece[piece_cell]) * piece
    piece_row1 = np.minimum(piece_row0 + piece, bounds[piece_cell + 1])
    G = np.zeros((C, F, q, 2 * p))         # rows (m, x, t, t^2, a) times columns (m, x)
    H = np.zeros((C, F, 3))                 # sums of w a t, w a t^2, w a
    Gc = np.zeros((C, F, p + 1, p + 1)) if w is not None else None
    W2 = np.zeros((C, F)) if w is not None else None
    vc = max(1, int(chunk_elements // (F * q * piece)))
    sel_c = np.r_[np.arange(p), q - 1]
    sF3 = sF[:, None, None]
    for v0 in range(0, V, vc):
        v1 = min(V, v0 + vc)
        nv = v1 - v0
        r0, r1 = int(piece_row0[v0]), int(piece_row1[v1 - 1])
        slot = (vrow[r0:r1] - v0) * piece + pos[r0:r1]
        # the chunk's rows, zero-padded, in (scale, column, slot) layout: slot = piece * piece_len + row
        Xc = XT[:, r0:r1][idx]                                                              # (F, p, r)
        if listwise:
            Xc[np.broadcast_to(np.isnan(Xc).any(axis=1, keepdims=True), Xc.shape)] = np.nan
        if w is not None:
            Xc[:, :, w[r0:r1] <= 0] = np.nan
        Xp = np.full((F, p, nv * piece), np.nan)
        Xp[:, :, slot] = Xc
        del Xc
        B = np.empty((F, q, nv * piece))
        M = ~np.isnan(Xp)
        Mf = B[:, :p]
        Mf[...] = M
        X0 = B[:, p:2 * p]
        np.subtract(Xp, sF3, out=X0)
        np.copyto(X0, 0.0, where=~M)
        del Xp, M
        ans = Mf.sum(axis=1)                                                                # (F, slots)
        anyr = B[:, q - 1]
        np.greater(ans, 0.0, out=anyr, casting="unsafe")
        t = B[:, 2 * p]
        np.divide(X0.sum(axis=1), np.maximum(ans, 1.0), out=t)
        np.multiply(t, t, out=B[:, 2 * p + 1])
        Bv = B.reshape(F, q, nv, piece).transpose(0, 2, 1, 3)                               # (F, nv, q, piece)
        # sum the pieces of each cell present in this chunk (a cell may straddle chunks)
        pc = piece_cell[v0:v1]
        seg = np.flatnonzero(np.r_[True, pc[1:] != pc[:-1]])
        cells = pc[seg]
        Rv = Bv[:, :, :2 * p].swapaxes(2, 3)
        if w is None:
            GG = np.matmul(Bv, Rv)
            G[cells] += np.add.reduceat(GG, seg, axis=1).transpose(1, 0, 2, 3)
            tail = B[:, 2 * p:].reshape(F, 3, nv, piece).sum(axis=3)                        # (F, 3, nv)
            H[cells] += np.add.reduceat(tail, seg, axis=2).transpose(2, 0, 1)
        else:
            Wp = np.zeros(nv * piece)
            Wp[slot] = w[r0:r1]
            Wv = Wp.reshape(nv, piece)
            GG = np.matmul(Bv * Wv[None, :, None, :], Rv)
            G[cells] += np.add.reduceat(GG, seg, axis=1).transpose(1, 0, 2, 3)
            tail = (B[:, 2 * p:] * Wp).reshape(F, 3, nv, piece).sum(axis=3)
            H[cells] += np.add.reduceat(tail, seg, axis=2).transpose(2, 0, 1)
            Bm = Bv[:, :, sel_c]
            Gc[cells] += np.add.reduceat(np.matmul(Bm, Bm.swapaxes(2, 3)), seg, axis=1).transpose(1, 0, 2, 3)
            W2[cells] += np.add.reduceat((anyr.reshape(F, nv, piece) * (Wv * Wv)[None]).sum(axis=2),
                                         seg, axis=1).T
        del B, Bv
    K = C * F
    Gf = G.reshape(K, q, 2 * p)
    Hf = H.reshape(K, 3)
    Pm, T, T2 = slice(0, p), 2 * p, 2 * p + 1
    Xs = slice(p, 2 * p)
    out = {
        "sw": Gf[:, Pm, Pm].copy(),
        "sx": Gf[:, Xs, Pm].copy(),
        "sxx": Gf[:, Xs, Xs].copy(),
        "st": Gf[:, T, Pm].copy(),
        "stt": Gf[:, T2, Pm].copy(),
        "sxt": Gf[:, T, Xs].copy(),
        "any_w": Hf[:, 2].copy(),
        "any_t": Hf[:, 0].copy(),
        "any_tt": Hf[:, 1].copy(),
    }
    if w is None:
        out["cnt"] = out["sw"]
        out["any_n"] = out["any_w"]
        out["any_w2"] = out["any_w"]
    else:
        Gc = Gc.reshape(K, p + 1, p + 1)
        out["cnt"] = Gc[:, :p, :p].copy()
        out["any_n"] = Gc[:, p, p].copy()
        out["any_w2"] = W2.reshape(K)
    out["rows"] = np.repeat(sizes.astype(float), F)
    out["shift"] = np.tile(shift, (C, 1))
    out["tshift"] = np.tile(tshift, C)
    return out


def _piece_length(sizes: np.ndarray) -> int:
    """Piece length (rows) that wastes least zero padding, plus a per-piece overhead worth 16 rows."""
    cand = np.array([16, 24, 32, 48, 64, 96, 128, 192, 256])
    cost = (np.maximum(1, -(-sizes[None, :] // cand[:, None])) * (cand[:, None] + 16)).sum(axis=1)
    piece = int(cand[int(np.argmin(cost))])
    return int(max(1, min(piece, sizes.max(initial=1))))


def _padded_moments(cols: Sequence[Sequence[np.ndarray]], src: np.ndarray, drop: np.ndarray,
                    Wb: np.ndarray | None, piece_cell: np.ndarray, C: int, sizes: np.ndarray, shift: float,
                    *, listwise: bool = False, chunk_elements: int = _CHUNK_ELEMENTS) -> dict[str, np.ndarray]:
    """The sums of :func:`_grouped_moments`, gathered straight from the item columns into padded pieces.

    ``cols[f][j]`` is the full answer column (float64, NaN = missing) of item j of scale f
    (F scales of p items); ``src`` (V * piece,) the source row of every slot, where the V
    pieces cut each cell's rows (cells in order) into runs of at most ``piece`` rows, each
    padded to ``piece`` slots; ``drop`` the sorted slots that must count as unanswered
    (the padding and rows of zero weight); ``piece_cell`` (V,) the cell of each piece;
    ``Wb`` (V * piece,) the weights (0 in the padding) or None.

    Each chunk of pieces becomes a (F, q, slots) block of row vectors
    ``z = (m_1..m_p, x_1..x_p, a, t, t^2)`` (answered indicators, answers centred by
    ``shift`` and zero when missing, "answered any item", total = mean of the answered
    items, its square), and one batched product ``(w z) (m, x, a)'`` per piece (BLAS)
    gives every sum; the ``a`` column gives the totals over rows answering any item.
    The pieces of a cell are then added up by one more product with a one-hot
    (cells x pieces) matrix.  Blocks hold at most
    about ``chunk_elements`` elements, so memory stays bounded.  Returns the dictionary
    of :func:`_grouped_moments` plus ``saw_inf`` (an infinite answer was met).
    """
    F, p = len(cols), len(cols[0])
    V = piece_cell.size
    piece = src.size // V
    q = 2 * p + 3
    r = 2 * p + 1
    G = np.zeros((C, F * q * r))
    Gc = np.zeros((C, F * (p + 1) * (p + 1))) if Wb is not None else None
    W2 = np.zeros((C, F)) if Wb is not None else None
    vc = max(1, int(chunk_elements // (F * q * piece)))
    B = np.empty((F, q, min(vc, V) * piece))
    missbuf = np.empty((F, p, min(vc, V) * piece), dtype=bool)
    Mi = np.empty((F, p, min(vc, V) * piece), dtype=np.int64)
    saw_inf = False
    for v0 in range(0, V, vc):
        v1 = min(V, v0 + vc)
        nv = v1 - v0
        s0, s1 = v0 * piece, v1 * piece
        Bc = B[:, :, :nv * piece]
        X0 = Bc[:, p:2 * p]
        sc = src[s0:s1]
        for f in range(F):
            for j in range(p):
                np.take(cols[f][j], sc, out=X0[f, j], mode="wrap")   # (indices are valid; no buffering)
        if (listwise or Wb is not None) and np.isinf(X0).any():
            saw_inf = True          # (checked before rows of zero weight or incomplete rows are dropped)
        miss = np.isnan(X0, out=missbuf[:, :, :nv * piece])
        d0, d1 = np.searchsorted(drop, (s0, s1))
        if d1 > d0:
            miss[:, :, drop[d0:d1] - s0] = True          # padding (its values are row 0's) and zero weights
        if listwise:
            miss |= miss.any(axis=1, keepdims=True)
        M = Bc[:, :p]
        np.logical_not(miss, out=M, casting="unsafe")
        np.subtract(X0, shift, out=X0)
        # zero where missing: AND the bits with an all-ones (answered) or all-zeros (missing) mask
        keep = np.subtract(miss.view(np.int8), 1, out=Mi[:, :, :nv * piece], casting="unsafe")   # 0 / -1
        Xi = X0.view(np.int64)
        np.bitwise_and(Xi, keep, out=Xi)
        ans = M.sum(axis=1)
        np.greater(ans, 0.0, out=Bc[:, 2 * p], casting="unsafe")
        t = Bc[:, 2 * p + 1]
        np.divide(X0.sum(axis=1), np.maximum(ans, 1.0), out=t)
        np.multiply(t, t, out=Bc[:, 2 * p + 2])
        pc = piece_cell[v0:v1]
        c0, c1 = int(pc[0]), int(pc[-1]) + 1                                       # every cell has a piece
        # pieces -> cells: a one-hot (cells x pieces) matrix, so the sum over pieces is one product
        E = (pc[None, :] == np.arange(c0, c1)[:, None]).astype(float)
        Bv = Bc.reshape(F, q, nv, piece).transpose(2, 0, 1, 3)                     # (nv, F, q, piece)
        R = Bv[:, :, :r].swapaxes(2, 3)
        if Wb is None:
            GG = np.matmul(Bv, R)                                                  # (nv, F, q, r)
        else:
            Wv = Wb[s0:s1].reshape(nv, piece)
            GG = np.matmul(Bv * Wv[:, None, None, :], R)
            Bm = Bv[:, :, np.r_[np.arange(p), 2 * p]]                                 # (m, a): unweighted counts
            Gc[c0:c1] += E @ np.matmul(Bm, Bm.swapaxes(2, 3)).reshape(nv, -1)
            W2[c0:c1] += E @ (Bv[:, :, 2 * p] * (Wv * Wv)[:, None]).sum(axis=2)
        with np.errstate(invalid="ignore", over="ignore"):     # infinite answers: reported by the caller
            G[c0:c1] += E @ GG.reshape(nv, -1)
    K = C * F
    Gf = G.reshape(K, q, r)                                                        # cell-major
    Pm, Xs, A, T, T2 = slice(0, p), slice(p, 2 * p), 2 * p, 2 * p + 1, 2 * p + 2
    out = {
        "sw": Gf[:, Pm, Pm].copy(),
        "sx": Gf[:, Xs, Pm].copy(),
        "sxx": Gf[:, Xs, Xs].copy(),
        "st": Gf[:, T, Pm].copy(),
        "stt": Gf[:, T2, Pm].copy(),
        "sxt": Gf[:, T, Xs].copy(),
        "any_w": Gf[:, A, A].copy(),
        "any_t": Gf[:, T, A].copy(),
        "any_tt": Gf[:, T2, A].copy(),
    }
    if Wb is None:
        out["cnt"] = out["sw"]
        out["any_n"] = out["any_w"]
        out["any_w2"] = out["any_w"]
    else:
        Gc = Gc.reshape(K, p + 1, p + 1)
        out["cnt"] = Gc[:, :p, :p].copy()
        out["any_n"] = Gc[:, p, p].copy()
        out["any_w2"] = W2.reshape(K)
    out["rows"] = np.repeat(sizes.astype(float), F)
    out["shift"] = np.full((K, p), float(shift))
    out["tshift"] = np.full(K, float(shift))
    # an infinite answer makes its item's sum of squares non-finite (finite answers cannot)
    out["saw_inf"] = saw_inf or not bool(np.isfinite(np.diagonal(out["sxx"], axis1=1, axis2=2)).all())
    return out


def _covariances(mom: Mapping[str, np.ndarray]) -> np.ndarray:
    """Pairwise (or, for complete data, ordinary) covariance matrices of every cell.

    ``C[j,k] = [sum w x_j x_k - (sum w x_j)(sum w x_k)/sum w] / sum w * n/(n - 1)`` over
    the rows answering both items: R's ``cov(use = "pairwise")`` when unweighted
    (divisor n - 1) and ``survey::svyvar``'s convention when weighted.
    """
    sw, sx, sxx, cnt = mom["sw"], mom["sx"], mom["sxx"], mom["cnt"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = (sxx - sx * np.swapaxes(sx, 1, 2) / sw) / sw * (cnt / (cnt - 1.0))
    cov[cnt < 2] = np.nan
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    # a constant item: cancellation leaves ~1e-16 instead of an exact zero variance
    p = cov.shape[-1]
    d = np.diagonal(cov, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.maximum(1.0, np.abs(np.diagonal(sxx, axis1=1, axis2=2) / np.diagonal(sw, axis1=1, axis2=2)))
    tiny = np.abs(d) <= 1e-12 * scale
    if tiny.any():
        kk, jj = np.nonzero(tiny)
        cov[kk, jj, :] = 0.0
        cov[kk, :, jj] = 0.0
    return cov


# ============================================================================ alpha kernel
def _feldt(alpha: np.ndarray, n: np.ndarray, p: np.ndarray | int, level: float) -> tuple[np.ndarray, np.ndarray]:
    a = 1.0 - level
    df1 = n - 1.0
    df2 = (n - 1.0) * (np.asarray(p, dtype=float) - 1.0)
    with np.errstate(invalid="ignore"):
        ok = (df1 > 0) & (df2 > 0) & np.isfinite(alpha)
        df1s, df2s = np.where(ok, df1, 1.0), np.where(ok, df2, 1.0)
        # F quantiles through the special function (scipy.stats.f.ppf(q, d1, d2) == fdtri(d1, d2, q)),
        # once per distinct pair of degrees of freedom (cells share their n)
        d1f, d2f = np.broadcast_arrays(df1s, df2s)
        key = d1f + 1j * d2f                                  # one sortable key per pair
        uq, inv = np.unique(key.reshape(-1), return_inverse=True)
        inv = inv.reshape(np.shape(key))
        qs = _sp.fdtri(uq.real[:, None], uq.imag[:, None], np.array([1.0 - a / 2.0, a / 2.0]))
        lo = 1.0 - (1.0 - alpha) * qs[inv, 0]
        hi = 1.0 - (1.0 - alpha) * qs[inv, 1]
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def _pivots_prove_pd(cov: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """True where the LDL' pivots of a (C, p, p) stack are all positive (the matrix is positive definite).

    Gaussian elimination without pivoting, vectorised over the stack (a loop over the p
    columns only).  When every computed pivot is positive the computed factors are those of
    ``A + E`` with ``|E| <= c p eps max(diag A)`` (Higham 2002, Thm 10.5: with D > 0,
    ``|L||D||L'|`` is bounded by the diagonal), so the smallest eigenvalue of A is at least
    about ``-p eps`` relative to the largest: such a matrix can never be flagged ``non_psd``
    (threshold -1e-10), and only the others need an eigen-decomposition.  Cells where ``ok``
    is False are reported False.
    """
    C, p, _ = cov.shape
    A = np.where(ok[:, None, None], cov, np.eye(p))
    good = ok.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(p):
            piv = A[:, j, j].copy()
            good &= piv > 0.0
            if j + 1 < p:
                pj = np.where(piv > 0.0, piv, 1.0)
                L = A[:, j + 1:, j] / pj[:, None]
                A[:, j + 1:, j + 1:] -= L[:, :, None] * A[:, j, j + 1:][:, None, :]
    return good


def _alpha_kernel(cov: np.ndarray, n: np.ndarray, level: float, ci_method: str) -> dict[str, np.ndarray]:
    """Alpha, standardised alpha, mean r, Duhachek SE, CI and item statistics over a (C, p, p) stack."""
    C, p, _ = cov.shape
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.diagonal(cov, axis1=1, axis2=2)
        tr = d.sum(axis=1)
        rows = cov.sum(axis=2)
        tot = rows.sum(axis=1)
        k = p / (p - 1.0) if p > 1 else np.nan
        out["alpha"] = k * (1.0 - tr / tot)
        sd = np.sqrt(d)
        R = cov / (sd[:, :, None] * sd[:, None, :])
        sumR = R.sum(axis=(1, 2))
        out["std_alpha"] = k * (1.0 - p / sumR)
        out["mean_r"] = (sumR - p) / (p * (p - 1.0)) if p > 1 else np.full(C, np.nan)
        # Duhachek & Iacobucci (2004) asymptotic variance, as psych::alpha's "ase"
        trCC = (cov * cov).sum(axis=(1, 2))
        sumCC = (rows * rows).sum(axis=1)
        Q = (2.0 * p * p / ((p - 1.0) ** 2 * tot**3)) * (tot * (trCC + tr**2) - 2.0 * tr * sumCC)
        out["ase"] = np.sqrt(Q / n)
        # item table
        sum_drop = tot[:, None] - 2.0 * rows + d
        tr_drop = tr[:, None] - d
        out["r_drop"] = (rows - d) / np.sqrt(d * sum_drop)
        if p > 2:
            kd = (p - 1.0) / (p - 2.0)
            out["alpha_if_dropped"] = kd * (1.0 - tr_drop / sum_drop)
            Rrows = R.sum(axis=2)
            sumR_drop = sumR[:, None] - 2.0 * Rrows + 1.0
            out["std_alpha_if_dropped"] = kd * (1.0 - (p - 1.0) / sumR_drop)
        else:
            out["alpha_if_dropped"] = np.full((C, p), np.nan)
            out["std_alpha_if_dropped"] = np.full((C, p), np.nan)
        # non-positive-semidefinite pairwise matrices: eigenvalues of the matrices whose
        # LDL' pivots do not prove them positive definite (see _pivots_prove_pd)
        okc = np.isfinite(cov).all(axis=(1, 2))
        mineig = np.full(C, np.nan)
        cand = okc & ~_pivots_prove_pd(cov, okc)
        if cand.any():
            ev = np.linalg.eigvalsh(cov[cand])
            mineig[cand] = ev[:, 0] / np.maximum(np.abs(ev[:, -1]), 1e-300)
        out["min_eig_rel"] = mineig                   # NaN: not finite, or proven positive definite
        out["non_psd"] = np.isfinite(mineig) & (mineig < -1e-10)
    if ci_method == "feldt":
        out["ci_low"], out["ci_high"] = _feldt(out["alpha"], n, p, level)
    elif ci_method == "duhachek":
        z = _st.norm.ppf(0.5 + level / 2.0)
        out["ci_low"] = out["alpha"] - z * out["ase"]
        out["ci_high"] = out["alpha"] + z * out["ase"]
    return out


def _item_total(mom: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Item means, sds, item-total r (total = mean of answered items) and total mean/sd."""
    sw, sx, sxx, cnt = mom["sw"], mom["sx"], mom["sxx"], mom["cnt"]
    with np.errstate(invalid="ignore", divide="ignore"):
        wj = np.diagonal(sw, axis1=1, axis2=2)
        nj = np.diagonal(cnt, axis1=1, axis2=2)
        sj = np.diagonal(sx, axis1=1, axis2=2)
        sjj = np.diagonal(sxx, axis1=1, axis2=2)
        mean = sj / wj + mom["shift"]
        var = (sjj - sj * sj / wj) / wj * nj / (nj - 1.0)
        cxt = mom["sxt"] - sj * mom["st"] / wj
        ctt = mom["stt"] - mom["st"] ** 2 / wj
        cxx = sjj - sj * sj / wj
        raw_r = cxt / np.sqrt(cxx * ctt)
        aw, an = mom["any_w"], mom["any_n"]
        tmean = mom["any_t"] / aw + mom["tshift"]
        tvar = (mom["any_tt"] - mom["any_t"] ** 2 / aw) / aw * an / (an - 1.0)
        n_eff = aw**2 / mom["any_w2"]
    return {"mean": mean, "sd": np.sqrt(var), "raw_r": raw_r, "n_item": nj,
            "total_mean": tmean, "total_sd": np.sqrt(tvar), "n_eff": n_eff}


# ============================================================================ one-factor ML (batched)
def _logdet_and_inv(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-determinant, inverse and positive-definiteness of a (C, p, p) stack."""
    C, p, _ = S.shape
    sign, ld = np.linalg.slogdet(S)
    pd_ = (sign > 0) & np.isfinite(ld)
    inv = np.linalg.inv(np.where(pd_[:, None, None], S, np.eye(p)))
    return ld, inv, pd_


def _fit_one_factor(S: np.ndarray, *, max_iter: int = 200, tol: float = 1e-10) -> dict[str, np.ndarray]:
    """Fit ``Sigma = lambda lambda' + diag(psi)`` (factor variance 1) by ML to every matrix of a stack.

    Minimises ``F = log|Sigma| + tr(S Sigma^-1)`` by Fisher scoring with step halving,
    vectorised over the stack (closed-form gradient ``2 A lambda``, ``diag(A)`` with
    ``A = Sigma^-1 (Sigma - S) Sigma^-1``, and expected information
    ``tr(Sigma^-1 D_a Sigma^-1 D_b)``).  Residual variances are not bounded (as lavaan):
    a negative one is a Heywood case, reported by the caller.
    """
    C, p, _ = S.shape
    lam = np.full((C, p), np.nan)
    psi = np.full((C, p), np.nan)
    conv = np.zeros(C, dtype=bool)
    iters = np.zeros(C, dtype=int)
    H_out = np.full((C, 2 * p, 2 * p), np.nan)
    ldS, Sinv, okS = _logdet_and_inv(S)
    ok = okS & np.isfinite(S).all(axis=(1, 2)) & (p >= 3)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return {"lam": lam, "psi": psi, "converged": conv, "iterations": iters, "H": H_out,
                "estimable": ok}
    Sa = S[idx]
    d = np.diagonal(Sa, axis1=1, axis2=2)
    uniq = 1.0 / np.diagonal(Sinv[idx], axis1=1, axis2=2)          # residual variance given the others
    red = Sa - np.einsum("cj,jk->cjk", uniq, np.eye(p))
    ev, evec = np.linalg.eigh(red)
    l0 = evec[:, :, -1] * np.sqrt(np.maximum(ev[:, -1], 1e-3 * d.mean(axis=1)))[:, None]
    l0 *= np.where(l0.sum(axis=1) < 0, -1.0, 1.0)[:, None]
    p0 = np.maximum(d - l0**2, 0.05 * d)
    theta = np.concatenate([l0, p0], axis=1)
    eye = np.eye(p)

    def objective(th: np.ndarray, Ss: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        L, P = th[:, :p], th[:, p:]
        Sig = L[:, :, None] * L[:, None, :] + P[:, :, None] * eye
        ld, B, good = _logdet_and_inv(Sig)
        F = np.where(good, ld + np.einsum("cjk,ckj->c", Ss, B), np.inf)
        return F, Sig, B

    F, Sig, B = objective(theta, Sa)
    active = np.arange(idx.size)
    done = np.zeros(idx.size, dtype=bool)
    nit = np.zeros(idx.size, dtype=int)
    for it in range(max_iter):
        if active.size == 0:
            break
        th, Ss, Bs, Sg = theta[active], Sa[active], B[active], Sig[active]
        L = th[:, :p]
        A = Bs @ (Sg - Ss) @ Bs
        g = np.concatenate([2.0 * np.einsum("cjk,ck->cj", A, L), np.diagonal(A, axis1=1, axis2=2)], axis=1)
        u = np.einsum("cjk,ck->cj", Bs, L)
        c = np.einsum("cj,cj->c", u, L)
        H = np.empty((active.size, 2 * p, 2 * p))
        H[:, :p, :p] = 2.0 * u[:, :, None] * u[:, None, :] + 2.0 * c[:, None, None] * Bs
        H[:, :p, p:] = 2.0 * Bs * u[:, None, :]
        H[:, p:, :p] = np.swapaxes(H[:, :p, p:], 1, 2)
        H[:, p:, p:] = Bs * Bs
        try:
            delta = -np.linalg.solve(H, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = -np.einsum("cab,cb->ca", np.linalg.pinv(H), g)
        step = np.ones(active.size)
        accepted = np.zeros(active.size, dtype=bool)
        F_old = F[active]
        new_th = th.copy()
        new_F = F_old.copy()
        for _ in range(40):
            todo = ~accepted
            if not todo.any():
                break
            cand = th[todo] + step[todo, None] * delta[todo]
            Fc, _, _ = objective(cand, Ss[todo])
            good = np.isfinite(Fc) & (Fc <= F_old[todo] + 1e-12 * np.abs(F_old[todo]))
            ti = np.flatnonzero(todo)
            new_th[ti[good]] = cand[good]
            new_F[ti[good]] = Fc[good]
            accepted[ti[good]] = True
            step[ti[~good]] *= 0.5
        theta[active] = new_th
        F_new, Sig_new, B_new = objective(new_th, Ss)
        F[active], Sig[active], B[active] = F_new, Sig_new, B_new
        nit[active] += 1
        small = (np.max(np.abs(step[:, None] * delta), axis=1) < tol * (1.0 + np.max(np.abs(th), axis=1)))
        # flat likelihood (e.g. a loading near zero): the objective no longer moves and the
        # gradient vanishes although the parameters still creep; omega is settled then
        gmax = np.max(np.abs(g), axis=1)
        flat = (F_old - F_new < 1e-13 * (1.0 + np.abs(F_new))) & (gmax < 1e-8)
        stuck = ~accepted
        ok_now = small | flat | (stuck & (gmax < 1e-7))
        # no finite ML solution: a residual variance runs off to minus infinity (and a loading
        # to infinity); stop and report non-convergence
        dscale = np.max(np.diagonal(Ss, axis1=1, axis2=2), axis=1)
        diverged = np.max(np.abs(new_th), axis=1) > 10.0 * np.maximum(dscale, np.sqrt(dscale))
        fin = ok_now | stuck | diverged
        done[active[ok_now]] = True
        active = active[~fin]
    # final information at the solution
    L, P = theta[:, :p], theta[:, p:]
    Bs = B
    u = np.einsum("cjk,ck->cj", Bs, L)
    c = np.einsum("cj,cj->c", u, L)
    H = np.empty((idx.size, 2 * p, 2 * p))
    H[:, :p, :p] = 2.0 * u[:, :, None] * u[:, None, :] + 2.0 * c[:, None, None] * Bs
    H[:, :p, p:] = 2.0 * Bs * u[:, None, :]
    H[:, p:, :p] = np.swapaxes(H[:, :p, p:], 1, 2)
    H[:, p:, p:] = Bs * Bs
    sgn = np.where(L.sum(axis=1) < 0, -1.0, 1.0)
    lam[idx] = L * sgn[:, None]
    psi[idx] = P
    conv[idx] = done
    iters[idx] = nit
    H_out[idx] = H
    return {"lam": lam, "psi": psi, "converged": conv, "iterations": iters, "H": H_out, "estimable": ok}


def _omega_from_fit(fit: Mapping[str, np.ndarray], S: np.ndarray, n: np.ndarray,
                    level: float | None = None) -> dict[str, np.ndarray]:
    """Omega (both denominators) and the normal-theory delta-method SE of the model-implied one."""
    lam, psi = fit["lam"], fit["psi"]
    p = lam.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        Ls = lam.sum(axis=1)
        Ps = psi.sum(axis=1)
        tot_model = Ls**2 + Ps
        om_model = Ls**2 / tot_model
        om_obs = Ls**2 / S.sum(axis=(1, 2))
        grad = np.concatenate([np.repeat((2.0 * Ls * Ps / tot_model**2)[:, None], p, axis=1),
                               np.repeat((-(Ls**2) / tot_model**2)[:, None], p, axis=1)], axis=1)
    se = np.full(lam.shape[0], np.nan)
    good = fit["estimable"] & np.isfinite(grad).all(axis=1) & np.isfinite(fit["H"]).all(axis=(1, 2))
    if good.any():
        Hg = fit["H"][good]
        sign, _ = np.linalg.slogdet(Hg)
        inv_ok = sign > 0
        V = np.full_like(Hg, np.nan)
        if inv_ok.any():
            V[inv_ok] = np.linalg.inv(Hg[inv_ok])
        gg = grad[good]
        se[good] = np.sqrt(2.0 / n[good] * np.einsum("ca,cab,cb->c", gg, V, gg))
    return {"omega_model": om_model, "omega_observed": om_obs, "se_model": se}


# ============================================================================ results
@dataclass(frozen=True)
class AlphaResult(Result):
    """Cronbach's alpha of one scale.

    Attributes
    ----------
    alpha : float
        Raw alpha, from the item covariance matrix.
    std_alpha : float
        Standardised alpha, from the item correlation matrix (or, with ``ordinal=True``,
        ordinal alpha from the polychoric correlation matrix).
    ci : tuple of float
        (lower, upper) confidence limits for ``alpha`` at level ``ci_level``.
    ci_method : str
        ``"feldt"``, ``"duhachek"`` or ``"bootstrap"``.
    se : float
        Duhachek & Iacobucci (2004) asymptotic standard error of ``alpha``.
    n : int
        Respondents used (answering at least one item; listwise: all items).
    n_eff : float
        Kish effective sample size (equal to ``n`` without weights); CIs use it.
    n_items : int
        Number of items.
    mean_r : float
        Average inter-item correlation.
    total_mean, total_sd : float
        Mean and standard deviation of the respondents' scale scores (mean of answered items).
    items : pandas.DataFrame
        One row per item: ``item``, ``n``, ``mean``, ``sd``, ``missing_share``, ``raw_r``
        (item-total r), ``r_drop`` (corrected item-total r), ``alpha_if_dropped``,
        ``std_alpha_if_dropped``.
    """

    alpha: float
    std_alpha: float
    ci: tuple[float, float]
    ci_level: float
    ci_method: str
    se: float
    n: int
    n_eff: float
    n_items: int
    mean_r: float
    total_mean: float
    total_sd: float
    missing: str
    weighted: bool
    items: pd.DataFrame
    ordinal_alpha: float | None = None

    @property
    def estimate(self) -> float:
        """Alias of ``alpha``."""
        return self.alpha


@dataclass(frozen=True)
class OmegaResult(Result):
    """McDonald's omega total of one scale from a one-factor model fitted by ML.

    Attributes
    ----------
    omega : float
        Omega with the chosen ``denominator``.
    denominator : str
        ``"model"``: model-implied total variance ``(sum l)^2 + sum psi`` (semTools
        ``compRelSEM(obs.var = FALSE)``); ``"observed"``: observed total variance
        ``1' S 1`` (``compRelSEM(obs.var = TRUE)``, semTools' default).
    omega_model, omega_observed : float
        Both variants.
    ci : tuple of float
        Confidence interval for ``omega`` (``ci_method``: ``"bootstrap"`` percentile,
        ``"wald"`` normal-theory delta method, model denominator only; ``"none"``).
    se : float
        Standard error (bootstrap SD, or delta-method SE).
    loadings : pandas.DataFrame
        ``item``, ``loading``, ``residual_variance``, ``std_loading``.
    converged : bool
        Whether the ML fit converged.
    """

    omega: float
    denominator: str
    omega_model: float
    omega_observed: float
    ci: tuple[float, float]
    ci_level: float
    ci_method: str
    se: float
    n: int
    n_items: int
    converged: bool
    iterations: int
    missing: str
    weighted: bool
    ordinal: bool
    loadings: pd.DataFrame

    @property
    def estimate(self) -> float:
        """Alias of ``omega``."""
        return self.omega


# ============================================================================ one-scale front ends
def _prepare_scale(items: Any, weights: Any, missing: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, int]:
    df = _as_item_frame(items)
    w, df = _weights_vector(weights, df, len(df))
    X = _numeric_matrix(df)
    names = [str(c) for c in df.columns]
    probs = []
    if X.shape[1] < 2:
        raise DataError(f"A scale needs at least two items; got {X.shape[1]} ({names}).",
                        [Problem("too_few_items", "Reliability needs at least two items.", "<DataFrame>",
                                 value=names)])
    nrows = X.shape[0]
    M = ~np.isnan(X)
    keep = M.any(axis=1) if missing == "pairwise" else M.all(axis=1)
    if w is not None:
        keep &= w > 0
    n = int(keep.sum())
    if n < 2:
        raise DataError(f"Only {n} respondent(s) answered the items ({missing} deletion"
                        f"{', positive weight' if w is not None else ''}); at least 2 are needed.",
                        [Problem("too_few_respondents", "Too few respondents.", "<DataFrame>", value=n)])
    X, M = X[keep], M[keep]
    if w is not None:
        w = w[keep]
    for j, c in enumerate(names):
        col = X[M[:, j], j]
        if col.size == 0:
            probs.append(Problem("item_all_missing", "The item has no answer.", "<DataFrame>", column=c))
        elif col.size < 2:
            probs.append(Problem("item_too_few_answers", "The item has a single answer.", "<DataFrame>",
                                 column=c, value=float(col[0])))
        elif np.all(col == col[0]):
            probs.append(Problem("item_constant", "The item has no variance (every answer is the same); "
                                 "drop it or check its coding.", "<DataFrame>", column=c,
                                 value=float(col[0])))
    if probs:
        raise DataError(f"{len(probs)} item(s) cannot enter a reliability estimate.", probs)
    return df, X, w, nrows


def _resolve_rng(seed: int | None, rng: Any) -> np.random.Generator:
    if rng is not None and seed is not None:
        raise CipsError("Give either seed= or rng=, not both.")
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(seed if rng is None else rng)


def _boot_covariances(X: np.ndarray, w: np.ndarray | None, counts: np.ndarray) -> np.ndarray:
    """Covariance matrices of bootstrap resamples given as a (B, n) matrix of resampling counts."""
    n, p = X.shape
    M = ~np.isnan(X)
    shift = np.nanmean(X, axis=0)
    Mf = M.astype(float)
    X0 = np.where(M, X - shift, 0.0)
    ww = np.ones(n) if w is None else w
    MM = (Mf[:, :, None] * Mf[:, None, :]).reshape(n, p * p)
    XM = (X0[:, :, None] * Mf[:, None, :]).reshape(n, p * p)
    XX = (X0[:, :, None] * X0[:, None, :]).reshape(n, p * p)
    cnt = (counts @ MM).reshape(-1, p, p)
    cw = counts * ww
    mom = {"cnt": cnt, "sw": (cw @ MM).reshape(-1, p, p), "sx": (cw @ XM).reshape(-1, p, p),
           "sxx": (cw @ XX).reshape(-1, p, p)}
    return _covariances(mom)


def cronbach_alpha(items: Any, *, ci: float = 0.95, ci_method: str = "feldt", missing: str = "pairwise",
                   weights: Any = None, n_boot: int = 2000, seed: int | None = None, rng: Any = None,
                   ordinal: bool = False) -> AlphaResult:
    """Cronbach's alpha of one scale, with a confidence interval and the item table.

    Parameters
    ----------
    items : pandas.DataFrame or 2-D array
        Respondents in rows, items in columns (numeric codes; NaN = missing).
        Reverse-keyed items must already be recoded.
    ci : float, default 0.95
        Confidence level.
    ci_method : {"feldt", "duhachek", "bootstrap"}, default "feldt"
        Feldt (1965) F-distribution interval; Duhachek & Iacobucci (2004)
        normal interval ``alpha -/+ z * ase``; or a percentile bootstrap over
        respondents (``n_boot`` resamples, seeded).
    missing : {"pairwise", "listwise"}, default "pairwise"
        Pairwise: each covariance from the respondents answering both items (as
        ``psych::alpha``); listwise: only respondents answering every item.
    weights : str, array-like or None
        Sampling (design) weights: a column of ``items`` or one value per row.
        Weighted covariances give design-weighted alpha; CIs then use the Kish
        effective sample size.
    n_boot : int, default 2000
        Bootstrap resamples (``ci_method="bootstrap"``).
    seed, rng : int or numpy.random.Generator, optional
        Seed of the bootstrap.
    ordinal : bool, default False
        Also compute ordinal alpha (Zumbo, Gadermann & Zeisser 2007) from the polychoric
        correlation matrix (stored in ``ordinal_alpha``).

    Returns
    -------
    AlphaResult

    Raises
    ------
    DataError
        Fewer than two items, an item without answers or without variance, fewer
        than two respondents, non-numeric or infinite answers, bad weights.

    Notes
    -----
    With ``C`` the item covariance matrix, ``R`` the correlation matrix and ``p``
    items: ``alpha = p/(p-1) (1 - tr C / 1'C1)``, ``std_alpha = p/(p-1) (1 - p / 1'R1)``,
    ``mean_r = (1'R1 - p) / (p(p-1))``; corrected item-total correlation
    ``r_drop_i = (C1 - C_ii)_i / sqrt(C_ii 1'C_{-i}1)``; item-total ``raw_r`` is the
    correlation of the item with the respondent's mean of answered items. Feldt:
    ``1 - (1 - alpha) F_{1-a/2}(n-1, (n-1)(p-1))`` (lower); Duhachek's ``ase =
    sqrt(Q/n)``. All match ``psych::alpha`` 2.2.9 on ``psych::bfi`` to 1e-8 (pairwise and
    listwise), and weighted alpha matches ``survey::svycralpha`` (listwise).
    Below 3 items ``alpha_if_dropped`` is undefined (NaN, flagged).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(7)
    >>> x = pd.DataFrame(rng.integers(1, 6, size=(50, 1)) + rng.integers(0, 2, size=(50, 3)),
    ...                  columns=["a", "b", "c"])
    >>> res = cs.reliability.cronbach_alpha(x, ci_method="duhachek")
    >>> round(res.alpha, 4), res.n, res.items["item"].tolist()
    (0.963, 50, ['a', 'b', 'c'])
    """
    level = _check_level(ci)
    _check_choice("ci_method", ci_method, _CI_METHODS_ALPHA)
    _check_choice("missing", missing, _MISSING)
    df, X, w, nrows = _prepare_scale(items, weights, missing)
    names = [str(c) for c in df.columns]
    p = X.shape[1]
    starts = np.zeros(1, dtype=np.intp)
    mom = _grouped_moments(X, w, starts)
    cov = _covariances(mom)
    it = _item_total(mom)
    n = int(mom["any_n"][0]) if w is None else int(np.sum((~np.isnan(X)).any(axis=1) & (w > 0)))
    n_eff = float(it["n_eff"][0]) if w is not None else float(n)
    k = _alpha_kernel(cov, np.array([n_eff]), level, ci_method if ci_method != "bootstrap" else "none")
    flags: list[Flag] = []
    seed_used = seed
    if ci_method == "bootstrap":
        g = _resolve_rng(seed, rng)
        B = int(n_boot)
        if B < 100:
            raise CipsError(f"The n_boot= argument must be at least 100; got {n_boot!r}.")
        reps = []
        chunk = max(1, int(2**22 // max(X.shape[0], 1)))
        for b0 in range(0, B, chunk):
            cnt = g.multinomial(X.shape[0], np.full(X.shape[0], 1.0 / X.shape[0]), size=min(chunk, B - b0))
            cb = _boot_covariances(X, w, cnt.astype(float))
            kb = _alpha_kernel(cb, np.full(cb.shape[0], float(n)), level, "none")
            reps.append(kb["alpha"])
        reps = np.concatenate(reps)
        bad = ~np.isfinite(reps)
        if bad.any():
            flags.append(Flag("bootstrap_undefined", f"{int(bad.sum())} of {B} bootstrap resamples gave no "
                              "alpha (an item without variance in the resample); they were left out.",
                              "caution"))
        a = 1.0 - level
        lo, hi = np.quantile(reps[~bad], [a / 2.0, 1.0 - a / 2.0])
        ci_t = (float(lo), float(hi))
    else:
        ci_t = (float(k["ci_low"][0]), float(k["ci_high"][0]))
    alpha = float(k["alpha"][0])
    if p == 2:
        flags.append(Flag("two_items", "With two items, alpha if item dropped is undefined (a single item).",
                          "info"))
    if n <= p:
        flags.append(Flag("n_below_items", f"Only {n} respondents for {p} items: the covariance matrix is "
                          "singular and alpha is unstable.", "warning"))
    elif n < MIN_N:
        flags.append(Flag("small_n", f"Only {n} respondents (< {MIN_N}): alpha is unstable.", "caution"))
    if k["non_psd"][0]:
        flags.append(Flag("non_psd", "The pairwise covariance matrix is not positive semi-definite.", "caution"))
    flags.extend(_threshold_flags("alpha", alpha))
    ord_alpha = None
    if ordinal:
        rho, pflags = _polychoric(df, missing)
        ord_alpha = _ordinal_alpha(rho)
        flags.extend(pflags)
        if w is not None:
            flags.append(Flag("ordinal_unweighted", "Ordinal alpha ignores the weights (polychoric "
                              "correlations are unweighted).", "info"))
        if not np.isfinite(ord_alpha):
            flags.append(Flag("ordinal_undefined", "Ordinal alpha is undefined: some polychoric correlations "
                              "could not be estimated (see the polychoric flags).", "warning"))
    table = pd.DataFrame({
        "item": names,
        "n": it["n_item"][0].astype(int),
        "mean": it["mean"][0],
        "sd": it["sd"][0],
        "missing_share": 1.0 - it["n_item"][0] / nrows if nrows else np.nan,
        "raw_r": it["raw_r"][0],
        "r_drop": k["r_drop"][0],
        "alpha_if_dropped": k["alpha_if_dropped"][0],
        "std_alpha_if_dropped": k["std_alpha_if_dropped"][0],
    })
    prov = Provenance.build("cronbach_alpha", data=df, seed=seed_used,
                            options={"ci": level, "ci_method": ci_method, "missing": missing,
                                     "weights": weights if isinstance(weights, str) else (None if weights is None else "array"),
                                     "n_boot": n_boot if ci_method == "bootstrap" else None, "ordinal": ordinal})
    return AlphaResult(alpha=alpha, std_alpha=float(k["std_alpha"][0]), ci=ci_t, ci_level=level,
                       ci_method=ci_method, se=float(k["ase"][0]), n=n, n_eff=n_eff, n_items=p,
                       mean_r=float(k["mean_r"][0]), total_mean=float(it["total_mean"][0]),
                       total_sd=float(it["total_sd"][0]), missing=missing, weighted=w is not None,
                       items=table, ordinal_alpha=ord_alpha, provenance=prov, flags=tuple(flags))


def _threshold_flags(stat: str, value: float, where: dict | None = None) -> list[Flag]:
    if not np.isfinite(value):
        return []
    if value < THRESHOLDS["poor"]:
        return [Flag(f"{stat}_poor", f"{stat} = {value:.3f} is below {THRESHOLDS['poor']:.2f} (poor).",
                     "warning", dict(where or {}))]
    if value < THRESHOLDS["questionable"]:
        return [Flag(f"{stat}_questionable", f"{stat} = {value:.3f} is below {THRESHOLDS['questionable']:.2f} "
                     "(questionable).", "caution", dict(where or {}))]
    return []


def omega(items: Any, *, denominator: str = "model", ci: float = 0.95, ci_method: str = "bootstrap",
          missing: str = "pairwise", weights: Any = None, n_boot: int = 1000, seed: int | None = None,
          rng: Any = None, ordinal: bool = False) -> OmegaResult:
    """McDonald's omega total of one scale from a one-factor model fitted by maximum likelihood.

    Parameters
    ----------
    items : pandas.DataFrame or 2-D array
        Respondents in rows, items in columns (NaN = missing), reverse keys applied.
    denominator : {"model", "observed"}, default "model"
        Total variance in the denominator: model-implied ``(sum l)^2 + sum psi``
        (McDonald 1999; semTools ``compRelSEM(obs.var = FALSE)``) or the observed
        variance of the sum score ``1'S1`` (``compRelSEM(obs.var = TRUE)``).
    ci : float, default 0.95
        Confidence level.
    ci_method : {"bootstrap", "wald", "none"}, default "bootstrap"
        Percentile bootstrap over respondents (refits the model ``n_boot`` times,
        vectorised), or the normal-theory delta-method (Wald) interval of the
        model-implied omega (``denominator="model"`` only).
    missing : {"pairwise", "listwise"}, default "pairwise"
        How the covariance matrix the model is fitted to is formed.
    weights : str, array-like or None
        Sampling weights (weighted covariance matrix; the Wald SE then uses the
        Kish effective sample size).
    n_boot : int, default 1000
        Bootstrap resamples.
    seed, rng : int or numpy.random.Generator, optional
        Seed of the bootstrap.
    ordinal : bool, default False
        Fit the model to the polychoric correlation matrix (ordinal omega).

    Returns
    -------
    OmegaResult

    Raises
    ------
    DataError
        As :func:`cronbach_alpha`; also fewer than three items (a one-factor model
        with two indicators is not identified).
    ModelError
        The covariance matrix is not positive definite (e.g. fewer respondents than items).

    Notes
    -----
    The model ``Sigma = l l' + diag(psi)`` (factor variance 1) is fitted by minimising
    ``F = log|Sigma| + tr(S Sigma^-1)`` with Fisher scoring; residual variances are
    not bounded (as lavaan) and a negative one is flagged (Heywood case).
    ``omega = (sum l)^2 / denominator``. Checked against ``semTools::compRelSEM`` on a
    ``lavaan::cfa(std.lv = TRUE)`` fit to the five ``psych::bfi`` scales (both
    denominators, listwise and pairwise) to 1e-6, and the Wald SE against lavaan's
    delta-method SE of a ``:=`` parameter (expected information, N in the divisor).

    Examples
    --------
    >>> import numpy as np
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(3)
    >>> f = rng.normal(size=(400, 1))
    >>> x = f * np.array([0.8, 0.7, 0.6, 0.5]) + rng.normal(size=(400, 4)) * 0.6
    >>> res = cs.reliability.omega(x, ci_method="wald")
    >>> round(res.omega, 3), res.converged
    (0.83, True)
    """
    level = _check_level(ci)
    _check_choice("denominator", denominator, _DENOMS)
    _check_choice("ci_method", ci_method, _CI_METHODS_OMEGA)
    _check_choice("missing", missing, _MISSING)
    if ci_method == "wald" and denominator != "model":
        raise CipsError("The Wald (delta-method) interval is defined for denominator='model' only; "
                        "use ci_method='bootstrap' for the observed-variance omega.")
    df, X, w, nrows = _prepare_scale(items, weights, missing)
    names = [str(c) for c in df.columns]
    p = X.shape[1]
    if p < 3:
        raise DataError(f"Omega needs at least three items (a one-factor model with {p} items is not "
                        "identified).", [Problem("too_few_items", "Omega needs three or more items.",
                                                 "<DataFrame>", value=names)])
    mom = _grouped_moments(X, w, np.zeros(1, dtype=np.intp))
    it = _item_total(mom)
    n = int(np.sum((~np.isnan(X)).any(axis=1) & (w > 0 if w is not None else True)))
    n_eff = float(it["n_eff"][0]) if w is not None else float(n)
    pflags: list[Flag] = []
    if ordinal:
        rho, pflags = _polychoric(df, missing)
        S = rho[None]
        if w is not None:
            pflags.append(Flag("ordinal_unweighted", "Ordinal omega ignores the weights (polychoric "
                               "correlations are unweighted).", "info"))
    else:
        S = _covariances(mom)
    fit = _fit_one_factor(S)
    if not fit["estimable"][0]:
        raise ModelError("The one-factor model cannot be fitted: the item covariance matrix is not positive "
                         f"definite (n = {n}, {p} items).",
                         {"min_eigenvalue": float(np.linalg.eigvalsh(S[0])[0]) if np.isfinite(S).all() else None})
    om = _omega_from_fit(fit, S, np.array([n_eff]))
    key = "omega_model" if denominator == "model" else "omega_observed"
    est = float(om[key][0])
    flags: list[Flag] = list(pflags)
    if not fit["converged"][0]:
        flags.append(Flag("not_converged", "The one-factor ML fit did not converge.", "warning",
                          {"iterations": int(fit["iterations"][0])}))
    if np.any(fit["psi"][0] < 0):
        bad = [names[j] for j in np.flatnonzero(fit["psi"][0] < 0)]
        flags.append(Flag("heywood", f"Negative residual variance (Heywood case) for {bad}.", "warning",
                          {"items": bad}))
    if n <= 2 * p:
        flags.append(Flag("small_n", f"Only {n} respondents for {p} items: the factor model is unstable.",
                          "caution"))
    flags.extend(_threshold_flags("omega", est))
    a = 1.0 - level
    if ci_method == "wald":
        se = float(om["se_model"][0])
        z = _st.norm.ppf(1.0 - a / 2.0)
        ci_t = (est - z * se, est + z * se)
    elif ci_method == "bootstrap":
        if ordinal:
            raise CipsError("A bootstrap interval for ordinal omega is not offered (it re-estimates every "
                            "polychoric correlation per resample); use ci_method='none'.")
        g = _resolve_rng(seed, rng)
        B = int(n_boot)
        if B < 100:
            raise CipsError(f"The n_boot= argument must be at least 100; got {n_boot!r}.")
        reps = []
        chunk = max(1, int(2**22 // max(X.shape[0], 1)))
        for b0 in range(0, B, chunk):
            cnt = g.multinomial(X.shape[0], np.full(X.shape[0], 1.0 / X.shape[0]), size=min(chunk, B - b0))
            Sb = _boot_covariances(X, w, cnt.astype(float))
            fb = _fit_one_factor(Sb)
            ob = _omega_from_fit(fb, Sb, np.full(Sb.shape[0], n_eff))
            vals = np.where(fb["converged"], ob[key], np.nan)
            reps.append(vals)
        reps = np.concatenate(reps)
        bad = ~np.isfinite(reps)
        if bad.any():
            flags.append(Flag("bootstrap_failed", f"{int(bad.sum())} of {B} bootstrap refits failed or did not "
                              "converge; they were left out.", "caution"))
        lo, hi = np.quantile(reps[~bad], [a / 2.0, 1.0 - a / 2.0])
        ci_t = (float(lo), float(hi))
        se = float(np.std(reps[~bad], ddof=1))
    else:
        ci_t, se = (math.nan, math.nan), math.nan
    lam, psi = fit["lam"][0], fit["psi"][0]
    with np.errstate(invalid="ignore"):
        std_l = lam / np.sqrt(lam**2 + psi)
    loadings = pd.DataFrame({"item": names, "loading": lam, "residual_variance": psi, "std_loading": std_l})
    prov = Provenance.build("omega", data=df, seed=seed,
                            options={"denominator": denominator, "ci": level, "ci_method": ci_method,
                                     "missing": missing, "ordinal": ordinal,
                                     "n_boot": n_boot if ci_method == "bootstrap" else None,
                                     "weights": weights if isinstance(weights, str) else (None if weights is None else "array")})
    return OmegaResult(omega=est, denominator=denominator, omega_model=float(om["omega_model"][0]),
                       omega_observed=float(om["omega_observed"][0]), ci=(float(ci_t[0]), float(ci_t[1])),
                       ci_level=level, ci_method=ci_method, se=se, n=n, n_items=p,
                       converged=bool(fit["converged"][0]), iterations=int(fit["iterations"][0]),
                       missing=missing, weighted=w is not None, ordinal=ordinal, loadings=loadings,
                       provenance=prov, flags=tuple(flags))


# ============================================================================ ordinal (polychoric)
def _polychoric(df: pd.DataFrame, missing: str) -> tuple[np.ndarray, list[Flag]]:
    """Polychoric correlation matrix (two-step ML) from :func:`cips_stats.factor.polychoric.polychoric`.

    Returns the matrix and the polychoric estimator's warnings (not positive definite,
    correlations at the bound, non-convergence, pairs without data) as flags.
    """
    from .factor.polychoric import polychoric

    res = polychoric(df, missing=missing)
    flags = [Flag(f"polychoric_{f.code}", f"Polychoric step: {f.message}", f.severity, dict(f.where))
             for f in res.flags if f.severity in ("warning", "error")]
    return res.corr.to_numpy(dtype=float), flags


def _ordinal_alpha(rho: np.ndarray) -> float:
    """Ordinal alpha (Zumbo, Gadermann & Zeisser 2007): standardised alpha of the polychoric matrix."""
    p = rho.shape[0]
    return float(p / (p - 1.0) * (1.0 - p / rho.sum())) if np.isfinite(rho).all() else math.nan


# ============================================================================ by_cell
_ITEM_COLUMNS = ["item", "n", "mean", "sd", "missing_share", "raw_r", "r_drop", "alpha_if_dropped"]
_SCALE_STATS = ["alpha", "std_alpha", "ci_low", "ci_high", "omega", "omega_ci_low", "omega_ci_high",
                "ordinal_alpha", "ordinal_omega", "n", "n_eff", "mean_r", "se"]


def _add_flag(flags: np.ndarray, mask: np.ndarray, code: str) -> None:
    if np.any(mask):
        flags[mask] = flags[mask] + (code + ";")


def _scale_stats(mom: Mapping[str, np.ndarray], p: int, *, level: float, ci_method: str, do_omega: bool,
                 denominator: str, min_n: int, weighted: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every scale-level and item-level statistic over a stack of K (cell, scale) moments."""
    n = mom["any_n"]
    K = n.shape[0]
    cov = _covariances(mom)
    it = _item_total(mom)
    n_eff = it["n_eff"] if weighted else n.copy()
    k = _alpha_kernel(cov, n_eff, level, ci_method)
    out = {"alpha": k["alpha"], "std_alpha": k["std_alpha"], "ci_low": k["ci_low"], "ci_high": k["ci_high"],
           "se": k["ase"], "n": n, "n_eff": n_eff, "mean_r": k["mean_r"]}
    flags = np.full(K, "", dtype=object)
    nj = it["n_item"]
    with np.errstate(invalid="ignore"):
        var = np.diagonal(cov, axis1=1, axis2=2)
        no_resp = n == 0
        few = (n > 0) & (n < 2)
        item_missing = (nj < 2).any(axis=1) & ~no_resp & ~few
        scale2 = np.maximum(1.0, np.abs(it["mean"]) ** 2)
        const = ((var <= 1e-12 * scale2) & (nj >= 2)).any(axis=1) & ~no_resp & ~few
        _add_flag(flags, no_resp, "no_respondents")
        _add_flag(flags, few, "too_few_respondents")
        _add_flag(flags, item_missing, "item_unanswered")
        _add_flag(flags, const, "constant_item")
        _add_flag(flags, (n >= 2) & (n <= p), "n_below_items")
        _add_flag(flags, (n > p) & (n < min_n), "small_n")
        _add_flag(flags, k["non_psd"], "non_psd")
        _add_flag(flags, out["alpha"] < THRESHOLDS["poor"], "alpha_poor")
        _add_flag(flags, (out["alpha"] >= THRESHOLDS["poor"]) & (out["alpha"] < THRESHOLDS["questionable"]),
                  "alpha_questionable")
    if p == 2:
        _add_flag(flags, np.ones(K, dtype=bool), "two_items")
    if do_omega:
        om = np.full(K, np.nan)
        om_lo = np.full(K, np.nan)
        om_hi = np.full(K, np.nan)
        if p >= 3:
            okc = np.isfinite(cov).all(axis=(1, 2)) & (n > p)
            fit = _fit_one_factor(np.where(okc[:, None, None], cov, np.eye(p)))
            fit["converged"] = fit["converged"] & okc
            fit["estimable"] = fit["estimable"] & okc
            o = _omega_from_fit(fit, cov, n_eff)
            key = "omega_model" if denominator == "model" else "omega_observed"
            est_ok = fit["estimable"] & fit["converged"]
            om = np.where(est_ok, o[key], np.nan)
            if denominator == "model":
                z = _st.norm.ppf(0.5 + level / 2.0)
                om_lo = om - z * o["se_model"]
                om_hi = om + z * o["se_model"]
            with np.errstate(invalid="ignore"):
                _add_flag(flags, fit["estimable"] & ~fit["converged"], "omega_not_converged")
                _add_flag(flags, ~fit["estimable"] & (n > p), "omega_not_estimable")
                _add_flag(flags, est_ok & (fit["psi"] < 0).any(axis=1), "heywood")
                _add_flag(flags, om < THRESHOLDS["poor"], "omega_poor")
                _add_flag(flags, (om >= THRESHOLDS["poor"]) & (om < THRESHOLDS["questionable"]),
                          "omega_questionable")
        else:
            _add_flag(flags, np.ones(K, dtype=bool), "omega_unidentified")
        out["omega"], out["omega_ci_low"], out["omega_ci_high"] = om, om_lo, om_hi
    out["flags"] = flags
    with np.errstate(invalid="ignore", divide="ignore"):
        miss = 1.0 - nj / np.where(mom["rows"] > 0, mom["rows"], np.nan)[:, None]
    items = {"n": nj, "mean": it["mean"], "sd": it["sd"], "missing_share": miss,
             "raw_r": it["raw_r"], "r_drop": k["r_drop"], "alpha_if_dropped": k["alpha_if_dropped"]}
    return out, items


def _ordinal_cells(X: np.ndarray, starts: np.ndarray, p: int, missing: str,
                   denominator: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ordinal alpha and omega of every cell of one scale (rows of ``X`` sorted by cell).

    One polychoric matrix per cell (the expensive part; each call is vectorised over
    item pairs), then the one-factor fits batched over all cells.
    """
    C = starts.size
    rho = np.full((C, p, p), np.nan)
    flags = np.full(C, "", dtype=object)
    bounds = np.r_[starts, X.shape[0]]
    for c in range(C):
        Xc = X[bounds[c]:bounds[c + 1]]
        Xc = Xc[~np.isnan(Xc).all(axis=1)]
        if Xc.shape[0] < 2:
            flags[c] = "ordinal_not_estimable"
            continue
        try:
            r, pf = _polychoric(pd.DataFrame(Xc), missing)
        except DataError:
            flags[c] = "ordinal_not_estimable"
            continue
        rho[c] = r
        if pf:
            flags[c] = ";".join(f.code for f in pf)
    with np.errstate(invalid="ignore", divide="ignore"):
        oalpha = p / (p - 1.0) * (1.0 - p / rho.sum(axis=(1, 2)))
    oomega = np.full(C, np.nan)
    if p >= 3:
        ok = np.isfinite(rho).all(axis=(1, 2))
        if ok.any():
            fit = _fit_one_factor(np.where(ok[:, None, None], rho, np.eye(p)))
            o = _omega_from_fit(fit, rho, np.full(C, 1.0))
            key = "omega_model" if denominator == "model" else "omega_observed"
            good = ok & fit["estimable"] & fit["converged"]
            oomega = np.where(good, o[key], np.nan)
            bad = ok & ~good
            flags[bad] = np.array([f + ";ordinal_omega_failed" if f else "ordinal_omega_failed"
                                   for f in flags[bad]], dtype=object)
    return oalpha, oomega, flags


def _raise_infinite(frame: pd.DataFrame, cols: Sequence[str], column: Any) -> None:
    """Raise DataError naming the rows, columns and values of the infinite answers."""
    bad = [(r, c) for c in dict.fromkeys(cols) for r in np.flatnonzero(np.isinf(column(c)))[:20]][:20]
    raise DataError("The items hold infinite values.",
                    [Problem("item_finite", "Item answers must be finite.", "<DataFrame>",
                             int(r), c, float(column(c)[r])) for r, c in bad])


def by_cell(data: Any, *, by: Sequence[str] = ("country", "iteration", "group"),
            items: Mapping[str, Sequence[str]] | None = None, factors: Iterable[str] | None = None,
            ci: float = 0.95, ci_method: str = "feldt", missing: str = "pairwise", weights: str | None = None,
            omega: bool = True, denominator: str = "model", ordinal: bool = False, min_n: int = MIN_N,
            level: str = "scale", chunk_elements: int = _CHUNK_ELEMENTS) -> pd.DataFrame:
    """Alpha, its CI, omega and item diagnostics for every factor in every cell, in one vectorised pass.

    Parameters
    ----------
    data : SurveyData or pandas.DataFrame
        A :class:`~cips_stats.SurveyData` (items of a factor for a group come from
        ``data.instrument.factor_items(factor, group=g)``; all key factors and indices),
        or a respondent DataFrame together with ``items=``.
    by : sequence of str, default ("country", "iteration", "group")
        Key columns that define a cell.
    items : mapping of str to list of str, optional
        ``{"factor": [columns]}`` for a plain DataFrame (with SurveyData: overrides the instrument).
    factors : iterable of str, optional
        Restrict to these factors.
    ci : float, default 0.95
        Confidence level.
    ci_method : {"feldt", "duhachek"}, default "feldt"
        Interval for alpha (closed form; the bootstrap is offered for single scales).
    missing : {"pairwise", "listwise"}, default "pairwise"
    weights : str, optional
        Column of sampling weights (``"weight"`` for the design weights of SurveyData).
    omega : bool, default True
        Also fit the one-factor model in every cell (``omega``, with a Wald interval
        ``omega_ci_low``/``omega_ci_high`` when ``denominator="model"``).
    denominator : {"model", "observed"}, default "model"
        Omega variant (see :func:`omega`).
    ordinal : bool, default False
        Also ``ordinal_alpha`` and ``ordinal_omega`` per cell from polychoric correlations
        (:func:`cips_stats.factor.polychoric.polychoric`, one call per cell, so much slower;
        unweighted even when ``weights=`` is given, flagged ``ordinal_unweighted``).
    min_n : int, default 30
        Cells with fewer respondents are flagged ``small_n``.
    level : {"scale", "items"}, default "scale"
        ``"scale"``: one row per cell and factor; ``"items"``: one row per cell, factor and
        item (``n``, ``mean``, ``sd``, ``missing_share``, ``raw_r``, ``r_drop``,
        ``alpha_if_dropped``).
    chunk_elements : int
        Memory bound: the zero-padded blocks of rows processed at once hold at most this many
        float64 elements (default 2**19, 4 MiB).

    Returns
    -------
    pandas.DataFrame
        Key columns (``by`` then ``factor``), then ``alpha``, ``std_alpha``, ``ci_low``,
        ``ci_high``, ``omega``, ``omega_ci_low``, ``omega_ci_high`` (with ``denominator="model"``),
        ``n``, ``n_eff``,
        ``n_items``, ``mean_r``, ``se`` (Duhachek), ``flags`` (``;``-separated codes that
        explain every NaN and warn about low reliability or small cells).  Provenance
        is in ``.attrs["provenance"]``.

    Notes
    -----
    Flags: ``alpha_questionable``/``omega_questionable`` (.60 <= value < .70),
    ``alpha_poor``/``omega_poor`` (< .60), ``small_n`` (n < ``min_n``),
    ``n_below_items`` (n <= items: singular covariance, omega not fitted),
    ``too_few_respondents`` (n < 2), ``no_respondents``, ``item_unanswered``,
    ``constant_item``, ``non_psd``, ``heywood``, ``omega_not_converged``,
    ``omega_unidentified`` (fewer than 3 items), ``two_items``.
    Each cell's statistics equal :func:`cronbach_alpha`/:func:`omega` on that cell's rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=(600, 1))
    >>> df = pd.DataFrame(np.round(3 + f + rng.normal(size=(600, 4))), columns=list("abcd"))
    >>> df["country"] = np.repeat(["X", "Y", "Z"], 200)
    >>> out = cs.reliability.by_cell(df, by=("country",), items={"f": list("abcd")})
    >>> out[["country", "factor", "n", "n_items"]].to_string(index=False)
    'country factor   n  n_items\\n      X      f 200        4\\n      Y      f 200        4\\n      Z      f 200        4'
    """
    lev = _check_level(ci)
    _check_choice("ci_method", ci_method, ("feldt", "duhachek"))
    _check_choice("missing", missing, _MISSING)
    _check_choice("denominator", denominator, _DENOMS)
    _check_choice("level", level, ("scale", "items"))
    by = list(by)
    instrument = getattr(data, "instrument", None)
    frame = data.frame if hasattr(data, "frame") and instrument is not None else data
    if not isinstance(frame, pd.DataFrame):
        raise DataError("The data= argument must be a SurveyData or a pandas DataFrame.",
                        [Problem("data_type", "Unsupported input.", "<input>", value=type(data).__name__)])
    if not by:
        raise CipsError("The by= argument needs at least one key column.")
    missing_cols = [c for c in by if c not in frame.columns]
    if missing_cols:
        raise DataError(f"The by= columns {missing_cols} are not in the data.",
                        [Problem("by_column", "Key column not found.", "<DataFrame>", column=c) for c in missing_cols])
    if items is None and instrument is None:
        raise CipsError("With a plain DataFrame, give items={'factor': [columns]}.")
    factorized: dict[str, tuple[Any, Any]] = {}
    # factor -> {group value or None: item list}
    if items is not None:
        spec = {str(f): {None: [str(c) for c in cols]} for f, cols in items.items()}
    else:
        if "group" in frame.columns:
            if "group" in by:           # the key column is factorized anyway: keep it for the cells
                factorized["group"] = pd.factorize(frame["group"], sort=True)
                present = set(factorized["group"][1])
            else:
                present = set(frame["group"].unique())
            groups_present = [g for g in instrument.group_ids if g in present]
        else:
            groups_present = []
        spec = {}
        for f in instrument.factor_ids:
            if "group" in by:
                spec[f] = {g: list(instrument.factor_items(f, group=g)) for g in groups_present}
            else:
                spec[f] = {None: [i for i in instrument.factor_items(f)
                                  if all(i in instrument.factor_items(f, group=g) for g in groups_present)]}
    if factors is not None:
        wanted = [str(f) for f in factors]
        unknown = [f for f in wanted if f not in spec]
        if unknown:
            raise CipsError(f"Unknown factors {unknown}; known: {list(spec)}.")
        spec = {f: spec[f] for f in wanted}
    all_cols = list(dict.fromkeys(c for g in spec.values() for cols in g.values() for c in cols))
    absent = [c for c in all_cols if c not in frame.columns]
    if absent:
        raise DataError(f"Item columns {absent} are not in the data.",
                        [Problem("item_column", "Item column not found.", "<DataFrame>", column=c) for c in absent])
    w_all = None
    if weights is not None:
        if weights not in frame.columns:
            raise DataError(f"The weights= column {weights!r} is not in the data.",
                            [Problem("weights_column", "Column not found.", "<DataFrame>", column=weights)])
        w_all, _ = _weights_vector(frame[weights].to_numpy(dtype=float), frame, len(frame))
    # cells: factorize the key columns once; cells are numbered in sorted key order
    combined = np.zeros(len(frame), dtype=np.int64)
    key_codes, key_uniques = [], []
    for col in by:
        cc, uu = factorized[col] if col in factorized else pd.factorize(frame[col], sort=True)
        cc = np.asarray(cc)
        if np.any(cc < 0):
            bad = np.flatnonzero(cc < 0)[:20]
            raise DataError(f"Some rows have a missing key value in column {col!r}.",
                            [Problem("key_missing", "Cell key is missing.", "<DataFrame>", int(r), col)
                             for r in bad])
        combined = combined * max(len(uu), 1) + cc
        key_codes.append(cc)
        key_uniques.append(uu)
    total = int(np.prod([max(len(u), 1) for u in key_uniques], dtype=np.float64))
    if total <= 4 * len(frame) + 1024:
        # compact the combined codes without sorting (they are bounded)
        counts_all = np.bincount(combined, minlength=total)
        present = counts_all > 0
        newcode = np.cumsum(present) - 1
        codes = newcode[combined]
        cell_ids = np.flatnonzero(present)
        cell_rows = counts_all[present]
    else:
        cell_ids, codes, cell_rows = np.unique(combined, return_inverse=True, return_counts=True)
        codes = codes.reshape(-1)
    # each key column's code for every cell (decoded from the combined code)
    cell_key_code: dict[str, np.ndarray] = {}
    rem = cell_ids.copy()
    for col, uu in reversed(list(zip(by, key_uniques))):
        size = max(len(uu), 1)
        cell_key_code[col] = rem % size
        rem //= size
    n_cells = cell_ids.size
    dtypes = dict(zip(frame.columns, frame.dtypes))
    all_numeric = all(dtypes[c].kind in "iuf" if isinstance(dtypes[c], np.dtype)
                      else (pd.api.types.is_numeric_dtype(dtypes[c]) and not pd.api.types.is_bool_dtype(dtypes[c]))
                      for c in all_cols)
    if not all_numeric:
        _check_numeric_columns(frame, all_cols)
    group_keys = list(dict.fromkeys(g for per in spec.values() for g in per))
    if "group" in by:
        gpos = by.index("group")
        g_uniq = list(key_uniques[gpos])
        grp_of_cell = cell_key_code["group"]
    # one stable counting order of the rows by cell, shared by every group and factor
    row_order = np.argsort(codes.astype(np.int32) if n_cells < 2**31 else codes, kind="stable")
    sorted_codes = codes[row_order]
    col_cache: dict[str, np.ndarray] = {}

    def column(c: str) -> np.ndarray:
        if c not in col_cache:
            s = frame[c]
            if not all_numeric and not pd.api.types.is_numeric_dtype(s):
                s = pd.to_numeric(s, errors="coerce")
            col_cache[c] = s.to_numpy(dtype=float, na_value=np.nan)
        return col_cache[c]

    blocks: list[dict[str, Any]] = []
    item_blocks: list[dict[str, Any]] = []
    fac_order = {f: i for i, f in enumerate(spec)}
    listwise = missing == "listwise"
    for g in group_keys:
        if g is None:
            cell_sel = np.arange(n_cells)
        else:
            gcode = g_uniq.index(g) if g in g_uniq else -1
            cell_sel = np.flatnonzero(grp_of_cell == gcode)
        if cell_sel.size == 0:
            continue
        C = cell_sel.size
        sizes = cell_rows[cell_sel]
        # the group's rows in cell order (cells of one group are not contiguous in code order)
        rows_sorted = row_order if g is None else row_order[(grp_of_cell == gcode)[sorted_codes]]
        n_g = rows_sorted.size
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        # zero-padded pieces: each cell's rows cut into pieces of `piece` rows
        piece = _piece_length(sizes)
        npieces = np.maximum(1, -(-sizes // piece))
        first_piece = np.r_[0, np.cumsum(npieces)[:-1]]
        V = int(npieces.sum())
        piece_cell = np.repeat(np.arange(C), npieces)
        cell_of_row = np.repeat(np.arange(C), sizes)
        slot = first_piece[cell_of_row] * piece + (np.arange(n_g) - starts[cell_of_row])
        # source row of every slot (row 0 in the padding, which is then set to NaN)
        src = np.zeros(V * piece, dtype=np.intp)
        src[slot] = rows_sorted
        keep = np.zeros(V * piece, dtype=bool)
        keep[slot] = True
        zero_w = None
        Wb = None
        if w_all is not None:
            wg = w_all[rows_sorted]
            Wb = np.zeros(V * piece)
            Wb[slot] = wg
            zero_w = slot[wg <= 0]
            keep[zero_w] = False
        drop = np.flatnonzero(~keep)
        by_p: dict[int, list[tuple[str, list[str]]]] = {}
        for f, per in spec.items():
            if g in per:
                by_p.setdefault(len(per[g]), []).append((f, per[g]))
        gcols = list(dict.fromkeys(c for fl in by_p.values() for _, cols in fl for c in cols))
        # one centring constant for every item of the group (from a sample of rows): keeps the
        # sums of squares accurate for data far from zero
        samp = rows_sorted[:: max(1, n_g // 256)]
        sample = np.stack([column(c)[samp] for c in gcols])
        sample = sample[np.isfinite(sample)]
        centre = float(sample.mean()) if sample.size else 0.0
        del sample
        for p, flist in by_p.items():
            F = len(flist)
            cell_idx = np.repeat(cell_sel, F)
            fnames = np.tile(np.array([fac_order[f] for f, _ in flist], dtype=np.intp), C)
            if p < 2:
                blk = {c: np.full(C * F, np.nan) for c in _SCALE_STATS}
                blk.update(cell=cell_idx, factor=fnames, n_items=np.full(C * F, p),
                           flags=np.full(C * F, "too_few_items", dtype=object))
                blocks.append(blk)
                continue
            fcols = [[column(c) for c in cols] for _, cols in flist]
            mom = _padded_moments(fcols, src, drop, Wb, piece_cell, C, sizes, centre, listwise=listwise,
                                  chunk_elements=chunk_elements)
            if mom["saw_inf"]:
                _raise_infinite(frame, [c for _, cols in flist for c in cols], column)
            res, itm = _scale_stats(mom, p, level=lev, ci_method=ci_method, do_omega=omega,
                                    denominator=denominator, min_n=int(min_n), weighted=w_all is not None)
            if ordinal:
                oa = np.full((C, F), np.nan)
                oo = np.full((C, F), np.nan)
                ofl = np.full((C, F), "", dtype=object)
                for fi in range(F):
                    Xf = np.column_stack([x[rows_sorted] for x in fcols[fi]])
                    if listwise:
                        Xf[np.isnan(Xf).any(axis=1)] = np.nan
                    if zero_w is not None and zero_w.size:
                        Xf[wg <= 0] = np.nan
                    oa[:, fi], oo[:, fi], ofl[:, fi] = _ordinal_cells(Xf, starts, p, missing, denominator)
                if w_all is not None:
                    ofl = np.where(ofl == "", "ordinal_unweighted", ofl + ";ordinal_unweighted")
                res["ordinal_alpha"], res["ordinal_omega"] = oa.reshape(-1), oo.reshape(-1)
                res["flags"] = res["flags"] + np.where(ofl.reshape(-1) == "", "", ofl.reshape(-1) + ";")
            blk = {c: res.get(c, np.full(C * F, np.nan)) for c in _SCALE_STATS}
            fl = res["flags"].astype(object)
            nz = np.flatnonzero(fl != "")
            if nz.size:
                fl[nz] = [x[:-1] for x in fl[nz]]                       # drop the trailing ";"
            blk.update(cell=cell_idx, factor=fnames, n_items=np.full(C * F, p), flags=fl)
            blocks.append(blk)
            if level == "items":
                names = np.array([cols for _, cols in flist], dtype=object)               # (F, p)
                ib = {c: np.asarray(itm[c]).reshape(-1) for c in _ITEM_COLUMNS[1:]}
                ib.update(cell=np.repeat(cell_idx, p), factor=np.repeat(fnames, p),
                          item=np.tile(names.reshape(-1), C), pos=np.tile(np.arange(p), C * F))
                item_blocks.append(ib)
    cols_scale = ["alpha", "std_alpha", "ci_low", "ci_high"]
    if omega:
        # the Wald interval exists for the model-implied omega only (no NaN columns otherwise)
        cols_scale += ["omega", "omega_ci_low", "omega_ci_high"] if denominator == "model" else ["omega"]
    if ordinal:
        cols_scale += ["ordinal_alpha", "ordinal_omega"]
    cols_scale += ["n", "n_eff", "n_items", "mean_r", "se", "flags"]
    if level == "items":
        src, stat_cols = item_blocks, ["item"] + _ITEM_COLUMNS[1:]
    else:
        src, stat_cols = blocks, cols_scale
    names_cols = ["cell", "factor"] + stat_cols + (["pos"] if level == "items" else [])
    if src:
        cat = {c: np.concatenate([b[c] for b in src]) for c in names_cols}
    else:
        cat = {c: np.zeros(0, dtype=np.intp if c in ("cell", "factor", "pos") else float) for c in names_cols}
    # cells are numbered in sorted key order (np.unique of the sorted factorizations), so a
    # lexicographic sort of (cell, factor order, item position) gives the tidy order
    keys_sort = (cat["pos"], cat["factor"], cat["cell"]) if level == "items" else (cat["factor"], cat["cell"])
    order = np.lexsort(keys_sort)
    cell_o = cat["cell"].astype(np.intp)[order]
    columns: dict[str, Any] = {c: key_uniques[i].take(cell_key_code[c][cell_o]) for i, c in enumerate(by)}
    fac_names = np.array(list(spec), dtype=object)
    columns["factor"] = fac_names[cat["factor"][order]]
    for c in stat_cols:
        columns[c] = cat[c][order]
    columns["n"] = np.nan_to_num(columns["n"].astype(float), nan=0.0).astype(int)
    if "n_items" in columns:
        columns["n_items"] = columns["n_items"].astype(int)
    out = pd.DataFrame(columns)
    for c in by:                       # keep the key columns' dtypes (e.g. integer iteration)
        if out[c].dtype != frame[c].dtype:
            try:
                out[c] = out[c].astype(frame[c].dtype)
            except (TypeError, ValueError):
                pass
    out.attrs["provenance"] = Provenance.build(
        "reliability.by_cell", data=data if instrument is not None else None,
        options={"by": by, "ci": lev, "ci_method": ci_method, "missing": missing, "weights": weights,
                 "omega": omega, "denominator": denominator, "ordinal": ordinal, "min_n": int(min_n),
                 "level": level, "thresholds": dict(THRESHOLDS)}).to_dict()
    return out
