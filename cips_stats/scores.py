"""Respondent-level key-factor scores: mean of answered items (0–10, 0–100) and % favourable.

For every key factor and every index of the instrument, and every respondent,
:func:`respondent_scores` computes in one vectorised pass per respondent group

* ``mean_0_10``: the mean of the answered items rescaled from ``1..points`` to
  0–10, ``10 * (mean - 1) / (points - 1)``, as the WCO reports key-factor scores;
* ``mean_0_100``: the same on 0–100;
* ``favourable``: the percentage of answered items in the favourable ("top-k
  box") codes.

A respondent whose share of answered items of a factor is below ``min_share``
gets no score (NaN) for that factor, and the reason is recorded, never silently.

Examples
--------
>>> import cips_stats as cs
>>> sim = cs.simulate(seed=1, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
>>> sc = cs.scores.respondent_scores(sim.data)
>>> sc.respondents.columns[:5].tolist()
['respondent_id', 'country', 'iteration', 'group', 'weight']
>>> bool(sc.scores["leadership"].dropna().between(0, 10).all())
True
>>> sc.to_frame().columns.tolist()
['respondent_id', 'country', 'iteration', 'group', 'factor', 'score']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import CipsError, DataError, Flag, Problem
from .results import Provenance, Result

__all__ = ["Scores", "respondent_scores", "STATISTICS"]

#: The respondent score statistics.
STATISTICS = ("mean_0_10", "mean_0_100", "favourable")
#: Design and key columns carried into the score table when present.
_CARRY = ("respondent_id", "country", "iteration", "group", "weight", "stratum", "cluster")
#: Columns of the exclusions table of :class:`Scores`.
EXCLUSION_COLUMNS = ["respondent_id", "group", "factor", "n_items", "n_answered", "share", "reason"]


@dataclass(frozen=True)
class Scores(Result):
    """Respondent scores of every factor and index.

    Attributes
    ----------
    respondents : pandas.DataFrame
        One row per respondent (rows of ``data.frame``, same order, index
        reset): the key and design columns and the demographic columns.
    scores : pandas.DataFrame
        Same rows: one float column per factor/index (NaN = no score; the
        reason is in ``exclusions``, or the group is not asked the factor, see
        ``counts``).  Kept apart from ``respondents`` because a factor id may
        equal a demographic name (CIPS: ``leadership``).
    statistic : str
        ``"mean_0_10"``, ``"mean_0_100"`` or ``"favourable"``.
    factors : tuple of str
        Factor and index ids, in instrument order (the score columns).
    answered : pandas.DataFrame
        Per respondent and factor, the number of answered items (same layout
        as the score columns), used by the indicators' masks and diagnostics.
    exclusions : pandas.DataFrame
        One row per respondent and factor below ``min_share``:
        ``respondent_id, group, factor, n_items, n_answered, share, reason``.
    counts : pandas.DataFrame
        Per group and factor: ``n_items``, ``n_respondents``, ``n_scored``,
        ``n_excluded`` (below ``min_share``) and ``asked`` (False when the
        group is not asked any item of the factor).
    min_share : float
        The minimum share of answered items.
    """

    respondents: pd.DataFrame
    scores: pd.DataFrame
    statistic: str
    factors: tuple
    answered: pd.DataFrame
    exclusions: pd.DataFrame
    counts: pd.DataFrame
    min_share: float
    favourable: tuple = ()
    points: int = 5

    def to_frame(self) -> pd.DataFrame:
        """Long tidy table: respondent keys, ``factor``, ``score`` (respondent-factor pairs with a score)."""
        keys = [c for c in ("respondent_id", "country", "iteration", "group") if c in self.respondents]
        v = self.values()
        r, k = np.nonzero(~np.isnan(v))
        out = self.respondents[keys].iloc[r].reset_index(drop=True)
        out["factor"] = np.asarray(self.factors, dtype=object)[k]
        out["score"] = v[r, k]
        return out

    def values(self) -> np.ndarray:
        """Scores as an ``(n_respondents, n_factors)`` float64 array (NaN = no score)."""
        return self.scores.to_numpy(dtype=np.float64)


def _favourable_codes(favourable: Any, points: int, default: Sequence[int]) -> tuple[int, ...]:
    if favourable is None:
        codes = tuple(int(c) for c in default)
    elif isinstance(favourable, (int, np.integer)) and not isinstance(favourable, bool):
        k = int(favourable)
        if not 1 <= k < points:
            raise DataError(f"favourable= as a top-k box needs 1 <= k < points ({points}); got {k}.",
                            [Problem("favourable", "Top-k box out of range.", column="favourable", value=k)])
        codes = tuple(range(points - k + 1, points + 1))
    else:
        codes = tuple(int(c) for c in favourable)
    bad = [c for c in codes if not 1 <= c <= points]
    if not codes or bad:
        raise DataError(f"favourable= must be a non-empty set of codes within 1..{points}; got {list(codes)}.",
                        [Problem("favourable", "Favourable code outside the scale.", column="favourable",
                                 value=list(codes))])
    return tuple(sorted(set(codes)))


def respondent_scores(data: Any, *, statistic: str = "mean_0_10", min_share: float = 0.5,
                      favourable: Any = None, points: int | None = None,
                      factors: Iterable[str] | None = None) -> Scores:
    """Key-factor and index scores of every respondent.

    Parameters
    ----------
    data : SurveyData
        Recoded survey (items on ``1..points``, reverse keys applied, NaN =
        missing).
    statistic : {"mean_0_10", "mean_0_100", "favourable"}
        Mean of the answered items on 0–10 (WCO reporting) or 0–100, or the
        percentage of answered items in the favourable codes.
    min_share : float
        Minimum share of a factor's items (asked of the respondent's group)
        that must be answered for a score; at least one answered item is
        always needed.  Default 0.5.
    favourable : int or sequence of int, optional
        Favourable codes (e.g. ``(4, 5)``), or ``k`` for the top-``k`` box.
        Default: the instrument's ``scale.favourable``.
    points : int, optional
        Scale points; default the instrument's.
    factors : iterable of str, optional
        Factor/index ids (default: all of the instrument, in its order).

    Returns
    -------
    Scores
        ``.respondents`` (keys), ``.scores`` (respondents × factors), ``.exclusions``, ``.counts``.

    Notes
    -----
    With ``x_ij`` the answers of respondent ``i`` to the ``J_f`` items of
    factor ``f`` asked of their group and ``A_if`` the number answered,
    ``mean_0_10 = 10 (sum_j x_ij / A_if - 1) / (points - 1)`` when
    ``A_if >= max(1, min_share * J_f)``, and ``favourable = 100 *
    #{j: x_ij in favourable} / A_if``.  Computed for all factors at once as
    matrix products of the answers and the answered mask with the
    item-by-factor membership matrix of each group.  Checked against a direct
    per-respondent loop in ``tests/test_scores.py``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=2, n_countries=1, n_repeat=0, n_officials=20, n_private=20)
    >>> fav = cs.scores.respondent_scores(sim.data, statistic="favourable")
    >>> bool(fav.scores["audit"].dropna().between(0, 100).all())
    True
    >>> fav.counts.columns.tolist()
    ['group', 'factor', 'n_items', 'n_respondents', 'n_scored', 'n_excluded', 'asked']
    """
    inst, frame, P, fav, fids = _check_args(data, statistic, min_share, favourable, points, factors)
    F = len(fids)
    groups = frame["group"].to_numpy()
    unknown = sorted(set(pd.unique(groups)) - set(inst.group_ids), key=str)
    if unknown:
        raise DataError(f"data has rows of groups the instrument does not declare: {unknown}.",
                        [Problem("group_unknown", "Unknown respondent group.", column="group", value=g)
                         for g in unknown])
    ms = float(min_share)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):      # small products: one thread is faster on a busy machine
        groups_out = [_score_group(g, frame, groups, inst, fids, F, P, fav, ms, statistic) for g in inst.group_ids]
    out, answered, exc, counts = _assemble(groups_out, frame, fids, P)
    carry = [c for c in _CARRY if c in frame.columns]
    demo = [d.name for d in inst.demographics if d.name in frame.columns and d.name not in carry]
    prov = Provenance.build("respondent_scores", data=data, options={
        "statistic": statistic, "min_share": ms, "favourable": list(fav), "points": P, "factors": list(fids)})
    return Scores(respondents=frame[carry + demo].reset_index(drop=True), scores=pd.DataFrame(out, columns=list(fids)),
                  statistic=statistic, factors=fids, answered=pd.DataFrame(answered, columns=list(fids)),
                  exclusions=exc, counts=counts, min_share=ms, favourable=fav, points=P, provenance=prov,
                  flags=_flags(exc, counts, ms))


def _check_args(data: Any, statistic: Any, min_share: Any, favourable: Any, points: Any, factors: Any) -> tuple:
    if statistic not in STATISTICS:
        raise CipsError(f"statistic= must be one of {STATISTICS}; got {statistic!r}.")
    if isinstance(min_share, bool) or not isinstance(min_share, (int, float, np.floating)) \
            or not 0.0 <= float(min_share) <= 1.0:
        raise CipsError(f"min_share= must be a number in [0, 1]; got {min_share!r}.")
    inst = getattr(data, "instrument", None)
    frame = getattr(data, "frame", None)
    if inst is None or not isinstance(frame, pd.DataFrame):
        raise DataError(f"data= must be a SurveyData (with .frame and .instrument); got {type(data).__name__}.",
                        [Problem("data_type", "Not a SurveyData.", value=type(data).__name__)])
    P = int(points) if points is not None else int(inst.scale.points)
    if P < 2:
        raise CipsError(f"points= must be at least 2; got {points!r}.")
    fav = _favourable_codes(favourable, P, inst.scale.favourable)
    fids = tuple(inst.factor_ids) if factors is None else tuple(factors)
    unknown = []
    for f in fids:
        try:
            inst.factor(f)
        except KeyError:
            unknown.append(f)
    if unknown:
        raise CipsError(f"factors= names factors the instrument does not have: {unknown} "
                        f"(it has {list(inst.factor_ids)}).")
    return inst, frame, P, fav, fids


def _assemble(groups_out: list, frame: pd.DataFrame, fids: tuple, P: int) -> tuple:
    """Scores, answered counts, exclusions and per-group counts from the groups' results."""
    F = len(fids)
    n = len(frame)
    out = np.full((n, F), np.nan)
    answered = np.zeros((n, F), dtype=np.int64)
    exc_parts: list[pd.DataFrame] = []
    count_rows: list[dict] = []
    problems: list[Problem] = []
    for g, rows, res in groups_out:
        n_items = res["n_items"]
        if res["problems"]:
            problems.extend(res["problems"])
            continue
        n_exc = np.zeros(F, dtype=int)
        if rows.size:
            out[rows] = res["val"]
            answered[rows] = res["cnt"].astype(np.int64)
            low = res["low"]
            if low.any():
                r, k = np.nonzero(low)
                cnt = res["cnt"]
                exc_parts.append(pd.DataFrame({
                    "respondent_id": frame["respondent_id"].to_numpy()[rows[r]] if "respondent_id" in frame
                    else rows[r],
                    "group": g, "factor": np.asarray(fids, dtype=object)[k], "n_items": n_items[k].astype(int),
                    "n_answered": cnt[r, k].astype(int), "share": cnt[r, k] / n_items[k],
                    "reason": np.where(cnt[r, k] == 0, "no_item_answered", "below_min_share"),
                }))
            n_exc = low.sum(axis=0)
        for k, f in enumerate(fids):
            count_rows.append({"group": g, "factor": f, "n_items": int(n_items[k]), "n_respondents": int(rows.size),
                               "n_scored": int(rows.size - n_exc[k]) if n_items[k] > 0 else 0,
                               "n_excluded": int(n_exc[k]), "asked": bool(n_items[k] > 0)})
    if problems:
        raise DataError(f"data has {len(problems)} answers outside the scale 1..{P} (not recoded?).", problems)
    exc = (pd.concat(exc_parts, ignore_index=True) if exc_parts
           else pd.DataFrame({c: pd.Series(dtype=object) for c in EXCLUSION_COLUMNS}))
    return out, answered, exc, pd.DataFrame(count_rows)


