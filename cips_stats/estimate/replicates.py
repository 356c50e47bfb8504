"""Design-respecting replicate weights: the Rao–Wu rescaling bootstrap and the jackknife.

The replicate weights reproduce the designs of R ``survey``'s
``as.svrepdesign(type="subbootstrap")`` (Rao–Wu rescaling bootstrap),
``type="bootstrap"`` (Canty–Davison) and ``type="JK1"``/``"JKn"``.  Generation
is vectorised: the with-replacement draws of every stratum are made at once for
a whole chunk of replicates with one call to the random generator, and the
multinomial counts come from one ``np.bincount``; there is no Python loop over
strata or replicates.  Chunks bound the memory, and the numbers are the same
whatever the chunk size (the generator is consumed replicate by replicate in
the same order).

Examples
--------
>>> import numpy as np
>>> from cips_stats.estimate.replicates import rao_wu_weights, rao_wu_scale
>>> w = np.ones(6)
>>> rw = rao_wu_weights(weight=w, strata=[1, 1, 1, 2, 2, 2], n_boot=4, seed=1)
>>> rw.shape
(4, 6)
>>> np.allclose(rw[:, :3].sum(axis=1), 3.0)   # (n_h - 1) draws x n_h / (n_h - 1)
True
>>> rao_wu_scale(4)
0.3333333333333333
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..errors import CipsError, DataError, Problem, SingletonPSUError
from ..results import Provenance, Result, resolve_seed

__all__ = [
    "RaoWuPlan",
    "rao_wu_weights",
    "rao_wu_scale",
    "jackknife_weights",
    "JackknifeWeights",
    "replicate_variance",
    "default_chunk_size",
]

_TYPES = ("subbootstrap", "bootstrap")
_LONELY = ("fail", "certainty")
#: Memory budget (bytes) of the uniform draws of one chunk when no chunk size is given.
_CHUNK_BYTES = 32 * 2**20


def _as_rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(resolve_seed(seed))


def _codes(values: Any, name: str, n: int) -> np.ndarray:
    """Integer codes 0..k-1 of a label array (sorted labels), NaN rejected with the rows named."""
    arr = pd.Series(np.asarray(values) if not isinstance(values, pd.Series) else values.to_numpy())
    if len(arr) != n:
        raise DataError(f"{name}= has {len(arr)} values but weights has {n}.",
                        [Problem("length_mismatch", f"{name}= must have one value per row.", column=name,
                                 value=len(arr))])
    bad = np.flatnonzero(arr.isna().to_numpy())
    if bad.size:
        raise DataError(f"{name}= has {bad.size} missing values.",
                        [Problem("design_missing", f"Missing {name} label.", row=int(r) + 1, column=name)
                         for r in bad[:50]])
    codes, _ = pd.factorize(arr, sort=True)
    return codes.astype(np.intp)


def default_chunk_size(n_draws: int, budget_bytes: int = _CHUNK_BYTES) -> int:
    """Replicates per chunk so that one chunk's uniform draws fit in ``budget_bytes``.

    Parameters
    ----------
    n_draws : int
        Uniform draws per replicate.
    budget_bytes : int
        Memory of one chunk's draws (float64).

    Returns
    -------
    int
        Between 1 and 4096.

    Examples
    --------
    >>> from cips_stats.estimate.replicates import default_chunk_size
    >>> default_chunk_size(19_000)
    220
    """
    return int(max(1, min(4096, budget_bytes // (8 * max(1, int(n_draws))))))


@dataclass(frozen=True)
class RaoWuPlan:
    """A prepared design for generating bootstrap replicates quickly and repeatedly.

    Build it with :meth:`RaoWuPlan.build`.  Primary sampling units (PSUs) are
    numbered so that each stratum's PSUs are contiguous; ``psu_of_row`` maps the
    input rows to them.

    Attributes
    ----------
    n_rows, n_psu : int
        Rows (respondents) and PSUs.
    psu_of_row : ndarray of intp
        PSU index of each row.
    psu_start, n_h, m_h : ndarray
        Per stratum: first PSU index, number of PSUs and number of draws
        (``n_h - 1`` for the subbootstrap, ``n_h`` for the bootstrap, 0 for a
        singleton stratum taken with certainty).
    psu_multiplier : ndarray of float64
        Per PSU: the rescaling factor applied to its count (``n_h/(n_h - 1)``
        for the subbootstrap, 1 otherwise).
    psu_fixed : ndarray of bool
        PSUs of certainty strata: their count is 1 in every replicate.
    slot_start, slot_n : ndarray of float64
        Per draw slot (``sum(m_h)`` of them, stratum by stratum): first PSU of
        its stratum and the stratum's ``n_h``.
    bootstrap_type : str
        ``"subbootstrap"`` or ``"bootstrap"``.
    rows_are_psus : bool
        True when every row is its own PSU (no clusters).
    singleton_strata : tuple
        Labels of strata with a single PSU (kept with certainty when
        ``lonely_psu="certainty"``).
    """

    n_rows: int
    n_psu: int
    psu_of_row: np.ndarray
    psu_start: np.ndarray
    n_h: np.ndarray
    m_h: np.ndarray
    psu_multiplier: np.ndarray
    psu_fixed: np.ndarray
    slot_start: np.ndarray
    slot_n: np.ndarray
    bootstrap_type: str
    rows_are_psus: bool
    singleton_strata: tuple = ()

    @property
    def n_draws(self) -> int:
        """Draws per replicate (``sum(m_h)``)."""
        return int(self.slot_n.size)

    @classmethod
    def build(cls, n_rows: int, *, strata: Any = None, cluster: Any = None, bootstrap_type: str = "subbootstrap",
              lonely_psu: str = "fail") -> "RaoWuPlan":
        """Prepare a stratified (clustered) design.

        Parameters
        ----------
        n_rows : int
            Number of rows.
        strata, cluster : array-like, optional
            Stratum and PSU labels per row.  Cluster labels are read within
            strata (R ``svydesign(nest=TRUE)``).  Without clusters each row is
            a PSU; without strata there is one stratum.
        bootstrap_type : {"subbootstrap", "bootstrap"}
            Rao–Wu with ``n_h - 1`` draws, or Canty–Davison with ``n_h`` draws.
        lonely_psu : {"fail", "certainty"}
            What to do with a stratum of one PSU: raise
            :class:`~cips_stats.errors.SingletonPSUError`, or keep it with
            certainty (weight unchanged in every replicate, no variance
            contribution).
        """
        if bootstrap_type not in _TYPES:
            raise CipsError(f"bootstrap_type= must be one of {_TYPES}; got {bootstrap_type!r}.")
        if lonely_psu not in _LONELY:
            raise CipsError(f"lonely_psu= must be one of {_LONELY}; got {lonely_psu!r}.")
        n = int(n_rows)
        s_codes = np.zeros(n, dtype=np.intp) if strata is None else _codes(strata, "strata", n)
        s_labels = None if strata is None else pd.factorize(pd.Series(np.asarray(strata)), sort=True)[1]
        if cluster is None:
            order = np.argsort(s_codes, kind="stable")
            psu_of_row = np.empty(n, dtype=np.intp)
            psu_of_row[order] = np.arange(n)
            stratum_of_psu = s_codes[order]
            rows_are_psus = True
        else:
            c_codes = _codes(cluster, "cluster", n)
            pair = s_codes.astype(np.int64) * (int(c_codes.max(initial=0)) + 1) + c_codes
            uniq, psu_of_row = np.unique(pair, return_inverse=True)   # sorted: stratum-major
            psu_of_row = psu_of_row.astype(np.intp)
            stratum_of_psu = (uniq // (int(c_codes.max(initial=0)) + 1)).astype(np.intp)
            rows_are_psus = uniq.size == n
        n_strata = int(stratum_of_psu.max(initial=-1)) + 1
        n_h = np.bincount(stratum_of_psu, minlength=n_strata).astype(np.int64)
        psu_start = np.concatenate(([0], np.cumsum(n_h)[:-1])).astype(np.int64)
        single = n_h == 1
        singles: tuple = ()
        if single.any():
            idx = np.flatnonzero(single)
            singles = tuple((s_labels[i] if s_labels is not None else "(all)") for i in idx)
            if lonely_psu == "fail":
                shown = ", ".join(repr(s) for s in singles[:20])
                more = f" and {len(singles) - 20} more" if len(singles) > 20 else ""
                raise SingletonPSUError(
                    f"{len(singles)} stratum/strata hold a single PSU ({shown}{more}), so their variance "
                    "cannot be estimated. Remedies: collapse strata, or lonely_psu=\"certainty\" to "
                    "treat them as taken with certainty (R: options(survey.lonely.psu=\"certainty\")).",
                    [Problem("singleton_psu", "Stratum with a single PSU.", column="strata", value=s)
                     for s in singles])
        if bootstrap_type == "subbootstrap":
            m_h = np.where(single, 0, n_h - 1)
            mult_h = np.where(single, 1.0, n_h / np.maximum(n_h - 1, 1))
        else:
            m_h = np.where(single, 0, n_h)
            mult_h = np.ones(n_strata)
        slot_h = np.repeat(np.arange(n_strata), m_h)
        return cls(
            n_rows=n, n_psu=int(n_h.sum()), psu_of_row=psu_of_row, psu_start=psu_start, n_h=n_h, m_h=m_h,
            psu_multiplier=mult_h[stratum_of_psu].astype(np.float64), psu_fixed=single[stratum_of_psu],
            slot_start=psu_start[slot_h].astype(np.float64), slot_n=n_h[slot_h].astype(np.float64),
            bootstrap_type=bootstrap_type, rows_are_psus=rows_are_psus, singleton_strata=singles,
        )

    def scale(self, n_boot: int) -> float:
        """The variance scale factor that goes with these replicates (see :func:`rao_wu_scale`)."""
        return rao_wu_scale(n_boot, bootstrap_type=self.bootstrap_type, n_h=self.n_h[self.m_h > 0])

    def iter_counts(self, n_boot: int, rng: np.random.Generator, chunk_size: int | None = None, *,
                    positions: np.ndarray | None = None, width: int | None = None,
                    ) -> Iterator[np.ndarray]:
        """Yield the PSU draw counts of consecutive chunks of replicates.

        Parameters
        ----------
        n_boot : int
            Total replicates.
        rng : numpy.random.Generator
            Consumed row by row (replicate by replicate): the counts do not
            depend on ``chunk_size``.
        chunk_size : int, optional
            Replicates per chunk (default: about 32 MB of draws).
        positions, width : optional
            Put PSU ``j``'s count in column ``positions[j]`` of a ``width``-wide
            output (e.g. a padded cell layout); by default column ``j`` of
            ``n_psu``.

        Yields
        ------
        ndarray of int64, shape (chunk, width)
            Counts; certainty PSUs get 1.  Multiply by ``psu_multiplier`` for
            the rescaled weights.
        """
        width = self.n_psu if width is None else int(width)
        cs = default_chunk_size(self.n_draws) if chunk_size is None else int(chunk_size)
        if cs < 1:
            raise CipsError(f"chunk_size= must be a positive integer; got {chunk_size!r}.")
        fixed_cols = np.flatnonzero(self.psu_fixed)
        if positions is not None:
            positions = np.asarray(positions, dtype=np.intp)
            fixed_cols = positions[fixed_cols]
        done = 0
        while done < n_boot:
            bc = min(cs, n_boot - done)
            u = rng.random((bc, self.n_draws))          # one double per draw, replicate-major
            u *= self.slot_n
            u += self.slot_start                           # floor(u*n_h) + start_h, exact in float64
            psu = u.astype(np.intp)
            if positions is not None:
                psu = positions[psu]
            psu += (np.arange(bc, dtype=np.intp) * width)[:, None]
            counts = np.bincount(psu.ravel(), minlength=bc * width).reshape(bc, width)
            if fixed_cols.size:
                counts[:, fixed_cols] = 1
            done += bc
            yield counts

    def iter_multipliers(self, n_boot: int, rng: np.random.Generator, chunk_size: int | None = None,
                         dtype: Any = np.float64) -> Iterator[np.ndarray]:
        """Yield per-row weight multipliers ``count_psu * n_h/(n_h-1)`` in chunks, shape (chunk, n_rows)."""
        mult = self.psu_multiplier.astype(dtype)
        for counts in self.iter_counts(n_boot, rng, chunk_size):
            m = counts.astype(dtype, copy=False) * mult
            yield m if (self.rows_are_psus and _is_identity(self.psu_of_row)) else m[:, self.psu_of_row]


def _is_identity(idx: np.ndarray) -> bool:
    return bool(idx.size == 0 or (idx[0] == 0 and np.all(np.diff(idx) == 1)))


def rao_wu_scale(n_boot: int, *, bootstrap_type: str = "subbootstrap", n_h: Any = None) -> float:
    """Scale factor of the bootstrap variance, as R ``survey`` defines it.

    ``var = scale * sum_b (theta_b - mean(theta))^2``.

    Parameters
    ----------
    n_boot : int
        Number of replicates ``B``.
    bootstrap_type : {"subbootstrap", "bootstrap"}
        ``1/(B - 1)`` for the Rao–Wu subbootstrap (the ``n_h/(n_h-1)``
        rescaling is already in the weights); ``hm/((hm - 1)(B - 1))`` for the
        Canty–Davison bootstrap, with ``hm`` the harmonic mean of the PSUs per
        stratum (``n_h``, required).

    Returns
    -------
    float

    Examples
    --------
    >>> from cips_stats.estimate.replicates import rao_wu_scale
    >>> rao_wu_scale(101)
    0.01
    >>> round(rao_wu_scale(101, bootstrap_type="bootstrap", n_h=[2, 2]), 6)
    0.02
    """
    b = int(n_boot)
    if b < 2:
        raise CipsError(f"n_boot= must be at least 2; got {n_boot!r}.")
    if bootstrap_type == "subbootstrap":
        return 1.0 / (b - 1)
    if bootstrap_type == "bootstrap":
        if n_h is None:
            raise CipsError("bootstrap_type='bootstrap' needs n_h= (PSUs per stratum) for its scale.")
        h = np.asarray(n_h, dtype=float)
        hm = 1.0 / np.mean(1.0 / h)
        return float(hm / ((hm - 1.0) * (b - 1)))
    raise CipsError(f"bootstrap_type= must be one of {_TYPES}; got {bootstrap_type!r}.")


def rao_wu_weights(*, weight: Any, strata: Any = None, cluster: Any = None, n_boot: int,
                   seed: Any = None,
                   chunk_size: int | None = None, bootstrap_type: str = "subbootstrap", lonely_psu: str = "fail",
                   dtype: Any = np.float64) -> np.ndarray | Iterator[np.ndarray]:
    """Bootstrap replicate weights of a stratified cluster design (Rao–Wu rescaling bootstrap).

    Parameters
    ----------
    weight : array-like of float, shape (n,)
        Sampling weights of the rows.
    strata, cluster : array-like, optional
        Stratum and PSU labels per row (clusters read within strata).  Without
        clusters each row is a PSU.
    n_boot : int
        Number of replicates ``B``.
    seed : int, None or numpy.random.Generator
        ``None`` draws a seed from entropy; a Generator is consumed in place.  The result is the same whatever ``chunk_size``.
    chunk_size : int, optional
        When given, return an iterator over chunks of at most ``chunk_size``
        replicates (bounded memory) instead of the full ``(B, n)`` matrix.
    bootstrap_type : {"subbootstrap", "bootstrap"}
        ``"subbootstrap"`` (default): in every stratum draw ``m_h = n_h - 1``
        PSUs with replacement out of ``n_h`` and multiply the weights of a PSU
        drawn ``c`` times by ``c * n_h/(n_h - 1)``: R ``survey``'s
        ``as.svrepdesign(type="subbootstrap")``.  ``"bootstrap"``: draw
        ``n_h`` PSUs, weight ``c`` (Canty & Davison 1999; R's
        ``type="bootstrap"`` without fpc).
    lonely_psu : {"fail", "certainty"}
        Strata with a single PSU raise :class:`~cips_stats.errors.SingletonPSUError`
        unless kept with certainty.
    dtype : numpy dtype
        ``float64`` (default) or ``float32`` (halves the memory; counts and
        rescaling factors are exact in float32 to about 7 digits).

    Returns
    -------
    ndarray of shape (B, n), or iterator of ndarrays of shape (chunk, n)
        Replicate weights: the sampling weight times the rescaled count of the
        row's PSU; zero for PSUs not drawn.

    Notes
    -----
    Rao & Wu (1988): with ``m_h = n_h - 1`` draws the rescaled bootstrap
    variance of a linear statistic equals in expectation the usual
    with-replacement variance estimator ``sum_h n_h/(n_h - 1) sum_i (z_hi -
    zbar_h)^2``.  The variance of an estimate ``theta`` is then
    ``1/(B - 1) * sum_b (theta_b - mean_b theta_b)^2``
    (:func:`rao_wu_scale`, R's ``scale = 1/(B-1)``, ``mse=FALSE``).  With
    R's replicate weights our variance reproduces ``svymean`` on an
    ``as.svrepdesign(type="subbootstrap")`` design to machine precision
    (``tests/reference/replicates_survey.json``).

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.estimate.replicates import rao_wu_weights
    >>> w = np.array([1.0, 2.0, 1.0, 2.0])
    >>> rw = rao_wu_weights(weight=w, strata=["a", "a", "b", "b"], n_boot=3, seed=7)
    >>> sorted(set((rw[:, 0] / w[0]).round(12).tolist()))   # count 0 or 1 (one draw of 2), times 2
    [0.0, 2.0]
    >>> chunks = list(rao_wu_weights(weight=w, strata=["a", "a", "b", "b"], n_boot=3, seed=7, chunk_size=2))
    >>> np.array_equal(np.vstack(chunks), rw)
    True
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 1:
        raise DataError(f"weight= must be one-dimensional; got shape {w.shape}.",
                        [Problem("weights_shape", "Weights must be a vector.", column="weight")])
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise DataError(f"weight= has {bad.size} negative or non-finite values.",
                        [Problem("weight_nonnegative", "Weight must be finite and >= 0.", row=int(r) + 1,
                                 column="weight", value=float(w[r])) for r in bad[:50]])
    b = int(n_boot)
    if b < 1:
        raise CipsError(f"n_boot= must be a positive integer; got {n_boot!r}.")
    gen = _as_rng(seed)
    plan = RaoWuPlan.build(w.size, strata=strata, cluster=cluster, bootstrap_type=bootstrap_type,
                          lonely_psu=lonely_psu)
    wd = w.astype(dtype)

    def _iter() -> Iterator[np.ndarray]:
        for m in plan.iter_multipliers(b, gen, chunk_size, dtype=dtype):
            m *= wd
            yield m

    if chunk_size is None:
        return np.vstack(list(_iter())) if b else np.empty((0, w.size), dtype=dtype)
    return _iter()


@dataclass(frozen=True)
class JackknifeWeights(Result):
    """Jackknife replicate weights with the constants of their variance formula.

    ``var = scale * sum_r rscales[r] * (theta_r - center)^2`` with ``center``
    the mean of the replicates (R's default) or the full-sample estimate
    (``mse=TRUE``).

    Attributes
    ----------
    weights : ndarray, shape (n_psu, n)
        Replicate weights, one row per replicate.
    scale : float
    rscales : ndarray
    replicate_type : {"JK1", "JKn"}
    """

    weights: np.ndarray
    scale: float
    rscales: np.ndarray
    replicate_type: str

    def to_frame(self) -> pd.DataFrame:
        """The replicate weights, one column per replicate (``rep1``, ``rep2``...)."""
        return pd.DataFrame(self.weights.T, columns=[f"rep{i + 1}" for i in range(self.weights.shape[0])])


def jackknife_weights(*, weight: Any, strata: Any = None, cluster: Any = None, replicate_type: str | None = None,
                      dtype: Any = np.float64) -> JackknifeWeights:
    """Delete-one-PSU jackknife replicate weights (JK1 unstratified, JKn stratified).

    Parameters
    ----------
    weight : array-like, shape (n,)
        Sampling weights.
    strata, cluster : array-like, optional
        Stratum and PSU labels (clusters read within strata); rows are PSUs
        without clusters.
    replicate_type : {"JK1", "JKn"}, optional
        Default ``"JKn"`` with strata, ``"JK1"`` without.
    dtype : numpy dtype
        Of the weights.

    Returns
    -------
    JackknifeWeights
        ``weights`` of shape ``(n_psu, n)``: replicate ``r`` deletes PSU ``r``
        and multiplies the other PSUs of its stratum by ``n_h/(n_h - 1)``;
        ``scale`` and ``rscales`` as R ``survey``: JK1 ``scale = (n-1)/n``,
        ``rscales = 1``; JKn ``scale = 1``, ``rscales = (n_h - 1)/n_h``.

    Notes
    -----
    Matches R ``survey:::jk1weights``/``jknweights`` (without fpc).  A
    stratum with one PSU cannot be jackknifed and raises
    :class:`~cips_stats.errors.SingletonPSUError`.

    Examples
    --------
    >>> import numpy as np
    >>> from cips_stats.estimate.replicates import jackknife_weights
    >>> jk = jackknife_weights(weight=np.ones(3))
    >>> jk.weights
    array([[0. , 1.5, 1.5],
           [1.5, 0. , 1.5],
           [1.5, 1.5, 0. ]])
    >>> round(jk.scale, 4)
    0.6667
    """
    w = np.asarray(weight, dtype=np.float64)
    kind = replicate_type
    if kind is None:
        kind = "JK1" if strata is None else "JKn"
    if kind not in ("JK1", "JKn"):
        raise CipsError(f"replicate_type= must be 'JK1' or 'JKn'; got {kind!r}.")
    if kind == "JK1" and strata is not None:
        raise CipsError("replicate_type='JK1' is the unstratified jackknife; use replicate_type='JKn' with strata=.")
    plan = RaoWuPlan.build(w.size, strata=strata if kind == "JKn" else None, cluster=cluster)
    stratum_of_psu = np.repeat(np.arange(plan.n_h.size), plan.n_h)
    nh_psu = plan.n_h[stratum_of_psu].astype(np.float64)
    same = stratum_of_psu[:, None] == stratum_of_psu[None, :]           # (P, P)
    mult = np.where(same, nh_psu[None, :] / (nh_psu[None, :] - 1.0), 1.0)
    np.fill_diagonal(mult, 0.0)
    rw = (mult[:, plan.psu_of_row] * w).astype(dtype)
    prov = Provenance.build("jackknife_weights", options={"replicate_type": kind, "n_psu": int(plan.n_psu)})
    if kind == "JK1":
        n = float(plan.n_psu)
        return JackknifeWeights(rw, (n - 1.0) / n, np.ones(plan.n_psu), "JK1", provenance=prov)
    return JackknifeWeights(rw, 1.0, (nh_psu - 1.0) / nh_psu, "JKn", provenance=prov)


def replicate_variance(thetas: Any, *, scale: float, rscales: Any = None, center: Any = None,
                       axis: int = -1) -> np.ndarray:
    """Variance from replicate estimates: ``scale * sum_r rscales_r (theta_r - center)^2``.

    Parameters
    ----------
    thetas : array-like
        Replicate estimates, replicates along ``axis``.
    scale : float
        Overall scale (:func:`rao_wu_scale`, or ``JackknifeWeights.scale``).
    rscales : array-like, optional
        Per-replicate scales (default 1).
    center : array-like, optional
        Centre; default the mean of the replicates (R's ``mse=FALSE``).  Pass
        the full-sample estimate for R's ``mse=TRUE``.
    axis : int
        Replicate axis.

    Returns
    -------
    ndarray
        The variance of every estimate (the replicate axis removed).

    Examples
    --------
    >>> from cips_stats.estimate.replicates import replicate_variance
    >>> float(replicate_variance([1.0, 2.0, 3.0], scale=0.5))
    1.0
    """
    t = np.moveaxis(np.asarray(thetas, dtype=np.float64), axis, -1)
    c = t.mean(axis=-1, keepdims=True) if center is None else np.asarray(center, dtype=np.float64)[..., None]
    d2 = (t - c) ** 2
    if rscales is not None:
        d2 = d2 * np.asarray(rscales, dtype=np.float64)
    return scale * d2.sum(axis=-1)


# ---------------------------------------------------------------------------------------------
# replicate weights given by the user, and estimates from a weight matrix
# ---------------------------------------------------------------------------------------------
def replicate_matrix(frame: pd.DataFrame, replicate_weights: Any) -> np.ndarray:
    """The ``(n, R)`` replicate-weight matrix from an array, a list of columns or a column prefix."""
    if isinstance(replicate_weights, str):
        cols = [c for c in frame.columns if str(c).startswith(replicate_weights)]
        if not cols:
            raise DataError(f"No column starts with replicate_weights={replicate_weights!r}.",
                            [Problem("replicate_columns", "No replicate-weight columns.", column=replicate_weights)])
        m = frame[cols].to_numpy(dtype=np.float64)
    elif isinstance(replicate_weights, (list, tuple)) and replicate_weights and all(
            isinstance(c, str) for c in replicate_weights):
        m = frame[list(replicate_weights)].to_numpy(dtype=np.float64)
    else:
        m = np.asarray(replicate_weights, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != len(frame):
        raise DataError(f"replicate_weights= must have one row per respondent ({len(frame)}) and one column per "
                        f"replicate; got shape {m.shape}.",
                        [Problem("replicate_shape", "Wrong shape of replicate weights.", column="replicate_weights")])
    bad = np.argwhere(~np.isfinite(m) | (m < 0))
    if bad.size:
        raise DataError(f"replicate_weights= has {len(bad)} negative or non-finite values.",
                        [Problem("replicate_nonnegative", "Replicate weight must be finite and >= 0.",
                                 row=int(r) + 1, column=f"replicate {int(c) + 1}", value=float(m[r, c]))
                         for r, c in bad[:50]])
    return m


#: R ``svrepdesign``'s default variance scale per replicate type (``R`` replicates).
SVREP_SCALE = {"bootstrap": lambda R: 1.0 / (R - 1), "subbootstrap": lambda R: 1.0 / (R - 1),
               "JK1": lambda R: (R - 1) / R, "BRR": lambda R: 1.0 / R}


def replicate_scale(replicate_type: str | None, R: int, scale: float | None, rscales: Any) -> tuple[float, np.ndarray]:
    """``(scale, rscales)`` of a replicate variance, R ``svrepdesign``'s defaults when ``scale`` is None."""
    rs = np.ones(R) if rscales is None else np.broadcast_to(np.asarray(rscales, dtype=np.float64), (R,)).copy()
    if scale is not None:
        return float(scale), rs
    if replicate_type in SVREP_SCALE:
        return float(SVREP_SCALE[replicate_type](R)), rs
    if replicate_type in ("JKn", "other") and rscales is not None:
        return 1.0, rs
    raise DataError("Replicate weights need replicate_scale= (and replicate_rscales= for JKn), or "
                    "replicate_type= to use R svrepdesign's default scale.",
                    [Problem("replicate_scale", "Scale of the replicate variance unknown.")])
