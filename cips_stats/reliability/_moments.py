"""Pairwise sufficient statistics of item sets, for one scale or every cell at once.

The kernels here work on plain arrays; nothing in this module knows about surveys.
:func:`padded_moments` gathers each cell's rows into zero-padded pieces and forms every
pairwise sum with one batched matrix product per piece (BLAS); :func:`covariances`
and :func:`item_total` turn the sums into covariance matrices and item statistics.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

# Bound on the elements of the (rows x items x items) product arrays held at once
# (a padded block of this many float64 elements: 4 MiB; a few arrays of that order are alive at once).
CHUNK_ELEMENTS = 2**19


def _piece_length(sizes: np.ndarray) -> int:
    """Piece length (rows) that wastes least zero padding, plus a per-piece overhead worth 16 rows."""
    cand = np.array([16, 24, 32, 48, 64, 96, 128, 192, 256])
    cost = (np.maximum(1, -(-sizes[None, :] // cand[:, None])) * (cand[:, None] + 16)).sum(axis=1)
    piece = int(cand[int(np.argmin(cost))])
    return int(max(1, min(piece, sizes.max(initial=1))))


def _padded_moments(cols: Sequence[Sequence[np.ndarray]], src: np.ndarray, drop: np.ndarray,
                    Wb: np.ndarray | None, piece_cell: np.ndarray, C: int, sizes: np.ndarray, shift: float,
                    *, listwise: bool = False, chunk_elements: int = CHUNK_ELEMENTS) -> dict[str, np.ndarray]:
    """Pairwise sums of every (cell, scale), gathered straight from the item columns into padded pieces.

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
    about ``chunk_elements`` elements, so memory stays bounded.

    Returns arrays over the K = C * F (cell, scale) combinations, cell-major (index
    ``c * F + f``): ``cnt[k,j,l]`` rows answering both j and l; ``sw`` the same weighted;
    ``sx[k,j,l]`` the weighted sum of item j over those rows; ``sxx`` the weighted
    cross-products; ``st[k,j]``, ``stt[k,j]``, ``sxt[k,j]`` (sums of t, t^2 and x_j t over
    rows answering j); ``any_n`` (rows answering at least one item), ``any_w``, ``any_w2``,
    ``any_t``, ``any_tt``; ``rows`` (rows of the cell); the centring constants ``shift`` and
    ``tshift``; and ``saw_inf`` (an infinite answer was met).
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


def _bootstrap_statistic(X: np.ndarray, w: np.ndarray | None, n_boot: int, seed: int,
                         statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``statistic`` of the covariance matrices of ``n_boot`` resamples of the rows of ``X``.

    Resamples are drawn as multinomial counts (same generator stream for alpha and omega)
    in chunks of at most 2**22 count elements; ``statistic`` maps a (b, p, p) stack to b values.
    """
    n = X.shape[0]
    g = np.random.default_rng(seed)
    reps = []
    chunk = max(1, int(2**22 // max(n, 1)))
    for b0 in range(0, n_boot, chunk):
        cnt = g.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - b0))
        reps.append(statistic(_boot_covariances(X, w, cnt.astype(float))))
    return np.concatenate(reps)


def _percentile_interval(reps: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval at ``level`` of the replicates (all finite)."""
    a = 1.0 - level
    lo, hi = np.quantile(reps, [a / 2.0, 1.0 - a / 2.0])
    return float(lo), float(hi)


def _scale_moments(X: np.ndarray, w: np.ndarray | None) -> dict[str, np.ndarray]:
    """The sums of :func:`_padded_moments` for one scale: ``X`` (n, p) rows of one cell, ``w`` its weights.

    Rows of zero weight count as unanswered.  The centring constant is the mean of the
    items' means, which keeps the sums of squares accurate for codes far from zero.
    """
    n, p = X.shape
    sizes = np.array([n])
    piece = _piece_length(sizes)
    V = max(1, -(-n // piece))
    src = np.arange(V * piece, dtype=np.intp)
    keep = src < n
    src[~keep] = 0
    Wb = None
    if w is not None:
        Wb = np.zeros(V * piece)
        Wb[:n] = w
        keep[:n] &= w > 0
    with np.errstate(invalid="ignore"):
        means = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0) if n else np.zeros(p)
    centre = float(np.nanmean(means)) if np.isfinite(means).any() else 0.0
    cols = [[np.ascontiguousarray(X[:, j]) for j in range(p)]]
    return _padded_moments(cols, src, np.flatnonzero(~keep), Wb, np.zeros(V, dtype=np.intp), 1, sizes, centre)