def _flags(exc: pd.DataFrame, counts: pd.DataFrame, ms: float) -> tuple:
    flags: list[Flag] = []
    if len(exc):
        flags.append(Flag("scores_below_min_share",
                          f"{len(exc)} respondent-factor scores were not computed because fewer than "
                          f"{ms:.0%} of the items were answered (see .exclusions).", "info",
                          {"n": int(len(exc))}))
    not_asked = counts.loc[~counts["asked"], ["group", "factor"]]
    if len(not_asked):
        flags.append(Flag("factor_not_asked", "Some groups are asked no item of some factors: " + ", ".join(
            f"{g}/{f}" for g, f in not_asked.itertuples(index=False)) + ".", "info",
            {"pairs": [list(p) for p in not_asked.itertuples(index=False)]}))
    return tuple(flags)


def _score_group(g, frame, groups, inst, fids, F, P, fav, ms, statistic):
    """Scores of the respondents of one group: (group, rows, dict of arrays and problems)."""
    rows = np.flatnonzero(groups == g)
    items = list(inst.items_for(g))
    missing_cols = [c for c in items if c not in frame.columns]
    if missing_cols:
        raise DataError(f"data.frame lacks item columns of group {g!r}: {missing_cols}.",
                        [Problem("item_missing", "Item column missing.", column=c) for c in missing_cols])
    col = {c: j for j, c in enumerate(items)}
    member = np.zeros((len(items), F))
    for k, f in enumerate(fids):
        for it in inst.factor_items(f, group=g):
            member[col[it], k] = 1.0
    n_items = member.sum(axis=0)
    res: dict = {"n_items": n_items, "problems": []}
    if not rows.size:
        return g, rows, res
    X = frame[items].to_numpy(dtype=np.float64)[rows]
    A = ~np.isnan(X)
    bad = A & ((X < 1) | (X > P) | (X != np.round(X)))
    if bad.any():
        r, c = np.nonzero(bad)
        res["problems"] = [Problem("code_in_scale", f"Answer outside the scale 1..{P}.", row=int(rows[rr]) + 1,
                                   column=items[cc], value=float(X[rr, cc])) for rr, cc in zip(r[:50], c[:50])]
        return g, rows, res
    cnt = A.astype(np.float64) @ member                       # answered per factor
    if statistic == "favourable":
        num = (A & np.isin(X, fav)).astype(np.float64) @ member * 100.0
    else:
        num = np.where(A, X, 0.0) @ member
    need = np.maximum(1.0, ms * n_items - 1e-9)
    ok = (cnt >= need[None, :]) & (n_items[None, :] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = num / cnt
    if statistic == "mean_0_10":
        val = 10.0 * (val - 1.0) / (P - 1)
    elif statistic == "mean_0_100":
        val = 100.0 * (val - 1.0) / (P - 1)
    res.update(val=np.where(ok, val, np.nan), cnt=cnt, low=~ok & (n_items[None, :] > 0))
    return g, rows, res
